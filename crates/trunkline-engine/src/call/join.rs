//! An attended transfer done by the B2BUA: two answered calls become one.
//! The call that lets its party go hands the leg over (its dialog, where
//! the phone takes media, its relay session) and ends; the call that
//! takes it hangs up its own other party and connects the two.

use super::{Abilities, Call, leg_in, leg_of, slot};
use crate::anchor;
use crate::control::{CallSide, CommandError};
use crate::{CallEvent, TransferProgress};
use tokio::sync::oneshot;
use trunkline_cdr::{HangupCause, Side};
use trunkline_media::relay::{Leg, Session};
use trunkline_media::sdp::Sdp;
use trunkline_registrar::{Locator, UserBackend};
use trunkline_transaction::{DialogId, Peer};

/// A party one call hands to another.
#[derive(Debug)]
pub(crate) struct HandedLeg {
    dialog: DialogId,
    /// The Call-ID commands may name it by.
    call_id: String,
    /// Its number, as the giving call lists it.
    number: String,
    peer: Option<Peer>,
    /// What its phone was last sent (the next offer's previous version).
    sent: Option<Sdp>,
    /// Where its phone takes media.
    heard: Option<Sdp>,
    /// The giving call's relay session, the leg the party is on, and what
    /// the party it leaves was last sent (the party's own media as
    /// anchored at the session's other leg).
    media: Option<(Session, Leg, Option<Sdp>)>,
    /// What its phone takes.
    abilities: Abilities,
}

/// Which party a call is asked to hand over.
#[derive(Debug)]
pub(crate) enum Handed {
    /// This one.
    Side(CallSide),
    /// The one whose dialog is not this (an attended transfer's
    /// `Replaces` names the transferor's dialog).
    Not(DialogId),
}

/// A handed-over party on its way to the call that takes it.
#[derive(Debug)]
pub(crate) struct Joining {
    /// The taking call's party that stays.
    pub(crate) side: CallSide,
    pub(crate) leg: HandedLeg,
    pub(crate) done: oneshot::Sender<Result<(), CommandError>>,
}

impl HandedLeg {
    /// Its dialog, to hang up if no call takes it.
    pub(crate) fn dialog(&self) -> DialogId {
        self.dialog.clone()
    }
}

