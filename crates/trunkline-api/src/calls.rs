//! Call control over REST: commands for a call in progress and
//! click-to-dial.
//!
//! ```text
//! POST /console/calls/active/{call_id}/commands
//!   {"action":"hangup","reason":"admin_kick"}        200 {"status":"done"}
//!   {"action":"hold","leg":"caller"} / "unhold"      (leg optional: both)
//!   {"action":"mute","track_id":"audio-0"} / "unmute" (audio-0 caller, audio-1 callee, none both)
//!   {"action":"accept","sdp":"v=0…"}                 a ringing call
//!   {"action":"transfer","target":"sip:1002@pbx.com","leg":"caller"}
//!                                                    202 {"status":"started"}
//! POST /console/calls {"caller":"1001","callee":"0048123456789","record":false}
//!                                                    202 {"call_id":"…","status":"started"}
//! ```

use crate::{ApiError, Shared};
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use trunkline_engine::{CallCommand, CallSide, Originate};

/// A command's body, as integrators send it.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub(crate) enum Action {
    Hangup {
        reason: Option<String>,
    },
    Hold {
        leg: Option<Leg>,
    },
    Unhold {
        leg: Option<Leg>,
    },
    Mute {
        track_id: Option<String>,
        leg: Option<Leg>,
    },
    Unmute {
        track_id: Option<String>,
        leg: Option<Leg>,
    },
    Transfer {
        target: String,
        leg: Option<Leg>,
    },
    Accept {
        sdp: String,
    },
}

/// `caller` or `callee`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Leg {
    Caller,
    Callee,
}

impl From<Leg> for CallSide {
    fn from(leg: Leg) -> CallSide {
        match leg {
            Leg::Caller => CallSide::Caller,
            Leg::Callee => CallSide::Callee,
        }
    }
}

/// The party a mute names: a track (`audio-0` is the caller's audio,
/// `audio-1` the callee's, as in the recording's channels) or a leg.
fn muted_side(track_id: Option<&str>, leg: Option<Leg>) -> Result<Option<CallSide>, ApiError> {
    match (track_id, leg) {
        (Some("audio-0"), _) => Ok(Some(CallSide::Caller)),
        (Some("audio-1"), _) => Ok(Some(CallSide::Callee)),
        (Some(other), _) => Err(ApiError::bad_request(format!(
            "track_id {other:?}: audio-0 (the caller) or audio-1 (the callee)"
        ))),
        (None, leg) => Ok(leg.map(CallSide::from)),
    }
}

impl Action {
    /// The engine's command.
    fn command(self) -> Result<CallCommand, ApiError> {
        Ok(match self {
            Action::Hangup { reason } => CallCommand::Hangup { reason },
            Action::Hold { leg } => CallCommand::Hold {
                side: leg.map(Into::into),
            },
            Action::Unhold { leg } => CallCommand::Unhold {
                side: leg.map(Into::into),
            },
            Action::Mute { track_id, leg } => CallCommand::Mute {
                side: muted_side(track_id.as_deref(), leg)?,
            },
            Action::Unmute { track_id, leg } => CallCommand::Unmute {
                side: muted_side(track_id.as_deref(), leg)?,
            },
            Action::Transfer { target, leg } => CallCommand::Transfer {
                side: leg.map_or(CallSide::Caller, Into::into),
                target,
            },
            Action::Accept { sdp } => CallCommand::Accept { sdp },
        })
    }
}

/// How a command went.
#[derive(Debug, Serialize)]
pub(crate) struct CommandStatus {
    /// `done`, or `started` for a transfer, whose outcome comes as events.
    status: &'static str,
}

/// `POST /console/calls/active/{call_id}/commands`: carried out before the
/// answer, except a transfer (the target may ring for a minute), which is
/// started and reported on the event stream.
pub(crate) async fn command(
    State(shared): State<Arc<Shared>>,
    call: Result<Path<String>, PathRejection>,
    action: Result<Json<Action>, JsonRejection>,
) -> Result<(StatusCode, Json<CommandStatus>), ApiError> {
    let Path(call) = call?;
    let Json(action) = action?;
    let command = action.command()?;
    if let CallCommand::Transfer { .. } = command {
        if !shared.pbx.has_call(&call) {
            return Err(trunkline_engine::CommandError::NoSuchCall.into());
        }
        let pbx = shared.pbx.clone();
        tokio::spawn(async move {
            if let Err(e) = pbx.command(&call, command).await {
                tracing::info!(call, "transfer: {e}");
            }
        });
        return Ok((
            StatusCode::ACCEPTED,
            Json(CommandStatus { status: "started" }),
        ));
    }
    shared.pbx.command(&call, command).await?;
    Ok((StatusCode::OK, Json(CommandStatus { status: "done" })))
}

/// A click-to-dial request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dial {
    caller: String,
    callee: String,
    record: Option<bool>,
}

/// A started click-to-dial call.
#[derive(Debug, Serialize)]
pub(crate) struct Started {
    call_id: String,
    status: &'static str,
}

/// `POST /console/calls`: rings the caller, then the callee; the call's
/// id at once.
pub(crate) async fn originate(
    State(shared): State<Arc<Shared>>,
    dial: Result<Json<Dial>, JsonRejection>,
) -> Result<(StatusCode, Json<Started>), ApiError> {
    let Json(dial) = dial?;
    let call_id = shared.pbx.originate(Originate {
        caller: dial.caller,
        callee: dial.callee,
        record: dial.record,
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Started {
            call_id,
            status: "started",
        }),
    ))
}
