//! The `trunkline` binary running on loopback ports from a temporary
//! configuration: the health endpoint, registration by SIPp over UDP and
//! TCP, random demo passwords, INVITEs challenged and refused for an
//! unregistered callee, a call between two SIPp phones with its record,
//! and graceful shutdown on SIGTERM and SIGINT.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::time::Duration;
use trunkline_cdr::{CdrQuery, CdrStore, Disposition, SqliteCdrStore};
use trunkline_e2e::{EXTENSIONS, Pbx, call_as_1001, phone, phones_done, records, sipp};

/// How long a graceful shutdown with no call in progress may take.
const STOP_LIMIT: Duration = Duration::from_secs(10);

#[test]
fn health_answers_and_the_data_directory_is_made() {
    let pbx = Pbx::start(EXTENSIONS);
    let health = pbx.health();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["active_calls"], 0, "{health}");
    assert_eq!(health["registrations"], 0, "{health}");
    assert!(health["uptime_seconds"].as_u64().unwrap() < 60, "{health}");
    let keys: Vec<&str> = health
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.len(), 8, "{health}");
    assert_eq!(
        health["sip"],
        serde_json::json!({"transactions": 0, "dialogs": 0, "call_dialogs": 0}),
        "{health}"
    );
    assert!(health["load"].is_number(), "{health}");
    assert_eq!(health["calls_per_second"], 0.0, "{health}");
    // No trunk registers.
    assert_eq!(health["trunks"], serde_json::json!([]), "{health}");

    assert_eq!(pbx.get("/ami/v1/nothing").0, 404);
    // No keys configured: the rest of the API refuses everyone.
    let (status, body) = pbx.get("/console/call-records");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains(r#""code":"unauthorized""#), "{body}");
    assert!(pbx.data().join("cdr.sqlite").is_file());
    assert!(pbx.data().join("recordings").is_dir());
    // Passwords given in the file are not printed.
    assert_eq!(pbx.stdout.len(), 1, "{:?}", pbx.stdout);
}

#[test]
fn sipp_registers_over_udp_and_tcp_and_health_counts_the_registrations() {
    let pbx = Pbx::start(EXTENSIONS);
    assert_eq!(
        sipp(
            &pbx,
            "register.xml",
            "1001",
            "u1",
            &["-au", "1001", "-ap", "first-secret"]
        ),
        Some(0),
        "{}",
        pbx.log()
    );
    assert_eq!(pbx.health()["registrations"], 1);
    assert_eq!(
        sipp(
            &pbx,
            "register.xml",
            "1002",
            "t1",
            &["-au", "1002", "-ap", "second-secret"]
        ),
        Some(0),
        "{}",
        pbx.log()
    );
    assert_eq!(pbx.health()["registrations"], 2);
    assert!(
        pbx.log().contains("aor=sip:1002@127.0.0.1"),
        "{}",
        pbx.log()
    );
}

#[test]
fn a_wrong_password_does_not_register() {
    let pbx = Pbx::start(EXTENSIONS);
    // The scenario expects a 200: with a wrong password SIPp is challenged
    // again instead and fails the call.
    assert_ne!(
        sipp(
            &pbx,
            "register.xml",
            "1001",
            "u1",
            &["-au", "1001", "-ap", "guess"]
        ),
        Some(0)
    );
    assert_eq!(pbx.health()["registrations"], 0);
}

#[test]
fn an_extension_without_a_password_gets_a_printed_random_one_that_registers() {
    let pbx = Pbx::start("[[extensions]]\nnumber = \"1003\"\n");
    let password = pbx
        .stdout
        .iter()
        .find_map(|l| l.strip_prefix("extension 1003 password "))
        .unwrap_or_else(|| panic!("no password line in {:?}", pbx.stdout))
        .to_owned();
    assert_eq!(password.len(), 16);
    assert_eq!(
        sipp(
            &pbx,
            "register.xml",
            "1003",
            "u1",
            &["-au", "1003", "-ap", &password]
        ),
        Some(0),
        "{}",
        pbx.log()
    );
    assert_eq!(pbx.health()["registrations"], 1);

    // Another start makes another password.
    let again = Pbx::start("[[extensions]]\nnumber = \"1003\"\n");
    assert!(!again.stdout.iter().any(|l| l.ends_with(&password)));
}

