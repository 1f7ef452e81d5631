//! The location service: which contacts an address-of-record is reachable
//! at (RFC 3261 §10.3), behind the [`Locator`] trait so a shared store can
//! replace the in-memory one for several PBX nodes.

use dashmap::DashMap;
use std::future::Future;
use std::time::SystemTime;
use trunkline_transaction::Peer;

/// One contact of an address-of-record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The address-of-record, `sip:user@domain`.
    pub aor: String,
    /// The contact URI as the phone sent it.
    pub contact: String,
    /// The `q` parameter in thousandths, if given.
    pub q: Option<u16>,
    /// When the binding lapses.
    pub expires_at: SystemTime,
    /// The Call-ID and CSeq of the REGISTER that set it (§10.3 step 7).
    pub call_id: String,
    /// See `call_id`.
    pub cseq: u32,
    /// The Path headers (RFC 3327), each a `<uri>;params` entry: requests
    /// to this contact carry them, in order, as Route headers (§5.3).
    pub path: Vec<String>,
    /// Where the REGISTER came from: transport, address, connection. A
    /// phone behind NAT is reached here, not at its Contact.
    pub flow: Peer,
    /// The User-Agent header, if any.
    pub user_agent: Option<String>,
}

impl Binding {
    /// Seconds left at `now`, 0 once lapsed.
    pub fn remaining(&self, now: SystemTime) -> u32 {
        self.expires_at
            .duration_since(now)
            .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
    }
}

/// What one REGISTER asks of the store, applied atomically.
#[derive(Debug, Clone)]
pub struct Update {
    /// The REGISTER's Call-ID.
    pub call_id: String,
    /// The REGISTER's CSeq number.
    pub cseq: u32,
    /// The time of the request.
    pub now: SystemTime,
    /// What to change.
    pub change: Change,
}

/// The change a REGISTER makes.
#[derive(Debug, Clone)]
pub enum Change {
    /// Add or refresh these bindings; one whose `expires_at` is not after
    /// `now` is removed instead (an `expires=0` contact).
    Set(Vec<Binding>),
    /// `Contact: *` with `Expires: 0`: remove every binding.
    RemoveAll,
}

/// What an update did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Every binding of the address-of-record afterwards.
    pub current: Vec<Binding>,
    /// Bindings that did not exist before.
    pub added: Vec<Binding>,
    /// Bindings removed by the request.
    pub removed: Vec<Binding>,
}

/// Why the store refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocatorError {
    /// A binding with the same Call-ID has an equal or higher CSeq: the
    /// request is stale or out of order (§10.3 step 7).
    #[error("CSeq out of order for this Call-ID")]
    OutOfOrder,
    /// The store cannot take more bindings for this address-of-record.
    #[error("too many contacts for one address-of-record")]
    TooManyContacts,
    /// The store itself failed.
    #[error("location store: {0}")]
    Store(String),
}

