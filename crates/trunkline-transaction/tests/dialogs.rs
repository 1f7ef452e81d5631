//! Dialogs (RFC 3261 §12) between two transaction layers joined by a
//! virtual network: created by 1xx and 2xx on both sides, confirmed, used
//! for in-dialog requests, refreshed (re-INVITE, UPDATE), and ended and
//! freed by the layer.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::time::{Duration, Instant};
use trunkline_sip::{HeaderName, Message, Method, StatusCode};
use trunkline_transaction::{
    ClientTxId, DialogId, DialogState, Event, Peer, ServerTxId, Transactions, Transport,
};

const ALICE: u16 = 5070;
const BOB: u16 = 5080;
/// A proxy on the path that asked to stay in it (Record-Route).
const PROXY: u16 = 5090;

fn udp(port: u16) -> Peer {
    Peer::new(Transport::Udp, format!("127.0.0.1:{port}").parse().unwrap())
}

/// Alice's and Bob's transaction layers and a clock.
struct Net {
    alice: Transactions,
    bob: Transactions,
    now: Instant,
}

impl Net {
    fn new() -> Net {
        let mut alice = Transactions::default();
        alice.set_sent_by(Transport::Udp, format!("127.0.0.1:{ALICE}"));
        let mut bob = Transactions::default();
        bob.set_sent_by(Transport::Udp, format!("127.0.0.1:{BOB}"));
        Net {
            alice,
            bob,
            now: Instant::now(),
        }
    }

    /// Delivers what each side sent to the other, until both are quiet;
    /// returns every message that crossed, in order.
    fn exchange(&mut self) -> Vec<Message> {
        let mut crossed = Vec::new();
        for _ in 0..100 {
            let mut moved = false;
            while let Some(t) = self.alice.poll_transmit() {
                let m = Message::parse(t.bytes).unwrap();
                crossed.push(m.clone());
                self.bob.handle_message(self.now, m, udp(ALICE));
                moved = true;
            }
            while let Some(t) = self.bob.poll_transmit() {
                let m = Message::parse(t.bytes).unwrap();
                crossed.push(m.clone());
                self.alice.handle_message(self.now, m, udp(BOB));
                moved = true;
            }
            if !moved {
                return crossed;
            }
        }
        panic!("the two sides never go quiet");
    }

    /// Bob answers `request` on `tx` with `status`; the answer crosses.
    fn bob_answers(&mut self, tx: ServerTxId, request: &Message, status: StatusCode) {
        self.bob
            .respond(self.now, tx, &answer(request, status))
            .unwrap();
        self.exchange();
    }

