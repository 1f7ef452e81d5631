//! Keeping trunks registered (RFC 3261 §10.2): one task per trunk sends a
//! REGISTER, answers the trunk's digest challenge, refreshes at half the
//! granted expiry, backs off after a failure, and unregisters when
//! stopped. When the trunks change, the registrations of those added,
//! changed or removed start, restart or stop; the others go on.

use crate::address::transport_param;
use crate::trunk::Trunk;
use dashmap::DashMap;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use trunkline_sip::{HeaderName, Message, Method, StatusCode};
use trunkline_transaction::{ClientEvent, Endpoint, Peer, new_tag};

/// How a trunk's registration stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrunkStatus {
    /// The trunk.
    pub name: String,
    /// Whether the trunk holds a live registration of ours.
    pub registered: bool,
    /// When that registration lapses unless refreshed (Unix seconds).
    pub expires_at: Option<u64>,
    /// Why the last attempt failed, if it did.
    pub error: Option<String>,
}

/// Registration states by trunk name, shared by the tasks and the engine.
pub(crate) type Statuses = Arc<DashMap<String, TrunkStatus>>;

/// The running registrations; [`TrunkRegistrations::update`] follows a
/// change of trunks, [`TrunkRegistrations::stop`] unregisters.
#[derive(Debug)]
pub struct TrunkRegistrations {
    endpoint: Endpoint,
    statuses: Statuses,
    /// One task per trunk that registers, with the trunk it registers.
    running: Vec<Running>,
}

/// One trunk's registration task.
#[derive(Debug)]
struct Running {
    trunk: Arc<Trunk>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    /// Unregisters (up to 5 s) and ends the task.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(UNREGISTER_LIMIT + Duration::from_secs(1), self.task).await;
    }
}

/// What [`TrunkRegistrations::update`] did, by trunk name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationChanges {
    /// Registrations started (a trunk added, or one that now registers).
    pub started: Vec<String>,
    /// Registrations started again (the trunk's address, account or
    /// expiry changed): unregistered with the old, registered anew.
    pub restarted: Vec<String>,
    /// Registrations stopped (unregistered): the trunk is gone or no
    /// longer registers.
    pub stopped: Vec<String>,
}

/// Whether a registration with `old` still serves `new`: the same
/// registrar, account and expiry. ACLs and DIDs do not matter to it.
fn registers_alike(old: &Trunk, new: &Trunk) -> bool {
    old.register == new.register
        && old.registrar_uri() == new.registrar_uri()
        && old.credentials == new.credentials
        && old.register_expires == new.register_expires
}

impl TrunkRegistrations {
    pub(crate) fn start(endpoint: &Endpoint, trunks: &[Arc<Trunk>], statuses: &Statuses) -> Self {
        let mut registrations = TrunkRegistrations {
            endpoint: endpoint.clone(),
            statuses: statuses.clone(),
            running: Vec::new(),
        };
        for trunk in trunks.iter().filter(|trunk| trunk.register) {
            registrations.spawn(trunk.clone());
        }
        registrations
    }

    fn spawn(&mut self, trunk: Arc<Trunk>) {
        let (stop, stopped) = watch::channel(false);
        let registration = Registration {
            endpoint: self.endpoint.clone(),
            trunk: trunk.clone(),
            call_id: format!("{}@trunkline", new_tag()),
            from_tag: new_tag(),
            cseq: 0,
        };
        let task = tokio::spawn(registration.keep(self.statuses.clone(), stopped));
        self.running.push(Running { trunk, stop, task });
    }

