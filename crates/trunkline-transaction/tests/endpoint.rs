//! The transports and the endpoint over real loopback sockets: a call
//! (INVITE, ACK, BYE) and OPTIONS between two endpoints over UDP, TCP,
//! TLS, WebSocket and secure WebSocket; connection reuse; malformed input,
//! keep-alives and oversized messages.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::timeout;
use trunkline_sip::{HeaderName, Message, Method, StatusCode};
use trunkline_transaction::transport::{
    Listener, TlsIdentity, TlsVerify, TransportConfig, Transports,
};
use trunkline_transaction::{
    ClientEvent, DialogId, Endpoint, EndpointConfig, EndpointEvent, Peer, Transport, new_tag,
};

const LIMIT: Duration = Duration::from_secs(10);

fn loopback() -> SocketAddr {
    ([127, 0, 0, 1], 0).into()
}

fn config(transport: Transport) -> TransportConfig {
    let mut config = TransportConfig::new(vec![Listener::new(transport, loopback())]);
    if matches!(transport, Transport::Tls | Transport::Wss) {
        config.tls_identity = Some(TlsIdentity::SelfSigned {
            names: vec!["127.0.0.1".into(), "localhost".into()],
        });
        config.tls_verify = TlsVerify::InsecureAcceptAny;
    }
    config
}

async fn endpoint(transport: Transport) -> (Endpoint, mpsc::Receiver<EndpointEvent>) {
    Endpoint::bind(EndpointConfig::new(config(transport)))
        .await
        .unwrap()
}

async fn next_request(events: &mut mpsc::Receiver<EndpointEvent>) -> EndpointEvent {
    loop {
        match timeout(LIMIT, events.recv()).await.unwrap().unwrap() {
            event @ EndpointEvent::Request { .. } => return event,
            EndpointEvent::DialogEnded(_) => {}
            other => panic!("{other:?}"),
        }
    }
}

/// A request from `from` to `to`, both endpoints on `transport`.
fn request(
    from: &Endpoint,
    to: &Endpoint,
    transport: Transport,
    method: Method,
) -> (Message, Peer) {
    let target = to.local_addr(transport).unwrap();
    let local = from.local_addr(transport).unwrap();
    let param = format!(";transport={}", transport.as_str().to_lowercase());
    let message = Message::request(method.clone(), format!("sip:bob@{target}{param}"))
        .header(HeaderName::Via, from.via(transport).unwrap())
        .header(HeaderName::MaxForwards, "70")
        .header(
            HeaderName::From,
            format!("<sip:alice@{local}>;tag={}", new_tag()),
        )
        .header(HeaderName::To, format!("<sip:bob@{target}>"))
        .header(HeaderName::CallId, format!("{}@test", new_tag()))
        .header(HeaderName::CSeq, format!("1 {method}"))
        .header(HeaderName::Contact, format!("<sip:alice@{local}{param}>"))
        .build()
        .unwrap();
    (message, Peer::new(transport, target))
}

async fn ok(endpoint: &Endpoint, event: EndpointEvent) -> Peer {
    let EndpointEvent::Request {
        tx: Some(tx),
        request,
        peer,
        ..
    } = event
    else {
        panic!("{event:?}");
    };
    let contact = format!("<sip:bob@{}>", endpoint.local_addr(peer.transport).unwrap());
    let response = request
        .response_to(StatusCode::OK)
        .to_tag("bob1")
        .header(HeaderName::Contact, contact)
        .build()
        .unwrap();
    endpoint.respond(tx, &response).unwrap();
    peer
}

async fn final_response(
    tx: &mut trunkline_transaction::ClientTransaction,
) -> (Message, Option<DialogId>) {
    match timeout(LIMIT, tx.final_response()).await.unwrap() {
        ClientEvent::Response { response, dialog } => (response, dialog),
        ClientEvent::Timeout => panic!("timed out"),
    }
}

