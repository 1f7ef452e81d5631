#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use super::*;
use std::path::Path;

/// The faults `text` has, as printed.
fn faults(text: &str) -> Vec<String> {
    match Config::parse(text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn the_built_in_configuration_spells_out_the_defaults_plus_two_demo_extensions() {
    let built_in = Config::parse(DEFAULT).unwrap();
    let mut empty = Config::parse("").unwrap();
    assert!(empty.extensions.is_empty());
    empty.extensions = ["1001", "1002"]
        .map(|number| Extension {
            number: number.into(),
            password: None,
            ha1: None,
            display_name: Some(format!("Demo {number}")),
        })
        .into();
    assert_eq!(built_in, empty);
}

#[test]
fn a_value_that_does_not_parse_names_its_key_and_line() {
    assert_eq!(
        faults("[sip]\nlisten = [{ transport = \"udp\", address = \"x\" }]\n"),
        ["sip.listen[0].address: invalid socket address \"x\" (line 2)"]
    );
    assert_eq!(
        faults(
            "[[trunks]]\nname = \"t\"\nuri = \"sip:t.example\"\ninbound_acl = [\"10.0.0.0/8\", \"nope\"]\n"
        ),
        ["trunks[0].inbound_acl[1]: invalid network (CIDR) \"nope\" (line 4)"]
    );
    assert_eq!(
        faults("[media]\naddress = \"localhost\"\n"),
        ["media.address: invalid IP address \"localhost\" (line 2)"]
    );
}

#[test]
fn a_bare_address_in_an_acl_is_that_host() {
    let config = Config::parse(
        "[[trunks]]\nname = \"t\"\nuri = \"sip:t.example\"\ninbound_acl = [\"192.0.2.7\", \"2001:db8::/32\"]\n",
    )
    .unwrap();
    let acl: Vec<String> = config.trunks[0]
        .inbound_acl
        .iter()
        .map(|n| n.0.to_string())
        .collect();
    assert_eq!(acl, ["192.0.2.7/32", "2001:db8::/32"]);
}

#[test]
fn route_regexes_match_whole_numbers() {
    let config = Config::parse(
        "[[trunks]]\nname = \"t\"\nuri = \"sip:t.example\"\n\
         [[routes]]\nname = \"r\"\nmatch = { regex = '9(\\d+)' }\nto = { trunk = \"t\" }\n",
    )
    .unwrap();
    let Match::Regex(pattern) = &config.routes[0].matches else {
        panic!("a regex route");
    };
    assert!(pattern.regex().is_match("9123"));
    assert!(!pattern.regex().is_match("19123"));
    assert!(!pattern.regex().is_match("9123x"));
}

/// A configuration with one extension, group, trunk and route to build
/// faulty variants from.
const BASE: &str = r#"
[[extensions]]
number = "1001"
password = "secret"

[[groups]]
name = "desk"
members = ["1001"]

[[trunks]]
name = "carrier"
uri = "sip:sip.carrier.example"
username = "acct"
password = "pw"
"#;

#[test]
fn checks_across_keys_report_every_fault_by_key() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[[routes]]\nname = \"out\"\nmatch = { prefix = \"0\" }\nto = { trunk = \"nowhere\" }\n",
            &["routes[0].to.trunk: no trunk \"nowhere\""],
        ),
        (
            "[[routes]]\nname = \"r\"\nmatch = { prefix = \"1\" }\nto = { extension = \"1999\" }\n\
             [[routes]]\nname = \"r\"\nmatch = { prefix = \"2\" }\nto = { group = \"sales\" }\nring_timeout_secs = 0\n",
            &[
                "routes[0].to.extension: no extension \"1999\"",
                "routes[1].name: \"r\" is used twice",
                "routes[1].to.group: no group \"sales\"",
                "routes[1].ring_timeout_secs: must be at least 1",
            ],
        ),
        (
            "[[routes]]\nname = \"r\"\nmatch = { regex = '0(\\d+)' }\nrewrite = \"+44$1a\"\nto = { trunk = \"carrier\" }\n",
            &[
                "routes[0].rewrite: \"+44$1a\" refers to $1a, which the regex does not capture (write ${1} when a letter or digit follows the group number)",
            ],
        ),
        (
            "[[routes]]\nname = \"r\"\nmatch = { prefix = \"0 1\" }\nto = { trunk = \"carrier\" }\n",
            &[
                "routes[0].match.prefix: \"0 1\": dialled numbers hold no spaces or control characters",
            ],
        ),
        (
            "[[extensions]]\nnumber = \"1001\"\n[[extensions]]\nnumber = \"10 2\"\npassword = \"\"\n\
             [[extensions]]\nnumber = \"1003\"\npassword = \"x\"\nha1 = \"y\"\n\
             [[extensions]]\nnumber = \"1004\"\nha1 = \"abc\"\n",
            &[
                "extensions[1].number: \"1001\" is defined twice",
                "extensions[2].number: \"10 2\" is not an extension number: use letters, digits and . _ - + *",
                "extensions[2].password: is empty (leave it out for a random password printed at start)",
                "extensions[3].ha1: give password or ha1, not both (neither: a random password is printed at start)",
                "extensions[4].ha1: must be 32 hex digits (MD5) or 64 (SHA-256)",
            ],
        ),
        (
            "[[groups]]\nname = \"empty\"\nmembers = []\n[[groups]]\nname = \"two\"\nmembers = [\"1001\", \"1001\", \"2000\"]\n",
            &[
                "groups[1].members: a group needs at least one member",
                "groups[2].members[1]: \"1001\" is listed twice",
                "groups[2].members[2]: no extension \"2000\"",
            ],
        ),
        (
            "[[trunks]]\nname = \"carrier\"\nuri = \"tel:+441234\"\nusername = \"u\"\n\
             [[trunks]]\nname = \"b\"\nuri = \"sip:b.example\"\nregister = true\ndid = { \"+4420\" = \"1001\", \"+4421\" = \"1002\" }\n\
             [[trunks]]\nname = \"c\"\nuri = \"not a uri\"\npassword = \"p\"\n",
            &[
                "trunks[1].name: \"carrier\" is used twice",
                "trunks[1].uri: must be a sip: or sips: URI",
                "trunks[1].password: username without password",
                "trunks[2].register: registering needs username and password",
                "trunks[2].did.\"+4421\": no extension \"1002\"",
                "trunks[3].username: password without username",
            ],
        ),
    ];
    for (extra, expected) in cases {
        let mut found = faults(&format!("{BASE}{extra}"));
        // `trunks[3].uri`'s parser message is the SIP crate's to word.
        found.retain(|f| !f.starts_with("trunks[3].uri: invalid SIP URI \"not a uri\""));
        assert_eq!(&found, expected, "{extra}");
    }
    assert_eq!(faults(BASE), Vec::<String>::new());
}

