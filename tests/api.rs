//! The HTTP API of the real binary: a SIPp call through the PBX shows in
//! the active calls while it lasts, then its record and SIP ladder come
//! back from the console routes with an API key.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::time::{Duration, Instant};
use trunkline_e2e::*;

const KEY: &str = "test-read-key-0123456789";

#[test]
fn a_call_is_listed_while_active_then_its_record_and_ladder_are_served() {
    let pbx = Pbx::start(&format!(
        "{EXTENSIONS}\n[api]\nkeys = [{{ name = \"tests\", key = \"{KEY}\", scope = \"read\" }}]\n"
    ));
    let callee = phone(&pbx, "1002", "second-secret", "uas_answer.xml");
    let listed = std::thread::scope(|scope| {
        let caller = scope.spawn(|| call_as_1001(&pbx, "call_answered.xml", "1002"));
        // The caller talks for a second after the answer: the call is
        // listed as answered meanwhile.
        let deadline = Instant::now() + Duration::from_secs(10);
        let listed = loop {
            let active = pbx.json_as("/console/calls/active", KEY);
            let calls = active["calls"].as_array().unwrap();
            if let Some(call) = calls.iter().find(|c| c["state"] == "answered") {
                break call.clone();
            }
            assert!(
                Instant::now() < deadline,
                "never listed as answered: {active}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        caller.join().unwrap();
        listed
    });
    phones_done(&pbx, vec![("1002", callee)]);
    assert_eq!(
        (listed["caller"].as_str(), listed["callee"].as_str()),
        (Some("1001"), Some("1002"))
    );
    let active = pbx.json_as("/console/calls/active", KEY);
    assert_eq!(active["calls"], serde_json::json!([]), "{active}");

    // Without a key: 401 in JSON.
    let (status, body) = pbx.get("/console/call-records");
    assert_eq!(status, 401, "{body}");

    let page = pbx.json_as("/console/call-records?party=1001&disposition=ANSWERED", KEY);
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{page}");
    assert!(page["next"].is_null(), "{page}");
    let record = &records[0];
    let id = record["id"].as_str().unwrap();
    assert_eq!(id, listed["id"], "the listing named the record to come");
    assert_eq!(record["caller"]["number"], "1001");
    assert_eq!(record["callee"]["number"], "1002");

    let flow = pbx.json_as(&format!("/console/call-records/{id}/sip-flow"), KEY);
    assert_eq!(flow["call_id"], record["call_id"]);
    let ladder: Vec<String> = flow["sip_flow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let message = entry["message"].as_str().unwrap();
            message.lines().next().unwrap().to_owned()
        })
        .collect();
    for start in [
        "INVITE sip:1002@",
        "SIP/2.0 180",
        "SIP/2.0 200",
        "ACK ",
        "BYE ",
    ] {
        assert!(
            ladder.iter().any(|l| l.starts_with(start)),
            "{start}: {ladder:?}"
        );
    }
    assert_eq!(flow["sip_flow"], record["sip_flow"]);

    let (status, metrics) = pbx.get_as("/metrics", Some(KEY));
    assert_eq!(status, 200);
    assert!(
        metrics.lines().any(|l| l == "trunkline_calls_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l == "trunkline_active_calls 0"),
        "{metrics}"
    );
}
