//! CPU per recorded call second: 50 packets a second of 160-byte G.711 on
//! each leg (PCMU caller, PCMA callee) into a WAV file on tmpfs where there
//! is one. The goal is at most 20 µs per call second.
//!
//! Criterion times the whole of it. The split that follows it reads the
//! process's user and system CPU time from `/proc`: the system part is the
//! kernel taking each second's 32 KiB into the page cache (allocating and
//! charging pages more than copying them) and freeing it as the files are
//! deleted, which any writer of those files would pay.
//!
//! Each figure comes twice: for the recorder, and for the floor, a bare
//! writer that puts the same 32,000 bytes a call second into files made,
//! finished and deleted the same way, with nothing to decode or place. The
//! floor is what storing a recording costs on this machine whoever writes
//! it.

use criterion::{Criterion, criterion_group, criterion_main};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use tempfile::TempDir;
use trunkline_media::g711;
use trunkline_recording::{Recorder, RtpMedia, Side};

/// Seconds per recording: a file is finished and a new one started after
/// this many, so creating and finishing files is counted, amortized over
/// a short call.
const CALL_SECONDS: u32 = 60;

/// Call seconds recorded for the user/system split: enough for `/proc`'s
/// 10 ms ticks to be well under 1% of it.
const SPLIT_SECONDS: u32 = 1000 * CALL_SECONDS;

/// One second of a tone in 20 ms packets.
fn tone(frequency: f64, encode: fn(i16) -> u8) -> Vec<[u8; 160]> {
    (0..50)
        .map(|packet| {
            std::array::from_fn(|i| {
                let n = f64::from(packet * 160 + i as u32);
                let phase = std::f64::consts::TAU * frequency * n / 8000.0;
                encode((8000.0 * phase.sin()) as i16)
            })
        })
        .collect()
}

/// A stereo second of 8 kHz 16-bit PCM: what a recording stores per call
/// second.
const PCM_SECOND: usize = 8000 * 2 * 2;

/// What the bare writer writes each call second: made once, so that the
/// floor is the write alone.
static SILENCE: [u8; PCM_SECOND] = [0; PCM_SECOND];

/// The file being written.
enum Open {
    /// The recorder's (boxed: it holds its write buffer), and the instant
    /// its call started.
    Recording(Box<Recorder>, Instant),
    /// The bare writer's.
    Bare(std::fs::File),
}

/// Records call seconds into files in a directory, a new file every
/// [`CALL_SECONDS`]: with the recorder, or with the bare writer.
struct Calls {
    dir: TempDir,
    bare: bool,
    caller: Vec<[u8; 160]>,
    callee: Vec<[u8; 160]>,
    files: u32,
    call: Option<Open>,
    second: u32,
}

impl Calls {
    fn new(bare: bool) -> Self {
        // tmpfs keeps the disk out of a CPU figure.
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm)
        } else {
            tempfile::tempdir()
        };
        Calls {
            dir: dir.expect("temporary directory"),
            bare,
            caller: tone(400.0, g711::ulaw_encode),
            callee: tone(1000.0, g711::alaw_encode),
            files: 0,
            call: None,
            second: 0,
        }
    }

    fn record_second(&mut self) {
        let open = self.call.get_or_insert_with(|| {
            self.files += 1;
            let path = self.dir.path().join(format!("{}.wav", self.files));
            if self.bare {
                return Open::Bare(std::fs::File::create(&path).expect("create"));
            }
            let start = Instant::now();
            let recorder = Recorder::create(&path, start).expect("create");
            Open::Recording(Box::new(recorder), start)
        });
        let (recorder, start) = match open {
            Open::Recording(recorder, start) => (recorder, start),
            Open::Bare(file) => {
                file.write_all(&SILENCE).expect("write");
                self.next_second();
                return;
            }
        };
        for (n, (left, right)) in self.caller.iter().zip(&self.callee).enumerate() {
            let packet = self.second * 50 + n as u32;
            let now = *start + Duration::from_millis(20 * u64::from(packet));
            let media = RtpMedia {
                timestamp: 160 * packet,
                sequence: packet as u16,
                payload_type: 0,
                payload: left,
            };
            recorder.push(Side::Caller, now, media).expect("push");
            let media = RtpMedia {
                payload_type: 8,
                payload: right,
                ..media
            };
            recorder.push(Side::Callee, now, media).expect("push");
        }
        self.next_second();
    }

    fn next_second(&mut self) {
        self.second += 1;
        if self.second == CALL_SECONDS {
            self.finish();
        }
    }

    fn finish(&mut self) {
        match self.call.take() {
            Some(Open::Recording(recorder, start)) => {
                let end = start + Duration::from_secs(u64::from(self.second));
                recorder.finish(end).expect("finish");
            }
            // Closing it is all a bare file needs.
            Some(Open::Bare(_)) | None => {}
        }
        self.second = 0;
    }

    /// Finishes the current file and removes every file: they are not
    /// needed once timed.
    fn clear(&mut self) {
        self.finish();
        for entry in std::fs::read_dir(self.dir.path()).expect("list").flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn record(c: &mut Criterion) {
    for (name, bare) in [
        ("record one call second (2 × 50 packets)", false),
        ("floor: write one call second's 32,000 bytes", true),
    ] {
        let mut calls = Calls::new(bare);
        c.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let began = Instant::now();
                for _ in 0..iters {
                    calls.record_second();
                }
                calls.finish();
                let elapsed = began.elapsed();
                calls.clear();
                elapsed
            })
        });
    }
}

/// This process's user and system CPU time so far, if `/proc` tells.
fn cpu_times() -> Option<(Duration, Duration)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may
    // hold spaces: utime and stime are the 12th and 13th of them.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    // Clock ticks of USER_HZ, which Linux fixes at 100 for user space.
    let mut ticks = || {
        fields
            .next()?
            .parse::<u64>()
            .ok()
            .map(|t| Duration::from_millis(10 * t))
    };
    Some((ticks()?, ticks()?))
}

fn cpu_split(_: &mut Criterion) {
    for (what, bare) in [("the recorder", false), ("the floor (a bare writer)", true)] {
        let Some((user, system)) = split(bare) else {
            println!("no /proc/self/stat: no user/system split");
            return;
        };
        println!(
            "CPU per recorded call second over {SPLIT_SECONDS} s (files deleted as they go), {what}: user {user:.1} µs + system {system:.1} µs = {:.1} µs (goal ≤ 20 µs)",
            user + system
        );
    }
}

/// User and system CPU time per call second, in µs, of recording
/// [`SPLIT_SECONDS`] with the recorder or the bare writer.
fn split(bare: bool) -> Option<(f64, f64)> {
    let mut calls = Calls::new(bare);
    let (user0, system0) = cpu_times()?;
    for second in 1..=SPLIT_SECONDS {
        calls.record_second();
        // Ten calls' files at a time on tmpfs, not a thousand; deleting
        // them is counted too.
        if second % (10 * CALL_SECONDS) == 0 {
            calls.clear();
        }
    }
    calls.clear();
    let (user1, system1) = cpu_times()?;
    let per_second = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(SPLIT_SECONDS);
    Some((per_second(user1 - user0), per_second(system1 - system0)))
}

criterion_group!(benches, record, cpu_split);
criterion_main!(benches);
