//! The contracts byte for byte as integrators already read and write them,
//! and the committed JSON Schema kept in step with the types.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::net::SocketAddr;
use std::path::Path;
use trunkline_webhooks::*;

#[test]
fn the_registration_event_is_written_as_the_contract_says() {
    let contract = r#"{"event":"registered","timestamp":1708201234,"location":{"aor":"sip:1001@pbx.com","destination":"1.2.3.4:12345","transport":"TLS","user_agent":"MicroSIP/3.21.3","expires":3600}}"#;
    let event = RegistrationEvent {
        event: EventKind::Registered,
        timestamp: 1_708_201_234,
        location: Location {
            aor: "sip:1001@pbx.com".into(),
            destination: "1.2.3.4:12345".into(),
            transport: "TLS".into(),
            user_agent: Some("MicroSIP/3.21.3".into()),
            expires: 3600,
        },
    };
    assert_eq!(serde_json::to_string(&event).unwrap(), contract);
    assert_eq!(
        serde_json::from_str::<RegistrationEvent>(contract).unwrap(),
        event
    );
    for (kind, name) in [
        (EventKind::Registered, "registered"),
        (EventKind::Unregistered, "unregistered"),
        (EventKind::Offline, "offline"),
    ] {
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
    }
}

#[test]
fn the_router_request_is_written_as_the_contract_says() {
    let request = RouterRequest {
        call_id: "a84b4c76e66710@1.2.3.4".into(),
        from: "<sip:1001@pbx.com>".into(),
        to: "<sip:1002@pbx.com>".into(),
        source_addr: SocketAddr::from(([1, 2, 3, 4], 5060)),
        direction: Direction::Inbound,
        method: "INVITE".into(),
        uri: "sip:1002@pbx.com".into(),
        headers: [("Max-Forwards".to_owned(), "70".to_owned())].into(),
        body: "v=0\r\n".into(),
    };
    assert_eq!(
        serde_json::to_string(&request).unwrap(),
        r#"{"call_id":"a84b4c76e66710@1.2.3.4","from":"<sip:1001@pbx.com>","to":"<sip:1002@pbx.com>","source_addr":"1.2.3.4:5060","direction":"inbound","method":"INVITE","uri":"sip:1002@pbx.com","headers":{"Max-Forwards":"70"},"body":"v=0\r\n"}"#
    );
    for (direction, name) in [
        (Direction::Inbound, "inbound"),
        (Direction::Outbound, "outbound"),
        (Direction::Internal, "internal"),
    ] {
        assert_eq!(
            serde_json::to_string(&direction).unwrap(),
            format!("\"{name}\"")
        );
    }
}

#[test]
fn router_decisions_are_read_as_the_contract_says() {
    let full: RouterDecision = serde_json::from_str(
        r#"{"action":"forward","targets":["sip:1001@192.168.1.50:5060","sip:1001@192.168.1.51:5060"],
            "strategy":"parallel","record":true,"timeout":30,"media_proxy":"always",
            "headers":{"X-Call-Reason":"support"},"ignored":{"nested":[1,2]}}"#,
    )
    .unwrap();
    assert_eq!(full.action, RouterAction::Forward);
    assert_eq!(full.targets.len(), 2);
    assert_eq!(full.strategy, Some(Strategy::Parallel));
    assert_eq!((full.record, full.timeout), (Some(true), Some(30)));
    assert_eq!(full.media_proxy, Some(MediaProxy::Always));
    assert_eq!(full.headers["X-Call-Reason"], "support");

    for (name, action) in [
        ("forward", RouterAction::Forward),
        ("reject", RouterAction::Reject),
        ("abort", RouterAction::Abort),
        ("spam", RouterAction::Spam),
        ("not_handled", RouterAction::NotHandled),
    ] {
        let bare: RouterDecision =
            serde_json::from_str(&format!(r#"{{"action":"{name}"}}"#)).unwrap();
        assert_eq!(
            bare,
            RouterDecision {
                action,
                ..RouterDecision::default()
            }
        );
    }
    for (name, proxy) in [
        ("auto", MediaProxy::Auto),
        ("always", MediaProxy::Always),
        ("none", MediaProxy::None),
        ("nat", MediaProxy::Nat),
    ] {
        let json = format!(r#"{{"action":"forward","media_proxy":"{name}"}}"#);
        let decision: RouterDecision = serde_json::from_str(&json).unwrap();
        assert_eq!(decision.media_proxy, Some(proxy));
        assert_eq!(
            serde_json::to_string(&decision).unwrap(),
            json,
            "written back the same"
        );
    }
    assert!(
        serde_json::from_str::<RouterDecision>(r#"{"targets":[]}"#).is_err(),
        "action is required"
    );
    assert!(serde_json::from_str::<RouterDecision>(r#"{"action":"redirect"}"#).is_err());
}

/// `docs/webhooks.schema.json` is generated from the types; when it
/// differs, this test rewrites it and fails, so the change is reviewed and
/// committed with the code.
#[test]
fn the_committed_schema_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/webhooks.schema.json");
    let generated = serde_json::to_string_pretty(&json_schema()).unwrap() + "\n";
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        std::fs::write(&path, &generated).unwrap();
        panic!(
            "{} was out of date and has been rewritten: review and commit it",
            path.display()
        );
    }
    let schema = json_schema();
    for contract in [
        "RouterRequest",
        "RouterDecision",
        "RegistrationEvent",
        "Cdr",
    ] {
        assert!(
            schema["$defs"][contract].is_object(),
            "{contract} is described"
        );
    }
    let decision_required = &schema["$defs"]["RouterDecision"]["required"];
    assert_eq!(decision_required, &serde_json::json!(["action"]));
}
