//! REGISTER handling (RFC 3261 §10.3) through the registrar with the
//! in-memory locator and static users: challenge and answer, refresh,
//! ordering, removal, wildcard, 423, q-values, Path, NAT flows, expiry,
//! events, and the brute-force guard.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};
use trunkline_registrar::{
    Binding, EventKind, GuardConfig, Locator, MemoryLocator, Registrar, RegistrarConfig,
    RegistrationEvent, StaticUsers, authorization,
};
use trunkline_sip::{HeaderName, Message, StatusCode};
use trunkline_transaction::{ConnectionId, Peer, Transport};

const REALM: &str = "pbx.example.com";

type Service = Registrar<MemoryLocator, StaticUsers>;

fn registrar() -> Service {
    let mut config = RegistrarConfig::new(REALM);
    config.guard = GuardConfig {
        max_failures: 3,
        window: Duration::from_secs(60),
    };
    let users = StaticUsers::new()
        .with_password("1001", "secret")
        .with_password("1002", "other");
    Registrar::new(config, [1; 32], MemoryLocator::default(), users)
}

fn phone() -> Peer {
    let addr: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    Peer::new(Transport::Udp, addr)
}

/// A REGISTER from extension `user` with extra header lines.
fn register(user: &str, cseq: u32, extra: &str) -> Message {
    let text = format!(
        "REGISTER sip:{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK{cseq}x{user}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{REALM}>;tag=ph{user}\r\n\
         To: <sip:{user}@{REALM}>\r\n\
         Call-ID: reg-{user}@127.0.0.1\r\n\
         CSeq: {cseq} REGISTER\r\n\
         User-Agent: TestPhone/1.0\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    );
    Message::parse_slice(text.as_bytes()).unwrap()
}

/// `request` again with an Authorization answering `challenge`.
fn answered(request: &Message, challenge: &Message, password: &str, nc: u32) -> Message {
    let offer = challenge.www_authenticates().next().unwrap();
    let user = request
        .to()
        .unwrap()
        .uri()
        .as_sip()
        .unwrap()
        .user()
        .unwrap()
        .to_owned();
    let value = authorization(
        &offer,
        "REGISTER",
        request.uri_str().unwrap(),
        &user,
        password,
        "c0ffee",
        nc,
    )
    .unwrap();
    request
        .to_builder()
        .header(HeaderName::Authorization, value)
        .build()
        .unwrap()
}

/// Challenge, then answer: the final response and its events.
async fn authenticated(
    registrar: &Service,
    now: SystemTime,
    request: &Message,
    password: &str,
) -> trunkline_registrar::Handled {
    authenticated_from(registrar, now, request, password, phone()).await
}

/// [`authenticated`], both requests arriving from `source`.
async fn authenticated_from(
    registrar: &Service,
    now: SystemTime,
    request: &Message,
    password: &str,
    source: Peer,
) -> trunkline_registrar::Handled {
    let challenge = registrar.handle(now, request, source).await.response;
    assert_eq!(challenge.status(), Some(StatusCode::UNAUTHORIZED));
    registrar
        .handle(now, &answered(request, &challenge, password, 1), source)
        .await
}

/// 1001's live bindings at `now`, as the locator gives them to the engine.
async fn bindings_of_1001(registrar: &Service, now: SystemTime) -> Vec<Binding> {
    let aor = "sip:1001@pbx.example.com";
    registrar.locator().lookup(aor, now).await.unwrap()
}

fn contacts(response: &Message) -> Vec<String> {
    response
        .header_values(HeaderName::Contact)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_phone_registers_refreshes_and_unregisters() {
    let registrar = registrar();
    let now = SystemTime::now();
    let first = register("1001", 1, "Contact: <sip:1001@127.0.0.1:40000>\r\n");
    let challenge = registrar.handle(now, &first, phone()).await.response;
    let offers: Vec<_> = challenge.www_authenticates().collect();
    assert_eq!(offers.len(), 2, "MD5 and SHA-256");
    assert_eq!(offers[1].algorithm(), Some("SHA-256"));

    let ok = registrar
        .handle(now, &answered(&first, &challenge, "secret", 1), phone())
        .await;
    assert_eq!(ok.response.status(), Some(StatusCode::OK));
    assert_eq!(
        contacts(&ok.response),
        vec!["<sip:1001@127.0.0.1:40000>;expires=3600"]
    );
    assert!(ok.response.header(HeaderName::Date).is_some());
    assert_eq!(ok.events.len(), 1);
    let event = serde_json::to_value(&ok.events[0]).unwrap();
    assert_eq!(event["event"], "registered");
    assert_eq!(event["location"]["aor"], "sip:1001@pbx.example.com");
    assert_eq!(event["location"]["destination"], "127.0.0.1:40000");
    assert_eq!(event["location"]["transport"], "UDP");
    assert_eq!(event["location"]["user_agent"], "TestPhone/1.0");
    assert_eq!(event["location"]["expires"], 3600);

    // A refresh ten minutes later: same binding, full time again, no event.
    let later = now + Duration::from_secs(600);
    let refresh = register("1001", 2, "Contact: <sip:1001@127.0.0.1:40000>\r\n");
    let ok = authenticated(&registrar, later, &refresh, "secret").await;
    assert_eq!(
        contacts(&ok.response),
        vec!["<sip:1001@127.0.0.1:40000>;expires=3600"]
    );
    assert!(ok.events.is_empty());

    // A REGISTER from the past (same Call-ID, lower CSeq) is refused.
    let stale = register("1001", 1, "Contact: <sip:1001@127.0.0.1:40000>\r\n");
    let refused = authenticated(&registrar, later, &stale, "secret").await;
    assert_eq!(
        refused.response.status(),
        Some(StatusCode::SERVER_INTERNAL_ERROR)
    );

    // Expires: 0 removes it.
    let bye = register(
        "1001",
        3,
        "Contact: <sip:1001@127.0.0.1:40000>\r\nExpires: 0\r\n",
    );
    let ok = authenticated(&registrar, later, &bye, "secret").await;
    assert_eq!(ok.response.status(), Some(StatusCode::OK));
    assert!(contacts(&ok.response).is_empty());
    assert_eq!(ok.events[0].event, EventKind::Unregistered);
    assert!(registrar.locator().is_empty());
}

#[tokio::test]
async fn several_contacts_are_listed_best_q_first_and_a_wildcard_clears_them() {
    let registrar = registrar();
    let now = SystemTime::now();
    let two = register(
        "1001",
        1,
        "Contact: <sip:1001@127.0.0.1:40001>;q=0.5, <sip:1001@127.0.0.1:40002>;q=0.9\r\nExpires: 120\r\n",
    );
    let ok = authenticated(&registrar, now, &two, "secret").await;
    assert_eq!(
        contacts(&ok.response),
        vec![
            "<sip:1001@127.0.0.1:40002>;expires=120",
            "<sip:1001@127.0.0.1:40001>;expires=120"
        ]
    );
    let found = bindings_of_1001(&registrar, now).await;
    assert_eq!(found[0].q, Some(900));
    // A query (no Contact) lists them without change.
    let query = authenticated(&registrar, now, &register("1001", 2, ""), "secret").await;
    assert_eq!(contacts(&query.response).len(), 2);
    // `*` needs Expires: 0 ...
    let bad = register("1001", 3, "Contact: *\r\nExpires: 60\r\n");
    let refused = authenticated(&registrar, now, &bad, "secret").await;
    assert_eq!(refused.response.status(), Some(StatusCode::BAD_REQUEST));
    // ... and then removes everything.
    let clear = register("1001", 4, "Contact: *\r\nExpires: 0\r\n");
    let ok = authenticated(&registrar, now, &clear, "secret").await;
    assert_eq!(ok.events.len(), 2);
    assert!(ok.events.iter().all(|e| e.event == EventKind::Unregistered));
    assert!(registrar.locator().is_empty());
}

#[tokio::test]
async fn too_short_an_expiry_gets_423_with_min_expires() {
    let registrar = registrar();
    let short = register(
        "1001",
        1,
        "Contact: <sip:1001@127.0.0.1:40000>;expires=30\r\n",
    );
    let refused = authenticated(&registrar, SystemTime::now(), &short, "secret").await;
    assert_eq!(
        refused.response.status(),
        Some(StatusCode::INTERVAL_TOO_BRIEF)
    );
    assert_eq!(refused.response.min_expires(), Some(60));
    // Too long is cut to the maximum.
    let long = register(
        "1001",
        2,
        "Contact: <sip:1001@127.0.0.1:40000>;expires=86400\r\n",
    );
    let ok = authenticated(&registrar, SystemTime::now(), &long, "secret").await;
    assert_eq!(
        contacts(&ok.response),
        vec!["<sip:1001@127.0.0.1:40000>;expires=3600"]
    );
}

#[tokio::test]
async fn lapsed_bindings_go_offline() {
    let registrar = registrar();
    let now = SystemTime::now();
    let short = register(
        "1001",
        1,
        "Contact: <sip:1001@127.0.0.1:40000>\r\nExpires: 60\r\n",
    );
    authenticated(&registrar, now, &short, "secret").await;
    assert!(
        registrar
            .expire(now + Duration::from_secs(59))
            .await
            .is_empty()
    );
    let gone = registrar.expire(now + Duration::from_secs(61)).await;
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].event, EventKind::Offline);
    assert_eq!(gone[0].location.expires, 0);
    assert!(registrar.locator().is_empty());
}

