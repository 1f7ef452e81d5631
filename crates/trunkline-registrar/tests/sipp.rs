//! SIPp registers against the `registrar` example over UDP and TCP: digest
//! authentication (`-au`/`-ap`), a refresh reusing the nonce, removal; a
//! wrong password; an expiry under the minimum. The registrar's event
//! lines are checked too.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use trunkline_testkit::{Reaped, example, free_port, sipp};

/// The registrar example on a free port, and its output lines after the
/// first.
fn start_registrar() -> (Reaped, u16, mpsc::Receiver<String>) {
    let port = free_port();
    let mut registrar = Reaped::spawn(
        Command::new(example("trunkline-registrar", "registrar"))
            .args([
                format!("127.0.0.1:{port}"),
                "127.0.0.1".into(),
                "1001:secret".into(),
            ])
            .stdout(Stdio::piped()),
    );
    let mut lines = registrar.lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.starts_with("listening"), "registrar says {first:?}");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    (registrar, port, receiver)
}

/// Runs `scenario` as extension 1001 with `password`; SIPp's exit code.
fn run(scenario: &str, transport: &str, port: u16, password: &str) -> Option<i32> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    let mut command = sipp();
    command
        .args(["-sf", &file.display().to_string(), "-s", "1001"])
        .args(["-au", "1001", "-ap", password, "-m", "1"])
        .args(["-t", transport, "-p", &free_port().to_string()])
        .arg(format!("127.0.0.1:{port}"));
    Reaped::spawn(&mut command).exit_code(Duration::from_secs(60))
}

/// The event names the registrar printed within a second.
fn events(lines: &mpsc::Receiver<String>) -> Vec<String> {
    let mut events = Vec::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) {
        if !line.starts_with('{') {
            continue;
        }
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        events.push(json["event"].as_str().unwrap().to_owned());
    }
    events
}

#[test]
fn sipp_registers_refreshes_and_unregisters_over_udp_and_tcp() {
    for transport in ["u1", "t1"] {
        let (_registrar, port, lines) = start_registrar();
        assert_eq!(
            run("register.xml", transport, port, "secret"),
            Some(0),
            "{transport}"
        );
        assert_eq!(
            events(&lines),
            vec!["registered", "unregistered"],
            "{transport}"
        );
    }
}

#[test]
fn sipp_with_a_wrong_password_is_challenged_again() {
    let (_registrar, port, lines) = start_registrar();
    assert_eq!(
        run("register_wrong_password.xml", "u1", port, "guess"),
        Some(0)
    );
    assert!(events(&lines).is_empty());
}

#[test]
fn sipp_asking_for_30_seconds_gets_423() {
    let (_registrar, port, lines) = start_registrar();
    assert_eq!(run("register_too_brief.xml", "u1", port, "secret"), Some(0));
    assert!(events(&lines).is_empty());
}