#[test]
fn a_trunk_uri_that_does_not_parse_is_reported() {
    let found = faults("[[trunks]]\nname = \"c\"\nuri = \"sip:\"\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("trunks[0].uri: invalid SIP URI \"sip:\": "),
        "{found:?}"
    );
}

#[test]
fn sections_check_their_ranges() {
    assert_eq!(
        faults(
            "[registrar]\nmin_expires = 0\nmax_expires = 10\ndefault_expires = 20\nmax_contacts = 0\nalgorithms = []\nnonce_lifetime_secs = 0\n"
        ),
        [
            "registrar.min_expires: must be at least 1 second",
            "registrar.default_expires: 20 is outside min_expires..max_expires (0..10)",
            "registrar.max_contacts: must be at least 1",
            "registrar.nonce_lifetime_secs: must be at least 1",
            "registrar.algorithms: at least one algorithm is needed",
        ]
    );
    assert_eq!(
        faults(
            "[registrar]\nmin_expires = 600\nmax_expires = 60\nalgorithms = [\"MD5\", \"MD5\"]\n"
        ),
        [
            "registrar.max_expires: 60 is under min_expires (600)",
            "registrar.default_expires: 3600 is outside min_expires..max_expires (600..60)",
            "registrar.algorithms[1]: listed twice",
        ]
    );
    assert_eq!(
        faults("[media]\nrtp_port_min = 20001\nrtp_port_max = 20002\n"),
        ["media.rtp_port_max: the range 20001..20002 holds no even port with the port after it"]
    );
    assert_eq!(
        faults("[media]\nrtp_port_min = 20000\nrtp_port_max = 20001\n"),
        Vec::<String>::new()
    );
}

