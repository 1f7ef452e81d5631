//! Per-stream reception statistics (RFC 3550 appendix A): packets, bytes,
//! extended sequence numbers with wrap-around and restarts (A.1), loss
//! (A.3), interarrival jitter (A.8) and when the stream was last heard.
//! Time is passed in; nothing reads a clock.

use std::time::Instant;

/// A jump this far ahead is a gap, not a restart (A.1's MAX_DROPOUT).
const MAX_DROPOUT: u16 = 3000;
/// Packets this far behind are late, not a restart (A.1's MAX_MISORDER).
const MAX_MISORDER: u16 = 100;

/// What the receiving side of one RTP stream has seen.
#[derive(Debug, Clone)]
pub struct StreamStats {
    clock_rate: u32,
    packets: u64,
    bytes: u64,
    /// Counted for loss: packets in sequence, not the ones of a restart
    /// being confirmed.
    received: u64,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    /// A large jump seen once: a second packet following it means the
    /// sender restarted its sequence.
    bad_seq: Option<u16>,
    epoch: Option<Instant>,
    last_transit: Option<f64>,
    jitter: f64,
    last_seen: Option<Instant>,
}

impl StreamStats {
    /// Statistics for a stream whose RTP clock runs at `clock_rate` Hz
    /// (8000 for G.711).
    pub fn new(clock_rate: u32) -> StreamStats {
        StreamStats {
            clock_rate: clock_rate.max(1),
            packets: 0,
            bytes: 0,
            received: 0,
            base_seq: 0,
            max_seq: 0,
            cycles: 0,
            bad_seq: None,
            epoch: None,
            last_transit: None,
            jitter: 0.0,
            last_seen: None,
        }
    }

    fn restart(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.cycles = 0;
        self.received = 0;
        self.bad_seq = None;
    }

    /// Records a packet with sequence number `seq` and RTP `timestamp`,
    /// `bytes` long, arrived at `arrival`.
    pub fn record(&mut self, seq: u16, timestamp: u32, bytes: usize, arrival: Instant) {
        self.packets += 1;
        self.bytes += bytes as u64;
        self.last_seen = Some(arrival);
        if self.packets == 1 {
            self.restart(seq);
        } else {
            let delta = seq.wrapping_sub(self.max_seq);
            if delta < MAX_DROPOUT {
                if seq < self.max_seq {
                    self.cycles += 1 << 16;
                }
                self.max_seq = seq;
            } else if delta <= u16::MAX - MAX_MISORDER {
                // A very large jump: a restart if the next packet follows it.
                if self.bad_seq == Some(seq) {
                    self.restart(seq);
                } else {
                    self.bad_seq = Some(seq.wrapping_add(1));
                    return;
                }
            }
            // Otherwise a duplicate or a late packet: counted, no move.
        }
        self.received += 1;
        self.update_jitter(timestamp, arrival);
    }

    /// RFC 3550 A.8: J += (|D| − J) / 16, in timestamp units.
    fn update_jitter(&mut self, timestamp: u32, arrival: Instant) {
        let epoch = *self.epoch.get_or_insert(arrival);
        let arrival_units =
            arrival.duration_since(epoch).as_secs_f64() * f64::from(self.clock_rate);
        let transit = arrival_units - f64::from(timestamp);
        if let Some(last) = self.last_transit {
            // The timestamp wraps at 2^32: take the difference modulo it.
            let mut d = (transit - last).abs();
            if d > f64::from(u32::MAX) / 2.0 {
                d = (d - f64::from(u32::MAX) - 1.0).abs();
            }
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// Packets seen, including duplicates.
    pub fn packets(&self) -> u64 {
        self.packets
    }
    /// Bytes seen.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
    /// The highest sequence number, extended with its wrap count.
    pub fn extended_max(&self) -> u32 {
        self.cycles + u32::from(self.max_seq)
    }
    /// Packets expected since the first (or the last restart).
    pub fn expected(&self) -> u64 {
        if self.packets == 0 {
            return 0;
        }
        u64::from(self.extended_max()) + 1 - u64::from(self.base_seq)
    }
    /// Packets lost: expected less received, never negative (duplicates
    /// can make the raw difference so).
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }
    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }
    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / f64::from(self.clock_rate)
    }
    /// When the last packet arrived.
    pub fn last_seen(&self) -> Option<Instant> {
        self.last_seen
    }
}
