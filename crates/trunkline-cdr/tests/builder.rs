//! The builder the call engine fills in: times, the disposition from how
//! the call ended, durations, and the SIP flow's cap.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use trunkline_cdr::{
    CallStart, CdrBuilder, CdrId, Direction, Disposition, Hangup, HangupCause, Party,
    SIP_FLOW_LIMIT, Side, SipDirection, SipFlowEntry, Timestamp,
};

const START: u64 = 1_700_000_000_000;

fn at(ms_after_start: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(START + ms_after_start)
}

fn call() -> CdrBuilder {
    CdrBuilder::new(CallStart {
        id: CdrId::new("call-1"),
        call_id: "abc@10.0.0.1".into(),
        caller: Party::new("1001", Some("Alice")),
        callee: Party::new("1002", Some("Bob")),
        source_channel: "extension/1001".into(),
        direction: Direction::Internal,
        time: at(0),
    })
}

fn millis(t: Option<Timestamp>) -> Option<i64> {
    t.map(|t| t.unix_millis() - START as i64)
}

#[test]
fn an_answered_call_counts_from_start_and_from_answer() {
    let mut c = call();
    c.ringing(at(800));
    c.answered(at(5_250));
    let cdr = c.end(
        at(65_249),
        Hangup::new(HangupCause::NormalClearing, Some(200), Side::Caller),
    );
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(millis(cdr.ring_time), Some(800));
    assert_eq!(millis(cdr.answer_time), Some(5_250));
    assert_eq!(millis(Some(cdr.end_time)), Some(65_249));
    // 65.249 s and 59.999 s, truncated.
    assert_eq!((cdr.duration, cdr.billsec), (65, 59));
    assert_eq!(cdr.hangup.by, Side::Caller);
}

#[test]
fn answered_is_answered_however_it_ended() {
    for cause in HangupCause::ALL {
        let mut c = call();
        c.answered(at(1_000));
        let cdr = c.end(at(3_000), Hangup::new(*cause, Some(200), Side::Pbx));
        assert_eq!(cdr.disposition, Disposition::Answered, "{cause}");
        assert_eq!(cdr.billsec, 2);
    }
}

#[test]
fn unanswered_calls_take_their_disposition_from_how_they_ended() {
    use Disposition::*;
    use HangupCause::*;
    let cases = [
        // The caller hung up while it rang: CANCEL, and 487 to the caller.
        (OriginatorCancel, Some(487), Side::Caller, NoAnswer),
        // The PBX's ring timeout, whatever it answered the caller with.
        (RingTimeout, Some(480), Side::Pbx, NoAnswer),
        (RingTimeout, Some(408), Side::Pbx, NoAnswer),
        (RingTimeout, None, Side::Pbx, NoAnswer),
        (Rejected, Some(486), Side::Callee, Busy),
        (Rejected, Some(600), Side::Callee, Busy),
        (Rejected, Some(480), Side::Callee, NoAnswer),
        (Rejected, Some(408), Side::Callee, NoAnswer),
        (Rejected, Some(487), Side::Pbx, NoAnswer),
        (Rejected, Some(603), Side::Callee, Failed),
        (Rejected, Some(404), Side::Pbx, Failed),
        (Rejected, Some(503), Side::Callee, Failed),
        (Failure, None, Side::Pbx, Failed),
        (Failure, Some(500), Side::Pbx, Failed),
    ];
    for (cause, status, by, expected) in cases {
        let mut c = call();
        c.ringing(at(500));
        let cdr = c.end(at(20_000), Hangup::new(cause, status, by));
        assert_eq!(cdr.disposition, expected, "{cause} {status:?}");
        assert_eq!(cdr.answer_time, None, "{cause} {status:?}");
        assert_eq!((cdr.duration, cdr.billsec), (20, 0));
        assert_eq!(cdr.hangup, Hangup::new(cause, status, by));
    }
}