#[test]
fn listeners_may_not_clash_and_secure_ones_need_a_certificate() {
    assert_eq!(
        faults(
            "[sip]\nrealm = 'a\"b'\nlisten = [\n\
             { transport = \"udp\", address = \"127.0.0.1:5060\" },\n\
             { transport = \"tcp\", address = \"127.0.0.1:5060\" },\n\
             { transport = \"ws\", address = \"127.0.0.1:5060\" },\n\
             { transport = \"udp\", address = \"127.0.0.1:5060\" },\n\
             { transport = \"wss\", address = \"127.0.0.1:0\" },\n\
             { transport = \"tls\", address = \"127.0.0.1:0\" },\n]\n\
             [http]\naddress = \"127.0.0.1:5060\"\n"
        ),
        [
            "sip.listen[2].address: 127.0.0.1:5060 is already taken by sip.listen[1].address",
            "sip.listen[3].address: 127.0.0.1:5060 is already taken by sip.listen[0].address",
            "sip.listen[4].transport: a wss listener needs [sip.tls] certificate and private_key",
            "sip.listen[5].transport: a tls listener needs [sip.tls] certificate and private_key",
            "http.address: 127.0.0.1:5060 is already taken by sip.listen[1].address",
            "sip.realm: \"a\\\"b\" is not a realm: it must be non-empty, without quotes, backslashes or control characters",
        ]
    );
    assert_eq!(
        faults("[sip]\nlisten = []\n"),
        ["sip.listen: at least one listener is needed"]
    );
    assert_eq!(
        faults("[sip]\nlisten = [{ transport = \"udp\", address = \"0.0.0.0:5060\" }]\n"),
        [
            "sip.listen[0].address: 0.0.0.0 is no address a phone can reach: give the one it should use"
        ]
    );
    assert_eq!(
        faults("[media]\naddress = \"::\"\n"),
        ["media.address: :: is no address a phone can send media to: give the one it should use"]
    );
    assert_eq!(
        faults(
            "[sip.tls]\ncertificate = \"/nonexistent/cert.pem\"\nprivate_key = \"/nonexistent/key.pem\"\n"
        ),
        [
            "sip.tls.certificate: no file \"/nonexistent/cert.pem\" (relative to the working directory)",
            "sip.tls.private_key: no file \"/nonexistent/key.pem\" (relative to the working directory)",
        ]
    );
}

#[test]
fn rewrites_may_name_only_groups_the_regex_captures() {
    let regex = regex::Regex::new(r"^(?:0(?<national>\d+)(\d))$").unwrap();
    for good in [
        "+44$1",
        "${1}0",
        "$national",
        "${national}",
        "$$5 $2",
        "a$",
        "$0",
    ] {
        assert_eq!(validate::check_replacement(good, &regex), Ok(()), "{good}");
    }
    for bad in ["$3", "${9}", "$nation", "$1a", "${1"] {
        assert!(validate::check_replacement(bad, &regex).is_err(), "{bad}");
    }
}

#[test]
fn paths_under_the_data_directory_unless_absolute() {
    let mut config = Config::parse("[data]\ndir = \"/var/lib/trunkline\"\n").unwrap();
    assert_eq!(
        config.cdr_path(),
        Path::new("/var/lib/trunkline/cdr.sqlite")
    );
    assert_eq!(
        config.recording_dir(),
        Path::new("/var/lib/trunkline/recordings")
    );
    config.recording.dir = "/srv/recordings".into();
    assert_eq!(config.recording_dir(), Path::new("/srv/recordings"));
}

#[test]
fn a_file_that_is_not_toml_says_where() {
    assert_eq!(faults("[sip\n"), ["line 1: unclosed table, expected `]`"]);
}

