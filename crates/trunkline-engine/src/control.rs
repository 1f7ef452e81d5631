//! Driving calls in progress from outside (the API): hang up, hold, mute,
//! transfer, accept, and calls the PBX starts itself (click-to-dial).

use serde::Serialize;
use tokio::sync::oneshot;

/// One party of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallSide {
    /// The calling party: the A leg (for a click-to-dial call, the phone
    /// rung first).
    Caller,
    /// The called party: the B leg.
    Callee,
}

impl CallSide {
    /// `caller` or `callee`.
    pub fn parse(text: &str) -> Option<CallSide> {
        match text {
            "caller" => Some(CallSide::Caller),
            "callee" => Some(CallSide::Callee),
            _ => None,
        }
    }

    /// The other party.
    pub fn other(self) -> CallSide {
        match self {
            CallSide::Caller => CallSide::Callee,
            CallSide::Callee => CallSide::Caller,
        }
    }
}

/// What a call in progress is told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallCommand {
    /// End the call: a ringing call is refused (480) and its forks
    /// cancelled, an answered one gets a BYE on both legs. The reason goes
    /// into the record.
    Hangup {
        /// Why, for the record (`admin_kick`).
        reason: Option<String>,
    },
    /// Put one party on hold (a re-INVITE offering `sendonly`, RFC 3264
    /// §8.4), or both when `None`.
    Hold {
        /// Who is held.
        side: Option<CallSide>,
    },
    /// Take the parties a [`CallCommand::Hold`] held off hold (a
    /// re-INVITE offering `sendrecv`); both when `None`.
    Unhold {
        /// Who is resumed.
        side: Option<CallSide>,
    },
    /// Stop relaying one party's audio (both when `None`); the call needs
    /// its media anchored in the relay.
    Mute {
        /// Whose audio is silenced.
        side: Option<CallSide>,
    },
    /// Undo [`CallCommand::Mute`].
    Unmute {
        /// Whose audio is heard again.
        side: Option<CallSide>,
    },
    /// Connect `side` to `target` instead of the other party: the PBX
    /// rings the target (an extension, a routed number or a SIP URI) and,
    /// once it answers, hangs up the party it replaces (a blind transfer
    /// done by the B2BUA, RFC 5359 §2.4's outcome without needing REFER
    /// from the phone). A refusal leaves the call as it was.
    Transfer {
        /// The party that stays.
        side: CallSide,
        /// Where it goes.
        target: String,
    },
    /// Answer a call that is still ringing with this SDP (an application
    /// takes the media); the callee's phones stop ringing.
    Accept {
        /// The answer's session description.
        sdp: String,
    },
}

/// Why a command or a click-to-dial call could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No call in progress has that id.
    #[error("no call in progress with that id")]
    NoSuchCall,
    /// The command does not apply to the call as it stands.
    #[error("the call is {0}")]
    WrongState(&'static str),
    /// Muting needs the call's media in the relay.
    #[error("the call's media does not go through the relay")]
    MediaNotAnchored,
    /// A party refused the request (a re-INVITE, the transfer target's
    /// INVITE) with this SIP status.
    #[error("refused with SIP status {0}")]
    Refused(u16),
    /// A party did not answer in time.
    #[error("no answer in time")]
    Timeout,
    /// The target, the SDP or a number is not usable.
    #[error("{0}")]
    Invalid(String),
    /// The PBX is shutting down and takes no new calls.
    #[error("the PBX is shutting down")]
    ShuttingDown,
    /// The call ended while the command was carried out.
    #[error("the call ended")]
    Ended,
}

impl CommandError {
    /// The SIP status behind the error, where one party gave it.
    pub fn sip_status(&self) -> Option<u16> {
        match self {
            CommandError::Refused(status) => Some(*status),
            CommandError::Timeout => Some(408),
            _ => None,
        }
    }
}

/// Whether `text` can stand for an extension or a dialled number in a
/// request the PBX builds (`sip:{text}@…`): letters, digits and
/// `+ - _ . * #`, nothing that would need escaping.
pub(crate) fn is_number(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-_.*#".contains(c))
}

/// A command on its way to a call, and where its outcome goes.
#[derive(Debug)]
pub(crate) struct Order {
    pub(crate) command: CallCommand,
    pub(crate) done: oneshot::Sender<Result<(), CommandError>>,
}

impl Order {
    /// Tells the sender how it went; a sender that stopped waiting is
    /// fine.
    pub(crate) fn reply(self, outcome: Result<(), CommandError>) {
        let _ = self.done.send(outcome);
    }
}

/// A call the PBX starts itself (third-party call control, RFC 3725):
/// the caller's phones ring first, and once one answers the callee is
/// called as if the caller had dialled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originate {
    /// The extension whose phones ring first.
    pub caller: String,
    /// What the caller is connected to: an extension, or a number the
    /// routes send out through a trunk.
    pub callee: String,
    /// Whether to record, overriding the engine's default.
    pub record: Option<bool>,
}

/// The calls that take commands, by every id they answer to.
pub(crate) type Controls =
    std::sync::Arc<dashmap::DashMap<String, tokio::sync::mpsc::Sender<crate::CallInput>>>;

/// A call's ids in [`Controls`]: dropping it (the call task's end, or its
/// unwinding) removes them, so the table cannot leak.
pub(crate) struct Controlled {
    controls: Controls,
    input: tokio::sync::mpsc::Sender<crate::CallInput>,
    keys: Vec<String>,
}

impl Controlled {
    pub(crate) fn new(
        controls: &Controls,
        input: tokio::sync::mpsc::Sender<crate::CallInput>,
    ) -> Controlled {
        Controlled {
            controls: controls.clone(),
            input,
            keys: Vec::new(),
        }
    }

    /// Commands given for `key` (a Call-ID, the record id) reach the call.
    pub(crate) fn answer_to(&mut self, key: &str) {
        if key.is_empty() || self.keys.iter().any(|k| k == key) {
            return;
        }
        self.controls.insert(key.to_owned(), self.input.clone());
        self.keys.push(key.to_owned());
    }
}

impl Drop for Controlled {
    fn drop(&mut self) {
        for key in &self.keys {
            self.controls.remove(key);
        }
    }
}
