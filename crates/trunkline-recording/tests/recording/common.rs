//! What the recording tests share: tones as RTP streams, reading a WAV
//! back, and measuring which frequency a channel carries.

use std::path::Path;
use std::time::{Duration, Instant};
use trunkline_media::g711;
use trunkline_recording::{Recorder, RtpMedia, Side};

/// G.711 laws, by payload type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Law {
    Mu,
    A,
}

impl Law {
    pub(crate) fn payload_type(self) -> u8 {
        match self {
            Law::Mu => 0,
            Law::A => 8,
        }
    }

    pub(crate) fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Mu => g711::ulaw_encode(sample),
            Law::A => g711::alaw_encode(sample),
        }
    }

    pub(crate) fn decode(self, code: u8) -> i16 {
        match self {
            Law::Mu => g711::ulaw_decode(code),
            Law::A => g711::alaw_decode(code),
        }
    }
}

/// One leg sending a sine tone in 20 ms packets, as its sender would:
/// packet `n` carries samples `160 n ..`, timestamp `ts0 + 160 n`,
/// sequence `seq0 + n`, and arrives `20 n` ms after `first_arrival`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stream {
    pub(crate) side: Side,
    pub(crate) law: Law,
    pub(crate) frequency: f64,
    pub(crate) ts0: u32,
    pub(crate) seq0: u16,
    pub(crate) first_arrival: Duration,
}

/// A packet of a [`Stream`], owned.
#[derive(Debug, Clone)]
pub(crate) struct Packet {
    pub(crate) side: Side,
    pub(crate) arrival: Duration,
    pub(crate) timestamp: u32,
    pub(crate) sequence: u16,
    pub(crate) payload_type: u8,
    pub(crate) payload: Vec<u8>,
}

impl Packet {
    pub(crate) fn media(&self) -> RtpMedia<'_> {
        RtpMedia {
            timestamp: self.timestamp,
            sequence: self.sequence,
            payload_type: self.payload_type,
            payload: &self.payload,
        }
    }

    pub(crate) fn push(&self, recorder: &mut Recorder, start: Instant) {
        recorder
            .push(self.side, start + self.arrival, self.media())
            .expect("push");
    }
}

/// A sine of `frequency` at sample `n`. The phase offset keeps every
/// sample away from zero, so silence in a recording is never the tone.
pub(crate) fn sine(frequency: f64, n: u32) -> i16 {
    let phase = std::f64::consts::TAU * frequency * f64::from(n) / 8000.0 + 0.5;
    (8000.0 * phase.sin()) as i16
}

impl Stream {
    pub(crate) fn packet(&self, n: u32) -> Packet {
        let payload: Vec<u8> = (0..160)
            .map(|i| self.law.encode(sine(self.frequency, 160 * n + i)))
            .collect();
        assert!(
            payload.iter().all(|&c| self.law.decode(c) != 0),
            "the tone must never encode to silence"
        );
        Packet {
            side: self.side,
            arrival: self.first_arrival + Duration::from_millis(20 * u64::from(n)),
            timestamp: self.ts0.wrapping_add(160 * n),
            sequence: self.seq0.wrapping_add(n as u16),
            payload_type: self.law.payload_type(),
            payload,
        }
    }

    /// What packet `n` decodes to.
    pub(crate) fn decoded(&self, n: u32) -> Vec<i16> {
        self.packet(n)
            .payload
            .iter()
            .map(|&c| self.law.decode(c))
            .collect()
    }
}

pub(crate) fn caller_tone() -> Stream {
    Stream {
        side: Side::Caller,
        law: Law::Mu,
        frequency: 400.0,
        ts0: 0x1234_5678,
        seq0: 4321,
        first_arrival: Duration::ZERO,
    }
}

pub(crate) fn callee_tone() -> Stream {
    Stream {
        side: Side::Callee,
        law: Law::A,
        frequency: 1000.0,
        ts0: 0xdead_beef,
        seq0: 65_000,
        first_arrival: Duration::ZERO,
    }
}

/// The two channels of a recording, checked to be 8 kHz 16-bit stereo.
pub(crate) fn read(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path).expect("open WAV");
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    assert_eq!(spec.sample_format, hound::SampleFormat::Int);
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("samples");
    assert_eq!(samples.len() % 2, 0);
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// The power of `frequency` in `samples` (the Goertzel algorithm).
pub(crate) fn goertzel(samples: &[i16], frequency: f64) -> f64 {
    let coefficient = 2.0 * (std::f64::consts::TAU * frequency / 8000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = f64::from(x) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    s1 * s1 + s2 * s2 - coefficient * s1 * s2
}

/// The frequency of a tone from its zero crossings.
pub(crate) fn zero_crossing_frequency(samples: &[i16]) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / 8000.0)
}