#[test]
fn a_2xx_never_marked_answered_is_answered_at_the_end() {
    let cdr = call().end(
        at(4_000),
        Hangup::new(HangupCause::NormalClearing, Some(200), Side::Callee),
    );
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(cdr.answer_time, Some(cdr.end_time));
    assert_eq!((cdr.duration, cdr.billsec), (4, 0));
}

#[test]
fn the_first_ring_and_answer_count() {
    let mut c = call();
    c.ringing(at(100));
    c.ringing(at(900)); // a second fork rings
    c.answered(at(2_000));
    c.answered(at(2_500)); // a second 2xx of a fork
    let cdr = c.end(
        at(10_000),
        Hangup::new(HangupCause::NormalClearing, Some(200), Side::Callee),
    );
    assert_eq!(millis(cdr.ring_time), Some(100));
    assert_eq!(millis(cdr.answer_time), Some(2_000));
    assert_eq!(cdr.billsec, 8);
}

#[test]
fn a_clock_stepped_back_gives_zero_not_a_wrap() {
    let mut c = call();
    c.answered(at(10_000));
    let cdr = c.end(
        at(5_000),
        Hangup::new(HangupCause::NormalClearing, Some(200), Side::Caller),
    );
    assert_eq!((cdr.duration, cdr.billsec), (5, 0));
    let cdr = CdrBuilder::new(CallStart {
        time: at(9_000),
        ..start()
    })
    .end(
        at(1_000),
        Hangup::new(HangupCause::Failure, None, Side::Pbx),
    );
    assert_eq!((cdr.duration, cdr.billsec), (0, 0));
}

fn start() -> CallStart {
    CallStart {
        id: CdrId::new("call-2"),
        call_id: "def@10.0.0.1".into(),
        caller: Party::new("+441234567890", None),
        callee: Party::new("200", None),
        source_channel: "trunk/carrier-a".into(),
        direction: Direction::Inbound,
        time: at(0),
    }
}

#[test]
fn routing_sets_destination_and_direction() {
    let mut c = CdrBuilder::new(start());
    let unrouted = c.clone().end(
        at(100),
        Hangup::new(HangupCause::Rejected, Some(404), Side::Pbx),
    );
    assert_eq!(unrouted.destination_channel, None);
    assert_eq!(unrouted.direction, Direction::Inbound);
    c.routed("extension/200", Direction::Inbound);
    c.routed("trunk/carrier-b", Direction::Outbound); // forwarded out
    let cdr = c.end(at(100), Hangup::new(HangupCause::Failure, None, Side::Pbx));
    assert_eq!(cdr.destination_channel.as_deref(), Some("trunk/carrier-b"));
    assert_eq!(cdr.direction, Direction::Outbound);
    assert_eq!(cdr.id, CdrId::new("call-2"));
    assert_eq!(cdr.recording, None);
}

#[test]
fn the_sip_flow_keeps_order_and_is_capped() {
    let a: SocketAddr = "10.0.0.1:5060".parse().unwrap();
    let b: SocketAddr = "[2001:db8::1]:5061".parse().unwrap();
    let mut c = call();
    let total = SIP_FLOW_LIMIT + 5;
    for n in 0..total {
        let message = format!("OPTIONS sip:x SIP/2.0\r\nCSeq: {n} OPTIONS\r\n\r\n");
        c.push_sip(SipFlowEntry::new(
            at(n as u64),
            SipDirection::Received,
            "TLS",
            b,
            a,
            message,
        ));
    }
    let cdr = c.end(
        at(total as u64),
        Hangup::new(HangupCause::Failure, None, Side::Pbx),
    );
    assert_eq!(cdr.sip_flow.len(), SIP_FLOW_LIMIT);
    assert_eq!(cdr.sip_flow_omitted, 5);
    for (n, entry) in cdr.sip_flow.iter().enumerate() {
        assert!(entry.message.contains(&format!("CSeq: {n} OPTIONS")));
        assert_eq!(entry.source, b);
    }
}
