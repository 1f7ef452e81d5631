//! baresip (Debian `baresip-core`) registers with the `registrar` example
//! using digest authentication and stays registered across refreshes.
//!
//! The registrar offers MD5 only here: baresip 1.0's digest code gives up
//! on the whole challenge when one of the offered algorithms is unknown
//! to it (SHA-256), instead of answering the one it knows.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use trunkline_testkit::{Reaped, example, free_port};

/// A baresip configuration directory, removed when dropped.
struct BaresipHome(std::path::PathBuf);

impl Drop for BaresipHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn baresip_registers_and_stays_registered_across_refreshes() {
    let port = free_port();
    let mut registrar = Reaped::spawn(
        Command::new(example("trunkline-registrar", "registrar"))
            .arg(format!("127.0.0.1:{port}"))
            .args([
                "127.0.0.1",
                "--min-expires=10",
                "--algorithms=MD5",
                "1001:secret",
            ])
            .stdout(Stdio::piped()),
    );
    let (sender, lines) = mpsc::channel();
    let output = registrar.lines();
    std::thread::spawn(move || {
        for line in output.map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    assert!(
        lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap()
            .starts_with("listening")
    );

    let home = BaresipHome(std::env::temp_dir().join(format!("trunkline-baresip-{port}")));
    std::fs::create_dir_all(&home.0).unwrap();
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{}\nsip_transports udp\n\
         net_interface 127.0.0.1\nmodule_path /usr/lib/baresip/modules\n\
         module g711.so\nmodule_app account.so\n",
        free_port()
    );
    std::fs::write(home.0.join("config"), config).unwrap();
    let account = format!("<sip:1001@127.0.0.1:{port};transport=udp>;auth_pass=secret;regint=10\n");
    std::fs::write(home.0.join("accounts"), account).unwrap();
    let _baresip = Reaped::spawn(
        Command::new("baresip")
            .arg("-f")
            .arg(&home.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );

    // The first registration and two refreshes, each a 200, with one
    // `registered` event and never an `offline` one.
    let deadline = Instant::now() + Duration::from_secs(40);
    let (mut accepted, mut events) = (0, Vec::new());
    while accepted < 3 && Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        if line == "REGISTER 200 1001" {
            accepted += 1;
        } else if line.starts_with('{') {
            let event: serde_json::Value = serde_json::from_str(&line).unwrap();
            events.push(event["event"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(accepted, 3, "registered, then refreshed twice");
    assert_eq!(events, vec!["registered"]);
}
