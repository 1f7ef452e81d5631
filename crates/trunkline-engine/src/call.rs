//! One call, from the caller's INVITE to the last BYE: the A leg, the
//! forked B legs, the relay session and the call detail record.

use crate::active::{ActiveCall, CallState, Listed};
use crate::address::{SipAddress, transport_param};
use crate::anchor::{self, MediaTarget};
use crate::control::{CallCommand, CallSide, CommandError, Controlled, Order};
use crate::trunk::Trunk;
use crate::{
    CallEvent, CallInput, Engine, MediaProxy, RouteDecision, RouteRequest, Routing, Strategy,
    Target,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;
use tokio::sync::mpsc;

mod join;
mod originate;
mod refer;
mod transfer;

pub(crate) use join::{Handed, HandedLeg, Joining};
use refer::{Abilities, Referral};
pub(crate) use refer::{ReferOrder, Replacing};

pub(crate) use originate::originate;
use trunkline_cdr::{
    CallStart, CdrBuilder, CdrId, Direction, Hangup, HangupCause, Party, Side, SipDirection,
    SipFlowEntry,
};
use trunkline_media::relay::{Leg, Session, SessionOptions};
use trunkline_media::sdp::{Direction as SdpDirection, Sdp};
use trunkline_registrar::{Binding, Locator, UserBackend};
use trunkline_sip::{HeaderName, Message, MessageBuilder, Method, StatusCode};
use trunkline_transaction::{
    ClientEvent, ClientTxId, DialogId, Peer, ServerTxId, Transport, new_tag,
};

const SDP: &str = "application/sdp";

/// A phone or trunk a B leg rings.
#[derive(Debug, Clone)]
struct Destination {
    /// Which of the routing's targets it stands for.
    target: usize,
    /// The INVITE's Request-URI.
    uri: String,
    /// The INVITE's To URI.
    to: String,
    /// Where the INVITE goes.
    flow: Peer,
    /// Route headers (a registered phone's Path).
    path: Vec<String>,
    /// A phone registered from an address its Contact does not name.
    behind_nat: bool,
    /// The trunk, whose credentials answer its challenges.
    trunk: Option<Arc<Trunk>>,
    /// An extension's registered phone (not a trunk or a foreign URI).
    extension: bool,
}

impl Destination {
    fn phone(target: usize, extension: &str, binding: Binding, domain: &str) -> Destination {
        Destination {
            target,
            behind_nat: anchor::behind_nat(contact_ip(&binding.contact), binding.flow.addr.ip()),
            to: format!("sip:{extension}@{domain}"),
            uri: binding.contact,
            flow: binding.flow,
            path: binding.path,
            trunk: None,
            extension: true,
        }
    }

    fn trunk(target: usize, trunk: &Arc<Trunk>, number: &str, flow: Peer) -> Destination {
        Destination {
            target,
            uri: trunk.uri_for(number),
            to: trunk.address_of(number),
            flow,
            path: Vec::new(),
            behind_nat: false,
            trunk: Some(trunk.clone()),
            extension: false,
        }
    }

    fn uri(target: usize, address: &SipAddress, flow: Peer) -> Destination {
        Destination {
            target,
            uri: address.uri().to_owned(),
            to: address.uri().to_owned(),
            flow,
            path: Vec::new(),
            behind_nat: false,
            trunk: None,
            extension: false,
        }
    }
}

/// Why a call is refused before anything rings: the caller's status and
/// the record's hangup.
struct Refused {
    status: StatusCode,
    reason: Option<String>,
}

/// One B leg: an INVITE to one destination.
struct Fork {
    /// The INVITE's transaction: the latest, after a challenge.
    tx: ClientTxId,
    request: Message,
    destination: Destination,
    /// Still waiting for its final response.
    pending: bool,
}

/// The B legs of one stage, in one dialog's Call-ID and From tag; their
/// responses come out of one channel.
struct Forks {
    list: Vec<Fork>,
    events: mpsc::Receiver<ForkEvent>,
    sender: mpsc::Sender<ForkEvent>,
    call_id: String,
    from_tag: String,
    offer: Option<String>,
}

/// What a fork's transaction reported.
struct ForkEvent {
    fork: usize,
    tx: ClientTxId,
    event: ClientEvent,
}

/// A final or provisional response on one fork's current transaction.
struct ForkResponse {
    fork: usize,
    response: Message,
    dialog: Option<DialogId>,
}

impl Forks {
    /// The next response on one of the stage's current transactions; a
    /// fork whose transaction timed out counts as a 408 in `best`. `None`
    /// once no fork is left waiting. Cancel-safe: it only waits in
    /// `recv`.
    async fn next(&mut self, best: &mut Option<StatusCode>) -> Option<ForkResponse> {
        loop {
            let ForkEvent { fork, tx, event } = self.events.recv().await?;
            if tx != self.list[fork].tx {
                // The challenged transaction a fork answered.
                continue;
            }
            match event {
                ClientEvent::Response { response, dialog } => {
                    return Some(ForkResponse {
                        fork,
                        response,
                        dialog,
                    });
                }
                ClientEvent::Timeout => {
                    self.list[fork].pending = false;
                    *best = Some(better(*best, StatusCode::REQUEST_TIMEOUT));
                    if self.list.iter().all(|f| !f.pending) {
                        return None;
                    }
                }
            }
        }
    }
}

/// How ringing ended.
enum Outcome {
    /// A callee answered on this fork, in this dialog.
    Answered { fork: usize, dialog: DialogId },
    /// The API answered the caller itself ([`CallCommand::Accept`]).
    Accepted,
    /// Nobody answered: the status the caller gets and why.
    Failed {
        status: StatusCode,
        cause: HangupCause,
        by: Side,
    },
}

/// Where the A leg comes from.
enum Origin {
    /// The caller's INVITE, answered on this transaction.
    Incoming(ServerTxId),
    /// A click-to-dial call: our INVITE to the caller's phone, whose
    /// dialog exists once it answered.
    Originated(Option<DialogId>),
}

struct Call<L, U> {
    engine: Engine<L, U>,
    origin: Origin,
    /// The caller's INVITE (for a click-to-dial call, one made up as if
    /// the caller had dialled).
    invite: Message,
    /// The A leg's phone or trunk.
    peer: Peer,
    /// The answered B leg's phone or trunk.
    b_peer: Option<Peer>,
    /// The trunk the call comes in from; `None` for an extension's call.
    trunk: Option<Arc<Trunk>>,
    /// Our To tag on the A leg.
    a_tag: String,
    input: mpsc::Sender<CallInput>,
    record: CdrBuilder,
    media: Option<Session>,
    /// The call's dialogs whose requests the dispatcher routes here,
    /// forgotten when the call ends.
    dialogs: Vec<DialogId>,
    /// Whether this call is to be recorded (the route's say, else the
    /// engine's).
    recorded: bool,
    /// The recording task, which finishes its file once `media` closes.
    recording: Option<tokio::task::JoinHandle<()>>,
    call_id: String,
    /// The calling extension, or the trunk caller's number.
    caller: String,
    /// Headers the routing adds to every B leg's INVITE.
    extra_headers: Vec<(String, String)>,
    /// The call's entry in the engine's list of calls in progress.
    listed: Listed,
    /// The ids commands for this call come by.
    controlled: Controlled,
    /// The session description last sent to each leg's phone (by
    /// [`slot`]): what a re-INVITE of ours offers again, changed.
    last_sent: [Option<Sdp>; 2],
    /// The session description each leg's phone last sent us: where it
    /// takes media, for joining it to another call.
    last_heard: [Option<Sdp>; 2],
    /// Another call's relay session this call's media now also runs
    /// through, after an attended transfer joined the two.
    joined_media: Option<Session>,
    /// Recording as the click-to-dial request said, over the route's say.
    record_override: Option<bool>,
    /// Why the PBX ended the call (an API hangup's reason).
    reason: Option<String>,
    /// What each leg's phone takes (REFER, Replaces).
    abilities: [Abilities; 2],
    /// A transfer the party that stays carries out after our REFER.
    referral: Option<Referral>,
    /// The dialogs we sent REFERs in: their NOTIFYs are ours.
    referred: Vec<DialogId>,
    /// The dialog of a phone whose own REFER asked for the transfer under
    /// way: it hears how it ends.
    asker: Option<DialogId>,
}

/// The first call-level details every call starts from.
struct Opening {
    origin: Origin,
    invite: Message,
    peer: Peer,
    trunk: Option<Arc<Trunk>>,
    caller: Party,
    callee: String,
    source_channel: String,
    direction: Direction,
}

/// Runs the call whose INVITE is `invite`, answering on `tx`.
pub(crate) async fn run<L, U>(
    engine: Engine<L, U>,
    tx: ServerTxId,
    invite: Message,
    peer: Peer,
    input: mpsc::Sender<CallInput>,
    mut inputs: mpsc::Receiver<CallInput>,
) where
    L: Locator + 'static,
    U: UserBackend + 'static,
{
    let now = SystemTime::now();
    let trunk = engine
        .shared
        .trunks()
        .iter()
        .find(|trunk| trunk.admits(peer.addr.ip()))
        .cloned();
    let (caller, source_channel, direction) = match &trunk {
        // A trunk's ACL vouches for its calls: no digest is asked of it.
        Some(trunk) => {
            let from = invite.from();
            let number = from
                .as_ref()
                .and_then(|f| number_of(f.uri()))
                .unwrap_or_default();
            let name = from.as_ref().and_then(|f| f.display_name());
            let caller = Party::new(number, name.as_deref());
            (caller, format!("trunk/{}", trunk.name), Direction::Inbound)
        }
        None => match engine
            .shared
            .registrar
            .authenticate(now, &invite, peer)
            .await
        {
            Ok(user) => {
                let caller = Party::new(user.username.as_str(), user.display_name.as_deref());
                let channel = format!("extension/{}", user.username);
                (caller, channel, Direction::Internal)
            }
            Err(challenge) => {
                // 407 (or 403 for a source that keeps failing): the phone
                // retries with credentials in a new transaction.
                engine.send_response(tx, &challenge);
                return;
            }
        },
    };
    if invite.header(HeaderName::Replaces).is_some() {
        replace_dialog(&engine, (tx, invite, peer), caller.number).await;
        return;
    }
    let callee = invite
        .uri()
        .and_then(|uri| number_of(uri).map(str::to_owned))
        .unwrap_or_default();
    let opening = Opening {
        origin: Origin::Incoming(tx),
        invite,
        peer,
        trunk,
        caller,
        callee: callee.clone(),
        source_channel,
        direction,
    };
    let mut call = Call::open(&engine, opening, input, now);
    call.flow(SipDirection::Received, &call.invite.clone(), peer);
    let hangup = call.ring_and_talk(&callee, &mut inputs).await;
    call.conclude(hangup).await;
}

/// An authenticated INVITE with `Replaces` goes to the call whose dialog
/// it names (RFC 3891 §3), if a REFER of ours offered it: 481 otherwise.
async fn replace_dialog<L, U>(
    engine: &Engine<L, U>,
    (tx, invite, peer): (ServerTxId, Message, Peer),
    number: String,
) where
    L: Locator + 'static,
    U: UserBackend + 'static,
{
    let Some(replaces) = refer::replaced_dialog(&invite) else {
        engine.reply(tx, &invite, StatusCode::BAD_REQUEST);
        return;
    };
    let offered = engine.shared.offered_replaces.contains_key(&replaces);
    let call = offered
        .then(|| engine.shared.by_dialog.get(&replaces).map(|c| c.clone()))
        .flatten();
    let replacing = Replacing {
        tx,
        invite,
        peer,
        replaces,
        number,
    };
    let unanswered = match call {
        Some(call) => match call.send(CallInput::Replace(Box::new(replacing))).await {
            Ok(()) => return,
            Err(mpsc::error::SendError(input)) => input,
        },
        None => CallInput::Replace(Box::new(replacing)),
    };
    if let CallInput::Replace(replacing) = unanswered {
        let status = StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST;
        engine.reply(replacing.tx, &replacing.invite, status);
    }
}

/// The leg whose dialog `dialog` is.
fn leg_in(dialogs: &[Option<DialogId>; 2], dialog: &DialogId) -> Option<Leg> {
    [Leg::A, Leg::B]
        .into_iter()
        .find(|leg| dialogs[slot(*leg)].as_ref() == Some(dialog))
}

/// Who a leg's party is, for the record.
fn side_of(leg: Leg) -> Side {
    match leg {
        Leg::A => Side::Caller,
        Leg::B => Side::Callee,
    }
}

/// Which of two per-leg slots belongs to `leg`.
fn slot(leg: Leg) -> usize {
    match leg {
        Leg::A => 0,
        Leg::B => 1,
    }
}

/// The relay leg a party is on.
fn leg_of(side: CallSide) -> Leg {
    match side {
        CallSide::Caller => Leg::A,
        CallSide::Callee => Leg::B,
    }
}

/// The legs a command names: one, or both when it names none.
fn legs_of(side: Option<CallSide>) -> Vec<Leg> {
    match side {
        Some(side) => vec![leg_of(side)],
        None => vec![Leg::A, Leg::B],
    }
}

impl<L, U> Call<L, U>
where
    L: Locator + 'static,
    U: UserBackend + 'static,
{
    /// Starts counting, listing and recording a call, and tells the
    /// event bus.
    fn open(
        engine: &Engine<L, U>,
        opening: Opening,
        input: mpsc::Sender<CallInput>,
        now: SystemTime,
    ) -> Call<L, U> {
        let Opening {
            origin,
            invite,
            peer,
            trunk,
            caller,
            callee,
            source_channel,
            direction,
        } = opening;
        let call_id = invite.call_id().unwrap_or_default().to_owned();
        engine.shared.active.fetch_add(1, Ordering::Relaxed);
        engine.shared.calls.fetch_add(1, Ordering::Relaxed);
        engine.emit(CallEvent::New {
            call_id: call_id.clone(),
            caller: caller.number.clone(),
            callee: callee.clone(),
        });
        let id = CdrId::generate();
        let listed = Listed::insert(
            &engine.shared.active_calls,
            ActiveCall {
                id: id.clone(),
                call_id: call_id.clone(),
                caller: caller.number.clone(),
                callee: callee.clone(),
                direction,
                state: CallState::Trying,
                started: now.into(),
                answered_at: None,
            },
        );
        let mut controlled = Controlled::new(&engine.shared.controls, input.clone());
        controlled.answer_to(&call_id);
        controlled.answer_to(id.as_str());
        let caller_number = caller.number.clone();
        let mut abilities = [Abilities::default(); 2];
        if matches!(origin, Origin::Incoming(_)) && trunk.is_none() {
            abilities[slot(Leg::A)] = Abilities::of(&invite);
        }
        let record = CdrBuilder::new(CallStart {
            id,
            call_id: call_id.clone(),
            caller,
            callee: Party::new(callee.as_str(), None),
            source_channel,
            direction,
            time: now,
        });
        Call {
            engine: engine.clone(),
            origin,
            invite,
            peer,
            b_peer: None,
            trunk,
            a_tag: new_tag(),
            input,
            record,
            media: None,
            dialogs: Vec::new(),
            recorded: false,
            recording: None,
            call_id,
            caller: caller_number,
            extra_headers: Vec::new(),
            listed,
            controlled,
            last_sent: [None, None],
            last_heard: [None, None],
            joined_media: None,
            record_override: None,
            reason: None,
            abilities,
            referral: None,
            referred: Vec::new(),
            asker: None,
        }
    }

    /// Forgets the call's dialogs, stores its record and tells the event
    /// bus it ended.
    async fn conclude(mut self, mut hangup: Hangup) {
        let engine = self.engine.clone();
        for dialog in std::mem::take(&mut self.dialogs) {
            engine.shared.by_dialog.remove(&dialog);
        }
        if hangup.reason.is_none() {
            hangup.reason = self.reason.take();
        }
        let (cdr, listed, controlled) = self.finish(hangup).await;
        // No more commands: one that comes now finds no call.
        drop(controlled);
        let ended = CallEvent::Ended {
            call_id: cdr.call_id.clone(),
            disposition: cdr.disposition.as_str().to_owned(),
            sip_status: cdr.hangup.sip_status,
        };
        // Stored before the call stops counting as active and before anyone
        // hears it ended: a graceful shutdown that waits for the calls waits
        // for their records too, and a listener finds the record in the store.
        engine.store(cdr).await;
        drop(listed);
        engine.shared.active.fetch_sub(1, Ordering::Relaxed);
        engine.emit(ended);
    }

    /// The whole call; returns how it ended.
    async fn ring_and_talk(
        &mut self,
        dialled: &str,
        inputs: &mut mpsc::Receiver<CallInput>,
    ) -> Hangup {
        let (routing, destinations) = match self.route(dialled).await {
            Ok(routed) => routed,
            Err(Refused { status, reason }) => {
                self.answer_status(status).await;
                let mut hangup =
                    Hangup::new(HangupCause::Rejected, Some(status.as_u16()), Side::Pbx);
                hangup.reason = reason;
                return hangup;
            }
        };
        self.extra_headers = usable_headers(&self.call_id, &routing.headers);
        let stages = stages(&routing, destinations);
        if stages.is_empty() {
            // Not registered (or no such extension: the same answer, so
            // nobody learns which numbers exist).
            self.answer_status(StatusCode::TEMPORARILY_UNAVAILABLE)
                .await;
            return Hangup::new(HangupCause::Rejected, Some(480), Side::Pbx);
        }
        let config = &self.engine.shared.config;
        self.recorded = self
            .record_override
            .or(routing.record)
            .unwrap_or(config.record);
        let media_proxy = routing.media_proxy.unwrap_or(config.media_proxy);
        let ring_timeout = routing.ring_timeout.unwrap_or(config.ring_timeout);
        let offer = self.sdp_of(&self.invite.clone());
        self.last_heard[slot(Leg::A)].clone_from(&offer);
        if self.media.is_none() {
            self.media = self.open_media(offer.as_ref(), stages.iter().flatten(), media_proxy);
        }
        let b_offer = offer.map(|mut sdp| {
            if let Some(media) = &self.media {
                anchor::anchor(&mut sdp, media.local(Leg::B));
            }
            sdp.to_string()
        });
        let mut best: Option<StatusCode> = None;
        let mut last = None;
        for stage in &stages {
            let mut forks = self.fork(stage, b_offer.clone());
            if forks.list.is_empty() {
                continue;
            }
            let outcome = self.ring(&mut forks, inputs, ring_timeout).await;
            let (fork, b_dialog) = match outcome {
                Outcome::Answered { fork, dialog } => (fork, dialog),
                Outcome::Accepted => {
                    self.cancel_all(&mut forks.list);
                    let dialogs = [self.a_dialog(), None];
                    let (cause, by) = self.talk(dialogs, inputs).await;
                    return Hangup::new(cause, Some(200), by);
                }
                Outcome::Failed { status, cause, by } => {
                    self.cancel_all(&mut forks.list);
                    let stop = matches!(cause, HangupCause::OriginatorCancel)
                        || status.as_u16() >= 600
                        || status == StatusCode::SERVER_INTERNAL_ERROR;
                    best = Some(better(best, status));
                    last = Some((cause, by));
                    if stop {
                        best = Some(status);
                        break;
                    }
                    continue;
                }
            };
            // Everyone else stops ringing (RFC 3261 §16.7 step 10 for a
            // proxy; a B2BUA does the same on its own legs).
            forks.list[fork].pending = false;
            self.cancel_all(&mut forks.list);
            self.b_peer = Some(forks.list[fork].destination.flow);
            self.last_sent[slot(Leg::B)] = forks.offer.as_deref().and_then(|o| Sdp::parse(o).ok());
            self.controlled.answer_to(&forks.call_id);
            // Our 200 registered the A dialog.
            let dialogs = [self.a_dialog(), Some(b_dialog)];
            let (cause, by) = self.talk(dialogs, inputs).await;
            return Hangup::new(cause, Some(200), by);
        }
        let status = best.unwrap_or(StatusCode::TEMPORARILY_UNAVAILABLE);
        self.answer_status(status).await;
        let (cause, by) = last.unwrap_or((HangupCause::Failure, Side::Pbx));
        Hangup::new(cause, Some(status.as_u16()), by)
    }

    /// Where the dialled number goes, and the phones and trunks that ring
    /// for it. The router, if any, decides; by the engine's own rules (the
    /// router's [`RouteDecision::Default`]) an extension's call rings the
    /// dialled extension's phones, and a trunk's call the extension its
    /// DID names (404 without one).
    async fn route(&mut self, dialled: &str) -> Result<(Routing, Vec<Destination>), Refused> {
        let (extension, direction) = match &self.trunk {
            Some(trunk) => (self.did_extension(trunk, dialled), Direction::Inbound),
            None => (Some(dialled.to_owned()), Direction::Internal),
        };
        let own = match &extension {
            Some(extension) => self.contacts(extension).await,
            None => Vec::new(),
        };
        let router = self.engine.shared.config.router.clone();
        let decision = match router {
            Some(router) => {
                let request = RouteRequest {
                    invite: self.invite.clone(),
                    source: self.peer.addr,
                    dialled: dialled.to_owned(),
                    trunk: self.trunk.clone(),
                    caller: self.caller.clone(),
                    extension: extension.clone(),
                    registered: !own.is_empty(),
                };
                router.route(&request).await
            }
            None => RouteDecision::Default,
        };
        let routing = match decision {
            RouteDecision::Route(routing) => routing,
            RouteDecision::Refuse {
                status,
                channel,
                reason,
            } => {
                if let Some(channel) = channel {
                    self.record.routed(channel, direction);
                }
                let status = if (300..700).contains(&status.as_u16()) {
                    status
                } else {
                    StatusCode::SERVER_INTERNAL_ERROR
                };
                return Err(Refused { status, reason });
            }
            RouteDecision::Default => {
                let Some(extension) = extension else {
                    // A trunk's call to a number it has no DID for.
                    return Err(Refused {
                        status: StatusCode::NOT_FOUND,
                        reason: None,
                    });
                };
                self.record
                    .routed(format!("extension/{extension}"), direction);
                let domain = &self.engine.shared.config.domain;
                let phones = own
                    .into_iter()
                    .map(|binding| Destination::phone(0, &extension, binding, domain))
                    .collect();
                return Ok((direct(extension), phones));
            }
        };
        let trunk = routing.targets.iter().find_map(|target| match target {
            Target::Trunk { trunk, .. } => Some(trunk),
            _ => None,
        });
        let (channel, direction) = match trunk {
            Some(trunk) => (format!("trunk/{}", trunk.name), Direction::Outbound),
            None => (format!("route/{}", routing.name), direction),
        };
        let channel = routing.channel.clone().unwrap_or(channel);
        self.record.routed(channel, direction);
        let destinations = self.destinations(&routing).await;
        Ok((routing, destinations))
    }

    /// The extension a trunk's call rings: the DID in the Request-URI, or
    /// in the To header (a carrier that sends calls to our registered
    /// contact puts the account there, and the DID in To).
    fn did_extension(&self, trunk: &Trunk, dialled: &str) -> Option<String> {
        let to = self.invite.to();
        let to_user = to.as_ref().and_then(|to| number_of(to.uri()));
        let extension = trunk
            .extension_for(dialled)
            .or_else(|| trunk.extension_for(to_user?));
        if extension.is_none() {
            tracing::info!(
                call_id = self.call_id,
                trunk = trunk.name,
                dialled,
                "no DID for an inbound call"
            );
        }
        extension.map(str::to_owned)
    }

    /// Every routing target's phones (an extension's registered contacts)
    /// or trunk, in order.
    async fn destinations(&self, routing: &Routing) -> Vec<Destination> {
        let domain = &self.engine.shared.config.domain;
        let mut destinations = Vec::new();
        for (index, target) in routing.targets.iter().enumerate() {
            match target {
                Target::Extension(extension) => {
                    let phones = self.contacts(extension).await.into_iter();
                    destinations.extend(
                        phones.map(|binding| Destination::phone(index, extension, binding, domain)),
                    );
                }
                Target::Trunk { trunk, number } => match trunk.peer().await {
                    Ok(flow) => destinations.push(Destination::trunk(index, trunk, number, flow)),
                    Err(e) => tracing::warn!(
                        call_id = self.call_id,
                        trunk = trunk.name,
                        "trunk unreachable: {e}"
                    ),
                },
                Target::Uri(address) => match address.peer().await {
                    Ok(flow) => destinations.push(Destination::uri(index, address, flow)),
                    Err(e) => tracing::warn!(
                        call_id = self.call_id,
                        uri = address.uri(),
                        "target unreachable: {e}"
                    ),
                },
            }
        }
        destinations
    }

    /// The callee's live contacts: registered at the address the caller
    /// dialled, at our domain, or at our own address (phones set up with
    /// the PBX's IP address register there).
    async fn contacts(&self, callee: &str) -> Vec<Binding> {
        if callee.is_empty() {
            return Vec::new();
        }
        let registrar = &self.engine.shared.registrar;
        let now = SystemTime::now();
        let dialled_host = self
            .invite
            .uri()
            .and_then(|uri| Some(uri.as_sip()?.host().to_string().to_ascii_lowercase()));
        let domain = self.engine.shared.config.domain.to_ascii_lowercase();
        let endpoint = &self.engine.shared.endpoint;
        let own = [Transport::Udp, Transport::Tcp]
            .into_iter()
            .filter_map(|transport| endpoint.local_addr(transport))
            .map(|addr| match addr.ip() {
                std::net::IpAddr::V4(ip) => ip.to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            });
        // Lazily: the usual call finds its callee at the first host, and
        // never asks the endpoint for its addresses.
        for host in dialled_host.into_iter().chain([domain]).chain(own) {
            let aor = format!("sip:{callee}@{host}");
            match registrar.locator().lookup(&aor, now).await {
                Ok(bindings) if !bindings.is_empty() => return bindings,
                Ok(_) => {}
                Err(e) => tracing::warn!(aor, "location lookup failed: {e}"),
            }
        }
        Vec::new()
    }

    /// A relay session if this call's media is to be anchored.
    fn open_media<'d>(
        &self,
        offer: Option<&Sdp>,
        mut destinations: impl Iterator<Item = &'d Destination>,
        media_proxy: MediaProxy,
    ) -> Option<Session> {
        let shared = &self.engine.shared;
        let relay = shared.relay.as_ref()?;
        let offer = offer?;
        let caller_nat = anchor::behind_nat(
            anchor::target(offer).map(|t| t.rtp.ip()),
            self.peer.addr.ip(),
        );
        let (mut callee_nat, mut trunk) = (false, self.trunk.is_some());
        for destination in &mut destinations {
            callee_nat |= destination.behind_nat;
            trunk |= destination.trunk.is_some();
        }
        let anchor = match media_proxy {
            MediaProxy::None => false,
            MediaProxy::Always => true,
            MediaProxy::Nat => caller_nat || callee_nat,
            MediaProxy::Auto => caller_nat || callee_nat || trunk || self.recorded,
        };
        if !anchor {
            return None;
        }
        match relay.open(SessionOptions::default()) {
            Ok(session) => {
                if let Some(target) = anchor::target(offer) {
                    session.set_remote(Leg::A, target.rtp, target.rtcp);
                }
                Some(session)
            }
            Err(e) => {
                // Better a call with direct media than no call.
                tracing::warn!(call_id = self.call_id, "media not anchored: {e}");
                None
            }
        }
    }

    /// Sends an INVITE to every destination of a stage, in a dialog of
    /// its own.
    fn fork(&mut self, stage: &[Destination], offer: Option<String>) -> Forks {
        self.fork_as(stage, offer, format!("{}@trunkline", new_tag()))
    }

    /// Sends an INVITE to every destination of a stage, with this Call-ID.
    fn fork_as(&mut self, stage: &[Destination], offer: Option<String>, call_id: String) -> Forks {
        let (sender, events) = mpsc::channel(32);
        let mut forks = Forks {
            list: Vec::new(),
            events,
            sender,
            call_id,
            from_tag: new_tag(),
            offer,
        };
        for destination in stage {
            let Some(request) = self.b_invite(&forks, destination, 1, None) else {
                continue;
            };
            let index = forks.list.len();
            if let Some(tx) = self.send_fork(&forks, index, &request, destination.flow) {
                forks.list.push(Fork {
                    tx,
                    request,
                    destination: destination.clone(),
                    pending: true,
                });
            }
        }
        forks
    }

    /// Sends fork `index`'s INVITE; its transaction's events go to the
    /// stage's channel.
    fn send_fork(
        &mut self,
        forks: &Forks,
        index: usize,
        request: &Message,
        flow: Peer,
    ) -> Option<ClientTxId> {
        let endpoint = &self.engine.shared.endpoint;
        let mut client = match endpoint.send_request(request.clone(), flow) {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!(call_id = self.call_id, uri = %flow.addr, "INVITE not sent: {e}");
                return None;
            }
        };
        self.flow(SipDirection::Sent, request, flow);
        let tx = client.id();
        let sender = forks.sender.clone();
        tokio::spawn(async move {
            while let Some(event) = client.next().await {
                let event = ForkEvent {
                    fork: index,
                    tx,
                    event,
                };
                if sender.send(event).await.is_err() {
                    return;
                }
            }
        });
        Some(tx)
    }

    /// Answers a trunk's challenge to fork `index`: the INVITE again, in
    /// the same dialog with the next CSeq and the credentials (RFC 3261
    /// §22.2). `false` if there is nothing to answer with, or the
    /// credentials were already refused.
    fn answer_challenge(&mut self, forks: &mut Forks, index: usize, challenge: &Message) -> bool {
        let fork = &forks.list[index];
        let Some(trunk) = &fork.destination.trunk else {
            return false;
        };
        let answered = fork.request.header(HeaderName::Authorization).is_some()
            || fork
                .request
                .header(HeaderName::ProxyAuthorization)
                .is_some();
        if answered {
            tracing::warn!(
                call_id = self.call_id,
                trunk = trunk.name,
                "credentials refused"
            );
            return false;
        }
        let Some(answer) = trunk.answer(&fork.request, challenge) else {
            return false;
        };
        let seq = fork.request.cseq().map_or(1, |c| c.seq) + 1;
        let destination = fork.destination.clone();
        let Some(request) = self.b_invite(forks, &destination, seq, Some(answer)) else {
            return false;
        };
        let Some(tx) = self.send_fork(forks, index, &request, destination.flow) else {
            return false;
        };
        let fork = &mut forks.list[index];
        fork.tx = tx;
        fork.request = request;
        true
    }

    /// The INVITE for one B leg: a new dialog (Call-ID, tags) of our own,
    /// the caller's identity, the offer anchored or as it came, and the
    /// answer to a trunk's challenge if there was one.
    fn b_invite(
        &self,
        forks: &Forks,
        destination: &Destination,
        seq: u32,
        answer: Option<(HeaderName, String)>,
    ) -> Option<Message> {
        let endpoint = &self.engine.shared.endpoint;
        let transport = destination.flow.transport;
        let via = endpoint.via(transport)?;
        let local = endpoint.local_addr(transport)?;
        let from = self.invite.from()?;
        let caller_uri = from.uri().as_str().to_owned();
        let display = from
            .display_name()
            .map(|name| format!("\"{name}\" "))
            .unwrap_or_default();
        let hops = self.invite.max_forwards().unwrap_or(70).saturating_sub(1);
        let mut builder = Message::request(Method::Invite, destination.uri.clone())
            .header(HeaderName::Via, via)
            .header(HeaderName::MaxForwards, hops.to_string())
            .header(
                HeaderName::From,
                format!("{display}<{caller_uri}>;tag={}", forks.from_tag),
            )
            .header(HeaderName::To, format!("<{}>", destination.to))
            .header(HeaderName::CallId, forks.call_id.as_str())
            .header(HeaderName::CSeq, format!("{seq} INVITE"))
            .header(
                HeaderName::Contact,
                format!("<sip:trunkline@{local}{}>", transport_param(transport)),
            );
        for path in &destination.path {
            builder = builder.header(HeaderName::Route, path.as_str());
        }
        if let Some((name, value)) = answer {
            builder = builder.header(name, value);
        }
        for (name, value) in &self.extra_headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(offer) = &forks.offer {
            builder = builder.body(SDP, offer.clone());
        }
        builder.build().ok()
    }

    /// Waits for an answer, a refusal from everyone, the caller's CANCEL
    /// or the ring timeout; passes ringing and early media to the caller.
    async fn ring(
        &mut self,
        forks: &mut Forks,
        inputs: &mut mpsc::Receiver<CallInput>,
        ring_timeout: std::time::Duration,
    ) -> Outcome {
        let timeout = tokio::time::sleep(ring_timeout);
        tokio::pin!(timeout);
        // The best refusal so far (RFC 3261 §16.7: 6xx beats all, then the
        // lowest class; busy is what a person understands best).
        let mut best: Option<StatusCode> = None;
        let mut rang = false;
        loop {
            tokio::select! {
                event = forks.next(&mut best) => {
                    let Some(ForkResponse { fork, response, dialog }) = event else {
                        return self.refused(best);
                    };
                    let peer = forks.list[fork].destination.flow;
                    self.flow(SipDirection::Received, &response, peer);
                    let Some(status) = response.status() else { continue };
                    if status.is_provisional() {
                        if status.as_u16() >= 180 && !rang {
                            rang = true;
                            self.record.ringing(SystemTime::now());
                            self.listed.update(|c| c.state = CallState::Ringing);
                            self.engine.emit(CallEvent::Ringing { call_id: self.call_id.clone() });
                        }
                        if status.as_u16() >= 180 {
                            let early_sdp = self.sdp_of(&response);
                            self.pass_provisional(status, early_sdp, dialog.as_ref());
                        }
                        continue;
                    }
                    let challenged = matches!(
                        status,
                        StatusCode::UNAUTHORIZED | StatusCode::PROXY_AUTHENTICATION_REQUIRED
                    );
                    if challenged && self.answer_challenge(forks, fork, &response) {
                        continue;
                    }
                    forks.list[fork].pending = false;
                    if status.is_success() {
                        let Some(dialog) = dialog else { continue };
                        self.take_answer(forks, fork, &dialog, (Leg::B, &response));
                        let answer = self.sdp_of(&response);
                        self.last_heard[slot(Leg::B)].clone_from(&answer);
                        if !self.answer_caller(answer) {
                            self.bye(&dialog).await;
                            return Outcome::Failed {
                                status: StatusCode::SERVER_INTERNAL_ERROR,
                                cause: HangupCause::Failure,
                                by: Side::Pbx,
                            };
                        }
                        self.answered();
                        return Outcome::Answered { fork, dialog };
                    }
                    best = Some(better(best, status));
                    if status.as_u16() >= 600 || forks.list.iter().all(|f| !f.pending) {
                        return self.refused(best);
                    }
                }
                input = inputs.recv() => match input {
                    Some(CallInput::Cancelled) | None => {
                        return Outcome::Failed {
                            status: StatusCode::REQUEST_TERMINATED,
                            cause: HangupCause::OriginatorCancel,
                            by: Side::Caller,
                        };
                    }
                    Some(CallInput::Request { tx: Some(tx), request, peer, dialog }) => {
                        if request.method() == Some(&Method::Bye)
                            && self.a_dialog().as_ref() == Some(&dialog)
                        {
                            // The caller hangs up before the answer: in
                            // an early dialog, or a click-to-dial caller
                            // whose phone answered first.
                            self.flow(SipDirection::Received, &request, peer);
                            self.engine.reply(tx, &request, StatusCode::OK);
                            return self.caller_left();
                        }
                        // Nothing else but CANCEL (handled by the
                        // transaction layer) belongs to a call that is
                        // still ringing.
                        self.engine.reply(tx, &request, StatusCode::REQUEST_PENDING);
                    }
                    Some(CallInput::DialogEnded(dialog))
                        if self.a_dialog().as_ref() == Some(&dialog) =>
                    {
                        return self.caller_left();
                    }
                    Some(CallInput::Command(order)) => {
                        if let Some(outcome) = self.command_while_ringing(order) {
                            return outcome;
                        }
                    }
                    Some(other) => self.not_now(other),
                },
                () = &mut timeout => {
                    return Outcome::Failed {
                        status: StatusCode::TEMPORARILY_UNAVAILABLE,
                        cause: HangupCause::RingTimeout,
                        by: Side::Pbx,
                    };
                }
            }
        }
    }

    /// The caller is gone before the answer: nothing is to be sent to it.
    fn caller_left(&mut self) -> Outcome {
        if let Origin::Originated(dialog) = &mut self.origin {
            *dialog = None;
        }
        Outcome::Failed {
            status: StatusCode::REQUEST_TERMINATED,
            cause: HangupCause::OriginatorCancel,
            by: Side::Caller,
        }
    }

    /// A command for a call that still rings: hang up, or answer it for
    /// an application; `Some` ends the ringing.
    fn command_while_ringing(&mut self, order: Order) -> Option<Outcome> {
        match &order.command {
            CallCommand::Hangup { reason } => {
                self.reason.clone_from(reason);
                order.reply(Ok(()));
                Some(Outcome::Failed {
                    status: StatusCode::TEMPORARILY_UNAVAILABLE,
                    cause: HangupCause::Rejected,
                    by: Side::Pbx,
                })
            }
            CallCommand::Accept { sdp } => {
                if !matches!(self.origin, Origin::Incoming(_)) {
                    order.reply(Err(CommandError::WrongState("not an incoming call")));
                    return None;
                }
                let Ok(parsed) = Sdp::parse(sdp) else {
                    order.reply(Err(CommandError::Invalid("the SDP does not parse".into())));
                    return None;
                };
                // The application takes the media: none through the relay.
                self.media = None;
                let builder = self.a_response(StatusCode::OK).body(SDP, sdp.clone());
                if !self.send_a(builder) {
                    order.reply(Err(CommandError::Ended));
                    return None;
                }
                self.last_sent[slot(Leg::A)] = Some(parsed);
                self.answered();
                order.reply(Ok(()));
                Some(Outcome::Accepted)
            }
            _ => {
                order.reply(Err(CommandError::WrongState("ringing")));
                None
            }
        }
    }

    /// A callee (or the API) answered: the record, the list of calls, the
    /// recording and the event bus hear it.
    fn answered(&mut self) {
        let answered = SystemTime::now();
        self.record.answered(answered);
        self.listed.update(|c| {
            c.state = CallState::Answered;
            c.answered_at = Some(answered.into());
        });
        self.start_recording();
        self.engine.emit(CallEvent::Answered {
            call_id: self.call_id.clone(),
        });
    }

    /// A fork's 2xx: its dialog's requests come to this call, and the
    /// dialog's ACK goes out for the CSeq of the fork's INVITE.
    fn take_answer(
        &mut self,
        forks: &Forks,
        fork: usize,
        dialog: &DialogId,
        answer: (Leg, &Message),
    ) {
        let (leg, response) = answer;
        self.register(dialog);
        let Fork {
            tx,
            request,
            destination,
            ..
        } = &forks.list[fork];
        self.abilities[slot(leg)] = if destination.extension {
            Abilities::of(response)
        } else {
            Abilities::default()
        };
        let seq = request.cseq().map_or(1, |c| c.seq);
        if let Err(e) = self.engine.shared.endpoint.ack_in_dialog(*tx, dialog, seq) {
            tracing::warn!(call_id = self.call_id, "ACK not sent: {e}");
        }
    }

    fn refused(&self, best: Option<StatusCode>) -> Outcome {
        let status = best.unwrap_or(StatusCode::TEMPORARILY_UNAVAILABLE);
        Outcome::Failed {
            status,
            cause: HangupCause::Rejected,
            by: Side::Callee,
        }
    }

    /// 180 or 183 to the caller, with the early media's SDP anchored.
    fn pass_provisional(
        &mut self,
        status: StatusCode,
        sdp: Option<Sdp>,
        b_dialog: Option<&DialogId>,
    ) {
        if let Some(dialog) = b_dialog {
            self.register(dialog);
        }
        let mut builder = self.a_response(status);
        if let Some(mut sdp) = sdp {
            self.learn_and_anchor(&mut sdp, Leg::B);
            builder = builder.body(SDP, sdp.to_string());
        }
        self.send_a(builder);
    }

    /// Points `sdp` (from `from`'s side) at the other leg's relay port, and
    /// tells the relay where `from`'s peer takes media.
    fn learn_and_anchor(&self, sdp: &mut Sdp, from: Leg) {
        let Some(media) = &self.media else { return };
        if let Some(MediaTarget { rtp, rtcp }) = anchor::target(sdp) {
            media.set_remote(from, rtp, rtcp);
        }
        let other = from.other();
        anchor::anchor(sdp, media.local(other));
    }

    /// The 200 to the caller; `false` if it could not be built. A
    /// click-to-dial caller already talks to the relay: only the relay
    /// learns where the callee takes media.
    fn answer_caller(&mut self, answer: Option<Sdp>) -> bool {
        let mut builder = self.a_response(StatusCode::OK);
        if let Some(mut sdp) = answer {
            self.learn_and_anchor(&mut sdp, Leg::B);
            if matches!(self.origin, Origin::Incoming(_)) {
                builder = builder.body(SDP, sdp.to_string());
                self.last_sent[slot(Leg::A)] = Some(sdp);
            }
        }
        self.send_a(builder)
    }

    /// The answered call: requests pass from one dialog to the other until
    /// a BYE; commands change it on the way. `dialogs` holds each leg's
    /// dialog (by [`slot`]); a call the API accepted has no B leg.
    async fn talk(
        &mut self,
        mut dialogs: [Option<DialogId>; 2],
        inputs: &mut mpsc::Receiver<CallInput>,
    ) -> (HangupCause, Side) {
        loop {
            let input = match self.referral.as_ref().map(Referral::deadline) {
                Some(deadline) => match tokio::time::timeout_at(deadline, inputs.recv()).await {
                    Ok(input) => input,
                    Err(_) => {
                        // The transferee never said how it went.
                        if let Some(end) = self.refer_failed(&mut dialogs, 408).await {
                            return end;
                        }
                        continue;
                    }
                },
                None => inputs.recv().await,
            };
            let Some(input) = input else { break };
            match input {
                CallInput::Request {
                    tx,
                    request,
                    peer,
                    dialog,
                } => {
                    self.flow(SipDirection::Received, &request, peer);
                    let Some(from) = leg_in(&dialogs, &dialog) else {
                        // The early dialog of a fork that lost, or a party
                        // a transfer replaced: it is over.
                        if let Some(tx) = tx {
                            self.engine.reply(
                                tx,
                                &request,
                                StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST,
                            );
                        }
                        continue;
                    };
                    let Some(tx) = tx else {
                        // The ACK of our 2xx; the other side's ACKs we
                        // send ourselves.
                        continue;
                    };
                    if let Some(ended) = self
                        .referral_notify(tx, &request, &mut dialogs, &dialog)
                        .await
                    {
                        match ended {
                            Some(end) => return end,
                            None => continue,
                        }
                    }
                    if request.method() == Some(&Method::Refer) {
                        if let Some(end) = self
                            .refer_asked(tx, &request, from, &mut dialogs, inputs)
                            .await
                        {
                            return end;
                        }
                        continue;
                    }
                    let to = dialogs[slot(from.other())].clone();
                    if request.method() == Some(&Method::Bye) {
                        self.engine.reply(tx, &request, StatusCode::OK);
                        if self.referral.as_ref().is_some_and(|r| r.replaces(from)) {
                            // The transferee is calling the target: the
                            // party it replaces may go.
                            dialogs[slot(from)] = None;
                            continue;
                        }
                        if let Some(to) = &to {
                            self.bye(to).await;
                        }
                        return (HangupCause::NormalClearing, side_of(from));
                    }
                    match to {
                        Some(to) => self.pass_across(tx, &request, from, &to).await,
                        None => self.answer_alone(tx, &request, from),
                    }
                }
                CallInput::AckTimeout => {
                    // The endpoint already hung up on the caller.
                    if let Some(b) = dialogs[slot(Leg::B)].clone() {
                        self.bye(&b).await;
                    }
                    return (HangupCause::Failure, Side::Caller);
                }
                CallInput::DialogEnded(dialog) => {
                    // Ended under us (481, a timeout): end the other side.
                    // The early dialogs of forks that lost end too, and
                    // change nothing.
                    let Some(leg) = leg_in(&dialogs, &dialog) else {
                        continue;
                    };
                    if self.referral.as_ref().is_some_and(|r| r.replaces(leg)) {
                        dialogs[slot(leg)] = None;
                        continue;
                    }
                    if let Some(other) = dialogs[slot(leg.other())].clone() {
                        self.bye(&other).await;
                    }
                    return (HangupCause::Failure, side_of(leg));
                }
                CallInput::Cancelled => {}
                CallInput::Command(order) => {
                    if let Some(end) = self.command(order, &mut dialogs, inputs).await {
                        return end;
                    }
                }
                CallInput::HandOver { party, done } => {
                    if let Some(end) = self.hand_over(&mut dialogs, party, done).await {
                        return end;
                    }
                }
                CallInput::Join(joining) => self.take_over(&mut dialogs, *joining).await,
                CallInput::Replaceable { side, done } => {
                    let replaced = dialogs[slot(leg_of(side).other())].clone();
                    let _ =
                        done.send(replaced.ok_or(CommandError::WrongState("without that party")));
                }
                CallInput::Refer(order) => self.refer_replacing(&dialogs, *order).await,
                CallInput::Replace(replacing) => self.replace(&mut dialogs, *replacing).await,
            }
        }
        (HangupCause::Failure, Side::Pbx)
    }

    /// Carries out a command on the answered call; `Some` if it ended the
    /// call, and how.
    async fn command(
        &mut self,
        order: Order,
        dialogs: &mut [Option<DialogId>; 2],
        inputs: &mut mpsc::Receiver<CallInput>,
    ) -> Option<(HangupCause, Side)> {
        let Order { command, done } = order;
        let outcome = match command {
            CallCommand::Hangup { reason } => {
                self.reason = reason;
                let _ = done.send(Ok(()));
                for dialog in dialogs.iter().flatten() {
                    self.bye(dialog).await;
                }
                return Some((HangupCause::NormalClearing, Side::Pbx));
            }
            CallCommand::Hold { side } => self.hold(dialogs, side, true).await,
            CallCommand::Unhold { side } => self.hold(dialogs, side, false).await,
            CallCommand::Mute { side } => self.mute(side, true),
            CallCommand::Unmute { side } => self.mute(side, false),
            CallCommand::Transfer { .. } if self.referral.is_some() => {
                Err(CommandError::WrongState("transferring"))
            }
            CallCommand::Transfer { side, target } => {
                let done = match self.refer_transfer(dialogs, side, &target, done).await {
                    // The transferee's NOTIFYs finish it.
                    Ok(()) => return None,
                    Err(done) => done,
                };
                let (outcome, ended) = self.transfer(dialogs, side, &target, inputs).await;
                let _ = done.send(outcome);
                return ended;
            }
            CallCommand::Accept { .. } => Err(CommandError::WrongState("answered")),
        };
        let _ = done.send(outcome);
        None
    }

    /// Puts parties on hold, or takes them off: a re-INVITE offering
    /// what each was last sent as `sendonly` (RFC 3264 §8.4), or as
    /// `sendrecv` again. With the media in the relay, a held party also
    /// stops hearing the other.
    async fn hold(
        &mut self,
        dialogs: &[Option<DialogId>; 2],
        side: Option<CallSide>,
        held: bool,
    ) -> Result<(), CommandError> {
        let direction = if held {
            SdpDirection::SendOnly
        } else {
            SdpDirection::SendRecv
        };
        for leg in legs_of(side) {
            let Some(dialog) = dialogs[slot(leg)].clone() else {
                if side.is_some() {
                    return Err(CommandError::WrongState("without that party"));
                }
                continue;
            };
            let Some(mut sdp) = self.last_sent[slot(leg)].clone() else {
                return Err(CommandError::WrongState("without media"));
            };
            anchor::set_direction(&mut sdp, direction);
            let answer = self.reinvite(&dialog, leg, sdp).await?;
            if let Some(media) = &self.media {
                if let Some(target) = answer.as_ref().and_then(anchor::target) {
                    media.set_remote(leg, target.rtp, target.rtcp);
                }
                media.set_muted(leg.other(), held);
            }
        }
        self.engine.emit(CallEvent::Held {
            call_id: self.call_id.clone(),
            held,
        });
        Ok(())
    }

    /// Stops relaying parties' audio, or starts again.
    fn mute(&self, side: Option<CallSide>, muted: bool) -> Result<(), CommandError> {
        let media = self.media.as_ref().ok_or(CommandError::MediaNotAnchored)?;
        for leg in legs_of(side) {
            media.set_muted(leg, muted);
        }
        Ok(())
    }

    /// A re-INVITE of ours to `leg` offering `sdp` (as the next version of
    /// what the leg was last sent); the answer's description once it is
    /// accepted and acknowledged.
    async fn reinvite(
        &mut self,
        dialog: &DialogId,
        leg: Leg,
        mut sdp: Sdp,
    ) -> Result<Option<Sdp>, CommandError> {
        if let Some(previous) = &self.last_sent[slot(leg)] {
            anchor::next_version(previous, &mut sdp);
        }
        let endpoint = self.engine.shared.endpoint.clone();
        let request = endpoint
            .request_in_dialog(dialog, Method::Invite)
            .map_err(|_| CommandError::Ended)?
            .body(SDP, sdp.to_string())
            .build()
            .map_err(|e| CommandError::Invalid(e.to_string()))?;
        let seq = request.cseq().map_or(0, |c| c.seq);
        let peer = self.peer_of(leg);
        let mut client = endpoint
            .send_in_dialog(dialog, request.clone())
            .map_err(|_| CommandError::Ended)?;
        if let Some(peer) = peer {
            self.flow(SipDirection::Sent, &request, peer);
        }
        let limit = self.engine.shared.config.request_timeout;
        let Ok(ClientEvent::Response { response, .. }) =
            tokio::time::timeout(limit, client.final_response()).await
        else {
            return Err(CommandError::Timeout);
        };
        if let Some(peer) = peer {
            self.flow(SipDirection::Received, &response, peer);
        }
        let status = response
            .status()
            .unwrap_or(StatusCode::SERVER_INTERNAL_ERROR);
        if !status.is_success() {
            return Err(CommandError::Refused(status.as_u16()));
        }
        if let Err(e) = endpoint.ack_in_dialog(client.id(), dialog, seq) {
            tracing::warn!(call_id = self.call_id, "ACK not sent: {e}");
        }
        self.last_sent[slot(leg)] = Some(sdp);
        let answer = self.sdp_of(&response);
        if answer.is_some() {
            self.last_heard[slot(leg)].clone_from(&answer);
        }
        Ok(answer)
    }

    /// The phone or trunk on `leg`.
    fn peer_of(&self, leg: Leg) -> Option<Peer> {
        match leg {
            Leg::A => Some(self.peer),
            Leg::B => self.b_peer,
        }
    }

    /// A request from the only party left (a call the API accepted, or
    /// one whose other party left during a transfer): a re-INVITE is
    /// answered with what it was last sent, turned to match its
    /// direction; anything else is simply accepted.
    fn answer_alone(&mut self, tx: ServerTxId, request: &Message, from: Leg) {
        let offer = self.sdp_of(request);
        let last = self.last_sent[slot(from)].clone();
        if request.method() == Some(&Method::Invite)
            && let (Some(offer), Some(previous)) = (offer, last)
        {
            let mut sdp = previous.clone();
            anchor::set_direction(&mut sdp, anchor::direction(&offer).reversed());
            anchor::next_version(&previous, &mut sdp);
            let answer = request
                .response_to(StatusCode::OK)
                .body(SDP, sdp.to_string())
                .build();
            if let Ok(answer) = answer {
                self.last_sent[slot(from)] = Some(sdp);
                self.engine.send_response(tx, &answer);
                return;
            }
        }
        self.engine.reply(tx, request, StatusCode::OK);
    }

    /// A request in one dialog sent on in the other, its final response
    /// brought back; an SDP body is re-anchored both ways.
    async fn pass_across(&mut self, tx: ServerTxId, request: &Message, from: Leg, to: &DialogId) {
        let endpoint = self.engine.shared.endpoint.clone();
        let Some(method) = request.method().cloned() else {
            return;
        };
        let Ok(mut builder) = endpoint.request_in_dialog(to, method.clone()) else {
            self.engine
                .reply(tx, request, StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST);
            return;
        };
        let mut offer = self.sdp_of(request);
        if offer.is_some() {
            self.last_heard[slot(from)].clone_from(&offer);
        }
        if let Some(sdp) = &mut offer {
            if method == Method::Invite {
                self.engine.emit(CallEvent::Held {
                    call_id: self.call_id.clone(),
                    held: anchor::holds(sdp),
                });
            }
            self.learn_and_anchor(sdp, from);
            builder = builder.body(SDP, sdp.to_string());
            self.last_sent[slot(from.other())] = Some(sdp.clone());
        } else if !request.body().is_empty() {
            let content_type = request
                .header(HeaderName::ContentType)
                .unwrap_or("application/octet-stream");
            builder = builder.body(content_type, request.body().clone());
        }
        let Ok(forwarded) = builder.build() else {
            self.engine
                .reply(tx, request, StatusCode::SERVER_INTERNAL_ERROR);
            return;
        };
        let seq = forwarded.cseq().map_or(0, |c| c.seq);
        let Ok(mut client) = endpoint.send_in_dialog(to, forwarded) else {
            self.engine
                .reply(tx, request, StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST);
            return;
        };
        let limit = self.engine.shared.config.request_timeout;
        let final_response = tokio::time::timeout(limit, client.final_response()).await;
        let response = match final_response {
            Ok(ClientEvent::Response { response, .. }) => response,
            _ => {
                self.engine.reply(tx, request, StatusCode::REQUEST_TIMEOUT);
                return;
            }
        };
        let status = response
            .status()
            .unwrap_or(StatusCode::SERVER_INTERNAL_ERROR);
        if method == Method::Invite && status.is_success() {
            let _ = endpoint.ack_in_dialog(client.id(), to, seq);
        }
        let other = from.other();
        let mut back = request.response_to(status);
        if let Some(mut sdp) = self.sdp_of(&response) {
            self.last_heard[slot(other)] = Some(sdp.clone());
            self.learn_and_anchor(&mut sdp, other);
            back = back.body(SDP, sdp.to_string());
            self.last_sent[slot(from)] = Some(sdp);
        }
        if let Ok(back) = back.build() {
            self.engine.send_response(tx, &back);
        }
    }

    /// Hangs up one dialog, waiting (bounded) for the answer.
    async fn bye(&mut self, dialog: &DialogId) {
        self.engine.bye_dialog(dialog).await;
    }

    /// CANCELs every B leg still ringing.
    fn cancel_all(&mut self, forks: &mut [Fork]) {
        for fork in forks.iter_mut().filter(|f| f.pending) {
            fork.pending = false;
            if let Err(e) = self.engine.shared.endpoint.cancel(fork.tx) {
                tracing::debug!(call_id = self.call_id, "CANCEL not sent: {e}");
            }
        }
    }

    /// The A leg's dialog: the caller's, as the transaction layer keys it
    /// once our 2xx (or a 1xx with our tag) went out; a click-to-dial
    /// caller's once its phone answered.
    fn a_dialog(&self) -> Option<DialogId> {
        match &self.origin {
            Origin::Incoming(_) => Some(DialogId {
                call_id: self.invite.share(self.invite.call_id().unwrap_or_default()),
                local_tag: self.a_tag.clone().into(),
                remote_tag: self
                    .invite
                    .share(self.invite.from_tag().unwrap_or_default()),
            }),
            Origin::Originated(dialog) => dialog.clone(),
        }
    }

    /// Routes `dialog`'s requests to this call.
    fn register(&mut self, dialog: &DialogId) {
        if !self.dialogs.contains(dialog) {
            self.engine
                .shared
                .by_dialog
                .insert(dialog.clone(), self.input.clone());
            self.dialogs.push(dialog.clone());
        }
    }

    /// A response to the caller's INVITE, with our tag and Contact.
    fn a_response(&self, status: StatusCode) -> MessageBuilder {
        let mut builder = self.invite.response_to(status).to_tag(&self.a_tag);
        if let Some(contact) = self.contact(self.peer.transport) {
            builder = builder.header(HeaderName::Contact, contact);
        }
        builder
    }

    /// Our Contact for a dialog over `transport`.
    fn contact(&self, transport: Transport) -> Option<String> {
        let local = self.engine.shared.endpoint.local_addr(transport)?;
        Some(format!(
            "<sip:trunkline@{local}{}>",
            transport_param(transport)
        ))
    }

    /// Sends a response to the caller's INVITE; `false` if it failed. A
    /// click-to-dial call has no INVITE to answer: nothing is sent.
    fn send_a(&mut self, builder: MessageBuilder) -> bool {
        let Origin::Incoming(tx) = self.origin else {
            return true;
        };
        let Ok(response) = builder.build() else {
            return false;
        };
        // A response with our tag makes the A dialog (early or
        // confirmed): it must reach this call before the caller's ACK or
        // BYE.
        if response.status().is_some_and(|s| s.as_u16() > 100)
            && let Some(dialog) = self.a_dialog()
        {
            self.register(&dialog);
        }
        self.flow(SipDirection::Sent, &response, self.peer);
        match self.engine.shared.endpoint.respond(tx, &response) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(call_id = self.call_id, "response not sent: {e}");
                false
            }
        }
    }

    /// A final non-2xx to the caller; a click-to-dial caller, whose
    /// phone answered, gets a BYE instead.
    async fn answer_status(&mut self, status: StatusCode) {
        let tx = match &self.origin {
            Origin::Incoming(tx) => *tx,
            Origin::Originated(dialog) => {
                if let Some(dialog) = dialog.clone() {
                    self.bye(&dialog).await;
                }
                return;
            }
        };
        let builder = self.invite.response_to(status).to_tag(&self.a_tag);
        let Ok(response) = builder.build() else {
            return;
        };
        self.flow(SipDirection::Sent, &response, self.peer);
        self.engine.send_response(tx, &response);
    }

    fn sdp_of(&self, message: &Message) -> Option<Sdp> {
        let is_sdp = message
            .content_type()
            .is_some_and(|t| t.is("application", "sdp"));
        if !is_sdp || message.body().is_empty() {
            return None;
        }
        let text = std::str::from_utf8(message.body()).ok()?;
        Sdp::parse(text).ok()
    }

    /// Adds a message to the record's SIP flow.
    fn flow(&mut self, direction: SipDirection, message: &Message, peer: Peer) {
        let endpoint = &self.engine.shared.endpoint;
        let local = endpoint
            .local_addr(peer.transport)
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
        let (source, destination) = match direction {
            SipDirection::Received => (peer.addr, local),
            SipDirection::Sent => (local, peer.addr),
        };
        let text = String::from_utf8_lossy(&message.to_bytes()).into_owned();
        self.record.push_sip(SipFlowEntry::new(
            SystemTime::now(),
            direction,
            peer.transport.as_str(),
            source,
            destination,
            text,
        ));
    }

    /// Records the conversation if the configuration asks for it and the
    /// media goes through the relay (without it there is nothing to tap).
    fn start_recording(&mut self) {
        let config = &self.engine.shared.config;
        let (true, Some(dir), Some(media)) = (self.recorded, &config.recordings, &self.media)
        else {
            return;
        };
        let path = dir.join(format!("{}.wav", self.record.id().as_str()));
        self.record.recording(path.display().to_string());
        self.recording = Some(crate::record::start(media, path, self.call_id.clone()));
    }

    /// Closes the media (the relay frees its ports), waits for the
    /// recording to be finished, and closes the record.
    /// Its entry in the list of calls in progress comes back with the
    /// record, to go once the record is stored.
    async fn finish(mut self, hangup: Hangup) -> (trunkline_cdr::Cdr, Listed, Controlled) {
        let ended = SystemTime::now();
        drop(self.media.take());
        if let Some(recording) = self.recording.take() {
            // Its tap closed with the session: the file is finished next.
            let _ = recording.await;
        }
        (self.record.end(ended, hangup), self.listed, self.controlled)
    }
}

