//! The configuration through the API of the real binary: CRUD of
//! extensions, trunks and routes with its errors; an extension and a
//! route made through the API register and carry a SIPp call, and come
//! back after a restart; a reload of the routes from the edited file
//! while a call goes on, which is not dropped; the dialogs listed; a
//! trunk made through the API registers with a SIPp carrier, carries a
//! call out and unregisters when deleted; a deleted extension's phone
//! loses its registration at once; a shutdown asked through the
//! AMI ends the process with 0.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use trunkline_e2e::*;

const ADMIN: &str = "test-admin-key-0123456789";
const READ: &str = "test-read-key-0123456789";

/// The keys, and a file trunk and route the API may not change.
fn config() -> String {
    format!(
        "{EXTENSIONS}\n[api]\nkeys = [\n  {{ name = \"ops\", key = \"{ADMIN}\", scope = \"admin\" }},\n  \
         {{ name = \"crm\", key = \"{READ}\", scope = \"read\" }},\n]\n\
         [[trunks]]\nname = \"carrier\"\nuri = \"sip:127.0.0.2:5080\"\n\
         [[routes]]\nname = \"out\"\nmatch = {{ prefix = \"9\" }}\nto = {{ trunk = \"carrier\" }}\n"
    )
}

/// `method path` as the admin: the status and the JSON body (`null` when
/// empty).
fn admin(pbx: &Pbx, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    as_key(pbx, method, path, Some(ADMIN), body)
}

fn as_key(
    pbx: &Pbx,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, text) = pbx.request(method, path, key, body.as_ref());
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text:?}"))
    };
    (status, json)
}

/// The status and error code of an error answer.
fn error(answer: (u16, Value)) -> (u16, String) {
    let (status, body) = answer;
    let code = body["error"]["code"].as_str();
    let code = code.unwrap_or_else(|| panic!("{status}: {body}"));
    (status, code.to_owned())
}