    /// Follows a change of trunks (usually what was just given to
    /// [`crate::Engine::set_trunks`]): a trunk that registers and had no
    /// registration starts one; one whose registrar, account or expiry
    /// changed is unregistered and registered again; one removed or no
    /// longer registering is unregistered (up to 5 s each) and leaves the
    /// statuses. The others' registrations go on untouched.
    pub async fn update(&mut self, trunks: &[Arc<Trunk>]) -> RegistrationChanges {
        let mut changes = RegistrationChanges::default();
        let mut kept = Vec::new();
        for running in std::mem::take(&mut self.running) {
            let name = running.trunk.name.clone();
            match trunks.iter().find(|t| t.name == name) {
                Some(new) if registers_alike(&running.trunk, new) => {
                    // The task keeps its own Arc: the registration is the
                    // same whatever else changed.
                    kept.push(running);
                }
                Some(new) if new.register => {
                    running.stop().await;
                    changes.restarted.push(name);
                }
                _ => {
                    running.stop().await;
                    self.statuses.remove(&name);
                    changes.stopped.push(name);
                }
            }
        }
        self.running = kept;
        for trunk in trunks.iter().filter(|trunk| trunk.register) {
            if self.running.iter().any(|r| r.trunk.name == trunk.name) {
                continue;
            }
            if !changes.restarted.contains(&trunk.name) {
                changes.started.push(trunk.name.clone());
            }
            self.spawn(trunk.clone());
        }
        changes
    }

    /// Unregisters from every trunk (each given up to 5 s) and ends the
    /// tasks.
    pub async fn stop(self) {
        for running in &self.running {
            let _ = running.stop.send(true);
        }
        for running in self.running {
            let _ =
                tokio::time::timeout(UNREGISTER_LIMIT + Duration::from_secs(1), running.task).await;
        }
    }
}

const UNREGISTER_LIMIT: Duration = Duration::from_secs(5);

/// After the `n`th failure in a row, the wait before trying again:
/// 5 s doubling to 5 min.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(5u64 << failures.saturating_sub(1).min(6)).min(Duration::from_secs(300))
}

/// One trunk's registration: a Call-ID and From tag kept across refreshes,
/// CSeq rising (RFC 3261 §10.2.4).
struct Registration {
    endpoint: Endpoint,
    trunk: Arc<Trunk>,
    call_id: String,
    from_tag: String,
    cseq: u32,
}

