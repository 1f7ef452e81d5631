//! `trunkline check-config` and `trunkline default-config` against the
//! configurations in docs/configuration.md and faulty files: exit codes,
//! and faults that name their keys.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use trunkline_e2e::{check_config, docs_block, trunkline};

fn stderr_lines(output: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_docs_complete_example_is_valid() {
    let output = check_config(&docs_block("complete example"));
    assert_eq!(output.status.code(), Some(0), "{:?}", stderr_lines(&output));
    assert!(String::from_utf8_lossy(&output.stdout).ends_with(": ok\n"));
}

#[test]
fn the_built_in_configuration_is_valid_and_is_the_one_the_docs_show() {
    let printed = trunkline().arg("default-config").output().unwrap();
    assert_eq!(printed.status.code(), Some(0));
    let printed = String::from_utf8(printed.stdout).unwrap();
    assert_eq!(printed, docs_block("built-in configuration"));
    let output = check_config(&printed);
    assert_eq!(output.status.code(), Some(0), "{:?}", stderr_lines(&output));
}

#[test]
fn faulty_files_exit_1_with_every_fault_named_by_key() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[sip]\nlisten = [{ transport = \"udp\", address = \"x\" }]\n",
            &["sip.listen[0].address: invalid socket address \"x\" (line 2)"],
        ),
        (
            "[sip]\nlisen = []\n",
            &[
                "sip.lisen: unknown field `lisen`, expected one of `listen`, `realm`, `tls` (line 2)",
            ],
        ),
        (
            "[sip]\nlisten = [{ transport = \"sctp\", address = \"127.0.0.1:5060\" }]\n",
            &[
                "sip.listen[0].transport: unknown variant `sctp`, expected one of `udp`, `tcp`, `tls`, `ws`, `wss` (line 2)",
            ],
        ),
        (
            "[api]\nkeys = [{ name = \"ops\", key = \"0123456789abcdef\", scope = \"owner\" }]\n",
            &[
                "api.keys[0].scope: unknown variant `owner`, expected one of `read`, `control`, `admin` (line 2)",
            ],
        ),
        (
            "[ami]\nallows = [\"10.0.0.0/33\"]\n",
            &["ami.allows[0]: invalid network (CIDR) \"10.0.0.0/33\" (line 2)"],
        ),
        (
            "[calls]\nring_timeout_secs = 0\n",
            &["calls.ring_timeout_secs: must be at least 1"],
        ),
        (
            "[registrar]\nmax_expires = \"soon\"\n",
            &["registrar.max_expires: invalid type: string \"soon\", expected u32 (line 2)"],
        ),
        (
            "[[routes]]\nname = \"out\"\nmatch = { prefix = \"0\" }\nto = { trunk = \"carrier\" }\n\
             [[routes]]\nname = \"desk\"\nmatch = { prefix = \"1\" }\nto = { group = \"desk\" }\n",
            &[
                "routes[0].to.trunk: no trunk \"carrier\"",
                "routes[1].to.group: no group \"desk\"",
            ],
        ),
        (
            "[[routes]]\nname = \"out\"\nmatch = { regex = \"(0\" }\nto = { trunk = \"carrier\" }\n",
            &["routes[0].match.regex: invalid regular expression \"(0\": unclosed group (line 3)"],
        ),
        (
            "[sip]\nlisten = [{ transport = \"tls\", address = \"127.0.0.1:5061\" }]\n\
             [[trunks]]\nname = \"t\"\nuri = \"sip:t.example\"\ndid = { \"100\" = \"1001\" }\n",
            &[
                "sip.listen[0].transport: a tls listener needs [sip.tls] certificate and private_key",
                "trunks[0].did.\"100\": no extension \"1001\"",
            ],
        ),
        ("[sip\n", &["line 1: unclosed table, expected `]`"]),
    ];
    for (text, expected) in cases {
        let output = check_config(text);
        assert_eq!(output.status.code(), Some(1), "{text}");
        let mut lines = stderr_lines(&output);
        let summary = lines.pop().unwrap();
        let s = if expected.len() == 1 { "" } else { "s" };
        assert!(
            summary.ends_with(&format!(
                "trunkline.toml: {} error{s} in the configuration",
                expected.len()
            )),
            "{summary}"
        );
        assert_eq!(&lines, expected, "{text}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn a_missing_file_and_a_bad_command_line_fail() {
    let output = trunkline()
        .args(["check-config", "/nonexistent/trunkline.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("/nonexistent/trunkline.toml: cannot read: "),
        "{stderr}"
    );

    // `--config` refuses a faulty file the same way, before binding anything.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[http]\naddress = \"nowhere\"\n").unwrap();
    let output = trunkline().arg("--config").arg(&file).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .starts_with("http.address: invalid socket address \"nowhere\" (line 2)\n")
    );

    let output = trunkline().arg("--frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("usage: trunkline"));
}
