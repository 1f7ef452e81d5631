//! Calls never leak: 10,000 answered calls through the engine, eight at
//! a time, over TCP (so no transaction lingers in a UDP timer). After each
//! half the engine's call and dialog tables and the transaction layers
//! must be empty, and the second half must leave the heap where the first
//! left it: caches settle at their peak in the first half, while anything
//! kept per call would grow the heap by 5,000 times its size.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use std::alloc::System;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::timeout;
use trunkline_registrar::RegistrarConfig;
use trunkline_sip::{Method, StatusCode};
use trunkline_transaction::{EndpointEvent, Timers, Transport};

#[global_allocator]
static HEAP: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const HALF: usize = 5_000;
const AT_ONCE: usize = 8;
/// What the second half may add to the heap: the noise of maps and heaps
/// resized at other moments (28 to 62 KiB seen), well under what keeping
/// anything per call would add (a dialog id alone is over 100 bytes;
/// 5,000 of them 500 KiB).
const ALLOWED_GROWTH: isize = 256 * 1024;

/// Bytes on the heap now.
fn heap() -> isize {
    let stats = HEAP.stats();
    stats.bytes_allocated as isize - stats.bytes_deallocated as isize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_calls_leave_nothing_behind() {
    // Short timers: the layers free what they keep for late retransmissions
    // (RFC 6026's Accepted state lasts 64·T1) within a second.
    let net = Net {
        transport: Transport::Tcp,
        timers: Timers {
            t1: Duration::from_millis(10),
            ..Timers::default()
        },
    };
    // Nonces are remembered for replay protection until they lapse (the
    // registrar counts their age in whole seconds).
    let mut registrar = RegistrarConfig::new(DOMAIN);
    registrar.digest.nonce_lifetime = Duration::from_secs(2);
    let pbx = Arc::new(pbx_on(net, registrar, |_| {}, 30500).await);
    let bob = Phone::on(net, "1002", "secret2", pbx.addr).await;
    bob.register().await;
    let Phone {
        endpoint: bob_endpoint,
        events: mut bob_events,
        ..
    } = bob;
    let bob_sdp = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 40000 RTP/AVP 0\r\n";
    // The callee answers every INVITE and every BYE.
    let answering = bob_endpoint.clone();
    tokio::spawn(async move {
        while let Some(event) = bob_events.recv().await {
            let EndpointEvent::Request {
                tx: Some(tx),
                request,
                ..
            } = event
            else {
                continue;
            };
            let mut answer = request
                .response_to(StatusCode::OK)
                .to_tag(&trunkline_transaction::new_tag());
            if request.method() == Some(&Method::Invite) {
                answer = answer.body("application/sdp", bob_sdp);
            }
            let _ = answering.respond(tx, &answer.build().unwrap());
        }
    });
    let mut alice = Phone::on(net, "1001", "secret1", pbx.addr).await;
    // The caller's endpoint reports its ended dialogs: someone must take
    // them, as a phone would, or its queue holds them.
    let (_, closed) = tokio::sync::mpsc::channel(1);
    let mut alice_events = std::mem::replace(&mut alice.events, closed);
    tokio::spawn(async move { while alice_events.recv().await.is_some() {} });
    let alice = Arc::new(alice);

    calls(&alice, HALF).await;
    settle(&pbx, &alice, &bob_endpoint).await;
    let first_half = heap();

    calls(&alice, HALF).await;
    settle(&pbx, &alice, &bob_endpoint).await;
    let growth = heap() - first_half;
    assert_eq!(pbx.engine.stats().calls as usize, 2 * HALF);
    println!("heap after the second {HALF} calls: {growth:+} bytes against the first");
    assert!(
        growth < ALLOWED_GROWTH,
        "{growth} bytes more on the heap after {HALF} more calls"
    );
}

/// `count` answered calls, `AT_ONCE` at a time: INVITE (digest), 200,
/// ACK, BYE.
async fn calls(alice: &Arc<Phone>, count: usize) {
    let mut workers = Vec::new();
    for worker in 0..AT_ONCE {
        let alice = alice.clone();
        workers.push(tokio::spawn(async move {
            for _ in (worker..count).step_by(AT_ONCE) {
                let (mut invite, _) = alice.call("1002", alice.sdp("sendrecv")).await;
                let (_, dialog) = alice.answered(&mut invite).await;
                let mut bye = alice.hang_up(&dialog);
                assert_eq!(final_of(&mut bye).await.0.status(), Some(StatusCode::OK));
            }
        }));
    }
    for worker in workers {
        timeout(Duration::from_secs(600), worker)
            .await
            .unwrap()
            .unwrap();
    }
}

/// Waits (bounded) until no call, dialog or transaction is left anywhere,
/// and lapsed nonces are swept.
async fn settle(pbx: &Pbx, alice: &Phone, bob: &trunkline_transaction::Endpoint) {
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let engine = pbx.engine.stats();
        let idle = engine.active_calls == 0
            && engine.dialogs == 0
            && pbx.engine.active_calls().is_empty()
            && pbx.endpoint.load() == (0, 0)
            && alice.endpoint.load() == (0, 0)
            && bob.load() == (0, 0);
        if idle {
            // Nonces handed out during the calls lapse, then go.
            tokio::time::sleep(Duration::from_millis(3100)).await;
            pbx.registrar.expire(SystemTime::now()).await;
            return;
        }
    }
    panic!(
        "left behind: engine {:?}, listed {:?}, PBX layer {:?}, caller {:?}, callee {:?}",
        pbx.engine.stats(),
        pbx.engine.active_calls(),
        pbx.endpoint.load(),
        alice.endpoint.load(),
        bob.load()
    );
}