#[tokio::test]
async fn path_is_stored_and_echoed() {
    let registrar = registrar();
    let now = SystemTime::now();
    let via_edge = register(
        "1001",
        1,
        "Contact: <sip:1001@10.0.0.5:5060>\r\nPath: <sip:edge.example.com;lr>\r\nSupported: path\r\n",
    );
    let ok = authenticated(&registrar, now, &via_edge, "secret").await;
    assert_eq!(
        ok.response.header(HeaderName::Path),
        Some("<sip:edge.example.com;lr>")
    );
    let found = bindings_of_1001(&registrar, now).await;
    assert_eq!(found[0].path, vec!["<sip:edge.example.com;lr>"]);
}

/// A REGISTER from a phone on a private network: its Via and Contact
/// name 10.0.0.5:5060, which nobody outside can reach.
fn register_behind_nat(cseq: u32) -> Message {
    register(
        "1001",
        cseq,
        "Contact: <sip:1001@10.0.0.5:5060;transport=tcp>\r\n",
    )
    .to_builder()
    .set(
        HeaderName::Via,
        format!("SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKnat{cseq};rport"),
    )
    .build()
    .unwrap()
}

/// 1001 registers from behind NAT, the REGISTER arriving from `outside`:
/// the 200 lists the Contact as the phone wrote it, and it is 1001's one
/// binding, returned with the events.
async fn registered_through_nat(
    registrar: &Service,
    now: SystemTime,
    cseq: u32,
    outside: Peer,
) -> (Binding, Vec<RegistrationEvent>) {
    let request = register_behind_nat(cseq);
    let ok = authenticated_from(registrar, now, &request, "secret", outside).await;
    assert_eq!(ok.response.status(), Some(StatusCode::OK));
    assert_eq!(
        contacts(&ok.response),
        vec!["<sip:1001@10.0.0.5:5060;transport=tcp>;expires=3600"]
    );
    let mut found = bindings_of_1001(registrar, now).await;
    assert_eq!(found.len(), 1, "{found:?}");
    let binding = found.remove(0);
    assert_eq!(binding.contact, "sip:1001@10.0.0.5:5060;transport=tcp");
    (binding, ok.events)
}

