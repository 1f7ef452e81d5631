//! Recording a call: the relay session's tap into a WAV file, caller on
//! the left, callee on the right.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use trunkline_media::relay::{Leg, Session, Tapped};
use trunkline_recording::{Recorder, Side};

/// Packets the tap holds while the recorder writes: two seconds of both
/// legs at 50 packets a second.
const TAP_CAPACITY: usize = 200;

/// How often the recorder writes out what its jitter window has passed,
/// when packets stop coming.
const TICK: Duration = Duration::from_millis(100);

/// Starts recording `media` into `path`; the task ends, the file
/// finished, when the session closes (its tap with it).
pub(crate) fn start(media: &Session, path: PathBuf, call_id: String) -> JoinHandle<()> {
    let tap = media.tap(TAP_CAPACITY);
    tokio::spawn(record(tap, path, call_id))
}

async fn record(mut tap: mpsc::Receiver<Tapped>, path: PathBuf, call_id: String) {
    let mut recorder = match Recorder::create(&path, Instant::now()) {
        Ok(recorder) => recorder,
        Err(e) => {
            tracing::error!(call_id, path = %path.display(), "recording not started: {e}");
            return;
        }
    };
    let mut tick = tokio::time::interval(TICK);
    // Writes are small appends to the page cache, done inline: a blocking
    // thread per recorded call would cost more than they do.
    let failed = loop {
        let written = tokio::select! {
            packet = tap.recv() => match packet {
                Some(Tapped { leg, arrival, packet }) => {
                    let side = match leg {
                        Leg::A => Side::Caller,
                        Leg::B => Side::Callee,
                    };
                    recorder.push_rtp(side, arrival, &packet)
                }
                None => break None,
            },
            _ = tick.tick() => recorder.tick(Instant::now()),
        };
        if let Err(e) = written {
            break Some(e);
        }
    };
    if let Some(e) = failed {
        // The file so far stays; the startup repair fixes its header.
        tracing::error!(call_id, path = %path.display(), "recording stopped: {e}");
        return;
    }
    match recorder.finish(Instant::now()) {
        Ok(summary) => tracing::debug!(call_id, frames = summary.frames, "recording finished"),
        Err(e) => tracing::error!(call_id, path = %path.display(), "recording not finished: {e}"),
    }
}