/// The better of two refusals for the caller: a 6xx beats everything,
/// then busy, then the lowest status.
fn better(best: Option<StatusCode>, new: StatusCode) -> StatusCode {
    let rank = |s: StatusCode| match s.as_u16() {
        600..=699 => 0,
        486 => 1,
        n => 2 + u32::from(n),
    };
    match best {
        Some(best) if rank(best) <= rank(new) => best,
        _ => new,
    }
}

/// The number a URI names: a SIP URI's user part, a tel URI's number.
fn number_of(uri: trunkline_sip::Uri<'_>) -> Option<&str> {
    match uri {
        trunkline_sip::Uri::Sip(sip) => sip.user(),
        trunkline_sip::Uri::Tel(tel) => Some(tel.number()),
        trunkline_sip::Uri::Other(_) => None,
    }
}

/// The IP address a contact URI names, if it names one.
fn contact_ip(contact: &str) -> Option<std::net::IpAddr> {
    let uri = trunkline_sip::Uri::parse(contact).ok()?;
    match uri.as_sip()?.host() {
        trunkline_sip::Host::Ipv4(ip) => Some(ip.into()),
        trunkline_sip::Host::Ipv6(ip) => Some(ip.into()),
        trunkline_sip::Host::Domain(_) => None,
    }
}