impl<L, U> Call<L, U>
where
    L: Locator + 'static,
    U: UserBackend + 'static,
{
    /// Lets `side` go to another call: the other party gets a BYE, and
    /// this call ends (`Some` says how) once the leg is handed over.
    pub(super) async fn hand_over(
        &mut self,
        dialogs: &mut [Option<DialogId>; 2],
        party: Handed,
        done: oneshot::Sender<Result<HandedLeg, CommandError>>,
    ) -> Option<(HangupCause, Side)> {
        let kept = match party {
            Handed::Side(side) => Some(leg_of(side)),
            Handed::Not(dialog) => leg_in(dialogs, &dialog).map(Leg::other),
        };
        let Some((kept, dialog)) = kept.and_then(|k| Some((k, dialogs[slot(k)].take()?))) else {
            let _ = done.send(Err(CommandError::WrongState("without that party")));
            return None;
        };
        if let Some(other) = dialogs[slot(kept.other())].take() {
            self.bye(&other).await;
        }
        // The taking call routes the dialog's requests from now on; this
        // call's end must not forget it.
        self.dialogs.retain(|d| *d != dialog);
        let media = self.media.take().map(|session| {
            // The recording of this call ends here: its tap closes.
            session.untap();
            (session, kept, self.last_sent[slot(kept.other())].clone())
        });
        let (caller, callee) = self.listed.parties();
        let leg = HandedLeg {
            call_id: dialog.call_id.to_string(),
            number: if kept == Leg::A { caller } else { callee },
            dialog,
            peer: self.peer_of(kept),
            sent: self.last_sent[slot(kept)].take(),
            heard: self.last_heard[slot(kept)].take(),
            media,
            abilities: self.abilities[slot(kept)],
        };
        self.reason = Some("transferred".into());
        if let Err(Ok(leg)) = done.send(Ok(leg)) {
            // Nobody waits for it any more: the party is let go.
            self.bye(&leg.dialog).await;
        }
        Some((HangupCause::NormalClearing, Side::Pbx))
    }

    /// Takes a party handed over by another call in place of the party
    /// that is not `joining.side`, which gets a BYE, and connects the
    /// two: through both relay sessions, or one and a re-INVITE, or with
    /// re-INVITEs of both phones when neither call's media is anchored.
    pub(super) async fn take_over(
        &mut self,
        dialogs: &mut [Option<DialogId>; 2],
        joining: Joining,
    ) {
        let Joining { side, leg, done } = joining;
        let kept = leg_of(side);
        let other = kept.other();
        let Some(kept_dialog) = dialogs[slot(kept)].clone() else {
            self.bye(&leg.dialog).await;
            let _ = done.send(Err(CommandError::WrongState("without that party")));
            return;
        };
        if let Some(old) = dialogs[slot(other)].take() {
            // A transferor whose own REFER asked for this hears it first.
            self.tell_asker(200).await;
            self.bye(&old).await;
        }
        self.register(&leg.dialog);
        self.controlled.answer_to(&leg.call_id);
        dialogs[slot(other)] = Some(leg.dialog.clone());
        match other {
            Leg::A => {
                if let Some(peer) = leg.peer {
                    self.peer = peer;
                }
            }
            Leg::B => self.b_peer = leg.peer,
        }
        self.last_sent[slot(other)] = leg.sent;
        self.last_heard[slot(other)].clone_from(&leg.heard);
        self.abilities[slot(other)] = leg.abilities;
        let outcome = self
            .connect(&kept_dialog, kept, &leg.dialog, leg.heard, leg.media)
            .await;
        if outcome.is_ok() {
            let number = leg.number.clone();
            self.listed.update(|c| match other {
                Leg::A => c.caller = number,
                Leg::B => c.callee = number,
            });
            self.engine.emit(CallEvent::Transferred {
                call_id: self.call_id.clone(),
                side,
                target: leg.number,
                progress: TransferProgress::Answered,
                sip_status: Some(200),
            });
        }
        let _ = done.send(outcome);
    }

    /// Points the party on `kept` and the newcomer on `kept.other()` at
    /// each other.
    async fn connect(
        &mut self,
        kept_dialog: &DialogId,
        kept: Leg,
        newcomer: &DialogId,
        heard: Option<Sdp>,
        their_media: Option<(Session, Leg, Option<Sdp>)>,
    ) -> Result<(), CommandError> {
        let other = kept.other();
        let target = |sdp: &Option<Sdp>| sdp.as_ref().and_then(anchor::target);
        match (self.media.is_some(), their_media) {
            // Both anchored: the two sessions send to each other.
            (true, Some((theirs, their_leg, _))) => {
                let ours = self.media.as_ref().ok_or(CommandError::Ended)?;
                let (mine, yours) = (ours.local(other), theirs.local(their_leg.other()));
                ours.replace_remote(other, yours.rtp, yours.rtcp);
                theirs.replace_remote(their_leg.other(), mine.rtp, mine.rtcp);
                self.joined_media = Some(theirs);
                Ok(())
            }
            // Ours anchored: our session sends to the newcomer, who is
            // offered our session's side of the kept party.
            (true, None) => {
                let ours = self.media.as_ref().ok_or(CommandError::Ended)?;
                let t = target(&heard).ok_or(CommandError::WrongState("without media"))?;
                ours.replace_remote(other, t.rtp, t.rtcp);
                let mut offer = self.last_heard[slot(kept)]
                    .clone()
                    .ok_or(CommandError::WrongState("without media"))?;
                anchor::anchor(&mut offer, ours.local(other));
                self.reinvite(newcomer, other, offer).await.map(drop)
            }
            // Theirs anchored: their session sends to the kept party, who
            // is offered their session's side of the newcomer.
            (false, Some((theirs, their_leg, their_offer))) => {
                let heard_kept = self.last_heard[slot(kept)].clone();
                let t = target(&heard_kept).ok_or(CommandError::WrongState("without media"))?;
                theirs.replace_remote(their_leg.other(), t.rtp, t.rtcp);
                let offer = their_offer.ok_or(CommandError::WrongState("without media"))?;
                self.joined_media = Some(theirs);
                self.reinvite(kept_dialog, kept, offer).await.map(drop)
            }
            // Neither: the kept party is offered the newcomer's media,
            // and the newcomer the kept party's answer.
            (false, None) => {
                let offer = heard.ok_or(CommandError::WrongState("without media"))?;
                let answer = self.reinvite(kept_dialog, kept, offer).await?;
                let answer = answer.ok_or(CommandError::WrongState("without media"))?;
                self.reinvite(newcomer, other, answer).await.map(drop)
            }
        }
    }
}
