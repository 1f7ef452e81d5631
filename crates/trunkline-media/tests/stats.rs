//! Stream statistics per RFC 3550 appendix A on synthetic arrivals: a
//! clean stream, loss, wrap-around, reordering, duplicates, a restart and
//! jitter.

use std::time::{Duration, Instant};
use trunkline_media::stats::StreamStats;

/// 20 ms G.711 packets: sequence `seq`, timestamp 160 per packet, arriving
/// at `t0 + n·20 ms + skew`.
fn feed(stats: &mut StreamStats, t0: Instant, packets: impl IntoIterator<Item = (u16, u64, i64)>) {
    for (seq, n, skew_us) in packets {
        let at = t0 + Duration::from_millis(20 * n);
        let at = if skew_us >= 0 {
            at + Duration::from_micros(skew_us as u64)
        } else {
            at - Duration::from_micros((-skew_us) as u64)
        };
        stats.record(seq, (n as u32).wrapping_mul(160), 172, at);
    }
}

#[test]
fn a_clean_stream_has_no_loss_and_no_jitter() {
    let mut s = StreamStats::new(8000);
    let t0 = Instant::now();
    feed(&mut s, t0, (0..100).map(|n| (1000 + n as u16, n, 0)));
    assert_eq!((s.packets(), s.expected(), s.lost()), (100, 100, 0));
    assert_eq!(s.bytes(), 17_200);
    assert!(s.jitter() < 0.01, "{}", s.jitter());
    assert_eq!(s.last_seen(), Some(t0 + Duration::from_millis(20 * 99)));
}

#[test]
fn gaps_count_as_loss_across_the_sequence_wrap() {
    let mut s = StreamStats::new(8000);
    let t0 = Instant::now();
    // 65530 to 65535 then 0 to 9, with 3 and 7 missing: 16 expected, 14
    // received.
    let seqs: Vec<u16> = (65_530..=65_535)
        .chain(0..10)
        .filter(|s| *s != 3 && *s != 7)
        .collect();
    feed(
        &mut s,
        t0,
        seqs.iter().enumerate().map(|(n, seq)| (*seq, n as u64, 0)),
    );
    assert_eq!(s.extended_max(), 65_536 + 9);
    assert_eq!(s.expected(), 16);
    assert_eq!(s.lost(), 2);
}

#[test]
fn late_and_duplicate_packets_are_not_loss_and_a_restart_is_followed() {
    let mut s = StreamStats::new(8000);
    let t0 = Instant::now();
    feed(
        &mut s,
        t0,
        [(10, 0, 0), (12, 1, 0), (11, 2, 0), (12, 3, 0), (13, 4, 0)],
    );
    assert_eq!((s.expected(), s.lost()), (4, 0));
    // The sender restarts far away: one packet is doubted, two confirm.
    feed(&mut s, t0, [(40_000, 5, 0)]);
    assert_eq!(s.extended_max(), 13, "one far packet is not yet a restart");
    feed(&mut s, t0, [(40_001, 6, 0), (40_002, 7, 0)]);
    assert_eq!(s.extended_max(), 40_002);
    assert_eq!((s.expected(), s.lost()), (2, 0));
}

#[test]
fn jitter_follows_rfc_3550_a8() {
    let mut s = StreamStats::new(8000);
    let t0 = Instant::now();
    // Every other packet 2 ms late: |D| alternates 16 timestamp units; J
    // converges towards 16.
    feed(
        &mut s,
        t0,
        (0..400).map(|n| (n as u16, n, if n % 2 == 1 { 2000 } else { 0 })),
    );
    assert!((s.jitter() - 16.0).abs() < 0.5, "jitter {}", s.jitter());
    assert!(
        (s.jitter_ms() - 2.0).abs() < 0.1,
        "jitter {} ms",
        s.jitter_ms()
    );
}
