//! Where audio lands: channels, gaps, reordering, late starts, timestamp
//! jumps and what is not audio.

use crate::common::{
    Packet, Stream, callee_tone, caller_tone, goertzel, read, zero_crossing_frequency,
};
use std::time::{Duration, Instant};
use trunkline_media::rtp::RtpHeader;
use trunkline_recording::{Error, Recorder, RecorderConfig, Side, Summary};

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Records `packets` in the order given, ends at `end`, reads it back.
fn record(
    config: RecorderConfig,
    packets: &[Packet],
    end: Duration,
) -> (Summary, Vec<i16>, Vec<i16>) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("call.wav");
    let start = Instant::now();
    let mut recorder = Recorder::with_config(&path, start, config).expect("create");
    for packet in packets {
        packet.push(&mut recorder, start);
    }
    let summary = recorder.finish(start + end).expect("finish");
    let (left, right) = read(&path);
    assert_eq!(left.len() as u64, summary.frames);
    (summary, left, right)
}

fn both(caller: &Stream, callee: &Stream, packets: std::ops::Range<u32>) -> Vec<Packet> {
    packets
        .flat_map(|n| [caller.packet(n), callee.packet(n)])
        .collect()
}

fn decoded(stream: &Stream, packets: std::ops::Range<u32>) -> Vec<i16> {
    packets.flat_map(|n| stream.decoded(n)).collect()
}

#[test]
fn each_tone_lands_on_its_own_channel() {
    let (caller, callee) = (caller_tone(), callee_tone());
    let (summary, left, right) = record(
        RecorderConfig::default(),
        &both(&caller, &callee, 0..100),
        ms(2000),
    );
    assert_eq!(summary.frames, 16_000);
    assert_eq!(summary.duration, Duration::from_secs(2));
    for side in [summary.caller, summary.callee] {
        assert_eq!(
            (side.packets, side.samples, side.dropped()),
            (100, 16_000, 0)
        );
    }
    // Sample for sample what the packets decode to, in place...
    assert_eq!(left, decoded(&caller, 0..100));
    assert_eq!(right, decoded(&callee, 0..100));
    // ...and heard as the right tone on the right side.
    assert!(goertzel(&left, 400.0) > 1000.0 * goertzel(&left, 1000.0));
    assert!(goertzel(&right, 1000.0) > 1000.0 * goertzel(&right, 400.0));
    assert!((zero_crossing_frequency(&left) - 400.0).abs() < 5.0);
    assert!((zero_crossing_frequency(&right) - 1000.0).abs() < 5.0);
}

#[test]
fn lost_packets_become_silence_of_their_length() {
    let (caller, callee) = (caller_tone(), callee_tone());
    // Half a second of the caller's packets never arrive.
    let packets: Vec<Packet> = both(&caller, &callee, 0..100)
        .into_iter()
        .filter(|p| !(p.side == Side::Caller && (1000..1500).contains(&p.arrival.as_millis())))
        .collect();
    let (summary, left, right) = record(RecorderConfig::default(), &packets, ms(2000));
    assert_eq!(summary.frames, 16_000);
    assert_eq!(summary.caller.packets, 75);
    let mut expected = decoded(&caller, 0..100);
    expected[8000..12_000].fill(0);
    assert_eq!(left, expected);
    assert_eq!(right, decoded(&callee, 0..100));
}

#[test]
fn silence_suppression_and_a_hold_come_out_alike() {
    let caller = caller_tone();
    let resumed = |ts_advances: bool| -> Vec<Packet> {
        (0..100)
            .map(|n| {
                let mut packet = caller.packet(n);
                if n >= 50 {
                    // Five seconds without packets; the timestamps either
                    // kept counting (silence suppression) or stood still
                    // (some phones on hold).
                    packet.arrival += ms(5000);
                    if ts_advances {
                        packet.timestamp = packet.timestamp.wrapping_add(40_000);
                    }
                }
                packet
            })
            .collect()
    };
    let mut expected = decoded(&caller, 0..50);
    expected.resize(48_000, 0);
    expected.extend(decoded(&caller, 50..100));

    let (summary, left, right) = record(RecorderConfig::default(), &resumed(true), ms(7000));
    assert_eq!(left, expected);
    assert!(right.iter().all(|&s| s == 0));
    assert_eq!(summary.caller.resyncs, 0);

    let (summary, left, _) = record(RecorderConfig::default(), &resumed(false), ms(7000));
    assert_eq!(left, expected);
    // Timestamps that disagree with the clock by five seconds are not
    // believed.
    assert_eq!(summary.caller.resyncs, 1);
}