#[tokio::test]
async fn a_phone_behind_nat_keeps_the_flow_its_register_came_from() {
    let registrar = registrar();
    let now = SystemTime::now();
    // What the NAT shows: another address and port, on a TCP connection.
    let outside = Peer {
        transport: Transport::Tcp,
        addr: "127.0.0.1:53124".parse().unwrap(),
        connection: Some(ConnectionId(7)),
    };
    let (binding, events) = registered_through_nat(&registrar, now, 1, outside).await;
    // The binding keeps where the REGISTER really came from, so calls go
    // there and not to the Contact's private address.
    assert_eq!(binding.flow, outside);
    let event = serde_json::to_value(&events[0]).unwrap();
    assert_eq!(event["location"]["destination"], "127.0.0.1:53124");
    assert_eq!(event["location"]["transport"], "TCP");

    // The NAT's mapping changes (a new connection, a new port): the refresh
    // moves the binding to the new flow instead of adding a second one.
    let moved = Peer {
        addr: "127.0.0.1:53999".parse().unwrap(),
        connection: Some(ConnectionId(8)),
        ..outside
    };
    let later = now + Duration::from_secs(600);
    let (binding, events) = registered_through_nat(&registrar, later, 2, moved).await;
    assert_eq!(binding.flow, moved);
    assert!(events.is_empty(), "a refresh, not a new binding");
}

