//! Transfers the phones carry out themselves: the PBX sends the party
//! that stays a REFER (RFC 3515) and the phone calls the target through
//! the PBX, reporting how it goes in NOTIFYs of `message/sipfrag` (RFC
//! 5359 §2.4). With `Replaces` in the Refer-To (RFC 3891) the phone's
//! INVITE takes the place of a party of another call: an attended
//! transfer. A phone that does not take REFER is transferred by the
//! B2BUA instead (`transfer.rs`, `join.rs`).

use super::{Call, leg_in, leg_of, side_of, slot};
use crate::address::transport_param;
use crate::anchor;
use crate::control::{CallSide, CommandError};
use crate::{CallEvent, TransferProgress};
use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::time::Instant;
use trunkline_cdr::{HangupCause, Side, SipDirection};
use trunkline_media::relay::Leg;
use trunkline_registrar::{Locator, UserBackend};
use trunkline_sip::{HeaderName, Message, Method, StatusCode};
use trunkline_transaction::{ClientEvent, DialogId, Peer, ServerTxId, new_tag};

/// What a party's phone said it can do, in its INVITE or its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Abilities {
    /// REFER in its `Allow`.
    refer: bool,
    /// `replaces` in its `Supported` (RFC 3891 §6.1).
    replaces: bool,
}

impl Abilities {
    /// An extension's phone's, from its INVITE or 2xx. Trunks and foreign
    /// URIs are never sent REFERs: the INVITE it asks for would come back
    /// as a call the PBX cannot authenticate.
    pub(crate) fn of(message: &Message) -> Abilities {
        Abilities {
            refer: message.allow().any(|m| m.eq_ignore_ascii_case("REFER")),
            replaces: message
                .supported()
                .any(|o| o.eq_ignore_ascii_case("replaces")),
        }
    }
}

/// A REFER the party's phone accepted, until its NOTIFYs tell how the
/// call to the target went.
#[derive(Debug)]
pub(crate) struct Referral {
    /// The party that stays (the transferee).
    side: CallSide,
    /// Its dialog, where the NOTIFYs come.
    dialog: DialogId,
    /// The target as the command named it, for the events.
    target: String,
    rang: bool,
    /// When the transfer is given up (the ring timeout and then some).
    deadline: Instant,
    done: oneshot::Sender<Result<(), CommandError>>,
    /// The dialog the REFER offered to replace, while it may be.
    _offered: Option<Offered>,
}

/// A dialog a REFER offered to replace, withdrawn when the transfer is
/// over however it ends.
#[derive(Debug)]
struct Offered {
    offers: Arc<DashMap<DialogId, ()>>,
    dialog: DialogId,
}

impl Drop for Offered {
    fn drop(&mut self) {
        self.offers.remove(&self.dialog);
    }
}

impl Referral {
    /// When the transfer is given up.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether `leg` is the party this transfer replaces.
    pub(crate) fn replaces(&self, leg: Leg) -> bool {
        leg_of(self.side) != leg
    }
}

/// An attended transfer asked of the call whose party takes the REFER.
#[derive(Debug)]
pub(crate) struct ReferOrder {
    /// The transferee.
    pub(crate) side: CallSide,
    /// Named in the events.
    pub(crate) target: String,
    /// The dialog of the other call the transferee's INVITE replaces.
    pub(crate) replaces: DialogId,
    /// `true` once the phone accepted the REFER; `false` if it does not
    /// take one (the B2BUA joins the calls instead).
    pub(crate) taken: oneshot::Sender<bool>,
    pub(crate) done: oneshot::Sender<Result<(), CommandError>>,
}

/// An INVITE with `Replaces` naming one of a call's dialogs.
#[derive(Debug)]
pub(crate) struct Replacing {
    pub(crate) tx: ServerTxId,
    pub(crate) invite: Message,
    pub(crate) peer: Peer,
    /// The dialog it names.
    pub(crate) replaces: DialogId,
    /// The authenticated caller's number.
    pub(crate) number: String,
}

/// The dialog a `Replaces` header names, from the PBX's side (RFC 3891
/// §3: its `to-tag` is our tag); `None` without both tags.
pub(crate) fn replaced_dialog(invite: &Message) -> Option<DialogId> {
    let replaces = invite.replaces()?;
    Some(DialogId {
        call_id: replaces.call_id.to_owned().into(),
        local_tag: replaces.to_tag()?.to_owned().into(),
        remote_tag: replaces.from_tag()?.to_owned().into(),
    })
}