#[test]
fn each_resource_is_created_read_listed_replaced_and_deleted_with_its_errors() {
    let pbx = Pbx::start(&config());

    // Extensions: the file's are listed, read-only, secrets hidden.
    let (status, listed) = as_key(&pbx, "GET", "/console/extensions", Some(READ), None);
    assert_eq!(status, 200, "{listed}");
    let listed = listed["extensions"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["number"], "1001");
    assert_eq!(listed[0]["source"], "config");
    assert_eq!(listed[0]["password_set"], true);
    assert!(listed[0].get("password").is_none(), "{listed:?}");

    let ann = json!({"number": "2001", "password": "ann-secret", "display_name": "Ann"});
    let (status, created) = admin(&pbx, "POST", "/console/extensions", Some(ann.clone()));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["source"], "api");
    assert_eq!(created["password_set"], true);
    assert!(created.get("password").is_none(), "{created}");
    let taken = admin(&pbx, "POST", "/console/extensions", Some(ann.clone()));
    assert_eq!(error(taken), (409, "conflict".into()));
    let taken = admin(
        &pbx,
        "POST",
        "/console/extensions",
        Some(json!({"number": "1001", "password": "x"})),
    );
    assert_eq!(error(taken), (409, "conflict".into()));
    let (status, bad) = admin(
        &pbx,
        "POST",
        "/console/extensions",
        Some(json!({"number": "2002", "ha1": "xyz"})),
    );
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["error"]["code"], "invalid_field");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("ha1: "),
        "{bad}"
    );
    let (status, one) = as_key(&pbx, "GET", "/console/extensions/2001", Some(READ), None);
    assert_eq!((status, &one), (200, &created));
    // A replacement without a password keeps it.
    let (status, replaced) = admin(
        &pbx,
        "PUT",
        "/console/extensions/2001",
        Some(json!({"display_name": "Ann B."})),
    );
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["display_name"], "Ann B.");
    assert_eq!(replaced["password_set"], true);
    let renamed = admin(
        &pbx,
        "PUT",
        "/console/extensions/2001",
        Some(json!({"number": "2009", "password": "x"})),
    );
    assert_eq!(error(renamed), (400, "invalid_field".into()));
    for method in ["PUT", "DELETE"] {
        let body = (method == "PUT").then(|| json!({"password": "x"}));
        let (status, refused) = admin(&pbx, method, "/console/extensions/1001", body);
        assert_eq!(status, 409, "{refused}");
        assert_eq!(refused["error"]["code"], "read_only");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("configuration file"),
            "{refused}"
        );
    }
    // Keys and scopes.
    let anonymous = as_key(&pbx, "POST", "/console/extensions", None, Some(ann.clone()));
    assert_eq!(error(anonymous), (401, "unauthorized".into()));
    let reader = as_key(&pbx, "POST", "/console/extensions", Some(READ), Some(ann));
    assert_eq!(error(reader), (403, "forbidden".into()));
    let reader = as_key(&pbx, "DELETE", "/console/extensions/2001", Some(READ), None);
    assert_eq!(error(reader), (403, "forbidden".into()));
    let (status, listed) = admin(&pbx, "GET", "/console/extensions", None);
    assert_eq!(status, 200);
    let numbers: Vec<&str> = listed["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["1001", "1002", "2001"]);

    // Trunks and routes: a route through a trunk made here.
    let trunk = json!({"name": "second", "uri": "sip:127.0.0.3:5090", "username": "acct", "password": "pw"});
    let (status, created) = admin(&pbx, "POST", "/console/sip-trunk", Some(trunk));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["password_set"], true);
    assert_eq!(created["username"], "acct");
    let (status, bad) = admin(
        &pbx,
        "POST",
        "/console/sip-trunk",
        Some(json!({"name": "third", "uri": "mailto:x@example.com"})),
    );
    assert_eq!(status, 400, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("uri: "),
        "{bad}"
    );
    let route = json!({"name": "via-second", "match": {"prefix": "8"}, "rewrite": "", "to": {"trunk": "second"}});
    let (status, created) = admin(&pbx, "POST", "/console/routing", Some(route));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["strategy"], "parallel");
    assert_eq!(created["ring_timeout_secs"], 30);
    let (status, bad) = admin(
        &pbx,
        "POST",
        "/console/routing",
        Some(json!({"name": "nowhere", "match": {"prefix": "6"}, "to": {"group": "sales"}})),
    );
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["error"]["message"], "to.group: no group \"sales\"");
    // The trunk is in use: it stays until the route goes.
    let (status, in_use) = admin(&pbx, "DELETE", "/console/sip-trunk/second", None);
    assert_eq!(status, 409, "{in_use}");
    assert!(
        in_use["error"]["message"]
            .as_str()
            .unwrap()
            .contains("routes[\"via-second\"].to.trunk"),
        "{in_use}"
    );
    let (status, replaced) = admin(
        &pbx,
        "PUT",
        "/console/routing/via-second",
        Some(json!({"match": {"regex": "8(\\d+)"}, "rewrite": "+1$1", "to": {"trunk": "second"}})),
    );
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["match"], json!({"regex": "8(\\d+)"}));
    let (_, routes) = admin(&pbx, "GET", "/console/routing", None);
    let names: Vec<(&str, &str)> = routes["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["source"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("out", "config"), ("via-second", "api")]);
    assert_eq!(
        error(admin(&pbx, "DELETE", "/console/routing/out", None)),
        (409, "read_only".into())
    );
    for path in [
        "/console/routing/via-second",
        "/console/sip-trunk/second",
        "/console/extensions/2001",
    ] {
        let (status, body) = admin(&pbx, "DELETE", path, None);
        assert_eq!((status, body), (204, Value::Null), "{path}");
        assert_eq!(
            error(admin(&pbx, "GET", path, None)),
            (404, "not_found".into())
        );
        assert_eq!(
            error(admin(&pbx, "DELETE", path, None)),
            (404, "not_found".into())
        );
    }
    // Not JSON; not an object.
    let (status, text) = pbx.request("POST", "/console/routing", Some(ADMIN), None);
    assert_eq!(status, 415, "{text}");
    let not_object = admin(&pbx, "POST", "/console/routing", Some(json!(["x"])));
    assert_eq!(error(not_object), (400, "bad_request".into()));
}

