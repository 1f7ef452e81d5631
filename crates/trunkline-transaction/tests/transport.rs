//! `Transports` on its own, over real loopback sockets: two instances
//! exchanging a request and its response over UDP, TCP, TLS, WS and WSS
//! (IPv4 and IPv6), connection reuse, malformed and oversized input,
//! RFC 5626 keep-alives, full queues, the connection limit, idle
//! connections, and every task ending with the last handle.

#![cfg(feature = "runtime")]
#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use trunkline_sip::{Method, StatusCode};
use trunkline_transaction::transport::{
    Incoming, Listener, SendError, TlsIdentity, TlsVerify, TransportConfig, Transports,
};
use trunkline_transaction::{Peer, Transmit, Transport};

/// Every wait in these tests ends by then.
const LIMIT: Duration = Duration::from_secs(10);

const V4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

const ALL: [Transport; 5] = [
    Transport::Udp,
    Transport::Tcp,
    Transport::Tls,
    Transport::Ws,
    Transport::Wss,
];

/// `fut`, or a failed test if it takes longer than [`LIMIT`].
async fn within<T>(fut: impl Future<Output = T>) -> T {
    timeout(LIMIT, fut).await.expect("timed out")
}

fn config(transport: Transport, ip: IpAddr) -> TransportConfig {
    let mut config = TransportConfig::new(vec![Listener::new(transport, (ip, 0).into())]);
    if matches!(transport, Transport::Tls | Transport::Wss) {
        config.tls_identity = Some(TlsIdentity::SelfSigned {
            names: vec![ip.to_string(), "localhost".into()],
        });
        config.tls_verify = TlsVerify::InsecureAcceptAny;
    }
    config
}

async fn bind(config: TransportConfig) -> (Transports, mpsc::Receiver<Incoming>) {
    Transports::bind(config).await.unwrap()
}