/// An INVITE without credentials is challenged (407); with them, a call
/// to an extension that is not registered gets 480.
#[test]
fn an_invite_is_challenged_then_an_unregistered_callee_gets_480() {
    let pbx = Pbx::start(EXTENSIONS);
    for transport in ["u1", "t1"] {
        assert_eq!(
            sipp(
                &pbx,
                "call_unreachable.xml",
                "1002",
                transport,
                &["-au", "1001", "-ap", "first-secret"]
            ),
            Some(0),
            "{transport}: {}",
            pbx.log()
        );
    }
    pbx.wait_idle();
}

/// The first real call: SIPp registers 1002 from a port, a SIPp phone
/// then answers on that port (the registration's flow, where the PBX
/// sends), and SIPp as 1001 calls 1002 through the PBX, talks and hangs
/// up. The call leaves an `ANSWERED` record in the CDR store.
#[test]
fn sipp_calls_a_registered_sipp_through_the_pbx() {
    let pbx = Pbx::start(EXTENSIONS);
    let callee = phone(&pbx, "1002", "second-secret", "uas_answer.xml");
    call_as_1001(&pbx, "call_answered.xml", "1002");
    phones_done(&pbx, vec![("1002", callee)]);
    assert_eq!(pbx.health()["active_calls"], 0);

    let records = records(&pbx);
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(
        (record.caller.number.as_str(), record.callee.number.as_str()),
        ("1001", "1002")
    );
    assert!(record.billsec <= record.duration);
}

/// A WAV header as a crash leaves it: sizes still zero, samples after it.
fn cut_off_wav(frames: usize) -> Vec<u8> {
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF\0\0\0\0WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&2u16.to_le_bytes()); // stereo
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&32000u32.to_le_bytes()); // bytes a second
    wav.extend_from_slice(&4u16.to_le_bytes()); // bytes a frame
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data\0\0\0\0");
    wav.resize(wav.len() + frames * 4, 0);
    wav
}

/// With recording on, a call's record names its WAV file, finished when
/// the record is stored; a recording cut off by a crash is repaired when
/// the PBX starts.
#[test]
fn recordings_are_written_and_repaired_at_start() {
    let config = format!("{EXTENSIONS}\n[recording]\nenabled = true\n");
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("data/recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    let crashed = recordings.join("crashed.wav");
    std::fs::write(&crashed, cut_off_wav(400)).unwrap();
    let pbx = Pbx::start_in(dir, &config);
    let repaired = hound::WavReader::open(&crashed).unwrap();
    assert_eq!(repaired.duration(), 400, "{}", pbx.log());

    let callee = phone(&pbx, "1002", "second-secret", "uas_answer.xml");
    call_as_1001(&pbx, "call_answered.xml", "1002");
    phones_done(&pbx, vec![("1002", callee)]);
    let records = records(&pbx);
    let path = records[0].recording.clone().expect("a recording reference");
    assert!(
        path.starts_with(&recordings.display().to_string()),
        "{path}"
    );
    let wav = hound::WavReader::open(&path).unwrap();
    assert_eq!((wav.spec().channels, wav.spec().sample_rate), (2, 8000));
    // SIPp sends no RTP: a second of call, all silence, is still there.
    assert!(wav.duration() >= 4000, "{} frames", wav.duration());
}

/// SIPp as 1002 answers with `callee` on a phone registered for the call,
/// while SIPp as 1001 runs `caller` against the PBX; both must succeed.
fn call_between(pbx: &Pbx, caller: &str, callee: &str) {
    let phone = phone(pbx, "1002", "second-secret", callee);
    call_as_1001(pbx, caller, "1002");
    phones_done(pbx, vec![(callee, phone)]);
}

/// Calls that are not answered, each with the disposition its record
/// keeps: the callee busy (486 → `BUSY`), nobody answering before
/// `calls.ring_timeout_secs` (480 → `NO ANSWER`, the phone cancelled),
/// the caller hanging up while it rings (487 → `NO ANSWER`), the callee
/// declining (603 → `FAILED`).
#[test]
fn busy_unanswered_cancelled_and_declined_calls_between_sipp_phones() {
    let pbx = Pbx::start(&format!("{EXTENSIONS}\n[calls]\nring_timeout_secs = 2\n"));
    call_between(&pbx, "call_busy.xml", "uas_busy.xml");
    call_between(&pbx, "call_no_answer.xml", "uas_ring.xml");
    call_between(&pbx, "call_cancel.xml", "uas_ring.xml");
    call_between(&pbx, "call_declined.xml", "uas_decline.xml");
    assert_eq!(pbx.health()["active_calls"], 0);
    let store = SqliteCdrStore::open(pbx.data().join("cdr.sqlite")).unwrap();
    let query = CdrQuery {
        order: trunkline_cdr::Order::OldestFirst,
        ..CdrQuery::default()
    };
    let records = store.query(&query).unwrap().records;
    let outcomes: Vec<(Disposition, Option<u16>)> = records
        .iter()
        .map(|r| (r.disposition, r.hangup.sip_status))
        .collect();
    assert_eq!(
        outcomes,
        [
            (Disposition::Busy, Some(486)),
            (Disposition::NoAnswer, Some(480)),
            (Disposition::NoAnswer, Some(487)),
            (Disposition::Failed, Some(603)),
        ]
    );
}

/// Parallel forking: 1002 is registered from two phones; one rings and
/// never answers, the other answers. The caller gets the answer, the
/// ringing phone a CANCEL (its scenario fails without one), and one
/// `ANSWERED` record is kept.
#[test]
fn a_call_rings_every_phone_of_the_callee_and_the_first_answer_wins() {
    let pbx = Pbx::start(EXTENSIONS);
    let phones = ["uas_ring.xml", "uas_answer.xml"]
        .map(|scenario| (scenario, phone(&pbx, "1002", "second-secret", scenario)));
    assert_eq!(pbx.health()["registrations"], 2);
    call_as_1001(&pbx, "call_answered.xml", "1002");
    phones_done(&pbx, phones.into());
    let records = records(&pbx);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].disposition, Disposition::Answered);
}

