//! The JSON-RPC 2.0 call API over WebSocket at `/call-api`: commands
//! (`CallStart`, `CallEnd`, `CallHold`, `CallUnhold`, `CallBlindTransfer`,
//! `CallAttendedTransfer`) answered at once with a command id, their
//! progress as `Event` notifications, and exactly one `Ended` or `Error`
//! notification at the end of each.
//!
//! ```text
//! → {"jsonrpc":"2.0","id":1,"method":"CallStart","params":{"caller":"1001","callee":"1002"}}
//! ← {"jsonrpc":"2.0","id":1,"result":{"cmd_id":"…","status":"Started"}}
//! ← {"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"…","data":"CALL_START","call_id":"…"}}
//! ← {"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"…","data":"CALL_RINGING",…}}
//! ← {"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"…","data":"CALL_ANSWER",…}}
//! ← …                                                  (the call goes on)
//! ← {"jsonrpc":"2.0","method":"Event","params":{"cmd_id":"…","data":"CALL_END",…}}
//! ← {"jsonrpc":"2.0","method":"Ended","params":{"cmd_id":"…"}}
//! ```

use crate::{ApiError, CommandFuture, Pbx, Shared};
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use trunkline_engine::{
    CallCommand, CallEvent, CallSide, CommandError, Originate, TransferProgress,
};

/// JSON-RPC 2.0's own error codes (§5.1).
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;

/// Notifications waiting for a slow client; a command's task waits for
/// room rather than dropping one.
const QUEUE: usize = 256;

/// `GET /call-api`: the WebSocket upgrade.
pub(crate) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let ws = ws.map_err(|e| ApiError::bad_request(format!("a WebSocket upgrade: {e}")))?;
    let pbx = shared.pbx.clone();
    Ok(ws.on_upgrade(move |socket| session(pbx, socket)))
}

/// One client: requests in, replies and notifications out, until either
/// side closes. Its commands' tasks end with it.
async fn session(pbx: Arc<dyn Pbx>, mut socket: WebSocket) {
    let (notify, mut notifications) = mpsc::channel::<Value>(QUEUE);
    let mut commands = JoinSet::new();
    loop {
        while commands.try_join_next().is_some() {}
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text.to_string(),
                    Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                if let Some(reply) = handle(&pbx, &text, &notify, &mut commands)
                    && socket.send(Message::Text(reply.to_string().into())).await.is_err()
                {
                    break;
                }
            }
            Some(note) = notifications.recv() => {
                if socket.send(Message::Text(note.to_string().into())).await.is_err() {
                    break;
                }
            }
        }
    }
}

/// Answers one WebSocket message: a request, or a batch of them (§6).
/// Notifications (requests without an id) get no answer.
fn handle(
    pbx: &Arc<dyn Pbx>,
    text: &str,
    notify: &mpsc::Sender<Value>,
    commands: &mut JoinSet<()>,
) -> Option<Value> {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            return Some(error(
                Value::Null,
                PARSE_ERROR,
                &format!("Parse error: {e}"),
            ));
        }
    };
    match value {
        Value::Array(batch) if batch.is_empty() => Some(error(
            Value::Null,
            INVALID_REQUEST,
            "Invalid Request: an empty batch",
        )),
        Value::Array(batch) => {
            let replies: Vec<Value> = batch
                .into_iter()
                .filter_map(|request| one(pbx, request, notify, commands))
                .collect();
            (!replies.is_empty()).then_some(Value::Array(replies))
        }
        request => one(pbx, request, notify, commands),
    }
}