#[test]
fn an_extension_and_a_route_made_through_the_api_carry_a_call_and_survive_a_restart() {
    let mut pbx = Pbx::start(&config());
    let extension = json!({"number": "2001", "password": "ann-secret"});
    let route = json!({"name": "to-ann", "match": {"prefix": "77"}, "to": {"extension": "2001"}});
    assert_eq!(
        admin(&pbx, "POST", "/console/extensions", Some(extension)).0,
        201
    );
    assert_eq!(admin(&pbx, "POST", "/console/routing", Some(route)).0, 201);
    // 2001 registers with digest; 1001 dials 77, which the route sends to
    // 2001's phone.
    let ann = phone(&pbx, "2001", "ann-secret", "uas_answer.xml");
    call_as_1001(&pbx, "call_answered.xml", "77");
    phones_done(&pbx, vec![("2001", ann)]);
    let records = records(&pbx);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0].destination_channel.as_deref(),
        Some("route/to-ann")
    );

    // The same data directory after a restart: both are back.
    pbx.stop();
    let Pbx { dir, .. } = pbx;
    let pbx = Pbx::start_in(dir, &config());
    let (status, again) = admin(&pbx, "GET", "/console/extensions/2001", None);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["source"], "api");
    assert_eq!(admin(&pbx, "GET", "/console/routing/to-ann", None).0, 200);
    let ann = phone(&pbx, "2001", "ann-secret", "uas_answer.xml");
    call_as_1001(&pbx, "call_answered.xml", "77");
    phones_done(&pbx, vec![("2001", ann)]);
    // Deleted, 2001 can no longer register, and its phone's registration
    // is gone at once: the account is gone.
    assert_eq!(
        admin(&pbx, "DELETE", "/console/routing/to-ann", None).0,
        204
    );
    assert_eq!(pbx.health()["registrations"], 1);
    assert_eq!(
        admin(&pbx, "DELETE", "/console/extensions/2001", None).0,
        204
    );
    assert_eq!(pbx.health()["registrations"], 0, "{}", pbx.log());
    let args = ["-au", "2001", "-ap", "ann-secret"];
    let refused = sipp(&pbx, "register.xml", "2001", "u1", &args);
    assert_ne!(refused, Some(0), "{}", pbx.log());
}

