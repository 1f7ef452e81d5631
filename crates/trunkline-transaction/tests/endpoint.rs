//! The endpoint over real loopback sockets: a call (INVITE, ACK, BYE) and
//! OPTIONS between two endpoints over UDP, TCP, TLS, WebSocket and secure
//! WebSocket; the WebSocket subprotocol and TLS verification from PEM
//! files. The transports alone are tested in `transport.rs`.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::net::SocketAddr;
use std::time::Duration;
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
