//! The Trunkline call engine: a back-to-back user agent (B2BUA). Every
//! call has an A leg (the caller's dialog with us) and B legs (our dialogs
//! with the callee's phones or a trunk), each its own SIP dialog; the
//! engine authenticates the caller (or admits a trunk by its source
//! address), finds the callee's registered contacts or the trunk a route
//! names, rings them (all at once, first answer wins and the others are
//! cancelled; or in turn), answers trunks' digest challenges, anchors the
//! media in the RTP relay, passes re-INVITEs (hold) and other in-dialog
//! requests across with the SDP rewritten, and ends both legs together.
//! Every call leaves a call detail record and a trail of [`CallEvent`]s.
//!
//! ```text
//! EndpointEvent ─► Engine::run (dispatcher) ─┬─ REGISTER ─► Registrar
//!                                            ├─ INVITE ──► new call task
//!                                            └─ in dialog, CANCEL ─► its call task
//! call task: auth ─► route ─► fork B legs ─► answer ─► relay both ─► BYE ─► CDR
//! ```
//!
//! The engine knows nothing of HTTP or configuration files; the binary
//! builds an [`EngineConfig`] and hands it the endpoint, the registrar,
//! the relay and the CDR store.

#![forbid(unsafe_code)]

mod active;
mod address;
mod anchor;
mod call;
mod control;
mod record;
mod records;
mod registration;
mod trunk;

pub use active::{ActiveCall, CallState};
pub use address::SipAddress;
pub use control::{CallCommand, CallSide, CommandError, Originate};
pub use registration::{RegistrationChanges, TrunkRegistrations, TrunkStatus};
pub use trunk::{Credentials, Trunk};

use dashmap::DashMap;
use serde::Serialize;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::{broadcast, mpsc};
use trunkline_cdr::{Cdr, CdrStore};
use trunkline_media::relay::Relay;
use trunkline_registrar::{Locator, Registrar, UserBackend};
use trunkline_sip::{HeaderName, Message, Method, StatusCode};
use trunkline_transaction::{DialogId, Endpoint, EndpointEvent, Peer, ServerTxId};

/// What can go wrong setting the engine up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A trunk's URI is not one calls can be sent to.
    #[error("trunk URI {uri:?}: {why}")]
    TrunkUri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        why: String,
    },
}

/// When the engine anchors a call's media in the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaProxy {
    /// When it is needed: a party behind NAT, a trunk (a carrier cannot
    /// reach a phone's own address), or a recorded call.
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never: the phones send media to each other.
    None,
    /// When a party is behind NAT (its SDP address is not where its
    /// signalling comes from).
    Nat,
}

/// How the phones behind a destination are rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// All at once; the first to answer wins, the others are cancelled.
    #[default]
    Parallel,
    /// One after another (a group's members in order, or one extension's
    /// phones in registration order), moving on at a refusal or after the
    /// ring timeout.
    Sequential,
}

/// One destination of a route.
#[derive(Debug, Clone)]
pub enum Target {
    /// An extension's registered phones.
    Extension(String),
    /// A number called through a trunk.
    Trunk {
        /// The trunk.
        trunk: Arc<Trunk>,
        /// The number as the trunk is to see it (rewritten by the route).
        number: String,
    },
    /// A SIP URI, called as it is: `sip:1001@192.0.2.50:5060` (a phone
    /// the router knows), `sip:ivr@198.51.100.7;transport=tcp`.
    Uri(SipAddress),
}

/// Where a call goes, as a [`Router`] decides.
#[derive(Debug, Clone)]
pub struct Routing {
    /// The route's name, for the record (`route/{name}`, or
    /// `trunk/{trunk}` when it goes out through a trunk).
    pub name: String,
    /// The record's destination channel when not the one `name` and the
    /// targets make (`http_router` for the binary's HTTP router).
    pub channel: Option<String>,
    /// What to ring, in order.
    pub targets: Vec<Target>,
    /// How to ring them.
    pub strategy: Strategy,
    /// How long each stage rings; the engine's default if `None`.
    pub ring_timeout: Option<Duration>,
    /// Whether to record, overriding [`EngineConfig::record`].
    pub record: Option<bool>,
    /// When to anchor media, overriding [`EngineConfig::media_proxy`].
    pub media_proxy: Option<MediaProxy>,
    /// Headers added to every INVITE sent to the targets
    /// (`X-Call-Reason: …`). Headers the engine writes itself (Via, From,
    /// To, Call-ID, CSeq, Contact, Max-Forwards, Route, Content-Type,
    /// Content-Length, Authorization) and malformed ones are left out, and
    /// logged.
    pub headers: Vec<(String, String)>,
}