/// A JSON-RPC error response.
fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// The parameters of the methods that name a call.
#[derive(Debug, Deserialize)]
struct Named {
    callid: String,
    leg: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Start {
    caller: String,
    callee: String,
}

#[derive(Debug, Deserialize)]
struct BlindTransfer {
    callid: String,
    leg: String,
    destination: String,
}

#[derive(Debug, Deserialize)]
struct AttendedTransfer {
    callid_a: String,
    leg_a: String,
    callid_b: String,
    leg_b: String,
    /// The transfer target's address, as the client knows it; the PBX
    /// joins the two calls' legs, so it only goes into the events.
    destination: String,
}

/// What a valid request asks for.
enum Request {
    Start(Start),
    Command {
        callid: String,
        command: CallCommand,
        done: &'static str,
    },
    Transfer(BlindTransfer, CallSide),
    Attended {
        a: (String, CallSide),
        b: (String, CallSide),
        destination: String,
    },
}

/// One request: its answer (`None` for a notification).
fn one(
    pbx: &Arc<dyn Pbx>,
    request: Value,
    notify: &mpsc::Sender<Value>,
    commands: &mut JoinSet<()>,
) -> Option<Value> {
    let Value::Object(request) = request else {
        return Some(error(
            Value::Null,
            INVALID_REQUEST,
            "Invalid Request: not an object",
        ));
    };
    let id = match request.get("id") {
        None => None,
        Some(id @ (Value::Null | Value::Number(_) | Value::String(_))) => Some(id.clone()),
        Some(_) => {
            let message = "Invalid Request: id is a string, a number or null";
            return Some(error(Value::Null, INVALID_REQUEST, message));
        }
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        let message = "Invalid Request: jsonrpc must be \"2.0\"";
        return Some(error(reply_id, INVALID_REQUEST, message));
    }
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        let message = "Invalid Request: method must be a string";
        return Some(error(reply_id, INVALID_REQUEST, message));
    };
    let params = request.get("params").cloned().unwrap_or(Value::Null);
    let parsed = match parse(method, params) {
        Ok(parsed) => parsed,
        Err((code, message)) => return id.map(|id| error(id, code, &message)),
    };
    let cmd_id = uuid::Uuid::new_v4().to_string();
    let reply = json!({"jsonrpc": "2.0", "id": reply_id, "result": {"cmd_id": cmd_id, "status": "Started"}});
    let progress = Progress {
        cmd_id,
        notify: notify.clone(),
    };
    let pbx = pbx.clone();
    // Subscribed before the command starts, so no event is missed.
    let events = pbx.call_events();
    commands.spawn(async move { run(pbx, parsed, progress, events).await });
    id.map(|_| reply)
}

/// A method's name and parameters as a request, or the JSON-RPC error.
fn parse(method: &str, params: Value) -> Result<Request, (i64, String)> {
    fn params_of<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, (i64, String)> {
        serde_json::from_value(params).map_err(|e| (INVALID_PARAMS, format!("Invalid params: {e}")))
    }
    fn side(leg: Option<&str>) -> Result<Option<CallSide>, (i64, String)> {
        match leg {
            None => Ok(None),
            Some(leg) => CallSide::parse(leg).map(Some).ok_or_else(|| {
                (
                    INVALID_PARAMS,
                    format!("Invalid params: leg {leg:?} is caller or callee"),
                )
            }),
        }
    }
    let command = |named: Named, command: CallCommand, done| Request::Command {
        callid: named.callid,
        command,
        done,
    };
    match method {
        "CallStart" => Ok(Request::Start(params_of(params)?)),
        "CallEnd" => {
            let named: Named = params_of(params)?;
            Ok(command(
                named,
                CallCommand::Hangup {
                    reason: Some("call_api".into()),
                },
                "CALL_END",
            ))
        }
        "CallHold" => {
            let named: Named = params_of(params)?;
            let side = side(named.leg.as_deref())?;
            Ok(command(named, CallCommand::Hold { side }, "CALL_HOLD"))
        }
        "CallUnhold" | "CallUnHold" => {
            let named: Named = params_of(params)?;
            let side = side(named.leg.as_deref())?;
            Ok(command(named, CallCommand::Unhold { side }, "CALL_UNHOLD"))
        }
        "CallBlindTransfer" => {
            let transfer: BlindTransfer = params_of(params)?;
            let side = side(Some(&transfer.leg))?.unwrap_or(CallSide::Caller);
            Ok(Request::Transfer(transfer, side))
        }
        "CallAttendedTransfer" => {
            let t: AttendedTransfer = params_of(params)?;
            let leg_a = side(Some(&t.leg_a))?.unwrap_or(CallSide::Caller);
            let leg_b = side(Some(&t.leg_b))?.unwrap_or(CallSide::Callee);
            Ok(Request::Attended {
                a: (t.callid_a, leg_a),
                b: (t.callid_b, leg_b),
                destination: t.destination,
            })
        }
        other => Err((METHOD_NOT_FOUND, format!("Method not found: {other}"))),
    }
}

