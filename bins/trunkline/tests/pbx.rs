//! The `trunkline` binary running on loopback ports from a temporary
//! configuration: the health endpoint, registration by SIPp over UDP and
//! TCP, random demo passwords, INVITEs challenged and refused for an
//! unregistered callee, a call between two SIPp phones with its record,
//! and graceful shutdown on SIGTERM and SIGINT.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::{Pbx, sipp};
use std::path::Path;
use std::time::Duration;
use trunkline_cdr::{CdrQuery, CdrStore, Disposition, SqliteCdrStore};
use trunkline_testkit::{Reaped, free_port};

/// How long a graceful shutdown with no call in progress may take.
const STOP_LIMIT: Duration = Duration::from_secs(10);

const EXTENSIONS: &str = r#"
[[extensions]]
number = "1001"
password = "first-secret"

[[extensions]]
number = "1002"
password = "second-secret"
"#;

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
    assert_eq!(keys.len(), 4, "{health}");

    assert_eq!(pbx.get("/ami/v1/nothing").0, 404);
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
    assert_eq!(pbx.health()["active_calls"], 0);
}

/// The first real call: SIPp registers 1002 from a port, a SIPp UAS then
/// answers on that port (the registration's flow, where the PBX sends),
/// and SIPp as 1001 calls 1002 through the PBX, talks and hangs up. The
/// call leaves an `ANSWERED` record in the CDR store.
#[test]
fn sipp_calls_a_registered_sipp_through_the_pbx() {
    let pbx = Pbx::start(EXTENSIONS);
    let callee_port = free_port();
    assert_eq!(register_from(&pbx, callee_port), Some(0), "{}", pbx.log());
    let mut callee = trunkline_testkit::sipp();
    callee
        .args(["-sn", "uas", "-m", "1", "-t", "u1"])
        .args(["-p", &callee_port.to_string()])
        .args(["-mp", &free_port().to_string()]);
    let mut callee = Reaped::spawn(&mut callee);
    // SIPp listens once it has started; give it a moment, bounded.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        sipp(
            &pbx,
            "call_answered.xml",
            "1002",
            "u1",
            &["-au", "1001", "-ap", "first-secret"]
        ),
        Some(0),
        "{}",
        pbx.log()
    );
    assert_eq!(
        callee.exit_code(Duration::from_secs(30)),
        Some(0),
        "{}",
        pbx.log()
    );
    assert_eq!(pbx.health()["active_calls"], 0);

    let store = SqliteCdrStore::open(pbx.data().join("cdr.sqlite")).unwrap();
    let records = store.query(&CdrQuery::default()).unwrap().records;
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

    let callee_port = free_port();
    assert_eq!(register_from(&pbx, callee_port), Some(0), "{}", pbx.log());
    let mut callee = trunkline_testkit::sipp();
    callee
        .args(["-sn", "uas", "-m", "1", "-t", "u1"])
        .args(["-p", &callee_port.to_string()])
        .args(["-mp", &free_port().to_string()]);
    let mut callee = Reaped::spawn(&mut callee);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        sipp(
            &pbx,
            "call_answered.xml",
            "1002",
            "u1",
            &["-au", "1001", "-ap", "first-secret"]
        ),
        Some(0),
        "{}",
        pbx.log()
    );
    assert_eq!(callee.exit_code(Duration::from_secs(30)), Some(0));
    let store = SqliteCdrStore::open(pbx.data().join("cdr.sqlite")).unwrap();
    let records = store.query(&CdrQuery::default()).unwrap().records;
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

