#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use super::*;

const FILE: &str = r#"
[[extensions]]
number = "1001"
password = "first-secret"

[[trunks]]
name = "carrier"
uri = "sip:127.0.0.2:5080"

[[routes]]
name = "out"
match = { prefix = "9" }
to = { trunk = "carrier" }
"#;

fn base() -> Config {
    Config::parse(FILE).unwrap()
}

fn error(result: Result<Config, ApiError>) -> (String, String) {
    let e = result.unwrap_err();
    (e.code().to_owned(), e.message().to_owned())
}

#[test]
fn the_file_wins_a_shared_id_and_the_api_entries_follow_its_own() {
    let mut api = Entries::default();
    api.routes.push(
        parse(
            json!({"name": "out", "match": {"prefix": "0"}, "to": {"extension": "1001"}}),
            None,
        )
        .unwrap(),
    );
    api.routes.push(
        parse(
            json!({"name": "local", "match": {"prefix": "1"}, "to": {"extension": "1001"}}),
            None,
        )
        .unwrap(),
    );
    let merged = merge(&base(), &api);
    let names: Vec<&str> = merged.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["out", "local"]);
    assert_eq!(merged.routes[0], base().routes[0]);
    assert_eq!(shadowed(&base(), &api), ["routes \"out\""]);
}

#[test]
fn an_entry_is_checked_as_the_file_would_be_and_its_faults_name_the_field() {
    let bad: Result<config::Extension, _> = parse(json!({"number": "2001", "ha1": "xyz"}), None);
    let mut api = Entries::default();
    api.extensions.push(bad.unwrap());
    let (code, message) = error(checked::<config::Extension>(&base(), &api, Some("2001")));
    assert_eq!(code, "invalid_field");
    assert_eq!(message, "ha1: must be 32 hex digits (MD5) or 64 (SHA-256)");

    let mut api = Entries::default();
    api.routes.push(
        parse(
            json!({"name": "x", "match": {"prefix": "7"}, "to": {"trunk": "nope"}}),
            None,
        )
        .unwrap(),
    );
    let (code, message) = error(checked::<config::Route>(&base(), &api, Some("x")));
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("invalid_field", "to.trunk: no trunk \"nope\"")
    );
}

#[test]
fn a_body_that_does_not_deserialize_names_its_field() {
    let e = parse::<config::Trunk>(
        json!({"name": "t", "uri": "sip:t.example", "inbound_acl": ["10.0.0.0/8", "nope"]}),
        None,
    )
    .unwrap_err();
    assert_eq!(e.code(), "invalid_field");
    assert_eq!(
        e.message(),
        "inbound_acl[1]: invalid network (CIDR) \"nope\""
    );
    let e = parse::<config::Route>(
        json!({"name": "r", "match": {"regex": "("}, "to": {"extension": "1001"}}),
        None,
    )
    .unwrap_err();
    assert!(
        e.message()
            .starts_with("match.regex: invalid regular expression"),
        "{}",
        e.message()
    );
    let e = parse::<config::Extension>(json!({"number": "1", "colour": "red"}), None).unwrap_err();
    assert!(
        e.message().contains("unknown field `colour`"),
        "{}",
        e.message()
    );
    // What the API shows but does not take is ignored; the path gives the id.
    let extension: config::Extension = parse(
        json!({"password": "p", "source": "api", "password_set": true, "ha1_set": false}),
        Some("2001"),
    )
    .unwrap();
    assert_eq!(extension.number, "2001");
}

#[test]
fn deleting_what_others_use_is_a_conflict_naming_them() {
    let mut api = Entries::default();
    api.trunks
        .push(parse(json!({"name": "second", "uri": "sip:127.0.0.3"}), None).unwrap());
    api.routes.push(
        parse(
            json!({"name": "via-second", "match": {"prefix": "8"}, "to": {"trunk": "second"}}),
            None,
        )
        .unwrap(),
    );
    checked::<config::Trunk>(&base(), &api, Some("second")).unwrap();
    api.trunks.clear();
    let (code, message) = error(checked::<config::Trunk>(&base(), &api, None));
    assert_eq!(code, "conflict");
    assert!(
        message.ends_with("routes[\"via-second\"].to.trunk: no trunk \"second\""),
        "{message}"
    );
}

#[test]
fn secrets_are_shown_as_set_and_kept_when_a_replacement_leaves_them_out() {
    let stored: config::Extension =
        parse(json!({"number": "2001", "password": "s3cret"}), None).unwrap();
    let shown = shown(&stored, "api");
    assert_eq!(
        shown,
        json!({"number": "2001", "display_name": null, "password_set": true, "ha1_set": false, "source": "api"})
    );
    let mut replacement: config::Extension =
        parse(json!({"display_name": "Ann"}), Some("2001")).unwrap();
    replacement.keep_secret(&stored);
    assert_eq!(replacement.password.as_deref(), Some("s3cret"));
    assert!(
        parse::<config::Extension>(json!({}), Some("2"))
            .unwrap()
            .check_made()
            .is_err()
    );

    let trunk: config::Trunk = parse(
        json!({"name": "t", "uri": "sip:t.example", "username": "u", "password": "p"}),
        None,
    )
    .unwrap();
    let shown = super::shown(&trunk, "config");
    assert!(
        shown.get("password").is_none() && shown["password_set"] == true,
        "{shown}"
    );
}

#[test]
fn a_reload_summary_names_what_was_added_changed_and_removed() {
    let before = base().routes;
    let mut after = before.clone();
    after[0].rewrite = Some("+44".into());
    after.push(
        parse(
            json!({"name": "new", "match": {"prefix": "1"}, "to": {"extension": "1001"}}),
            None,
        )
        .unwrap(),
    );
    let summary = diff(&before, &after, |a, b| a == b);
    assert_eq!(
        Value::Object(summary),
        json!({"added": ["new"], "changed": ["out"], "removed": []})
    );
    let summary = diff(&after, &[], |a: &config::Route, b| a == b);
    assert_eq!(summary["removed"], json!(["out", "new"]));
}

#[test]
fn stored_entries_that_no_longer_fit_are_left_out_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("console.sqlite")).unwrap();
    let route = |name: &str, trunk: &str| {
        json!({"name": name, "match": {"prefix": "5"}, "to": {"trunk": trunk}}).to_string()
    };
    store
        .put(
            Resource::Trunks,
            "second",
            &json!({"name": "second", "uri": "sip:127.0.0.3"}).to_string(),
        )
        .unwrap();
    store
        .put(Resource::Routes, "ok", &route("ok", "second"))
        .unwrap();
    store
        .put(Resource::Routes, "gone", &route("gone", "missing"))
        .unwrap();
    store
        .put(Resource::Routes, "out", &route("out", "second"))
        .unwrap();
    store.put(Resource::Routes, "garbled", "{").unwrap();
    let api = load(&store, &base()).unwrap();
    let names: Vec<&str> = api.routes.iter().map(|r| r.name.as_str()).collect();
    // "out" is the file's too: kept aside, not in force.
    assert_eq!(names, ["ok", "out"]);
    let merged = merge(&base(), &api);
    assert_eq!(merged.routes.len(), 2);
    assert_eq!(merged.trunks.len(), 2);
}
