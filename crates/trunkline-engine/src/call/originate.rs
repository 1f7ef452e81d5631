//! Click-to-dial: a call the PBX starts itself (third-party call control,
//! RFC 3725). The caller's phones ring first with an offer of the relay's;
//! once one answers, the callee is called as if the caller had dialled it.

use super::{Call, ForkResponse, Opening, Origin, SDP, better, slot};
use crate::anchor;
use crate::control::{CallCommand, CommandError, Originate};
use crate::{CallInput, Engine};
use std::net::SocketAddr;
use std::time::SystemTime;
use tokio::sync::mpsc;
use trunkline_cdr::{Direction, Hangup, HangupCause, Party, Side};
use trunkline_media::relay::{Leg, SessionOptions};
use trunkline_media::sdp::Sdp;
use trunkline_registrar::{Locator, UserBackend};
use trunkline_sip::{HeaderName, Message, Method, StatusCode};
use trunkline_transaction::{Peer, new_tag};

/// Runs a click-to-dial call: rings the caller's phones with an offer
/// anchored in the relay and, once one answers, calls the callee as if
/// the caller had dialled it (RFC 3725 §4.1's flow, the relay standing in
/// for the media both phones see).
pub(crate) async fn originate<L, U>(
    engine: Engine<L, U>,
    originate: Originate,
    call_id: String,
    input: mpsc::Sender<CallInput>,
    mut inputs: mpsc::Receiver<CallInput>,
) where
    L: Locator + 'static,
    U: UserBackend + 'static,
{
    let now = SystemTime::now();
    let domain = engine.shared.config.domain.clone();
    let Originate {
        caller,
        callee,
        record,
    } = originate;
    // Until a phone answers, the A leg's peer is nobody in particular.
    let nobody = Peer {
        transport: trunkline_transaction::Transport::Udp,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        connection: None,
    };
    // The caller's phones see the call come from the callee.
    let Some(ring_caller) = made_up_invite(&callee, &caller, &domain, &call_id, None) else {
        return;
    };
    let opening = Opening {
        origin: Origin::Originated(None),
        invite: ring_caller,
        peer: nobody,
        trunk: None,
        caller: Party::new(caller.as_str(), None),
        callee: callee.clone(),
        source_channel: format!("extension/{caller}"),
        direction: Direction::Internal,
    };
    let mut call = Call::open(&engine, opening, input, now);
    call.record_override = record;
    let hangup = match call.ring_the_caller(&caller, &mut inputs).await {
        Ok(answer) => {
            // Now as if the caller had dialled, offering what its phone
            // answered.
            match made_up_invite(&caller, &callee, &domain, &call_id, Some(&answer)) {
                Some(invite) => {
                    call.invite = invite;
                    call.ring_and_talk(&callee, &mut inputs).await
                }
                None => Hangup::new(HangupCause::Failure, None, Side::Pbx),
            }
        }
        Err(hangup) => hangup,
    };
    call.conclude(hangup).await;
}

/// An INVITE from `from` to `to` at `domain` that nobody sent: what a
/// click-to-dial call routes and forks from.
fn made_up_invite(
    from: &str,
    to: &str,
    domain: &str,
    call_id: &str,
    sdp: Option<&Sdp>,
) -> Option<Message> {
    let mut builder = Message::request(Method::Invite, format!("sip:{to}@{domain}"))
        .header(
            HeaderName::Via,
            format!("SIP/2.0/UDP {domain};branch=z9hG4bK{}", new_tag()),
        )
        .header(HeaderName::MaxForwards, "70")
        .header(
            HeaderName::From,
            format!("<sip:{from}@{domain}>;tag={}", new_tag()),
        )
        .header(HeaderName::To, format!("<sip:{to}@{domain}>"))
        .header(HeaderName::CallId, call_id)
        .header(HeaderName::CSeq, "1 INVITE");
    if let Some(sdp) = sdp {
        builder = builder.body(SDP, sdp.to_string());
    }
    builder.build().ok()
}

