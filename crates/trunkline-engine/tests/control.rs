//! Calls driven from outside, as the API drives them: hold, mute and
//! hang up an answered call, transfer it, accept a ringing call, and a
//! click-to-dial call the PBX starts itself. The phones are SIP user
//! agents on Trunkline's own transaction layer.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::*;
use tokio::sync::broadcast;
use tokio::time::timeout;
use trunkline_engine::{
    CallCommand, CallEvent, CallSide, CommandError, Originate, TransferProgress,
};
use trunkline_sip::{Method, StatusCode};
use trunkline_transaction::EndpointEvent;

/// The next event of the wanted kind.
async fn next_event(
    events: &mut broadcast::Receiver<CallEvent>,
    wanted: impl Fn(&CallEvent) -> bool,
) -> CallEvent {
    loop {
        let event = timeout(LIMIT, events.recv()).await.unwrap().unwrap();
        if wanted(&event) {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_mute_and_hang_up_from_outside() {
    let pbx = pbx(|_| {}, 30600).await;
    let mut events = pbx.engine.subscribe();
    let mut alice = Phone::new("1001", "secret1", pbx.addr).await;
    let mut bob = Phone::new("1002", "secret2", pbx.addr).await;
    bob.register().await;
    let call_id = answered_call(&alice, &mut bob, &[]).await.call_id;

    // Both on hold: each phone is offered sendonly.
    let engine = pbx.engine.clone();
    let id = call_id.clone();
    let hold =
        tokio::spawn(async move { engine.command(&id, CallCommand::Hold { side: None }).await });
    assert!(
        alice
            .answer_reinvite("recvonly")
            .await
            .contains("a=sendonly")
    );
    assert!(bob.answer_reinvite("recvonly").await.contains("a=sendonly"));
    assert_eq!(hold.await.unwrap(), Ok(()));
    let held = next_event(&mut events, |e| matches!(e, CallEvent::Held { .. })).await;
    assert_eq!(
        held,
        CallEvent::Held {
            call_id: call_id.clone(),
            held: true
        }
    );

    // Only the callee off hold, by its B leg's Call-ID too.
    let engine = pbx.engine.clone();
    let id = call_id.clone();
    let unhold = tokio::spawn(async move {
        let side = Some(CallSide::Callee);
        engine.command(&id, CallCommand::Unhold { side }).await
    });
    let offer = bob.answer_reinvite("sendrecv").await;
    assert!(offer.contains("a=sendrecv"), "{offer}");
    assert!(
        offer.contains("o=1001 1 3 IN IP4"),
        "the version after hold's 2: {offer}"
    );
    assert_eq!(unhold.await.unwrap(), Ok(()));

    let mute = CallCommand::Mute {
        side: Some(CallSide::Caller),
    };
    assert_eq!(pbx.engine.command(&call_id, mute).await, Ok(()));
    let accept = CallCommand::Accept {
        sdp: bob.sdp("sendrecv"),
    };
    assert_eq!(
        pbx.engine.command(&call_id, accept).await,
        Err(CommandError::WrongState("answered"))
    );

    let reason = Some("admin_kick".to_owned());
    assert_eq!(
        pbx.engine
            .command(&call_id, CallCommand::Hangup { reason })
            .await,
        Ok(())
    );
    alice.answer_in_dialog(Method::Bye).await;
    bob.answer_in_dialog(Method::Bye).await;
    assert_eq!(next_ended(&mut events).await.0, "ANSWERED");
    idle(&pbx.engine).await;
    let record = &stored(&pbx)[0];
    assert_eq!(record.hangup.by, trunkline_cdr::Side::Pbx);
    assert_eq!(record.hangup.reason.as_deref(), Some("admin_kick"));
    let gone = CallCommand::Hangup { reason: None };
    assert_eq!(
        pbx.engine.command(&call_id, gone).await,
        Err(CommandError::NoSuchCall)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_rings_the_target_and_replaces_the_callee() {
    let (pbx, mut events, [alice, mut bob, mut carol]) = three_phones(30700).await;
    let Answered {
        call_id,
        ok: alice_ok,
        dialog: alice_dialog,
        offer: bob_offer,
        ..
    } = answered_call(&alice, &mut bob, &[]).await;

    // Nobody at 1004: refused, and the call goes on as it was.
    let nowhere = CallCommand::Transfer {
        side: CallSide::Caller,
        target: "1004".into(),
    };
    assert_eq!(
        pbx.engine.command(&call_id, nowhere).await,
        Err(CommandError::Refused(480))
    );

    let engine = pbx.engine.clone();
    let id = call_id.clone();
    let transfer = tokio::spawn(async move {
        let target = format!("sip:1003@{DOMAIN}");
        let side = CallSide::Caller;
        engine
            .command(&id, CallCommand::Transfer { side, target })
            .await
    });
    let (tx, offer) = carol.incoming().await;
    assert_eq!(
        media_of(&offer),
        media_of(&bob_offer),
        "offered the relay's B leg"
    );
    carol.answer(tx, &offer, StatusCode::OK, Some(carol.sdp("sendrecv")));
    bob.answer_in_dialog(Method::Bye).await;
    assert_eq!(transfer.await.unwrap(), Ok(()));
    let mut progress = Vec::new();
    while progress.last() != Some(&TransferProgress::Answered) {
        let event = next_event(&mut events, |e| matches!(e, CallEvent::Transferred { .. })).await;
        if let CallEvent::Transferred { progress: p, .. } = event {
            progress.push(p);
        }
    }
    assert_eq!(
        progress,
        [TransferProgress::Trying, TransferProgress::Answered]
    );

    // The caller now talks to the target, through the same relay port.
    media_reaches(&alice, media_of(&alice_ok), &carol);
    let active = pbx.engine.active_calls();
    assert_eq!(active[0].callee, format!("sip:1003@{DOMAIN}"));

    // The caller hangs up: the target gets the BYE.
    hang_up_with(&alice, &alice_dialog, &mut carol).await;
    assert_eq!(next_ended(&mut events).await.0, "ANSWERED");
    idle(&pbx.engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn click_to_dial_rings_the_caller_then_the_callee() {
    let pbx = pbx(|_| {}, 30800).await;
    let mut events = pbx.engine.subscribe();
    let mut alice = Phone::new("1001", "secret1", pbx.addr).await;
    let mut bob = Phone::new("1002", "secret2", pbx.addr).await;
    alice.register().await;
    bob.register().await;

    let originate = |caller: &str, callee: &str| Originate {
        caller: caller.into(),
        callee: callee.into(),
        record: None,
    };
    assert!(matches!(
        pbx.engine.originate(originate("1001", "10 02")),
        Err(CommandError::Invalid(_))
    ));
    let call_id = pbx.engine.originate(originate("1001", "1002")).unwrap();

    // The caller's phone rings first, the callee's number as the caller.
    let (tx, ring_alice) = alice.incoming().await;
    assert_eq!(ring_alice.call_id(), Some(call_id.as_str()));
    assert!(ring_alice.from().unwrap().uri().as_str().contains("1002"));
    alice.answer(tx, &ring_alice, StatusCode::OK, Some(alice.sdp("sendrecv")));
    // Then the callee's, the caller's number as the caller.
    let (tx, ring_bob) = bob.incoming().await;
    assert!(ring_bob.from().unwrap().uri().as_str().contains("1001"));
    bob.answer(tx, &ring_bob, StatusCode::OK, Some(bob.sdp("sendrecv")));
    let answered = next_event(&mut events, |e| matches!(e, CallEvent::Answered { .. })).await;
    assert_eq!(
        answered,
        CallEvent::Answered {
            call_id: call_id.clone()
        }
    );

    // Media both ways through the relay.
    media_reaches(&alice, media_of(&ring_alice), &bob);
    media_reaches(&bob, media_of(&ring_bob), &alice);

    assert_eq!(
        pbx.engine
            .command(&call_id, CallCommand::Hangup { reason: None })
            .await,
        Ok(())
    );
    alice.answer_in_dialog(Method::Bye).await;
    bob.answer_in_dialog(Method::Bye).await;
    assert_eq!(next_ended(&mut events).await.0, "ANSWERED");
    idle(&pbx.engine).await;
    let record = &stored(&pbx)[0];
    assert_eq!(
        (record.caller.number.as_str(), record.callee.number.as_str()),
        ("1001", "1002")
    );

    // A caller with no phone: the call ends at once, not answered.
    let call_id = pbx.engine.originate(originate("1003", "1002")).unwrap();
    let (disposition, _) = next_ended(&mut events).await;
    assert_ne!(disposition, "ANSWERED", "{call_id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ringing_call_is_accepted_with_the_applications_sdp() {
    let pbx = pbx(|_| {}, 30900).await;
    let mut events = pbx.engine.subscribe();
    let alice = Phone::new("1001", "secret1", pbx.addr).await;
    let mut bob = Phone::new("1002", "secret2", pbx.addr).await;
    bob.register().await;
    let (mut invite, call_id) = alice.call("1002", alice.sdp("sendrecv")).await;
    let (_, _offer) = bob.incoming().await;

    let app_sdp = "v=0\r\no=app 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 40400 RTP/AVP 0\r\na=sendrecv\r\n";
    let bad = CallCommand::Accept {
        sdp: "nonsense".into(),
    };
    assert!(matches!(
        pbx.engine.command(&call_id, bad).await,
        Err(CommandError::Invalid(_))
    ));
    let hold = CallCommand::Hold { side: None };
    assert_eq!(
        pbx.engine.command(&call_id, hold).await,
        Err(CommandError::WrongState("ringing"))
    );
    let accept = CallCommand::Accept {
        sdp: app_sdp.into(),
    };
    assert_eq!(pbx.engine.command(&call_id, accept).await, Ok(()));
    let (ok, dialog) = alice.answered(&mut invite).await;
    assert_eq!(std::str::from_utf8(ok.body()).unwrap(), app_sdp);
    // The callee's phone stops ringing.
    loop {
        let event = timeout(LIMIT, bob.events.recv()).await.unwrap().unwrap();
        if matches!(event, EndpointEvent::Cancelled(_)) {
            break;
        }
    }
    let mut bye = alice.hang_up(&dialog);
    assert_eq!(final_of(&mut bye).await.0.status(), Some(StatusCode::OK));
    assert_eq!(next_ended(&mut events).await.0, "ANSWERED");
    idle(&pbx.engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attended_transfer_joins_two_calls_and_lets_the_transferor_go() {
    let (pbx, mut events, [alice, mut bob, mut carol]) = three_phones(32200).await;
    // Alice talks to Bob; Bob calls Carol to announce the transfer.
    let first = answered_call(&alice, &mut bob, &[]).await;
    let (mut invite, second) = bob.call("1003", bob.sdp("sendrecv")).await;
    let (tx, offer) = carol.incoming().await;
    carol.answer(tx, &offer, StatusCode::OK, Some(carol.sdp("sendrecv")));
    bob.answered(&mut invite).await;

    let a = (first.call_id.as_str(), CallSide::Caller);
    let b = (second.as_str(), CallSide::Callee);
    let same = pbx
        .engine
        .attended_transfer(a, (first.call_id.as_str(), CallSide::Callee));
    assert!(matches!(same.await, Err(CommandError::Invalid(_))));
    let engine = pbx.engine.clone();
    let (a_id, b_id) = (first.call_id.clone(), second.clone());
    let join =
        tokio::spawn(async move { engine.attended_transfer((&a_id, a.1), (&b_id, b.1)).await });
    // Bob is let go from both calls.
    bob.answer_in_dialog(Method::Bye).await;
    bob.answer_in_dialog(Method::Bye).await;
    assert_eq!(join.await.unwrap(), Ok(()));
    // Call A names the party it took by number: Carol, call B's callee.
    let joined = next_event(&mut events, |e| matches!(e, CallEvent::Transferred { .. })).await;
    assert!(
        matches!(&joined, CallEvent::Transferred { call_id, target, .. }
            if *call_id == first.call_id && target == "1003"),
        "{joined:?}"
    );
    // Alice and Carol hear each other, through both calls' relay ports.
    media_reaches(&alice, media_of(&first.ok), &carol);
    media_reaches(&carol, media_of(&offer), &alice);
    // The second call is over, the first goes on with Alice and Carol.
    let ended = next_event(&mut events, |e| matches!(e, CallEvent::Ended { .. })).await;
    assert!(matches!(ended, CallEvent::Ended { call_id, .. } if call_id == second));
    hang_up_with(&alice, &first.dialog, &mut carol).await;
    assert_eq!(next_ended(&mut events).await.0, "ANSWERED");
    idle(&pbx.engine).await;
    let records = stored(&pbx);
    let transferred = records.iter().find(|r| r.call_id == second).unwrap();
    assert_eq!(transferred.hangup.reason.as_deref(), Some("transferred"));
}
