//! `GET /api/v1/events` over real TCP on loopback with a WebSocket
//! client: keys, events in order with their numbers, `since` after a
//! reconnection, the type filter, and the close when the hub closes.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use futures_util::StreamExt;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::AUTHORIZATION;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{WebSocketStream, client_async};
use trunkline_api::{Api, ApiConfig, ApiKey, EventHub, Pbx, Scope, SipTables};
use trunkline_cdr::SqliteCdrStore;
use trunkline_engine::{ActiveCall, CallEvent, EngineStats, TrunkStatus};

const KEY: &str = "events-read-key-0123456789";

/// A PBX with nothing going on: the events come from the hub alone.
struct Quiet;

impl Pbx for Quiet {
    fn draining(&self) -> bool {
        false
    }
    fn uptime(&self) -> Duration {
        Duration::ZERO
    }
    fn stats(&self) -> EngineStats {
        EngineStats::default()
    }
    fn registrations(&self) -> usize {
        0
    }
    fn trunk_statuses(&self) -> Vec<TrunkStatus> {
        Vec::new()
    }
    fn active_calls(&self) -> Vec<ActiveCall> {
        Vec::new()
    }
    fn sip_tables(&self) -> SipTables {
        SipTables::default()
    }
    common::no_call_control!();
}

/// The API with `hub` on a free loopback port.
async fn serve(hub: &EventHub) -> (SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteCdrStore::open(dir.path().join("cdr.sqlite")).unwrap();
    let config = ApiConfig {
        keys: vec![ApiKey {
            name: "board".into(),
            key: KEY.into(),
            scope: Scope::Read,
        }],
        ..ApiConfig::default()
    };
    let api = Api::new(config, Arc::new(Quiet), Arc::new(store)).with_events(hub.clone());
    let (address, _task) = api.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (address, dir)
}

type Socket = WebSocketStream<TcpStream>;

/// Connects to `/api/v1/events{query}` with `key`.
async fn connect(address: SocketAddr, query: &str, key: Option<&str>) -> Result<Socket, WsError> {
    let stream = TcpStream::connect(address).await.unwrap();
    connect_over(stream, address, query, key).await
}

/// [`connect`] over `stream`.
async fn connect_over(
    stream: TcpStream,
    address: SocketAddr,
    query: &str,
    key: Option<&str>,
) -> Result<Socket, WsError> {
    let mut request = format!("ws://{address}/api/v1/events{query}")
        .into_client_request()
        .unwrap();
    if let Some(key) = key {
        let value = format!("Bearer {key}").parse().unwrap();
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    let connecting = client_async(request, stream);
    let (socket, _) = tokio::time::timeout(Duration::from_secs(10), connecting)
        .await
        .unwrap()?;
    Ok(socket)
}

/// The next event, which must come within 10 s.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

fn ringing(call_id: &str) -> CallEvent {
    CallEvent::Ringing {
        call_id: call_id.into(),
    }
}

#[tokio::test]
async fn a_key_is_needed_and_events_come_in_order() {
    let hub = EventHub::new(100);
    let (address, _dir) = serve(&hub).await;
    for key in [None, Some("not-a-key-0123456789")] {
        match connect(address, "", key).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("{key:?}: {other:?}"),
        }
    }
    // A browser's WebSocket sends no headers: the key may come as
    // `access_token` (RFC 6750 §2.3), and a wrong one is refused alike.
    let wrong = connect(address, "?access_token=not-a-key-0123456789", None).await;
    assert!(matches!(wrong, Err(WsError::Http(r)) if r.status() == 401));
    let by_query = connect(address, &format!("?since=0&access_token={KEY}"), None).await;
    by_query.unwrap().close(None).await.unwrap();
    let mut socket = connect(address, "", Some(KEY)).await.unwrap();
    // Subscribed once connected: nothing is missed.
    hub.publish_call(&CallEvent::New {
        call_id: "c1".into(),
        caller: "1001".into(),
        callee: "1002".into(),
    });
    hub.publish_call(&ringing("c1"));
    let new = next(&mut socket).await;
    assert_eq!(
        (
            new["seq"].as_u64(),
            new["type"].as_str(),
            new["event"].as_str()
        ),
        (Some(1), Some("call"), Some("new"))
    );
    let ringing = next(&mut socket).await;
    assert_eq!(
        (ringing["seq"].as_u64(), ringing["call_id"].as_str()),
        (Some(2), Some("c1"))
    );
    socket.close(None).await.unwrap();
}