/// Alice calls Bob over `transport`: INVITE, 200, ACK, BYE, 200; both
/// dialogs end and both tables empty.
async fn call_over(transport: Transport) {
    let (alice, _alice_events) = endpoint(transport).await;
    let (bob, mut bob_events) = endpoint(transport).await;

    let (options, peer) = request(&alice, &bob, transport, Method::Options);
    let mut tx = alice.send_request(options, peer).unwrap();
    let seen_from = ok(&bob, next_request(&mut bob_events).await).await;
    assert_eq!(seen_from.transport, transport);
    assert_eq!(
        final_response(&mut tx).await.0.status(),
        Some(StatusCode::OK)
    );

    let (invite, peer) = request(&alice, &bob, transport, Method::Invite);
    let mut tx = alice.send_request(invite, peer).unwrap();
    ok(&bob, next_request(&mut bob_events).await).await;
    let (response, dialog) = final_response(&mut tx).await;
    assert_eq!(response.status(), Some(StatusCode::OK));
    let dialog = dialog.unwrap();
    alice.ack_in_dialog(tx.id(), &dialog, 1).unwrap();
    let EndpointEvent::Request {
        tx: None,
        request: ack,
        ..
    } = next_request(&mut bob_events).await
    else {
        panic!("expected the ACK");
    };
    assert_eq!(ack.method(), Some(&Method::Ack));

    let bye = alice
        .request_in_dialog(&dialog, Method::Bye)
        .unwrap()
        .build()
        .unwrap();
    let mut bye_tx = alice.send_in_dialog(&dialog, bye).unwrap();
    let bye_peer = ok(&bob, next_request(&mut bob_events).await).await;
    assert_eq!(
        final_response(&mut bye_tx).await.0.status(),
        Some(StatusCode::OK)
    );
    if transport.is_reliable() {
        // Everything went over the one connection Alice opened.
        assert_eq!(bye_peer.connection, seen_from.connection);
        // Reliable transports end their transactions with the final
        // response; the INVITE's lingers for 2xx retransmissions (timer M).
        assert_eq!(bob.load().1, 0, "Bob's dialog is gone");
        assert_eq!(alice.load().1, 0, "Alice's dialog is gone");
    }
}

#[tokio::test]
async fn a_call_over_udp() {
    call_over(Transport::Udp).await;
}

#[tokio::test]
async fn a_call_over_tcp() {
    call_over(Transport::Tcp).await;
}

#[tokio::test]
async fn a_call_over_tls() {
    call_over(Transport::Tls).await;
}

#[tokio::test]
async fn a_call_over_websocket() {
    call_over(Transport::Ws).await;
}

#[tokio::test]
async fn a_call_over_secure_websocket() {
    call_over(Transport::Wss).await;
}

async fn transports(
    transport: Transport,
) -> (
    Transports,
    mpsc::Receiver<trunkline_transaction::transport::Incoming>,
) {
    Transports::bind(config(transport)).await.unwrap()
}

