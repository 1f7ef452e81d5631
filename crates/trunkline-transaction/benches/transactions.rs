//! The transaction layer's cost per transaction, driven through the
//! sans-IO core with no I/O: bytes in (parsed), bytes out (serialized),
//! the application's response built from the request as a TU would.
//!
//! `cargo bench -p trunkline-transaction --bench transactions`; a
//! transaction per iteration, so transactions per second per core is
//! 1 / the time shown.

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};
use trunkline_sip::{Message, StatusCode};
use trunkline_transaction::{Event, Peer, Transactions, Transport};

fn peer(transport: Transport, port: u16) -> Peer {
    Peer::new(
        transport,
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
    )
}

fn request(method: &str, branch: u64, cseq: u32, to_tag: &str) -> Bytes {
    Bytes::from(format!(
        "{method} sip:bob@127.0.0.1:5080 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{branch:016x}\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:alice@127.0.0.1>;tag=a1\r\n\
         To: <sip:bob@127.0.0.1>{to_tag}\r\n\
         Call-ID: bench-{branch}@127.0.0.1\r\n\
         CSeq: {cseq} {method}\r\n\
         Contact: <sip:alice@127.0.0.1:5070>\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// The application side of a server transaction: the request's event,
/// answered with `status`.
fn answer(layer: &mut Transactions, now: Instant, status: StatusCode) {
    let Some(Event::Request {
        tx: Some(tx),
        request,
        ..
    }) = layer.poll_event()
    else {
        panic!("the request is reported");
    };
    let response = request.response_to(status).to_tag("b1").build();
    layer
        .respond(now, tx, &response.expect("response builds"))
        .expect("fresh transaction");
}

fn drain(layer: &mut Transactions) -> usize {
    std::iter::from_fn(|| layer.poll_transmit())
        .map(|t| t.bytes.len())
        .sum()
}

/// An INVITE server transaction from the INVITE to the absorbed ACK of its
/// 486, over UDP with timer I run out, so every timer is armed and fired.
fn server_invite(c: &mut Criterion) {
    let mut layer = Transactions::default();
    let from = peer(Transport::Udp, 5070);
    let mut now = Instant::now();
    let mut n = 0u64;
    c.bench_function("server_invite_to_ack_absorbed/udp", |b| {
        b.iter(|| {
            n += 1;
            let invite = Message::parse(request("INVITE", n, 1, "")).expect("INVITE parses");
            layer.handle_message(now, invite, from);
            answer(&mut layer, now, StatusCode::BUSY_HERE);
            let ack = Message::parse(request("ACK", n, 1, ";tag=b1")).expect("ACK parses");
            layer.handle_message(now, ack, from);
            now += Duration::from_secs(6);
            layer.handle_timeout(now);
            black_box(drain(&mut layer));
        })
    });
    assert!(layer.is_empty(), "every transaction ended");
}

/// An OPTIONS round trip between two layers: the client sends, the server
/// reports and answers, the client reports the 200; over TCP (both
/// transactions end with the final response) and over UDP (timers J and K
/// run out).
fn non_invite_round_trip(c: &mut Criterion) {
    for transport in [Transport::Tcp, Transport::Udp] {
        let (mut client, mut server) = (Transactions::default(), Transactions::default());
        let (to_server, to_client) = (peer(transport, 5080), peer(transport, 5070));
        let mut now = Instant::now();
        let mut n = 0u64;
        let name = format!(
            "non_invite_round_trip/{}",
            transport.as_str().to_lowercase()
        );
        c.bench_function(&name, |b| {
            b.iter(|| {
                n += 1;
                let options = Message::parse(request("OPTIONS", n, 1, "")).expect("parses");
                client
                    .send_request(now, options, to_server)
                    .expect("new branch");
                let sent = client.poll_transmit().expect("OPTIONS sent");
                server.handle_message(now, Message::parse(sent.bytes).expect("parses"), to_client);
                answer(&mut server, now, StatusCode::OK);
                let back = server.poll_transmit().expect("200 sent");
                client.handle_message(now, Message::parse(back.bytes).expect("parses"), to_server);
                black_box(client.poll_event());
                if !transport.is_reliable() {
                    now += Duration::from_secs(40);
                    client.handle_timeout(now);
                    server.handle_timeout(now);
                }
            })
        });
        assert!(client.is_empty() && server.is_empty());
    }
}

criterion_group!(benches, server_invite, non_invite_round_trip);
criterion_main!(benches);
