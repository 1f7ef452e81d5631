//! Transaction matching (RFC 3261 §17.1.3, §17.2.3), CANCEL (§9), merged
//! requests (§8.2.2.2), `received`/`rport` (§18.2, RFC 3581) and forked
//! answers, on a virtual clock.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::time::{Duration, Instant};
use trunkline_sip::{Message, StatusCode};
use trunkline_transaction::{Event, Peer, ServerTxId, Transactions, Transport};

fn udp(port: u16) -> Peer {
    Peer::new(Transport::Udp, format!("127.0.0.1:{port}").parse().unwrap())
}

fn parse(text: &str) -> Message {
    Message::parse_slice(text.replace('\n', "\r\n").as_bytes()).expect("test message parses")
}

/// A request from alice's UA at 127.0.0.1:5070 with the given top Via
/// parameters (branch and others), To parameters, CSeq method and number.
fn request(method: &str, via_params: &str, to_params: &str, cseq: &str) -> Message {
    parse(&format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;{via_params}\n\
         From: <sip:alice@127.0.0.1>;tag=a1\n\
         To: <sip:bob@127.0.0.1>{to_params}\n\
         Call-ID: call-2@127.0.0.1\n\
         CSeq: {cseq}\n\
         Max-Forwards: 70\n\
         Contact: <sip:alice@127.0.0.1:5070>\n\
         Content-Length: 0\n\n"
    ))
}

/// The response `status` to `request`, with To tag `b1`.
fn reply(request: &Message, status: StatusCode) -> Message {
    request.response_to(status).to_tag("b1").build().unwrap()
}

fn sent(layer: &mut Transactions) -> Vec<(Peer, Message)> {
    std::iter::from_fn(|| layer.poll_transmit())
        .map(|t| (t.peer, Message::parse(t.bytes).unwrap()))
        .collect()
}

fn statuses(layer: &mut Transactions) -> Vec<u16> {
    sent(layer)
        .iter()
        .filter_map(|(_, m)| m.status().map(StatusCode::as_u16))
        .collect()
}

fn events(layer: &mut Transactions) -> Vec<Event> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

fn new_request(events: &[Event]) -> (ServerTxId, Message) {
    match events {
        [
            Event::Request {
                tx: Some(tx),
                request,
                ..
            },
        ] => (*tx, request.clone()),
        other => panic!("expected one new request, got {other:?}"),
    }
}

#[test]
fn cancel_of_a_ringing_invite_gets_200_and_is_reported() {
    let mut uas = Transactions::default();
    let t0 = Instant::now();
    let invite = request("INVITE", "branch=z9hG4bKc1", "", "1 INVITE");
    uas.handle_message(t0, invite, udp(5070));
    let (tx, invite) = new_request(&events(&mut uas));
    let ringing = reply(&invite, StatusCode::RINGING);
    uas.respond(t0, tx, &ringing).unwrap();
    sent(&mut uas);
    let cancel = request("CANCEL", "branch=z9hG4bKc1", "", "1 CANCEL");
    uas.handle_message(t0, cancel.clone(), udp(5070));
    assert_eq!(statuses(&mut uas), vec![200]);
    assert!(matches!(events(&mut uas)[..], [Event::Cancelled { tx: t }] if t == tx));
    // A retransmitted CANCEL gets the same 200, and no second report.
    uas.handle_message(t0, cancel, udp(5070));
    assert_eq!(statuses(&mut uas), vec![200]);
    assert!(events(&mut uas).is_empty());
    let terminated = reply(&invite, StatusCode::REQUEST_TERMINATED);
    uas.respond(t0, tx, &terminated).unwrap();
    assert_eq!(statuses(&mut uas), vec![487]);
}

#[test]
fn cancel_after_the_200_changes_nothing_but_is_answered() {
    let mut uas = Transactions::default();
    let t0 = Instant::now();
    uas.handle_message(
        t0,
        request("INVITE", "branch=z9hG4bKc2", "", "1 INVITE"),
        udp(5070),
    );
    let (tx, invite) = new_request(&events(&mut uas));
    let ok = reply(&invite, StatusCode::OK);
    uas.respond(t0, tx, &ok).unwrap();
    sent(&mut uas);
    uas.handle_message(
        t0,
        request("CANCEL", "branch=z9hG4bKc2", "", "1 CANCEL"),
        udp(5070),
    );
    assert_eq!(statuses(&mut uas), vec![200]);
    assert!(
        events(&mut uas).is_empty(),
        "an answered call is not cancelled"
    );
}