/// Where one command's notifications go.
struct Progress {
    cmd_id: String,
    notify: mpsc::Sender<Value>,
}

impl Progress {
    async fn send(&self, method: &str, mut params: Value) {
        params["cmd_id"] = json!(self.cmd_id);
        let note = json!({"jsonrpc": "2.0", "method": method, "params": params});
        // The client is gone if this fails; the session ends the task.
        let _ = self.notify.send(note).await;
    }

    async fn event(&self, data: &str, call_id: &str) {
        self.send("Event", json!({"data": data, "call_id": call_id}))
            .await;
    }

    async fn ended(&self) {
        self.send("Ended", json!({})).await;
    }

    async fn failed(&self, error: &CommandError) {
        let api = ApiError::from(error.clone());
        let params = json!({"code": api.code(), "sip_status": error.sip_status(), "message": error.to_string()});
        self.send("Error", params).await;
    }
}

/// Carries out one command and reports it.
async fn run(
    pbx: Arc<dyn Pbx>,
    request: Request,
    progress: Progress,
    events: broadcast::Receiver<CallEvent>,
) {
    match request {
        Request::Start(start) => call_start(pbx, start, progress, events).await,
        Request::Command {
            callid,
            command,
            done,
        } => match pbx.command(&callid, command).await {
            Ok(()) => {
                progress.event(done, &callid).await;
                progress.ended().await;
            }
            Err(e) => progress.failed(&e).await,
        },
        Request::Transfer(transfer, side) => {
            blind_transfer(pbx, transfer, side, progress, events).await;
        }
        Request::Attended { a, b, destination } => {
            let done = pbx.attended_transfer((&a.0, a.1), (&b.0, b.1));
            let followed = (a.0.as_str(), destination.as_str());
            follow_transfer(&*pbx, followed, done, &progress, events).await;
        }
    }
}

/// `CallStart`: a click-to-dial call, followed until it ends; `Ended` if
/// it was answered, else an `Error` with the final SIP status.
async fn call_start(
    pbx: Arc<dyn Pbx>,
    start: Start,
    progress: Progress,
    mut events: broadcast::Receiver<CallEvent>,
) {
    let originate = Originate {
        caller: start.caller,
        callee: start.callee,
        record: None,
    };
    let call_id = match pbx.originate(originate) {
        Ok(call_id) => call_id,
        Err(e) => return progress.failed(&e).await,
    };
    let mut answered = false;
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, call_id, "call API fell behind the call events");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => {
                return progress.failed(&CommandError::Ended).await;
            }
        };
        let data = match &event {
            CallEvent::New { call_id: id, .. } if *id == call_id => "CALL_START",
            CallEvent::Ringing { call_id: id } if *id == call_id => "CALL_RINGING",
            CallEvent::Answered { call_id: id } if *id == call_id => {
                answered = true;
                "CALL_ANSWER"
            }
            CallEvent::Held { call_id: id, held } if *id == call_id => {
                if *held {
                    "CALL_HOLD"
                } else {
                    "CALL_UNHOLD"
                }
            }
            CallEvent::Transferred {
                call_id: id,
                progress: p,
                ..
            } if *id == call_id => transfer_data(*p),
            CallEvent::Ended {
                call_id: id,
                sip_status,
                ..
            } if *id == call_id => {
                progress.event("CALL_END", &call_id).await;
                if answered {
                    progress.ended().await;
                } else {
                    let status = sip_status.unwrap_or(480);
                    progress.failed(&CommandError::Refused(status)).await;
                }
                return;
            }
            _ => continue,
        };
        progress.event(data, &call_id).await;
    }
}

fn transfer_data(progress: TransferProgress) -> &'static str {
    match progress {
        TransferProgress::Trying => "TRANSFER_TRYING",
        TransferProgress::Ringing => "TRANSFER_RINGING",
        TransferProgress::Answered => "TRANSFER_ACCEPT",
        TransferProgress::Failed => "TRANSFER_FAILED",
    }
}

