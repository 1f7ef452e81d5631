//! The durable outbox: deliveries are stored in SQLite before any attempt,
//! and one background task per hook sends them in order until each is
//! delivered or given up.

mod store;

use crate::payload::{DeliveryId, Payload};
use crate::{Client, Error, Hook};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store::{Pending, Store};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How long a hook's task waits after the database itself failed before
/// reading it again.
const DATABASE_RETRY: Duration = Duration::from_secs(1);

/// Where the outbox keeps its deliveries, how many it may keep, and the
/// hooks it delivers to.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// The SQLite file; created if missing, reopened with its deliveries
    /// otherwise.
    pub path: PathBuf,
    /// The most deliveries kept at once, waiting and dead together;
    /// [`Outbox::enqueue`] refuses more. 100,000 by default.
    pub max_rows: u64,
    /// The hooks by the names deliveries are enqueued under.
    pub hooks: BTreeMap<String, Hook>,
}

impl OutboxConfig {
    /// The default [`max_rows`](OutboxConfig::max_rows).
    pub const DEFAULT_MAX_ROWS: u64 = 100_000;

    /// An outbox at `path` with the default limit and no hooks yet.
    pub fn new(path: impl Into<PathBuf>) -> OutboxConfig {
        OutboxConfig {
            path: path.into(),
            max_rows: OutboxConfig::DEFAULT_MAX_ROWS,
            hooks: BTreeMap::new(),
        }
    }
}

/// The outbox's counters, for metrics: totals since it was opened, and the
/// rows it holds now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Deliveries a receiver accepted (2xx).
    pub delivered: u64,
    /// Attempts that failed, whatever became of their delivery.
    pub failed_attempts: u64,
    /// Deliveries moved to the dead letters: refused for good (a 4xx other
    /// than 408 and 429, an unreadable recording) or given up after the
    /// hook's retry policy ran out.
    pub dead_lettered: u64,
    /// Deliveries refused because the outbox was full.
    pub refused_full: u64,
    /// Deliveries waiting now.
    pub depth: u64,
    /// Dead letters kept now.
    pub dead: u64,
}

/// The durable outbox. See the [crate documentation](crate#the-outbox).
#[derive(Debug)]
pub struct Outbox {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
}

/// What the handle and the hooks' tasks share.
#[derive(Debug)]
struct Shared {
    store: Mutex<Store>,
    max_rows: u64,
    /// Wakes a hook's idle task when a delivery is enqueued for it.
    wake: HashMap<String, Notify>,
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    dead_lettered: AtomicU64,
    refused_full: AtomicU64,
    /// Rows by state, changed only with the store locked.
    pending: AtomicU64,
    dead: AtomicU64,
}

impl Outbox {
    /// Opens the outbox at `config.path` (on the calling thread) and starts
    /// one task per hook on the current tokio runtime; deliveries left from
    /// an earlier run resume at once, in order. Deliveries stored for a
    /// hook that is no longer configured wait, and are logged.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn open(config: OutboxConfig, client: Client) -> Result<Outbox, Error> {
        let store = Store::open(&config.path)?;
        let counts = store.counts()?;
        for (hook, waiting) in store.pending_by_hook()? {
            if !config.hooks.contains_key(&hook) {
                tracing::warn!(
                    hook,
                    waiting,
                    "webhook deliveries wait for a hook that is not configured"
                );
            }
        }
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            max_rows: config.max_rows,
            wake: config
                .hooks
                .keys()
                .map(|name| (name.clone(), Notify::new()))
                .collect(),
            delivered: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
            pending: AtomicU64::new(counts.pending),
            dead: AtomicU64::new(counts.dead),
        });
        let (stop, stopped) = watch::channel(false);
        let workers = config
            .hooks
            .into_iter()
            .map(|(name, hook)| {
                let worker = HookWorker {
                    shared: Arc::clone(&shared),
                    client: client.clone(),
                    name,
                    hook,
                    stop: stopped.clone(),
                };
                tokio::spawn(worker.run())
            })
            .collect();
        Ok(Outbox {
            shared,
            stop,
            workers,
        })
    }

    /// Stores a delivery to the hook called `hook` (synced to disk before
    /// this returns) and wakes its task. Fails if no such hook is
    /// configured or the outbox is full: the delivery is then not stored,
    /// and the caller decides what to do with it.
    pub async fn enqueue(&self, hook: &str, payload: Payload) -> Result<DeliveryId, Error> {
        let Some(wake) = self.shared.wake.get(hook) else {
            return Err(Error::UnknownHook(hook.to_owned()));
        };
        let delivery = DeliveryId::generate();
        let id = delivery.clone();
        let name = hook.to_owned();
        self.shared
            .with_store(move |shared, store| {
                let held =
                    shared.pending.load(Ordering::Relaxed) + shared.dead.load(Ordering::Relaxed);
                if held >= shared.max_rows {
                    shared.refused_full.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(hook = name, held, "webhook outbox full: delivery refused");
                    return Err(Error::OutboxFull {
                        hook: name,
                        max_rows: shared.max_rows,
                    });
                }
                store.insert(&name, &id, &payload, now_ms())?;
                shared.pending.fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
            .await?;
        wake.notify_one();
        Ok(delivery)
    }

    /// The counters now.
    pub fn stats(&self) -> OutboxStats {
        let shared = &self.shared;
        OutboxStats {
            delivered: shared.delivered.load(Ordering::Relaxed),
            failed_attempts: shared.failed_attempts.load(Ordering::Relaxed),
            dead_lettered: shared.dead_lettered.load(Ordering::Relaxed),
            refused_full: shared.refused_full.load(Ordering::Relaxed),
            depth: shared.pending.load(Ordering::Relaxed),
            dead: shared.dead.load(Ordering::Relaxed),
        }
    }

    /// Stops the hooks' tasks and waits for them: an attempt under way
    /// finishes (within its hook's timeout) and its outcome is stored;
    /// waiting deliveries stay for the next [`open`](Outbox::open).
    /// Dropping the outbox stops the tasks the same way without waiting.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        for worker in std::mem::take(&mut self.workers) {
            if let Err(e) = worker.await {
                tracing::error!(error = %e, "a webhook outbox task failed");
            }
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        // A panic while the lock was held cannot leave a transaction open
        // (each statement commits alone), so the store is still good.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `work` on the store on a blocking thread: SQLite waits for the
    /// disk on every commit.
    async fn with_store<T: Send + 'static>(
        self: &Arc<Shared>,
        work: impl FnOnce(&Shared, &Store) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let shared = Arc::clone(self);
        tokio::task::spawn_blocking(move || work(&shared, &shared.lock()))
            .await
            .map_err(|_| Error::Stopped)?
    }
}

