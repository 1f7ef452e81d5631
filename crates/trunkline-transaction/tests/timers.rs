//! The transaction state machines on a virtual clock: every timer of RFC
//! 3261 §17 (and RFC 6026) fires when the RFC says, with no sleeping —
//! with the default T1, T2 and T4 and with configured ones.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::time::{Duration, Instant};
use trunkline_sip::{Message, StatusCode};
use trunkline_transaction::{
    ClientTxId, Event, Peer, ServerTxId, Timers, Transactions, Transmit, Transport,
};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn udp() -> Peer {
    Peer::new(Transport::Udp, "127.0.0.1:5070".parse().unwrap())
}

fn tcp() -> Peer {
    Peer::new(Transport::Tcp, "127.0.0.1:5070".parse().unwrap())
}

fn parse(text: &str) -> Message {
    Message::parse_slice(text.replace('\n', "\r\n").as_bytes()).expect("test message parses")
}

fn request(method: &str, branch: &str, extra: &str) -> Message {
    parse(&format!(
        "{method} sip:bob@127.0.0.1 SIP/2.0\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\n\
         From: <sip:alice@127.0.0.1>;tag=a1\n\
         To: <sip:bob@127.0.0.1>{extra}\n\
         Call-ID: call-1@127.0.0.1\n\
         CSeq: 1 {method}\n\
         Max-Forwards: 70\n\
         Contact: <sip:alice@127.0.0.1:5070>\n\
         Content-Length: 0\n\n"
    ))
}

fn invite(branch: &str) -> Message {
    request("INVITE", branch, "")
}

/// The response `status` to `request`, with To tag `b1` unless a 100.
fn answer(request: &Message, status: StatusCode) -> Message {
    let builder = request.response_to(status);
    let builder = if status == StatusCode::TRYING {
        builder
    } else {
        builder.to_tag("b1")
    };
    builder.build().unwrap()
}

/// Hands `request` to the layer, which must report it as new.
fn receive(layer: &mut Transactions, now: Instant, request: Message, peer: Peer) -> ServerTxId {
    layer.handle_message(now, request, peer);
    match layer.poll_event() {
        Some(Event::Request { tx: Some(tx), .. }) => tx,
        other => panic!("expected a new request, got {other:?}"),
    }
}

fn transmits(layer: &mut Transactions) -> Vec<Message> {
    std::iter::from_fn(|| layer.poll_transmit())
        .map(|Transmit { bytes, .. }| Message::parse(bytes).expect("the layer sends valid SIP"))
        .collect()
}

fn events(layer: &mut Transactions) -> Vec<Event> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

/// Runs the timers up to `start + until`, noting when each message goes
/// out, as an offset from `start`.
fn run(layer: &mut Transactions, start: Instant, until: Duration) -> Vec<(Duration, Message)> {
    let mut sent = Vec::new();
    for _ in 0..10_000 {
        match layer.poll_timeout() {
            Some(at) if at <= start + until => {
                layer.handle_timeout(at);
                for m in transmits(layer) {
                    sent.push((at - start, m));
                }
            }
            _ => return sent,
        }
    }
    panic!("timers never settle");
}

fn times(sent: &[(Duration, Message)]) -> Vec<u64> {
    sent.iter().map(|(t, _)| t.as_millis() as u64).collect()
}

/// Runs the timers until client transaction `tx` times out, which must be
/// `at` after `start` and not a millisecond earlier, with nothing sent from
/// then on and nothing left in the layer; what went out before, as [`run`]
/// gives it.
fn sent_until_timeout(
    layer: &mut Transactions,
    start: Instant,
    at: Duration,
    tx: ClientTxId,
) -> Vec<(Duration, Message)> {
    let sent = run(layer, start, at - MS(1));
    assert!(events(layer).is_empty(), "no timeout before {at:?}");
    assert!(run(layer, start, at).is_empty());
    assert!(matches!(events(layer)[..], [Event::Timeout { tx: t }] if t == tx));
    assert!(run(layer, start, at + Duration::from_secs(60)).is_empty());
    assert!(layer.is_empty());
    sent
}

