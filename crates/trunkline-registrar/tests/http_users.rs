//! The HTTP user backend against a real HTTP server on loopback that
//! speaks the integrators' contract: the default query (`u`, `r`) and
//! configured field names, found users (plain password or HA1), 403
//! refusals, 404 unknowns, a broken answer, a slow one, the cache, and a
//! registration authenticated through it end to end.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use trunkline_registrar::{
    Algorithm, HttpUsers, HttpUsersConfig, Lookup, MemoryLocator, Registrar, RegistrarConfig,
    Secret, User, UserBackend, authorization,
};
use trunkline_sip::{HeaderName, Message};
use trunkline_transaction::{Peer, Transport};

const REALM: &str = "pbx.example.com";

/// How a user service reads its query: the parameter names it takes the
/// user name and realm from, and the one realm it serves.
#[derive(Debug, Clone, Copy)]
struct Contract {
    user_field: &'static str,
    realm_field: &'static str,
    realm: &'static str,
}

/// The service most tests talk to, with field names configured.
const CONFIGURED: Contract = Contract {
    user_field: "user",
    realm_field: "domain",
    realm: REALM,
};

/// The contract exactly as the issue writes it: `?u=1001&r=pbx.com`.
const DEFAULTS: Contract = Contract {
    user_field: "u",
    realm_field: "r",
    realm: "pbx.com",
};

/// The user service: answers by the contract's query parameters, counts
/// calls and notes each request's path and query.
async fn answer(
    request: Request<Incoming>,
    contract: Contract,
    calls: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    calls.fetch_add(1, Ordering::SeqCst);
    if let Some(target) = request.uri().path_and_query() {
        seen.lock().unwrap().push(target.as_str().to_owned());
    }
    let query = request.uri().query().unwrap_or_default().to_owned();
    let field = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_owned()
    };
    let (user, realm) = (field(contract.user_field), field(contract.realm_field));
    let account = |password: &str| {
        format!(
            r#"{{"id":{user},"username":"{user}","password":"{password}","display_name":"John Doe","email":"john@pbx.com","allow_guest_calls":false}}"#
        )
    };
    let (status, body) = match user.as_str() {
        _ if realm != contract.realm => (StatusCode::BAD_REQUEST, String::new()),
        "1001" => (StatusCode::OK, account("secret")),
        "1002" => (
            StatusCode::OK,
            account(&Algorithm::Md5.ha1("1002", REALM, "hashed")),
        ),
        "locked" => (
            StatusCode::FORBIDDEN,
            r#"{"reason":"invalid_password","message":"Account locked"}"#.to_owned(),
        ),
        "broken" => (StatusCode::OK, "<html>oops</html>".to_owned()),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            (StatusCode::OK, account("late"))
        }
        _ => (StatusCode::NOT_FOUND, String::new()),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    Ok(response)
}

/// Starts the service with the configured field names; its URL and call
/// counter.
async fn service() -> (String, Arc<AtomicUsize>) {
    let (url, calls, _) = service_for(CONFIGURED).await;
    (url, calls)
}

