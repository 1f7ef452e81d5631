//! Each extension's state (idle, in use, busy, unavailable, ringing, on
//! hold), derived from the registration and call events alone.

use serde::Serialize;
use std::collections::{HashMap, HashSet};
use trunkline_engine::{CallEvent, CallSide, TransferProgress};
use trunkline_registrar::{EventKind, RegistrationEvent};

/// What an extension is doing, as the `extension` event says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtensionState {
    /// Registered, in no call.
    Idle,
    /// In one call: answered, or calling out.
    InUse,
    /// In more than one call, or its last call was refused busy (486).
    Busy,
    /// No phone registered, and in no call.
    Unavailable,
    /// Its phones ring for a call.
    Ringing,
    /// In one answered call, on hold.
    OnHold,
}

impl ExtensionState {
    /// The name in events.
    pub fn as_str(self) -> &'static str {
        match self {
            ExtensionState::Idle => "idle",
            ExtensionState::InUse => "in_use",
            ExtensionState::Busy => "busy",
            ExtensionState::Unavailable => "unavailable",
            ExtensionState::Ringing => "ringing",
            ExtensionState::OnHold => "on_hold",
        }
    }
}

/// How far a call has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Trying,
    Ringing,
    Answered,
}

/// A call one of whose parties is an extension.
#[derive(Debug)]
struct Call {
    caller: String,
    callee: String,
    phase: Phase,
    held: bool,
    /// A transfer under way: its target, and whether it rings.
    transfer: Option<(String, bool)>,
}

/// What is known of one extension.
#[derive(Debug)]
struct Extension {
    /// Contact bindings: registrations less removals and lapses.
    bindings: u32,
    /// The calls it is a party to (Call-IDs): a set, as an extension
    /// that takes many calls at once (a queue's, a load test's) must not
    /// make each event cost their number.
    calls: HashSet<String>,
    /// Its last call was refused busy; cleared by its next call or
    /// registration event.
    refused_busy: bool,
    /// The state last reported.
    reported: ExtensionState,
}

impl Extension {
    fn new() -> Extension {
        Extension {
            bindings: 0,
            calls: HashSet::new(),
            refused_busy: false,
            reported: ExtensionState::Unavailable,
        }
    }
}

/// The states of the extensions: the configured ones, and any that
/// registers. Every extension starts `unavailable`; numbers that are no
/// extension (a trunk's callers, dialled outside numbers) have no state.
#[derive(Debug, Default)]
pub(crate) struct Extensions {
    extensions: HashMap<String, Extension>,
    calls: HashMap<String, Call>,
}

/// The number of a transfer's target: an extension, a number, or the
/// user part of a SIP URI.
fn number_of(target: &str) -> &str {
    if target.starts_with("sip:") || target.starts_with("sips:") {
        user_of(target).unwrap_or(target)
    } else {
        target
    }
}

/// The user part of an address-of-record: `1001` of `sip:1001@host`.
fn user_of(aor: &str) -> Option<&str> {
    let rest = aor
        .strip_prefix("sips:")
        .or_else(|| aor.strip_prefix("sip:"))
        .unwrap_or(aor);
    let (user, _host) = rest.split_once('@')?;
    (!user.is_empty()).then_some(user)
}

impl Extensions {
    /// Adds `numbers`, each `unavailable`; one already known is left as
    /// it is.
    pub(crate) fn add(&mut self, numbers: impl IntoIterator<Item = String>) {
        for number in numbers {
            self.extensions.entry(number).or_insert_with(Extension::new);
        }
    }

    /// Takes in a registration event: the extensions whose state changed,
    /// with their new state.
    pub(crate) fn registration(
        &mut self,
        event: &RegistrationEvent,
    ) -> Vec<(String, ExtensionState)> {
        let Some(user) = user_of(&event.location.aor) else {
            return Vec::new();
        };
        let extension = self
            .extensions
            .entry(user.to_owned())
            .or_insert_with(Extension::new);
        extension.bindings = match event.event {
            EventKind::Registered => extension.bindings.saturating_add(1),
            EventKind::Unregistered | EventKind::Offline => extension.bindings.saturating_sub(1),
        };
        extension.refused_busy = false;
        let user = user.to_owned();
        self.changes([user])
    }

