//! SIPp (Debian `sip-tester`) against the `uas` and `uac` examples on
//! loopback: OPTIONS and INVITE/ACK/BYE both ways, over UDP and TCP, and
//! over UDP with SIPp dropping 10% of the packets, where only
//! retransmissions get the calls through. `.ci/setup` installs SIPp.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;
use trunkline_testkit::{Reaped, example, free_port, sipp, sipp_scenario, wait_listener};

/// Starts the `uas` example and waits until it listens.
fn start_uas() -> (Reaped, SocketAddr) {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut uas = Reaped::spawn(
        Command::new(example("trunkline-transaction", "uas"))
            .arg(addr.to_string())
            .stdout(Stdio::piped()),
    );
    let mut lines = uas.lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.starts_with("listening"), "uas says {first:?}");
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (uas, addr)
}

/// SIPp as the client against our UAS: `calls` calls must all succeed.
fn sipp_calls_us(transport: &str, scenario_args: &[&str], calls: u32, lost: Option<u32>) {
    let (_uas, uas) = start_uas();
    let mut command = sipp();
    command
        .args(scenario_args)
        .args(["-t", transport, "-p", &free_port().to_string()])
        .args(["-m", &calls.to_string(), "-r", "20"])
        .arg(uas.to_string());
    if let Some(percent) = lost {
        command.args(["-lost", &percent.to_string()]);
    }
    let mut sipp = Reaped::spawn(&mut command);
    let code = sipp.exit_code(Duration::from_secs(120));
    assert_eq!(code, Some(0), "SIPp reports failed calls (exit {code:?})");
}

/// Our UAC against SIPp as the server: `count` of them must succeed.
fn we_call_sipp(
    transport: &str,
    scenario_args: &[&str],
    uac_args: &[&str],
    count: u32,
    lost: Option<u32>,
) {
    let port = free_port();
    let mut command = sipp();
    command
        .args(scenario_args)
        .args(["-t", transport, "-p", &port.to_string()]);
    if let Some(percent) = lost {
        command.args(["-lost", &percent.to_string()]);
    }
    let mut sipp = Reaped::spawn(&mut command);
    wait_listener(&mut sipp, port).unwrap_or_else(|e| panic!("SIPp: {e}"));
    let mut uac = Reaped::spawn(
        Command::new(example("trunkline-transaction", "uac"))
            .arg(format!("127.0.0.1:{port}"))
            .args(uac_args)
            .args(["--count", &count.to_string()])
            .stdout(Stdio::null()),
    );
    let code = uac.exit_code(Duration::from_secs(120));
    assert_eq!(
        code,
        Some(0),
        "our UAC reports failed calls (exit {code:?})"
    );
}

#[test]
fn sipp_calls_us_over_udp() {
    sipp_calls_us("u1", &["-sn", "uac"], 20, None);
}

#[test]
fn sipp_calls_us_over_tcp() {
    sipp_calls_us("t1", &["-sn", "uac"], 20, None);
}

#[test]
fn sipp_calls_us_over_udp_losing_10_percent() {
    sipp_calls_us("u1", &["-sn", "uac"], 20, Some(10));
}

#[test]
fn sipp_sends_us_options_over_udp_and_tcp() {
    let options = sipp_scenario(env!("CARGO_MANIFEST_DIR"), "options_uac.xml");
    sipp_calls_us("u1", &["-sf", &options], 20, None);
    sipp_calls_us("t1", &["-sf", &options], 20, None);
}

#[test]
fn we_call_sipp_over_udp() {
    we_call_sipp("u1", &["-sn", "uas"], &[], 10, None);
}

#[test]
fn we_call_sipp_over_tcp() {
    we_call_sipp("t1", &["-sn", "uas"], &["--tcp"], 10, None);
}

#[test]
fn we_call_sipp_over_udp_losing_10_percent() {
    let uas = sipp_scenario(env!("CARGO_MANIFEST_DIR"), "uas_lossy.xml");
    we_call_sipp("u1", &["-sf", &uas], &[], 10, Some(10));
}

#[test]
fn we_send_sipp_options_over_udp_and_tcp() {
    let options = sipp_scenario(env!("CARGO_MANIFEST_DIR"), "options_uas.xml");
    we_call_sipp("u1", &["-sf", &options], &["--options"], 10, None);
    we_call_sipp("t1", &["-sf", &options], &["--options", "--tcp"], 10, None);
}