#[tokio::test]
async fn every_path_entry_is_stored_in_order_as_a_route_value() {
    let registrar = registrar();
    let now = SystemTime::now();
    // Two proxies in one header, a third in another; one entry carries a
    // header parameter outside its URI.
    let via_edges = register(
        "1001",
        1,
        "Contact: <sip:1001@10.0.0.5:5060>\r\n\
         Path: <sip:edge2.example.com;lr>, <sip:edge1.example.com:5061;transport=tls;lr>;ob\r\n\
         Path: <sip:outer.example.net;lr>\r\n",
    );
    let ok = authenticated(&registrar, now, &via_edges, "secret").await;
    assert_eq!(ok.response.status(), Some(StatusCode::OK));
    let found = bindings_of_1001(&registrar, now).await;
    assert_eq!(
        found[0].path,
        vec![
            "<sip:edge2.example.com;lr>",
            "<sip:edge1.example.com:5061;transport=tls;lr>;ob",
            "<sip:outer.example.net;lr>",
        ]
    );
    // The engine puts each entry, in order, in a Route header of the
    // request to this contact (RFC 3327 §5.3): they must read back as the
    // same route set.
    let mut request = register("1002", 1, "");
    for entry in &found[0].path {
        request = request
            .to_builder()
            .header(HeaderName::Route, entry.as_str())
            .build()
            .unwrap();
    }
    let routes: Vec<_> = request
        .routes()
        .map(|r| (r.uri().as_str().to_owned(), r.param("ob").is_some()))
        .collect();
    assert_eq!(
        routes,
        vec![
            ("sip:edge2.example.com;lr".to_owned(), false),
            (
                "sip:edge1.example.com:5061;transport=tls;lr".to_owned(),
                true
            ),
            ("sip:outer.example.net;lr".to_owned(), false),
        ]
    );
    // Without `Supported: path` the 200 does not echo them (RFC 3327 §5.3).
    assert!(ok.response.header(HeaderName::Path).is_none());
}

#[tokio::test]
async fn nobody_registers_someone_elses_address() {
    let registrar = registrar();
    let now = SystemTime::now();
    // 1002 authenticates correctly but asks for 1001's address-of-record.
    let request = register("1001", 1, "Contact: <sip:x@127.0.0.1>\r\n");
    let challenge = registrar.handle(now, &request, phone()).await.response;
    let offer = challenge.www_authenticates().next().unwrap();
    let value = authorization(
        &offer,
        "REGISTER",
        "sip:pbx.example.com",
        "1002",
        "other",
        "c",
        1,
    )
    .unwrap();
    let hijack = request
        .to_builder()
        .header(HeaderName::Authorization, value)
        .build()
        .unwrap();
    let refused = registrar.handle(now, &hijack, phone()).await;
    assert_eq!(refused.response.status(), Some(StatusCode::FORBIDDEN));
}

