//! Call control of the real binary: a JSON-RPC 2.0 client on `/call-api`
//! starts a click-to-dial call between two SIPp phones, holds and
//! resumes it, transfers it blind to a third phone, joins it to a second
//! call (attended transfer) and ends it, and gets
//! each command's events and exactly one `Ended`; bad requests get the
//! standard error codes; the REST command route answers with its codes.
//! Then the same with baresip phones, which must hear each other after
//! each step (baresip takes the blind transfer's REFER and calls the
//! target itself). Last, a pjsua2 (pjsip) phone carries out an attended
//! transfer by REFER with Replaces.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

// Shared by two test binaries, each using part of it.
#[allow(dead_code)]
#[path = "baresip_phone.rs"]
mod baresip_phone;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use trunkline_e2e::*;

const CONTROL_KEY: &str = "test-control-key-0123456789";
const READ_KEY: &str = "test-read-key-0123456789";
const LIMIT: Duration = Duration::from_secs(30);

fn config() -> String {
    format!(
        "{EXTENSIONS}\n[[extensions]]\nnumber = \"1003\"\npassword = \"third-secret\"\n\
         [[extensions]]\nnumber = \"1004\"\npassword = \"fourth-secret\"\n\
         [[extensions]]\nnumber = \"1005\"\npassword = \"fifth-secret\"\n\
         [api]\nkeys = [\n  {{ name = \"ctl\", key = \"{CONTROL_KEY}\", scope = \"control\" }},\n  \
         {{ name = \"ro\", key = \"{READ_KEY}\", scope = \"read\" }},\n]\n"
    )
}

type Socket = tokio_tungstenite::WebSocketStream<TcpStream>;

/// A JSON-RPC client: what it sent, and every message it got, kept for
/// the assertions (replies and notifications of several commands
/// interleave).
struct Client {
    socket: Socket,
    seen: Vec<Value>,
    /// The PBX's log, shown when something does not come.
    log: std::path::PathBuf,
}

async fn connect(pbx: &Pbx, key: Option<&str>) -> Result<Client, u16> {
    let port = pbx.http_port;
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut request = format!("ws://127.0.0.1:{port}/call-api")
        .into_client_request()
        .unwrap();
    if let Some(key) = key {
        let value = format!("Bearer {key}").parse().unwrap();
        request.headers_mut().insert("Authorization", value);
    }
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((socket, _)) => Ok(Client {
            socket,
            seen: Vec::new(),
            log: pbx.dir.path().join("trunkline.log"),
        }),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("{e}"),
    }
}

impl Client {
    async fn send(&mut self, text: String) {
        self.socket.send(Message::Text(text.into())).await.unwrap();
    }