    /// Takes in a call event: the extensions whose state changed, with
    /// their new state.
    pub(crate) fn call(&mut self, event: &CallEvent) -> Vec<(String, ExtensionState)> {
        // Events the state does not depend on (kinds to come) pass.
        #[allow(unreachable_patterns)]
        match event {
            CallEvent::New {
                call_id,
                caller,
                callee,
            } => self.new_call(call_id, caller, callee),
            CallEvent::Ringing { call_id } => self.advance(call_id, Phase::Ringing),
            CallEvent::Answered { call_id } => self.advance(call_id, Phase::Answered),
            CallEvent::Held { call_id, held } => {
                let Some(call) = self.calls.get_mut(call_id) else {
                    return Vec::new();
                };
                call.held = *held;
                self.changes_of(call_id)
            }
            CallEvent::Transferred {
                call_id,
                side,
                target,
                progress,
                sip_status,
            } => {
                let target = number_of(target).to_owned();
                self.transfer(call_id, *side, &target, *progress, *sip_status)
            }
            CallEvent::Ended {
                call_id,
                disposition,
                sip_status,
            } => {
                let Some(call) = self.calls.remove(call_id) else {
                    return Vec::new();
                };
                let busy = call.phase != Phase::Answered
                    && (*sip_status == Some(486) || disposition == "BUSY");
                let target = call.transfer.map(|(target, _)| target);
                for number in [Some(&call.caller), Some(&call.callee), target.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    if let Some(extension) = self.extensions.get_mut(number) {
                        extension.calls.remove(call_id);
                    }
                }
                if busy && let Some(callee) = self.extensions.get_mut(&call.callee) {
                    callee.refused_busy = true;
                }
                self.changes(
                    [Some(call.caller), Some(call.callee), target]
                        .into_iter()
                        .flatten(),
                )
            }
            _ => Vec::new(),
        }
    }

    fn new_call(
        &mut self,
        call_id: &str,
        caller: &str,
        callee: &str,
    ) -> Vec<(String, ExtensionState)> {
        let mut involved = false;
        for number in [caller, callee] {
            if let Some(extension) = self.extensions.get_mut(number) {
                involved = true;
                extension.refused_busy = false;
                if !extension.calls.contains(call_id) {
                    extension.calls.insert(call_id.to_owned());
                }
            }
        }
        if !involved {
            // Neither party is an extension: nothing to keep.
            return Vec::new();
        }
        self.calls.insert(
            call_id.to_owned(),
            Call {
                caller: caller.to_owned(),
                callee: callee.to_owned(),
                phase: Phase::Trying,
                held: false,
                transfer: None,
            },
        );
        self.changes([caller.to_owned(), callee.to_owned()])
    }