impl Routing {
    /// `name` ringing `targets` at once, with the engine's defaults for the
    /// rest.
    pub fn new(name: impl Into<String>, targets: Vec<Target>) -> Routing {
        Routing {
            name: name.into(),
            channel: None,
            targets,
            strategy: Strategy::Parallel,
            ring_timeout: None,
            record: None,
            media_proxy: None,
            headers: Vec::new(),
        }
    }
}

/// What a [`Router`] is told about a call: the caller is authenticated
/// (an extension) or admitted (a trunk's ACL) before any router hears of
/// it.
#[derive(Debug, Clone)]
pub struct RouteRequest {
    /// The caller's INVITE as received: Call-ID, From, To, Request-URI,
    /// headers, the SDP offer.
    pub invite: Message,
    /// Where it came from.
    pub source: SocketAddr,
    /// The number dialled: the Request-URI's user part.
    pub dialled: String,
    /// The trunk the call comes in from; `None` for an extension's call.
    pub trunk: Option<Arc<Trunk>>,
    /// The calling extension (its user name), or the trunk caller's number.
    pub caller: String,
    /// The extension the engine's own rules ring: the dialled number for
    /// an extension's call, the DID's extension for a trunk's (`None`
    /// when the trunk has no DID for it).
    pub extension: Option<String>,
    /// Whether that extension has phones registered now.
    pub registered: bool,
}

/// A router's answer.
#[derive(Debug, Clone)]
pub enum RouteDecision {
    /// Ring these.
    Route(Routing),
    /// Refuse the call with `status` (a final status, 300 to 699).
    Refuse {
        /// The caller's final response.
        status: StatusCode,
        /// The record's destination channel (who refused).
        channel: Option<String>,
        /// Why, for the record's hangup reason.
        reason: Option<String>,
    },
    /// The engine's own rules: an extension's call to an extension rings
    /// its phones (480 if none is registered), a trunk's call the
    /// extension its DID names (404 without one).
    Default,
}

/// A router's pending answer (the trait stays object-safe).
pub type RouteFuture<'a> = Pin<Box<dyn Future<Output = RouteDecision> + Send + 'a>>;

/// Decides where calls go (static routes, groups, an HTTP router). The
/// engine asks it once per call, after the caller is authenticated and
/// before anything rings; the call waits for the answer, so a router that
/// asks elsewhere bounds its own time.
pub trait Router: Send + Sync + std::fmt::Debug {
    /// Where `call` goes.
    fn route<'a>(&'a self, call: &'a RouteRequest) -> RouteFuture<'a>;
}

/// How the engine runs calls.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The domain of the extensions' addresses (`sip:1001@{domain}`), the
    /// registrar's realm.
    pub domain: String,
    /// How long the callee's phones ring before the call is given up
    /// (`NO ANSWER`). 60 s by default.
    pub ring_timeout: Duration,
    /// When media goes through the relay.
    pub media_proxy: MediaProxy,
    /// Whether calls are recorded (forces anchoring under `auto`).
    pub record: bool,
    /// Where recordings go, one WAV per call named after its record's id;
    /// `None` records nothing even when `record` is set.
    pub recordings: Option<PathBuf>,
    /// How long a request sent on one leg for the other (a BYE, a
    /// re-INVITE) may take before it is given up. 32 s by default (64·T1).
    pub request_timeout: Duration,
    /// Decides where calls go; `None` leaves every call to the engine's
    /// own rules ([`RouteDecision::Default`]).
    pub router: Option<Arc<dyn Router>>,
    /// The trunks: calls from a source one of them admits come in through
    /// it, and [`Engine::register_trunks`] registers with those that ask.
    /// The engine starts with these; [`Engine::set_trunks`] replaces them.
    pub trunks: Vec<Arc<Trunk>>,
    /// Receives every call's record once it is stored (for a CDR push):
    /// the call waits for room in the channel before it stops counting as
    /// active, so a graceful shutdown that waits for the calls finds every
    /// record in the channel.
    pub stored_records: Option<mpsc::Sender<Cdr>>,
}

