//! Calls through the engine over real loopback sockets. The phones are
//! SIP user agents on Trunkline's own transaction layer: they register
//! with digest, call with digest, answer, refuse, cancel, hold and hang
//! up, and send RTP through the relay.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::*;
use std::time::Duration;
use tokio::time::timeout;
use trunkline_cdr::Disposition;
use trunkline_engine::CallEvent;
use trunkline_sip::{Method, StatusCode};
use trunkline_transaction::{ClientEvent, EndpointEvent};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_relays_media_and_leaves_a_record() {
    let pbx = pbx(|_| {}, 30000).await;
    let mut events = pbx.engine.subscribe();
    let alice = Phone::new("1001", "secret1", pbx.addr).await;
    let mut bob = Phone::new("1002", "secret2", pbx.addr).await;
    bob.register().await;

    let (mut invite, call_id) = alice.call("1002", alice.sdp("sendrecv")).await;
    let (tx, offer) = bob.incoming().await;
    let offered_to_bob = media_of(&offer);
    assert_ne!(
        offered_to_bob,
        alice.rtp.local_addr().unwrap(),
        "anchored, not direct"
    );
    bob.answer(tx, &offer, StatusCode::RINGING, None);
    let b_dialog = bob.answer(tx, &offer, StatusCode::OK, Some(bob.sdp("sendrecv")));
    let (ok, a_dialog) = alice.answered(&mut invite).await;
    let offered_to_alice = media_of(&ok);
    assert_ne!(offered_to_alice, bob.rtp.local_addr().unwrap());
    // Listed as answered (the summary changes just after the 200 is sent).
    let listed = answered_listing(&pbx.engine).await;
    assert_eq!(
        (listed.caller.as_str(), listed.callee.as_str()),
        ("1001", "1002")
    );
    assert_eq!(listed.call_id, call_id);
    assert!(listed.answered_at.is_some() && listed.answered_at >= Some(listed.started));
    let listed_id = listed.id.clone();

    // Media both ways through the relay.
    alice.rtp.send_to(&rtp_packet(1), offered_to_alice).unwrap();
    let mut buf = [0; 1500];
    let (n, _) = bob.rtp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &rtp_packet(1)[..]);
    bob.rtp.send_to(&rtp_packet(2), offered_to_bob).unwrap();
    let (n, _) = alice.rtp.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &rtp_packet(2)[..]);

    // The caller hangs up: the callee gets the BYE.
    let mut bye_tx = alice.hang_up(&a_dialog);
    bob.answer_in_dialog(Method::Bye).await;
    assert_eq!(final_of(&mut bye_tx).await.0.status(), Some(StatusCode::OK));
    let _ = b_dialog;

    assert_eq!(
        next_ended(&mut events).await,
        ("ANSWERED".to_owned(), Some(200))
    );
    idle(&pbx.engine).await;
    let records = stored(&pbx);
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.id, listed_id, "the listing names the record to come");
    assert_eq!(
        (record.caller.number.as_str(), record.callee.number.as_str()),
        ("1001", "1002")
    );
    assert!(record.answer_time.is_some() && record.ring_time.is_some());
    let ladder: Vec<&str> = record.sip_flow.iter().map(|e| e.start_line()).collect();
    assert!(
        ladder.iter().any(|l| l.starts_with("INVITE sip:1002@")),
        "{ladder:?}"
    );
    assert!(
        ladder.iter().any(|l| l.starts_with("SIP/2.0 180")),
        "{ladder:?}"
    );
    assert!(ladder.iter().any(|l| l.starts_with("BYE ")), "{ladder:?}");
}

