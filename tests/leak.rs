//! Calls never leak: SIPp as 1001 makes 10,000 calls to SIPp as 1002
//! through the binary over UDP (digest, ring, answer, BYE, media
//! anchored), in two halves. After each half, once the transaction layer
//! has let go of what it keeps for late retransmissions (64·T1 = 32 s),
//! no call, transaction or dialog is left (the health document counts
//! them), and the second half grows the resident set far less than the
//! first did: a call's state (two dialogs, their messages, the record
//! being built: well over 8 KiB) left behind per call would grow it as
//! much again.
//!
//! The resident set is measured with one malloc arena
//! (`MALLOC_ARENA_MAX=1`): with one arena per thread, glibc spreads the
//! same working set over more pages as the calls move between tokio's
//! threads, and the resident set creeps up without anything being held.
//! Leaks finer than this test sees are the engine's own leak test's to
//! find: it counts every byte allocated and freed.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::time::Duration;
use trunkline_e2e::{EXTENSIONS, Pbx, phone_for, phones_done};
use trunkline_testkit::{Reaped, free_port};

const HALF: u32 = 5_000;

/// How long the transaction layer keeps a finished call's transactions
/// (timers J and K, RFC 6026's Accepted state: 64·T1), and a margin.
const SETTLE: Duration = Duration::from_secs(36);

fn resident_kib(pbx: &Pbx) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pbx.process.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// SIPp as 1001 makes `calls` calls to 1002, 150 a second (what a debug
/// build on a loaded 2-core machine keeps up with: faster, the PBX lags,
/// retransmissions cross, and SIPp, which does not answer them as a
/// phone's transaction layer would, aborts calls), at most 100 at once, then
/// the PBX finishes them and lets their transactions go.
fn calls(pbx: &Pbx, calls: u32) {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../benches/sipp/call.xml");
    let mut command = trunkline_testkit::sipp();
    command
        .args(["-sf", scenario, "-s", "1002", "-t", "u1"])
        .args(["-au", "1001", "-ap", "first-secret"])
        .args(["-m", &calls.to_string(), "-r", "150", "-l", "100"])
        .args(["-timeout", "600s"])
        .args(["-p", &free_port().to_string()])
        .arg(format!("127.0.0.1:{}", pbx.sip_port));
    let code = Reaped::spawn(&mut command).exit_code(Duration::from_secs(600));
    assert_eq!(code, Some(0), "{calls} calls: {}", pbx.log());
    pbx.wait_idle();
    std::thread::sleep(SETTLE);
}

#[test]
fn ten_thousand_calls_leave_no_call_and_no_memory_behind() {
    // Nonces lapse within the settling time, and the registrar's sweep
    // (every 5 s) forgets them.
    let config = format!(
        "{EXTENSIONS}\n[registrar]\nnonce_lifetime_secs = 20\n[media]\nmedia_proxy = \"always\"\n"
    );
    let pbx = Pbx::start_with(tempfile::tempdir().unwrap(), &config, |command| {
        // A load test logging every message at debug would measure the log.
        command.env("RUST_LOG", "warn").env("MALLOC_ARENA_MAX", "1");
    });
    // The load phone of benches/: it answers a BYE retransmitted after
    // its call ended, as a real phone's transaction layer does.
    let (callee, _) = phone_for(
        &pbx,
        "1002",
        "second-secret",
        "../../benches/sipp/answer.xml",
        2 * HALF,
    );
    let start = resident_kib(&pbx);
    calls(&pbx, HALF);
    let half = resident_kib(&pbx);
    assert_tables_empty(&pbx);
    calls(&pbx, HALF);
    phones_done(&pbx, vec![("1002", callee)]);
    let all = resident_kib(&pbx);
    assert_tables_empty(&pbx);
    eprintln!(
        "resident set: {start} KiB at start, {half} KiB after {HALF} calls, {all} KiB after {}",
        2 * HALF
    );
    // The resident set is the high-water mark of what the calls in flight
    // needed, which the first half sets; held memory would make the
    // second half add as much again.
    assert!(
        all.saturating_sub(half) < (half - start) / 2,
        "resident set: {start} KiB at start, {half} KiB after {HALF} calls, {all} KiB after {}",
        2 * HALF
    );
}

/// No call, transaction or dialog is left, and the one registration is.
fn assert_tables_empty(pbx: &Pbx) {
    let health = pbx.health();
    assert_eq!(health["active_calls"], 0, "{health}");
    assert_eq!(health["registrations"], 1, "{health}");
    assert_eq!(
        health["sip"],
        serde_json::json!({"transactions": 0, "dialogs": 0, "call_dialogs": 0}),
        "{health}"
    );
}