    /// A transfer's progress: its target joins the call while it rings,
    /// takes the replaced party's place once it answers, and leaves it
    /// if it fails.
    fn transfer(
        &mut self,
        call_id: &str,
        side: CallSide,
        target: &str,
        progress: TransferProgress,
        sip_status: Option<u16>,
    ) -> Vec<(String, ExtensionState)> {
        let Some(call) = self.calls.get_mut(call_id) else {
            return Vec::new();
        };
        let mut touched = vec![call.caller.clone(), call.callee.clone(), target.to_owned()];
        let joins = |extensions: &mut HashMap<String, Extension>, number: &str| {
            if let Some(extension) = extensions.get_mut(number)
                && !extension.calls.contains(call_id)
            {
                extension.refused_busy = false;
                extension.calls.insert(call_id.to_owned());
            }
        };
        let leaves = |extensions: &mut HashMap<String, Extension>, number: &str, call: &Call| {
            // Unless it is still a party (it called itself).
            if call.caller != number
                && call.callee != number
                && let Some(extension) = extensions.get_mut(number)
            {
                extension.calls.remove(call_id);
            }
        };
        if matches!(
            progress,
            TransferProgress::Trying | TransferProgress::Ringing
        ) {
            call.transfer = Some((target.to_owned(), progress == TransferProgress::Ringing));
            joins(&mut self.extensions, target);
        } else if progress == TransferProgress::Answered {
            call.transfer = None;
            let replaced = if side == CallSide::Caller {
                std::mem::replace(&mut call.callee, target.to_owned())
            } else {
                std::mem::replace(&mut call.caller, target.to_owned())
            };
            joins(&mut self.extensions, target);
            leaves(&mut self.extensions, &replaced, call);
            touched.push(replaced);
        } else if progress == TransferProgress::Failed {
            call.transfer = None;
            leaves(&mut self.extensions, target, call);
            if sip_status == Some(486)
                && let Some(extension) = self.extensions.get_mut(target)
                && !extension.calls.contains(call_id)
            {
                extension.refused_busy = true;
            }
        }
        self.changes(touched)
    }

    fn advance(&mut self, call_id: &str, phase: Phase) -> Vec<(String, ExtensionState)> {
        let Some(call) = self.calls.get_mut(call_id) else {
            return Vec::new();
        };
        // A late 180 does not take an answered call back to ringing.
        if call.phase != Phase::Answered {
            call.phase = phase;
        }
        self.changes_of(call_id)
    }

    fn changes_of(&mut self, call_id: &str) -> Vec<(String, ExtensionState)> {
        match self.calls.get(call_id) {
            Some(call) => {
                let parties = [call.caller.clone(), call.callee.clone()];
                self.changes(parties)
            }
            None => Vec::new(),
        }
    }

    /// The state of each of `numbers` that is an extension, where it
    /// differs from the one last reported (which it becomes).
    fn changes(
        &mut self,
        numbers: impl IntoIterator<Item = String>,
    ) -> Vec<(String, ExtensionState)> {
        let mut changed = Vec::new();
        // The same extension twice (it called itself) reports once: the
        // first time makes its state the one reported.
        for number in numbers {
            let Some(state) = self.state(&number) else {
                continue;
            };
            let Some(extension) = self.extensions.get_mut(&number) else {
                continue;
            };
            if extension.reported != state {
                extension.reported = state;
                changed.push((number, state));
            }
        }
        changed
    }

    /// What `number` is doing now, if it is an extension.
    fn state(&self, number: &str) -> Option<ExtensionState> {
        let extension = self.extensions.get(number)?;
        let mut calls = extension.calls.iter();
        let state = match (calls.next(), calls.next()) {
            (None, _) if extension.refused_busy => ExtensionState::Busy,
            (None, _) if extension.bindings > 0 => ExtensionState::Idle,
            (None, _) => ExtensionState::Unavailable,
            (Some(call_id), None) => {
                let call = self.calls.get(call_id)?;
                if call.caller != number && call.callee != number {
                    // The target of a transfer under way.
                    return Some(match &call.transfer {
                        Some((_, true)) => ExtensionState::Ringing,
                        _ if extension.bindings > 0 => ExtensionState::Idle,
                        _ => ExtensionState::Unavailable,
                    });
                }
                match call.phase {
                    Phase::Answered if call.held => ExtensionState::OnHold,
                    Phase::Answered => ExtensionState::InUse,
                    _ if call.caller == number => ExtensionState::InUse,
                    Phase::Ringing => ExtensionState::Ringing,
                    // Its phones are asked but do not ring yet.
                    Phase::Trying if extension.bindings > 0 => ExtensionState::Idle,
                    Phase::Trying => ExtensionState::Unavailable,
                }
            }
            _ => ExtensionState::Busy,
        };
        Some(state)
    }