/// Runs the timers: the layer's last transaction ends `at` after `start`,
/// not a millisecond earlier, sending nothing more meanwhile.
fn ends_at(layer: &mut Transactions, start: Instant, at: Duration) {
    assert!(run(layer, start, at - MS(1)).is_empty());
    assert!(!layer.is_empty(), "still there just before {at:?}");
    assert!(run(layer, start, at).is_empty());
    assert!(layer.is_empty(), "gone at {at:?}");
}

/// Receives `request` from `peer` at `now` and answers it `status` at once.
fn answered(
    layer: &mut Transactions,
    now: Instant,
    request: &Message,
    peer: Peer,
    status: StatusCode,
) -> ServerTxId {
    let tx = receive(layer, now, request.clone(), peer);
    layer.respond(now, tx, &answer(request, status)).unwrap();
    assert_eq!(transmits(layer).len(), 1, "the answer goes out");
    tx
}

/// The ACK of a failure answered to `invite(branch)`.
fn ack_for_failure(branch: &str) -> Message {
    parse(&format!(
        "ACK sip:bob@127.0.0.1 SIP/2.0\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\n\
         From: <sip:alice@127.0.0.1>;tag=a1\n\
         To: <sip:bob@127.0.0.1>;tag=b1\n\
         Call-ID: call-1@127.0.0.1\nCSeq: 1 ACK\nMax-Forwards: 70\n\n"
    ))
}

