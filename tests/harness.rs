//! The real `trunkline` binary on loopback ports, for the end-to-end
//! tests in this folder: started from a temporary configuration on free
//! ports, its health and records read back, SIPp phones and callers
//! driven against it. Every process started is reaped.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use trunkline_cdr::{CdrQuery, CdrStore, SqliteCdrStore};
use trunkline_testkit::{Reaped, free_port, wait_listener};

/// The two extensions most tests register and call as, with passwords
/// given (so nothing is printed).
pub const EXTENSIONS: &str = r#"
[[extensions]]
number = "1001"
password = "first-secret"

[[extensions]]
number = "1002"
password = "second-secret"
"#;

/// How long the binary may take to say `ready`.
const START_LIMIT: Duration = Duration::from_secs(30);

/// The binary cargo built for these tests.
pub fn trunkline() -> Command {
    Command::new(trunkline_testkit::binary("trunkline", "trunkline"))
}

/// The ```toml block that follows `<!-- test: {name} -->` in
/// docs/configuration.md.
pub fn docs_block(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let docs = std::fs::read_to_string(&path).unwrap();
    let marker = format!("<!-- test: {name} -->\n```toml\n");
    let start = docs
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker:?} in the docs"))
        + marker.len();
    let end = docs[start..].find("\n```\n").unwrap() + start;
    docs[start..=end].to_owned()
}

/// `trunkline check-config` on `text` written to a file.
pub fn check_config(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trunkline.toml");
    std::fs::write(&file, text).unwrap();
    trunkline().arg("check-config").arg(&file).output().unwrap()
}

/// A running PBX: the process, its ports and data directory, and what it
/// printed on standard output.
pub struct Pbx {
    /// The process.
    pub process: Reaped,
    /// Its SIP port (UDP and TCP).
    pub sip_port: u16,
    /// Its HTTP port.
    pub http_port: u16,
    /// Its configuration, log (`trunkline.log`) and data (`data/`).
    pub dir: tempfile::TempDir,
    /// What it printed on standard output.
    pub stdout: Vec<String>,
}

impl Pbx {
    /// Starts the binary on `extra` (sections other than `[sip]`, `[http]`
    /// and `[data]`, which this fills in) and waits for its `ready` line.
    pub fn start(extra: &str) -> Pbx {
        Pbx::start_in(tempfile::tempdir().unwrap(), extra)
    }

    /// [`Pbx::start`] with its data under `dir` (in `dir/data`), which
    /// the test may have filled beforehand.
    pub fn start_in(dir: tempfile::TempDir, extra: &str) -> Pbx {
        Pbx::start_with(dir, extra, |_| {})
    }

    /// [`Pbx::start_in`], `adjust` having the last word on the command
    /// (its environment: `RUST_LOG` is `debug` unless it says otherwise).
    pub fn start_with(
        dir: tempfile::TempDir,
        extra: &str,
        adjust: impl FnOnce(&mut Command),
    ) -> Pbx {
        let sip_port = free_port();
        let http_port = free_port();
        let config = format!(
            "[sip]\nlisten = [\n  {{ transport = \"udp\", address = \"127.0.0.1:{sip_port}\" }},\n  \
             {{ transport = \"tcp\", address = \"127.0.0.1:{sip_port}\" }},\n]\n\
             [http]\naddress = \"127.0.0.1:{http_port}\"\n\
             [data]\ndir = {:?}\n{extra}",
            dir.path().join("data").display().to_string(),
        );
        let file = dir.path().join("trunkline.toml");
        std::fs::write(&file, config).unwrap();
        let log = std::fs::File::create(dir.path().join("trunkline.log")).unwrap();
        let mut command = trunkline();
        command
            .arg("--config")
            .arg(&file)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(log);
        adjust(&mut command);
        let mut process = Reaped::spawn(&mut command);
        let lines = process.lines();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut pbx = Pbx {
            process,
            sip_port,
            http_port,
            dir,
            stdout: Vec::new(),
        };
        loop {
            match receiver.recv_timeout(START_LIMIT) {
                Ok(line) => {
                    let ready = line.starts_with("ready: ");
                    pbx.stdout.push(line);
                    if ready {
                        return pbx;
                    }
                }
                Err(_) => panic!(
                    "no ready line; stdout {:?}, log:\n{}",
                    pbx.stdout,
                    pbx.log()
                ),
            }
        }
    }