    /// The first message (already seen or coming) that `wanted` takes.
    async fn until(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(found) = self.seen.iter().find(|v| wanted(v)) {
            return found.clone();
        }
        loop {
            let message = tokio::time::timeout(LIMIT, self.socket.next())
                .await
                .unwrap_or_else(|_| {
                    let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                    panic!("no {what} in {LIMIT:?}; got {:#?}\nlog:\n{log}", self.seen)
                })
                .unwrap()
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).unwrap();
            self.seen.push(value.clone());
            if wanted(&value) {
                return value;
            }
        }
    }

    /// Sends a request; its reply.
    async fn call(&mut self, id: u64, method: &str, params: Value) -> Value {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send(request.to_string()).await;
        self.until("reply", |v| v["id"] == id).await
    }

    /// Sends a command; its `cmd_id` once it is started.
    async fn command(&mut self, id: u64, method: &str, params: Value) -> String {
        let reply = self.call(id, method, params).await;
        assert_eq!(reply["jsonrpc"], "2.0");
        assert_eq!(reply["result"]["status"], "Started", "{reply}");
        reply["result"]["cmd_id"].as_str().unwrap().to_owned()
    }

    /// Sends `CallStart` from `caller` to `callee` and waits until the
    /// callee answers: the command's id and the call's id.
    async fn start_call(&mut self, id: u64, caller: &str, callee: &str) -> (String, String) {
        let params = json!({"caller": caller, "callee": callee});
        let cmd_id = self.command(id, "CallStart", params).await;
        let answer = self
            .until("CALL_ANSWER", |v| {
                v["params"]["cmd_id"] == cmd_id && v["params"]["data"] == "CALL_ANSWER"
            })
            .await;
        let call_id = answer["params"]["call_id"].as_str().unwrap().to_owned();
        (cmd_id, call_id)
    }

    /// Waits for the command's `Ended`; its `Event` data in order. An
    /// `Error` fails the test.
    async fn ended(&mut self, cmd_id: &str) -> Vec<String> {
        let end = self
            .until("the end of a command", |v| {
                v["params"]["cmd_id"] == cmd_id
                    && (v["method"] == "Ended" || v["method"] == "Error")
            })
            .await;
        assert_eq!(end["method"], "Ended", "{end}");
        self.events_of(cmd_id)
    }

    fn events_of(&self, cmd_id: &str) -> Vec<String> {
        self.seen
            .iter()
            .filter(|v| v["method"] == "Event" && v["params"]["cmd_id"] == cmd_id)
            .map(|v| v["params"]["data"].as_str().unwrap().to_owned())
            .collect()
    }

    /// How many times the command ended (`Ended` or `Error`).
    fn ends_of(&self, cmd_id: &str) -> usize {
        self.seen
            .iter()
            .filter(|v| {
                v["params"]["cmd_id"] == cmd_id
                    && (v["method"] == "Ended" || v["method"] == "Error")
            })
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_rpc_starts_holds_transfers_and_ends_a_call() {
    let pbx = Pbx::start(&config());
    assert_eq!(connect(&pbx, None).await.err(), Some(401));
    assert_eq!(connect(&pbx, Some(READ_KEY)).await.err(), Some(403));
    let mut rpc = connect(&pbx, Some(CONTROL_KEY)).await.unwrap();

    let caller = phone(&pbx, "1001", "first-secret", "uas_controlled.xml");
    let callee = phone(&pbx, "1002", "second-secret", "uas_controlled.xml");
    let target = phone(&pbx, "1003", "third-secret", "uas_controlled.xml");
    let announcer = phone(&pbx, "1004", "fourth-secret", "uas_controlled.xml");
    let last = phone(&pbx, "1005", "fifth-secret", "uas_controlled.xml");

    let (start, call_id) = rpc.start_call(1, "1001", "1002").await;
    assert_eq!(rpc.events_of(&start), ["CALL_START", "CALL_ANSWER"]);

    let hold = rpc.command(2, "CallHold", json!({"callid": call_id})).await;
    assert_eq!(rpc.ended(&hold).await, ["CALL_HOLD"]);
    let unhold = rpc
        .command(3, "CallUnHold", json!({"callid": call_id}))
        .await;
    assert_eq!(rpc.ended(&unhold).await, ["CALL_UNHOLD"]);

    let transfer = json!({"callid": call_id, "leg": "caller", "destination": "1003"});
    let transfer = rpc.command(4, "CallBlindTransfer", transfer).await;
    let progress = rpc.ended(&transfer).await;
    assert_eq!(
        progress.first().map(String::as_str),
        Some("TRANSFER_TRYING")
    );
    assert_eq!(progress.last().map(String::as_str), Some("TRANSFER_ACCEPT"));
    // The replaced callee got its BYE and is done.
    let mut callee = callee;
    assert_eq!(callee.exit_code(LIMIT), Some(0), "1002: {}", pbx.log());

    // A second call, 1004 to 1005; then 1001 is joined to 1005, and 1003
    // and 1004 (the transferor's two legs) hang up.
    let (second, second_call) = rpc.start_call(5, "1004", "1005").await;
    let attended = json!({"callid_a": call_id, "leg_a": "caller", "callid_b": second_call,
                          "leg_b": "callee", "destination": "sip:1005@127.0.0.1"});
    let attended = rpc.command(6, "CallAttendedTransfer", attended).await;
    assert_eq!(rpc.ended(&attended).await, ["TRANSFER_ACCEPT"]);
    let mut target = target;
    assert_eq!(target.exit_code(LIMIT), Some(0), "1003: {}", pbx.log());
    let mut announcer = announcer;
    assert_eq!(announcer.exit_code(LIMIT), Some(0), "1004: {}", pbx.log());
    let second_end = rpc.ended(&second).await;
    assert_eq!(second_end.last().map(String::as_str), Some("CALL_END"));

    let end = rpc.command(7, "CallEnd", json!({"callid": call_id})).await;
    assert_eq!(rpc.ended(&end).await, ["CALL_END"]);
    // The click-to-dial command followed the call to its end.
    let start_end = rpc.ended(&start).await;
    assert_eq!(start_end.last().map(String::as_str), Some("CALL_END"));
    for cmd_id in [&start, &hold, &unhold, &transfer, &second, &attended, &end] {
        assert_eq!(rpc.ends_of(cmd_id), 1, "{cmd_id}: {:#?}", rpc.seen);
    }
    tokio::task::block_in_place(|| phones_done(&pbx, vec![("1001", caller), ("1005", last)]));
    let stored = records(&pbx);
    let record = stored.iter().find(|r| r.call_id == call_id).unwrap();
    assert_eq!(record.disposition.as_str(), "ANSWERED");
    assert_eq!(record.hangup.reason.as_deref(), Some("call_api"));
    let record = stored.iter().find(|r| r.call_id == second_call).unwrap();
    assert_eq!(record.hangup.reason.as_deref(), Some("transferred"));

    // A command for a call that is gone ends in an error, not silence.
    let gone = rpc.command(8, "CallHold", json!({"callid": call_id})).await;
    let error = rpc
        .until("Error", |v| {
            v["method"] == "Error" && v["params"]["cmd_id"] == gone
        })
        .await;
    assert_eq!(error["params"]["code"], "not_found", "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_rpc_errors_and_rest_its_codes() {
    let pbx = Pbx::start(&config());
    let mut rpc = connect(&pbx, Some(CONTROL_KEY)).await.unwrap();
    let code = |v: &Value| v["error"]["code"].as_i64();

    rpc.send("{not json".into()).await;
    let reply = rpc.until("parse error", |v| v["error"].is_object()).await;
    assert_eq!((code(&reply), &reply["id"]), (Some(-32700), &Value::Null));
    let reply = rpc.call(2, "CallFly", json!({})).await;
    assert_eq!(code(&reply), Some(-32601));
    let reply = rpc.call(3, "CallHold", json!({"leg": "caller"})).await;
    assert_eq!(code(&reply), Some(-32602));
    rpc.send(json!({"id": 4, "method": "CallEnd"}).to_string())
        .await;
    let reply = rpc.until("invalid request", |v| v["id"] == 4).await;
    assert_eq!(code(&reply), Some(-32600));
    // A batch: one reply each, in one array.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 5, "method": "Nope"},
        {"jsonrpc": "2.0", "id": 6, "method": "CallStart", "params": {"caller": "1 001", "callee": "1002"}}
    ]);
    rpc.send(batch.to_string()).await;
    let replies = rpc.until("batch", Value::is_array).await;
    assert_eq!(code(&replies[0]), Some(-32601));
    let cmd_id = replies[1]["result"]["cmd_id"].as_str().unwrap().to_owned();
    let error = rpc
        .until("Error", |v| {
            v["method"] == "Error" && v["params"]["cmd_id"] == cmd_id
        })
        .await;
    assert_eq!(error["params"]["code"], "bad_request", "{error}");

    let path = "/console/calls/active/nobody@nowhere/commands";
    let (status, body) = pbx.post_as(path, CONTROL_KEY, r#"{"action":"hangup"}"#);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"not_found\""), "{body}");
    let (status, body) = pbx.post_as(path, CONTROL_KEY, r#"{"action":"dance"}"#);
    assert_eq!(status, 400, "{body}");
    let (status, _) = pbx.post_as(path, READ_KEY, r#"{"action":"hangup"}"#);
    assert_eq!(status, 403);
    let (status, body) = pbx.post_as("/console/calls", CONTROL_KEY, r#"{"caller":"1001"}"#);
    assert_eq!(status, 400, "{body}");
    let dial = r#"{"caller":"1001","callee":"1002","record":false}"#;
    let (status, body) = pbx.post_as("/console/calls", CONTROL_KEY, dial);
    assert_eq!(status, 202, "{body}");
    let started: Value = serde_json::from_str(&body).unwrap();
    assert!(started["call_id"].as_str().unwrap().ends_with("@trunkline"));
    // Nobody registered as 1001: the call ends at once, unanswered.
    let deadline = std::time::Instant::now() + LIMIT;
    let record = loop {
        if let Some(record) = tokio::task::block_in_place(|| records(&pbx)).pop() {
            break record;
        }
        assert!(std::time::Instant::now() < deadline, "no record");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(record.call_id, started["call_id"].as_str().unwrap());
    assert_ne!(record.disposition.as_str(), "ANSWERED");
}

/// The tone each baresip phone plays.
const TONES: [(&str, &str, f64); 4] = [
    ("1001", "first-secret", 400.0),
    ("1002", "second-secret", 1000.0),
    ("1003", "third-secret", 700.0),
    ("1004", "fourth-secret", 1300.0),
];

/// `phone` hears the tone `hz`, at a level a working path gives, over the
/// next three seconds.
fn expect_hears(phone: &baresip_phone::Phone, hz: f64, what: &str) {
    let (heard, level) = tokio::task::block_in_place(|| phone.hears_during(Duration::from_secs(3)));
    assert!(
        (heard - hz).abs() < 20.0 && level > 2000.0,
        "{what}: {heard} Hz at {level}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_rpc_drives_baresip_phones_through_a_call_and_both_transfers() {
    // baresip 1.0 gives up on a challenge that also offers SHA-256.
    let pbx = Pbx::start(&format!(
        "[registrar]\nalgorithms = [\"MD5\"]\n{}",
        config()
    ));
    let dir = tempfile::tempdir().unwrap();
    let phones: Vec<_> = TONES
        .iter()
        .map(|(user, password, hz)| {
            baresip_phone::Phone::start(dir.path(), user, password, pbx.sip_port, *hz, true)
        })
        .collect();
    let deadline = std::time::Instant::now() + LIMIT;
    while pbx.health()["registrations"] != 4 {
        assert!(std::time::Instant::now() < deadline, "{}", pbx.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut rpc = connect(&pbx, Some(CONTROL_KEY)).await.unwrap();

    // 1001 is rung and answers by itself, then 1002.
    let (start, call_id) = rpc.start_call(1, "1001", "1002").await;
    expect_hears(&phones[0], 1000.0, "1001 hears 1002");
    expect_hears(&phones[1], 400.0, "1002 hears 1001");

    // 1001 goes to 1003; 1002 is let go. baresip takes REFER: it calls
    // 1003 itself, a call of its own, and the first call ends.
    let transfer = json!({"callid": call_id, "leg": "caller", "destination": "1003"});
    let transfer = rpc.command(2, "CallBlindTransfer", transfer).await;
    let progress = rpc.ended(&transfer).await;
    assert_eq!(
        progress.first().map(String::as_str),
        Some("TRANSFER_TRYING")
    );
    assert_eq!(progress.last().map(String::as_str), Some("TRANSFER_ACCEPT"));
    rpc.ended(&start).await;
    expect_hears(&phones[0], 700.0, "1001 hears 1003");
    let active = pbx.json_as("/console/calls/active", READ_KEY);
    let calls = active["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{active}");
    assert_eq!(
        (calls[0]["caller"].as_str(), calls[0]["callee"].as_str()),
        (Some("1001"), Some("1003"))
    );
    let call_id = calls[0]["call_id"].as_str().unwrap().to_owned();

    // 1004 calls 1002 (free again); then 1001 is joined to 1002, and 1003
    // and 1004 hang up. baresip 1.0 has no Replaces: the B2BUA joins them.
    let (second, second_call) = rpc.start_call(3, "1004", "1002").await;
    let attended = json!({"callid_a": call_id, "leg_a": "caller", "callid_b": second_call,
                          "leg_b": "callee", "destination": "sip:1002@127.0.0.1"});
    let attended = rpc.command(4, "CallAttendedTransfer", attended).await;
    assert_eq!(rpc.ended(&attended).await, ["TRANSFER_ACCEPT"]);
    rpc.ended(&second).await;
    expect_hears(&phones[0], 1000.0, "1001 hears 1002 again");

    // Hold and resume last: the relay goes on delivering the audio (a
    // capture shows it), but baresip 1.0's sndfile dump stops at the
    // first re-INVITE that changes the direction, so nothing after this
    // can be listened to.
    let hold = rpc.command(5, "CallHold", json!({"callid": call_id})).await;
    assert_eq!(rpc.ended(&hold).await, ["CALL_HOLD"]);
    let unhold = rpc
        .command(6, "CallUnhold", json!({"callid": call_id}))
        .await;
    assert_eq!(rpc.ended(&unhold).await, ["CALL_UNHOLD"]);

    let end = rpc.command(7, "CallEnd", json!({"callid": call_id})).await;
    assert_eq!(rpc.ended(&end).await, ["CALL_END"]);
    tokio::task::block_in_place(|| pbx.wait_idle());
    let stored = records(&pbx);
    // The first call (referred away), 1001's call to 1003, and 1004's.
    assert_eq!(stored.len(), 3, "{stored:?}");
    assert!(
        stored.iter().all(|r| r.disposition.as_str() == "ANSWERED"),
        "{stored:?}"
    );
}

/// A pjsua2 phone (`tests/pjsua/phone.py`, pjsip from PyPI's
/// pjsua2-python in `.ci/setup`'s virtual environment): it answers every
/// call and carries out REFERs, `Replaces` included; what it does comes
/// as lines.
struct Pjsua {
    _process: trunkline_testkit::Reaped,
    lines: std::sync::mpsc::Receiver<String>,
    said: Vec<String>,
}

impl Pjsua {
    fn start(pbx: &Pbx, user: &str, password: &str) -> Pjsua {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        let python = home
            .unwrap_or_default()
            .join(".local/share/trunkline/venv/bin/python");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/pjsua/phone.py");
        let port = trunkline_testkit::free_port();
        let mut process = trunkline_testkit::Reaped::spawn(
            std::process::Command::new(python)
                .arg(script)
                .args([user, password, &pbx.sip_port.to_string(), &port.to_string()])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped()),
        );
        let (send, lines) = std::sync::mpsc::channel();
        let out = process.lines();
        std::thread::spawn(move || {
            for line in out.map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Pjsua {
            _process: process,
            lines,
            said: Vec::new(),
        }
    }

    /// The next line that `wanted` (within the limit).
    fn expect(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + LIMIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.said.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("pjsua never said {what}: {:#?}", self.said),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pjsua_phone_carries_out_an_attended_transfer_by_refer_with_replaces() {
    let pbx = Pbx::start(&config());
    let mut rpc = connect(&pbx, Some(CONTROL_KEY)).await.unwrap();
    let mut pjsua = Pjsua::start(&pbx, "1001", "first-secret");
    let registered = pjsua.expect("its registration", |l| l.starts_with("registration"));
    assert_eq!(registered, "registration 200");
    let transferor = phone(&pbx, "1002", "second-secret", "uas_controlled.xml");
    let replaced = phone(&pbx, "1003", "third-secret", "uas_controlled.xml");
    let joined = phone(&pbx, "1004", "fourth-secret", "uas_controlled.xml");

    // Call A: 1001 (pjsua) and 1002; call B: 1003 and 1004.
    let (first, call_a) = rpc.start_call(1, "1001", "1002").await;
    let confirmed = |l: &str| l.starts_with("call ") && l.ends_with(" CONFIRMED");
    let talking = pjsua.expect("call A confirmed", confirmed);
    let (second, call_b) = rpc.start_call(2, "1003", "1004").await;
    // pjsua is sent a REFER whose Refer-To replaces 1003's dialog of call
    // B; its INVITE with Replaces takes 1003's place, 1003 and 1002 are
    // let go, and call A ends.
    let attended = json!({"callid_a": call_a, "leg_a": "caller", "callid_b": call_b,
                          "leg_b": "callee", "destination": "sip:1004@127.0.0.1"});
    let attended = rpc.command(3, "CallAttendedTransfer", attended).await;
    let refer = pjsua.expect("a REFER", |l| l.starts_with("refer "));
    assert!(refer.contains("Replaces="), "{refer}");
    // Its own new call, the one that replaces.
    let replacing = pjsua.expect("the replacing call confirmed", confirmed);
    assert_ne!(replacing, talking);
    let progress = rpc.ended(&attended).await;
    assert_eq!(
        progress.first().map(String::as_str),
        Some("TRANSFER_TRYING")
    );
    assert_eq!(progress.last().map(String::as_str), Some("TRANSFER_ACCEPT"));
    let first_end = rpc.ended(&first).await;
    assert_eq!(first_end.last().map(String::as_str), Some("CALL_END"));
    for (name, mut phone) in [("1002", transferor), ("1003", replaced)] {
        let code = tokio::task::block_in_place(|| phone.exit_code(LIMIT));
        assert_eq!(code, Some(0), "{name} was let go: {}", pbx.log());
    }
    let active = pbx.json_as("/console/calls/active", READ_KEY);
    let calls = active["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "{active}");
    assert_eq!(calls[0]["call_id"], call_b.as_str());
    assert_eq!(
        (calls[0]["caller"].as_str(), calls[0]["callee"].as_str()),
        (Some("1001"), Some("1004"))
    );

    // Call B goes on between pjsua and 1004 until it is ended.
    let end = rpc.command(4, "CallEnd", json!({"callid": call_b})).await;
    assert_eq!(rpc.ended(&end).await, ["CALL_END"]);
    rpc.ended(&second).await;
    tokio::task::block_in_place(|| phones_done(&pbx, vec![("1004", joined)]));
    let stored = records(&pbx);
    let record = stored.iter().find(|r| r.call_id == call_a).unwrap();
    assert_eq!(record.hangup.reason.as_deref(), Some("transferred"));
}
