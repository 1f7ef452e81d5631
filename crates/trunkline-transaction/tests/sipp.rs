//! SIPp (Debian `sip-tester`) against the `uas` and `uac` examples on
//! loopback: OPTIONS and INVITE/ACK/BYE both ways, over UDP and TCP, and
//! over UDP with SIPp dropping 10% of the packets, where only
//! retransmissions get the calls through. `.ci/setup` installs SIPp.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

/// A child process killed when the test ends, however it ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Reaped {
    /// Waits for the process to exit by itself within `limit`.
    fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// The examples, built once per test run with the profile of the tests.
fn example(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "trunkline-transaction",
                "--example",
                "uas",
                "--example",
                "uac",
            ])
            .status()
            .unwrap();
        assert!(status.success(), "building the examples");
    });
    // target/<profile>/deps/sipp-<hash> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

fn sipp() -> Command {
    let mut command = Command::new("sipp");
    command
        .args([
            "-nostdin",
            "-i",
            "127.0.0.1",
            "-timeout",
            "60s",
            "-timeout_error",
        ])
        .args(["-trace_err", "-error_file", "/dev/stderr"])
        .stdout(Stdio::null());
    command
}

/// A loopback port free on both UDP and TCP.
fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// Starts the `uas` example and waits until it listens.
fn start_uas() -> (Reaped, SocketAddr) {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut child = Command::new(example("uas"))
        .arg(addr.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.starts_with("listening"), "uas says {first:?}");
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (Reaped(child), addr)
}

fn scenario(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
        .display()
        .to_string()
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
    let mut sipp = Reaped(command.spawn().unwrap());
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
    let _sipp = Reaped(command.spawn().unwrap());
    // SIPp listens once it has started; give it a moment, bounded.
    std::thread::sleep(Duration::from_millis(300));
    let mut uac = Reaped(
        Command::new(example("uac"))
            .arg(format!("127.0.0.1:{port}"))
            .args(uac_args)
            .args(["--count", &count.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
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
    let options = scenario("options_uac.xml");
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
    we_call_sipp("u1", &["-sn", "uas"], &[], 10, Some(10));
}

#[test]
fn we_send_sipp_options_over_udp_and_tcp() {
    let options = scenario("options_uas.xml");
    we_call_sipp("u1", &["-sf", &options], &["--options"], 10, None);
    we_call_sipp("t1", &["-sf", &options], &["--options", "--tcp"], 10, None);
}