#[test]
fn a_leg_that_starts_later_is_offset_by_its_arrival() {
    let caller = caller_tone();
    let callee = Stream {
        first_arrival: ms(1503),
        ..callee_tone()
    };
    let mut packets: Vec<Packet> = (0..100).map(|n| caller.packet(n)).collect();
    packets.extend((0..50).map(|n| callee.packet(n)));
    packets.sort_by_key(|p| p.arrival);
    let (summary, left, right) = record(RecorderConfig::default(), &packets, ms(2503));
    // 1.503 s at 8 kHz.
    let offset = 12_024;
    assert_eq!(summary.frames, offset + 8000);
    let mut expected = vec![0; offset as usize];
    expected.extend(decoded(&callee, 0..50));
    assert_eq!(right, expected);
    let mut expected = decoded(&caller, 0..100);
    expected.resize(left.len(), 0);
    assert_eq!(left, expected);
}

#[test]
fn reordering_duplicates_and_both_wraps_change_nothing() {
    // The timestamp wraps at packet 20, the sequence number at 36.
    let caller = Stream {
        ts0: u32::MAX - 160 * 20 + 7,
        seq0: 65_500,
        ..caller_tone()
    };
    let callee = callee_tone();
    let in_order = both(&caller, &callee, 0..100);
    let (reference, ref_left, ref_right) = record(RecorderConfig::default(), &in_order, ms(2000));
    assert_eq!(ref_left, decoded(&caller, 0..100));

    let mut shuffled = in_order.clone();
    for packet in &mut shuffled {
        if packet.side != Side::Caller {
            continue;
        }
        let delay = match packet.sequence.wrapping_sub(caller.seq0) {
            10 => 21,      // after packet 11
            19 => 30,      // across the timestamp wrap
            30 => 70,      // after 31, 32 and 33
            35 | 36 => 45, // across the sequence wrap, after 37 and 38
            _ => 0,
        };
        packet.arrival += ms(delay);
    }
    for (n, arrival) in [(19, 430), (50, 1045), (60, 1200), (60, 1200)] {
        let mut copy = caller.packet(n);
        copy.arrival = ms(arrival);
        shuffled.push(copy);
    }
    shuffled.sort_by_key(|p| p.arrival);

    let (summary, left, right) = record(RecorderConfig::default(), &shuffled, ms(2000));
    assert_eq!(left, ref_left);
    assert_eq!(right, ref_right);
    assert_eq!(summary.caller.duplicates, 4);
    assert_eq!(summary.caller.late, 0);
    assert_eq!(summary.caller.packets, reference.caller.packets);
}

#[test]
fn a_packet_later_than_the_jitter_window_is_dropped() {
    let caller = caller_tone();
    let mut packets: Vec<Packet> = (0..50).map(|n| caller.packet(n)).collect();
    packets[20].arrival += ms(250);
    packets.sort_by_key(|p| p.arrival);

    let (summary, left, _) = record(RecorderConfig::default(), &packets, ms(1000));
    assert_eq!((summary.caller.late, summary.caller.packets), (1, 49));
    let mut expected = decoded(&caller, 0..50);
    expected[3200..3360].fill(0);
    assert_eq!(left, expected);

    // A wider window waits for it.
    let config = RecorderConfig {
        jitter: ms(300),
        ..RecorderConfig::default()
    };
    let (summary, left, _) = record(config, &packets, ms(1000));
    assert_eq!((summary.caller.late, summary.caller.packets), (0, 50));
    assert_eq!(left, decoded(&caller, 0..50));
}

#[test]
fn a_packet_straddling_the_write_position_keeps_its_open_part() {
    let caller = caller_tone();
    // The callee's packets arrive 10 ms into each 20 ms, so the one
    // arriving at 610 ms writes up to 510 ms: half way into packet 25.
    let callee = Stream {
        first_arrival: ms(10),
        ..callee_tone()
    };
    let mut packets = both(&caller, &callee, 0..50);
    for packet in &mut packets {
        if packet.side == Side::Caller && packet.arrival == ms(500) {
            packet.arrival = ms(611);
        }
    }
    packets.sort_by_key(|p| p.arrival);
    let (summary, left, _) = record(RecorderConfig::default(), &packets, ms(1010));
    assert_eq!(
        (
            summary.caller.packets,
            summary.caller.late,
            summary.caller.samples
        ),
        (50, 0, 50 * 160 - 80)
    );
    let mut expected = decoded(&caller, 0..50);
    expected[4000..4080].fill(0);
    expected.resize(left.len(), 0);
    assert_eq!(left, expected);
}