/// Straight to one extension's phones.
fn direct(extension: String) -> Routing {
    Routing::new(String::new(), vec![Target::Extension(extension)])
}

/// Headers the engine writes on a B leg's INVITE itself, which a routing
/// cannot add.
const OWN_HEADERS: [HeaderName; 11] = [
    HeaderName::Via,
    HeaderName::From,
    HeaderName::To,
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::Contact,
    HeaderName::MaxForwards,
    HeaderName::Route,
    HeaderName::ContentType,
    HeaderName::ContentLength,
    HeaderName::Authorization,
];

/// The routing's extra headers that may go on a B leg's INVITE: a token
/// for a name (RFC 3261 §25.1), a value without line breaks, none of
/// [`OWN_HEADERS`] (nor Proxy-Authorization); the others are logged and
/// dropped.
fn usable_headers(call_id: &str, headers: &[(String, String)]) -> Vec<(String, String)> {
    let token = |c: char| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c);
    headers
        .iter()
        .filter(|(name, value)| {
            let known = HeaderName::parse(name);
            let own = known
                .is_some_and(|n| OWN_HEADERS.contains(&n) || n == HeaderName::ProxyAuthorization);
            let ok = !name.is_empty()
                && name.chars().all(token)
                && !value.chars().any(|c| c == '\r' || c == '\n' || c == '\0')
                && !own;
            if !ok {
                tracing::warn!(call_id, header = name, "routing header left out");
            }
            ok
        })
        .cloned()
        .collect()
}

/// The destinations in the order they ring. Parallel: one stage of
/// everyone. Sequential: a route's targets one by one (each target's
/// phones together), or one extension's phones one by one.
fn stages(routing: &Routing, destinations: Vec<Destination>) -> Vec<Vec<Destination>> {
    match routing.strategy {
        Strategy::Parallel if destinations.is_empty() => Vec::new(),
        Strategy::Parallel => vec![destinations],
        Strategy::Sequential if routing.targets.len() > 1 => (0..routing.targets.len())
            .map(|target| {
                let stage = destinations.iter().filter(|d| d.target == target);
                stage.cloned().collect::<Vec<_>>()
            })
            .filter(|stage| !stage.is_empty())
            .collect(),
        Strategy::Sequential => destinations.into_iter().map(|d| vec![d]).collect(),
    }
}