/// docs/configuration.md, and the ```toml block after `<!-- test: {name} -->`.
fn docs(name: &str) -> (String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
    let docs = std::fs::read_to_string(path).unwrap();
    let marker = format!("<!-- test: {name} -->\n```toml\n");
    let start = docs.find(&marker).unwrap() + marker.len();
    let end = docs[start..].find("\n```\n").unwrap() + start;
    let block = docs[start..=end].to_owned();
    (docs, block)
}

/// Every key path in `value`, as the reference names them: `listen[].transport`
/// under section `sip`. Values the user names (`did` numbers, webhook
/// `headers`) and the one-key tables of `match` and `to` are leaves.
fn keys(prefix: &str, value: &toml::Value, found: &mut Vec<String>) {
    let toml::Value::Table(table) = value else {
        return;
    };
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(_) if !["did", "match", "to", "headers"].contains(&key.as_str()) => {
                keys(&path, value, found);
            }
            toml::Value::Array(items)
                if items.iter().all(toml::Value::is_table) && !items.is_empty() =>
            {
                // A top-level array is a section of its own (`[[routes]]`).
                if !prefix.is_empty() {
                    found.push(path.clone());
                }
                for item in items {
                    keys(&format!("{path}[]"), item, found);
                }
            }
            _ => found.push(path),
        }
    }
}

#[test]
fn every_key_of_the_complete_example_is_in_the_reference() {
    let (docs, example) = docs("complete example");
    let mut config = Config::parse(&example).unwrap();
    // The example leaves `[sip.tls]` commented out: its files must exist.
    config.sip.tls = Some(Tls {
        certificate: "cert.pem".into(),
        private_key: "key.pem".into(),
    });
    let mut found = Vec::new();
    keys("", &toml::Value::try_from(&config).unwrap(), &mut found);
    let mut missing = Vec::new();
    for path in &found {
        // `sip.listen[].address` is documented as `listen[].address` under
        // `### [sip]`, `extensions[].number` as `number` under
        // `### [[extensions]]`, `proxy.http_router.url` as `url` under
        // `### [proxy.http_router]` (a subsection with its own heading).
        let (section, key) = match path.split_once('.') {
            Some((section, rest)) => match rest.split_once('.') {
                Some((sub, key)) if docs.contains(&format!("### `[{section}.{sub}]`")) => {
                    (&path[..section.len() + 1 + sub.len()], key)
                }
                _ => (section, rest),
            },
            None => (path.as_str(), ""),
        };
        let heading = match section.strip_suffix("[]") {
            Some(array) => format!("### `[[{array}]]`"),
            None => format!("### `[{section}]`"),
        };
        let Some(at) = docs.find(&heading) else {
            missing.push(heading);
            continue;
        };
        let section_text = &docs[at + heading.len()..];
        let section_text =
            &section_text[..section_text.find("\n### ").unwrap_or(section_text.len())];
        if !key.is_empty() && !section_text.contains(&format!("| `{key}` |")) {
            missing.push(path.clone());
        }
    }
    assert!(found.len() > 40, "{found:?}");
    assert_eq!(missing, Vec::<String>::new());
}

