//! schemathesis (PyPI) fuzzes the real binary's HTTP API from the OpenAPI
//! document it serves, with an admin key, and no request may get a server
//! error (5xx). `.ci/setup` installs it in a virtual environment; the
//! binary `st` is looked for there, then on the PATH.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use trunkline_e2e::*;
use trunkline_testkit::Reaped;

const KEY: &str = "schemathesis-admin-key-0123456789";

/// `st` from `.ci/setup`'s virtual environment, else from the PATH.
fn schemathesis() -> Command {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let installed = home.join(".local/share/trunkline/venv/bin/st");
    if installed.exists() {
        Command::new(installed)
    } else {
        Command::new("st")
    }
}

#[test]
fn schemathesis_finds_no_server_error() {
    let pbx = Pbx::start(&format!(
        "{EXTENSIONS}\n[api]\nkeys = [{{ name = \"st\", key = \"{KEY}\", scope = \"admin\" }}]\n"
    ));
    let report = pbx.dir.path().join("schemathesis.txt");
    let mut command = schemathesis();
    command
        .arg("run")
        .arg(format!(
            "http://127.0.0.1:{}/api/v1/openapi.json",
            pbx.http_port
        ))
        .args(["-H", &format!("Authorization: Bearer {KEY}")])
        .args(["--checks", "not_a_server_error"])
        .args(["--max-examples", "40", "--seed", "20261123"])
        .current_dir(pbx.dir.path())
        .stdout(std::fs::File::create(&report).unwrap())
        .stderr(Stdio::null());
    let code = Reaped::spawn(&mut command).exit_code(Duration::from_secs(300));
    let output = std::fs::read_to_string(&report).unwrap_or_default();
    assert_eq!(
        code,
        Some(0),
        "schemathesis (installed by .ci/setup) found a server error or could not run:\n{output}\nlog:\n{}",
        pbx.log()
    );
    assert!(output.contains("passed"), "{output}");
}
