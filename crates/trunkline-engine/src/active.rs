//! The calls in progress, listed cheaply for the API: one summary per
//! call, written by its call task and removed when the task ends.

use dashmap::DashMap;
use serde::Serialize;
use std::sync::Arc;
use trunkline_cdr::{CdrId, Direction, Timestamp};

/// Where a call in progress stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallState {
    /// Accepted and being routed; nothing rings yet.
    Trying,
    /// A callee's phone rings (a 180 or 183 came back).
    Ringing,
    /// A callee answered.
    Answered,
}

/// One call in progress, as [`Engine::active_calls`](crate::Engine::active_calls)
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveCall {
    /// The id its call detail record will have once it ends.
    pub id: CdrId,
    /// The A leg's Call-ID.
    pub call_id: String,
    /// The calling extension, or the trunk caller's number.
    pub caller: String,
    /// The number dialled.
    pub callee: String,
    /// Which way it crosses the PBX.
    pub direction: Direction,
    /// Where it stands.
    pub state: CallState,
    /// When the INVITE was accepted.
    pub started: Timestamp,
    /// When a callee answered.
    pub answered_at: Option<Timestamp>,
}

/// The summaries by record id.
pub(crate) type ActiveCalls = Arc<DashMap<CdrId, ActiveCall>>;

/// A call's place in [`ActiveCalls`]: dropping it (the call task's end,
/// or its unwinding) removes the entry, so the list cannot leak.
pub(crate) struct Listed {
    calls: ActiveCalls,
    id: CdrId,
}

impl Listed {
    /// Lists `call` until the returned guard is dropped.
    pub(crate) fn insert(calls: &ActiveCalls, call: ActiveCall) -> Listed {
        let id = call.id.clone();
        calls.insert(id.clone(), call);
        Listed {
            calls: calls.clone(),
            id,
        }
    }

    /// The caller's and the callee's numbers as listed.
    pub(crate) fn parties(&self) -> (String, String) {
        self.calls
            .get(&self.id)
            .map(|c| (c.caller.clone(), c.callee.clone()))
            .unwrap_or_default()
    }

    /// Changes the summary in place.
    pub(crate) fn update(&self, change: impl FnOnce(&mut ActiveCall)) {
        if let Some(mut call) = self.calls.get_mut(&self.id) {
            change(&mut call);
        }
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        self.calls.remove(&self.id);
    }
}