#[test]
fn webhooks_are_checked_by_key() {
    assert_eq!(
        faults(
            "[proxy.http_router]\nurl = \"ftp://router.example/\"\ntimeout_ms = 0\n\
             [proxy.http_router.headers]\n\"Bad Name\" = \"x\"\n\
             [proxy.locator_webhook]\nurl = \"http://crm.example/hooks\"\nevents = [\"registered\", \"registered\"]\n\
             [callrecord]\ntype = \"http\"\nurl = \"crm.example/cdr\"\n"
        ),
        [
            "proxy.http_router.url: webhook URL \"ftp://router.example/\": the scheme must be http or https",
            "proxy.http_router.timeout_ms: must be at least 1",
            "proxy.http_router.headers.\"Bad Name\": webhook header \"Bad Name\": invalid HTTP header name",
            "proxy.locator_webhook.events[1]: listed twice",
            "callrecord.url: webhook URL \"crm.example/cdr\": invalid format",
        ]
    );
    assert_eq!(
        faults("[proxy.locator_webhook]\nurl = \"http://crm.example/\"\nevents = [\"expired\"]\n"),
        [
            "proxy.locator_webhook.events[0]: unknown variant `expired`, expected one of `registered`, `unregistered`, `offline` (line 3)"
        ]
    );
    assert_eq!(
        faults("[callrecord]\ntype = \"s3\"\nurl = \"http://crm.example/\"\n"),
        ["callrecord.type: unknown variant `s3`, expected `http` (line 2)"]
    );
    assert_eq!(
        faults("[proxy.http_router]\nurl = \"http://r.example/\"\nfallback = true\n"),
        [
            "proxy.http_router.fallback: unknown field `fallback`, expected one of `url`, `fallback_to_static`, `timeout_ms`, `secret`, `headers` (line 3)"
        ]
    );
    // The defaults: fallback on, 5 s, every event, media pushed.
    let config = Config::parse(
        "[proxy.http_router]\nurl = \"https://r.example/route\"\n\
         [proxy.locator_webhook]\nurl = \"https://crm.example/loc\"\n\
         [callrecord]\ntype = \"http\"\nurl = \"https://crm.example/cdr\"\n",
    )
    .unwrap();
    let router = config.proxy.http_router.unwrap();
    assert!(router.fallback_to_static);
    assert_eq!(router.timeout_ms, 5000);
    let locator = config.proxy.locator_webhook.unwrap();
    assert_eq!(locator.events.len(), 3);
    assert_eq!(locator.timeout_ms, 5000);
    assert!(config.callrecord.unwrap().with_media);
}

#[test]
fn api_keys_and_the_ami_allow_list_are_checked() {
    let config = Config::parse(
        "[api]\nkeys = [{ name = \"ops\", key = \"0123456789abcdef\", scope = \"admin\" }]\n\
         [ami]\nallows = [\"10.0.0.0/8\", \"192.0.2.7\"]\n",
    )
    .unwrap();
    assert_eq!(config.api.keys[0].scope, trunkline_api::Scope::Admin);
    let allows: Vec<String> = config.ami.allows.iter().map(|n| n.0.to_string()).collect();
    assert_eq!(allows, ["10.0.0.0/8", "192.0.2.7/32"]);
    let defaults: Vec<String> = Config::parse("")
        .unwrap()
        .ami
        .allows
        .iter()
        .map(|n| n.0.to_string())
        .collect();
    assert_eq!(defaults, ["127.0.0.1/32", "::1/128"]);

    let found = faults(
        "[api]\nkeys = [{ name = \"ops\", key = \"0123456789abcdef\", scope = \"root\" }]\n",
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("api.keys[0].scope: unknown variant `root`"),
        "{found:?}"
    );
    assert_eq!(
        faults("[ami]\nallows = [\"loopback\"]\n"),
        ["ami.allows[0]: invalid network (CIDR) \"loopback\" (line 2)"]
    );
    assert_eq!(
        faults(
            "[api]\nkeys = [\n  { name = \"a\", key = \"short\", scope = \"read\" },\n  \
             { name = \"a\", key = \"0123456789abcdef\", scope = \"read\" },\n  \
             { name = \"\", key = \"0123456789abcdef\", scope = \"read\" },\n  \
             { name = \"c\", key = \"0123456789 abcdef\", scope = \"read\" },\n]\n"
        ),
        [
            "api.keys[0].key: must be at least 16 characters (a random token)",
            "api.keys[1].name: \"a\" is named twice",
            "api.keys[2].name: must not be empty",
            "api.keys[2].key: the same key is given twice",
            "api.keys[3].key: must be printable ASCII without spaces (it is sent in an HTTP header)",
        ]
    );
}

#[test]
fn the_events_retention_is_bounded() {
    assert_eq!(Config::parse("").unwrap().api.events_retention, 10_000);
    let config = Config::parse("[api]\nevents_retention = 1\n").unwrap();
    assert_eq!(config.api.events_retention, 1);
    for bad in [0, 1_000_001] {
        assert_eq!(
            faults(&format!("[api]\nevents_retention = {bad}\n")),
            ["api.events_retention: must be 1 to 1000000 events"],
            "{bad}"
        );
    }
    let found = faults("[api]\nevents_retention = -1\n");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("api.events_retention: "), "{found:?}");
}