/// `CallBlindTransfer`: the transfer's progress as it comes, then
/// `Ended` once the destination answered, or an `Error` with its status.
async fn blind_transfer(
    pbx: Arc<dyn Pbx>,
    transfer: BlindTransfer,
    side: CallSide,
    progress: Progress,
    events: broadcast::Receiver<CallEvent>,
) {
    let command = CallCommand::Transfer {
        side,
        target: transfer.destination.clone(),
    };
    let done = pbx.command(&transfer.callid, command);
    let followed = (transfer.callid.as_str(), transfer.destination.as_str());
    follow_transfer(&*pbx, followed, done, &progress, events).await;
}

/// Reports a transfer of the call `callid` to `destination` while `done`
/// carries it out: its progress (`TRANSFER_TRYING`, `TRANSFER_RINGING`)
/// as the call's events tell it, then `TRANSFER_ACCEPT` and `Ended`, or
/// `TRANSFER_FAILED` and the error.
async fn follow_transfer(
    pbx: &dyn Pbx,
    (callid, destination): (&str, &str),
    done: CommandFuture<'_>,
    progress: &Progress,
    mut events: broadcast::Receiver<CallEvent>,
) {
    // The events name the call by its first Call-ID; the client may have
    // named it by the other leg's.
    let primary = pbx
        .active_calls()
        .into_iter()
        .find(|c| c.call_id == callid || c.id.as_str() == callid)
        .map(|c| c.call_id);
    let ours = |event: &CallEvent| match event {
        CallEvent::Transferred {
            call_id, target, ..
        } => match &primary {
            Some(primary) => call_id == primary,
            None => target == destination,
        },
        _ => false,
    };
    let report = |data: &'static str| {
        let params = json!({"data": data, "call_id": callid, "destination": destination});
        progress.send("Event", params)
    };
    let outcome = {
        tokio::pin!(done);
        loop {
            tokio::select! {
                outcome = &mut done => break outcome,
                event = events.recv() => {
                    if let Ok(event @ CallEvent::Transferred { progress: p, .. }) = event
                        && ours(&event)
                        && p != TransferProgress::Answered
                        && p != TransferProgress::Failed
                    {
                        report(transfer_data(p)).await;
                    }
                }
            }
        }
    };
    match outcome {
        Ok(()) => {
            report("TRANSFER_ACCEPT").await;
            progress.ended().await;
        }
        Err(e) => {
            report("TRANSFER_FAILED").await;
            progress.failed(&e).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn methods_and_params_are_checked_as_json_rpc_says() {
        let code = |method: &str, params: Value| parse(method, params).err().map(|(code, _)| code);
        assert_eq!(code("CallFly", json!({})), Some(METHOD_NOT_FOUND));
        assert_eq!(
            code("CallStart", json!({"caller": "1001"})),
            Some(INVALID_PARAMS)
        );
        // By position, in the order the contract names them (§4.2).
        assert_eq!(code("CallStart", json!(["1001", "1002"])), None);
        assert_eq!(code("CallStart", json!(["1001"])), Some(INVALID_PARAMS));
        assert_eq!(
            code("CallHold", json!({"callid": "x", "leg": "both"})),
            Some(INVALID_PARAMS)
        );
        assert_eq!(
            code("CallStart", json!({"caller": "1001", "callee": "1002"})),
            None
        );
        assert_eq!(code("CallUnHold", json!({"callid": "x"})), None);
        assert_eq!(code("CallUnhold", json!({"callid": "x"})), None);
        let transfer = json!({"callid": "x", "leg": "callee", "destination": "1003"});
        assert!(matches!(
            parse("CallBlindTransfer", transfer),
            Ok(Request::Transfer(_, CallSide::Callee))
        ));
        let attended = json!({"callid_a": "a", "leg_a": "caller", "callid_b": "b", "leg_b": "callee", "destination": "x"});
        assert_eq!(code("CallAttendedTransfer", attended), None);
        let attended = json!({"callid_a": "a", "leg_a": "caller", "callid_b": "b"});
        assert_eq!(code("CallAttendedTransfer", attended), Some(INVALID_PARAMS));
    }
}
