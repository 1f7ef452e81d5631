//! The call records' writer: one thread that stores finished records in
//! batches, so that many calls ending together cost one transaction (and
//! one disk sync) rather than one each.
//!
//! Group commit: once a record arrives the writer waits [`LINGER`] for
//! others before it commits, as PostgreSQL's `commit_delay` does. Every
//! record is still synced to disk before its call hears it is stored
//! (`synchronous = FULL` stays); only the number of syncs changes. Under
//! load a commit with its sync costs about as much CPU as a few hundred
//! records, so one per call (what a busy writer got without the wait, the
//! records trickling in one by one) spent more of Trunkline's CPU on
//! storing records than on the calls' signalling.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use trunkline_cdr::{Cdr, CdrStore};

/// Records waiting for the writer; past it, a finishing call waits.
const QUEUE: usize = 4096;
/// The most records in one transaction.
const BATCH: usize = 256;
/// How long the first record of a batch waits for others: what a call's
/// end (not its signalling: the last BYE was answered before) is delayed.
const LINGER: Duration = Duration::from_millis(20);

/// A record and who waits for it to be stored.
type Pending = (Cdr, oneshot::Sender<()>);

/// The way to the writer thread, which ends when this is dropped, once
/// every record sent is stored.
#[derive(Debug, Clone)]
pub(crate) struct Records {
    queue: mpsc::Sender<Pending>,
}

impl Records {
    /// Starts the writer over `store`.
    pub(crate) fn start(store: Arc<dyn CdrStore>) -> std::io::Result<Records> {
        let (queue, pending) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("cdr-writer".into())
            .spawn(move || write(store.as_ref(), pending))?;
        Ok(Records { queue })
    }

    /// Stores `cdr`; returns once it is (or once storing it failed, which
    /// is logged: a call never waits for ever on its record).
    pub(crate) async fn store(&self, cdr: Cdr) {
        let (stored, done) = oneshot::channel();
        let id = cdr.id.clone();
        if self.queue.send((cdr, stored)).await.is_err() {
            tracing::error!(
                cdr = id.as_str(),
                "call record not stored: the writer has stopped"
            );
            return;
        }
        let _ = done.await;
    }
}

/// Takes what is waiting, up to a batch, and stores it in one go.
fn write(store: &dyn CdrStore, mut pending: mpsc::Receiver<Pending>) {
    let mut records = Vec::with_capacity(BATCH);
    let mut waiting = Vec::with_capacity(BATCH);
    while let Some(first) = pending.blocking_recv() {
        if pending.len() + 1 < BATCH {
            std::thread::sleep(LINGER);
        }
        let mut next = Some(first);
        while let Some((cdr, stored)) = next {
            records.push(cdr);
            waiting.push(stored);
            next = if records.len() < BATCH {
                pending.try_recv().ok()
            } else {
                None
            };
        }
        if let Err(e) = store.insert_batch(&records) {
            // One bad record (a duplicate id, say) must not take the
            // others down with it: store them one by one.
            tracing::warn!(
                records = records.len(),
                "batch of call records refused, storing one by one: {e}"
            );
            for cdr in &records {
                if let Err(e) = store.insert(cdr) {
                    tracing::error!(cdr = cdr.id.as_str(), "call record not stored: {e}");
                }
            }
        }
        records.clear();
        for stored in waiting.drain(..) {
            let _ = stored.send(());
        }
    }
}
