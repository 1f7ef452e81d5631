//! Per-call recording for Trunkline: the RTP of a call's two legs, as the
//! relay's tap sees it, into one WAV file (8 kHz, 16-bit PCM, stereo: the
//! caller left, the callee right): `hound`'s header, the samples
//! interleaved straight into a write buffer.
//!
//! - **Sans-IO in time.** A [`Recorder`] never reads a clock: every packet
//!   comes with its arrival time, and the recording starts at an `Instant`
//!   given at creation. It writes its own file and nothing else.
//! - **Aligned.** A leg's first packet is placed where it arrived relative
//!   to the start, so a leg that starts later is offset by the wall time it
//!   missed; from then on each leg follows its own RTP timestamps (8 kHz,
//!   across the 32-bit wrap), so jitter does not move audio. A leg whose
//!   timestamps disagree with its packets' arrival by more than
//!   [`RecorderConfig::resync`] (a timestamp jump, a new SSRC) is placed by
//!   arrival again.
//! - **Gaps are silence**: lost packets, silence suppression, comfort noise
//!   and RFC 4733 events (counted, not decoded), a leg that has not started
//!   or has stopped.
//! - **Bounded memory.** Audio waits in a fixed ring per leg for
//!   [`RecorderConfig::jitter`] so late packets can still land, then goes
//!   to the file. Time, not the other leg, moves the write position: a leg
//!   that stops sending never makes the other pile up.
//! - **Crash repair.** A recording cut off by a crash has a header whose
//!   sizes say nothing was written; [`repair`] and [`repair_dir`] (run at
//!   startup) fix the sizes from the file's length.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use trunkline_recording::{Recorder, RtpMedia, Side};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("call.wav");
//! let start = Instant::now();
//! let mut recorder = Recorder::create(&path, start)?;
//! let silence = [0xffu8; 160]; // PCMU
//! for n in 0..50u16 {
//!     let now = start + Duration::from_millis(20 * u64::from(n));
//!     let media = RtpMedia { timestamp: 160 * u32::from(n), sequence: n, payload_type: 0, payload: &silence };
//!     recorder.push(Side::Caller, now, media)?;
//!     recorder.push(Side::Callee, now, RtpMedia { payload_type: 8, ..media })?;
//! }
//! let summary = recorder.finish(start + Duration::from_secs(1))?;
//! assert_eq!(summary.frames, 8000);
//! assert_eq!(summary.caller.packets, 50);
//! assert_eq!(hound::WavReader::open(&path)?.duration(), 8000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod recorder;
mod repair;

use std::io;
use std::path::PathBuf;

pub use recorder::{Recorder, RecorderConfig, RtpMedia, SideStats, Summary};
pub use repair::{Repair, RepairedFile, repair, repair_dir};

/// The sample rate of G.711 and of every recording.
pub const SAMPLE_RATE: u32 = 8000;

/// A leg of the call, and the channel its audio goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The calling party: the left channel.
    Caller,
    /// The called party: the right channel.
    Callee,
}

/// What went wrong with a recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be created (it may already exist: a recording
    /// never overwrites one).
    #[error("cannot create recording {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Writing the recording failed; the recorder has stopped.
    #[error("writing recording {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: hound::Error,
    },
    /// An earlier write failed, so nothing more is written: the file ends
    /// where that write left it, and [`repair`] makes it readable.
    #[error("recording {path} stopped after a failed write")]
    Stopped {
        /// The file.
        path: PathBuf,
    },
    /// Reading or fixing a file (or listing a directory) for repair failed.
    #[error("repairing {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not a WAV file whose sizes can be fixed.
    #[error("{path} is not a repairable WAV file: {reason}")]
    NotWav {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        reason: &'static str,
    },
}
