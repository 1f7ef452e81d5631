//! The client and the outbox against a real HTTP receiver on loopback (a
//! small hyper server started by each test): signatures the receiver
//! verifies, retries, a receiver that is down then comes up, a restart,
//! dead letters, a full outbox, the CDR push's multipart body, and the
//! router's round trip and timeout. Nothing is mocked, and every wait
//! polls with a deadline.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use trunkline_webhooks::signature::{DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};
use trunkline_webhooks::*;

const SECRET: &[u8] = b"s3cret";

/// One request as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or_default())
    }

    fn delivery(&self) -> String {
        self.header(DELIVERY_HEADER).to_owned()
    }

    /// Checks the signature as an integrator's receiver would.
    fn signed_with(&self, secret: &[u8]) -> bool {
        verify(
            secret,
            self.header(TIMESTAMP_HEADER),
            &self.body,
            self.header(SIGNATURE_HEADER),
        )
    }

    fn aor(&self) -> String {
        let event: RegistrationEvent = serde_json::from_slice(&self.body).unwrap();
        event.location.aor
    }
}

/// What the receiver answers to its `n`th request (from 0): status, body,
/// and how long it waits first.
type Answer = dyn Fn(&Received, usize) -> (StatusCode, String, Duration) + Send + Sync;

/// A webhook receiver listening on a loopback port.
struct Receiver {
    url: String,
    requests: Arc<Mutex<Vec<Received>>>,
    accept: JoinHandle<()>,
}

impl Receiver {
    /// A plain HTTP receiver.
    async fn start(
        addr: SocketAddr,
        answer: impl Fn(&Received, usize) -> (StatusCode, String, Duration) + Send + Sync + 'static,
    ) -> Receiver {
        Receiver::serve(addr, None, answer).await
    }

    /// A receiver speaking HTTPS when given a TLS acceptor.
    async fn serve(
        addr: SocketAddr,
        tls: Option<TlsAcceptor>,
        answer: impl Fn(&Received, usize) -> (StatusCode, String, Duration) + Send + Sync + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind(addr).await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}/hook", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let log = Arc::clone(&requests);
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, answer, tls) = (Arc::clone(&log), Arc::clone(&answer), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve_connection(TokioIo::new(stream), log, answer).await;
                            }
                        }
                        None => serve_connection(TokioIo::new(stream), log, answer).await,
                    }
                });
            }
        });
        Receiver {
            url,
            requests,
            accept,
        }
    }

    /// A receiver answering 200 to everything.
    async fn accepting(addr: SocketAddr) -> Receiver {
        Receiver::start(addr, |_, _| (StatusCode::OK, String::new(), Duration::ZERO)).await
    }

    /// A receiver answering `status` to its first `failures` requests,
    /// then 200.
    async fn failing_first(failures: usize, status: StatusCode) -> Receiver {
        Receiver::start(any_port(), move |_, n| {
            let status = if n < failures { status } else { StatusCode::OK };
            (status, String::new(), Duration::ZERO)
        })
        .await
    }

    fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Serves one connection: logs each request, then answers it.
async fn serve_connection<Io>(io: Io, log: Arc<Mutex<Vec<Received>>>, answer: Arc<Answer>)
where
    Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let (log, answer) = (Arc::clone(&log), Arc::clone(&answer));
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let received = Received {
                headers: parts.headers,
                body,
            };
            let n = {
                let mut log = log.lock().unwrap();
                log.push(received.clone());
                log.len() - 1
            };
            let (status, text, delay) = answer(&received, n);
            tokio::time::sleep(delay).await;
            let mut response = Response::new(Full::new(Bytes::from(text)));
            *response.status_mut() = status;
            Ok::<_, Infallible>(response)
        }
    });
    let _ = http1::Builder::new().serve_connection(io, service).await;
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A loopback address nothing listens on (until a test starts a receiver
/// there).
fn closed_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], trunkline_testkit::free_port()))
}

/// Polls `condition` every 20 ms until it holds; fails after `limit`.
async fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Fast retries, so a test sees several attempts in well under a second.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        first_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        ..RetryPolicy::default()
    }
}

fn hook(url: &str) -> Hook {
    Hook::new(url)
        .unwrap()
        .with_secret(SECRET)
        .with_timeout(Duration::from_secs(2))
        .with_retry(quick_retries())
}

