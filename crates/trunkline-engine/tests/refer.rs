//! Transfers a phone carries out itself: a phone that takes REFER is
//! sent one (RFC 3515, RFC 5359 §2.4) and calls the target through the
//! PBX, telling how it goes in NOTIFYs; with `Replaces` in the Refer-To
//! (RFC 3891) its INVITE takes a party's place in another call. The
//! phones are SIP user agents on Trunkline's own transaction layer.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::*;
use tokio::sync::broadcast;
use tokio::time::timeout;
use trunkline_engine::{CallCommand, CallEvent, CallSide, TransferProgress};
use trunkline_sip::{HeaderName, Method, StatusCode};
use trunkline_transaction::{DialogId, EndpointEvent};

/// What a phone that takes REFER and `Replaces` says in its INVITE.
const ABLE: [(HeaderName, &str); 2] = [
    (HeaderName::Allow, "INVITE, ACK, BYE, CANCEL, REFER, NOTIFY"),
    (HeaderName::Supported, "replaces"),
];

/// Waits for a REFER, accepts it (202); its Refer-To URI.
async fn accept_refer(phone: &mut Phone) -> String {
    loop {
        let event = timeout(LIMIT, phone.events.recv()).await.unwrap().unwrap();
        if let EndpointEvent::Request {
            tx: Some(tx),
            request,
            ..
        } = event
            && request.method() == Some(&Method::Refer)
        {
            let accepted = request.response_to(StatusCode::ACCEPTED).build().unwrap();
            phone.endpoint.respond(tx, &accepted).unwrap();
            return request.refer_to().unwrap().uri().as_str().to_owned();
        }
    }
}

/// Sends a NOTIFY of the REFER's subscription carrying `status_line`;
/// a final status ends the subscription.
async fn notify(phone: &Phone, dialog: &DialogId, status_line: &str) {
    let provisional = status_line.starts_with("SIP/2.0 1");
    let state = if provisional {
        "active;expires=60"
    } else {
        "terminated;reason=noresource"
    };
    let request = phone
        .endpoint
        .request_in_dialog(dialog, Method::Notify)
        .unwrap()
        .header(HeaderName::Event, "refer")
        .header(HeaderName::SubscriptionState, state)
        .body("message/sipfrag", format!("{status_line}\r\n"))
        .build()
        .unwrap();
    let mut tx = phone.endpoint.send_in_dialog(dialog, request).unwrap();
    assert_eq!(final_of(&mut tx).await.0.status(), Some(StatusCode::OK));
}

/// The transfer events of the call, up to the outcome.
async fn transfer_progress(events: &mut broadcast::Receiver<CallEvent>) -> Vec<TransferProgress> {
    let mut progress = Vec::new();
    while !matches!(
        progress.last(),
        Some(TransferProgress::Answered | TransferProgress::Failed)
    ) {
        let event = timeout(LIMIT, events.recv()).await.unwrap().unwrap();
        if let CallEvent::Transferred { progress: p, .. } = event {
            progress.push(p);
        }
    }
    progress
}