/// SIPp as 1002 registers from a port and then runs `callee` there, while
/// SIPp as 1001 runs `caller` against the PBX; both must succeed.
fn call_between(pbx: &Pbx, caller: &str, callee: &str) {
    let callee_port = free_port();
    assert_eq!(register_from(pbx, callee_port), Some(0), "{}", pbx.log());
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(callee);
    let mut phone = trunkline_testkit::sipp();
    phone
        .arg("-sf")
        .arg(&file)
        .args(["-m", "1", "-t", "u1", "-p", &callee_port.to_string()]);
    let mut phone = Reaped::spawn(&mut phone);
    std::thread::sleep(Duration::from_millis(300));
    let args = ["-au", "1001", "-ap", "first-secret"];
    assert_eq!(
        sipp(pbx, caller, "1002", "u1", &args),
        Some(0),
        "{caller}: {}",
        pbx.log()
    );
    assert_eq!(
        phone.exit_code(Duration::from_secs(30)),
        Some(0),
        "{callee}: {}",
        pbx.log()
    );
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
    let mut phones = Vec::new();
    for callee in ["uas_ring.xml", "uas_answer.xml"] {
        let port = free_port();
        assert_eq!(register_from(&pbx, port), Some(0), "{}", pbx.log());
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(callee);
        let mut phone = trunkline_testkit::sipp();
        phone
            .arg("-sf")
            .arg(&file)
            .args(["-m", "1", "-t", "u1", "-p", &port.to_string()]);
        phones.push((callee, Reaped::spawn(&mut phone)));
    }
    assert_eq!(pbx.health()["registrations"], 2);
    std::thread::sleep(Duration::from_millis(300));
    let args = ["-au", "1001", "-ap", "first-secret"];
    assert_eq!(
        sipp(&pbx, "call_answered.xml", "1002", "u1", &args),
        Some(0),
        "{}",
        pbx.log()
    );
    for (callee, mut phone) in phones {
        assert_eq!(
            phone.exit_code(Duration::from_secs(30)),
            Some(0),
            "{callee}: {}",
            pbx.log()
        );
    }
    let store = SqliteCdrStore::open(pbx.data().join("cdr.sqlite")).unwrap();
    let records = store.query(&CdrQuery::default()).unwrap().records;
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
    let mut phones = Vec::new();
    for (user, password, scenario) in [
        ("1002", "second-secret", "uas_ring.xml"),
        ("1003", "third-secret", "uas_answer.xml"),
    ] {
        let port = free_port();
        assert_eq!(
            register_as(&pbx, port, user, password),
            Some(0),
            "{}",
            pbx.log()
        );
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/sipp")
            .join(scenario);
        let mut phone = trunkline_testkit::sipp();
        phone
            .arg("-sf")
            .arg(&file)
            .args(["-m", "1", "-t", "u1", "-p", &port.to_string()]);
        phones.push((user, Reaped::spawn(&mut phone)));
    }
    std::thread::sleep(Duration::from_millis(300));
    let args = ["-au", "1001", "-ap", "first-secret"];
    assert_eq!(
        sipp(&pbx, "call_answered.xml", "500", "u1", &args),
        Some(0),
        "{}",
        pbx.log()
    );
    for (user, mut phone) in phones {
        assert_eq!(
            phone.exit_code(Duration::from_secs(30)),
            Some(0),
            "{user}: {}",
            pbx.log()
        );
    }
    let store = SqliteCdrStore::open(pbx.data().join("cdr.sqlite")).unwrap();
    let record = &store.query(&CdrQuery::default()).unwrap().records[0];
    assert_eq!(record.disposition, Disposition::Answered);
    assert_eq!(record.destination_channel.as_deref(), Some("route/desk"));
}

/// SIPp registers 1002 from `port` (where the PBX will send its calls).
fn register_from(pbx: &Pbx, port: u16) -> Option<i32> {
    register_as(pbx, port, "1002", "second-secret")
}

/// SIPp registers `user` from `port`.
fn register_as(pbx: &Pbx, port: u16, user: &str, password: &str) -> Option<i32> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/register.xml");
    let mut command = trunkline_testkit::sipp();
    command
        .arg("-sf")
        .arg(&file)
        .args(["-s", user, "-m", "1", "-t", "u1"])
        .args(["-au", user, "-ap", password])
        .args(["-p", &port.to_string()])
        .arg(format!("127.0.0.1:{}", pbx.sip_port));
    Reaped::spawn(&mut command).exit_code(Duration::from_secs(60))
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