/// The location service. Every method is one atomic operation, so a
/// shared store (Redis, with a script per method) can implement it.
pub trait Locator: Send + Sync {
    /// The live bindings of `aor`, best `q` first.
    fn lookup(
        &self,
        aor: &str,
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<Binding>, LocatorError>> + Send;

    /// Applies one REGISTER's change to `aor` (§10.3 steps 6–8).
    fn update(
        &self,
        aor: &str,
        update: Update,
    ) -> impl Future<Output = Result<Applied, LocatorError>> + Send;

    /// Removes every binding lapsed at `now` and returns them.
    fn expire(
        &self,
        now: SystemTime,
    ) -> impl Future<Output = Result<Vec<Binding>, LocatorError>> + Send;

    /// Every live binding, from `offset`, at most `limit`.
    fn list(
        &self,
        offset: usize,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Binding>, LocatorError>> + Send;
}

/// The in-memory location service: a concurrent map from address-of-record
/// to its bindings. Sized for a million bindings: one small vector per
/// address-of-record, no other index.
#[derive(Debug)]
pub struct MemoryLocator {
    bindings: DashMap<String, Vec<Binding>>,
    max_contacts: usize,
}

impl Default for MemoryLocator {
    fn default() -> Self {
        MemoryLocator::new(10)
    }
}

impl MemoryLocator {
    /// An empty store allowing `max_contacts` per address-of-record.
    pub fn new(max_contacts: usize) -> MemoryLocator {
        MemoryLocator {
            bindings: DashMap::new(),
            max_contacts,
        }
    }

    /// How many bindings it holds, lapsed or not.
    pub fn len(&self) -> usize {
        self.bindings.iter().map(|e| e.value().len()).sum()
    }

    /// Whether it holds no binding.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    fn apply(&self, aor: &str, update: Update) -> Result<Applied, LocatorError> {
        let mut entry = self.bindings.entry(aor.to_owned()).or_default();
        let existing = entry.value_mut();
        let now = update.now;
        let mut applied = Applied::default();
        // Lapsed bindings are gone, whatever the sweep's timing.
        existing.retain(|b| b.expires_at > now);
        let out_of_order = |b: &Binding| b.call_id == update.call_id && update.cseq <= b.cseq;
        match update.change {
            Change::RemoveAll => {
                if existing.iter().any(out_of_order) {
                    return Err(LocatorError::OutOfOrder);
                }
                applied.removed = std::mem::take(existing);
            }
            Change::Set(bindings) => {
                let touched = |b: &Binding| bindings.iter().any(|n| n.contact == b.contact);
                if existing.iter().filter(|b| touched(b)).any(out_of_order) {
                    return Err(LocatorError::OutOfOrder);
                }
                let mut next = existing.clone();
                for binding in bindings {
                    let position = next.iter().position(|b| b.contact == binding.contact);
                    match (position, binding.expires_at > now) {
                        (Some(at), true) => next[at] = binding,
                        (Some(at), false) => applied.removed.push(next.remove(at)),
                        (None, true) => {
                            applied.added.push(binding.clone());
                            next.push(binding);
                        }
                        (None, false) => {}
                    }
                }
                if next.len() > self.max_contacts {
                    return Err(LocatorError::TooManyContacts);
                }
                // Most phones have one binding: no spare capacity kept
                // per address-of-record (a million of them add up).
                next.shrink_to_fit();
                *existing = next;
            }
        }
        sort_by_q(existing);
        applied.current = existing.clone();
        let empty = existing.is_empty();
        drop(entry);
        if empty {
            self.bindings.remove_if(aor, |_, v| v.is_empty());
        }
        Ok(applied)
    }
}

/// Best first: highest `q`, absent `q` counting as 1.0 (RFC 3261 §16.6).
fn sort_by_q(bindings: &mut [Binding]) {
    bindings.sort_by_key(|b| std::cmp::Reverse(b.q.unwrap_or(1000)));
}

impl Locator for MemoryLocator {
    async fn lookup(&self, aor: &str, now: SystemTime) -> Result<Vec<Binding>, LocatorError> {
        Ok(self
            .bindings
            .get(aor)
            .map(|b| b.iter().filter(|b| b.expires_at > now).cloned().collect())
            .unwrap_or_default())
    }

    async fn update(&self, aor: &str, update: Update) -> Result<Applied, LocatorError> {
        self.apply(aor, update)
    }

    async fn expire(&self, now: SystemTime) -> Result<Vec<Binding>, LocatorError> {
        let mut lapsed = Vec::new();
        self.bindings.retain(|_, bindings| {
            bindings.retain(|b| {
                let live = b.expires_at > now;
                if !live {
                    lapsed.push(b.clone());
                }
                live
            });
            !bindings.is_empty()
        });
        Ok(lapsed)
    }

    async fn list(&self, offset: usize, limit: usize) -> Result<Vec<Binding>, LocatorError> {
        Ok(self
            .bindings
            .iter()
            .flat_map(|e| e.value().clone())
            .skip(offset)
            .take(limit)
            .collect())
    }
}