/// One hook's task: sends its deliveries one at a time, oldest first, so
/// a receiver sees them in the order they happened.
struct HookWorker {
    shared: Arc<Shared>,
    client: Client,
    name: String,
    hook: Hook,
    stop: watch::Receiver<bool>,
}

impl HookWorker {
    async fn run(mut self) {
        loop {
            if *self.stop.borrow() {
                return;
            }
            let name = self.name.clone();
            match self
                .shared
                .with_store(move |_, store| store.head(&name))
                .await
            {
                Ok(Some(next)) => {
                    let due_in = next.next_attempt_ms.saturating_sub(now_ms());
                    if due_in > 0 {
                        let wait = Duration::from_millis(due_in.unsigned_abs());
                        if !self.pause(wait).await {
                            return;
                        }
                        continue;
                    }
                    let outcome = self.attempt(&next).await;
                    if let Err(e) = self.settle(next, outcome).await {
                        // The row is unchanged and will be sent again: a
                        // receiver may see it twice, never zero times.
                        tracing::error!(hook = self.name, error = %e, "webhook outbox: outcome not stored");
                    }
                }
                Ok(None) => {
                    let wake = &self.shared.wake[&self.name];
                    tokio::select! {
                        () = wake.notified() => {}
                        _ = self.stop.changed() => return,
                    }
                }
                Err(e) => {
                    tracing::error!(hook = self.name, error = %e, "webhook outbox: cannot read");
                    if !self.pause(DATABASE_RETRY).await {
                        return;
                    }
                }
            }
        }
    }

    /// Waits `wait`; false if told to stop meanwhile.
    async fn pause(&mut self, wait: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            _ = self.stop.changed() => false,
        }
    }

    async fn attempt(&self, next: &Pending) -> Result<(), Error> {
        let (content_type, body) = next.payload.encode(&next.delivery).await?;
        self.client
            .post(&self.hook, &next.delivery, &content_type, body)
            .await
            .map(drop)
    }

    /// Stores what became of an attempt: delivered rows go, refused ones
    /// are dead-lettered, others wait for their next try.
    async fn settle(&self, next: Pending, outcome: Result<(), Error>) -> Result<(), Error> {
        let hook = self.name.clone();
        let retry = *self.hook.retry();
        self.shared
            .with_store(move |shared, store| {
                let failure = match outcome {
                    Ok(()) => {
                        store.delete(next.row)?;
                        shared.pending.fetch_sub(1, Ordering::Relaxed);
                        shared.delivered.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(hook, delivery = %next.delivery, "webhook delivered");
                        return Ok(());
                    }
                    Err(failure) => failure,
                };
                shared.failed_attempts.fetch_add(1, Ordering::Relaxed);
                let attempts = next.attempts.saturating_add(1);
                let now = now_ms();
                let age = Duration::from_millis(now.saturating_sub(next.created_ms).unsigned_abs());
                let given_up = attempts >= retry.max_attempts || age >= retry.max_age;
                let reason = failure.to_string();
                if failure.is_permanent() || given_up {
                    store.bury(next.row, attempts, &reason)?;
                    shared.pending.fetch_sub(1, Ordering::Relaxed);
                    shared.dead.fetch_add(1, Ordering::Relaxed);
                    shared.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(hook, delivery = %next.delivery, attempts, error = reason, "webhook dead-lettered");
                } else {
                    let delay = retry.delay_after(attempts);
                    let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                    store.reschedule(next.row, attempts, now.saturating_add(delay_ms), &reason)?;
                    tracing::warn!(hook, delivery = %next.delivery, attempts, retry_in = ?delay, error = reason, "webhook attempt failed");
                }
                Ok(())
            })
            .await
    }
}

/// Milliseconds since the Unix epoch, as the store keeps times.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