#[test]
fn cancel_matching_nothing_gets_481() {
    let mut uas = Transactions::default();
    let cancel = request("CANCEL", "branch=z9hG4bKc3", "", "1 CANCEL");
    uas.handle_message(Instant::now(), cancel, udp(5070));
    assert_eq!(statuses(&mut uas), vec![481]);
    assert!(events(&mut uas).is_empty());
}

/// Moves every message `from` sends to `to`, as if over loopback.
fn deliver(now: Instant, from: &mut Transactions, to: &mut Transactions, from_port: u16) -> usize {
    let mut n = 0;
    while let Some(t) = from.poll_transmit() {
        to.handle_message(now, Message::parse(t.bytes).unwrap(), udp(from_port));
        n += 1;
    }
    n
}

#[test]
fn a_cancel_waits_for_the_first_provisional_response_and_a_racing_200_still_wins() {
    let (mut uac, mut uas) = (Transactions::default(), Transactions::default());
    let t0 = Instant::now();
    let invite = request("INVITE", "branch=z9hG4bKc4", "", "1 INVITE");
    let call = uac.send_request(t0, invite, udp(5080)).unwrap();
    uac.cancel(t0, call).unwrap();
    // Only the INVITE goes out: no CANCEL before a provisional response.
    assert_eq!(deliver(t0, &mut uac, &mut uas, 5070), 1);
    let (tx, invite) = new_request(&events(&mut uas));
    let ringing = reply(&invite, StatusCode::RINGING);
    uas.respond(t0, tx, &ringing).unwrap();
    // The UAS answers at the moment the 180 reaches the UAC.
    let ok = reply(&invite, StatusCode::OK);
    uas.respond(t0, tx, &ok).unwrap();
    assert_eq!(deliver(t0, &mut uas, &mut uac, 5080), 2);
    // The 180 released the CANCEL; the 200 is reported all the same.
    let reported: Vec<u16> = events(&mut uac)
        .iter()
        .map(|e| match e {
            Event::Response { response, .. } => response.status().unwrap().as_u16(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(reported, vec![180, 200]);
    let cancels = sent(&mut uac);
    assert_eq!(cancels.len(), 1);
    let cancel = &cancels[0].1;
    assert_eq!(cancel.method().unwrap().as_str(), "CANCEL");
    assert_eq!(cancel.branch(), Some("z9hG4bKc4"));
    assert_eq!(cancel.cseq().unwrap().seq, 1);
    // The UAS answers the late CANCEL 200 without reporting it; the UAC
    // absorbs that 200.
    uas.handle_message(t0, cancel.clone(), udp(5070));
    assert!(events(&mut uas).is_empty());
    deliver(t0, &mut uas, &mut uac, 5080);
    assert!(events(&mut uac).is_empty());
}

#[test]
fn a_request_arriving_twice_by_different_paths_is_merged_with_482() {
    let mut uas = Transactions::default();
    let t0 = Instant::now();
    uas.handle_message(
        t0,
        request("INVITE", "branch=z9hG4bKm1", "", "7 INVITE"),
        udp(5070),
    );
    let (tx, invite) = new_request(&events(&mut uas));
    // Same From tag, Call-ID and CSeq, another branch: a forking proxy
    // upstream sent it twice.
    uas.handle_message(
        t0,
        request("INVITE", "branch=z9hG4bKm2", "", "7 INVITE"),
        udp(5071),
    );
    assert_eq!(statuses(&mut uas), vec![482]);
    assert!(events(&mut uas).is_empty());
    assert_eq!(uas.stats().merged_requests, 1);
    // In-dialog requests (with a To tag) are never merged.
    uas.respond(t0, tx, &reply(&invite, StatusCode::OK))
        .unwrap();
    let info = |branch| request("INFO", branch, ";tag=b1", "8 INFO");
    uas.handle_message(t0, info("branch=z9hG4bKm3"), udp(5070));
    uas.handle_message(t0, info("branch=z9hG4bKm4"), udp(5071));
    assert_eq!(events(&mut uas).len(), 2);
}

#[test]
fn rfc_2543_peers_match_without_the_magic_cookie() {
    let mut uas = Transactions::default();
    let t0 = Instant::now();
    let invite = request("INVITE", "branch=old1", "", "3 INVITE");
    uas.handle_message(t0, invite.clone(), udp(5070));
    let (tx, invite_seen) = new_request(&events(&mut uas));
    // Its retransmission is recognised although the branch is not unique.
    uas.handle_message(t0, invite, udp(5070));
    assert!(events(&mut uas).is_empty());
    let busy = invite_seen
        .response_to(StatusCode::BUSY_HERE)
        .to_tag("b9")
        .build()
        .unwrap();
    uas.respond(t0, tx, &busy).unwrap();
    sent(&mut uas);
    // The ACK carries the To tag of the 486, and is absorbed.
    uas.handle_message(
        t0,
        request("ACK", "branch=old1", ";tag=b9", "3 ACK"),
        udp(5070),
    );
    assert!(events(&mut uas).is_empty());
    assert!(sent(&mut uas).is_empty());
    // Without any branch at all, too.
    uas.handle_message(t0, request("OPTIONS", "x=1", "", "4 OPTIONS"), udp(5070));
    uas.handle_message(t0, request("OPTIONS", "x=1", "", "4 OPTIONS"), udp(5070));
    assert_eq!(events(&mut uas).len(), 1);
}

#[test]
fn responses_follow_rport_and_received() {
    let mut uas = Transactions::default();
    let t0 = Instant::now();
    // Sent from a NAT: the Via says 10.0.0.9:5060, the packet came from
    // 127.0.0.1:40000 and asks for rport.
    let options = parse(
        "OPTIONS sip:bob@127.0.0.1 SIP/2.0\n\
         Via: SIP/2.0/UDP 10.0.0.9:5060;rport;branch=z9hG4bKr1, SIP/2.0/UDP 10.0.0.1\n\
         From: <sip:alice@127.0.0.1>;tag=a1\nTo: <sip:bob@127.0.0.1>\n\
         Call-ID: call-3@127.0.0.1\nCSeq: 1 OPTIONS\nMax-Forwards: 70\n\n",
    );
    uas.handle_message(t0, options, udp(40000));
    let (tx, seen) = new_request(&events(&mut uas));
    let via = seen.via().unwrap();
    assert_eq!(via.received(), Some("127.0.0.1"));
    assert_eq!(via.rport(), Some(Some(40000)));
    assert_eq!(via.branch(), Some("z9hG4bKr1"));
    assert_eq!(seen.vias().count(), 2, "the second Via is kept");
    uas.respond(t0, tx, &reply(&seen, StatusCode::OK)).unwrap();
    let out = sent(&mut uas);
    assert_eq!(out[0].0.addr, udp(40000).addr, "back to the source port");
    // Without rport: to the source address at the sent-by port.
    let options = request("OPTIONS", "branch=z9hG4bKr2", "", "2 OPTIONS");
    uas.handle_message(t0, options, udp(40001));
    let (tx, seen) = new_request(&events(&mut uas));
    assert_eq!(
        seen.via().unwrap().received(),
        None,
        "sent-by is the source IP"
    );
    uas.respond(t0, tx, &reply(&seen, StatusCode::OK)).unwrap();
    assert_eq!(sent(&mut uas)[0].0.addr, udp(5070).addr);
}

#[test]
fn a_forked_invite_reports_each_answer_and_repeats_each_ack() {
    let mut uac = Transactions::default();
    let t0 = Instant::now();
    let invite = request("INVITE", "branch=z9hG4bKf1", "", "1 INVITE");
    let call = uac.send_request(t0, invite.clone(), udp(5080)).unwrap();
    sent(&mut uac);
    let ok = |tag: &str| {
        invite
            .response_to(StatusCode::OK)
            .to_tag(tag)
            .build()
            .unwrap()
    };
    uac.handle_message(t0, ok("b1"), udp(5080));
    uac.handle_message(t0, ok("b2"), udp(5081));
    assert_eq!(events(&mut uac).len(), 2, "two forks answered");
    let ack = parse(
        "ACK sip:bob@127.0.0.1:5080 SIP/2.0\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKf1ack\n\
         From: <sip:alice@127.0.0.1>;tag=a1\nTo: <sip:bob@127.0.0.1>;tag=b1\n\
         Call-ID: call-2@127.0.0.1\nCSeq: 1 ACK\nMax-Forwards: 70\n\n",
    );
    uac.send_ack(call, ack.clone(), udp(5080)).unwrap();
    assert_eq!(sent(&mut uac).len(), 1);
    // The first fork's 200 again: the layer repeats our ACK by itself.
    uac.handle_message(t0 + Duration::from_secs(1), ok("b1"), udp(5080));
    assert_eq!(sent(&mut uac), vec![(udp(5080), ack)]);
    assert!(events(&mut uac).is_empty());
    // After timer M (64·T1) the transaction is gone and a late 2xx is
    // stray, still handed up so the UA can ACK and BYE it.
    uac.handle_timeout(t0 + Duration::from_secs(33));
    assert!(uac.is_empty());
    uac.handle_message(t0 + Duration::from_secs(34), ok("b3"), udp(5082));
    assert!(matches!(
        events(&mut uac)[..],
        [Event::StrayResponse { .. }]
    ));
    assert_eq!(uac.stats().stray_responses, 1);
}

#[test]
fn a_request_over_1300_bytes_goes_over_tcp_when_it_can() {
    let big = |branch: &str| {
        let padding = "x".repeat(1400);
        parse(&format!(
            "MESSAGE sip:bob@127.0.0.1 SIP/2.0\n\
             Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch};rport\n\
             From: <sip:alice@127.0.0.1>;tag=a1\nTo: <sip:bob@127.0.0.1>\n\
             Call-ID: call-big@127.0.0.1\nCSeq: 1 MESSAGE\nMax-Forwards: 70\n\
             Subject: {padding}\n\n"
        ))
    };
    let t0 = Instant::now();
    // Without a TCP address of our own it has to stay on UDP.
    let mut layer = Transactions::default();
    layer
        .send_request(t0, big("z9hG4bKbig1"), udp(5080))
        .unwrap();
    assert_eq!(
        layer.poll_transmit().unwrap().peer.transport,
        Transport::Udp
    );
    layer.set_sent_by(Transport::Tcp, "127.0.0.1:5071");
    layer
        .send_request(t0, big("z9hG4bKbig2"), udp(5080))
        .unwrap();
    let sent = layer.poll_transmit().unwrap();
    assert_eq!(sent.peer.transport, Transport::Tcp);
    assert_eq!(sent.peer.addr, udp(5080).addr);
    let sent = Message::parse(sent.bytes).unwrap();
    let via = sent.via().unwrap();
    assert_eq!(
        (via.transport(), via.port(), via.branch()),
        ("TCP", Some(5071), Some("z9hG4bKbig2"))
    );
    // Its response, matched by the unchanged branch, is reported.
    layer.handle_message(t0, reply(&sent, StatusCode::OK), udp(5080));
    assert!(matches!(events(&mut layer)[..], [Event::Response { .. }]));
}

#[test]
fn stream_responses_keep_the_connection_and_know_where_to_reconnect() {
    let mut uas = Transactions::default();
    let t0 = Instant::now();
    let source = Peer {
        transport: Transport::Tcp,
        addr: "127.0.0.1:51234".parse().unwrap(),
        connection: Some(trunkline_transaction::ConnectionId(7)),
    };
    uas.handle_message(
        t0,
        request("OPTIONS", "branch=z9hG4bKtcp1", "", "1 OPTIONS"),
        source,
    );
    let (tx, seen) = new_request(&events(&mut uas));
    uas.respond(t0, tx, &reply(&seen, StatusCode::OK)).unwrap();
    let (peer, _) = sent(&mut uas).remove(0);
    // The request's own connection; should it have closed, a new one to
    // the source IP at the sent-by port (§18.2.2), not to the source port.
    assert_eq!(peer.connection, source.connection);
    assert_eq!(peer.addr, udp(5070).addr);
}