/// The engine's only call in progress once it is listed as answered
/// (waits up to 2 s).
async fn answered_listing(engine: &TestEngine) -> trunkline_engine::ActiveCall {
    for _ in 0..100 {
        if let [call] = engine.active_calls().as_slice()
            && call.state == trunkline_engine::CallState::Answered
        {
            return call.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not listed as answered: {:?}", engine.active_calls());
}

fn rtp_packet(seq: u16) -> Vec<u8> {
    let header = trunkline_media::rtp::RtpHeader {
        payload_type: 0,
        sequence: seq,
        timestamp: u32::from(seq) * 160,
        ssrc: 42,
        ..Default::default()
    };
    let mut buf = vec![0; 200];
    let n = header.write(&[0xff; 160], &mut buf).unwrap();
    buf.truncate(n);
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_unregistered_cancelled_and_unanswered_calls() {
    let pbx = pbx(|c| c.ring_timeout = Duration::from_millis(800), 30100).await;
    let mut events = pbx.engine.subscribe();
    let alice = Phone::new("1001", "secret1", pbx.addr).await;
    let mut bob = Phone::new("1002", "secret2", pbx.addr).await;

    // Not registered: 480, counted as no answer (as a 480 from a phone).
    let (mut invite, _) = alice.call("1002", alice.sdp("sendrecv")).await;
    assert_eq!(
        final_of(&mut invite).await.0.status(),
        Some(StatusCode::TEMPORARILY_UNAVAILABLE)
    );
    assert_eq!(
        next_ended(&mut events).await,
        ("NO ANSWER".to_owned(), Some(480))
    );

    bob.register().await;
    // Busy: the callee's 486 reaches the caller.
    let (mut invite, _) = alice.call("1002", alice.sdp("sendrecv")).await;
    let (tx, offer) = bob.incoming().await;
    bob.answer(tx, &offer, StatusCode::BUSY_HERE, None);
    assert_eq!(
        final_of(&mut invite).await.0.status(),
        Some(StatusCode::BUSY_HERE)
    );
    assert_eq!(
        next_ended(&mut events).await,
        ("BUSY".to_owned(), Some(486))
    );

    // The caller cancels while it rings: 487, and the callee is cancelled.
    let (mut invite, _) = alice.call("1002", alice.sdp("sendrecv")).await;
    let (tx, offer) = bob.incoming().await;
    bob.answer(tx, &offer, StatusCode::RINGING, None);
    let (ringing, _) = timeout(LIMIT, invite.next())
        .await
        .unwrap()
        .map(|e| match e {
            ClientEvent::Response { response, dialog } => (response, dialog),
            ClientEvent::Timeout => panic!("timeout"),
        })
        .unwrap();
    assert_eq!(ringing.status(), Some(StatusCode::RINGING));
    alice.endpoint.cancel(invite.id()).unwrap();
    assert_eq!(
        final_of(&mut invite).await.0.status(),
        Some(StatusCode::REQUEST_TERMINATED)
    );
    assert_eq!(
        next_ended(&mut events).await,
        ("NO ANSWER".to_owned(), Some(487))
    );
    wait_cancelled(&mut bob).await;

    // Nobody answers: the ring timeout ends it.
    let (mut invite, _) = alice.call("1002", alice.sdp("sendrecv")).await;
    let (tx, offer) = bob.incoming().await;
    bob.answer(tx, &offer, StatusCode::RINGING, None);
    let (response, _) = final_of(&mut invite).await;
    assert_eq!(response.status(), Some(StatusCode::TEMPORARILY_UNAVAILABLE));
    assert_eq!(next_ended(&mut events).await.0, "NO ANSWER");
    wait_cancelled(&mut bob).await;

    idle(&pbx.engine).await;
    let dispositions: Vec<Disposition> = stored(&pbx).iter().map(|r| r.disposition).collect();
    assert_eq!(dispositions.len(), 4, "{dispositions:?}");
}

/// The phone's ringing INVITE is cancelled: the endpoint reports it and
/// the phone answers 487, as a phone does.
async fn wait_cancelled(phone: &mut Phone) {
    loop {
        let event = timeout(LIMIT, phone.events.recv()).await.unwrap().unwrap();
        if let EndpointEvent::Cancelled(tx) = event {
            let invite = phone.endpoint.request(tx).unwrap();
            let response = invite
                .response_to(StatusCode::REQUEST_TERMINATED)
                .build()
                .unwrap();
            phone.endpoint.respond(tx, &response).unwrap();
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_passes_across_and_the_callee_can_hang_up() {
    let pbx = pbx(|_| {}, 30200).await;
    let mut events = pbx.engine.subscribe();
    let alice = Phone::new("1001", "secret1", pbx.addr).await;
    let mut bob = Phone::new("1002", "secret2", pbx.addr).await;
    bob.register().await;
    let (mut invite, _) = alice.call("1002", alice.sdp("sendrecv")).await;
    let (tx, offer) = bob.incoming().await;
    let b_dialog = bob.answer(tx, &offer, StatusCode::OK, Some(bob.sdp("sendrecv")));
    let (_, a_dialog) = alice.answered(&mut invite).await;

    // The caller holds: a re-INVITE with sendonly reaches the callee.
    let reinvite = alice
        .endpoint
        .request_in_dialog(&a_dialog, Method::Invite)
        .unwrap()
        .body("application/sdp", alice.sdp("sendonly"))
        .build()
        .unwrap();
    let mut hold = alice.endpoint.send_in_dialog(&a_dialog, reinvite).unwrap();
    let held = bob.answer_reinvite("recvonly").await;
    assert!(held.contains("a=sendonly"), "{held}");
    let (ok, _) = alice.answered(&mut hold).await;
    assert!(
        std::str::from_utf8(ok.body())
            .unwrap()
            .contains("a=recvonly")
    );
    loop {
        if let CallEvent::Held { held, .. } = timeout(LIMIT, events.recv()).await.unwrap().unwrap()
        {
            assert!(held);
            break;
        }
    }

    // The callee hangs up.
    let mut bye_tx = bob.hang_up(&b_dialog);
    let mut alice = alice;
    alice.answer_in_dialog(Method::Bye).await;
    assert_eq!(final_of(&mut bye_tx).await.0.status(), Some(StatusCode::OK));
    assert_eq!(next_ended(&mut events).await.0, "ANSWERED");
    idle(&pbx.engine).await;
    let record = &stored(&pbx)[0];
    assert_eq!(record.hangup.by, trunkline_cdr::Side::Callee);
}

/// 20 ms of a `hz` tone as µ-law, starting at sample `start`.
fn tone(hz: f64, start: u32) -> Vec<u8> {
    (start..start + 160)
        .map(|n| {
            let t = f64::from(n) / 8000.0;
            let sample = (8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16;
            trunkline_media::g711::ulaw_encode(sample)
        })
        .collect()
}

/// The tone's frequency from zero crossings of `samples`, counted over
/// the samples that carry sound: a gap the recorder filled with silence
/// (a packet late on a loaded machine) neither adds time nor crossings.
fn frequency(samples: &[i16]) -> f64 {
    // A tone passes zero in a sample or two; a gap is a whole frame of it.
    let mut sound = Vec::with_capacity(samples.len());
    for run in samples.chunk_by(|a, b| (*a == 0) == (*b == 0)) {
        if run[0] != 0 || run.len() < 16 {
            sound.extend_from_slice(run);
        }
    }
    assert!(sound.len() > 2000, "only {} samples of sound", sound.len());
    let crossings = sound
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (sound.len() as f64 / 8000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_call_leaves_each_side_on_its_own_channel() {
    let recordings = tempfile::tempdir().unwrap();
    let dir = recordings.path().to_owned();
    let pbx = pbx(
        move |c| {
            c.record = true;
            c.recordings = Some(dir);
        },
        30300,
    )
    .await;
    let alice = Phone::new("1001", "secret1", pbx.addr).await;
    let mut bob = Phone::new("1002", "secret2", pbx.addr).await;
    bob.register().await;
    let (mut invite, _) = alice.call("1002", alice.sdp("sendrecv")).await;
    let (tx, offer) = bob.incoming().await;
    let to_bob = media_of(&offer);
    bob.answer(tx, &offer, StatusCode::OK, Some(bob.sdp("sendrecv")));
    let (ok, a_dialog) = alice.answered(&mut invite).await;
    let to_alice = media_of(&ok);

    // One second of 400 Hz from the caller and 1000 Hz from the callee,
    // paced as a phone sends it.
    for seq in 0..50u16 {
        let header = |ssrc| trunkline_media::rtp::RtpHeader {
            payload_type: 0,
            sequence: seq,
            timestamp: u32::from(seq) * 160,
            ssrc,
            ..Default::default()
        };
        let mut buf = [0u8; 200];
        let n = header(1)
            .write(&tone(400.0, u32::from(seq) * 160), &mut buf)
            .unwrap();
        alice.rtp.send_to(&buf[..n], to_alice).unwrap();
        let n = header(2)
            .write(&tone(1000.0, u32::from(seq) * 160), &mut buf)
            .unwrap();
        bob.rtp.send_to(&buf[..n], to_bob).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut bye_tx = alice.hang_up(&a_dialog);
    bob.answer_in_dialog(Method::Bye).await;
    final_of(&mut bye_tx).await;
    idle(&pbx.engine).await;

    let record = &stored(&pbx)[0];
    let path = record.recording.clone().expect("a recording reference");
    let mut wav = hound::WavReader::open(&path).unwrap();
    let spec = wav.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = wav.samples::<i16>().map(Result::unwrap).collect();
    let (left, right): (Vec<i16>, Vec<i16>) = samples.chunks(2).map(|f| (f[0], f[1])).unzip();
    // The middle of the call: both tones are on by then.
    let (from, to) = (left.len() / 4, left.len() * 3 / 4);
    assert!(to - from > 2000, "{} frames recorded", left.len());
    let (caller, callee) = (frequency(&left[from..to]), frequency(&right[from..to]));
    assert!(
        (caller - 400.0).abs() < 20.0,
        "caller channel at {caller} Hz"
    );
    assert!(
        (callee - 1000.0).abs() < 20.0,
        "callee channel at {callee} Hz"
    );
}

/// A route that sends "500" to 1002 then 1003, one after the other.
#[derive(Debug)]
struct Desk;

impl trunkline_engine::Router for Desk {
    fn route<'a>(
        &'a self,
        call: &'a trunkline_engine::RouteRequest,
    ) -> trunkline_engine::RouteFuture<'a> {
        Box::pin(async move {
            if call.dialled != "500" {
                return trunkline_engine::RouteDecision::Default;
            }
            let targets = ["1002", "1003"]
                .map(|n| trunkline_engine::Target::Extension(n.into()))
                .into();
            let mut routing = trunkline_engine::Routing::new("desk", targets);
            routing.strategy = trunkline_engine::Strategy::Sequential;
            routing.ring_timeout = Some(Duration::from_millis(700));
            trunkline_engine::RouteDecision::Route(routing)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequential_route_moves_on_when_the_first_phone_does_not_answer() {
    let pbx = pbx(|c| c.router = Some(std::sync::Arc::new(Desk)), 30400).await;
    let alice = Phone::new("1001", "secret1", pbx.addr).await;
    let mut bob = Phone::new("1002", "secret2", pbx.addr).await;
    let mut carol = Phone::new("1003", "secret3", pbx.addr).await;
    bob.register().await;
    carol.register().await;

    let (mut invite, _) = alice.call("500", alice.sdp("sendrecv")).await;
    // 1002 rings first and is given up on after the route's ring timeout.
    let (tx, offer) = bob.incoming().await;
    bob.answer(tx, &offer, StatusCode::RINGING, None);
    wait_cancelled(&mut bob).await;
    // Then 1003, who answers.
    let (tx, offer) = carol.incoming().await;
    assert!(offer.to().unwrap().uri().as_str().contains("1003"));
    carol.answer(tx, &offer, StatusCode::OK, Some(carol.sdp("sendrecv")));
    let (_, a_dialog) = alice.answered(&mut invite).await;
    let mut bye_tx = alice.hang_up(&a_dialog);
    carol.answer_in_dialog(Method::Bye).await;
    final_of(&mut bye_tx).await;
    idle(&pbx.engine).await;
    let record = &stored(&pbx)[0];
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.destination_channel.as_deref(), Some("route/desk"));
}

/// A router that refuses 666 as spam and sends 700 to a URI it was given,
/// with a header of its own (and one the engine must not let through).
#[derive(Debug)]
struct Switchboard {
    uri: String,
}

impl trunkline_engine::Router for Switchboard {
    fn route<'a>(
        &'a self,
        call: &'a trunkline_engine::RouteRequest,
    ) -> trunkline_engine::RouteFuture<'a> {
        Box::pin(async move {
            assert_eq!(call.caller, "1001");
            assert!(call.trunk.is_none() && !call.registered);
            match call.dialled.as_str() {
                "666" => trunkline_engine::RouteDecision::Refuse {
                    status: StatusCode::DECLINE,
                    channel: Some("switchboard".into()),
                    reason: Some("spam".into()),
                },
                "700" => {
                    let address = trunkline_engine::SipAddress::parse(&self.uri).unwrap();
                    let target = trunkline_engine::Target::Uri(address);
                    let mut routing = trunkline_engine::Routing::new("board", vec![target]);
                    routing.channel = Some("switchboard".into());
                    routing.headers = vec![
                        ("X-Call-Reason".into(), "vip".into()),
                        ("Via".into(), "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx".into()),
                        ("X-Bad".into(), "a\r\nInjected: 1".into()),
                    ];
                    trunkline_engine::RouteDecision::Route(routing)
                }
                _ => trunkline_engine::RouteDecision::Default,
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_refuses_or_sends_a_call_to_a_uri_with_its_headers() {
    let alice = Phone::new("1001", "secret1", "127.0.0.1:9".parse().unwrap()).await;
    let mut bob = Phone::new("1002", "secret2", "127.0.0.1:9".parse().unwrap()).await;
    let uri = format!("sip:bob@{}", bob.local());
    let (records, mut stored_records) = tokio::sync::mpsc::channel(4);
    let pbx = pbx(
        |c| {
            c.router = Some(std::sync::Arc::new(Switchboard { uri: uri.clone() }));
            c.stored_records = Some(records);
        },
        30600,
    )
    .await;
    let alice = Phone {
        pbx: pbx.addr,
        ..alice
    };
    bob.pbx = pbx.addr;

    let (mut invite, _) = alice.call("666", alice.sdp("sendrecv")).await;
    assert_eq!(
        final_of(&mut invite).await.0.status(),
        Some(StatusCode::DECLINE)
    );
    let refused = timeout(LIMIT, stored_records.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refused.hangup.sip_status, Some(603));
    assert_eq!(refused.hangup.reason.as_deref(), Some("spam"));
    assert_eq!(refused.destination_channel.as_deref(), Some("switchboard"));

    // Bob is not registered: the router's URI is called as it is.
    let (mut invite, _) = alice.call("700", alice.sdp("sendrecv")).await;
    let (tx, offer) = bob.incoming().await;
    assert_eq!(offer.uri().unwrap().as_str(), uri);
    assert_eq!(offer.header("X-Call-Reason"), Some("vip"));
    assert_eq!(offer.vias().count(), 1, "{offer:?}");
    assert_eq!(offer.header("X-Bad"), None);
    assert_eq!(offer.header("Injected"), None);
    bob.answer(tx, &offer, StatusCode::OK, Some(bob.sdp("sendrecv")));
    let (_, a_dialog) = alice.answered(&mut invite).await;
    let mut bye_tx = alice.hang_up(&a_dialog);
    bob.answer_in_dialog(Method::Bye).await;
    final_of(&mut bye_tx).await;
    let answered = timeout(LIMIT, stored_records.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answered.disposition, Disposition::Answered);
    assert_eq!(answered.destination_channel.as_deref(), Some("switchboard"));
    idle(&pbx.engine).await;
    assert_eq!(stored(&pbx).len(), 2);
}