/// Starts a service reading `contract`; its URL, call counter and the
/// requests it saw.
async fn service_for(contract: Contract) -> (String, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let url = format!("http://{}/users", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (counter, log) = (calls.clone(), seen.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (counter, log) = (counter.clone(), log.clone());
            tokio::spawn(async move {
                let service =
                    service_fn(move |r| answer(r, contract, counter.clone(), log.clone()));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, calls, seen)
}

fn backend(url: &str) -> HttpUsers {
    let mut config = HttpUsersConfig::new(url);
    config.username_field = "user".into();
    config.realm_field = "domain".into();
    config.timeout = Duration::from_millis(500);
    config.cache_ttl = Duration::from_millis(300);
    HttpUsers::new(config).unwrap()
}

#[tokio::test]
async fn by_default_the_query_is_u_and_r() {
    let (url, _, seen) = service_for(DEFAULTS).await;
    let config = HttpUsersConfig::new(&url);
    assert_eq!(
        (config.username_field.as_str(), config.realm_field.as_str()),
        ("u", "r")
    );
    let users = HttpUsers::new(config).unwrap();
    let found = users.lookup("1001", "pbx.com").await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        vec!["/users?u=1001&r=pbx.com".to_owned()]
    );
    assert_eq!(
        found,
        Lookup::Found(User {
            username: "1001".into(),
            secret: Secret::Password("secret".into()),
            display_name: Some("John Doe".into()),
            id: Some("1001".into()),
            email: Some("john@pbx.com".into()),
            allow_guest_calls: false,
        })
    );
}

#[tokio::test]
async fn the_contract_is_read_as_written() {
    let (url, _) = service().await;
    let users = backend(&url);
    let Lookup::Found(user) = users.lookup("1001", REALM).await.unwrap() else {
        panic!("1001 exists");
    };
    assert_eq!(user.secret, Secret::Password("secret".into()));
    assert_eq!(user.display_name.as_deref(), Some("John Doe"));
    assert_eq!(user.email.as_deref(), Some("john@pbx.com"));
    assert_eq!(user.id.as_deref(), Some("1001"));
    assert!(!user.allow_guest_calls);
    let Lookup::Found(hashed) = users.lookup("1002", REALM).await.unwrap() else {
        panic!("1002 exists");
    };
    assert!(
        matches!(hashed.secret, Secret::Ha1(h) if h.len() == 32),
        "an HA1 is recognised"
    );
    assert_eq!(
        users.lookup("locked", REALM).await.unwrap(),
        Lookup::Refused {
            reason: "invalid_password: Account locked".into()
        }
    );
    assert_eq!(
        users.lookup("nobody", REALM).await.unwrap(),
        Lookup::Unknown
    );
}

#[tokio::test]
async fn a_bad_or_slow_answer_is_an_error_that_names_the_service() {
    let (url, _) = service().await;
    let users = backend(&url);
    let broken = users.lookup("broken", REALM).await.unwrap_err();
    assert!(
        broken.0.contains(&url) && broken.0.contains("not an account"),
        "{broken}"
    );
    let started = std::time::Instant::now();
    assert!(users.lookup("slow", REALM).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the timeout holds"
    );
}

#[tokio::test]
async fn answers_are_cached_briefly() {
    let (url, calls) = service().await;
    let users = backend(&url);
    for _ in 0..3 {
        users.lookup("1001", REALM).await.unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    users.lookup("1001", REALM).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "asked again after the TTL");
}

#[tokio::test]
async fn a_phone_registers_with_an_ha1_from_the_service() {
    let (url, _) = service().await;
    let registrar = Registrar::new(
        RegistrarConfig::new(REALM),
        [3; 32],
        MemoryLocator::default(),
        backend(&url),
    );
    let register = Message::parse_slice(
        format!(
            "REGISTER sip:{REALM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKh1\r\n\
             From: <sip:1002@{REALM}>;tag=a\r\nTo: <sip:1002@{REALM}>\r\nCall-ID: h1\r\nCSeq: 1 REGISTER\r\n\
             Contact: <sip:1002@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let peer = Peer::new(Transport::Udp, "127.0.0.1:5070".parse().unwrap());
    let now = SystemTime::now();
    let challenge = registrar.handle(now, &register, peer).await.response;
    let md5 = challenge
        .www_authenticates()
        .find(|a| a.algorithm() == Some("MD5"))
        .unwrap();
    let credentials = authorization(
        &md5,
        "REGISTER",
        &format!("sip:{REALM}"),
        "1002",
        "hashed",
        "c1",
        1,
    )
    .unwrap();
    let answered = register
        .to_builder()
        .header(HeaderName::Authorization, credentials)
        .build()
        .unwrap();
    let ok = registrar.handle(now, &answered, peer).await;
    assert_eq!(ok.response.status().map(|s| s.as_u16()), Some(200));
    assert_eq!(ok.events.len(), 1);
}
