//! The first real call with real phones: two baresip instances (Debian
//! `baresip-core`) register as 1001 and 1002, each playing a tone from a
//! WAV file (`aufile`) and dumping what it hears (`sndfile`); 1001 calls
//! 1002 through Trunkline over `ctrl_tcp`, 1002 answers by itself, they
//! talk, 1001 hangs up. Each must have heard the other's tone; the record
//! says ANSWERED; the recording has the caller's tone on the left and the
//! callee's on the right.
//!
//! The registrar offers MD5 only: baresip 1.0 gives up on a challenge that
//! also offers SHA-256 (see trunkline-registrar's baresip test).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use trunkline_cdr::{CdrQuery, CdrStore, Disposition, SqliteCdrStore};
use trunkline_e2e::{EXTENSIONS, Pbx};
use trunkline_testkit::{Reaped, free_port};

/// MD5 only (see above), recording on, the two test extensions.
fn config() -> String {
    format!("[registrar]\nalgorithms = [\"MD5\"]\n\n[recording]\nenabled = true\n{EXTENSIONS}")
}

/// How long the two talk.
const TALK: Duration = Duration::from_secs(5);

/// Writes 30 s of a `hz` tone, 8 kHz mono 16-bit, to `path`.
fn tone(path: &Path, hz: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut wav = hound::WavWriter::create(path, spec).unwrap();
    for n in 0..8000 * 30 {
        let t = f64::from(n) / 8000.0;
        wav.write_sample((8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16)
            .unwrap();
    }
    wav.finalize().unwrap();
}

/// A port whose successor is free too: baresip also binds SIP over TLS
/// on the next port.
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let port = free_port();
        if port < u16::MAX && UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two free ports in a row");
}

/// One baresip: its home directory, control port and dump directory.
struct Phone {
    _process: Reaped,
    control: u16,
    heard: PathBuf,
}

impl Phone {
    fn start(dir: &Path, user: &str, password: &str, pbx: u16, hz: f64, answer: bool) -> Phone {
        let home = dir.join(user);
        let heard = home.join("heard");
        std::fs::create_dir_all(&heard).unwrap();
        let source = home.join("tone.wav");
        tone(&source, hz);
        let control = free_port();
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{}\nsip_transports udp\n\
             net_interface 127.0.0.1\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule aufile.so\nmodule sndfile.so\n\
             module_app account.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{control}\n\
             audio_source aufile,{}\naudio_player aufile,/dev/null\nsnd_path {}\n",
            free_port_pair(),
            source.display(),
            heard.display(),
        );
        std::fs::write(home.join("config"), config).unwrap();
        let answermode = if answer { ";answermode=auto" } else { "" };
        let account = format!(
            "<sip:{user}@127.0.0.1:{pbx};transport=udp>;auth_pass={password};regint=60{answermode}\n"
        );
        std::fs::write(home.join("accounts"), account).unwrap();
        let process = Reaped::spawn(
            Command::new("baresip")
                .arg("-f")
                .arg(&home)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        Phone {
            _process: process,
            control,
            heard,
        }
    }

    /// Sends one `ctrl_tcp` command: JSON in a netstring.
    fn command(&self, command: &str, params: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut stream = loop {
            match TcpStream::connect(("127.0.0.1", self.control)) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("baresip control port: {e}"),
            }
        };
        let json = serde_json::json!({"command": command, "params": params, "token": "t"});
        let json = json.to_string();
        write!(stream, "{}:{json},", json.len()).unwrap();
    }

    /// The frequency and mean level of what the phone heard, from the
    /// middle of sndfile's dump of its decoded audio.
    fn heard(&self) -> (f64, f64) {
        let dump = std::fs::read_dir(&self.heard)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .unwrap_or_else(|| panic!("no dump in {}", self.heard.display()));
        let samples: Vec<i16> = hound::WavReader::open(&dump)
            .unwrap()
            .samples::<i16>()
            .map(Result::unwrap)
            .collect();
        analyse(&samples)
    }
}

/// Frequency (zero crossings) and mean absolute level of the middle half.
fn analyse(samples: &[i16]) -> (f64, f64) {
    let middle = &samples[samples.len() / 4..samples.len() * 3 / 4];
    assert!(middle.len() > 8000, "{} samples", samples.len());
    let crossings = middle
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    let level = middle.iter().map(|s| f64::from(*s).abs()).sum::<f64>() / middle.len() as f64;
    (
        crossings as f64 / 2.0 / (middle.len() as f64 / 8000.0),
        level,
    )
}

/// Waits (bounded) until the health document's `key` is `value`.
fn wait_for(pbx: &Pbx, key: &str, value: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while pbx.health()[key] != value {
        assert!(
            Instant::now() < deadline,
            "{key} never {value}: {}\n{}",
            pbx.health(),
            pbx.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_baresip_phones_hear_each_other_through_trunkline() {
    let pbx = Pbx::start(&config());
    let dir = tempfile::tempdir().unwrap();
    let alice = Phone::start(
        dir.path(),
        "1001",
        "first-secret",
        pbx.sip_port,
        400.0,
        false,
    );
    let bob = Phone::start(
        dir.path(),
        "1002",
        "second-secret",
        pbx.sip_port,
        1000.0,
        true,
    );
    wait_for(&pbx, "registrations", 2);

    alice.command("dial", &format!("sip:1002@127.0.0.1:{}", pbx.sip_port));
    wait_for(&pbx, "active_calls", 1);
    std::thread::sleep(TALK);
    alice.command("hangup", "");
    wait_for(&pbx, "active_calls", 0);

    let (alice_hears, alice_level) = alice.heard();
    let (bob_hears, bob_level) = bob.heard();
    assert!(
        (alice_hears - 1000.0).abs() < 20.0,
        "1001 heard {alice_hears} Hz"
    );
    assert!(
        (bob_hears - 400.0).abs() < 20.0,
        "1002 heard {bob_hears} Hz"
    );
    // The tones' amplitude is 8000: a mean level of a few thousand, not
    // the near-silence of a broken path.
    assert!(
        alice_level > 2000.0 && bob_level > 2000.0,
        "{alice_level} {bob_level}"
    );

    let store = SqliteCdrStore::open(pbx.data().join("cdr.sqlite")).unwrap();
    let records = store.query(&CdrQuery::default()).unwrap().records;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record.disposition, Disposition::Answered);
    assert!(
        (3..=TALK.as_secs() + 5).contains(&record.billsec),
        "billsec {}",
        record.billsec
    );
    let recording = record.recording.clone().expect("a recording");
    let samples: Vec<i16> = hound::WavReader::open(&recording)
        .unwrap()
        .samples::<i16>()
        .map(Result::unwrap)
        .collect();
    let (left, right): (Vec<i16>, Vec<i16>) = samples.chunks(2).map(|f| (f[0], f[1])).unzip();
    let (caller, _) = analyse(&left);
    let (callee, _) = analyse(&right);
    assert!((caller - 400.0).abs() < 20.0, "left channel at {caller} Hz");
    assert!(
        (callee - 1000.0).abs() < 20.0,
        "right channel at {callee} Hz"
    );
}
