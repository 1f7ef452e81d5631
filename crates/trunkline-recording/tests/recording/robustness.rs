//! Whatever arrives, the recorder neither panics nor grows, accounts for
//! every packet, and leaves a file hound reads; whatever a file holds,
//! repair neither panics nor breaks a recording.

use crate::common::{callee_tone, caller_tone};
use proptest::prelude::*;
use std::time::{Duration, Instant};
use trunkline_recording::{Recorder, Repair, RtpMedia, Side, repair};

/// The most a recorder holds: the default jitter window and the longest
/// packet, rounded up to a power of two.
const RING: u64 = 4096;

#[derive(Debug, Clone)]
enum Op {
    /// A packet on a side; `timestamp` `None` follows on from the last.
    Push {
        callee: bool,
        advance_ms: u64,
        timestamp: Option<u32>,
        sequence_step: i16,
        payload_type: u8,
        payload: Vec<u8>,
    },
    /// Bytes as the relay's tap hands them over.
    Rtp {
        callee: bool,
        advance_ms: u64,
        bytes: Vec<u8>,
    },
    Tick {
        advance_ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let payload = prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..400),
        1 => prop::collection::vec(any::<u8>(), 2000..2100),
    ];
    let payload_type = prop_oneof![Just(0u8), Just(8), Just(13), Just(101), any::<u8>()];
    let timestamp = prop_oneof![3 => Just(None), 1 => any::<u32>().prop_map(Some)];
    prop_oneof![
        8 => (any::<bool>(), 0u64..60, timestamp, -3i16..4, payload_type, payload).prop_map(
            |(callee, advance_ms, timestamp, sequence_step, payload_type, payload)| Op::Push {
                callee,
                advance_ms,
                timestamp,
                sequence_step,
                payload_type,
                payload,
            }
        ),
        1 => (any::<bool>(), 0u64..60, prop::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(callee, advance_ms, bytes)| Op::Rtp { callee, advance_ms, bytes }),
        1 => (0u64..1500).prop_map(|advance_ms| Op::Tick { advance_ms }),
    ]
}

fn side(callee: bool) -> Side {
    if callee { Side::Callee } else { Side::Caller }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_packets_leave_a_readable_recording(ops in prop::collection::vec(op(), 0..300)) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("odd.wav");
        let start = Instant::now();
        let mut recorder = Recorder::create(&path, start).expect("create");
        let mut now = start;
        let mut next = [(0u32, 0u16); 2];
        let mut pushed = [0u64; 2];
        for op in ops {
            match op {
                Op::Push { callee, advance_ms, timestamp, sequence_step, payload_type, payload } => {
                    now += Duration::from_millis(advance_ms);
                    let (ts, seq) = &mut next[usize::from(callee)];
                    let timestamp = timestamp.unwrap_or(*ts);
                    let sequence = seq.wrapping_add_signed(sequence_step);
                    (*ts, *seq) = (timestamp.wrapping_add(payload.len() as u32), sequence);
                    let media = RtpMedia { timestamp, sequence, payload_type, payload: &payload };
                    recorder.push(side(callee), now, media).expect("push");
                    pushed[usize::from(callee)] += 1;
                }
                Op::Rtp { callee, advance_ms, bytes } => {
                    now += Duration::from_millis(advance_ms);
                    recorder.push_rtp(side(callee), now, &bytes).expect("push");
                    pushed[usize::from(callee)] += 1;
                }
                Op::Tick { advance_ms } => {
                    now += Duration::from_millis(advance_ms);
                    recorder.tick(now).expect("tick");
                }
            }
            prop_assert!(recorder.buffered_frames() <= RING);
        }
        let summary = recorder.finish(now).expect("finish");
        // Every packet is placed, ignored or dropped, once.
        for (stats, pushed) in [(summary.caller, pushed[0]), (summary.callee, pushed[1])] {
            prop_assert_eq!(stats.packets + stats.ignored + stats.dropped(), pushed);
        }
        let elapsed = now.duration_since(start);
        prop_assert!(summary.duration >= elapsed.saturating_sub(Duration::from_millis(1)));
        let mut reader = hound::WavReader::open(&path).expect("open WAV");
        prop_assert_eq!(u64::from(reader.duration()), summary.frames);
        prop_assert_eq!(reader.samples::<i16>().filter(Result::is_ok).count() as u64, 2 * summary.frames);
    }

    #[test]
    fn any_bytes_are_repaired_or_refused(riff in any::<bool>(), bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("odd.wav");
        let mut content = Vec::new();
        if riff {
            content.extend_from_slice(b"RIFF\0\0\0\0WAVE");
        }
        content.extend_from_slice(&bytes);
        std::fs::write(&path, &content).expect("write");
        // Anything goes but a panic, and repair never lengthens a file.
        if let Ok(Repair::Fixed { .. } | Repair::Intact) = repair(&path) {
            prop_assert!(std::fs::metadata(&path).expect("metadata").len() <= content.len() as u64);
        }
    }
}

/// A recording with garbled sizes and cut anywhere past its header is
/// repaired to a prefix of itself.
#[test]
fn any_cut_and_any_sizes_repair_to_a_prefix() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("whole.wav");
    let (caller, callee) = (caller_tone(), callee_tone());
    let start = Instant::now();
    let mut recorder = Recorder::create(&path, start).expect("create");
    for n in 0..25 {
        caller.packet(n).push(&mut recorder, start);
        callee.packet(n).push(&mut recorder, start);
    }
    recorder.finish(start).expect("finish");
    let whole = std::fs::read(&path).expect("read");
    let reference: Vec<i16> = hound::WavReader::open(&path)
        .expect("open WAV")
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("samples");

    let sizes = (any::<u32>(), any::<u32>(), 44..whole.len());
    proptest!(ProptestConfig::with_cases(128), |((riff, data, cut) in sizes)| {
        let copy = dir.path().join("copy.wav");
        let mut bytes = whole[..cut].to_vec();
        bytes[4..8].copy_from_slice(&riff.to_le_bytes());
        bytes[40..44].copy_from_slice(&data.to_le_bytes());
        std::fs::write(&copy, &bytes).expect("write");
        repair(&copy).expect("repair");
        let samples: Vec<i16> = hound::WavReader::open(&copy)
            .expect("open WAV")
            .samples::<i16>()
            .collect::<Result<_, _>>()
            .expect("samples");
        prop_assert_eq!(&samples[..], &reference[..samples.len()]);
        prop_assert_eq!(repair(&copy).expect("repair again"), Repair::Intact);
    });
}
