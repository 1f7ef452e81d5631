//! The live events of the real binary at `/api/v1/events`, read with a
//! WebSocket client: a SIPp phone's registration and a call between two
//! SIPp phones come as numbered call, registration and extension events
//! in order; a client that reconnects with `?since=` gets exactly what it
//! missed; no key is 401; shutdown closes the socket with 1001.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use serde_json::Value;
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};
use trunkline_e2e::{EXTENSIONS, Pbx, call_as_1001, phone, phones_done};

const KEY: &str = "events-board-key-0123456789";

/// How long any one event may take to come.
const EVENT_LIMIT: Duration = Duration::from_secs(10);

/// How long a socket stays quiet to show nothing more comes.
const QUIET: Duration = Duration::from_millis(500);

type Socket = WebSocket<TcpStream>;

fn start() -> Pbx {
    Pbx::start(&format!(
        "{EXTENSIONS}\n[api]\nkeys = [{{ name = \"board\", key = \"{KEY}\", scope = \"read\" }}]\n"
    ))
}

/// Opens `/api/v1/events{query}` with `key`.
fn connect(pbx: &Pbx, query: &str, key: Option<&str>) -> Result<Socket, tungstenite::Error> {
    let address = format!("127.0.0.1:{}", pbx.http_port);
    let mut request = format!("ws://{address}/api/v1/events{query}")
        .into_client_request()
        .unwrap();
    if let Some(key) = key {
        let value = format!("Bearer {key}").parse().unwrap();
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    let stream = TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(EVENT_LIMIT)).unwrap();
    match tungstenite::client(request, stream) {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
        Err(tungstenite::HandshakeError::Interrupted(_)) => panic!("handshake timed out"),
    }
}

/// The next event's text (pings are answered on the way).
fn next_text(socket: &mut Socket) -> String {
    loop {
        match socket.read().unwrap() {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

fn next(socket: &mut Socket) -> Value {
    serde_json::from_str(&next_text(socket)).unwrap()
}

/// Nothing more comes for a while.
fn quiet(socket: &mut Socket) {
    socket.get_mut().set_read_timeout(Some(QUIET)).unwrap();
    match socket.read() {
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("expected nothing more, got {other:?}"),
    }
    socket
        .get_mut()
        .set_read_timeout(Some(EVENT_LIMIT))
        .unwrap();
}

/// An event in a few words: `call:new`, `registration:registered`,
/// `1002=idle`.
fn summary(event: &Value) -> String {
    match event["type"].as_str().unwrap() {
        "extension" => format!(
            "{}={}",
            event["extension"].as_str().unwrap(),
            event["state"].as_str().unwrap()
        ),
        kind => format!("{kind}:{}", event["event"].as_str().unwrap()),
    }
}

#[test]
fn a_registration_and_a_call_come_in_order_and_since_replays_what_was_missed() {
    let pbx = start();
    match connect(&pbx, "", None) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("{other:?}"),
    }
    match connect(&pbx, "", Some("not-the-key-0123456789")) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("{other:?}"),
    }
    // One client stays throughout; the other leaves after the registration.
    let mut watcher = connect(&pbx, "", Some(KEY)).unwrap();
    let mut leaver = connect(&pbx, "", Some(KEY)).unwrap();

    let callee = phone(&pbx, "1002", "second-secret", "uas_answer.xml");
    let registration = next(&mut leaver);
    assert_eq!(registration["seq"], 1, "{registration}");
    assert_eq!(registration["type"], "registration");
    assert_eq!(registration["event"], "registered");
    assert_eq!(registration["location"]["aor"], "sip:1002@127.0.0.1");
    assert_eq!(registration["location"]["transport"], "UDP");
    let idle = next(&mut leaver);
    assert_eq!(
        (idle["seq"].as_u64(), summary(&idle)),
        (Some(2), "1002=idle".to_owned())
    );
    leaver.close(None).unwrap();
    drop(leaver);

    call_as_1001(&pbx, "call_answered.xml", "1002");
    phones_done(&pbx, vec![("1002", callee)]);

    // The watcher saw everything, up to 1002 idle again after the end.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut texts = Vec::new();
    let mut events: Vec<Value> = Vec::new();
    while !(events.iter().any(|e| summary(e) == "call:ended")
        && events.last().is_some_and(|e| summary(e) == "1002=idle"))
    {
        assert!(Instant::now() < deadline, "{events:?}");
        let text = next_text(&mut watcher);
        events.push(serde_json::from_str(&text).unwrap());
        texts.push(text);
    }
    quiet(&mut watcher);
    let summaries: Vec<String> = events.iter().map(summary).collect();
    assert_eq!(
        summaries,
        [
            "registration:registered",
            "1002=idle",
            "call:new",
            "1001=in_use",
            "call:ringing",
            "1002=ringing",
            "call:answered",
            "1002=in_use",
            "call:ended",
            // 1001 called without registering.
            "1001=unavailable",
            "1002=idle",
        ]
    );
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["seq"].as_u64(), Some(i as u64 + 1), "{event}");
        assert!(event["time"].as_str().unwrap().ends_with('Z'), "{event}");
    }
    let calls: Vec<&Value> = events.iter().filter(|e| e["type"] == "call").collect();
    let call_id = calls[0]["call_id"].as_str().unwrap();
    assert!(calls.iter().all(|c| c["call_id"] == call_id), "{calls:?}");
    assert_eq!(
        (calls[0]["caller"].as_str(), calls[0]["callee"].as_str()),
        (Some("1001"), Some("1002"))
    );
    assert_eq!(calls[3]["disposition"], "ANSWERED");

    // The leaver comes back: exactly what it missed, the same bytes.
    let mut back = connect(&pbx, "?since=2", Some(KEY)).unwrap();
    for text in &texts[2..] {
        assert_eq!(&next_text(&mut back), text);
    }
    quiet(&mut back);
    // Only the extension states, from the start.
    let mut states = connect(&pbx, "?since=0&types=extension", Some(KEY)).unwrap();
    let replayed: Vec<String> = (0..6).map(|_| summary(&next(&mut states))).collect();
    assert_eq!(
        replayed,
        [
            "1002=idle",
            "1001=in_use",
            "1002=ringing",
            "1002=in_use",
            "1001=unavailable",
            "1002=idle"
        ]
    );
    quiet(&mut states);

    // Without webhooks the health check has no outbox.
    assert!(pbx.health().get("outbox").is_none());
}

#[test]
fn shutdown_closes_the_socket_with_going_away() {
    let mut pbx = start();
    let mut socket = connect(&pbx, "", Some(KEY)).unwrap();
    pbx.signal("TERM");
    let frame = loop {
        match socket.read().unwrap() {
            Message::Close(frame) => break frame,
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(frame.map(|f| f.code), Some(CloseCode::Away));
    // Reading on sends the answer; then the server ends the connection.
    assert!(
        matches!(socket.read(), Err(tungstenite::Error::ConnectionClosed)),
        "a clean close"
    );
    assert_eq!(
        pbx.process.exit_code(Duration::from_secs(20)),
        Some(0),
        "{}",
        pbx.log()
    );
}