impl EngineConfig {
    /// Defaults for `domain`.
    pub fn new(domain: impl Into<String>) -> EngineConfig {
        EngineConfig {
            domain: domain.into(),
            ring_timeout: Duration::from_secs(60),
            media_proxy: MediaProxy::Auto,
            record: false,
            recordings: None,
            request_timeout: Duration::from_secs(32),
            router: None,
            trunks: Vec::new(),
            stored_records: None,
        }
    }
}

/// What happens to calls, as the API layer will publish it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CallEvent {
    /// An INVITE was accepted for routing.
    New {
        /// The call (the A leg's Call-ID).
        call_id: String,
        /// Who calls.
        caller: String,
        /// Who is called.
        callee: String,
    },
    /// A callee's phone rings.
    Ringing {
        /// The call.
        call_id: String,
    },
    /// A callee answered.
    Answered {
        /// The call.
        call_id: String,
    },
    /// A transfer's progress: the target rings, answered (the replaced
    /// party is hung up) or failed (the call goes on as it was).
    Transferred {
        /// The call.
        call_id: String,
        /// The party that stays.
        side: CallSide,
        /// Where it goes.
        target: String,
        /// `trying`, `ringing`, `answered` or `failed`.
        progress: TransferProgress,
        /// The target's final SIP status, once there is one.
        sip_status: Option<u16>,
    },
    /// One side put the call on hold, or took it off.
    Held {
        /// The call.
        call_id: String,
        /// On hold (`true`) or resumed.
        held: bool,
    },
    /// The call ended, answered or not.
    Ended {
        /// The call.
        call_id: String,
        /// `ANSWERED`, `NO ANSWER`, `BUSY` or `FAILED`.
        disposition: String,
        /// The final SIP status, if there was one.
        sip_status: Option<u16>,
    },
}

/// How far a transfer got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferProgress {
    /// The target's INVITE went out.
    Trying,
    /// The target rings.
    Ringing,
    /// The target answered and replaced the other party.
    Answered,
    /// The target refused or did not answer; nothing changed.
    Failed,
}

/// What the dispatcher hands a call task.
#[derive(Debug)]
// Nearly every input is a request; boxing it would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum CallInput {
    /// A request in one of the call's dialogs (an ACK has no `tx`).
    Request {
        tx: Option<ServerTxId>,
        request: Message,
        peer: Peer,
        dialog: DialogId,
    },
    /// The caller cancelled the INVITE.
    Cancelled,
    /// The caller never acknowledged our 2xx; the endpoint hung up on it.
    AckTimeout,
    /// A dialog of the call ended.
    DialogEnded(DialogId),
    /// A command from the API.
    Command(control::Order),
    /// Let this party go to another call (an attended transfer).
    HandOver {
        party: call::Handed,
        done: tokio::sync::oneshot::Sender<Result<call::HandedLeg, CommandError>>,
    },
    /// Take a party another call let go.
    Join(Box<call::Joining>),
    /// Name the dialog of the party that is not `side` (an attended
    /// transfer's INVITE with `Replaces` will take its place).
    Replaceable {
        side: CallSide,
        done: tokio::sync::oneshot::Sender<Result<DialogId, CommandError>>,
    },
    /// Send a party a REFER with `Replaces` (an attended transfer).
    Refer(Box<call::ReferOrder>),
    /// An INVITE with `Replaces` naming one of the call's dialogs.
    Replace(Box<call::Replacing>),
}

/// The figures the health check reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Calls in progress (ringing or answered).
    pub active_calls: u64,
    /// Calls since start.
    pub calls: u64,
    /// Dialogs whose requests the engine routes to a call: two or more
    /// per call in progress, none once every call has ended.
    pub dialogs: u64,
}

