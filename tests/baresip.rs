//! The first real call with real phones: two baresip instances (Debian
//! `baresip-core`) register as 1001 and 1002, each playing a tone from a
//! WAV file (`aufile`) and dumping what it hears (`sndfile`); 1001 calls
//! 1002 through Trunkline over `ctrl_tcp`, 1002 answers by itself, they
//! talk, 1001 hangs up. Each must have heard the other's tone; the record
//! says ANSWERED; the recording has the caller's tone on the left and the
//! callee's on the right.
//!
//! Then a phone transfers its caller with its own REFER, and the caller
//! hears the target.
//!
//! The registrar offers MD5 only: baresip 1.0 gives up on a challenge that
//! also offers SHA-256 (see trunkline-registrar's baresip test).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

// Shared by two test binaries, each using part of it.
#[allow(dead_code)]
#[path = "baresip_phone.rs"]
mod baresip_phone;

use baresip_phone::{Phone, analyse};
use std::time::{Duration, Instant};
use trunkline_cdr::{CdrQuery, CdrStore, Disposition, SqliteCdrStore};
use trunkline_e2e::{EXTENSIONS, Pbx};

/// MD5 only (see above), recording on, the two test extensions.
fn config() -> String {
    format!("[registrar]\nalgorithms = [\"MD5\"]\n\n[recording]\nenabled = true\n{EXTENSIONS}")
}

/// How long the two talk.
const TALK: Duration = Duration::from_secs(5);

/// Waits (bounded) until the health document's `key` is `value`.
fn wait_for(pbx: &Pbx, key: &str, value: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while pbx.health()[key] != value {
        assert!(
            Instant::now() < deadline,
            "{key} never {value}: {}\n{}",
            pbx.health(),
            pbx.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_baresip_phones_hear_each_other_through_trunkline() {
    let pbx = Pbx::start(&config());
    let dir = tempfile::tempdir().unwrap();
    let alice = Phone::start(
        dir.path(),
        "1001",
        "first-secret",
        pbx.sip_port,
        400.0,
        false,
    );
    let bob = Phone::start(
        dir.path(),
        "1002",
        "second-secret",
        pbx.sip_port,
        1000.0,
        true,
    );
    wait_for(&pbx, "registrations", 2);

    alice.command("dial", &format!("sip:1002@127.0.0.1:{}", pbx.sip_port));
    wait_for(&pbx, "active_calls", 1);
    std::thread::sleep(TALK);
    alice.command("hangup", "");
    wait_for(&pbx, "active_calls", 0);

    let (alice_hears, alice_level) = alice.heard();
    let (bob_hears, bob_level) = bob.heard();
    assert!(
        (alice_hears - 1000.0).abs() < 20.0,
        "1001 heard {alice_hears} Hz"
    );
    assert!(
        (bob_hears - 400.0).abs() < 20.0,
        "1002 heard {bob_hears} Hz"
    );
    // The tones' amplitude is 8000: a mean level of a few thousand, not
    // the near-silence of a broken path.
    assert!(
        alice_level > 2000.0 && bob_level > 2000.0,
        "{alice_level} {bob_level}"
    );

    let store = SqliteCdrStore::open(pbx.data().join("cdr.sqlite")).unwrap();
    let records = store.query(&CdrQuery::default()).unwrap().records;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record.disposition, Disposition::Answered);
    assert!(
        (3..=TALK.as_secs() + 5).contains(&record.billsec),
        "billsec {}",
        record.billsec
    );
    let recording = record.recording.clone().expect("a recording");
    let samples: Vec<i16> = hound::WavReader::open(&recording)
        .unwrap()
        .samples::<i16>()
        .map(Result::unwrap)
        .collect();
    let (left, right): (Vec<i16>, Vec<i16>) = samples.chunks(2).map(|f| (f[0], f[1])).unzip();
    let (caller, _) = analyse(&left);
    let (callee, _) = analyse(&right);
    assert!((caller - 400.0).abs() < 20.0, "left channel at {caller} Hz");
    assert!(
        (callee - 1000.0).abs() < 20.0,
        "right channel at {callee} Hz"
    );
}

/// A phone transfers its caller with its own REFER (baresip's
/// `transfer`): the PBX carries it out, by REFER to the caller's baresip,
/// which calls the target itself; the caller then hears the target.
#[test]
fn a_baresip_phone_transfers_its_caller_with_its_own_refer() {
    let pbx = Pbx::start(&format!(
        "{}\n[[extensions]]\nnumber = \"1003\"\npassword = \"third-secret\"\n",
        config()
    ));
    let dir = tempfile::tempdir().unwrap();
    let start = |user, password, hz, answer| {
        Phone::start(dir.path(), user, password, pbx.sip_port, hz, answer)
    };
    let alice = start("1001", "first-secret", 400.0, false);
    let bob = start("1002", "second-secret", 1000.0, true);
    let _carol = start("1003", "third-secret", 700.0, true);
    wait_for(&pbx, "registrations", 3);

    alice.command("dial", &format!("sip:1002@127.0.0.1:{}", pbx.sip_port));
    wait_for(&pbx, "active_calls", 1);
    let (heard, _) = alice.hears_during(Duration::from_secs(3));
    assert!((heard - 1000.0).abs() < 20.0, "1001 hears {heard} Hz");
    bob.command("transfer", &format!("sip:1003@127.0.0.1:{}", pbx.sip_port));
    // The first call ends, 1001's own call to 1003 goes on.
    let deadline = Instant::now() + Duration::from_secs(20);
    let store = SqliteCdrStore::open(pbx.data().join("cdr.sqlite")).unwrap();
    let first = loop {
        let records = store.query(&CdrQuery::default()).unwrap().records;
        if let Some(first) = records.into_iter().next() {
            break first;
        }
        assert!(Instant::now() < deadline, "{}", pbx.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(first.hangup.reason.as_deref(), Some("transferred"));
    wait_for(&pbx, "active_calls", 1);
    let (heard, level) = alice.hears_during(Duration::from_secs(3));
    assert!(
        (heard - 700.0).abs() < 20.0 && level > 2000.0,
        "1001 hears {heard} Hz at {level}"
    );
    alice.command("hangup", "");
    wait_for(&pbx, "active_calls", 0);
}