#[test]
fn non_invite_client_retransmits_at_t1_doubling_capped_at_t2_then_times_out() {
    let mut layer = Transactions::default();
    let t0 = Instant::now();
    let tx = layer
        .send_request(t0, request("OPTIONS", "z9hG4bKo1", ""), udp())
        .unwrap();
    assert_eq!(transmits(&mut layer).len(), 1);
    // Timer E: 500, 1000, 2000, then 4000 (T2) each time, until timer F at 32 s.
    let sent = sent_until_timeout(&mut layer, t0, Duration::from_secs(32), tx);
    assert_eq!(
        times(&sent),
        vec![
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    assert_eq!(layer.stats().timeouts, 1);
}

#[test]
fn non_invite_client_in_proceeding_retransmits_every_t2() {
    let mut layer = Transactions::default();
    let t0 = Instant::now();
    let options = request("OPTIONS", "z9hG4bKo2", "");
    layer.send_request(t0, options.clone(), udp()).unwrap();
    transmits(&mut layer);
    layer.handle_message(t0 + MS(100), answer(&options, StatusCode::TRYING), udp());
    let sent = run(&mut layer, t0, MS(9000));
    // E was armed for 500 ms; after that, T2.
    assert_eq!(times(&sent), vec![500, 4500, 8500]);
    layer.handle_message(t0 + MS(9000), answer(&options, StatusCode::OK), udp());
    let events = events(&mut layer);
    assert_eq!(events.len(), 2, "100 and 200 reported: {events:?}");
    // Timer K: T4 absorbing response retransmissions, then gone.
    layer.handle_message(t0 + MS(9100), answer(&options, StatusCode::OK), udp());
    assert!(self::events(&mut layer).is_empty());
    assert_eq!(layer.stats().absorbed, 1);
    assert!(run(&mut layer, t0, MS(9000 + 5000)).is_empty());
    assert!(layer.is_empty());
}

#[test]
fn invite_client_timer_a_doubles_until_timer_b() {
    let mut layer = Transactions::default();
    let t0 = Instant::now();
    let tx = layer.send_request(t0, invite("z9hG4bKi1"), udp()).unwrap();
    transmits(&mut layer);
    let sent = sent_until_timeout(&mut layer, t0, Duration::from_secs(32), tx);
    assert_eq!(times(&sent), vec![500, 1500, 3500, 7500, 15500, 31500]);
}

#[test]
fn reliable_transports_do_not_retransmit_but_still_time_out() {
    let mut layer = Transactions::default();
    let t0 = Instant::now();
    layer.send_request(t0, invite("z9hG4bKi2"), tcp()).unwrap();
    layer
        .send_request(t0, request("OPTIONS", "z9hG4bKo3", ""), tcp())
        .unwrap();
    transmits(&mut layer);
    assert!(run(&mut layer, t0, Duration::from_secs(40)).is_empty());
    assert_eq!(events(&mut layer).len(), 2);
    assert!(layer.is_empty());
}

#[test]
fn invite_client_acks_a_failure_and_absorbs_its_retransmissions_for_timer_d() {
    let mut layer = Transactions::default();
    let t0 = Instant::now();
    let invite = invite("z9hG4bKi3");
    layer.send_request(t0, invite.clone(), udp()).unwrap();
    transmits(&mut layer);
    let busy = answer(&invite, StatusCode::BUSY_HERE);
    layer.handle_message(t0 + MS(50), busy.clone(), udp());
    let acks = transmits(&mut layer);
    assert_eq!(acks.len(), 1);
    let ack = &acks[0];
    assert_eq!(ack.method().unwrap().as_str(), "ACK");
    assert_eq!(ack.branch(), Some("z9hG4bKi3"), "same branch as the INVITE");
    assert_eq!(ack.to_tag(), Some("b1"), "To of the response");
    assert_eq!(ack.cseq().unwrap().method, "ACK");
    assert_eq!(events(&mut layer).len(), 1);
    // The 486 again (our ACK was lost): the ACK again, nothing reported.
    layer.handle_message(t0 + MS(600), busy, udp());
    assert_eq!(transmits(&mut layer), vec![ack.clone()]);
    assert!(events(&mut layer).is_empty());
    // Timer D (32 s) ends it; no retransmission of the INVITE meanwhile.
    assert!(run(&mut layer, t0, Duration::from_secs(33)).is_empty());
    assert!(layer.is_empty());
}

#[test]
fn invite_server_sends_trying_then_retransmits_a_failure_until_the_ack() {
    let mut layer = Transactions::default();
    let t0 = Instant::now();
    let invite = invite("z9hG4bKs1");
    let tx = receive(&mut layer, t0, invite.clone(), udp());
    // The application says nothing for 200 ms: 100 Trying goes out.
    let sent = run(&mut layer, t0, MS(300));
    assert_eq!(times(&sent), vec![200]);
    assert_eq!(sent[0].1.status(), Some(StatusCode::TRYING));
    // A retransmitted INVITE gets the 100 again and is not reported.
    layer.handle_message(t0 + MS(500), invite.clone(), udp());
    assert_eq!(transmits(&mut layer)[0].status(), Some(StatusCode::TRYING));
    assert!(events(&mut layer).is_empty());
    // 486 at 1 s: timer G retransmits it at T1 doubling up to T2.
    let t1 = t0 + Duration::from_secs(1);
    layer
        .respond(t1, tx, &answer(&invite, StatusCode::BUSY_HERE))
        .unwrap();
    assert_eq!(transmits(&mut layer).len(), 1);
    let sent = run(&mut layer, t1, MS(16_000));
    assert_eq!(times(&sent), vec![500, 1500, 3500, 7500, 11500, 15500]);
    // The ACK: absorbed, no more retransmissions, gone after T4 (timer I).
    let ack = ack_for_failure("z9hG4bKs1");
    let at = t1 + MS(16_000);
    layer.handle_message(at, ack.clone(), udp());
    layer.handle_message(at + MS(10), ack, udp());
    assert!(
        events(&mut layer).is_empty(),
        "the ACK of a failure stays in the layer"
    );
    assert!(run(&mut layer, at, MS(5000)).is_empty());
    assert!(layer.is_empty());
}

#[test]
fn invite_server_without_an_ack_gives_up_at_timer_h() {
    let mut layer = Transactions::default();
    let t0 = Instant::now();
    answered(
        &mut layer,
        t0,
        &invite("z9hG4bKs2"),
        tcp(),
        StatusCode::BUSY_HERE,
    );
    // Over TCP no retransmission; timer H (64·T1) ends the wait.
    ends_at(&mut layer, t0, Duration::from_secs(32));
}

fn ack_for_2xx(branch: &str) -> Message {
    parse(&format!(
        "ACK sip:bob@127.0.0.1:5080 SIP/2.0\n\
         Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\n\
         From: <sip:alice@127.0.0.1>;tag=a1\n\
         To: <sip:bob@127.0.0.1>;tag=b1\n\
         Call-ID: call-1@127.0.0.1\nCSeq: 1 ACK\nMax-Forwards: 70\n\n"
    ))
}

#[test]
fn uas_retransmits_its_2xx_until_the_ack_arrives() {
    let mut layer = Transactions::default();
    let t0 = Instant::now();
    let invite = invite("z9hG4bKs3");
    answered(&mut layer, t0, &invite, udp(), StatusCode::OK);
    // The ACKs are lost for a while: the 2xx goes again at T1, 2·T1, 4·T1.
    let sent = run(&mut layer, t0, MS(4000));
    assert_eq!(times(&sent), vec![500, 1500, 3500]);
    assert!(sent.iter().all(|(_, m)| m.status() == Some(StatusCode::OK)));
    // A retransmitted INVITE is absorbed in Accepted (RFC 6026).
    layer.handle_message(t0 + MS(3600), invite.clone(), udp());
    assert!(events(&mut layer).is_empty());
    // The ACK (its own branch) stops the retransmissions and is reported.
    layer.handle_message(t0 + MS(4000), ack_for_2xx("z9hG4bKack3"), udp());
    assert!(matches!(
        events(&mut layer)[..],
        [Event::Request { tx: None, .. }]
    ));
    assert!(run(&mut layer, t0, Duration::from_secs(40)).is_empty());
    assert!(layer.is_empty());
}

#[test]
fn uas_reports_a_2xx_never_acknowledged() {
    let mut layer = Transactions::default();
    let t0 = Instant::now();
    let tx = answered(&mut layer, t0, &invite("z9hG4bKs4"), udp(), StatusCode::OK);
    let sent = run(&mut layer, t0, Duration::from_secs(40));
    assert_eq!(
        times(&sent),
        vec![
            500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
        ]
    );
    // The session it set up ends; with no address to send a BYE from (see
    // the dialog tests for that), the dialog is freed at once.
    assert!(matches!(
        events(&mut layer)[..],
        [Event::AckTimeout { tx: t }, Event::DialogEnded { .. }] if t == tx
    ));
    assert!(layer.is_empty());
    assert_eq!(layer.dialog_count(), 0);
}

#[test]
fn non_invite_server_answers_retransmissions_from_the_completed_state() {
    let mut layer = Transactions::default();
    let t0 = Instant::now();
    let options = request("OPTIONS", "z9hG4bKs5", "");
    let tx = receive(&mut layer, t0, options.clone(), udp());
    // Before any response, a retransmission is absorbed silently.
    layer.handle_message(t0 + MS(500), options.clone(), udp());
    assert!(transmits(&mut layer).is_empty());
    layer
        .respond(t0 + MS(600), tx, &answer(&options, StatusCode::OK))
        .unwrap();
    assert_eq!(transmits(&mut layer).len(), 1);
    layer.handle_message(t0 + MS(1500), options.clone(), udp());
    assert_eq!(transmits(&mut layer)[0].status(), Some(StatusCode::OK));
    assert!(events(&mut layer).is_empty());
    assert!(
        layer
            .respond(t0 + MS(1600), tx, &answer(&options, StatusCode::OK))
            .is_err()
    );
    // Timer J: 64·T1 over UDP.
    ends_at(&mut layer, t0 + MS(600), MS(32_000));
    // Over TCP the transaction ends with its final response.
    layer.handle_message(t0, request("OPTIONS", "z9hG4bKs6", ""), tcp());
    let Some(Event::Request {
        tx: Some(tx),
        request,
        ..
    }) = layer.poll_event()
    else {
        panic!("the OPTIONS is reported");
    };
    layer
        .respond(t0, tx, &answer(&request, StatusCode::OK))
        .unwrap();
    assert!(layer.is_empty());
}

#[test]
fn unanswered_server_transactions_are_freed() {
    let mut layer = Transactions::default();
    let t0 = Instant::now();
    layer.handle_message(t0, request("OPTIONS", "z9hG4bKs7", ""), udp());
    events(&mut layer);
    run(&mut layer, t0, Duration::from_secs(33));
    assert!(layer.is_empty(), "the client gave up at timer F; so do we");
}

#[test]
fn an_invite_never_answered_gets_408_from_the_layer() {
    let mut layer = Transactions::default();
    let t0 = Instant::now();
    receive(&mut layer, t0, invite("z9hG4bKs8"), tcp());
    let sent = run(&mut layer, t0, Duration::from_secs(181));
    let statuses: Vec<_> = sent
        .iter()
        .map(|(t, m)| (t.as_secs(), m.status()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (0, Some(StatusCode::TRYING)),
            (180, Some(StatusCode::REQUEST_TIMEOUT))
        ]
    );
    // Then it waits for the ACK (timer H) and is gone.
    run(&mut layer, t0, Duration::from_secs(180 + 33));
    assert!(layer.is_empty());
}

/// A configured layer's base timers: T1 = 100 ms, T2 = 1 s, T4 = 2 s
/// (none of them the default), so 64·T1 = 6.4 s.
fn fast() -> Transactions {
    let timers = Timers {
        t1: MS(100),
        t2: MS(1000),
        t4: MS(2000),
        ..Timers::default()
    };
    let default = Timers::default();
    assert!(timers.t1 != default.t1 && timers.t2 != default.t2 && timers.t4 != default.t4);
    Transactions::new(timers)
}

#[test]
fn configured_t1_and_t2_drive_timers_e_and_f_and_t4_timer_k() {
    let mut layer = fast();
    let t0 = Instant::now();
    let tx = layer
        .send_request(t0, request("OPTIONS", "z9hG4bKc1", ""), udp())
        .unwrap();
    assert_eq!(transmits(&mut layer).len(), 1);
    // Timer E: 100, 200, 400, 800 ms, then T2 (1 s) each time, until timer
    // F at 64·T1 = 6.4 s (so none at 6.5 s).
    let sent = sent_until_timeout(&mut layer, t0, MS(6400), tx);
    assert_eq!(
        times(&sent),
        vec![100, 300, 700, 1500, 2500, 3500, 4500, 5500]
    );

    // In Proceeding, E fires every T2; after the final, timer K is T4.
    let mut layer = fast();
    let options = request("OPTIONS", "z9hG4bKc2", "");
    layer.send_request(t0, options.clone(), udp()).unwrap();
    transmits(&mut layer);
    layer.handle_message(t0 + MS(50), answer(&options, StatusCode::TRYING), udp());
    let sent = run(&mut layer, t0, MS(2500));
    assert_eq!(times(&sent), vec![100, 1100, 2100]);
    layer.handle_message(t0 + MS(2500), answer(&options, StatusCode::OK), udp());
    assert_eq!(events(&mut layer).len(), 2, "100 and 200 reported");
    ends_at(&mut layer, t0 + MS(2500), MS(2000));
}

#[test]
fn configured_t1_drives_timers_a_and_b_which_t2_does_not_cap() {
    let mut layer = fast();
    let t0 = Instant::now();
    let tx = layer.send_request(t0, invite("z9hG4bKc3"), udp()).unwrap();
    transmits(&mut layer);
    // Timer A: T1 doubling each time, past T2 (no cap for an INVITE), until
    // timer B at 64·T1.
    let sent = sent_until_timeout(&mut layer, t0, MS(6400), tx);
    assert_eq!(times(&sent), vec![100, 300, 700, 1500, 3100, 6300]);
}

#[test]
fn configured_timers_drive_the_server_side_g_h_i_and_j() {
    let mut layer = fast();
    let t0 = Instant::now();
    // Timer G: the failure again at T1 doubling, capped at T2; timer H
    // gives up at 64·T1.
    let failed = StatusCode::BUSY_HERE;
    answered(&mut layer, t0, &invite("z9hG4bKc4"), udp(), failed);
    let sent = run(&mut layer, t0, MS(6399));
    assert_eq!(
        times(&sent),
        vec![100, 300, 700, 1500, 2500, 3500, 4500, 5500]
    );
    ends_at(&mut layer, t0, MS(6400));

    // Acknowledged: timer I keeps it for T4 to absorb ACK retransmissions.
    let mut layer = fast();
    answered(&mut layer, t0, &invite("z9hG4bKc5"), udp(), failed);
    assert_eq!(times(&run(&mut layer, t0, MS(1000))), vec![100, 300, 700]);
    layer.handle_message(t0 + MS(1000), ack_for_failure("z9hG4bKc5"), udp());
    ends_at(&mut layer, t0 + MS(1000), MS(2000));

    // Timer J: a non-INVITE server transaction answers retransmissions for
    // 64·T1 over UDP.
    let mut layer = fast();
    let options = request("OPTIONS", "z9hG4bKc6", "");
    answered(&mut layer, t0, &options, udp(), StatusCode::OK);
    ends_at(&mut layer, t0, MS(6400));
}