struct Shared<L, U> {
    config: EngineConfig,
    endpoint: Endpoint,
    registrar: Arc<Registrar<L, U>>,
    relay: Option<Relay>,
    records: Option<records::Records>,
    events: broadcast::Sender<CallEvent>,
    /// The A leg's INVITE transaction → its call (CANCEL, ACK timeout).
    by_tx: DashMap<ServerTxId, mpsc::Sender<CallInput>>,
    /// Each dialog of a call → the call.
    by_dialog: DashMap<DialogId, mpsc::Sender<CallInput>>,
    /// The dialogs a REFER of ours offered to replace: the only ones an
    /// INVITE with `Replaces` may name (no phone can take over a call by
    /// guessing its tags).
    offered_replaces: Arc<DashMap<DialogId, ()>>,
    accepting: AtomicBool,
    active: AtomicU64,
    calls: AtomicU64,
    /// A summary of each call in progress, by record id.
    active_calls: active::ActiveCalls,
    /// Each call in progress by its Call-IDs and record id, for commands.
    controls: control::Controls,
    trunk_statuses: registration::Statuses,
    /// The trunks in force: [`EngineConfig::trunks`] until
    /// [`Engine::set_trunks`] replaces them. A call takes what it needs
    /// (its trunk's `Arc`) when it starts, so a change never reaches it.
    trunks: RwLock<Arc<Vec<Arc<Trunk>>>>,
}