#[tokio::test]
async fn wrong_passwords_are_challenged_again_then_refused_and_unknown_users_look_the_same() {
    let registrar = registrar();
    let now = SystemTime::now();
    let request = register("1001", 1, "Contact: <sip:1001@127.0.0.1:40000>\r\n");
    let challenge = registrar.handle(now, &request, phone()).await.response;
    let mut statuses = Vec::new();
    for attempt in 0..4 {
        let guess = answered(
            &request,
            &challenge,
            &format!("guess{attempt}"),
            attempt + 1,
        );
        let answer = registrar.handle(now, &guess, phone()).await;
        statuses.push(answer.response.status().unwrap().as_u16());
    }
    assert_eq!(
        statuses,
        vec![401, 401, 403, 403],
        "refused from the third failure"
    );
    assert_eq!(registrar.stats().auth_failures, 3);
    // Each 403 is counted: the third failure's and the fourth attempt's.
    assert_eq!(registrar.stats().blocked, 2);
    // The right password no longer helps for the window; even the
    // challenge is refused to that source.
    let right = answered(&request, &challenge, "secret", 9);
    let blocked = registrar.handle(now, &right, phone()).await;
    assert_eq!(blocked.response.status(), Some(StatusCode::FORBIDDEN));
    let blocked = registrar.handle(now, &request, phone()).await;
    assert_eq!(blocked.response.status(), Some(StatusCode::FORBIDDEN));
    assert_eq!(registrar.stats().blocked, 4);
    assert_eq!(
        registrar.stats().auth_failures,
        3,
        "a refusal is no failure"
    );
    // ...but does after it.
    let later = now + Duration::from_secs(61);
    let ok = authenticated(&registrar, later, &request, "secret").await;
    assert_eq!(ok.response.status(), Some(StatusCode::OK));
    assert_eq!(
        registrar.stats().blocked,
        4,
        "nothing refused once it lapsed"
    );
    assert_eq!(registrar.stats().accepted, 1);

    // An unknown user gets the very same kind of answer as a wrong password.
    let fresh = self::registrar();
    let ghost = register("9999", 1, "Contact: <sip:9999@127.0.0.1:40000>\r\n");
    let unknown = authenticated(&fresh, now, &ghost, "secret").await.response;
    let wrong = authenticated(&fresh, now, &request, "nope").await.response;
    let shape = |m: &Message| {
        let mut names: Vec<_> = m.headers().map(|h| h.name.to_owned()).collect();
        names.sort();
        (m.status(), names, m.www_authenticates().count())
    };
    assert_eq!(shape(&unknown), shape(&wrong));
}

#[tokio::test]
async fn an_expired_nonce_gets_a_stale_challenge() {
    let registrar = registrar();
    let then = SystemTime::now();
    let request = register("1001", 1, "Contact: <sip:1001@127.0.0.1:40000>\r\n");
    let challenge = registrar.handle(then, &request, phone()).await.response;
    let late = then + Duration::from_secs(400);
    let stale = registrar
        .handle(late, &answered(&request, &challenge, "secret", 1), phone())
        .await
        .response;
    assert_eq!(stale.status(), Some(StatusCode::UNAUTHORIZED));
    assert!(stale.www_authenticates().all(|a| a.is_stale()));
    assert_eq!(registrar.stats().auth_failures, 0, "stale is not a failure");
}

#[tokio::test]
async fn other_requests_are_challenged_with_407_and_proxy_authorization() {
    let registrar = registrar();
    let now = SystemTime::now();
    let invite = Message::parse_slice(
        format!(
            "INVITE sip:1002@{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKinv\r\n\
             Max-Forwards: 70\r\nFrom: <sip:1001@{REALM}>;tag=a\r\nTo: <sip:1002@{REALM}>\r\n\
             Call-ID: inv@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@127.0.0.1:40000>\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let challenge = registrar
        .authenticate(now, &invite, phone())
        .await
        .unwrap_err();
    assert_eq!(
        challenge.status(),
        Some(StatusCode::PROXY_AUTHENTICATION_REQUIRED)
    );
    assert_eq!(challenge.proxy_authenticates().count(), 2);
    assert_eq!(challenge.www_authenticates().count(), 0);
    let offer = challenge.proxy_authenticates().next().unwrap();
    let uri = invite.uri_str().unwrap();
    let credentials = authorization(&offer, "INVITE", uri, "1001", "secret", "c", 1).unwrap();
    let answered = invite
        .to_builder()
        .header(HeaderName::ProxyAuthorization, credentials)
        .build()
        .unwrap();
    let user = registrar
        .authenticate(now, &answered, phone())
        .await
        .unwrap();
    assert_eq!(user.username, "1001");
}