fn outbox(path: &Path, hooks: &[(&str, Hook)]) -> Outbox {
    let mut config = OutboxConfig::new(path);
    for (name, hook) in hooks {
        config.hooks.insert((*name).to_owned(), hook.clone());
    }
    Outbox::open(config, Client::new().unwrap()).unwrap()
}

fn registered(aor: &str) -> Payload {
    Payload::registration(&RegistrationEvent {
        event: EventKind::Registered,
        timestamp: 1_708_201_234,
        location: Location {
            aor: aor.into(),
            destination: "1.2.3.4:12345".into(),
            transport: "TLS".into(),
            user_agent: Some("MicroSIP/3.21.3".into()),
            expires: 3600,
        },
    })
    .unwrap()
}

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_verifies_the_signature() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::accepting(any_port()).await;
    let signed = hook(&receiver.url).with_header("X-Tenant", "acme").unwrap();
    let outbox = outbox(&dir.path().join("outbox.db"), &[("locator", signed)]);
    let delivery = outbox
        .enqueue("locator", registered("sip:1001@pbx.com"))
        .await
        .unwrap();
    wait_until(LIMIT, "the delivery", || outbox.stats().delivered == 1).await;

    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert!(request.signed_with(SECRET));
    assert!(!request.signed_with(b"another secret"));
    assert_eq!(request.delivery(), delivery.as_str());
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.header("x-tenant"), "acme");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let signed_at: u64 = request.header(TIMESTAMP_HEADER).parse().unwrap();
    assert!(
        now.abs_diff(signed_at) < 60,
        "signed at {signed_at}, now {now}"
    );
    assert_eq!(
        std::str::from_utf8(&request.body).unwrap(),
        r#"{"event":"registered","timestamp":1708201234,"location":{"aor":"sip:1001@pbx.com","destination":"1.2.3.4:12345","transport":"TLS","user_agent":"MicroSIP/3.21.3","expires":3600}}"#
    );
    let stats = outbox.stats();
    assert_eq!((stats.depth, stats.failed_attempts, stats.dead), (0, 0, 0));
    outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_is_retried_with_the_same_delivery_id() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::failing_first(2, StatusCode::INTERNAL_SERVER_ERROR).await;
    let outbox = outbox(
        &dir.path().join("outbox.db"),
        &[("locator", hook(&receiver.url))],
    );
    let delivery = outbox
        .enqueue("locator", registered("sip:1001@pbx.com"))
        .await
        .unwrap();
    wait_until(LIMIT, "the third attempt to succeed", || {
        outbox.stats().delivered == 1
    })
    .await;

    let requests = receiver.requests();
    assert_eq!(requests.len(), 3);
    assert!(
        requests
            .iter()
            .all(|r| r.delivery() == delivery.as_str() && r.signed_with(SECRET))
    );
    let stats = outbox.stats();
    assert_eq!((stats.failed_attempts, stats.depth, stats.dead), (2, 0, 0));
    outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_every_delivery_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let addr = closed_port();
    let outbox = outbox(
        &dir.path().join("outbox.db"),
        &[("locator", hook(&format!("http://{addr}/hook")))],
    );
    let mut sent = Vec::new();
    for n in 0..20 {
        let aor = format!("sip:{}@pbx.com", 1000 + n);
        let id = outbox.enqueue("locator", registered(&aor)).await.unwrap();
        sent.push((id.to_string(), aor));
    }
    wait_until(LIMIT, "attempts to fail while nothing listens", || {
        outbox.stats().failed_attempts >= 3
    })
    .await;
    assert_eq!(outbox.stats().depth, 20);

    let receiver = Receiver::accepting(addr).await;
    wait_until(LIMIT, "all 20 deliveries", || {
        outbox.stats().delivered == 20
    })
    .await;
    let got: Vec<(String, String)> = receiver
        .requests()
        .iter()
        .map(|r| (r.delivery(), r.aor()))
        .collect();
    // No 2xx was lost, so each arrived exactly once, in enqueue order.
    assert_eq!(got, sent);
    assert_eq!(outbox.stats().depth, 0);
    outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_deliveries_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let addr = closed_port();
    let url = format!("http://{addr}/hook");
    let first = outbox(&path, &[("locator", hook(&url))]);
    let mut sent = Vec::new();
    for n in 0..5 {
        let aor = format!("sip:{}@pbx.com", 2000 + n);
        sent.push(
            first
                .enqueue("locator", registered(&aor))
                .await
                .unwrap()
                .to_string(),
        );
    }
    wait_until(LIMIT, "a failed attempt", || {
        first.stats().failed_attempts >= 1
    })
    .await;
    let stopping = Instant::now();
    first.shutdown().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "shutdown waits at most one attempt"
    );

    let receiver = Receiver::accepting(addr).await;
    let second = outbox(&path, &[("locator", hook(&url))]);
    wait_until(LIMIT, "the 5 stored deliveries", || {
        second.stats().delivered == 5
    })
    .await;
    let got: Vec<String> = receiver.requests().iter().map(Received::delivery).collect();
    assert_eq!(got, sent);
    assert_eq!(second.stats().depth, 0);
    second.shutdown().await;

    // A dropped outbox stops its tasks as well, and loses nothing either.
    let dropped = outbox(
        &path,
        &[("locator", hook(&format!("http://{}/hook", closed_port())))],
    );
    dropped
        .enqueue("locator", registered("sip:3000@pbx.com"))
        .await
        .unwrap();
    drop(dropped);
    let third = outbox(&path, &[("locator", hook(&url))]);
    wait_until(LIMIT, "the delivery left by the dropped outbox", || {
        third.stats().delivered == 1
    })
    .await;
    assert_eq!(
        receiver.requests().last().unwrap().aor(),
        "sip:3000@pbx.com"
    );
    third.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_dead_lettered_and_the_next_delivery_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // 404 for 1001 (final), 200 for the others; the other hook answers
    // 429 once (retried), then 200.
    let receiver = Receiver::start(any_port(), |request, _| {
        let status = if request.aor() == "sip:1001@pbx.com" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        (status, String::new(), Duration::ZERO)
    })
    .await;
    let throttled = Receiver::failing_first(1, StatusCode::TOO_MANY_REQUESTS).await;
    let outbox = outbox(
        &dir.path().join("outbox.db"),
        &[
            ("locator", hook(&receiver.url)),
            ("throttled", hook(&throttled.url)),
        ],
    );
    outbox
        .enqueue("locator", registered("sip:1001@pbx.com"))
        .await
        .unwrap();
    outbox
        .enqueue("locator", registered("sip:1002@pbx.com"))
        .await
        .unwrap();
    outbox
        .enqueue("throttled", registered("sip:1003@pbx.com"))
        .await
        .unwrap();
    wait_until(LIMIT, "two deliveries and a dead letter", || {
        let stats = outbox.stats();
        stats.delivered == 2 && stats.dead_lettered == 1
    })
    .await;
    let aors: Vec<String> = receiver.requests().iter().map(Received::aor).collect();
    assert_eq!(
        aors,
        ["sip:1001@pbx.com", "sip:1002@pbx.com"],
        "a 404 is not retried"
    );
    assert_eq!(throttled.requests().len(), 2, "a 429 is retried");
    let stats = outbox.stats();
    assert_eq!((stats.dead, stats.depth, stats.failed_attempts), (1, 0, 2));
    outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_end_when_the_policy_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::failing_first(usize::MAX, StatusCode::SERVICE_UNAVAILABLE).await;
    let bounded = hook(&receiver.url).with_retry(RetryPolicy {
        max_attempts: 3,
        ..quick_retries()
    });
    let outbox = outbox(&dir.path().join("outbox.db"), &[("locator", bounded)]);
    outbox
        .enqueue("locator", registered("sip:1001@pbx.com"))
        .await
        .unwrap();
    wait_until(LIMIT, "the delivery to be given up", || {
        outbox.stats().dead == 1
    })
    .await;
    assert_eq!(receiver.requests().len(), 3);
    assert_eq!(outbox.stats().failed_attempts, 3);
    outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_outbox_refuses_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = OutboxConfig::new(dir.path().join("outbox.db"));
    config.max_rows = 2;
    config.hooks.insert(
        "locator".into(),
        hook(&format!("http://{}/hook", closed_port())),
    );
    let outbox = Outbox::open(config, Client::new().unwrap()).unwrap();
    for n in 0..2 {
        outbox
            .enqueue("locator", registered(&format!("sip:{n}@pbx.com")))
            .await
            .unwrap();
    }
    let err = outbox
        .enqueue("locator", registered("sip:9@pbx.com"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OutboxFull { max_rows: 2, .. }),
        "{err}"
    );
    let err = outbox
        .enqueue("nobody", registered("sip:9@pbx.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::UnknownHook(_)), "{err}");
    let stats = outbox.stats();
    assert_eq!((stats.refused_full, stats.depth), (1, 2));
    outbox.shutdown().await;
}

/// The record of the CDR crate's example, with a recording.
fn recorded_call(wav: &Path) -> Cdr {
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../trunkline-cdr/tests/data/calllog.json");
    let mut cdr: Cdr = serde_json::from_slice(&std::fs::read(example).unwrap()).unwrap();
    cdr.recording = Some(wav.to_string_lossy().into_owned());
    cdr
}

/// The parts of a `multipart/form-data` body: name, content type, bytes.
async fn form_parts(request: &Received) -> Vec<(String, String, Bytes)> {
    let boundary = multer::parse_boundary(request.header("content-type")).unwrap();
    let body = request.body.clone();
    let stream = futures_util::stream::once(async move { Ok::<_, Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    while let Some(field) = form.next_field().await.unwrap() {
        let name = field.name().unwrap_or_default().to_owned();
        let content_type = field
            .content_type()
            .map(ToString::to_string)
            .unwrap_or_default();
        parts.push((name, content_type, field.bytes().await.unwrap()));
    }
    parts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cdr_push_carries_the_record_and_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    // Every byte value, CRLFs and dashes included, after a RIFF header.
    let mut wav = b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec();
    wav.extend((0..4096u32).map(|n| (n * 7 % 256) as u8));
    wav.extend_from_slice(b"\r\n--\r\n");
    let wav_path = dir.path().join("call 1.wav");
    std::fs::write(&wav_path, &wav).unwrap();
    let cdr = recorded_call(&wav_path);

    let receiver = Receiver::accepting(any_port()).await;
    let outbox = outbox(
        &dir.path().join("outbox.db"),
        &[("cdr", hook(&receiver.url))],
    );
    outbox
        .enqueue("cdr", Payload::cdr_push(&cdr, true).unwrap())
        .await
        .unwrap();
    outbox
        .enqueue("cdr", Payload::cdr_push(&cdr, false).unwrap())
        .await
        .unwrap();
    wait_until(LIMIT, "both pushes", || outbox.stats().delivered == 2).await;

    let requests = receiver.requests();
    assert!(
        requests.iter().all(|r| r.signed_with(SECRET)),
        "signed over the whole form"
    );
    assert!(
        requests[0]
            .header("content-type")
            .starts_with("multipart/form-data; boundary=")
    );
    let with_media = form_parts(&requests[0]).await;
    assert_eq!(with_media.len(), 2);
    let (name, content_type, calllog) = &with_media[0];
    assert_eq!(
        (name.as_str(), content_type.as_str()),
        (CALLLOG_FIELD, "application/json")
    );
    assert_eq!(serde_json::from_slice::<Cdr>(calllog).unwrap(), cdr);
    let (name, content_type, audio) = &with_media[1];
    assert_eq!(
        (name.as_str(), content_type.as_str()),
        (MEDIA_FIELD, "audio/wav")
    );
    assert_eq!(audio.as_ref(), wav.as_slice());

    let without_media = form_parts(&requests[1]).await;
    assert_eq!(without_media.len(), 1);
    assert_eq!(without_media[0].0, CALLLOG_FIELD);
    outbox.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_recording_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::accepting(any_port()).await;
    let outbox = outbox(
        &dir.path().join("outbox.db"),
        &[("cdr", hook(&receiver.url))],
    );
    let cdr = recorded_call(&dir.path().join("deleted.wav"));
    outbox
        .enqueue("cdr", Payload::cdr_push(&cdr, true).unwrap())
        .await
        .unwrap();
    wait_until(LIMIT, "the dead letter", || outbox.stats().dead == 1).await;
    assert!(receiver.requests().is_empty());
    outbox.shutdown().await;
}

fn invite() -> RouterRequest {
    RouterRequest {
        call_id: "a84b4c76e66710@1.2.3.4".into(),
        from: "<sip:1001@pbx.com>;tag=1928301774".into(),
        to: "<sip:1002@pbx.com>".into(),
        source_addr: "1.2.3.4:5060".parse().unwrap(),
        direction: Direction::Internal,
        method: "INVITE".into(),
        uri: "sip:1002@pbx.com".into(),
        headers: [("User-Agent".to_owned(), "MicroSIP/3.21.3".to_owned())].into(),
        body: "v=0\r\n".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_answers_a_decision() {
    let receiver = Receiver::start(any_port(), |request, _| {
        let asked: RouterRequest = serde_json::from_slice(&request.body).unwrap();
        let answer = format!(
            r#"{{"action":"forward","targets":["sip:{}@192.168.1.50:5060"],"strategy":"sequential","record":true,"timeout":30,"media_proxy":"nat","headers":{{"X-Call-Reason":"vip"}},"priority":"unknown fields are ignored"}}"#,
            asked.uri.trim_start_matches("sip:").split('@').next().unwrap()
        );
        (StatusCode::OK, answer, Duration::ZERO)
    })
    .await;
    let client = Client::new().unwrap();
    let decision = client.route(&hook(&receiver.url), &invite()).await.unwrap();
    assert_eq!(
        decision,
        RouterDecision {
            action: RouterAction::Forward,
            targets: vec!["sip:1002@192.168.1.50:5060".into()],
            strategy: Some(Strategy::Sequential),
            record: Some(true),
            timeout: Some(30),
            media_proxy: Some(MediaProxy::Nat),
            headers: [("X-Call-Reason".to_owned(), "vip".to_owned())].into(),
        }
    );
    let request = &receiver.requests()[0];
    assert!(request.signed_with(SECRET));
    assert_eq!(
        serde_json::from_slice::<RouterRequest>(&request.body).unwrap(),
        invite()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_failures_are_errors_for_the_engine_to_fall_back_on() {
    let receiver = Receiver::start(any_port(), |request, _| {
        let asked: RouterRequest = serde_json::from_slice(&request.body).unwrap();
        match asked.call_id.as_str() {
            "slow" => (
                StatusCode::OK,
                r#"{"action":"reject"}"#.into(),
                Duration::from_secs(3),
            ),
            "broken" => (StatusCode::OK, "<html>".into(), Duration::ZERO),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                String::new(),
                Duration::ZERO,
            ),
        }
    })
    .await;
    let client = Client::new().unwrap();
    let router = hook(&receiver.url).with_timeout(Duration::from_millis(300));
    let ask = |call_id: &str| RouterRequest {
        call_id: call_id.into(),
        ..invite()
    };

    let started = Instant::now();
    let err = client.route(&router, &ask("slow")).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up at the hook's timeout"
    );
    let err = client.route(&router, &ask("broken")).await.unwrap_err();
    assert!(matches!(err, Error::Decision { .. }), "{err}");
    let err = client.route(&router, &ask("failing")).await.unwrap_err();
    assert!(matches!(err, Error::Status { status: 500, .. }), "{err}");
    let nobody = hook(&format!("http://{}/hook", closed_port()));
    let err = client.route(&nobody, &invite()).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(
        receiver.requests().len() == 3,
        "one attempt each, never retried"
    );
}

/// A receiver with a self-signed certificate for 127.0.0.1, and a client
/// configuration trusting it.
fn private_tls() -> (TlsAcceptor, rustls::ClientConfig) {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let certificate = generated.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(generated.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certificate.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (TlsAcceptor::from(Arc::new(server)), client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_receiver_the_client_trusts() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, trusting) = private_tls();
    let receiver = Receiver::serve(any_port(), Some(acceptor), |_, _| {
        (
            StatusCode::OK,
            r#"{"action":"not_handled"}"#.into(),
            Duration::ZERO,
        )
    })
    .await;
    assert!(receiver.url.starts_with("https://127.0.0.1:"));

    let decision = Client::with_tls(trusting.clone())
        .route(&hook(&receiver.url), &invite())
        .await
        .unwrap();
    assert_eq!(decision.action, RouterAction::NotHandled);
    let untrusting = Client::new().unwrap();
    let err = untrusting
        .route(&hook(&receiver.url), &invite())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Transport { .. }),
        "a certificate no root vouches for: {err}"
    );

    let mut config = OutboxConfig::new(dir.path().join("outbox.db"));
    config.hooks.insert("locator".into(), hook(&receiver.url));
    let outbox = Outbox::open(config, Client::with_tls(trusting)).unwrap();
    outbox
        .enqueue("locator", registered("sip:1001@pbx.com"))
        .await
        .unwrap();
    wait_until(LIMIT, "the delivery over TLS", || {
        outbox.stats().delivered == 1
    })
    .await;
    let requests = receiver.requests();
    assert_eq!(
        requests.len(),
        2,
        "the untrusted client never got a request through"
    );
    assert!(requests.iter().all(|r| r.signed_with(SECRET)));
    outbox.shutdown().await;
}