/// `%XX` escapes undone.
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_takes_refer_calls_the_transfer_target_itself() {
    let (pbx, mut events, [mut alice, mut bob, mut carol]) = three_phones(33000).await;
    let Answered {
        call_id, dialog, ..
    } = answered_call(&alice, &mut bob, &ABLE).await;

    let engine = pbx.engine.clone();
    let id = call_id.clone();
    let transfer = tokio::spawn(async move {
        let command = CallCommand::Transfer {
            side: CallSide::Caller,
            target: "1003".into(),
        };
        engine.command(&id, command).await
    });
    let refer_to = accept_refer(&mut alice).await;
    assert_eq!(
        refer_to,
        format!("sip:1003@{}", pbx.addr),
        "through the PBX"
    );
    notify(&alice, &dialog, "SIP/2.0 100 Trying").await;

    // Alice calls the target through the PBX, as any call.
    let (mut invite, _) = alice.call_with(&refer_to, alice.sdp("sendrecv"), &[]).await;
    let (tx, offer) = carol.incoming().await;
    notify(&alice, &dialog, "SIP/2.0 180 Ringing").await;
    carol.answer(tx, &offer, StatusCode::OK, Some(carol.sdp("sendrecv")));
    let (ok, new_dialog) = alice.answered(&mut invite).await;
    notify(&alice, &dialog, "SIP/2.0 200 OK").await;

    // The PBX, as the transferor, hangs up both parties of the old call.
    alice.answer_in_dialog(Method::Bye).await;
    bob.answer_in_dialog(Method::Bye).await;
    assert_eq!(transfer.await.unwrap(), Ok(()));
    assert_eq!(
        transfer_progress(&mut events).await,
        [
            TransferProgress::Trying,
            TransferProgress::Ringing,
            TransferProgress::Answered
        ]
    );
    let record = loop {
        let stored = stored(&pbx);
        if let Some(record) = stored.into_iter().find(|r| r.call_id == call_id) {
            break record;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(record.hangup.reason.as_deref(), Some("transferred"));

    // The new call is Alice's own, through the relay.
    media_reaches(&alice, media_of(&ok), &carol);
    hang_up_with(&alice, &new_dialog, &mut carol).await;
    idle(&pbx.engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refer_the_target_refuses_leaves_the_call_as_it_was() {
    let (pbx, mut events, [mut alice, mut bob, _carol]) = three_phones(33100).await;
    let Answered {
        call_id,
        ok,
        dialog,
        ..
    } = answered_call(&alice, &mut bob, &ABLE).await;

    let engine = pbx.engine.clone();
    let id = call_id.clone();
    let transfer = tokio::spawn(async move {
        let command = CallCommand::Transfer {
            side: CallSide::Caller,
            target: format!("sip:1003@{DOMAIN}"),
        };
        engine.command(&id, command).await
    });
    accept_refer(&mut alice).await;
    notify(&alice, &dialog, "SIP/2.0 486 Busy Here").await;
    assert_eq!(
        transfer.await.unwrap(),
        Err(trunkline_engine::CommandError::Refused(486))
    );
    assert_eq!(
        transfer_progress(&mut events).await,
        [TransferProgress::Trying, TransferProgress::Failed]
    );
    // Alice and Bob still talk.
    media_reaches(&alice, media_of(&ok), &bob);
    hang_up_with(&alice, &dialog, &mut bob).await;
    assert_eq!(next_ended(&mut events).await.0, "ANSWERED");
    idle(&pbx.engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attended_transfer_refers_with_replaces() {
    let (pbx, mut events, [mut alice, mut bob, mut carol]) = three_phones(33200).await;
    // Alice talks to Bob; Bob calls Carol to announce the transfer.
    let Answered {
        call_id: first,
        dialog: first_dialog,
        ..
    } = answered_call(&alice, &mut bob, &ABLE).await;
    let (mut invite, second) = bob.call("1003", bob.sdp("sendrecv")).await;
    let (tx, carol_offer) = carol.incoming().await;
    carol.answer(
        tx,
        &carol_offer,
        StatusCode::OK,
        Some(carol.sdp("sendrecv")),
    );
    bob.answered(&mut invite).await;

    let engine = pbx.engine.clone();
    let (a, b) = (first.clone(), second.clone());
    let join = tokio::spawn(async move {
        engine
            .attended_transfer((&a, CallSide::Caller), (&b, CallSide::Callee))
            .await
    });
    // Alice is told to call the PBX replacing Bob's dialog of call B.
    let refer_to = accept_refer(&mut alice).await;
    let (uri, replaces) = refer_to.split_once("?Replaces=").unwrap();
    let replaces = unescape(replaces);
    assert!(
        replaces.starts_with(&format!("{second};to-tag=")),
        "{replaces}"
    );
    notify(&alice, &first_dialog, "SIP/2.0 100 Trying").await;
    let with = [(HeaderName::Replaces, replaces.as_str())];
    let (mut invite, _) = alice.call_with(uri, alice.sdp("sendrecv"), &with).await;
    let (ok, new_dialog) = alice.answered(&mut invite).await;
    // Bob leaves call B at once, and call A once Alice says it worked.
    bob.answer_in_dialog(Method::Bye).await;
    notify(&alice, &first_dialog, "SIP/2.0 200 OK").await;
    alice.answer_in_dialog(Method::Bye).await;
    bob.answer_in_dialog(Method::Bye).await;
    assert_eq!(join.await.unwrap(), Ok(()));

    // Alice and Carol hear each other through call B's relay ports.
    media_reaches(&alice, media_of(&ok), &carol);
    media_reaches(&carol, media_of(&carol_offer), &alice);
    let ended = loop {
        match timeout(LIMIT, events.recv()).await.unwrap().unwrap() {
            CallEvent::Ended { call_id, .. } => break call_id,
            _ => continue,
        }
    };
    assert_eq!(ended, first, "call A ends; call B goes on");
    let joined = pbx.engine.active_calls();
    assert_eq!(
        (joined[0].caller.as_str(), joined[0].callee.as_str()),
        ("1001", "1003"),
        "call B lists Alice in Bob's place"
    );
    hang_up_with(&alice, &new_dialog, &mut carol).await;
    assert_eq!(next_ended(&mut events).await.0, "ANSWERED");
    idle(&pbx.engine).await;
    let records = stored(&pbx);
    let transferred = records.iter().find(|r| r.call_id == first).unwrap();
    assert_eq!(transferred.hangup.reason.as_deref(), Some("transferred"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phones_own_refer_is_carried_out_by_the_pbx() {
    let (pbx, mut events, [alice, mut bob, mut carol]) = three_phones(33300).await;
    // Neither Alice nor Bob says it takes REFER.
    let Answered {
        ok,
        dialog: alice_dialog,
        callee_dialog: bob_dialog,
        ..
    } = answered_call(&alice, &mut bob, &[]).await;

    // Bob transfers Alice to 1003 with a REFER of his own.
    let refer = bob
        .endpoint
        .request_in_dialog(&bob_dialog, Method::Refer)
        .unwrap()
        .header(HeaderName::ReferTo, format!("<sip:1003@{}>", pbx.addr))
        .build()
        .unwrap();
    let mut referred = bob.endpoint.send_in_dialog(&bob_dialog, refer).unwrap();
    assert_eq!(
        final_of(&mut referred).await.0.status(),
        Some(StatusCode::ACCEPTED)
    );
    let trying = bob.answer_in_dialog(Method::Notify).await;
    assert_eq!(trying.body().as_ref(), b"SIP/2.0 100 Trying\r\n");
    // The PBX rings 1003 with what Bob was sent; once it answers, Bob
    // hears it worked, then gets his BYE.
    let (tx, offer) = carol.incoming().await;
    carol.answer(tx, &offer, StatusCode::OK, Some(carol.sdp("sendrecv")));
    let done = bob.answer_in_dialog(Method::Notify).await;
    assert_eq!(done.body().as_ref(), b"SIP/2.0 200 OK\r\n");
    assert!(
        done.subscription_state()
            .is_some_and(|s| s.value() == "terminated")
    );
    bob.answer_in_dialog(Method::Bye).await;
    assert_eq!(
        transfer_progress(&mut events).await.last(),
        Some(&TransferProgress::Answered)
    );
    media_reaches(&alice, media_of(&ok), &carol);
    hang_up_with(&alice, &alice_dialog, &mut carol).await;
    idle(&pbx.engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phones_own_attended_transfer_joins_its_two_calls() {
    let (pbx, mut events, [alice, mut bob, mut carol]) = three_phones(33400).await;
    // Call A: Alice and Bob; call B: Bob and Carol. Alice does not take
    // REFER, so the PBX joins the calls itself.
    let Answered {
        call_id: call_a,
        ok,
        dialog: alice_dialog,
        callee_dialog: bob_in_a,
        ..
    } = answered_call(&alice, &mut bob, &[]).await;
    let (mut invite, call_b) = bob.call("1003", bob.sdp("sendrecv")).await;
    let (tx, carol_offer) = carol.incoming().await;
    carol.answer(
        tx,
        &carol_offer,
        StatusCode::OK,
        Some(carol.sdp("sendrecv")),
    );
    let (_, bob_in_b) = bob.answered(&mut invite).await;

    // Bob's REFER in call A replaces his dialog of call B (RFC 3891: the
    // to-tag is the PBX's).
    let replaces = format!(
        "{}%3Bto-tag%3D{}%3Bfrom-tag%3D{}",
        bob_in_b.call_id.replace('@', "%40"),
        bob_in_b.remote_tag,
        bob_in_b.local_tag
    );
    let refer = bob
        .endpoint
        .request_in_dialog(&bob_in_a, Method::Refer)
        .unwrap()
        .header(
            HeaderName::ReferTo,
            format!("<sip:1003@{DOMAIN}?Replaces={replaces}>"),
        )
        .build()
        .unwrap();
    let mut referred = bob.endpoint.send_in_dialog(&bob_in_a, refer).unwrap();
    assert_eq!(
        final_of(&mut referred).await.0.status(),
        Some(StatusCode::ACCEPTED)
    );
    // Bob hears 100, then 200 in call A, and is hung up in both calls, in
    // whatever order they come.
    let (mut sipfrags, mut byes) = (Vec::new(), Vec::new());
    while byes.len() < 2 {
        let event = timeout(LIMIT, bob.events.recv()).await.unwrap().unwrap();
        let EndpointEvent::Request {
            tx: Some(tx),
            request,
            dialog: Some(dialog),
            ..
        } = event
        else {
            continue;
        };
        let ok = request.response_to(StatusCode::OK).build().unwrap();
        bob.endpoint.respond(tx, &ok).unwrap();
        match request.method() {
            Some(Method::Notify) => sipfrags.push(request.body().clone()),
            Some(Method::Bye) => byes.push(dialog),
            _ => {}
        }
    }
    assert_eq!(
        sipfrags,
        [&b"SIP/2.0 100 Trying\r\n"[..], &b"SIP/2.0 200 OK\r\n"[..]]
    );
    assert!(byes.contains(&bob_in_a) && byes.contains(&bob_in_b));
    // Alice and Carol talk; call A goes on, call B is over.
    media_reaches(&alice, media_of(&ok), &carol);
    media_reaches(&carol, media_of(&carol_offer), &alice);
    loop {
        match timeout(LIMIT, events.recv()).await.unwrap().unwrap() {
            CallEvent::Ended { call_id, .. } if call_id == call_b => break,
            _ => continue,
        }
    }
    let joined = pbx.engine.active_calls();
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0].call_id, call_a);
    assert_eq!(
        (joined[0].caller.as_str(), joined[0].callee.as_str()),
        ("1001", "1003")
    );
    hang_up_with(&alice, &alice_dialog, &mut carol).await;
    idle(&pbx.engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invite_may_replace_only_what_a_refer_of_ours_offered() {
    let (pbx, _events, [alice, mut bob, carol]) = three_phones(33500).await;
    let Answered {
        ok,
        dialog: alice_dialog,
        ..
    } = answered_call(&alice, &mut bob, &ABLE).await;
    // Carol knows the tags of Alice's dialog, but no REFER offered it.
    let replaces = format!(
        "{};to-tag={};from-tag={}",
        alice_dialog.call_id, alice_dialog.remote_tag, alice_dialog.local_tag
    );
    let uri = format!("sip:1001@{DOMAIN}");
    let with = [(HeaderName::Replaces, replaces.as_str())];
    let (mut invite, _) = carol.call_with(&uri, carol.sdp("sendrecv"), &with).await;
    assert_eq!(
        final_of(&mut invite).await.0.status(),
        Some(StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST)
    );
    // Alice and Bob still talk.
    media_reaches(&alice, media_of(&ok), &bob);
    hang_up_with(&alice, &alice_dialog, &mut bob).await;
    idle(&pbx.engine).await;
}