#[test]
fn a_reload_of_the_routes_applies_while_a_call_goes_on_without_dropping_it() {
    let file_route = "[[routes]]\nname = \"to-bob\"\nmatch = { prefix = \"5\" }\nto = { extension = \"1002\" }\n";
    let pbx = Pbx::start(&format!("{}{file_route}", config()));
    // Without a change: nothing to report.
    let (status, summary) = admin(&pbx, "POST", "/ami/v1/reload/routes", None);
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["changed"], json!([]), "{summary}");

    let bob = phone(&pbx, "1002", "second-secret", "uas_answer.xml");
    std::thread::scope(|scope| {
        let caller = scope.spawn(|| {
            let args = ["-au", "1001", "-ap", "first-secret", "-d", "4000"];
            sipp(&pbx, "call_long.xml", "5000", "u1", &args)
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let active = pbx.json_as("/console/calls/active", READ);
            if active["calls"][0]["state"] == "answered" {
                break;
            }
            assert!(Instant::now() < deadline, "never answered: {active}");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The call's dialogs, raw: both legs confirmed.
        let (status, dialogs) = as_key(&pbx, "GET", "/ami/v1/dialogs", Some(READ), None);
        assert_eq!(status, 200, "{dialogs}");
        let dialogs = dialogs["dialogs"].as_array().unwrap();
        assert_eq!(dialogs.len(), 2, "{dialogs:?}");
        assert!(
            dialogs.iter().all(|d| d["state"] == "confirmed"),
            "{dialogs:?}"
        );
        // A B2BUA: the caller's dialog and the callee's, two Call-IDs.
        assert_ne!(dialogs[0]["call_id"], dialogs[1]["call_id"], "{dialogs:?}");

        // A faulty file: refused with its key, nothing applied.
        let file = pbx.dir.path().join("trunkline.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        let edited = text.replace(file_route, "[[routes]]\nname = \"to-bob\"\nmatch = { prefix = \"6\" }\nto = { extension = \"1003\" }\n");
        std::fs::write(&file, &edited).unwrap();
        let (status, refused) = admin(&pbx, "POST", "/ami/v1/reload/routes", None);
        assert_eq!(status, 400, "{refused}");
        assert_eq!(refused["error"]["code"], "invalid_config");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("routes[1].to.extension: no extension \"1003\""),
            "{refused}"
        );
        // The route moves to 6 and a new one joins, mid-call.
        std::fs::write(&file, edited.replace("1003", "1002") + "[[routes]]\nname = \"more\"\nmatch = { prefix = \"4\" }\nto = { extension = \"1001\" }\n").unwrap();
        let reader = as_key(&pbx, "POST", "/ami/v1/reload/routes", Some(READ), None);
        assert_eq!(error(reader), (403, "forbidden".into()));
        let (status, summary) = admin(&pbx, "POST", "/ami/v1/reload/routes", None);
        assert_eq!(status, 200, "{summary}");
        assert_eq!(summary["reloaded"], "routes");
        assert_eq!(summary["added"], json!(["more"]), "{summary}");
        assert_eq!(summary["changed"], json!(["to-bob"]), "{summary}");
        assert_eq!(summary["removed"], json!([]), "{summary}");
        assert_eq!(pbx.health()["active_calls"], 1);
        assert_eq!(caller.join().unwrap(), Some(0), "{}", pbx.log());
    });
    phones_done(&pbx, vec![("1002", bob)]);
    let records = records(&pbx);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].disposition, trunkline_cdr::Disposition::Answered);
    assert!(records[0].billsec >= 3, "{:?}", records[0]);
    let (_, to_bob) = admin(&pbx, "GET", "/console/routing/to-bob", None);
    assert_eq!(to_bob["match"], json!({"prefix": "6"}));
    // The dialogs are gone with the call.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, dialogs) = as_key(&pbx, "GET", "/ami/v1/dialogs", Some(READ), None);
        if dialogs["dialogs"] == json!([]) {
            break;
        }
        assert!(Instant::now() < deadline, "{dialogs}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_shutdown_asked_through_the_ami_drains_and_exits_0() {
    let mut pbx = Pbx::start(&config());
    let reader = as_key(&pbx, "POST", "/ami/v1/shutdown", Some(READ), None);
    assert_eq!(error(reader), (403, "forbidden".into()));
    let (status, body) = admin(&pbx, "POST", "/ami/v1/shutdown", None);
    assert_eq!((status, body), (202, json!({"status": "draining"})));
    let code = pbx.process.exit_code(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{}", pbx.log());
    assert!(pbx.log().contains("POST /ami/v1/shutdown"), "{}", pbx.log());
}

/// The trunk's state in the health document, if it is listed.
fn trunk_status(pbx: &Pbx, name: &str) -> Option<Value> {
    let health = pbx.health();
    let trunks = health["trunks"].as_array().unwrap();
    trunks.iter().find(|t| t["name"] == name).cloned()
}

#[test]
fn a_trunk_made_through_the_api_registers_carries_a_call_and_unregisters_when_deleted() {
    // The carrier of tests/trunks.rs: a registration, a call to
    // +442071234567, the unregistration.
    let pbx = Pbx::start(&config());
    let (mut carrier, carrier_port) = carrier();
    let trunk = json!({"name": "api-carrier", "uri": format!("sip:127.0.0.2:{carrier_port}"),
        "username": "acct1234", "password": "carrier-secret", "register": true});
    assert_eq!(
        admin(&pbx, "POST", "/console/sip-trunk", Some(trunk)).0,
        201
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while trunk_status(&pbx, "api-carrier").is_none_or(|t| t["registered"] != true) {
        assert!(Instant::now() < deadline, "not registered: {}", pbx.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let route = json!({"name": "api-out", "match": {"prefix": "8"}, "rewrite": "+44",
        "to": {"trunk": "api-carrier"}});
    assert_eq!(admin(&pbx, "POST", "/console/routing", Some(route)).0, 201);
    call_as_1001(&pbx, "call_answered.xml", "82071234567");
    pbx.wait_idle();
    let records = records(&pbx);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(
        records[0].destination_channel.as_deref(),
        Some("trunk/api-carrier")
    );

    // Deleted (its route first): unregistered before the answer, and no
    // longer in the health document.
    assert_eq!(
        admin(&pbx, "DELETE", "/console/routing/api-out", None).0,
        204
    );
    assert_eq!(
        admin(&pbx, "DELETE", "/console/sip-trunk/api-carrier", None).0,
        204
    );
    assert!(
        trunk_status(&pbx, "api-carrier").is_none(),
        "{}",
        pbx.health()
    );
    assert!(
        pbx.log().contains("unregistered from the trunk"),
        "{}",
        pbx.log()
    );
    assert_eq!(
        carrier.exit_code(Duration::from_secs(20)),
        Some(0),
        "{}",
        pbx.log()
    );
}
