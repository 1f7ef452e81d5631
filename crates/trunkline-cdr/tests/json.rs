//! The record's JSON, the `calllog.json` of webhooks and the REST API, is
//! pinned byte for byte to `tests/data/calllog.json` (which the crate
//! documentation shows), and reads back to the same record.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use trunkline_cdr::{
    CallStart, Cdr, CdrBuilder, CdrId, Direction, Hangup, HangupCause, Party, Side, SipDirection,
    SipFlowEntry, Timestamp,
};

const PINNED: &str = include_str!("data/calllog.json");

fn at(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// The documented example, made the way the call engine makes records.
fn sample() -> Cdr {
    let phone: SocketAddr = "192.168.1.20:5060".parse().unwrap();
    let pbx: SocketAddr = "203.0.113.10:5060".parse().unwrap();
    let start = 1_741_944_413_589;
    let mut call = CdrBuilder::new(CallStart {
        id: CdrId::new("019593fa-5d95-7c3d-9f4e-2b8c1d0e6a71"),
        call_id: "a84b4c76e66710@192.168.1.20".into(),
        caller: Party::new("1001", Some("Alice")),
        callee: Party::new("+14155550123", None),
        source_channel: "extension/1001".into(),
        direction: Direction::Internal,
        time: at(start),
    });
    call.push_sip(SipFlowEntry::new(
        at(start),
        SipDirection::Received,
        "UDP",
        phone,
        pbx,
        "INVITE sip:+14155550123@pbx.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK776asdhds\r\n\
         Max-Forwards: 70\r\n\
         From: \"Alice\" <sip:1001@pbx.example.com>;tag=1928301774\r\n\
         To: <sip:+14155550123@pbx.example.com>\r\n\
         Call-ID: a84b4c76e66710@192.168.1.20\r\n\
         CSeq: 314159 INVITE\r\n\
         Contact: <sip:1001@192.168.1.20:5060>\r\n\
         Content-Length: 0\r\n\r\n",
    ));
    // Routing found the number is external.
    call.routed("trunk/carrier-a", Direction::Outbound);
    call.ringing(at(start + 1_204));
    call.push_sip(SipFlowEntry::new(
        at(start + 1_204),
        SipDirection::Sent,
        "UDP",
        pbx,
        phone,
        "SIP/2.0 180 Ringing\r\n\
         Via: SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK776asdhds\r\n\
         From: \"Alice\" <sip:1001@pbx.example.com>;tag=1928301774\r\n\
         To: <sip:+14155550123@pbx.example.com>;tag=a6c85cf\r\n\
         Call-ID: a84b4c76e66710@192.168.1.20\r\n\
         CSeq: 314159 INVITE\r\n\
         Content-Length: 0\r\n\r\n",
    ));
    call.answered(at(start + 7_500));
    call.recording(format!("recordings/2025/03/14/{}.wav", call.id()));
    call.end(
        at(start + 131_751),
        Hangup {
            cause: HangupCause::NormalClearing,
            sip_status: Some(200),
            reason: Some("Q.850;cause=16;text=\"Normal call clearing\"".into()),
            by: Side::Callee,
        },
    )
}

#[test]
fn the_json_is_pinned() {
    let json = serde_json::to_string_pretty(&sample()).unwrap();
    assert_eq!(json, PINNED.trim_end());
}

#[test]
fn the_json_reads_back_to_the_record() {
    let read: Cdr = serde_json::from_str(PINNED).unwrap();
    assert_eq!(read, sample());
    assert_eq!(read.sip_flow[1].start_line(), "SIP/2.0 180 Ringing");
}

#[test]
fn compact_json_keeps_the_order_and_every_key() {
    let mut record = sample();
    record.recording = None;
    record.ring_time = None;
    let json = serde_json::to_string(&record).unwrap();
    assert!(
        json.starts_with(r#"{"id":"019593fa-5d95-7c3d-9f4e-2b8c1d0e6a71","call_id":"#),
        "{json}"
    );
    assert!(
        json.contains(r#""ring_time":null,"answer_time":"#),
        "{json}"
    );
    assert!(json.contains(r#""recording":null,"sip_flow":["#), "{json}");
    assert!(json.ends_with(r#""sip_flow_omitted":0}"#), "{json}");
}

#[test]
fn times_in_any_rfc3339_form_are_read() {
    let json = PINNED.replace("2025-03-14T09:26:53.589Z", "2025-03-14T10:26:53.589+01:00");
    let read: Cdr = serde_json::from_str(&json).unwrap();
    assert_eq!(read, sample());
    let bad = PINNED.replace("2025-03-14T09:26:53.589Z", "14 Mar 2025 09:26:53 GMT");
    let err = serde_json::from_str::<Cdr>(&bad).unwrap_err().to_string();
    assert!(err.contains("not an RFC 3339 timestamp"), "{err}");
}

#[test]
fn unknown_names_are_refused() {
    let bad = PINNED.replace("\"ANSWERED\"", "\"answered\"");
    let err = serde_json::from_str::<Cdr>(&bad).unwrap_err().to_string();
    assert!(err.contains("\"answered\" is not a Disposition"), "{err}");
}

#[test]
fn timestamps_convert_at_the_edges() {
    let record = sample();
    assert_eq!(record.start_time.to_system_time(), at(1_741_944_413_589));
    assert_eq!(
        Timestamp::from(at(1_741_944_413_589)).to_string(),
        "2025-03-14T09:26:53.589Z"
    );
}