impl<L, U> Call<L, U>
where
    L: Locator + 'static,
    U: UserBackend + 'static,
{
    /// Rings `caller`'s phones with an offer of the relay's A leg; the
    /// answering phone's description once one answers (its dialog is then
    /// the call's A leg), or how the call ended.
    async fn ring_the_caller(
        &mut self,
        caller: &str,
        inputs: &mut mpsc::Receiver<CallInput>,
    ) -> Result<Sdp, Hangup> {
        let failure = || Hangup::new(HangupCause::Failure, None, Side::Pbx);
        let shared = &self.engine.shared;
        let media = match shared
            .relay
            .as_ref()
            .map(|r| r.open(SessionOptions::default()))
        {
            Some(Ok(media)) => media,
            Some(Err(e)) => {
                tracing::warn!(call_id = self.call_id, "no relay session: {e}");
                return Err(failure());
            }
            None => return Err(failure()),
        };
        let session_id = u64::from(clock_session_id());
        let offer = anchor::own_offer(media.local(Leg::A), session_id).ok_or_else(failure)?;
        self.media = Some(media);
        let domain = shared.config.domain.clone();
        let ring_timeout = shared.config.ring_timeout;
        let phones = self.contacts(caller).await;
        if phones.is_empty() {
            tracing::info!(
                call_id = self.call_id,
                caller,
                "click-to-dial: the caller has no phone registered"
            );
            return Err(Hangup::new(HangupCause::Rejected, Some(480), Side::Caller));
        }
        let stage: Vec<_> = phones
            .into_iter()
            .map(|binding| super::Destination::phone(0, caller, binding, &domain))
            .collect();
        let mut forks = self.fork_as(&stage, Some(offer.to_string()), self.call_id.clone());
        if forks.list.is_empty() {
            return Err(failure());
        }
        let timeout = tokio::time::sleep(ring_timeout);
        tokio::pin!(timeout);
        let mut best: Option<StatusCode> = None;
        let refused = |best: Option<StatusCode>| {
            let status = best.unwrap_or(StatusCode::TEMPORARILY_UNAVAILABLE);
            Hangup::new(HangupCause::Rejected, Some(status.as_u16()), Side::Caller)
        };
        loop {
            tokio::select! {
                event = forks.next(&mut best) => {
                    let Some(ForkResponse { fork, response, dialog }) = event else {
                        return Err(refused(best));
                    };
                    let peer = forks.list[fork].destination.flow;
                    self.flow(trunkline_cdr::SipDirection::Received, &response, peer);
                    let Some(status) = response.status() else { continue };
                    if status.is_provisional() {
                        continue;
                    }
                    forks.list[fork].pending = false;
                    if !status.is_success() {
                        best = Some(better(best, status));
                        if status.as_u16() >= 600 || forks.list.iter().all(|f| !f.pending) {
                            self.cancel_all(&mut forks.list);
                            return Err(refused(best));
                        }
                        continue;
                    }
                    let Some(dialog) = dialog else { continue };
                    self.take_answer(&forks, fork, &dialog, (Leg::A, &response));
                    self.cancel_all(&mut forks.list);
                    let target = self.sdp_of(&response).filter(|sdp| anchor::target(sdp).is_some());
                    let Some(answer) = target else {
                        // Nothing to connect the callee to.
                        self.bye(&dialog).await;
                        return Err(Hangup::new(HangupCause::Failure, Some(488), Side::Caller));
                    };
                    if let (Some(media), Some(target)) = (&self.media, anchor::target(&answer)) {
                        media.set_remote(Leg::A, target.rtp, target.rtcp);
                    }
                    self.peer = peer;
                    self.origin = Origin::Originated(Some(dialog));
                    self.last_sent[slot(Leg::A)] = Some(offer);
                    self.last_heard[slot(Leg::A)] = Some(answer.clone());
                    return Ok(answer);
                }
                input = inputs.recv() => match input {
                    Some(CallInput::Command(order)) => {
                        if let CallCommand::Hangup { reason } = &order.command {
                            self.reason.clone_from(reason);
                            order.reply(Ok(()));
                            self.cancel_all(&mut forks.list);
                            return Err(Hangup::new(HangupCause::Rejected, None, Side::Pbx));
                        }
                        order.reply(Err(CommandError::WrongState("ringing the caller")));
                    }
                    Some(CallInput::Request { tx: Some(tx), request, .. }) => {
                        self.engine.reply(tx, &request, StatusCode::REQUEST_PENDING);
                    }
                    Some(other) => self.not_now(other),
                    None => {
                        self.cancel_all(&mut forks.list);
                        return Err(failure());
                    }
                },
                () = &mut timeout => {
                    self.cancel_all(&mut forks.list);
                    return Err(Hangup::new(HangupCause::RingTimeout, Some(480), Side::Pbx));
                }
            }
        }
    }
}

/// A session id for our own offers (RFC 8866 §5.2 suggests an NTP
/// timestamp; the clock's nanoseconds serve as well).
fn clock_session_id() -> u32 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}
