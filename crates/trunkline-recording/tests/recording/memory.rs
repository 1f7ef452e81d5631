//! Memory stays bounded however long the call and whatever a leg does:
//! one leg silent, one whose clock runs slow or fast.

use crate::common::{Packet, Stream, callee_tone, caller_tone, read};
use std::time::{Duration, Instant};
use trunkline_recording::Recorder;

/// Frames a leg may hold while its timestamps keep to time: the default
/// 100 ms jitter window and one 20 ms packet.
const IN_TIME: u64 = 800 + 160;

/// The ring: the jitter window and the longest packet, rounded up to a
/// power of two. Nothing holds more.
const RING: u64 = 4096;

/// Arrivals every `period_us` microseconds instead of 20 ms: the sender's
/// clock against ours.
fn clocked(stream: &Stream, n: u32, period_us: u64) -> Packet {
    let mut packet = stream.packet(n);
    packet.arrival = stream.first_arrival + Duration::from_micros(period_us * u64::from(n));
    packet
}

#[test]
fn a_silent_leg_does_not_make_the_other_pile_up() {
    let (caller, callee) = (caller_tone(), callee_tone());
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("long.wav");
    let start = Instant::now();
    let mut recorder = Recorder::create(&path, start).expect("create");
    // Ten minutes of the caller; the callee talks for five seconds, then
    // sends nothing.
    let mut most = 0;
    for n in 0..30_000 {
        caller.packet(n).push(&mut recorder, start);
        if n < 250 {
            callee.packet(n).push(&mut recorder, start);
        }
        most = most.max(recorder.buffered_frames());
    }
    assert!(most <= IN_TIME, "{most} frames buffered");
    let summary = recorder
        .finish(start + Duration::from_secs(600))
        .expect("finish");
    assert_eq!(summary.frames, 4_800_000);
    assert_eq!(summary.caller.samples, 4_800_000);
    assert_eq!(summary.callee.samples, 40_000);

    let (left, right) = read(&path);
    assert!(left.iter().all(|&s| s != 0));
    assert!(right[..40_000].iter().all(|&s| s != 0));
    assert!(right[40_000..].iter().all(|&s| s == 0));
}

#[test]
fn a_slow_sender_is_pulled_forward_not_dropped() {
    let (caller, callee) = (caller_tone(), callee_tone());
    let dir = tempfile::tempdir().expect("temporary directory");
    let start = Instant::now();
    let mut recorder = Recorder::create(dir.path().join("slow.wav"), start).expect("create");
    // The caller's clock runs 1% slow: a minute in, its audio is 600 ms
    // behind the callee's, six times the jitter window.
    let mut packets: Vec<Packet> = (0..2970).map(|n| clocked(&caller, n, 20_200)).collect();
    packets.extend((0..3000).map(|n| callee.packet(n)));
    packets.sort_by_key(|p| p.arrival);
    let mut most = 0;
    for packet in &packets {
        packet.push(&mut recorder, start);
        most = most.max(recorder.buffered_frames());
    }
    assert!(most <= IN_TIME, "{most} frames buffered");
    let summary = recorder
        .finish(start + Duration::from_secs(60))
        .expect("finish");
    assert_eq!(summary.caller.packets, 2970);
    assert_eq!(summary.caller.samples, 2970 * 160);
    assert_eq!((summary.caller.dropped(), summary.caller.resyncs), (0, 0));
    assert_eq!(summary.callee.dropped(), 0);
}

#[test]
fn a_fast_sender_is_held_to_the_ring() {
    let (caller, callee) = (caller_tone(), callee_tone());
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("fast.wav");
    let start = Instant::now();
    let mut recorder = Recorder::create(&path, start).expect("create");
    // The caller's clock runs 1% fast: its timestamps run ahead of time
    // until the ring is full, and then the write position follows them.
    let mut packets: Vec<Packet> = (0..3030).map(|n| clocked(&caller, n, 19_800)).collect();
    packets.extend((0..3000).map(|n| callee.packet(n)));
    packets.sort_by_key(|p| p.arrival);
    let mut most = 0;
    for packet in &packets {
        packet.push(&mut recorder, start);
        most = most.max(recorder.buffered_frames());
    }
    assert!(most > IN_TIME, "the caller ran ahead");
    assert!(most <= RING, "{most} frames buffered");
    let summary = recorder
        .finish(start + Duration::from_secs(60))
        .expect("finish");
    // Every packet of both legs is in, without a gap in either.
    for side in [summary.caller, summary.callee] {
        assert_eq!((side.dropped(), side.resyncs), (0, 0));
    }
    assert_eq!(summary.caller.samples, 3030 * 160);
    assert_eq!(summary.callee.samples, 3000 * 160);
    assert_eq!(summary.frames, 3030 * 160);
    let (left, right) = read(&path);
    assert!(left.iter().all(|&s| s != 0));
    let first_callee = right.iter().position(|&s| s != 0).expect("callee audio");
    assert_eq!(first_callee, 0);
    // The callee was moved on to keep up with the caller, and sent
    // nothing after its 60 s.
    let last_callee = right.iter().rposition(|&s| s != 0).expect("callee audio");
    assert!(last_callee + 1 > 3000 * 160);
    let quiet = right[..=last_callee].iter().filter(|&&s| s == 0).count();
    assert_eq!(quiet as u64, last_callee as u64 + 1 - 3000 * 160);
}
