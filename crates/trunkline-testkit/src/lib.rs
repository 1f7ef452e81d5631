//! Test support shared by Trunkline's crates: child processes that are
//! always reaped, loopback ports, example programs built on demand, and
//! SIPp with the options every test wants.

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Lines};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A child process killed when dropped, however the test ends.
#[derive(Debug)]
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Reaped {
    /// Starts `command`.
    ///
    /// # Panics
    /// If it cannot start.
    pub fn spawn(command: &mut Command) -> Reaped {
        match command.spawn() {
            Ok(child) => Reaped(child),
            Err(e) => panic!("starting {command:?}: {e}"),
        }
    }

    /// Its exit code if it exits by itself within `limit`; `None` if it
    /// is still running then (or was killed by a signal).
    pub fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            match self.0.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => return None,
            }
        }
        None
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Its standard output, line by line (spawn it with `Stdio::piped()`).
    ///
    /// # Panics
    /// If standard output was not piped or was taken already.
    pub fn lines(&mut self) -> Lines<BufReader<ChildStdout>> {
        let stdout = self.0.stdout.take();
        BufReader::new(stdout.expect("stdout is piped")).lines()
    }
}

/// A loopback port free on both UDP and TCP (so one number serves both
/// listeners of a program), and never handed out before in this process:
/// the probe sockets close at once, so the kernel may offer the same
/// number again to the next call, before the first taker has bound it.
///
/// # Panics
/// If none is found in 100 tries.
pub fn free_port() -> u16 {
    free_ports(1)
}

/// The first of `count` ports in a row, each free as [`free_port`]'s
/// (a program that binds several from one number, as baresip binds SIP
/// over TLS on the port after its SIP port).
///
/// # Panics
/// If none is found in 100 tries.
pub fn free_ports(count: u16) -> u16 {
    static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let free = |port: u16| {
        !handed_out.contains(&port)
            && UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
    };
    for _ in 0..100 {
        let Ok(udp) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = udp.local_addr() else { continue };
        let first = addr.port();
        drop(udp);
        let Some(ports) = (0..count)
            .map(|n| first.checked_add(n))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        if ports.iter().all(|port| free(*port)) {
            handed_out.extend(ports);
            return first;
        }
    }
    panic!("no {count} free loopback ports in a row");
}

/// The path of example `name` of `package`, built (once per test process
/// and package) with the profile the tests run in.
///
/// # Panics
/// If the build fails.
pub fn example(package: &str, name: &str) -> PathBuf {
    build_once(package, "--examples");
    profile_dir().join("examples").join(name)
}

/// The path of binary `name` of `package`, built (once per test process
/// and package) with the profile the tests run in: for tests outside the
/// binary's own package, which cargo gives no `CARGO_BIN_EXE_*`.
///
/// # Panics
/// If the build fails.
pub fn binary(package: &str, name: &str) -> PathBuf {
    build_once(package, "--bins");
    profile_dir().join(name)
}

/// Builds `package`'s targets of a kind (`--examples`, `--bins`) once per
/// test process.
fn build_once(package: &str, kind: &str) {
    static BUILT: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let key = (package.to_owned(), kind.to_owned());
    if built.contains(&key) {
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "-q", "-p", package, kind]);
    // What cargo tells the running test about its own package would reach
    // the build scripts of this build and make cargo rebuild them (and all
    // that depends on them) on every test run.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let about_the_test = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*name);
        if about_the_test {
            build.env_remove(&*name);
        }
    }
    let status = build.status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "building {package} {kind}"
    );
    built.push(key);
}

/// `target/<profile>`, from the running test's own path
/// (`target/<profile>/deps/<test>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/<profile>/deps")
        .to_path_buf()
}

/// SIPp with loopback, a bounded run, errors to stderr and no keyboard.
/// `.ci/setup` installs it (Debian `sip-tester`).
pub fn sipp() -> Command {
    let mut command = Command::new("sipp");
    command
        .args([
            "-nostdin",
            "-i",
            "127.0.0.1",
            "-timeout",
            "60s",
            "-timeout_error",
        ])
        .args(["-trace_err", "-error_file", "/dev/stderr"])
        .stdout(Stdio::null());
    command
}

/// The path of SIPp scenario `name` in `tests/sipp/` of the crate at
/// `crate_dir` (pass `env!("CARGO_MANIFEST_DIR")`), as SIPp's `-sf` takes it.
pub fn sipp_scenario(crate_dir: &str, name: &str) -> String {
    Path::new(crate_dir)
        .join("tests/sipp")
        .join(name)
        .display()
        .to_string()
}

/// Waits until `process` listens on loopback `port`, over UDP or TCP — a
/// SIPp just started, say — so that what is sent there next is not lost.
/// It reads the kernel's socket tables (`/proc/net/{udp,tcp}{,6}`) rather
/// than trying to bind the port, which would race the program for it.
///
/// # Errors
/// If the process exits first (with its status), or nothing listens
/// there within 30 seconds.
pub fn wait_listener(process: &mut Reaped, port: u16) -> Result<(), String> {
    /// A TCP socket's state column when it listens.
    const TCP_LISTEN: &str = "0A";
    let suffix = format!(":{port:04X}");
    let listening = || {
        ["udp", "udp6", "tcp", "tcp6"].iter().any(|table| {
            let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
            text.lines().any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (Some(local), Some(state)) = (fields.get(1), fields.get(3)) else {
                    return false;
                };
                local.ends_with(&suffix) && (table.starts_with("udp") || *state == TCP_LISTEN)
            })
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !listening() {
        if let Ok(Some(status)) = process.0.try_wait() {
            return Err(format!(
                "it exited ({status}) before listening on port {port}"
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("nothing listens on port {port} after 30 s"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