#[tokio::test]
async fn a_malformed_udp_request_gets_400_and_is_counted() {
    let (server, _incoming) = transports(Transport::Udp).await;
    let socket = tokio::net::UdpSocket::bind(loopback()).await.unwrap();
    let bad = "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\n\
               From: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: x\r\nCSeq: one OPTIONS\r\n\r\n";
    socket
        .send_to(bad.as_bytes(), server.local_addr(Transport::Udp).unwrap())
        .await
        .unwrap();
    let mut buf = [0; 2048];
    let (n, _) = timeout(LIMIT, socket.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    // The response copies the broken CSeq, so it is read as text.
    let response = String::from_utf8_lossy(&buf[..n]);
    let status_line = response.lines().next().unwrap();
    assert!(status_line.starts_with("SIP/2.0 400 "), "{response}");
    assert!(
        status_line.contains("CSeq"),
        "the reason names the header: {status_line}"
    );
    assert_eq!(server.stats().malformed, 1);
}

async fn tcp_client(server: &Transports) -> tokio::net::TcpStream {
    let addr = server.local_addr(Transport::Tcp).unwrap();
    tokio::net::TcpStream::connect(addr).await.unwrap()
}

/// Reads until the peer closes (or resets: it closed with our bytes
/// unread) within `LIMIT`, returning what came.
async fn read_to_close(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let closed = timeout(LIMIT, stream.read_to_end(&mut all)).await.unwrap();
    if let Err(e) = closed {
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    }
    all
}

#[tokio::test]
async fn an_unframeable_tcp_request_gets_400_and_the_connection_closes() {
    let (server, mut incoming) = transports(Transport::Tcp).await;
    let mut client = tcp_client(&server).await;
    // No Content-Length: a stream cannot be framed (RFC 3261 §18.3).
    let request = "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK2\r\n\
                   From: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: y\r\nCSeq: 1 OPTIONS\r\n\r\n";
    client.write_all(request.as_bytes()).await.unwrap();
    let reply = read_to_close(&mut client).await;
    assert!(
        reply.starts_with(b"SIP/2.0 400 "),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(incoming.try_recv().is_err(), "nothing delivered");
    assert_eq!(server.stats().malformed, 1);
}

#[tokio::test]
async fn a_keepalive_ping_gets_a_pong_and_nothing_is_delivered() {
    let (server, mut incoming) = transports(Transport::Tcp).await;
    let mut client = tcp_client(&server).await;
    client.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0; 2];
    timeout(LIMIT, client.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");
    assert!(incoming.try_recv().is_err());
}

#[tokio::test]
async fn an_oversized_message_closes_the_connection_without_buffering_it() {
    let mut config = config(Transport::Tcp);
    config.max_message_size = 4096;
    let (server, mut incoming) = Transports::bind(config).await.unwrap();
    let mut client = tcp_client(&server).await;
    // A header section that never ends: the server must give up at the
    // limit, not wait for an empty line that is never sent.
    let mut sent = 0;
    let line = format!("X-Filler: {}\r\n", "x".repeat(1000));
    client
        .write_all(b"OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n")
        .await
        .unwrap();
    while sent < 64 * 1024 {
        if client.write_all(line.as_bytes()).await.is_err() {
            break;
        }
        sent += line.len();
    }
    read_to_close(&mut client).await;
    assert!(incoming.try_recv().is_err());
    assert_eq!(server.stats().malformed, 1);
}

#[tokio::test]
async fn requests_to_one_peer_reuse_one_tcp_connection() {
    let (alice, _) = transports(Transport::Tcp).await;
    let (bob, mut bob_incoming) = transports(Transport::Tcp).await;
    let target = bob.local_addr(Transport::Tcp).unwrap();
    let mut connections = Vec::new();
    for n in 0..3 {
        let bytes = format!(
            "OPTIONS sip:bob@{target} SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKr{n}\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: r{n}\r\nCSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let transmit = trunkline_transaction::Transmit {
            peer: Peer::new(Transport::Tcp, target),
            bytes: bytes.into(),
        };
        alice.send(transmit).unwrap();
        let incoming = timeout(LIMIT, bob_incoming.recv()).await.unwrap().unwrap();
        connections.push(incoming.peer.connection.unwrap());
    }
    assert!(
        connections.windows(2).all(|w| w[0] == w[1]),
        "{connections:?}"
    );
    assert_eq!(alice.stats().connections, 1);
}

#[tokio::test]
async fn a_websocket_client_without_the_sip_subprotocol_is_refused() {
    let (server, _) = transports(Transport::Ws).await;
    let addr = server.local_addr(Transport::Ws).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let refused = tokio_tungstenite::client_async(format!("ws://{addr}/"), tcp).await;
    assert!(refused.is_err(), "RFC 7118 §4.1: only the sip subprotocol");
}

/// A certificate and key written as PEM files, removed when dropped.
struct PemFiles {
    dir: std::path::PathBuf,
}

impl PemFiles {
    fn new() -> PemFiles {
        let dir = std::env::temp_dir().join(format!("trunkline-tls-{}", new_tag()));
        std::fs::create_dir_all(&dir).unwrap();
        let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        std::fs::write(dir.join("cert.pem"), generated.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), generated.signing_key.serialize_pem()).unwrap();
        PemFiles { dir }
    }
}

impl Drop for PemFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn tls_from_pem_files_verifies_the_peer_against_given_roots() {
    let pem = PemFiles::new();
    let tls_config = |verify| {
        let mut config = TransportConfig::new(vec![Listener::new(Transport::Tls, loopback())]);
        config.tls_identity = Some(TlsIdentity::Files {
            certificate_chain: pem.dir.join("cert.pem"),
            private_key: pem.dir.join("key.pem"),
        });
        config.tls_verify = verify;
        config
    };
    let trusting = TlsVerify::Roots(vec![pem.dir.join("cert.pem")]);
    let (alice, _) = Transports::bind(tls_config(trusting)).await.unwrap();
    let (bob, mut bob_incoming) = Transports::bind(tls_config(TlsVerify::SystemRoots))
        .await
        .unwrap();
    let options = |to: &Transports, branch: &str| trunkline_transaction::Transmit {
        peer: Peer::new(Transport::Tls, to.local_addr(Transport::Tls).unwrap()),
        bytes: format!(
            "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:9;branch={branch}\r\n\
             From: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nCall-ID: {branch}\r\nCSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .into(),
    };
    // Alice trusts the certificate: the message arrives.
    alice.send(options(&bob, "z9hG4bKt1")).unwrap();
    let incoming = timeout(LIMIT, bob_incoming.recv()).await.unwrap().unwrap();
    assert_eq!(incoming.peer.transport, Transport::Tls);
    // Bob checks against the system roots, which do not hold a
    // self-signed certificate: his handshake fails and nothing arrives.
    let (carol, mut carol_incoming) = Transports::bind(tls_config(TlsVerify::SystemRoots))
        .await
        .unwrap();
    bob.send(options(&carol, "z9hG4bKt2")).unwrap();
    assert!(
        timeout(Duration::from_millis(500), carol_incoming.recv())
            .await
            .is_err()
    );
}