/// A group route, rung one member after the other: 500 goes to the desk,
/// 1002 then 1003. 1002's phone rings past the route's 1 s and is
/// cancelled; 1003's answers. The record names the route.
#[test]
fn a_sequential_group_route_rings_its_members_in_turn() {
    let config = format!(
        "{EXTENSIONS}\n[[extensions]]\nnumber = \"1003\"\npassword = \"third-secret\"\n\n\
         [[groups]]\nname = \"desk\"\nmembers = [\"1002\", \"1003\"]\n\n\
         [[routes]]\nname = \"desk\"\nmatch = {{ prefix = \"5\" }}\nto = {{ group = \"desk\" }}\n\
         strategy = \"sequential\"\nring_timeout_secs = 1\n"
    );
    let pbx = Pbx::start(&config);
    let phones = vec![
        ("1002", phone(&pbx, "1002", "second-secret", "uas_ring.xml")),
        (
            "1003",
            phone(&pbx, "1003", "third-secret", "uas_answer.xml"),
        ),
    ];
    call_as_1001(&pbx, "call_answered.xml", "500");
    phones_done(&pbx, phones);
    let record = &records(&pbx)[0];
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.destination_channel.as_deref(), Some("route/desk"));
}

#[test]
fn sigterm_and_sigint_stop_it_gracefully_with_exit_0() {
    for signal in ["TERM", "INT"] {
        let mut pbx = Pbx::start(EXTENSIONS);
        pbx.health();
        pbx.signal(signal);
        assert_eq!(
            pbx.process.exit_code(STOP_LIMIT),
            Some(0),
            "SIG{signal}: {}",
            pbx.log()
        );
        let log = pbx.log();
        assert!(log.contains(&format!("signal=\"SIG{signal}\"")), "{log}");
        assert!(log.contains("stopped"), "{log}");
        // Its ports are free again.
        assert!(std::net::TcpListener::bind(("127.0.0.1", pbx.http_port)).is_ok());
        assert!(std::net::UdpSocket::bind(("127.0.0.1", pbx.sip_port)).is_ok());
    }
}