    /// The data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("trunkline.log")).unwrap_or_default()
    }

    /// `GET path` over HTTP/1.1: the status code and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.get_as(path, None)
    }

    /// `GET path` with `Authorization: Bearer {key}` when a key is given.
    pub fn get_as(&self, path: &str, key: Option<&str>) -> (u16, String) {
        self.request("GET", path, key, None)
    }

    /// `POST path` with a JSON body and `key`: the status code and the
    /// body.
    pub fn post_as(&self, path: &str, key: &str, json: &str) -> (u16, String) {
        let body: serde_json::Value = serde_json::from_str(json).unwrap();
        self.request("POST", path, Some(key), Some(&body))
    }

    /// `method path` over HTTP/1.1, with `Authorization: Bearer {key}`
    /// when a key is given and `body` as JSON: the status code and the
    /// body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (u16, String) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.http_port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let authorization = key
            .map(|key| format!("Authorization: Bearer {key}\r\n"))
            .unwrap_or_default();
        let body = body.map(ToString::to_string);
        let content = body.as_ref().map_or(String::new(), |body| {
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )
        });
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{authorization}{content}Connection: close\r\n\r\n{}",
            body.unwrap_or_default()
        )
        .unwrap();
        let mut response = String::new();
        BufReader::new(stream)
            .read_to_string(&mut response)
            .unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_owned())
    }

    /// `GET path` with `key`, which must answer 200 with JSON.
    pub fn json_as(&self, path: &str, key: &str) -> serde_json::Value {
        let (status, body) = self.get_as(path, Some(key));
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits (up to 10 s) until no call is in progress.
    pub fn wait_idle(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.health()["active_calls"] != 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "calls still in progress: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The health document.
    pub fn health(&self) -> serde_json::Value {
        let (status, body) = self.get("/ami/v1/health");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Stops it gracefully (SIGTERM); it must exit 0 within 20 s.
    pub fn stop(&mut self) {
        self.signal("TERM");
        let code = self.process.exit_code(Duration::from_secs(20));
        assert_eq!(code, Some(0), "{}", self.log());
    }

    /// Sends `signal` (`TERM`, `INT`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.process.0.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Runs SIPp scenario `scenario` (in tests/sipp/) once against the PBX as
/// `service`, over `transport` (`u1`, `t1`), with `extra` arguments; its
/// exit code.
pub fn sipp(
    pbx: &Pbx,
    scenario: &str,
    service: &str,
    transport: &str,
    extra: &[&str],
) -> Option<i32> {
    let file = scenario_path(scenario);
    let mut command = trunkline_testkit::sipp();
    command
        .args(["-sf", &file])
        .args(["-s", service, "-m", "1", "-t", transport])
        .args(["-p", &free_port().to_string()])
        .args(extra)
        .arg(format!("127.0.0.1:{}", pbx.sip_port));
    Reaped::spawn(&mut command).exit_code(Duration::from_secs(60))
}

/// SIPp as `user` registers from a free port, then runs callee scenario
/// `scenario` (in tests/sipp/) there for one call: the PBX sends calls to
/// where a registration came from. Returns once the phone listens.
pub fn phone(pbx: &Pbx, user: &str, password: &str, scenario: &str) -> Reaped {
    phone_at(pbx, user, password, scenario).0
}

/// [`phone`], and the port the phone listens on.
pub fn phone_at(pbx: &Pbx, user: &str, password: &str, scenario: &str) -> (Reaped, u16) {
    phone_for(pbx, user, password, scenario, 1)
}

/// [`phone_at`] for `calls` calls.
pub fn phone_for(
    pbx: &Pbx,
    user: &str,
    password: &str,
    scenario: &str,
    calls: u32,
) -> (Reaped, u16) {
    let port = free_port();
    let register = scenario_path("register.xml");
    let mut command = trunkline_testkit::sipp();
    command
        .args(["-sf", &register, "-s", user, "-m", "1", "-t", "u1"])
        .args(["-au", user, "-ap", password, "-p", &port.to_string()])
        .arg(format!("127.0.0.1:{}", pbx.sip_port));
    let registered = Reaped::spawn(&mut command).exit_code(Duration::from_secs(60));
    assert_eq!(registered, Some(0), "{user} registers: {}", pbx.log());
    let mut command = trunkline_testkit::sipp();
    command
        .args(["-sf", &scenario_path(scenario)])
        .args([
            "-m",
            &calls.to_string(),
            "-t",
            "u1",
            "-p",
            &port.to_string(),
        ])
        .args(["-mp", &free_port().to_string()]);
    let screen = pbx.dir.path().join(format!("sipp-{user}.out"));
    if calls > 1 {
        // A phone for a load: as many calls open as it keeps, for as long
        // as the load lasts; its screen (where a fatal error goes) kept.
        command
            .args(["-l", "10000", "-timeout", "600s"])
            .stdout(std::fs::File::create(&screen).unwrap());
    }
    let mut phone = Reaped::spawn(&mut command);
    if let Err(e) = wait_listener(&mut phone, port) {
        let said = std::fs::read_to_string(&screen).unwrap_or_default();
        panic!("SIPp phone {user}: {e}\n{said}");
    }
    (phone, port)
}

/// SIPp as 1001 calls `service` with caller scenario `scenario`; it must
/// succeed.
pub fn call_as_1001(pbx: &Pbx, scenario: &str, service: &str) {
    let args = ["-au", "1001", "-ap", "first-secret"];
    let code = sipp(pbx, scenario, service, "u1", &args);
    assert_eq!(code, Some(0), "{scenario}: {}", pbx.log());
}

/// Every phone's scenario must end well; then the PBX finishes the calls
/// (a phone's last 200 reaches the PBX just after the phone is done, and
/// the call's record is stored before it stops counting as active).
pub fn phones_done(pbx: &Pbx, phones: Vec<(&str, Reaped)>) {
    for (name, mut phone) in phones {
        let code = phone.exit_code(Duration::from_secs(30));
        assert_eq!(code, Some(0), "{name}: {}", pbx.log());
    }
    pbx.wait_idle();
}

/// The call records the PBX has stored.
pub fn records(pbx: &Pbx) -> Vec<trunkline_cdr::Cdr> {
    let store = SqliteCdrStore::open(pbx.data().join("cdr.sqlite")).unwrap();
    store.query(&CdrQuery::default()).unwrap().records
}

/// SIPp as a carrier on 127.0.0.2 (`carrier_uas.xml`) for three calls:
/// the PBX's registration, a call to +442071234567, the unregistration.
/// Returns once it listens, with its port.
pub fn carrier() -> (Reaped, u16) {
    let port = free_port();
    let mut command = trunkline_testkit::sipp();
    command
        .args(["-sf", &scenario_path("carrier_uas.xml")])
        .args(["-i", "127.0.0.2", "-t", "u1"])
        .args(["-p", &port.to_string(), "-m", "3"])
        // Our REGISTERs share a Call-ID (RFC 3261 §10.2.4): SIPp must take
        // the unregistration as a new call, not a message of an ended one.
        .args(["-deadcall_wait", "0"])
        .args(["-mp", &free_port().to_string()]);
    let mut carrier = Reaped::spawn(&mut command);
    wait_listener(&mut carrier, port).unwrap_or_else(|e| panic!("SIPp carrier: {e}"));
    (carrier, port)
}

/// The path of SIPp scenario `name`, in this folder's `sipp/`.
pub fn scenario_path(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
        .display()
        .to_string()
}