    /// Runs both sides' timers for `span`, delivering as it goes.
    fn wait(&mut self, span: Duration) {
        let end = self.now + span;
        for _ in 0..10_000 {
            let next = [self.alice.poll_timeout(), self.bob.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = at;
                    self.alice.handle_timeout(at);
                    self.bob.handle_timeout(at);
                    self.exchange();
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
        panic!("timers never settle");
    }
}

fn events(layer: &mut Transactions) -> Vec<Event> {
    std::iter::from_fn(|| layer.poll_event()).collect()
}

fn invite(net: &Net, call_id: &str) -> Message {
    let via = net.alice.via(Transport::Udp).unwrap();
    Message::parse_slice(
        format!(
            "INVITE sip:bob@127.0.0.1:{BOB} SIP/2.0\r\n\
             Via: {via}\r\n\
             Record-Route: <sip:127.0.0.1:{PROXY};lr>\r\n\
             From: \"Alice\" <sip:alice@127.0.0.1>;tag=a1\r\n\
             To: <sip:bob@127.0.0.1>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 10 INVITE\r\n\
             Contact: <sip:alice@127.0.0.1:{ALICE}>\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap()
}

/// Bob's answer: Contact, the Record-Route of the request, To tag `b1`.
fn answer(request: &Message, status: StatusCode) -> Message {
    let mut builder = request
        .response_to(status)
        .to_tag("b1")
        .header(HeaderName::Contact, format!("<sip:bob@127.0.0.1:{BOB}>"));
    for rr in request.header_values(HeaderName::RecordRoute) {
        builder = builder.header(HeaderName::RecordRoute, rr.to_owned());
    }
    builder.build().unwrap()
}

/// Alice calls; Bob's side reports the INVITE.
fn call(net: &mut Net, call_id: &str) -> (ClientTxId, ServerTxId, Message) {
    let invite = invite(net, call_id);
    let tx = net.alice.send_request(net.now, invite, udp(BOB)).unwrap();
    net.exchange();
    match &events(&mut net.bob)[..] {
        [
            Event::Request {
                tx: Some(stx),
                request,
                dialog: None,
                ..
            },
        ] => (tx, *stx, request.clone()),
        other => panic!("{other:?}"),
    }
}

/// The one request reported, which must belong to `dialog`.
fn in_dialog(events: &[Event], dialog: &DialogId) -> (ServerTxId, Message) {
    match events {
        [
            Event::Request {
                tx: Some(t),
                request,
                dialog: Some(d),
                ..
            },
        ] if d == dialog => (*t, request.clone()),
        other => panic!("expected one request in {dialog:?}: {other:?}"),
    }
}

fn response_dialog(events: &[Event]) -> DialogId {
    match events {
        [
            Event::Response {
                dialog: Some(d), ..
            },
        ] => d.clone(),
        other => panic!("expected one response in a dialog: {other:?}"),
    }
}

/// Answers the call and acknowledges it: a confirmed dialog on both sides.
fn answered_call(net: &mut Net, call_id: &str) -> (DialogId, DialogId) {
    let (tx, stx, request) = call(net, call_id);
    net.bob_answers(stx, &request, StatusCode::OK);
    let alice_dialog = response_dialog(&events(&mut net.alice));
    let ack = net
        .alice
        .ack_in_dialog(&alice_dialog, 10)
        .unwrap()
        .build()
        .unwrap();
    let hop = net.alice.dialog(&alice_dialog).unwrap().next_hop();
    net.alice.send_ack(tx, ack, hop).unwrap();
    net.exchange();
    let bob_dialog = match &events(&mut net.bob)[..] {
        [
            Event::Request {
                tx: None,
                dialog: Some(d),
                request,
                ..
            },
        ] => {
            assert_eq!(request.method(), Some(&Method::Ack));
            d.clone()
        }
        other => panic!("expected the ACK in the dialog: {other:?}"),
    };
    (alice_dialog, bob_dialog)
}

#[test]
fn a_call_sets_up_a_dialog_on_both_sides_and_bye_frees_both() {
    let mut net = Net::new();
    let (tx, stx, request) = call(&mut net, "call-d1");
    // 180 with a tag: an early dialog on both sides.
    net.bob_answers(stx, &request, StatusCode::RINGING);
    let early = response_dialog(&events(&mut net.alice));
    assert_eq!(
        net.alice.dialog(&early).unwrap().state(),
        DialogState::Early
    );
    assert_eq!(net.bob.dialog_count(), 1);
    // 200: the same dialog, confirmed.
    net.bob_answers(stx, &request, StatusCode::OK);
    assert_eq!(response_dialog(&events(&mut net.alice)), early);
    let d = net.alice.dialog(&early).unwrap();
    assert_eq!(d.state(), DialogState::Confirmed);
    assert_eq!(d.remote_target(), format!("sip:bob@127.0.0.1:{BOB}"));
    assert_eq!(d.route_set().len(), 1);
    assert_eq!(
        d.next_hop(),
        udp(PROXY),
        "the recorded proxy is the next hop"
    );
    assert_eq!(d.local_seq(), 10);
    // The ACK, built from the dialog.
    let ack = net
        .alice
        .ack_in_dialog(&early, 10)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(ack.cseq().unwrap().seq, 10);
    assert_eq!(
        ack.uri_str(),
        Some(format!("sip:bob@127.0.0.1:{BOB}").as_str())
    );
    assert_eq!(
        ack.header(HeaderName::Route),
        Some(format!("<sip:127.0.0.1:{PROXY};lr>").as_str())
    );
    net.alice.send_ack(tx, ack, udp(PROXY)).unwrap();
    net.exchange();
    let bob_dialog = match &events(&mut net.bob)[..] {
        [
            Event::Request {
                tx: None,
                dialog: Some(d),
                ..
            },
        ] => d.clone(),
        other => panic!("expected the ACK in the dialog: {other:?}"),
    };

    // Bob hangs up: his BYE goes through the proxy to Alice's Contact.
    let bye = net
        .bob
        .request_in_dialog(&bob_dialog, Method::Bye)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(
        bye.uri_str(),
        Some(format!("sip:alice@127.0.0.1:{ALICE}").as_str())
    );
    assert_eq!(bye.cseq().unwrap().seq, 1);
    assert_eq!(bye.from_tag(), Some("b1"));
    assert_eq!(bye.to_tag(), Some("a1"));
    net.bob.send_in_dialog(net.now, &bob_dialog, bye).unwrap();
    assert!(
        net.bob
            .request_in_dialog(&bob_dialog, Method::Info)
            .is_err(),
        "ending"
    );
    net.exchange();
    let (btx, bye) = in_dialog(&events(&mut net.alice), &early);
    let ok = bye.response_to(StatusCode::OK).build().unwrap();
    net.alice.respond(net.now, btx, &ok).unwrap();
    assert!(matches!(&events(&mut net.alice)[..], [Event::DialogEnded { id }] if *id == early));
    net.exchange();
    assert!(matches!(
        &events(&mut net.bob)[..],
        [Event::Response { .. }, Event::DialogEnded { id }] if *id == bob_dialog
    ));
    assert_eq!((net.alice.dialog_count(), net.bob.dialog_count()), (0, 0));
    net.wait(Duration::from_secs(40));
    assert!(
        net.alice.is_empty() && net.bob.is_empty(),
        "nothing left behind"
    );
}

#[test]
fn a_failure_ends_the_early_dialog_on_both_sides() {
    let mut net = Net::new();
    let (_, stx, request) = call(&mut net, "call-d2");
    net.bob_answers(stx, &request, StatusCode::RINGING);
    let early = response_dialog(&events(&mut net.alice));
    net.bob
        .respond(net.now, stx, &answer(&request, StatusCode::BUSY_HERE))
        .unwrap();
    assert!(matches!(
        &events(&mut net.bob)[..],
        [Event::DialogEnded { .. }]
    ));
    net.exchange();
    assert!(matches!(
        &events(&mut net.alice)[..],
        [Event::Response { dialog: None, .. }, Event::DialogEnded { id }] if *id == early
    ));
    assert_eq!((net.alice.dialog_count(), net.bob.dialog_count()), (0, 0));
    net.wait(Duration::from_secs(40));
    assert!(net.alice.is_empty() && net.bob.is_empty());
}

/// Alice sends `method` in her dialog with `contact` as her Contact; Bob's
/// side reports it in his dialog: its transaction and the request.
fn alice_sends_from(
    net: &mut Net,
    (alice_dialog, bob_dialog): (&DialogId, &DialogId),
    method: Method,
    contact: &str,
) -> (ServerTxId, Message) {
    let request = net
        .alice
        .request_in_dialog(alice_dialog, method.clone())
        .unwrap()
        .header(HeaderName::Contact, contact)
        .build()
        .unwrap();
    net.alice
        .send_in_dialog(net.now, alice_dialog, request)
        .unwrap();
    net.exchange();
    let (stx, seen) = in_dialog(&events(&mut net.bob), bob_dialog);
    assert_eq!(seen.method(), Some(&method));
    (stx, seen)
}

/// Bob answers `request` 200 with `contact` as his Contact; Alice's side
/// reports it in `alice_dialog`.
fn bob_answers_from(
    net: &mut Net,
    (stx, request): (ServerTxId, &Message),
    contact: &str,
    alice_dialog: &DialogId,
) {
    let ok = request
        .response_to(StatusCode::OK)
        .header(HeaderName::Contact, contact)
        .build()
        .unwrap();
    net.bob.respond(net.now, stx, &ok).unwrap();
    net.exchange();
    assert_eq!(response_dialog(&events(&mut net.alice)), *alice_dialog);
}

fn target(layer: &Transactions, dialog: &DialogId) -> String {
    layer.dialog(dialog).unwrap().remote_target().to_owned()
}

#[test]
fn a_reinvite_refreshes_the_target_and_cseq_order_is_enforced() {
    let mut net = Net::new();
    let (alice_dialog, bob_dialog) = answered_call(&mut net, "call-d3");
    // Alice moved: her re-INVITE carries a new Contact.
    let dialogs = (&alice_dialog, &bob_dialog);
    let (stx, seen) = alice_sends_from(
        &mut net,
        dialogs,
        Method::Invite,
        "<sip:alice@127.0.0.1:6000>",
    );
    assert_eq!(seen.cseq().unwrap().seq, 11);
    assert_eq!(target(&net.bob, &bob_dialog), "sip:alice@127.0.0.1:6000");
    net.bob_answers(stx, &seen, StatusCode::OK);
    events(&mut net.alice);
    // A request with a CSeq below the last one is out of order: 500.
    let mut stale = net
        .alice
        .request_in_dialog(&alice_dialog, Method::Info)
        .unwrap();
    stale = stale.set(HeaderName::CSeq, "5 INFO");
    net.alice
        .send_in_dialog(net.now, &alice_dialog, stale.build().unwrap())
        .unwrap();
    let crossed = net.exchange();
    assert_eq!(
        crossed.last().unwrap().status(),
        Some(StatusCode::SERVER_INTERNAL_ERROR)
    );
    assert!(events(&mut net.bob).is_empty());
}

#[test]
fn an_update_refreshes_the_remote_target_on_both_sides() {
    let mut net = Net::new();
    let (alice_dialog, bob_dialog) = answered_call(&mut net, "call-d7");
    let dialogs = (&alice_dialog, &bob_dialog);
    // Alice moved: her UPDATE (RFC 3311) carries a new Contact.
    let (stx, seen) = alice_sends_from(
        &mut net,
        dialogs,
        Method::Update,
        "<sip:alice@127.0.0.1:6000>",
    );
    assert_eq!(seen.cseq().unwrap().seq, 11);
    assert_eq!(
        target(&net.bob, &bob_dialog),
        "sip:alice@127.0.0.1:6000",
        "the UAS takes the UPDATE's Contact"
    );
    // Bob moved too: his 200 to the UPDATE carries his new Contact.
    bob_answers_from(
        &mut net,
        (stx, &seen),
        "<sip:bob@127.0.0.1:7000>",
        &alice_dialog,
    );
    assert_eq!(
        target(&net.alice, &alice_dialog),
        "sip:bob@127.0.0.1:7000",
        "the UAC takes the 2xx's Contact"
    );
    // Requests built from the dialogs now go to the new targets.
    let info = net.alice.request_in_dialog(&alice_dialog, Method::Info);
    let info = info.unwrap().build().unwrap();
    assert_eq!(info.uri_str(), Some("sip:bob@127.0.0.1:7000"));
    let bye = net.bob.request_in_dialog(&bob_dialog, Method::Bye);
    let bye = bye.unwrap().build().unwrap();
    assert_eq!(bye.uri_str(), Some("sip:alice@127.0.0.1:6000"));

    // INFO is no target refresh: its Contact, and its 200's, change
    // nothing (§12.2).
    let (stx, seen) = alice_sends_from(
        &mut net,
        dialogs,
        Method::Info,
        "<sip:alice@127.0.0.1:6666>",
    );
    assert_eq!(target(&net.bob, &bob_dialog), "sip:alice@127.0.0.1:6000");
    bob_answers_from(
        &mut net,
        (stx, &seen),
        "<sip:bob@127.0.0.1:7777>",
        &alice_dialog,
    );
    assert_eq!(target(&net.alice, &alice_dialog), "sip:bob@127.0.0.1:7000");
}

#[test]
fn a_request_for_an_unknown_dialog_gets_481_which_ends_the_senders_dialog() {
    let mut net = Net::new();
    let (alice_dialog, bob_dialog) = answered_call(&mut net, "call-d4");
    // Bob forgets the call (a restart, say) without telling Alice.
    let mut forgetful = Transactions::default();
    forgetful.set_sent_by(Transport::Udp, format!("127.0.0.1:{BOB}"));
    net.bob = forgetful;
    let info = net
        .alice
        .request_in_dialog(&alice_dialog, Method::Info)
        .unwrap();
    net.alice
        .send_in_dialog(net.now, &alice_dialog, info.build().unwrap())
        .unwrap();
    let crossed = net.exchange();
    assert_eq!(
        crossed.last().unwrap().status(),
        Some(StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST)
    );
    assert!(
        events(&mut net.bob).is_empty(),
        "not reported to Bob's application"
    );
    assert!(matches!(
        &events(&mut net.alice)[..],
        [Event::Response { .. }, Event::DialogEnded { id }] if *id == alice_dialog
    ));
    assert_eq!(net.alice.dialog_count(), 0);
    let _ = bob_dialog;
}

#[test]
fn an_unacknowledged_answer_is_hung_up_by_the_layer() {
    let mut net = Net::new();
    let (_, stx, request) = call(&mut net, "call-d5");
    net.bob_answers(stx, &request, StatusCode::OK);
    let alice_dialog = response_dialog(&events(&mut net.alice));
    // Alice never ACKs. After 64·T1 Bob's layer sends the BYE itself.
    net.wait(Duration::from_secs(33));
    let bob_events = events(&mut net.bob);
    assert!(
        matches!(bob_events[0], Event::AckTimeout { tx } if tx == stx),
        "{bob_events:?}"
    );
    let alice_events = events(&mut net.alice);
    let (btx, bye) = match &alice_events[..] {
        [
            Event::Request {
                tx: Some(t),
                request,
                ..
            },
        ] => (*t, request.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(bye.method(), Some(&Method::Bye));
    net.alice
        .respond(
            net.now,
            btx,
            &bye.response_to(StatusCode::OK).build().unwrap(),
        )
        .unwrap();
    assert!(
        matches!(&events(&mut net.alice)[..], [Event::DialogEnded { id }] if *id == alice_dialog)
    );
    net.exchange();
    assert!(
        events(&mut net.bob)
            .iter()
            .any(|e| matches!(e, Event::DialogEnded { .. }))
    );
    net.wait(Duration::from_secs(40));
    assert!(net.alice.is_empty() && net.bob.is_empty());
    assert_eq!((net.alice.dialog_count(), net.bob.dialog_count()), (0, 0));
}

#[test]
fn strict_routing_puts_the_first_route_in_the_request_uri() {
    let mut net = Net::new();
    let (_, stx, request) = call(&mut net, "call-d6");
    // A strict router (no `lr`) recorded itself.
    let ok = request
        .response_to(StatusCode::OK)
        .to_tag("b1")
        .header(HeaderName::Contact, format!("<sip:bob@127.0.0.1:{BOB}>"))
        .header(HeaderName::RecordRoute, "<sip:127.0.0.1:5091>")
        .build()
        .unwrap();
    net.bob.respond(net.now, stx, &ok).unwrap();
    net.exchange();
    let dialog = response_dialog(&events(&mut net.alice));
    let bye = net
        .alice
        .request_in_dialog(&dialog, Method::Bye)
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(bye.uri_str(), Some("sip:127.0.0.1:5091"));
    assert_eq!(
        bye.header(HeaderName::Route),
        Some(format!("<sip:bob@127.0.0.1:{BOB}>").as_str()),
        "the remote target becomes the last route"
    );
}

#[test]
fn a_thousand_calls_leave_nothing_behind() {
    let mut net = Net::new();
    for n in 0..1000 {
        let (alice_dialog, _) = answered_call(&mut net, &format!("call-bulk-{n}"));
        let bye = net
            .alice
            .request_in_dialog(&alice_dialog, Method::Bye)
            .unwrap();
        net.alice
            .send_in_dialog(net.now, &alice_dialog, bye.build().unwrap())
            .unwrap();
        net.exchange();
        for e in events(&mut net.bob) {
            if let Event::Request {
                tx: Some(t),
                request,
                ..
            } = e
            {
                let ok = request.response_to(StatusCode::OK).build().unwrap();
                net.bob.respond(net.now, t, &ok).unwrap();
            }
        }
        assert!(matches!(
            &events(&mut net.bob)[..],
            [Event::DialogEnded { .. }]
        ));
        net.exchange();
        assert!(matches!(
            &events(&mut net.alice)[..],
            [Event::Response { .. }, Event::DialogEnded { id }] if *id == alice_dialog
        ));
        net.now += Duration::from_millis(10);
    }
    assert_eq!((net.alice.dialog_count(), net.bob.dialog_count()), (0, 0));
    net.wait(Duration::from_secs(40));
    assert!(net.alice.is_empty() && net.bob.is_empty());
}