impl Registration {
    async fn keep(mut self, statuses: Statuses, mut stop: watch::Receiver<bool>) {
        let name = self.trunk.name.clone();
        let mut failures = 0;
        let mut registered;
        loop {
            let wait = match self.register(self.trunk.register_expires).await {
                Ok(granted) => {
                    failures = 0;
                    registered = granted > 0;
                    let expires_at = SystemTime::now() + Duration::from_secs(granted.into());
                    tracing::info!(trunk = name, expires = granted, "registered with the trunk");
                    let expires_at = registered.then_some(expires_at);
                    statuses.insert(name.clone(), status(&name, expires_at, None));
                    Duration::from_secs(u64::from(granted / 2).max(1))
                }
                Err(why) => {
                    failures += 1;
                    registered = false;
                    tracing::warn!(trunk = name, "registration failed: {why}");
                    statuses.insert(name.clone(), status(&name, None, Some(why)));
                    backoff(failures)
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => break,
            }
        }
        if registered {
            match tokio::time::timeout(UNREGISTER_LIMIT, self.register(0)).await {
                Ok(Ok(_)) => tracing::info!(trunk = name, "unregistered from the trunk"),
                Ok(Err(why)) => tracing::warn!(trunk = name, "unregistering failed: {why}"),
                Err(_) => tracing::warn!(trunk = name, "unregistering timed out"),
            }
        }
        statuses.insert(name.clone(), status(&name, None, None));
    }

    /// One REGISTER asking for `expires` seconds (0 unregisters), with its
    /// challenge answered and a too-brief interval raised; the expiry the
    /// trunk granted.
    async fn register(&mut self, mut expires: u32) -> Result<u32, String> {
        let peer = self
            .trunk
            .peer()
            .await
            .map_err(|e| format!("cannot resolve the trunk: {e}"))?;
        let contact = self.contact(peer)?;
        let mut answer = None;
        // A challenge, a stale nonce, a 423: a few rounds at most.
        for _ in 0..4 {
            let request = self.request(peer, &contact, expires, answer.take())?;
            let mut client = self
                .endpoint
                .send_request(request.clone(), peer)
                .map_err(|e| format!("REGISTER not sent: {e}"))?;
            let response = match client.final_response().await {
                ClientEvent::Response { response, .. } => response,
                ClientEvent::Timeout => return Err("no answer".into()),
            };
            let status = response
                .status()
                .unwrap_or(StatusCode::SERVER_INTERNAL_ERROR);
            match status {
                s if s.is_success() => return Ok(granted(&response, &contact, expires)),
                StatusCode::UNAUTHORIZED | StatusCode::PROXY_AUTHENTICATION_REQUIRED => {
                    let challenged_again = request.header(HeaderName::Authorization).is_some()
                        || request.header(HeaderName::ProxyAuthorization).is_some();
                    if challenged_again && !stale(&response) {
                        return Err(format!("credentials refused ({status})"));
                    }
                    answer = Some(
                        self.trunk
                            .answer(&request, &response)
                            .ok_or("challenged, with no credentials that answer it")?,
                    );
                }
                StatusCode::INTERVAL_TOO_BRIEF => {
                    expires = response.min_expires().ok_or("423 without Min-Expires")?;
                }
                _ => return Err(format!("refused: {status}")),
            }
        }
        Err("too many rounds".into())
    }

    /// Our Contact URI: the account at our listener of the trunk's
    /// transport.
    fn contact(&self, peer: Peer) -> Result<String, String> {
        let local = self
            .endpoint
            .local_addr(peer.transport)
            .ok_or_else(|| format!("no {} listener", peer.transport))?;
        Ok(format!(
            "sip:{}@{local}{}",
            self.user(),
            transport_param(peer.transport)
        ))
    }

    fn user(&self) -> &str {
        self.trunk
            .credentials
            .as_ref()
            .map_or("trunkline", |c| c.username.as_str())
    }

    fn request(
        &mut self,
        peer: Peer,
        contact: &str,
        expires: u32,
        answer: Option<(HeaderName, String)>,
    ) -> Result<Message, String> {
        let via = self
            .endpoint
            .via(peer.transport)
            .ok_or_else(|| format!("no {} listener", peer.transport))?;
        self.cseq += 1;
        let address = self.trunk.address_of(self.user());
        let mut builder = Message::request(Method::Register, self.trunk.registrar_uri())
            .header(HeaderName::Via, via)
            .header(HeaderName::MaxForwards, "70")
            .header(
                HeaderName::From,
                format!("<{address}>;tag={}", self.from_tag),
            )
            .header(HeaderName::To, format!("<{address}>"))
            .header(HeaderName::CallId, self.call_id.as_str())
            .header(HeaderName::CSeq, format!("{} REGISTER", self.cseq))
            .header(HeaderName::Contact, format!("<{contact}>"))
            .header(HeaderName::Expires, expires.to_string());
        if let Some((name, value)) = answer {
            builder = builder.header(name, value);
        }
        builder
            .build()
            .map_err(|e| format!("REGISTER not built: {e}"))
    }
}

/// The expiry a 2xx granted our contact: its `expires` parameter, else
/// the Expires header, else what we asked for (RFC 3261 §10.2.4).
fn granted(response: &Message, contact: &str, asked: u32) -> u32 {
    let ours = response
        .contacts()
        .filter_map(|c| c.address().cloned())
        .find(|address| address.uri().as_str().eq_ignore_ascii_case(contact));
    ours.and_then(|address| address.expires())
        .or_else(|| response.expires())
        .unwrap_or(asked)
}

fn stale(response: &Message) -> bool {
    let stale = |param: Option<&str>| param.is_some_and(|v| v.eq_ignore_ascii_case("true"));
    response
        .www_authenticates()
        .chain(response.proxy_authenticates())
        .any(|challenge| stale(challenge.param("stale")))
}

fn status(name: &str, expires_at: Option<SystemTime>, error: Option<String>) -> TrunkStatus {
    let unix = |at: SystemTime| {
        at.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    TrunkStatus {
        name: name.to_owned(),
        registered: expires_at.is_some(),
        expires_at: expires_at.map(unix),
        error,
    }
}
