//! A blind transfer done by the B2BUA: the PBX rings the target itself
//! and, once it answers, swaps it in for the party it replaces.

use super::{Call, Destination, ForkResponse, better, leg_in, leg_of, side_of, slot};
use crate::anchor;
use crate::control::{CallCommand, CallSide, CommandError, Order};
use crate::{CallEvent, CallInput, RouteDecision, RouteRequest, TransferProgress};
use tokio::sync::{mpsc, oneshot};
use trunkline_cdr::{HangupCause, Side, SipDirection};
use trunkline_media::relay::Leg;
use trunkline_media::sdp::Sdp;
use trunkline_registrar::{Locator, UserBackend};
use trunkline_sip::{Method, StatusCode};
use trunkline_transaction::{DialogId, Peer, Transport};

/// What a transfer did: the command's outcome, and how the call ended
/// if it ended meanwhile.
type Transferred = (Result<(), CommandError>, Option<(HangupCause, Side)>);

impl<L, U> Call<L, U>
where
    L: Locator + 'static,
    U: UserBackend + 'static,
{
    /// Connects `side` to `target` in place of the other party. The
    /// target is offered what the replaced party was last sent; once it
    /// answers, the relay (or, without one, a re-INVITE of the party that
    /// stays) points the two at each other and the replaced party gets a
    /// BYE. While the target rings, the call goes on; a refusal or the
    /// ring timeout leaves it as it was.
    pub(super) async fn transfer(
        &mut self,
        dialogs: &mut [Option<DialogId>; 2],
        side: CallSide,
        target: &str,
        inputs: &mut mpsc::Receiver<CallInput>,
    ) -> Transferred {
        let kept = leg_of(side);
        let replaced = kept.other();
        if dialogs[slot(kept)].is_none() {
            return (Err(CommandError::WrongState("without that party")), None);
        }
        let offer = match &self.last_sent[slot(replaced)] {
            Some(offer) => offer.clone(),
            // A call the API accepted: the caller's own offer.
            None if kept == Leg::A => match self.sdp_of(&self.invite.clone()) {
                Some(offer) => offer,
                None => return (Err(CommandError::WrongState("without media")), None),
            },
            None => return (Err(CommandError::WrongState("without media")), None),
        };
        let destinations = match self.transfer_destinations(target).await {
            Ok(destinations) if destinations.is_empty() => {
                return (Err(CommandError::Refused(480)), None);
            }
            Ok(destinations) => destinations,
            Err(e) => return (Err(e), None),
        };
        let mut forks = self.fork(&destinations, Some(offer.to_string()));
        if forks.list.is_empty() {
            return (Err(CommandError::Refused(503)), None);
        }
        self.transfer_event(side, target, TransferProgress::Trying, None);
        let ring_timeout = self.engine.shared.config.ring_timeout;
        let timeout = tokio::time::sleep(ring_timeout);
        tokio::pin!(timeout);
        let mut best: Option<StatusCode> = None;
        let mut rang = false;
        let failed = loop {
            tokio::select! {
                event = forks.next(&mut best) => {
                    let Some(ForkResponse { fork, response, dialog }) = event else {
                        break best;
                    };
                    let peer = forks.list[fork].destination.flow;
                    self.flow(SipDirection::Received, &response, peer);
                    let Some(status) = response.status() else { continue };
                    if status.is_provisional() {
                        if status.as_u16() >= 180 && !rang {
                            rang = true;
                            self.transfer_event(side, target, TransferProgress::Ringing, None);
                        }
                        continue;
                    }
                    let challenged = matches!(
                        status,
                        StatusCode::UNAUTHORIZED | StatusCode::PROXY_AUTHENTICATION_REQUIRED
                    );
                    if challenged && self.answer_challenge(&mut forks, fork, &response) {
                        continue;
                    }
                    forks.list[fork].pending = false;
                    if status.is_success() {
                        let Some(dialog) = dialog else { continue };
                        self.take_answer(&forks, fork, &dialog, (replaced, &response));
                        self.cancel_all(&mut forks.list);
                        let answer = self.sdp_of(&response);
                        let joined = Joined { dialog, peer, offer, answer, call_id: forks.call_id.clone() };
                        return self.swap_in(dialogs, side, target, joined).await;
                    }
                    best = Some(better(best, status));
                    if status.as_u16() >= 600 || forks.list.iter().all(|f| !f.pending) {
                        break best;
                    }
                }
                input = inputs.recv() => {
                    let Some(input) = input else {
                        self.cancel_all(&mut forks.list);
                        return (Err(CommandError::Ended), Some((HangupCause::Failure, Side::Pbx)));
                    };
                    if let Some(ended) = self.input_while_transferring(input, dialogs, kept) {
                        self.cancel_all(&mut forks.list);
                        self.transfer_event(side, target, TransferProgress::Failed, None);
                        return (Err(CommandError::Ended), Some(ended));
                    }
                }
                () = &mut timeout => break Some(better(best, StatusCode::REQUEST_TIMEOUT)),
            }
        };
        self.cancel_all(&mut forks.list);
        let status = failed
            .unwrap_or(StatusCode::TEMPORARILY_UNAVAILABLE)
            .as_u16();
        self.transfer_event(side, target, TransferProgress::Failed, Some(status));
        let error = match status {
            408 => CommandError::Timeout,
            status => CommandError::Refused(status),
        };
        if dialogs[slot(replaced)].is_none() {
            // The replaced party left while the target rang, and nobody
            // is coming: the call is over.
            if let Some(kept_dialog) = dialogs[slot(kept)].clone() {
                self.bye(&kept_dialog).await;
            }
            return (
                Err(error),
                Some((HangupCause::NormalClearing, side_of(replaced))),
            );
        }
        (Err(error), None)
    }

    /// The blind transfer by REFER (RFC 5359 §2.4): when the target is
    /// one the PBX routes (an extension or a number) and can reach, and
    /// the phone of `side` takes REFER, it calls the target itself.
    /// `Err` gives `done` back for the B2BUA to do it.
    pub(super) async fn refer_transfer(
        &mut self,
        dialogs: &[Option<DialogId>; 2],
        side: CallSide,
        target: &str,
        done: oneshot::Sender<Result<(), CommandError>>,
    ) -> Result<(), oneshot::Sender<Result<(), CommandError>>> {
        let Ok(Some(number)) = self.own_number(target) else {
            return Err(done);
        };
        match self.transfer_destinations(target).await {
            Ok(destinations) if !destinations.is_empty() => {}
            // The B2BUA's attempt reports why not.
            _ => return Err(done),
        }
        self.refer(dialogs, side, (&number, target), None, done)
            .await
    }

    /// The number a target names when the PBX routes it (a number, or a
    /// SIP URI in our domain); `None` for a foreign SIP URI.
    fn own_number(&self, target: &str) -> Result<Option<String>, CommandError> {
        let number = if target.starts_with("sip:") || target.starts_with("sips:") {
            let address = crate::SipAddress::parse(target)
                .map_err(|e| CommandError::Invalid(format!("target: {e}")))?;
            match address.user() {
                Some(user) if self.is_own_host(address.host()) => user.to_owned(),
                _ => return Ok(None),
            }
        } else {
            target.to_owned()
        };
        if !crate::control::is_number(&number) {
            return Err(CommandError::Invalid(
                "target: an extension, a number or a SIP URI".into(),
            ));
        }
        Ok(Some(number))
    }

    /// Whether `host` names this PBX: its domain, or an address it
    /// listens on.
    fn is_own_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.eq_ignore_ascii_case(&self.engine.shared.config.domain) {
            return true;
        }
        let Ok(ip) = host.parse::<std::net::IpAddr>() else {
            return false;
        };
        let endpoint = &self.engine.shared.endpoint;
        Transport::ALL
            .into_iter()
            .filter_map(|transport| endpoint.local_addr(transport))
            .any(|local| local.ip() == ip)
    }

    /// A request or command while the target rings; `Some` if it ended
    /// the call (the party that stays hung up, or the API did).
    fn input_while_transferring(
        &mut self,
        input: CallInput,
        dialogs: &mut [Option<DialogId>; 2],
        kept: Leg,
    ) -> Option<(HangupCause, Side)> {
        match input {
            CallInput::Request {
                tx,
                request,
                peer,
                dialog,
            } => {
                self.flow(SipDirection::Received, &request, peer);
                let tx = tx?;
                let Some(leg) = leg_in(dialogs, &dialog) else {
                    let status = StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST;
                    self.engine.reply(tx, &request, status);
                    return None;
                };
                if request.method() != Some(&Method::Bye) {
                    self.engine.reply(tx, &request, StatusCode::REQUEST_PENDING);
                    return None;
                }
                self.engine.reply(tx, &request, StatusCode::OK);
                self.party_left(dialogs, leg, kept)
            }
            CallInput::DialogEnded(dialog) => {
                let leg = leg_in(dialogs, &dialog)?;
                self.party_left(dialogs, leg, kept)
            }
            CallInput::AckTimeout => self.party_left(dialogs, Leg::A, kept),
            CallInput::Command(order) => self.command_while_transferring(order, dialogs),
            CallInput::HandOver { done, .. } => {
                let _ = done.send(Err(CommandError::WrongState("transferring")));
                None
            }
            CallInput::Join(joining) => {
                // The caller of the join hangs the handed party up.
                let _ = joining
                    .done
                    .send(Err(CommandError::WrongState("transferring")));
                None
            }
            CallInput::Cancelled => None,
            other => {
                self.not_now(other);
                None
            }
        }
    }

    /// A party hung up during a transfer: the one that stays ends the
    /// call (the other gets a BYE from the caller of this, via the
    /// returned end); the one being replaced just goes.
    fn party_left(
        &mut self,
        dialogs: &mut [Option<DialogId>; 2],
        leg: Leg,
        kept: Leg,
    ) -> Option<(HangupCause, Side)> {
        dialogs[slot(leg)] = None;
        if leg != kept {
            return None;
        }
        if let Some(other) = dialogs[slot(kept.other())].take() {
            // Hung up from the call task after the forks are cancelled.
            let engine = self.engine.clone();
            tokio::spawn(async move { engine.bye_dialog(&other).await });
        }
        Some((HangupCause::NormalClearing, side_of(leg)))
    }

    fn command_while_transferring(
        &mut self,
        order: Order,
        dialogs: &mut [Option<DialogId>; 2],
    ) -> Option<(HangupCause, Side)> {
        let CallCommand::Hangup { reason } = &order.command else {
            order.reply(Err(CommandError::WrongState("transferring")));
            return None;
        };
        self.reason.clone_from(reason);
        order.reply(Ok(()));
        for dialog in dialogs.iter_mut().filter_map(Option::take) {
            let engine = self.engine.clone();
            tokio::spawn(async move { engine.bye_dialog(&dialog).await });
        }
        Some((HangupCause::NormalClearing, Side::Pbx))
    }

    /// The target answered: it takes the replaced party's place.
    async fn swap_in(
        &mut self,
        dialogs: &mut [Option<DialogId>; 2],
        side: CallSide,
        target: &str,
        joined: Joined,
    ) -> Transferred {
        let kept = leg_of(side);
        let replaced = kept.other();
        let Joined {
            dialog,
            peer,
            offer,
            answer,
            call_id,
        } = joined;
        self.last_heard[slot(replaced)].clone_from(&answer);
        match (&self.media, answer) {
            (Some(media), Some(answer)) => {
                if let Some(target) = anchor::target(&answer) {
                    media.replace_remote(replaced, target.rtp, target.rtcp);
                }
            }
            (None, Some(answer)) => {
                let Some(kept_dialog) = dialogs[slot(kept)].clone() else {
                    self.bye(&dialog).await;
                    return (Err(CommandError::Ended), None);
                };
                if let Err(e) = self.reinvite(&kept_dialog, kept, answer).await {
                    // The party that stays would not take the target's
                    // media: the target goes, the call stays as it was.
                    self.bye(&dialog).await;
                    self.transfer_event(side, target, TransferProgress::Failed, e.sip_status());
                    return (Err(e), None);
                }
            }
            (_, None) => {}
        }
        // A phone that asked for this transfer is the one replaced: it
        // hears it worked before its BYE.
        self.tell_asker(200).await;
        if let Some(old) = dialogs[slot(replaced)].take() {
            self.bye(&old).await;
        }
        dialogs[slot(replaced)] = Some(dialog);
        self.last_sent[slot(replaced)] = Some(offer);
        match replaced {
            Leg::A => self.peer = peer,
            Leg::B => self.b_peer = Some(peer),
        }
        self.controlled.answer_to(&call_id);
        let target_name = target.to_owned();
        self.listed.update(|c| match side {
            CallSide::Caller => c.callee = target_name,
            CallSide::Callee => c.caller = target_name,
        });
        self.transfer_event(side, target, TransferProgress::Answered, Some(200));
        (Ok(()), None)
    }

    /// The phones or trunk a transfer target means: an extension's
    /// phones, what the routes make of a number, or a SIP URI outside our
    /// domain as it is.
    async fn transfer_destinations(&self, target: &str) -> Result<Vec<Destination>, CommandError> {
        let config = &self.engine.shared.config;
        let Some(number) = self.own_number(target)? else {
            let address = crate::SipAddress::parse(target)
                .map_err(|e| CommandError::Invalid(format!("target: {e}")))?;
            let flow = address
                .peer()
                .await
                .map_err(|e| CommandError::Invalid(format!("target: {e}")))?;
            return Ok(vec![Destination::uri(0, &address, flow)]);
        };
        let phones = self.contacts(&number).await;
        if !phones.is_empty() {
            let domain = &config.domain;
            return Ok(phones
                .into_iter()
                .map(|binding| Destination::phone(0, &number, binding, domain))
                .collect());
        }
        // Not an extension with phones: the routes decide, as they would
        // for the number dialled.
        let Some(router) = config.router.clone() else {
            return Ok(Vec::new());
        };
        let request = RouteRequest {
            invite: self.invite.clone(),
            source: self.peer.addr,
            dialled: number.clone(),
            trunk: None,
            caller: self.caller.clone(),
            extension: Some(number),
            registered: false,
        };
        match router.route(&request).await {
            RouteDecision::Route(routing) => Ok(self.destinations(&routing).await),
            RouteDecision::Refuse { status, .. } => Err(CommandError::Refused(status.as_u16())),
            RouteDecision::Default => Ok(Vec::new()),
        }
    }

    pub(super) fn transfer_event(
        &self,
        side: CallSide,
        target: &str,
        progress: TransferProgress,
        sip_status: Option<u16>,
    ) {
        self.engine.emit(CallEvent::Transferred {
            call_id: self.call_id.clone(),
            side,
            target: target.to_owned(),
            progress,
            sip_status,
        });
    }
}

/// The target's answered dialog and what was agreed in it.
struct Joined {
    dialog: DialogId,
    peer: Peer,
    offer: Sdp,
    answer: Option<Sdp>,
    call_id: String,
}