#[tokio::test]
async fn since_fetches_what_a_reconnecting_client_missed() {
    let hub = EventHub::new(5);
    let (address, _dir) = serve(&hub).await;
    let mut socket = connect(address, "", Some(KEY)).await.unwrap();
    hub.publish_call(&ringing("a"));
    let seen = next(&mut socket).await["seq"].as_u64().unwrap();
    drop(socket);
    for id in ["b", "c", "d"] {
        hub.publish_call(&ringing(id));
    }
    let mut again = connect(address, &format!("?since={seen}"), Some(KEY))
        .await
        .unwrap();
    for (seq, id) in [(2, "b"), (3, "c"), (4, "d")] {
        let event = next(&mut again).await;
        assert_eq!(
            (event["seq"].as_u64(), event["call_id"].as_str()),
            (Some(seq), Some(id))
        );
    }
    hub.publish_call(&ringing("e"));
    assert_eq!(next(&mut again).await["seq"], 5);

    // Too far back: a gap, then what is kept (2 to 6 of 6).
    hub.publish_call(&ringing("f"));
    let mut old = connect(address, "?since=0", Some(KEY)).await.unwrap();
    let gap = next(&mut old).await;
    assert_eq!(gap["type"], "gap");
    assert_eq!(
        (gap["from"].as_u64(), gap["to"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(next(&mut old).await["seq"], 2);

    // Only extensions: the registration itself is left out.
    let mut states = connect(address, "?types=extension", Some(KEY))
        .await
        .unwrap();
    hub.publish_registration(&trunkline_registrar::RegistrationEvent {
        event: trunkline_registrar::EventKind::Registered,
        timestamp: 1_741_944_413,
        location: trunkline_registrar::Location {
            aor: "sip:1001@127.0.0.1".into(),
            destination: "127.0.0.1:5070".into(),
            transport: "UDP".into(),
            user_agent: None,
            expires: 60,
        },
    });
    let state = next(&mut states).await;
    assert_eq!(
        (
            state["seq"].as_u64(),
            state["type"].as_str(),
            state["state"].as_str()
        ),
        (Some(8), Some("extension"), Some("idle"))
    );

    // Parameters that do not parse: 400 before any upgrade.
    for query in ["?since=-1", "?types=gap", "?sinse=1"] {
        match connect(address, query, Some(KEY)).await {
            Err(WsError::Http(response)) => assert_eq!(response.status(), 400, "{query}"),
            other => panic!("{query}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn closing_the_hub_closes_every_connection_cleanly() {
    let hub = EventHub::new(100);
    let (address, _dir) = serve(&hub).await;
    let mut first = connect(address, "", Some(KEY)).await.unwrap();
    let mut second = connect(address, "?since=0", Some(KEY)).await.unwrap();
    hub.publish_call(&ringing("last"));
    // The clients get the last event, then answer the close while the
    // hub waits for them.
    let readers = [&mut first, &mut second].map(|socket| async move {
        let mut seen = Vec::new();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .unwrap();
            match message {
                Some(Ok(Message::Close(frame))) => {
                    // Reading on sends the answer; the server then ends
                    // the connection.
                    let end = tokio::time::timeout(Duration::from_secs(10), socket.next()).await;
                    assert!(matches!(end, Ok(None)), "{end:?}");
                    return (seen, frame.map(|f| f.code));
                }
                Some(Ok(Message::Text(text))) => {
                    let event: Value = serde_json::from_str(&text).unwrap();
                    seen.push(event["call_id"].as_str().unwrap().to_owned());
                }
                Some(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    });
    let [a, b] = readers;
    let started = std::time::Instant::now();
    let (closed, a, b) = tokio::join!(hub.close(Duration::from_secs(10)), a, b);
    assert!(closed, "every connection ended");
    // The handshakes completed: nobody waited out the close limit (1 s).
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    for (seen, code) in [a, b] {
        assert_eq!(seen, ["last"]);
        assert_eq!(code, Some(CloseCode::Away));
    }
    // Once closed, a new connection is closed at once.
    let mut late = connect(address, "", Some(KEY)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), late.next())
        .await
        .unwrap()
    {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("{other:?}"),
    }
}

/// A client that reads nothing while 200,000 events go out falls behind
/// its queue: each event it missed is accounted for by a `lag`, never
/// dropped silently, and a reconnection from `resume_since` fetches them.
#[tokio::test]
async fn a_slow_client_is_told_what_it_missed() {
    const EVENTS: u64 = 200_000;
    let hub = EventHub::with_queue(250_000, 16);
    let (address, _dir) = serve(&hub).await;
    // A small receive buffer, so that the server's sends block soon.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(address).await.unwrap();
    let mut slow = connect_over(stream, address, "", Some(KEY)).await.unwrap();
    for i in 0..EVENTS {
        hub.publish_call(&ringing(&format!("c{i}")));
    }
    let mut last = 0;
    let mut lags = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while last < EVENTS {
        assert!(std::time::Instant::now() < deadline, "at {last}");
        let event = next(&mut slow).await;
        match event["type"].as_str().unwrap() {
            "lag" => {
                let resume_since = event["resume_since"].as_u64().unwrap();
                assert_eq!(resume_since, last, "{event}");
                last += event["missed"].as_u64().unwrap();
                lags.push(resume_since);
            }
            "call" => {
                assert_eq!(event["seq"].as_u64(), Some(last + 1), "a silent gap");
                last += 1;
            }
            other => panic!("{other}: {event}"),
        }
    }
    assert!(!lags.is_empty(), "the client never fell behind");
    drop(slow);
    // What the first lag skipped is still kept.
    let mut again = connect(address, &format!("?since={}", lags[0]), Some(KEY))
        .await
        .unwrap();
    for seq in lags[0] + 1..=lags[0] + 100 {
        assert_eq!(next(&mut again).await["seq"], seq);
    }
}