/// An OPTIONS request; `extra` is added to the header section as is.
fn options(branch: &str, extra: &str) -> String {
    format!(
        "OPTIONS sip:bob@example.com SIP/2.0\r\n\
         Via: SIP/2.0/TCP 192.0.2.1:5060;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a1\r\n\
         To: <sip:bob@example.com>\r\nCall-ID: {branch}@test\r\nCSeq: 1 OPTIONS\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    )
}

/// `options` with a CSeq that is not a number: well framed, not parseable.
fn malformed_options(branch: &str) -> String {
    options(branch, "").replace("CSeq: 1 OPTIONS", "CSeq: one OPTIONS")
}

fn transmit(peer: Peer, text: &str) -> Transmit {
    Transmit {
        peer,
        bytes: Bytes::copy_from_slice(text.as_bytes()),
    }
}

async fn next(incoming: &mut mpsc::Receiver<Incoming>) -> Incoming {
    within(incoming.recv()).await.unwrap()
}

/// Waits until `stats` satisfies `done`.
async fn until(
    transports: &Transports,
    done: impl Fn(&trunkline_transaction::transport::Stats) -> bool,
) {
    within(async {
        while !done(&transports.stats()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// A sends two OPTIONS to B's listener; B sees each with the right peer
/// and answers it over the `Peer` it came with; A gets both answers. On a
/// stream both requests share the connection A opened, and the answers
/// come back over it.
async fn round_trip(transport: Transport, ip: IpAddr) {
    let (a, mut a_incoming) = bind(config(transport, ip)).await;
    let (b, mut b_incoming) = bind(config(transport, ip)).await;
    let b_addr = b.local_addr(transport).unwrap();
    let mut b_connections = Vec::new();
    let mut a_connections = Vec::new();
    for branch in ["rt1", "rt2"] {
        a.send(transmit(Peer::new(transport, b_addr), &options(branch, "")))
            .unwrap();

        let request = next(&mut b_incoming).await;
        assert_eq!(request.message.method(), Some(&Method::Options));
        assert_eq!(request.message.call_id(), Some(&*format!("{branch}@test")));
        assert_eq!(request.peer.transport, transport);
        assert_eq!(request.peer.addr.ip(), ip);
        if transport.is_reliable() {
            // From the connection A opened: some ephemeral port.
            b_connections.push(request.peer.connection.unwrap());
        } else {
            // From A's listening socket, which is the one that sends.
            assert_eq!(Some(request.peer.addr), a.local_addr(transport));
            assert_eq!(request.peer.connection, None);
        }

        let response = request
            .message
            .response_to(StatusCode::OK)
            .to_tag("b1")
            .build()
            .unwrap();
        b.send(Transmit {
            peer: request.peer,
            bytes: response.to_bytes(),
        })
        .unwrap();

        let answer = next(&mut a_incoming).await;
        assert_eq!(answer.message.status(), Some(StatusCode::OK));
        assert_eq!(answer.message.call_id(), Some(&*format!("{branch}@test")));
        assert_eq!(answer.peer.transport, transport);
        assert_eq!(answer.peer.addr, b_addr);
        if transport.is_reliable() {
            a_connections.push(answer.peer.connection.unwrap());
        }
    }
    if transport.is_reliable() {
        assert_eq!(
            b_connections[0], b_connections[1],
            "A reused its connection"
        );
        assert_eq!(
            a_connections[0], a_connections[1],
            "answers came back on it"
        );
        // B answered over the connection it was given rather than opening
        // one to A's ephemeral port (which nothing listens on).
        assert_eq!(a.stats().connections, 1);
        assert_eq!(b.stats().connections, 1);
    }
    for (side, stats) in [("A", a.stats()), ("B", b.stats())] {
        assert_eq!((stats.sent, stats.received), (2, 2), "{side}: {stats:?}");
        assert_eq!(stats.malformed + stats.dropped, 0, "{side}: {stats:?}");
    }
}

#[tokio::test]
async fn a_round_trip_over_udp() {
    round_trip(Transport::Udp, V4).await;
}

#[tokio::test]
async fn a_round_trip_over_tcp_reuses_the_connection() {
    round_trip(Transport::Tcp, V4).await;
}

#[tokio::test]
async fn a_round_trip_over_tls() {
    round_trip(Transport::Tls, V4).await;
}

#[tokio::test]
async fn a_round_trip_over_websocket() {
    round_trip(Transport::Ws, V4).await;
}

#[tokio::test]
async fn a_round_trip_over_secure_websocket() {
    round_trip(Transport::Wss, V4).await;
}

#[tokio::test]
async fn round_trips_over_ipv6() {
    for transport in ALL {
        round_trip(transport, V6).await;
    }
}

#[tokio::test]
async fn a_peer_naming_a_closed_connection_gets_the_open_one_to_its_address() {
    let (a, _a_incoming) = bind(config(Transport::Tcp, V4)).await;
    let (b, mut b_incoming) = bind(config(Transport::Tcp, V4)).await;
    let b_addr = b.local_addr(Transport::Tcp).unwrap();
    let gone = Peer {
        connection: Some(trunkline_transaction::ConnectionId(u64::MAX)),
        ..Peer::new(Transport::Tcp, b_addr)
    };
    a.send(transmit(gone, &options("gone", ""))).unwrap();
    let first = next(&mut b_incoming).await;
    a.send(transmit(gone, &options("gone2", ""))).unwrap();
    let second = next(&mut b_incoming).await;
    assert_eq!(first.peer.connection, second.peer.connection);
    assert_eq!(a.stats().connections, 1);
}

#[tokio::test]
async fn sending_over_a_transport_without_a_listener_is_refused() {
    let (udp_only, _incoming) = bind(config(Transport::Udp, V4)).await;
    let peer = Peer::new(Transport::Tcp, (V4, 5060).into());
    let refused = udp_only.send(transmit(peer, &options("none", "")));
    assert!(
        matches!(refused, Err(SendError::NoTransport(Transport::Tcp))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn sends_from_outside_the_runtime_open_connections() {
    let (a, _a_incoming) = bind(config(Transport::Tcp, V4)).await;
    let (b, mut b_incoming) = bind(config(Transport::Tcp, V4)).await;
    let peer = Peer::new(Transport::Tcp, b.local_addr(Transport::Tcp).unwrap());
    // A clone: the last handle dropped on that thread would stop A.
    let sender = a.clone();
    let sent = std::thread::spawn(move || sender.send(transmit(peer, &options("thread", ""))))
        .join()
        .unwrap();
    sent.unwrap();
    assert_eq!(next(&mut b_incoming).await.peer.transport, Transport::Tcp);
}

#[tokio::test]
async fn a_malformed_udp_datagram_gets_400_and_the_listener_goes_on() {
    let (server, mut incoming) = bind(config(Transport::Udp, V4)).await;
    let server_addr = server.local_addr(Transport::Udp).unwrap();
    let socket = UdpSocket::bind((V4, 0)).await.unwrap();
    socket
        .send_to(malformed_options("u1").as_bytes(), server_addr)
        .await
        .unwrap();
    let mut buf = [0; 4096];
    let (n, from) = within(socket.recv_from(&mut buf)).await.unwrap();
    assert_eq!(from, server_addr);
    let response = String::from_utf8_lossy(&buf[..n]);
    assert!(response.starts_with("SIP/2.0 400 "), "{response}");
    assert!(response.contains("Call-ID: u1@test\r\n"), "{response}");

    // A malformed response cannot be answered: it is dropped.
    socket
        .send_to(b"SIP/2.0 200 OK\r\nCSeq: x\r\n\r\n", server_addr)
        .await
        .unwrap();
    // A good request still arrives, so the listener survived both.
    socket
        .send_to(options("u2", "").as_bytes(), server_addr)
        .await
        .unwrap();
    let good = next(&mut incoming).await;
    assert_eq!(good.message.call_id(), Some("u2@test"));
    assert_eq!(good.peer.addr, socket.local_addr().unwrap());
    let stats = server.stats();
    assert_eq!((stats.malformed, stats.received), (2, 1), "{stats:?}");
    assert!(
        timeout(Duration::from_millis(100), socket.recv_from(&mut buf))
            .await
            .is_err(),
        "nothing answers the malformed response"
    );
}

#[tokio::test]
async fn an_oversized_udp_datagram_gets_513() {
    let mut config = config(Transport::Udp, V4);
    config.max_message_size = 1000;
    let (server, mut incoming) = bind(config).await;
    let socket = UdpSocket::bind((V4, 0)).await.unwrap();
    let body = "x".repeat(1500);
    let request = options("big", "Content-Type: text/plain\r\n").replace(
        "Content-Length: 0",
        &format!("Content-Length: {}", body.len()),
    ) + &body;
    let server_addr = server.local_addr(Transport::Udp).unwrap();
    socket
        .send_to(request.as_bytes(), server_addr)
        .await
        .unwrap();
    let mut buf = [0; 4096];
    let (n, _) = within(socket.recv_from(&mut buf)).await.unwrap();
    let response = String::from_utf8_lossy(&buf[..n]);
    assert!(response.starts_with("SIP/2.0 513 "), "{response}");
    assert!(incoming.try_recv().is_err());
    assert_eq!(server.stats().malformed, 1);
}

async fn tcp_client(server: &Transports) -> TcpStream {
    let addr = server.local_addr(Transport::Tcp).unwrap();
    within(TcpStream::connect(addr)).await.unwrap()
}

/// Reads until the peer closes (or resets: it closed with our bytes
/// unread), returning what came.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    if let Err(e) = within(stream.read_to_end(&mut all)).await {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    all
}

/// Reads one response whose header section ends the bytes read so far.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut all = Vec::new();
    while !all.ends_with(b"\r\n\r\n") {
        let mut chunk = [0; 1024];
        let n = within(stream.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "closed after {}", String::from_utf8_lossy(&all));
        all.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(all).unwrap()
}

#[tokio::test]
async fn a_malformed_but_framed_tcp_request_gets_400_and_the_connection_goes_on() {
    let (server, mut incoming) = bind(config(Transport::Tcp, V4)).await;
    let mut client = tcp_client(&server).await;
    client
        .write_all(malformed_options("t1").as_bytes())
        .await
        .unwrap();
    let response = read_response(&mut client).await;
    assert!(response.starts_with("SIP/2.0 400 "), "{response}");
    client
        .write_all(options("t2", "").as_bytes())
        .await
        .unwrap();
    let good = next(&mut incoming).await;
    assert_eq!(good.message.call_id(), Some("t2@test"));
    assert_eq!(server.stats().malformed, 1);
}

#[tokio::test]
async fn an_unframeable_tcp_request_gets_400_and_the_connection_closes() {
    let (server, mut incoming) = bind(config(Transport::Tcp, V4)).await;
    let mut client = tcp_client(&server).await;
    // No Content-Length: the next message's start cannot be found (§18.3).
    let request = options("t3", "").replace("Content-Length: 0\r\n", "");
    client.write_all(request.as_bytes()).await.unwrap();
    let reply = String::from_utf8(read_to_close(&mut client).await).unwrap();
    assert!(reply.starts_with("SIP/2.0 400 "), "{reply}");
    assert!(reply.contains("Call-ID: t3@test\r\n"), "{reply}");
    assert!(incoming.try_recv().is_err(), "nothing delivered");
    assert_eq!(server.stats().malformed, 1);
    until(&server, |s| s.connections == 0).await;
}

#[tokio::test]
async fn a_keepalive_ping_gets_a_pong_and_nothing_is_delivered() {
    let (server, mut incoming) = bind(config(Transport::Tcp, V4)).await;
    let mut client = tcp_client(&server).await;
    client.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0; 2];
    within(client.read_exact(&mut pong)).await.unwrap();
    assert_eq!(&pong, b"\r\n");
    // A pong from the client is absorbed too; the next message is framed
    // as if neither had come.
    client.write_all(b"\r\n").await.unwrap();
    client
        .write_all(options("k1", "").as_bytes())
        .await
        .unwrap();
    let first = next(&mut incoming).await;
    assert_eq!(first.message.call_id(), Some("k1@test"));
    let stats = server.stats();
    assert_eq!((stats.received, stats.malformed), (1, 0), "{stats:?}");
}

#[tokio::test]
async fn a_tcp_message_announcing_more_than_the_limit_gets_513_before_its_body() {
    let mut config = config(Transport::Tcp, V4);
    config.max_message_size = 4096;
    let (server, mut incoming) = bind(config).await;
    let mut client = tcp_client(&server).await;
    // Only the header section is sent: the server refuses on the announced
    // length instead of waiting to buffer a megabyte.
    let head = options("big", "").replace("Content-Length: 0", "Content-Length: 1000000");
    client.write_all(head.as_bytes()).await.unwrap();
    let reply = String::from_utf8(read_to_close(&mut client).await).unwrap();
    assert!(reply.starts_with("SIP/2.0 513 "), "{reply}");
    assert!(incoming.try_recv().is_err());
    assert_eq!(server.stats().malformed, 1);
}

#[tokio::test]
async fn a_tcp_header_section_without_end_is_cut_off_at_the_limit() {
    let mut config = config(Transport::Tcp, V4);
    config.max_message_size = 4096;
    let (server, mut incoming) = bind(config).await;
    let mut client = tcp_client(&server).await;
    let line = format!("X-Filler: {}\r\n", "x".repeat(1000));
    client
        .write_all(b"OPTIONS sip:bob@example.com SIP/2.0\r\n")
        .await
        .unwrap();
    // Far more than the limit, in small writes; the server closes long
    // before the last (a write may then fail: that is the close).
    for _ in 0..64 {
        if client.write_all(line.as_bytes()).await.is_err() {
            break;
        }
    }
    // No whole header section, so nothing to answer with: just closed.
    read_to_close(&mut client).await;
    assert!(incoming.try_recv().is_err());
    assert_eq!(server.stats().malformed, 1);
}

#[tokio::test]
async fn a_full_incoming_queue_drops_and_counts() {
    let mut config = config(Transport::Udp, V4);
    config.queue = 1;
    let (server, mut incoming) = bind(config).await;
    let socket = UdpSocket::bind((V4, 0)).await.unwrap();
    let server_addr = server.local_addr(Transport::Udp).unwrap();
    for n in 0..5 {
        let request = options(&format!("q{n}"), "");
        socket
            .send_to(request.as_bytes(), server_addr)
            .await
            .unwrap();
    }
    until(&server, |s| s.received + s.dropped == 5).await;
    assert_eq!(server.stats().received, 1);
    assert_eq!(next(&mut incoming).await.message.call_id(), Some("q0@test"));
}

#[tokio::test]
async fn a_full_connection_queue_refuses_the_send() {
    let mut a_config = config(Transport::Tcp, V4);
    a_config.queue = 1;
    let (a, _a_incoming) = bind(a_config).await;
    let (b, _b_incoming) = bind(config(Transport::Tcp, V4)).await;
    let peer = Peer::new(Transport::Tcp, b.local_addr(Transport::Tcp).unwrap());
    // The connection's task has not run yet (this test's runtime has one
    // thread and nothing here yields), so its queue of one fills.
    a.send(transmit(peer, &options("f1", ""))).unwrap();
    let refused = a.send(transmit(peer, &options("f2", "")));
    assert!(
        matches!(refused, Err(SendError::QueueFull(Transport::Tcp))),
        "{refused:?}"
    );
    assert_eq!(a.stats().dropped, 1);
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_on_accept() {
    let mut config = config(Transport::Tcp, V4);
    config.max_connections = 1;
    let (server, mut incoming) = bind(config).await;
    let mut first = tcp_client(&server).await;
    until(&server, |s| s.connections == 1).await;
    let mut second = tcp_client(&server).await;
    assert!(read_to_close(&mut second).await.is_empty());
    assert_eq!(server.stats().refused, 1);
    // The first is still served.
    first.write_all(options("c1", "").as_bytes()).await.unwrap();
    assert_eq!(next(&mut incoming).await.message.call_id(), Some("c1@test"));
}

#[tokio::test]
async fn an_idle_connection_closes() {
    let mut config = config(Transport::Tcp, V4);
    config.idle_timeout = Duration::from_millis(200);
    let (server, _incoming) = bind(config).await;
    let mut client = tcp_client(&server).await;
    until(&server, |s| s.connections == 1).await;
    assert!(read_to_close(&mut client).await.is_empty());
    until(&server, |s| s.connections == 0).await;
}

/// A WebSocket client of `server` that asks for the `sip` subprotocol and
/// checks the server names it in its answer (RFC 7118 §4.1).
async fn ws_client(server: &Transports) -> WebSocketStream<TcpStream> {
    let addr = server.local_addr(Transport::Ws).unwrap();
    let tcp = within(TcpStream::connect(addr)).await.unwrap();
    let mut request = format!("ws://{addr}/").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("sip"));
    let (ws, response) = within(tokio_tungstenite::client_async(request, tcp))
        .await
        .unwrap();
    assert_eq!(
        response.headers().get("Sec-WebSocket-Protocol").unwrap(),
        "sip"
    );
    ws
}

#[tokio::test]
async fn websocket_frames_carry_one_message_each_and_get_sip_back() {
    let (server, mut incoming) = bind(config(Transport::Ws, V4)).await;
    let mut ws = ws_client(&server).await;
    // Text and binary frames alike; no Content-Length framing needed.
    let unframed = options("w1", "").replace("Content-Length: 0\r\n", "");
    ws.send(WsMessage::text(unframed)).await.unwrap();
    ws.send(WsMessage::binary(options("w2", "").into_bytes()))
        .await
        .unwrap();
    for call_id in ["w1@test", "w2@test"] {
        let got = next(&mut incoming).await;
        assert_eq!(got.message.call_id(), Some(call_id));
        assert_eq!(got.peer.transport, Transport::Ws);
    }
    // A malformed message is answered in a text frame; the connection
    // stays up.
    ws.send(WsMessage::text(malformed_options("w3")))
        .await
        .unwrap();
    let answer = within(ws.next()).await.unwrap().unwrap();
    let WsMessage::Text(text) = answer else {
        panic!("{answer:?}")
    };
    assert!(text.starts_with("SIP/2.0 400 "), "{text}");
    ws.send(WsMessage::text(options("w4", ""))).await.unwrap();
    assert_eq!(next(&mut incoming).await.message.call_id(), Some("w4@test"));
    assert_eq!(server.stats().malformed, 1);
}

#[tokio::test]
async fn a_websocket_message_over_the_limit_closes_the_connection() {
    let mut config = config(Transport::Ws, V4);
    config.max_message_size = 1000;
    let (server, mut incoming) = bind(config).await;
    let mut ws = ws_client(&server).await;
    let body = "x".repeat(2000);
    let request = options("wbig", "").replace(
        "Content-Length: 0",
        &format!("Content-Length: {}", body.len()),
    ) + &body;
    // The send may already fail if the server has closed.
    let _ = ws.send(WsMessage::text(request)).await;
    // Nothing comes back but the end of the connection.
    match within(ws.next()).await {
        Some(Ok(WsMessage::Close(_)) | Err(_)) | None => {}
        Some(Ok(other)) => panic!("{other:?}"),
    }
    assert!(incoming.try_recv().is_err());
    assert_eq!(server.stats().malformed, 1);
}

#[tokio::test]
async fn every_task_ends_with_the_last_handle() {
    let listeners = ALL.map(|t| Listener::new(t, (V4, 0).into())).to_vec();
    let mut config = TransportConfig::new(listeners);
    config.tls_identity = Some(TlsIdentity::SelfSigned {
        names: vec!["127.0.0.1".into()],
    });
    let (server, mut incoming) = bind(config).await;
    let mut client = tcp_client(&server).await;
    until(&server, |s| s.connections == 1).await;
    let clone = server.clone();
    drop(server);
    // A clone keeps everything running.
    client
        .write_all(options("d1", "").as_bytes())
        .await
        .unwrap();
    assert_eq!(next(&mut incoming).await.message.call_id(), Some("d1@test"));
    drop(clone);
    // The connection closes, and the queue ends: every task that could
    // feed it (listeners and connections) has gone.
    assert!(read_to_close(&mut client).await.is_empty());
    assert!(within(incoming.recv()).await.is_none());
}

#[tokio::test]
async fn after_shutdown_sends_fail_and_the_queue_ends() {
    let (server, mut incoming) = bind(config(Transport::Udp, V4)).await;
    server.shutdown();
    let peer = Peer::new(Transport::Udp, (V4, 9).into());
    assert!(matches!(
        server.send(transmit(peer, &options("s1", ""))),
        Err(SendError::Closed)
    ));
    // The handle is alive, so the queue's sender is too; but nothing
    // arrives any more.
    let socket = UdpSocket::bind((V4, 0)).await.unwrap();
    let server_addr = server.local_addr(Transport::Udp).unwrap();
    socket
        .send_to(options("s2", "").as_bytes(), server_addr)
        .await
        .unwrap();
    assert!(
        timeout(Duration::from_millis(200), incoming.recv())
            .await
            .is_err()
    );
}
