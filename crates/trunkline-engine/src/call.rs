//! One call, from the caller's INVITE to the last BYE: the A leg, the
//! forked B legs, the relay session and the call detail record.

use crate::anchor::{self, MediaTarget};
use crate::{CallEvent, CallInput, Engine, MediaProxy, Routing, Strategy};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::SystemTime;
use tokio::sync::mpsc;
use trunkline_cdr::{
    CallStart, CdrBuilder, CdrId, Direction, Hangup, HangupCause, Party, Side, SipDirection,
    SipFlowEntry,
};
use trunkline_media::relay::{Leg, Session, SessionOptions};
use trunkline_media::sdp::Sdp;
use trunkline_registrar::{Binding, Locator, UserBackend};
use trunkline_sip::{HeaderName, Message, MessageBuilder, Method, StatusCode};
use trunkline_transaction::{ClientEvent, ClientTxId, DialogId, Peer, ServerTxId, new_tag};

const SDP: &str = "application/sdp";

/// One B leg: an INVITE to one of the callee's contacts.
struct Fork {
    tx: ClientTxId,
    binding: Binding,
    /// Still waiting for its final response.
    pending: bool,
}

/// What a fork reported.
struct ForkEvent {
    fork: usize,
    event: ClientEvent,
}

/// How ringing ended.
enum Outcome {
    /// A callee answered on this fork, in this dialog.
    Answered { fork: usize, dialog: DialogId },
    /// Nobody answered: the status the caller gets and why.
    Failed {
        status: StatusCode,
        cause: HangupCause,
        by: Side,
    },
}

struct Call<L, U> {
    engine: Engine<L, U>,
    tx: ServerTxId,
    invite: Message,
    peer: Peer,
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
    let user = match engine
        .shared
        .registrar
        .authenticate(now, &invite, peer)
        .await
    {
        Ok(user) => user,
        Err(challenge) => {
            // 407 (or 403 for a source that keeps failing): the phone
            // retries with credentials in a new transaction.
            engine.send_response(tx, &challenge);
            return;
        }
    };
    let call_id = invite.call_id().unwrap_or_default().to_owned();
    let callee = invite
        .uri()
        .and_then(|uri| uri.as_sip().and_then(|sip| sip.user()).map(str::to_owned))
        .unwrap_or_default();
    let record = CdrBuilder::new(CallStart {
        id: CdrId::generate(),
        call_id: call_id.clone(),
        caller: Party::new(user.username.as_str(), user.display_name.as_deref()),
        callee: Party::new(callee.as_str(), None),
        source_channel: format!("extension/{}", user.username),
        direction: Direction::Internal,
        time: now,
    });
    engine.shared.active.fetch_add(1, Ordering::Relaxed);
    engine.shared.calls.fetch_add(1, Ordering::Relaxed);
    engine.emit(CallEvent::New {
        call_id: call_id.clone(),
        caller: user.username.clone(),
        callee: callee.clone(),
    });
    let mut call = Call {
        engine: engine.clone(),
        tx,
        invite,
        peer,
        a_tag: new_tag(),
        input,
        record,
        media: None,
        dialogs: Vec::new(),
        recorded: false,
        recording: None,
        call_id,
    };
    call.flow(SipDirection::Received, &call.invite.clone(), peer);
    let hangup = call.ring_and_talk(&callee, &mut inputs).await;
    for dialog in std::mem::take(&mut call.dialogs) {
        engine.shared.by_dialog.remove(&dialog);
    }
    let cdr = call.finish(hangup).await;
    let ended = CallEvent::Ended {
        call_id: cdr.call_id.clone(),
        disposition: cdr.disposition.as_str().to_owned(),
        sip_status: cdr.hangup.sip_status,
    };
    // Stored before the call stops counting as active and before anyone
    // hears it ended: a graceful shutdown that waits for the calls waits
    // for their records too, and a listener finds the record in the store.
    engine.store(cdr).await;
    engine.shared.active.fetch_sub(1, Ordering::Relaxed);
    engine.emit(ended);
}