/// The dialog a Refer-To's `Replaces` header names (its URI headers,
/// `%`-escaped, RFC 3891 §3: `to-tag` is our tag).
fn replaces_in(headers: &str) -> Option<DialogId> {
    let value = headers.split('&').find_map(|h| {
        h.strip_prefix("Replaces=")
            .or_else(|| h.strip_prefix("replaces="))
    })?;
    let value = unescape(value)?;
    let mut parts = value.split(';');
    let call_id = parts.next()?.trim();
    let (mut local, mut remote) = (None, None);
    for param in parts {
        match param.trim().split_once('=') {
            Some(("to-tag", tag)) => local = Some(tag.to_owned()),
            Some(("from-tag", tag)) => remote = Some(tag.to_owned()),
            _ => {}
        }
    }
    Some(DialogId {
        call_id: call_id.to_owned().into(),
        local_tag: local?.into(),
        remote_tag: remote?.into(),
    })
}

/// `%XX` escapes undone; `None` for a bad escape or text that is not
/// UTF-8.
fn unescape(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// The final status in a NOTIFY's `message/sipfrag` status line.
fn sipfrag_status(notify: &Message) -> Option<u16> {
    let body = std::str::from_utf8(notify.body()).ok()?;
    let mut words = body.lines().next()?.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    words.next()?.parse().ok()
}

/// `text` escaped for a URI header's value (RFC 3261 §25.1: `hvalue`).
fn escape_header_value(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 16);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()[]/:+$".contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

impl<L, U> Call<L, U>
where
    L: Locator + 'static,
    U: UserBackend + 'static,
{
    /// Asks the phone of `side` to call `number` through the PBX (with
    /// `Replaces` naming `replaces`, for an attended transfer). `Err`
    /// gives `done` back when the phone does not take REFERs or refused
    /// this one: the B2BUA transfers it instead. Once the phone accepted,
    /// the call goes on until its NOTIFYs tell how the transfer went.
    pub(super) async fn refer(
        &mut self,
        dialogs: &[Option<DialogId>; 2],
        side: CallSide,
        (number, target): (&str, &str),
        replaces: Option<&DialogId>,
        done: oneshot::Sender<Result<(), CommandError>>,
    ) -> Result<(), oneshot::Sender<Result<(), CommandError>>> {
        let kept = leg_of(side);
        let abilities = self.abilities[slot(kept)];
        let able = abilities.refer && (replaces.is_none() || abilities.replaces);
        let (Some(dialog), true, None) = (dialogs[slot(kept)].clone(), able, &self.referral) else {
            return Err(done);
        };
        let Some(peer) = self.peer_of(kept) else {
            return Err(done);
        };
        let endpoint = self.engine.shared.endpoint.clone();
        let Some(local) = endpoint.local_addr(peer.transport) else {
            return Err(done);
        };
        let mut refer_to = format!("<sip:{number}@{local}{}", transport_param(peer.transport));
        if let Some(replaced) = replaces {
            let value = format!(
                "{};to-tag={};from-tag={}",
                replaced.call_id, replaced.local_tag, replaced.remote_tag
            );
            refer_to.push_str("?Replaces=");
            refer_to.push_str(&escape_header_value(&value));
        }
        refer_to.push('>');
        let request = endpoint
            .request_in_dialog(&dialog, Method::Refer)
            .map(|b| b.header(HeaderName::ReferTo, refer_to))
            .and_then(|b| b.build().map_err(trunkline_transaction::Error::Build));
        let Ok(request) = request else {
            return Err(done);
        };
        // Offered before the REFER goes: the phone's INVITE may overtake
        // its 202. Withdrawn when this returns without a referral.
        let offers = &self.engine.shared.offered_replaces;
        let offered = replaces.map(|dialog| {
            offers.insert(dialog.clone(), ());
            Offered {
                offers: offers.clone(),
                dialog: dialog.clone(),
            }
        });
        let Ok(mut client) = endpoint.send_in_dialog(&dialog, request.clone()) else {
            return Err(done);
        };
        self.flow(SipDirection::Sent, &request, peer);
        if !self.referred.contains(&dialog) {
            self.referred.push(dialog.clone());
        }
        let limit = self.engine.shared.config.request_timeout;
        let Ok(ClientEvent::Response { response, .. }) =
            tokio::time::timeout(limit, client.final_response()).await
        else {
            return Err(done);
        };
        self.flow(SipDirection::Received, &response, peer);
        if !response.status().is_some_and(|s| s.is_success()) {
            return Err(done);
        }
        self.transfer_event(side, target, TransferProgress::Trying, None);
        let config = &self.engine.shared.config;
        self.referral = Some(Referral {
            side,
            dialog,
            target: target.to_owned(),
            rang: false,
            deadline: Instant::now() + config.ring_timeout + 2 * config.request_timeout,
            done,
            _offered: offered,
        });
        Ok(())
    }

    /// Whether `request` is a NOTIFY about a REFER of ours; it is
    /// answered here, and the transfer moves on. `Some` once that ended
    /// the call.
    pub(super) async fn referral_notify(
        &mut self,
        tx: ServerTxId,
        request: &Message,
        dialogs: &mut [Option<DialogId>; 2],
        dialog: &DialogId,
    ) -> Option<Option<(HangupCause, Side)>> {
        let ours = request.method() == Some(&Method::Notify)
            && request
                .event()
                .is_some_and(|e| e.value().eq_ignore_ascii_case("refer"))
            && self.referred.contains(dialog);
        if !ours {
            return None;
        }
        self.engine.reply(tx, request, StatusCode::OK);
        let terminated = request
            .subscription_state()
            .is_some_and(|s| s.value().eq_ignore_ascii_case("terminated"));
        let Some(referral) = self.referral.as_mut().filter(|r| r.dialog == *dialog) else {
            // A late NOTIFY of a transfer already over.
            return Some(None);
        };
        let (side, target) = (referral.side, referral.target.clone());
        match sipfrag_status(request) {
            Some(status) if (180..200).contains(&status) && !referral.rang => {
                referral.rang = true;
                self.transfer_event(side, &target, TransferProgress::Ringing, None);
            }
            Some(status) if (200..300).contains(&status) => {
                return Some(Some(self.referred_away(dialogs).await));
            }
            Some(status) if status >= 300 => return Some(self.refer_failed(dialogs, status).await),
            // A subscription ended without a final status: the phone
            // gave up.
            _ if terminated => return Some(self.refer_failed(dialogs, 487).await),
            _ => {}
        }
        Some(None)
    }

    /// The transferee reached the target: both our parties hang up, and
    /// the call ends here (the transferee's new call goes on).
    async fn referred_away(&mut self, dialogs: &mut [Option<DialogId>; 2]) -> (HangupCause, Side) {
        self.tell_asker(200).await;
        if let Some(referral) = self.referral.take() {
            self.transfer_event(
                referral.side,
                &referral.target,
                TransferProgress::Answered,
                Some(200),
            );
            let _ = referral.done.send(Ok(()));
        }
        self.reason = Some("transferred".into());
        for dialog in dialogs.iter_mut().filter_map(Option::take) {
            self.bye(&dialog).await;
        }
        (HangupCause::NormalClearing, Side::Pbx)
    }

    /// The transfer failed with `status` (or timed out, 408): the call
    /// goes on as it was, unless the replaced party left meanwhile.
    pub(super) async fn refer_failed(
        &mut self,
        dialogs: &mut [Option<DialogId>; 2],
        status: u16,
    ) -> Option<(HangupCause, Side)> {
        let referral = self.referral.take()?;
        self.tell_asker(status).await;
        self.transfer_event(
            referral.side,
            &referral.target,
            TransferProgress::Failed,
            Some(status),
        );
        let error = match status {
            408 => CommandError::Timeout,
            status => CommandError::Refused(status),
        };
        let _ = referral.done.send(Err(error));
        let kept = leg_of(referral.side);
        if dialogs[slot(kept.other())].is_some() {
            return None;
        }
        // Nobody is left to talk to.
        if let Some(dialog) = dialogs[slot(kept)].take() {
            self.bye(&dialog).await;
        }
        Some((HangupCause::NormalClearing, side_of(kept.other())))
    }

    /// A REFER from the phone on `from` (RFC 3515): the PBX transfers
    /// the other party to its Refer-To itself, as a blind transfer of the
    /// API would (by REFER to that party's phone when it takes one, else
    /// by ringing the target), and tells the phone how it goes in NOTIFYs
    /// of `message/sipfrag`. `Some` once that ended the call.
    pub(super) async fn refer_asked(
        &mut self,
        tx: ServerTxId,
        request: &Message,
        from: Leg,
        dialogs: &mut [Option<DialogId>; 2],
        inputs: &mut tokio::sync::mpsc::Receiver<crate::CallInput>,
    ) -> Option<(HangupCause, Side)> {
        let target = request.refer_to().map(|r| r.uri().as_str().to_owned());
        let Some(target) = target else {
            let refusal = request
                .response_to(StatusCode::BAD_REQUEST)
                .reason("Missing Refer-To")
                .build();
            if let Ok(refusal) = refusal {
                self.engine.send_response(tx, &refusal);
            }
            return None;
        };
        let busy = self.referral.is_some() || self.asker.is_some();
        if busy || dialogs[slot(from.other())].is_none() {
            self.engine.reply(tx, request, StatusCode::REQUEST_PENDING);
            return None;
        }
        let side = side_of_call(from.other());
        if let Some((_, headers)) = target.split_once('?') {
            // An attended transfer: the phone's other call is named by
            // the dialog its Refer-To replaces.
            let Some(replaced) = replaces_in(headers) else {
                self.engine.reply(tx, request, StatusCode::NOT_IMPLEMENTED);
                return None;
            };
            let other_call = self
                .engine
                .shared
                .by_dialog
                .get(&replaced)
                .map(|c| c.clone());
            let Some(other_call) = other_call.filter(|_| !self.dialogs.contains(&replaced)) else {
                let status = StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST;
                self.engine.reply(tx, request, status);
                return None;
            };
            self.accept_refer(tx, request, dialogs[slot(from)].clone())
                .await;
            self.join_asked(dialogs, side, (&target, replaced), other_call)
                .await;
            return None;
        }
        self.accept_refer(tx, request, dialogs[slot(from)].clone())
            .await;
        // The outcome goes to the asking phone, not to an API client.
        let (done, _) = oneshot::channel();
        let Err(_) = self.refer_transfer(dialogs, side, &target, done).await else {
            // The transferee's NOTIFYs finish it.
            return None;
        };
        let (outcome, ended) = self.transfer(dialogs, side, &target, inputs).await;
        if let Err(e) = outcome {
            self.tell_asker(e.sip_status().unwrap_or(480)).await;
        }
        ended
    }

    /// Accepts a phone's REFER (202) and tells it the transfer is tried.
    async fn accept_refer(&mut self, tx: ServerTxId, request: &Message, asker: Option<DialogId>) {
        self.engine.reply(tx, request, StatusCode::ACCEPTED);
        self.asker = asker;
        self.tell_asker(100).await;
    }

    /// A phone's attended transfer: its other party (`side`) takes the
    /// place of the phone's dialog `replaced` in `other_call`: by REFER
    /// with that `Replaces` when its phone can, else by the B2BUA, which
    /// takes the party that stays there into this call.
    async fn join_asked(
        &mut self,
        dialogs: &mut [Option<DialogId>; 2],
        side: CallSide,
        (target, replaced): (&str, DialogId),
        other_call: tokio::sync::mpsc::Sender<crate::CallInput>,
    ) {
        let (done, _) = oneshot::channel();
        let referred = self
            .refer(dialogs, side, ("transfer", target), Some(&replaced), done)
            .await;
        if referred.is_ok() {
            // The transferee's NOTIFYs finish it.
            return;
        }
        let (done, handed) = oneshot::channel();
        let party = super::Handed::Not(replaced);
        let asked = other_call.send(crate::CallInput::HandOver { party, done });
        let leg = match asked.await {
            Ok(()) => handed.await.unwrap_or(Err(CommandError::Ended)),
            Err(_) => Err(CommandError::NoSuchCall),
        };
        let outcome = match leg {
            Ok(leg) => {
                let (done, joined) = oneshot::channel();
                self.take_over(dialogs, super::Joining { side, leg, done })
                    .await;
                joined.await.unwrap_or(Err(CommandError::Ended))
            }
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            self.tell_asker(e.sip_status().unwrap_or(481)).await;
        }
    }

    /// Tells the phone whose REFER asked for the transfer how it goes: a
    /// NOTIFY of the implicit subscription (RFC 3515 §2.4.4) with the
    /// status line as `message/sipfrag`; a final status ends it.
    pub(super) async fn tell_asker(&mut self, status: u16) {
        let Some(dialog) = self.asker.clone() else {
            return;
        };
        let state = if status >= 200 {
            self.asker = None;
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        let reason = StatusCode::new(status).map_or("", StatusCode::reason);
        let endpoint = self.engine.shared.endpoint.clone();
        let notify = endpoint
            .request_in_dialog(&dialog, Method::Notify)
            .map(|b| {
                b.header(HeaderName::Event, "refer")
                    .header(HeaderName::SubscriptionState, state)
                    .body("message/sipfrag", format!("SIP/2.0 {status} {reason}\r\n"))
            })
            .and_then(|b| b.build().map_err(trunkline_transaction::Error::Build));
        // The phone may have hung up already: nothing to tell then.
        let Ok(notify) = notify else { return };
        if let Ok(mut client) = endpoint.send_in_dialog(&dialog, notify) {
            let limit = self.engine.shared.config.request_timeout;
            let _ = tokio::time::timeout(limit, client.final_response()).await;
        }
    }

    /// An attended transfer: the REFER with `Replaces`, or `false` on
    /// `taken` when the phone cannot do it.
    pub(super) async fn refer_replacing(
        &mut self,
        dialogs: &[Option<DialogId>; 2],
        order: ReferOrder,
    ) {
        let ReferOrder {
            side,
            target,
            replaces,
            taken,
            done,
        } = order;
        // Any number reaches the PBX; the `Replaces` says what it means.
        let number = "transfer";
        let referred = self
            .refer(dialogs, side, (number, &target), Some(&replaces), done)
            .await;
        let _ = taken.send(referred.is_ok());
    }

    /// A phone's INVITE with `Replaces` takes the place of the party
    /// whose dialog it names (the other call's transferee reached this
    /// call): it is answered with what that party was sent, the media
    /// goes to it, and the replaced party gets a BYE.
    pub(super) async fn replace(
        &mut self,
        dialogs: &mut [Option<DialogId>; 2],
        replacing: Replacing,
    ) {
        let Replacing {
            tx,
            invite,
            peer,
            replaces,
            number,
        } = replacing;
        self.flow(SipDirection::Received, &invite, peer);
        let Some(replaced) = leg_in(dialogs, &replaces) else {
            let status = StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST;
            self.engine.reply(tx, &invite, status);
            return;
        };
        let kept = replaced.other();
        let Some(offer) = self.sdp_of(&invite) else {
            self.engine
                .reply(tx, &invite, StatusCode::NOT_ACCEPTABLE_HERE);
            return;
        };
        let answer = match (&self.media, dialogs[slot(kept)].clone()) {
            // The relay's side of the replaced party is the newcomer's.
            (Some(media), _) => {
                let Some(previous) = self.last_sent[slot(replaced)].clone() else {
                    self.engine
                        .reply(tx, &invite, StatusCode::NOT_ACCEPTABLE_HERE);
                    return;
                };
                if let Some(target) = anchor::target(&offer) {
                    media.replace_remote(replaced, target.rtp, target.rtcp);
                }
                let mut answer = previous.clone();
                anchor::set_direction(&mut answer, anchor::direction(&offer).reversed());
                anchor::next_version(&previous, &mut answer);
                answer
            }
            // The party that stays is offered the newcomer's media.
            (None, Some(kept_dialog)) => {
                match self.reinvite(&kept_dialog, kept, offer.clone()).await {
                    Ok(Some(answer)) => answer,
                    _ => {
                        self.engine
                            .reply(tx, &invite, StatusCode::NOT_ACCEPTABLE_HERE);
                        return;
                    }
                }
            }
            (None, None) => {
                let status = StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST;
                self.engine.reply(tx, &invite, status);
                return;
            }
        };
        let tag = new_tag();
        let mut response = invite
            .response_to(StatusCode::OK)
            .to_tag(&tag)
            .body(super::SDP, answer.to_string());
        if let Some(contact) = self.contact(peer.transport) {
            response = response.header(HeaderName::Contact, contact);
        }
        let Ok(response) = response.build() else {
            self.engine
                .reply(tx, &invite, StatusCode::SERVER_INTERNAL_ERROR);
            return;
        };
        let newcomer = DialogId {
            call_id: invite.share(invite.call_id().unwrap_or_default()),
            local_tag: tag.into(),
            remote_tag: invite.share(invite.from_tag().unwrap_or_default()),
        };
        self.register(&newcomer);
        self.flow(SipDirection::Sent, &response, peer);
        self.engine.send_response(tx, &response);
        if let Some(old) = dialogs[slot(replaced)].replace(newcomer.clone()) {
            self.bye(&old).await;
        }
        match replaced {
            Leg::A => self.peer = peer,
            Leg::B => self.b_peer = Some(peer),
        }
        self.abilities[slot(replaced)] = Abilities::of(&invite);
        self.last_sent[slot(replaced)] = Some(answer);
        self.last_heard[slot(replaced)] = Some(offer);
        self.controlled.answer_to(&newcomer.call_id);
        let joined = number.clone();
        self.listed.update(|c| match replaced {
            Leg::A => c.caller = joined,
            Leg::B => c.callee = joined,
        });
        self.engine.emit(CallEvent::Transferred {
            call_id: self.call_id.clone(),
            side: side_of_call(kept),
            target: number,
            progress: TransferProgress::Answered,
            sip_status: Some(200),
        });
    }
}

impl<L, U> Call<L, U>
where
    L: Locator + 'static,
    U: UserBackend + 'static,
{
    /// An attended transfer's input reaching the call before it is
    /// answered or while it transfers already: an INVITE with `Replaces`
    /// gets 481 (RFC 3891 §3: nothing confirmed to replace), and a
    /// waiting order hears the call cannot do it.
    pub(super) fn not_now(&self, input: crate::CallInput) {
        match input {
            crate::CallInput::Replace(replacing) => {
                let status = StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST;
                self.engine.reply(replacing.tx, &replacing.invite, status);
            }
            crate::CallInput::Replaceable { done, .. } => {
                let _ = done.send(Err(CommandError::WrongState("not answered")));
            }
            crate::CallInput::Refer(order) => {
                let _ = order
                    .done
                    .send(Err(CommandError::WrongState("not answered")));
            }
            _ => {}
        }
    }
}

/// The API's name of the party on `leg`.
fn side_of_call(leg: Leg) -> CallSide {
    match leg {
        Leg::A => CallSide::Caller,
        Leg::B => CallSide::Callee,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(text: &str) -> Message {
        Message::parse_slice(text.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    #[test]
    fn a_sipfrag_status_line_gives_the_status() {
        let notify = message(
            "NOTIFY sip:a@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:a@h>;tag=1\n\
             To: <sip:b@h>;tag=2\nCall-ID: c\nCSeq: 2 NOTIFY\nEvent: refer\n\
             Content-Type: message/sipfrag\nContent-Length: 21\n\nSIP/2.0 180 Ringing\n",
        );
        assert_eq!(sipfrag_status(&notify), Some(180));
    }

    #[test]
    fn replaces_names_our_dialog_by_its_to_tag() {
        let invite = message(
            "INVITE sip:x@h SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\nFrom: <sip:a@h>;tag=1\n\
             To: <sip:x@h>\nCall-ID: new\nCSeq: 1 INVITE\n\
             Replaces: old@h;to-tag=ours;from-tag=theirs\nContent-Length: 0\n\n",
        );
        let dialog = replaced_dialog(&invite).unwrap();
        assert_eq!(&*dialog.call_id, "old@h");
        assert_eq!(&*dialog.local_tag, "ours");
        assert_eq!(&*dialog.remote_tag, "theirs");
    }

    #[test]
    fn a_replaces_value_is_escaped_for_the_refer_to_uri_and_read_back() {
        let escaped = escape_header_value("a@b;to-tag=1;from-tag=2");
        assert_eq!(escaped, "a%40b%3Bto-tag%3D1%3Bfrom-tag%3D2");
        let dialog = replaces_in(&format!("Replaces={escaped}")).unwrap();
        assert_eq!(
            (&*dialog.call_id, &*dialog.local_tag, &*dialog.remote_tag),
            ("a@b", "1", "2")
        );
        assert_eq!(replaces_in("Replaces=a%4"), None);
        assert_eq!(replaces_in("Replaces=a%3Bto-tag%3D1"), None);
    }
}
