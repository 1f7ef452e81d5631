//! A baresip phone for the end-to-end tests (Debian `baresip-core`): it
//! registers, plays a tone from a WAV file (`aufile`), dumps what it hears
//! (`sndfile`), and is driven over `ctrl_tcp`.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use trunkline_testkit::{Reaped, free_port, free_ports};

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

/// One baresip: its home directory, control port and dump directory.
pub(crate) struct Phone {
    _process: Reaped,
    control: u16,
    heard: PathBuf,
}

impl Phone {
    pub(crate) fn start(
        dir: &Path,
        user: &str,
        password: &str,
        pbx: u16,
        hz: f64,
        answer: bool,
    ) -> Phone {
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
            // baresip also binds SIP over TLS on the next port.
            free_ports(2),
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
    pub(crate) fn command(&self, command: &str, params: &str) {
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
    pub(crate) fn heard(&self) -> (f64, f64) {
        analyse(&self.latest_dump().1)
    }

    /// The frequency and mean level of what the phone hears for the next
    /// `window` (at least two seconds): only what is decoded meanwhile
    /// counts, so a stream that stopped cannot pass for one that flows.
    /// baresip starts a new dump when a re-INVITE renews its stream; the
    /// first once the call's audio starts, so this waits (bounded) for one.
    pub(crate) fn hears_during(&self, window: Duration) -> (f64, f64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.dumps().is_empty() {
            assert!(
                Instant::now() < deadline,
                "no dump in {}",
                self.heard.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let (file, before) = self.latest_dump();
        std::thread::sleep(window);
        let (now, samples) = self.latest_dump();
        let from = if now == file { before.len() } else { 0 };
        if samples.len() <= from + 8000 {
            let files: Vec<_> = std::fs::read_dir(&self.heard)
                .unwrap()
                .map(|e| e.unwrap())
                .map(|e| (e.file_name(), e.metadata().map(|m| m.len()).unwrap_or(0)))
                .collect();
            panic!("nothing decoded for {window:?}: {files:?}");
        }
        analyse(&samples[from..])
    }

    /// sndfile's dumps of the phone's decoded audio.
    fn dumps(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.heard)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect()
    }

    /// The newest of sndfile's dumps of the phone's decoded audio, so far:
    /// the samples after the `data` chunk's header, whose length sndfile
    /// only writes when the stream ends.
    fn latest_dump(&self) -> (PathBuf, Vec<i16>) {
        let dump = self
            .dumps()
            .into_iter()
            .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.created()).ok())
            .unwrap_or_else(|| panic!("no dump in {}", self.heard.display()));
        let bytes = std::fs::read(&dump).unwrap();
        let data = bytes
            .windows(4)
            .position(|w| w == b"data")
            .unwrap_or_else(|| panic!("no data chunk in {}", dump.display()));
        let samples = bytes[data + 8..]
            .chunks_exact(2)
            .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        (dump, samples)
    }
}

/// Frequency (zero crossings) and mean absolute level of the middle half.
pub(crate) fn analyse(samples: &[i16]) -> (f64, f64) {
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