    /// The state of every extension, by number.
    pub(crate) fn all(&self) -> Vec<(String, ExtensionState)> {
        let mut all: Vec<_> = self
            .extensions
            .iter()
            .map(|(number, extension)| (number.clone(), extension.reported))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use ExtensionState::*;
    use trunkline_registrar::Location;

    fn registration(kind: EventKind, aor: &str) -> RegistrationEvent {
        RegistrationEvent {
            event: kind,
            timestamp: 1_700_000_000,
            location: Location {
                aor: aor.into(),
                destination: "127.0.0.1:5070".into(),
                transport: "UDP".into(),
                user_agent: None,
                expires: 60,
            },
        }
    }

    fn new(call_id: &str, caller: &str, callee: &str) -> CallEvent {
        CallEvent::New {
            call_id: call_id.into(),
            caller: caller.into(),
            callee: callee.into(),
        }
    }

    fn ended(call_id: &str, disposition: &str, sip_status: Option<u16>) -> CallEvent {
        CallEvent::Ended {
            call_id: call_id.into(),
            disposition: disposition.into(),
            sip_status,
        }
    }

    fn changes(list: &[(&str, ExtensionState)]) -> Vec<(String, ExtensionState)> {
        list.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect()
    }

    /// `numbers` configured.
    fn with(numbers: &[&str]) -> Extensions {
        let mut x = Extensions::default();
        x.add(numbers.iter().map(|n| (*n).to_owned()));
        x
    }

    /// 1001 and 1002 configured and registered.
    fn two_registered() -> Extensions {
        let mut x = with(&["1001", "1002"]);
        for aor in ["sip:1001@pbx", "sip:1002@pbx"] {
            x.registration(&registration(EventKind::Registered, aor));
        }
        x
    }

    #[test]
    fn bindings_make_idle_and_their_loss_unavailable() {
        let mut x = with(&["1001"]);
        let reg = |x: &mut Extensions, kind| x.registration(&registration(kind, "sip:1001@pbx"));
        assert_eq!(
            reg(&mut x, EventKind::Registered),
            changes(&[("1001", Idle)])
        );
        // A second phone changes nothing; losing one of two neither.
        assert_eq!(reg(&mut x, EventKind::Registered), changes(&[]));
        assert_eq!(reg(&mut x, EventKind::Unregistered), changes(&[]));
        assert_eq!(
            reg(&mut x, EventKind::Offline),
            changes(&[("1001", Unavailable)])
        );
        // More removals than bindings do not underflow.
        assert_eq!(reg(&mut x, EventKind::Offline), changes(&[]));
        assert_eq!(
            reg(&mut x, EventKind::Registered),
            changes(&[("1001", Idle)])
        );
    }

    #[test]
    fn an_unconfigured_user_that_registers_becomes_an_extension() {
        let mut x = Extensions::default();
        assert_eq!(
            x.registration(&registration(EventKind::Registered, "sips:2001@pbx")),
            changes(&[("2001", Idle)])
        );
        assert_eq!(
            x.registration(&registration(EventKind::Registered, "not-an-aor")),
            changes(&[])
        );
        assert_eq!(x.all(), changes(&[("2001", Idle)]));
    }

    #[test]
    fn an_answered_call_goes_ringing_in_use_on_hold_and_back_to_idle() {
        let mut x = two_registered();
        assert_eq!(
            x.call(&new("c1", "1001", "1002")),
            changes(&[("1001", InUse)])
        );
        assert_eq!(
            x.call(&CallEvent::Ringing {
                call_id: "c1".into()
            }),
            changes(&[("1002", Ringing)])
        );
        // A second 180 (another fork) changes nothing.
        assert_eq!(
            x.call(&CallEvent::Ringing {
                call_id: "c1".into()
            }),
            changes(&[])
        );
        assert_eq!(
            x.call(&CallEvent::Answered {
                call_id: "c1".into()
            }),
            changes(&[("1002", InUse)])
        );
        let held = |held| CallEvent::Held {
            call_id: "c1".into(),
            held,
        };
        assert_eq!(
            x.call(&held(true)),
            changes(&[("1001", OnHold), ("1002", OnHold)])
        );
        assert_eq!(
            x.call(&held(false)),
            changes(&[("1001", InUse), ("1002", InUse)])
        );
        assert_eq!(
            x.call(&ended("c1", "ANSWERED", Some(200))),
            changes(&[("1001", Idle), ("1002", Idle)])
        );
        assert!(x.calls.is_empty());
        // Events of a call never seen change nothing.
        assert_eq!(
            x.call(&CallEvent::Answered {
                call_id: "zz".into()
            }),
            changes(&[])
        );
        assert_eq!(x.call(&ended("zz", "FAILED", None)), changes(&[]));
    }

    #[test]
    fn two_calls_or_a_486_make_busy() {
        let mut x = two_registered();
        x.call(&new("c1", "1001", "1002"));
        x.call(&CallEvent::Answered {
            call_id: "c1".into(),
        });
        // 1002 in a call gets a second one: busy while both last.
        assert_eq!(
            x.call(&new("c2", "1003", "1002")),
            changes(&[("1002", Busy)])
        );
        assert_eq!(
            x.call(&ended("c2", "NO ANSWER", Some(487))),
            changes(&[("1002", InUse)])
        );
        assert_eq!(
            x.call(&ended("c1", "ANSWERED", Some(200))),
            changes(&[("1001", Idle), ("1002", Idle)])
        );
        // 1002 refuses a call with 486: busy until its next event.
        x.call(&new("c3", "1001", "1002"));
        assert_eq!(
            x.call(&ended("c3", "BUSY", Some(486))),
            changes(&[("1001", Idle), ("1002", Busy)])
        );
        assert_eq!(
            x.registration(&registration(EventKind::Registered, "sip:1002@pbx")),
            changes(&[("1002", Idle)])
        );
    }

    #[test]
    fn a_call_to_an_unregistered_extension_leaves_it_unavailable() {
        let mut x = with(&["1001", "1002"]);
        x.registration(&registration(EventKind::Registered, "sip:1001@pbx"));
        assert_eq!(
            x.call(&new("c1", "1001", "1002")),
            changes(&[("1001", InUse)])
        );
        assert_eq!(
            x.call(&ended("c1", "FAILED", Some(480))),
            changes(&[("1001", Idle)])
        );
    }

    #[test]
    fn calls_between_outside_numbers_are_not_kept() {
        let mut x = two_registered();
        assert_eq!(x.call(&new("t1", "+4930123", "+4940123")), changes(&[]));
        assert!(x.calls.is_empty());
        // A trunk's caller rings an extension: only the extension has a state.
        x.call(&new("t2", "+4930123", "1001"));
        assert_eq!(
            x.call(&CallEvent::Ringing {
                call_id: "t2".into()
            }),
            changes(&[("1001", Ringing)])
        );
        assert_eq!(
            x.call(&ended("t2", "NO ANSWER", Some(487))),
            changes(&[("1001", Idle)])
        );
    }

    fn transferred(target: &str, progress: TransferProgress, sip_status: Option<u16>) -> CallEvent {
        CallEvent::Transferred {
            call_id: "c1".into(),
            side: CallSide::Caller,
            target: target.into(),
            progress,
            sip_status,
        }
    }

    /// 1001, 1002 and 1003 registered; 1001 and 1002 in call c1.
    fn answered_with_1003_by() -> Extensions {
        let mut x = with(&["1001", "1002", "1003"]);
        for aor in ["sip:1001@pbx", "sip:1002@pbx", "sip:1003@pbx"] {
            x.registration(&registration(EventKind::Registered, aor));
        }
        x.call(&new("c1", "1001", "1002"));
        x.call(&CallEvent::Answered {
            call_id: "c1".into(),
        });
        x
    }

    #[test]
    fn a_blind_transfer_hands_the_call_to_its_target() {
        let mut x = answered_with_1003_by();
        // 1001 stays; 1002 sends it to 1003 (named by a SIP URI).
        let target = "sip:1003@pbx.example.com";
        assert_eq!(
            x.call(&transferred(target, TransferProgress::Trying, None)),
            changes(&[])
        );
        assert_eq!(
            x.call(&transferred(target, TransferProgress::Ringing, Some(180))),
            changes(&[("1003", Ringing)])
        );
        assert_eq!(
            x.call(&transferred(target, TransferProgress::Answered, Some(200))),
            changes(&[("1002", Idle), ("1003", InUse)])
        );
        assert_eq!(
            x.call(&ended("c1", "ANSWERED", Some(200))),
            changes(&[("1001", Idle), ("1003", Idle)])
        );
        assert!(x.extensions.values().all(|e| e.calls.is_empty()));
    }

    #[test]
    fn a_failed_transfer_leaves_the_call_as_it_was() {
        let mut x = answered_with_1003_by();
        x.call(&transferred("1003", TransferProgress::Ringing, Some(180)));
        // The target refuses busy: busy, the call goes on between 1001 and 1002.
        assert_eq!(
            x.call(&transferred("1003", TransferProgress::Failed, Some(486))),
            changes(&[("1003", Busy)])
        );
        // A transfer under way when the call ends lets its target go too.
        x.call(&transferred("1003", TransferProgress::Ringing, Some(180)));
        assert_eq!(
            x.call(&ended("c1", "ANSWERED", Some(200))),
            changes(&[("1001", Idle), ("1002", Idle), ("1003", Idle)])
        );
    }

    /// As [`answered_with_1003_by`], and 1003 in call c2 with 1004.
    fn two_answered_calls() -> Extensions {
        let mut x = answered_with_1003_by();
        x.add(["1004".to_owned()]);
        x.registration(&registration(EventKind::Registered, "sip:1004@pbx"));
        x.call(&new("c2", "1003", "1004"));
        x.call(&CallEvent::Answered {
            call_id: "c2".into(),
        });
        x
    }

    #[test]
    fn an_attended_transfer_joins_the_party_handed_over() {
        let mut x = two_answered_calls();
        // c1 keeps 1001 and takes c2's caller, 1003; c2 then ends.
        assert_eq!(
            x.call(&transferred("1003", TransferProgress::Answered, Some(200))),
            changes(&[("1002", Idle), ("1003", Busy)])
        );
        assert_eq!(
            x.call(&ended("c2", "ANSWERED", Some(200))),
            changes(&[("1003", InUse), ("1004", Idle)])
        );
        assert_eq!(
            x.call(&ended("c1", "ANSWERED", Some(200))),
            changes(&[("1001", Idle), ("1003", Idle)])
        );
    }

    #[test]
    fn an_attended_transfer_follows_a_callee_handed_over() {
        let mut x = two_answered_calls();
        // c1 keeps 1001 and takes c2's callee, 1004.
        assert_eq!(
            x.call(&transferred("1004", TransferProgress::Answered, Some(200))),
            changes(&[("1002", Idle), ("1004", Busy)])
        );
        assert_eq!(
            x.call(&ended("c2", "ANSWERED", Some(200))),
            changes(&[("1003", Idle), ("1004", InUse)])
        );
    }

    #[test]
    fn an_extension_calling_itself_reports_once() {
        let mut x = two_registered();
        assert_eq!(
            x.call(&new("c1", "1001", "1001")),
            changes(&[("1001", InUse)])
        );
        assert_eq!(
            x.call(&ended("c1", "FAILED", None)),
            changes(&[("1001", Idle)])
        );
    }
}