impl<L, U> Shared<L, U> {
    /// The trunks in force now.
    fn trunks(&self) -> Arc<Vec<Arc<Trunk>>> {
        self.trunks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The call engine: cheap to clone.
pub struct Engine<L, U> {
    shared: Arc<Shared<L, U>>,
}

impl<L, U> Clone for Engine<L, U> {
    fn clone(&self) -> Self {
        Engine {
            shared: self.shared.clone(),
        }
    }
}

impl<L, U> std::fmt::Debug for Engine<L, U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<L, U> Engine<L, U>
where
    L: Locator + 'static,
    U: UserBackend + 'static,
{
    /// An engine for calls arriving at `endpoint`, with users and
    /// locations from `registrar`, media through `relay` (none: media
    /// always goes phone to phone) and records into `cdr` (none: records
    /// only go out as events) through a writer thread that batches them.
    /// Fails if that thread cannot be started.
    pub fn new(
        config: EngineConfig,
        endpoint: Endpoint,
        registrar: Arc<Registrar<L, U>>,
        relay: Option<Relay>,
        cdr: Option<Arc<dyn CdrStore>>,
    ) -> std::io::Result<Engine<L, U>> {
        let (events, _) = broadcast::channel(1024);
        let records = cdr.map(records::Records::start).transpose()?;
        let trunks = RwLock::new(Arc::new(config.trunks.clone()));
        Ok(Engine {
            shared: Arc::new(Shared {
                trunks,
                config,
                endpoint,
                registrar,
                relay,
                records,
                events,
                by_tx: DashMap::new(),
                by_dialog: DashMap::new(),
                offered_replaces: Arc::default(),
                accepting: AtomicBool::new(true),
                active: AtomicU64::new(0),
                calls: AtomicU64::new(0),
                active_calls: Default::default(),
                controls: Default::default(),
                trunk_statuses: Default::default(),
            }),
        })
    }

    /// Call events from now on. A subscriber that falls more than 1024
    /// events behind loses the oldest.
    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.shared.events.subscribe()
    }

    /// Calls in progress and since start.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            active_calls: self.shared.active.load(Ordering::Relaxed),
            calls: self.shared.calls.load(Ordering::Relaxed),
            dialogs: self.shared.by_dialog.len() as u64,
        }
    }

    /// The calls in progress (ringing or answered), oldest first. Each
    /// call keeps its summary up to date; the list is a copy, cheap for
    /// the few thousand calls a node carries.
    pub fn active_calls(&self) -> Vec<ActiveCall> {
        let mut calls: Vec<ActiveCall> = self
            .shared
            .active_calls
            .iter()
            .map(|entry| entry.value().clone())
            .collect();
        calls.sort_by(|a, b| (a.started, &a.id).cmp(&(b.started, &b.id)));
        calls
    }

    /// Tells the call in progress `call` (its record id, or the Call-ID of
    /// either of its dialogs) to do `command`, and waits until it is done:
    /// a re-INVITE answered, a transfer's target answered or refused.
    pub async fn command(&self, call: &str, command: CallCommand) -> Result<(), CommandError> {
        let input = self.shared.controls.get(call).map(|c| c.clone());
        let input = input.ok_or(CommandError::NoSuchCall)?;
        let (done, outcome) = tokio::sync::oneshot::channel();
        let order = control::Order { command, done };
        input
            .send(CallInput::Command(order))
            .await
            .map_err(|_| CommandError::NoSuchCall)?;
        // A call that ends with the order unanswered drops it.
        outcome.await.unwrap_or(Err(CommandError::Ended))
    }

    /// An attended transfer: the party `side_a` of call `call_a` and the
    /// party `side_b` of call `call_b` (each call named as for
    /// [`Engine::command`]) are connected, and the other two parties
    /// (the transferor's legs) hang up. Both calls must be answered.
    ///
    /// When the phone of `side_a` takes REFER and `Replaces`, it is sent
    /// a REFER whose Refer-To carries `Replaces` naming call B's other
    /// dialog (RFC 3891, RFC 5589 §7): its INVITE takes that party's
    /// place in call B, which goes on, and call A ends (its record's
    /// reason is `transferred`) once the phone's NOTIFY reports the 200.
    /// Otherwise the B2BUA joins the two: call B ends (reason
    /// `transferred`) and call A goes on with the two.
    pub async fn attended_transfer(
        &self,
        (call_a, side_a): (&str, CallSide),
        (call_b, side_b): (&str, CallSide),
    ) -> Result<(), CommandError> {
        let control = |call: &str| self.shared.controls.get(call).map(|c| c.clone());
        let (a, b) = match (control(call_a), control(call_b)) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err(CommandError::NoSuchCall),
        };
        if a.same_channel(&b) {
            return Err(CommandError::Invalid(
                "both legs are of the same call".into(),
            ));
        }
        // A call named by its first Call-ID or record id is checked here;
        // one named by its other leg's Call-ID, by the calls themselves.
        for call in [call_a, call_b] {
            let listed = self
                .shared
                .active_calls
                .iter()
                .find(|c| c.call_id == call || c.id.as_str() == call)
                .map(|c| c.state);
            if listed.is_some_and(|state| state != CallState::Answered) {
                return Err(CommandError::WrongState("not answered"));
            }
        }
        let (done, replaceable) = tokio::sync::oneshot::channel();
        b.send(CallInput::Replaceable { side: side_b, done })
            .await
            .map_err(|_| CommandError::NoSuchCall)?;
        let replaces = replaceable.await.unwrap_or(Err(CommandError::Ended))?;
        let (taken, referred) = tokio::sync::oneshot::channel();
        let (done, outcome) = tokio::sync::oneshot::channel();
        let order = call::ReferOrder {
            side: side_a,
            target: call_b.to_owned(),
            replaces,
            taken,
            done,
        };
        a.send(CallInput::Refer(Box::new(order)))
            .await
            .map_err(|_| CommandError::NoSuchCall)?;
        if referred.await.unwrap_or(false) {
            return outcome.await.unwrap_or(Err(CommandError::Ended));
        }
        // The phone does not take it: the B2BUA joins the calls.
        let (done, handed) = tokio::sync::oneshot::channel();
        let party = call::Handed::Side(side_b);
        b.send(CallInput::HandOver { party, done })
            .await
            .map_err(|_| CommandError::NoSuchCall)?;
        let leg = handed.await.unwrap_or(Err(CommandError::Ended))?;
        let orphan = leg.dialog();
        let (done, joined) = tokio::sync::oneshot::channel();
        let joining = call::Joining {
            side: side_a,
            leg,
            done,
        };
        let outcome = match a.send(CallInput::Join(Box::new(joining))).await {
            Ok(()) => joined.await.unwrap_or(Err(CommandError::Ended)),
            Err(_) => Err(CommandError::NoSuchCall),
        };
        if outcome.is_err() {
            // Call A did not take the party: it is not left on the line.
            self.bye_dialog(&orphan).await;
        }
        outcome
    }

    /// Whether a call in progress answers to `call` (its record id, or
    /// the Call-ID of either of its dialogs).
    pub fn has_call(&self, call: &str) -> bool {
        self.shared.controls.contains_key(call)
    }

    /// Starts a click-to-dial call and returns its id (the Call-ID of the
    /// caller's dialog) at once; its progress comes as [`CallEvent`]s.
    /// The call's media is anchored in the relay, so it needs one.
    pub fn originate(&self, originate: Originate) -> Result<String, CommandError> {
        if !self.shared.accepting.load(Ordering::Relaxed) {
            return Err(CommandError::ShuttingDown);
        }
        if self.shared.relay.is_none() {
            return Err(CommandError::MediaNotAnchored);
        }
        if !control::is_number(&originate.caller) || !control::is_number(&originate.callee) {
            return Err(CommandError::Invalid(
                "caller and callee are numbers or extensions (letters, digits, + - _ . * #)".into(),
            ));
        }
        let call_id = format!("{}@trunkline", trunkline_transaction::new_tag());
        let (input, inputs) = mpsc::channel(16);
        let engine = self.clone();
        let id = call_id.clone();
        tokio::spawn(async move { call::originate(engine, originate, id, input, inputs).await });
        Ok(call_id)
    }

    /// Starts keeping registered with every trunk whose `register` is set;
    /// [`TrunkRegistrations::update`] follows a change of trunks,
    /// [`TrunkRegistrations::stop`] unregisters.
    pub fn register_trunks(&self) -> TrunkRegistrations {
        let shared = &self.shared;
        TrunkRegistrations::start(&shared.endpoint, &shared.trunks(), &shared.trunk_statuses)
    }

    /// The trunks in force.
    pub fn trunks(&self) -> Arc<Vec<Arc<Trunk>>> {
        self.shared.trunks()
    }

    /// Replaces the trunks: calls that start from now on are admitted by
    /// and routed with these; calls in progress keep the trunk they have.
    /// Registrations follow with [`TrunkRegistrations::update`].
    pub fn set_trunks(&self, trunks: Vec<Arc<Trunk>>) {
        *self
            .shared
            .trunks
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(trunks);
    }

    /// How the registrations with trunks stand, by trunk name.
    pub fn trunk_statuses(&self) -> Vec<TrunkStatus> {
        let mut statuses: Vec<TrunkStatus> = self
            .shared
            .trunk_statuses
            .iter()
            .map(|entry| entry.value().clone())
            .collect();
        statuses.sort_by(|a, b| a.name.cmp(&b.name));
        statuses
    }

    /// Stops taking new calls (they get 503): the first step of a
    /// graceful shutdown. Calls in progress go on.
    pub fn stop_accepting(&self) {
        self.shared.accepting.store(false, Ordering::Relaxed);
    }

    /// Serves the endpoint's events until its queue ends.
    pub async fn run(&self, mut events: mpsc::Receiver<EndpointEvent>) {
        while let Some(event) = events.recv().await {
            self.dispatch(event).await;
        }
    }

    async fn dispatch(&self, event: EndpointEvent) {
        let shared = &self.shared;
        match event {
            EndpointEvent::Request {
                tx,
                request,
                peer,
                dialog,
            } => {
                if let Some(dialog) = dialog {
                    let call = shared.by_dialog.get(&dialog).map(|c| c.clone());
                    match call {
                        Some(call) => {
                            let input = CallInput::Request {
                                tx,
                                request,
                                peer,
                                dialog,
                            };
                            // A call that has just ended drops it; the
                            // transaction layer answers its retransmissions.
                            let _ = call.send(input).await;
                        }
                        None => {
                            if let Some(tx) = tx {
                                self.reply(
                                    tx,
                                    &request,
                                    StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST,
                                );
                            }
                        }
                    }
                    return;
                }
                let Some(tx) = tx else {
                    // A stray ACK: nothing to do.
                    return;
                };
                self.out_of_dialog(tx, request, peer);
            }
            EndpointEvent::Cancelled(tx) => {
                if let Some(call) = shared.by_tx.get(&tx).map(|c| c.clone()) {
                    let _ = call.send(CallInput::Cancelled).await;
                }
            }
            EndpointEvent::AckTimeout(tx) => {
                if let Some(call) = shared.by_tx.get(&tx).map(|c| c.clone()) {
                    let _ = call.send(CallInput::AckTimeout).await;
                }
            }
            EndpointEvent::DialogEnded(dialog) => {
                if let Some(call) = shared.by_dialog.get(&dialog).map(|c| c.clone()) {
                    let _ = call.send(CallInput::DialogEnded(dialog)).await;
                }
            }
            EndpointEvent::StrayResponse(response, _) => {
                tracing::debug!(
                    call_id = response.call_id().unwrap_or_default(),
                    "a 2xx for a transaction that is gone"
                );
            }
        }
    }

    /// A request outside any dialog.
    fn out_of_dialog(&self, tx: ServerTxId, request: Message, peer: Peer) {
        match request.method() {
            Some(Method::Register) => {
                let engine = self.clone();
                tokio::spawn(async move {
                    let registrar = &engine.shared.registrar;
                    let handled = registrar.handle(SystemTime::now(), &request, peer).await;
                    engine.send_response(tx, &handled.response);
                });
            }
            Some(Method::Invite) if self.shared.accepting.load(Ordering::Relaxed) => {
                let (input, inputs) = mpsc::channel(16);
                self.shared.by_tx.insert(tx, input.clone());
                let engine = self.clone();
                tokio::spawn(async move {
                    call::run(engine.clone(), tx, request, peer, input, inputs).await;
                    engine.shared.by_tx.remove(&tx);
                });
            }
            Some(Method::Invite) => {
                let unavailable = request
                    .response_to(StatusCode::SERVICE_UNAVAILABLE)
                    .header(HeaderName::RetryAfter, "30")
                    .build();
                if let Ok(response) = unavailable {
                    self.send_response(tx, &response);
                }
            }
            Some(Method::Options) => self.reply(tx, &request, StatusCode::OK),
            Some(Method::Bye | Method::Prack | Method::Update | Method::Info) => {
                self.reply(tx, &request, StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST);
            }
            _ => {
                let refusal = request
                    .response_to(StatusCode::METHOD_NOT_ALLOWED)
                    .header(
                        HeaderName::Allow,
                        "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE",
                    )
                    .build();
                if let Ok(response) = refusal {
                    self.send_response(tx, &response);
                }
            }
        }
    }

    fn reply(&self, tx: ServerTxId, request: &Message, status: StatusCode) {
        match request.response_to(status).build() {
            Ok(response) => self.send_response(tx, &response),
            Err(e) => tracing::warn!("cannot answer {status}: {e}"),
        }
    }

    fn send_response(&self, tx: ServerTxId, response: &Message) {
        if let Err(e) = self.shared.endpoint.respond(tx, response) {
            tracing::debug!("response not sent: {e}");
        }
    }

    /// Hangs up one dialog, waiting (bounded) for the answer.
    async fn bye_dialog(&self, dialog: &DialogId) {
        let endpoint = &self.shared.endpoint;
        let Ok(bye) = endpoint
            .request_in_dialog(dialog, Method::Bye)
            .and_then(|b| b.build().map_err(trunkline_transaction::Error::Build))
        else {
            return;
        };
        if let Ok(mut client) = endpoint.send_in_dialog(dialog, bye) {
            let limit = self.shared.config.request_timeout;
            let _ = tokio::time::timeout(limit, client.final_response()).await;
        }
    }

    fn emit(&self, event: CallEvent) {
        // Nobody listening is fine.
        let _ = self.shared.events.send(event);
    }

    /// Stores a finished call's record, off the async threads, then hands
    /// it to [`EngineConfig::stored_records`].
    async fn store(&self, cdr: Cdr) {
        let stored = self.shared.config.stored_records.as_ref();
        let handed_on = stored.map(|_| cdr.clone());
        if let Some(records) = &self.shared.records {
            records.store(cdr).await;
        }
        if let (Some(stored), Some(cdr)) = (stored, handed_on)
            && let Err(e) = stored.send(cdr).await
        {
            tracing::warn!(
                cdr = e.0.id.as_str(),
                "stored record not handed on: its receiver is gone"
            );
        }
    }
}