#[test]
fn a_timestamp_jump_and_a_new_ssrc_keep_to_the_wall_clock() {
    let caller = caller_tone();
    let packets: Vec<Packet> = (0..150)
        .map(|n| {
            let mut packet = caller.packet(n);
            if (50..100).contains(&n) {
                // The timestamps leap an hour ahead.
                packet.timestamp = packet.timestamp.wrapping_add(8000 * 3600);
            } else if n >= 100 {
                // A new stream: new timestamps and sequence numbers.
                packet.timestamp = 0x0bad_f00d_u32.wrapping_add(160 * (n - 100));
                packet.sequence = 7 + (n - 100) as u16;
            }
            packet
        })
        .collect();
    let (summary, left, _) = record(RecorderConfig::default(), &packets, ms(3000));
    assert_eq!(summary.frames, 24_000);
    assert_eq!(summary.caller.resyncs, 2);
    assert_eq!(summary.caller.dropped(), 0);
    assert_eq!(left, decoded(&caller, 0..150));
}

#[test]
fn other_payload_types_and_bad_packets_are_counted_as_silence() {
    let (caller, callee) = (caller_tone(), callee_tone());
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("call.wav");
    let start = Instant::now();
    let mut recorder = Recorder::create(&path, start).expect("create");
    let mut buf = [0u8; 1500];
    for n in 0..50 {
        let mut packet = caller.packet(n);
        match n {
            // An RFC 4733 digit, then comfort noise.
            10..15 => (packet.payload_type, packet.payload) = (101, vec![5, 0x0a, 0, 160]),
            30 => (packet.payload_type, packet.payload) = (13, vec![64]),
            // Audio without audio, and more than a packet can carry.
            40 => packet.payload.clear(),
            41 => packet.payload = vec![0xff; 4000],
            _ => {}
        }
        packet.push(&mut recorder, start);

        // The callee's packets come as the relay's tap hands them over.
        let packet = callee.packet(n);
        let header = RtpHeader {
            payload_type: packet.payload_type,
            sequence: packet.sequence,
            timestamp: packet.timestamp,
            ssrc: 0x5eed,
            ..Default::default()
        };
        let len = header.write(&packet.payload, &mut buf).expect("RTP");
        let now = start + packet.arrival;
        recorder
            .push_rtp(Side::Callee, now, &buf[..len])
            .expect("push");
        if n == 25 {
            recorder
                .push_rtp(Side::Callee, now, &[0x80, 0, 1])
                .expect("push");
        }
    }
    let summary = recorder.finish(start + ms(1000)).expect("finish");
    assert_eq!(
        (
            summary.caller.ignored,
            summary.caller.malformed,
            summary.caller.packets
        ),
        (6, 2, 42)
    );
    assert_eq!((summary.callee.malformed, summary.callee.packets), (1, 50));
    let (left, right) = read(&path);
    let mut expected = decoded(&caller, 0..50);
    for n in [10, 11, 12, 13, 14, 30, 40, 41] {
        expected[160 * n..160 * (n + 1)].fill(0);
    }
    assert_eq!(left, expected);
    assert_eq!(right, decoded(&callee, 0..50));
}

#[test]
fn time_without_packets_is_written_as_silence() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("quiet.wav");
    let start = Instant::now();
    let mut recorder = Recorder::create(&path, start).expect("create");
    recorder.tick(start + ms(1000)).expect("tick");
    // All but the jitter window.
    assert_eq!(recorder.stats().frames, 7200);
    let summary = recorder.finish(start + ms(2000)).expect("finish");
    assert_eq!(summary.frames, 16_000);
    let (left, right) = read(&path);
    assert!(left.iter().chain(&right).all(|&s| s == 0));
}

#[test]
fn the_file_is_byte_for_byte_what_hound_writes() {
    let (caller, callee) = (caller_tone(), callee_tone());
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("call.wav");
    let start = Instant::now();
    let mut recorder = Recorder::create(&path, start).expect("create");
    // Past a few write buffers, with a late start and a gap on one side.
    for n in 0..300 {
        caller.packet(n).push(&mut recorder, start);
        if n > 40 && n % 50 != 7 {
            callee.packet(n).push(&mut recorder, start);
        }
    }
    let summary = recorder.finish(start + ms(6010)).expect("finish");
    let (left, right) = read(&path);
    assert_eq!(left.len() as u64, summary.frames);

    let mut expected = std::io::Cursor::new(Vec::new());
    let spec = hound::WavReader::open(&path).expect("open WAV").spec();
    let mut writer = hound::WavWriter::new(&mut expected, spec).expect("writer");
    for (l, r) in left.iter().zip(&right) {
        writer.write_sample(*l).expect("sample");
        writer.write_sample(*r).expect("sample");
    }
    writer.finalize().expect("finalize");
    assert_eq!(std::fs::read(&path).expect("read"), expected.into_inner());
}

#[test]
fn an_existing_file_is_never_overwritten() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("taken.wav");
    std::fs::write(&path, b"an earlier call").expect("write");
    let err = Recorder::create(&path, Instant::now()).expect_err("exists");
    assert!(matches!(err, Error::Create { .. }), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), b"an earlier call");
}
