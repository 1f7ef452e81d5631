//! The `sipcat` example's command-line contract, which other checks rely on:
//! one `FILE: ok METHOD-or-STATUS` / `FILE: error REASON` line per file,
//! exit status 1 if any file failed, `--json` for one JSON object per line.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::path::PathBuf;
use std::process::Command;

/// `cargo test` builds the package's examples next to the test binaries.
fn sipcat() -> Command {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir
        .join("examples")
        .join(format!("sipcat{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} missing: run through `cargo test`",
        path.display()
    );
    Command::new(path)
}

fn data(name: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/data/rfc4475", name]
        .iter()
        .collect();
    p.to_string_lossy().into_owned()
}

#[test]
fn one_line_per_file_and_exit_status() {
    let (wsinv, unreason, badvers) = (data("wsinv.dat"), data("unreason.dat"), data("badvers.dat"));
    let out = sipcat().args([&wsinv, &unreason]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{wsinv}: ok INVITE\n{unreason}: ok 200\n")
    );
    let out = sipcat().args([&wsinv, &badvers]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{wsinv}: ok INVITE\n{badvers}: error unsupported SIP version at byte 33\n")
    );
}

#[test]
fn json_output() {
    let out = sipcat()
        .args(["--json", &data("esc01.dat"), &data("clerr.dat")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["method"], "INVITE");
    assert_eq!(lines[0]["uri"]["user"], "sips%3Auser%40example.com");
    assert_eq!(lines[0]["via"][0]["branch"], "z9hG4bKkdjuw");
    assert_eq!(lines[0]["from"]["params"][0][1], "938");
    assert_eq!(lines[1]["ok"], false);
    assert_eq!(lines[1]["status"], 400);
    assert_eq!(lines[1]["header"], "Content-Length");
}

#[test]
fn unreadable_files_and_usage_exit_2() {
    assert_eq!(sipcat().output().unwrap().status.code(), Some(2));
    assert_eq!(
        sipcat()
            .arg("/nonexistent/file")
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}