impl<L, U> Call<L, U>
where
    L: Locator + 'static,
    U: UserBackend + 'static,
{
    /// The whole call; returns how it ended.
    async fn ring_and_talk(
        &mut self,
        callee: &str,
        inputs: &mut mpsc::Receiver<CallInput>,
    ) -> Hangup {
        let own = self.contacts(callee).await;
        let routing = self.routing(callee, !own.is_empty());
        let mut phones = Vec::new();
        if own.is_empty() {
            for target in &routing.targets {
                let bindings = self.contacts(target).await;
                phones.extend(bindings.into_iter().map(|b| (target.clone(), b)));
            }
        } else {
            // The dialled extension itself: its phones were just looked up.
            phones.extend(own.into_iter().map(|b| (callee.to_owned(), b)));
        }
        // Parallel: one stage of every phone. Sequential: a group's
        // members one by one (each member's phones together), or one
        // extension's phones one by one.
        let stages: Vec<Vec<(String, Binding)>> = match routing.strategy {
            Strategy::Parallel if !phones.is_empty() => vec![phones],
            Strategy::Parallel => Vec::new(),
            Strategy::Sequential if routing.targets.len() > 1 => routing
                .targets
                .iter()
                .map(|t| phones.iter().filter(|(n, _)| n == t).cloned().collect())
                .filter(|stage: &Vec<(String, Binding)>| !stage.is_empty())
                .collect(),
            Strategy::Sequential => phones.into_iter().map(|phone| vec![phone]).collect(),
        };
        if stages.is_empty() {
            // Not registered (or no such extension: the same answer, so
            // nobody learns which numbers exist).
            self.answer_status(StatusCode::TEMPORARILY_UNAVAILABLE);
            let hangup = Hangup::new(HangupCause::Rejected, Some(480), Side::Pbx);
            return hangup;
        }
        let config = &self.engine.shared.config;
        self.recorded = routing.record.unwrap_or(config.record);
        let media_proxy = routing.media_proxy.unwrap_or(config.media_proxy);
        let ring_timeout = routing.ring_timeout.unwrap_or(config.ring_timeout);
        let offer = self.sdp_of(&self.invite.clone());
        let everyone: Vec<Binding> = stages.iter().flatten().map(|(_, b)| b.clone()).collect();
        self.media = self.open_media(offer.as_ref(), &everyone, media_proxy);
        let b_offer = offer.map(|mut sdp| {
            if let Some(media) = &self.media {
                anchor::anchor(&mut sdp, media.local(Leg::B));
            }
            sdp.to_string()
        });
        let mut best: Option<StatusCode> = None;
        let mut last = None;
        for stage in &stages {
            let (mut forks, mut events) = self.fork(stage, b_offer.as_deref());
            if forks.is_empty() {
                continue;
            }
            let outcome = self
                .ring(&mut forks, &mut events, inputs, ring_timeout)
                .await;
            let (fork, b_dialog) = match outcome {
                Outcome::Answered { fork, dialog } => (fork, dialog),
                Outcome::Failed { status, cause, by } => {
                    self.cancel_all(&mut forks);
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
            forks[fork].pending = false;
            self.cancel_all(&mut forks);
            // Our 200 registered the A dialog.
            let a_dialog = self.a_dialog();
            let (cause, by) = self.talk(&a_dialog, &b_dialog, inputs).await;
            return Hangup::new(cause, Some(200), by);
        }
        let status = best.unwrap_or(StatusCode::TEMPORARILY_UNAVAILABLE);
        self.answer_status(status);
        let (cause, by) = last.unwrap_or((HangupCause::Failure, Side::Pbx));
        Hangup::new(cause, Some(status.as_u16()), by)
    }

    /// Where the dialled number goes: a `registered` extension's own number
    /// rings its phones; otherwise the first route that takes it.
    fn routing(&mut self, callee: &str, registered: bool) -> Routing {
        let direct = Routing {
            name: String::new(),
            targets: vec![callee.to_owned()],
            strategy: Strategy::Parallel,
            ring_timeout: None,
            record: None,
            media_proxy: None,
        };
        if callee.is_empty() || registered {
            self.record
                .routed(format!("extension/{callee}"), Direction::Internal);
            return direct;
        }
        let routed = self
            .engine
            .shared
            .config
            .router
            .as_ref()
            .and_then(|router| router.route(callee));
        match routed {
            Some(routing) => {
                self.record
                    .routed(format!("route/{}", routing.name), Direction::Internal);
                routing
            }
            None => direct,
        }
    }

    /// The callee's live contacts: registered at the address the caller
    /// dialled, or at our domain.
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
        for host in dialled_host.into_iter().chain([domain]) {
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
    fn open_media(
        &self,
        offer: Option<&Sdp>,
        bindings: &[Binding],
        media_proxy: MediaProxy,
    ) -> Option<Session> {
        let shared = &self.engine.shared;
        let relay = shared.relay.as_ref()?;
        let offer = offer?;
        let caller_nat = anchor::behind_nat(
            anchor::target(offer).map(|t| t.rtp.ip()),
            self.peer.addr.ip(),
        );
        // A callee registered from an address its Contact does not name
        // is behind NAT too.
        let callee_nat = bindings
            .iter()
            .any(|b| anchor::behind_nat(contact_ip(&b.contact), b.flow.addr.ip()));
        let anchor = match media_proxy {
            MediaProxy::None => false,
            MediaProxy::Always => true,
            MediaProxy::Nat => caller_nat || callee_nat,
            MediaProxy::Auto => caller_nat || callee_nat || self.recorded,
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

    /// Sends an INVITE to every contact; each fork's responses come out of
    /// one channel.
    fn fork(
        &mut self,
        phones: &[(String, Binding)],
        offer: Option<&str>,
    ) -> (Vec<Fork>, mpsc::Receiver<ForkEvent>) {
        let (sender, events) = mpsc::channel(32);
        let mut forks = Vec::new();
        let endpoint = self.engine.shared.endpoint.clone();
        let from_tag = new_tag();
        let b_call_id = format!("{}@trunkline", new_tag());
        for (callee, binding) in phones {
            let request = match self.b_invite(callee, binding, offer, &from_tag, &b_call_id) {
                Some(request) => request,
                None => continue,
            };
            match endpoint.send_request(request.clone(), binding.flow) {
                Ok(mut client) => {
                    self.flow(SipDirection::Sent, &request, binding.flow);
                    let fork = forks.len();
                    let sender = sender.clone();
                    forks.push(Fork {
                        tx: client.id(),
                        binding: binding.clone(),
                        pending: true,
                    });
                    tokio::spawn(async move {
                        while let Some(event) = client.next().await {
                            if sender.send(ForkEvent { fork, event }).await.is_err() {
                                return;
                            }
                        }
                    });
                }
                Err(e) => tracing::warn!(contact = binding.contact, "INVITE not sent: {e}"),
            }
        }
        (forks, events)
    }

    /// The INVITE for one B leg: a new dialog (Call-ID, tags) of our own,
    /// the caller's identity, the offer anchored or as it came.
    fn b_invite(
        &self,
        callee: &str,
        binding: &Binding,
        offer: Option<&str>,
        from_tag: &str,
        call_id: &str,
    ) -> Option<Message> {
        let endpoint = &self.engine.shared.endpoint;
        let transport = binding.flow.transport;
        let via = endpoint.via(transport)?;
        let local = endpoint.local_addr(transport)?;
        let domain = &self.engine.shared.config.domain;
        let from = self.invite.from()?;
        let caller_uri = from.uri().as_str().to_owned();
        let display = from
            .display_name()
            .map(|name| format!("\"{name}\" "))
            .unwrap_or_default();
        let hops = self.invite.max_forwards().unwrap_or(70).saturating_sub(1);
        let mut builder = Message::request(Method::Invite, binding.contact.clone())
            .header(HeaderName::Via, via)
            .header(HeaderName::MaxForwards, hops.to_string())
            .header(
                HeaderName::From,
                format!("{display}<{caller_uri}>;tag={from_tag}"),
            )
            .header(HeaderName::To, format!("<sip:{callee}@{domain}>"))
            .header(HeaderName::CallId, call_id)
            .header(HeaderName::CSeq, "1 INVITE")
            .header(
                HeaderName::Contact,
                format!("<sip:trunkline@{local}{}>", transport_param(transport)),
            );
        for path in &binding.path {
            builder = builder.header(HeaderName::Route, path.as_str());
        }
        if let Some(offer) = offer {
            builder = builder.body(SDP, offer.to_owned());
        }
        builder.build().ok()
    }

    /// Waits for an answer, a refusal from everyone, the caller's CANCEL
    /// or the ring timeout; passes ringing and early media to the caller.
    async fn ring(
        &mut self,
        forks: &mut [Fork],
        events: &mut mpsc::Receiver<ForkEvent>,
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
                event = events.recv() => {
                    let Some(ForkEvent { fork, event }) = event else {
                        return self.refused(best);
                    };
                    let peer = forks[fork].binding.flow;
                    let (response, dialog) = match event {
                        ClientEvent::Response { response, dialog } => (response, dialog),
                        ClientEvent::Timeout => {
                            forks[fork].pending = false;
                            best = Some(better(best, StatusCode::REQUEST_TIMEOUT));
                            if forks.iter().all(|f| !f.pending) {
                                return self.refused(best);
                            }
                            continue;
                        }
                    };
                    self.flow(SipDirection::Received, &response, peer);
                    let Some(status) = response.status() else { continue };
                    if status.is_provisional() {
                        if status.as_u16() >= 180 && !rang {
                            rang = true;
                            self.record.ringing(SystemTime::now());
                            self.engine.emit(CallEvent::Ringing { call_id: self.call_id.clone() });
                        }
                        if status.as_u16() >= 180 {
                            let early_sdp = self.sdp_of(&response);
                            self.pass_provisional(status, early_sdp, dialog.as_ref());
                        }
                        continue;
                    }
                    forks[fork].pending = false;
                    if status.is_success() {
                        let Some(dialog) = dialog else { continue };
                        self.register(&dialog);
                        // The dialog's ACK: CSeq 1 of our INVITE.
                        if let Err(e) = self.engine.shared.endpoint.ack_in_dialog(forks[fork].tx, &dialog, 1) {
                            tracing::warn!(call_id = self.call_id, "ACK not sent: {e}");
                        }
                        let answer = self.sdp_of(&response);
                        if !self.answer_caller(answer) {
                            self.bye(&dialog).await;
                            return Outcome::Failed {
                                status: StatusCode::SERVER_INTERNAL_ERROR,
                                cause: HangupCause::Failure,
                                by: Side::Pbx,
                            };
                        }
                        self.record.answered(SystemTime::now());
                        self.start_recording();
                        self.engine.emit(CallEvent::Answered { call_id: self.call_id.clone() });
                        return Outcome::Answered { fork, dialog };
                    }
                    best = Some(better(best, status));
                    if status.as_u16() >= 600 || forks.iter().all(|f| !f.pending) {
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
                    Some(CallInput::Request { tx: Some(tx), request, .. }) => {
                        // Nothing but CANCEL (handled by the transaction
                        // layer) belongs to a call that is still ringing.
                        self.engine.reply(tx, &request, StatusCode::REQUEST_PENDING);
                    }
                    Some(_) => {}
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

    /// The 200 to the caller; `false` if it could not be built.
    fn answer_caller(&mut self, answer: Option<Sdp>) -> bool {
        let mut builder = self.a_response(StatusCode::OK);
        if let Some(mut sdp) = answer {
            self.learn_and_anchor(&mut sdp, Leg::B);
            builder = builder.body(SDP, sdp.to_string());
        }
        self.send_a(builder)
    }

    /// The answered call: requests pass from one dialog to the other until
    /// a BYE.
    async fn talk(
        &mut self,
        a_dialog: &DialogId,
        b_dialog: &DialogId,
        inputs: &mut mpsc::Receiver<CallInput>,
    ) -> (HangupCause, Side) {
        while let Some(input) = inputs.recv().await {
            match input {
                CallInput::Request {
                    tx,
                    request,
                    peer,
                    dialog,
                } => {
                    self.flow(SipDirection::Received, &request, peer);
                    if dialog != *a_dialog && dialog != *b_dialog {
                        // The early dialog of a fork that lost: it is over.
                        if let Some(tx) = tx {
                            self.engine.reply(
                                tx,
                                &request,
                                StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST,
                            );
                        }
                        continue;
                    }
                    let from_a = dialog == *a_dialog;
                    let (to, side) = if from_a {
                        (b_dialog, Side::Caller)
                    } else {
                        (a_dialog, Side::Callee)
                    };
                    let Some(tx) = tx else {
                        // The ACK of our 2xx; the B side's ACKs we send
                        // ourselves.
                        continue;
                    };
                    if request.method() == Some(&Method::Bye) {
                        self.engine.reply(tx, &request, StatusCode::OK);
                        self.bye(to).await;
                        return (HangupCause::NormalClearing, side);
                    }
                    let leg = if from_a { Leg::A } else { Leg::B };
                    self.pass_across(tx, &request, leg, to).await;
                }
                CallInput::AckTimeout => {
                    // The endpoint already hung up on the caller.
                    self.bye(b_dialog).await;
                    return (HangupCause::Failure, Side::Caller);
                }
                CallInput::DialogEnded(dialog) => {
                    // Ended under us (481, a timeout): end the other side.
                    // The early dialogs of forks that lost end too, and
                    // change nothing.
                    let (other, side) = if dialog == *a_dialog {
                        (b_dialog, Side::Caller)
                    } else if dialog == *b_dialog {
                        (a_dialog, Side::Callee)
                    } else {
                        continue;
                    };
                    self.bye(other).await;
                    return (HangupCause::Failure, side);
                }
                CallInput::Cancelled => {}
            }
        }
        (HangupCause::Failure, Side::Pbx)
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
        if let Some(sdp) = &mut offer {
            if method == Method::Invite {
                self.engine.emit(CallEvent::Held {
                    call_id: self.call_id.clone(),
                    held: anchor::holds(sdp),
                });
            }
            self.learn_and_anchor(sdp, from);
            builder = builder.body(SDP, sdp.to_string());
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
            self.learn_and_anchor(&mut sdp, other);
            back = back.body(SDP, sdp.to_string());
        }
        if let Ok(back) = back.build() {
            self.engine.send_response(tx, &back);
        }
    }

    /// Hangs up one dialog, waiting (bounded) for the answer.
    async fn bye(&mut self, dialog: &DialogId) {
        let endpoint = self.engine.shared.endpoint.clone();
        let Ok(bye) = endpoint
            .request_in_dialog(dialog, Method::Bye)
            .and_then(|b| b.build().map_err(trunkline_transaction::Error::Build))
        else {
            return;
        };
        if let Ok(mut client) = endpoint.send_in_dialog(dialog, bye) {
            let limit = self.engine.shared.config.request_timeout;
            let _ = tokio::time::timeout(limit, client.final_response()).await;
        }
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

    /// The A leg's dialog, as the transaction layer keys it once our 2xx
    /// (or a 1xx with our tag) went out.
    fn a_dialog(&self) -> DialogId {
        DialogId {
            call_id: self.invite.share(self.invite.call_id().unwrap_or_default()),
            local_tag: self.a_tag.clone().into(),
            remote_tag: self
                .invite
                .share(self.invite.from_tag().unwrap_or_default()),
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
        let endpoint = &self.engine.shared.endpoint;
        if let Some(local) = endpoint.local_addr(self.peer.transport) {
            builder = builder.header(
                HeaderName::Contact,
                format!(
                    "<sip:trunkline@{local}{}>",
                    transport_param(self.peer.transport)
                ),
            );
        }
        builder
    }

    /// Sends a response to the caller's INVITE; `false` if it failed.
    fn send_a(&mut self, builder: MessageBuilder) -> bool {
        let Ok(response) = builder.build() else {
            return false;
        };
        // A response with our tag makes the A dialog (early or
        // confirmed): it must reach this call before the caller's ACK or
        // BYE.
        if response.status().is_some_and(|s| s.as_u16() > 100) {
            let dialog = self.a_dialog();
            self.register(&dialog);
        }
        self.flow(SipDirection::Sent, &response, self.peer);
        match self.engine.shared.endpoint.respond(self.tx, &response) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(call_id = self.call_id, "response not sent: {e}");
                false
            }
        }
    }

    /// A final non-2xx to the caller.
    fn answer_status(&mut self, status: StatusCode) {
        let builder = self.invite.response_to(status).to_tag(&self.a_tag);
        let Ok(response) = builder.build() else {
            return;
        };
        self.flow(SipDirection::Sent, &response, self.peer);
        self.engine.send_response(self.tx, &response);
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
    async fn finish(mut self, hangup: Hangup) -> trunkline_cdr::Cdr {
        let ended = SystemTime::now();
        drop(self.media.take());
        if let Some(recording) = self.recording.take() {
            // Its tap closed with the session: the file is finished next.
            let _ = recording.await;
        }
        self.record.end(ended, hangup)
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

/// The IP address a contact URI names, if it names one.
fn contact_ip(contact: &str) -> Option<std::net::IpAddr> {
    let uri = trunkline_sip::Uri::parse(contact).ok()?;
    match uri.as_sip()?.host() {
        trunkline_sip::Host::Ipv4(ip) => Some(ip.into()),
        trunkline_sip::Host::Ipv6(ip) => Some(ip.into()),
        trunkline_sip::Host::Domain(_) => None,
    }
}

fn transport_param(transport: trunkline_transaction::Transport) -> &'static str {
    use trunkline_transaction::Transport;
    match transport {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
        Transport::Ws | Transport::Wss => ";transport=ws",
    }
}
