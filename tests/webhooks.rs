//! The webhooks through the real binary, with real peers on loopback: an
//! HTTP receiver (hyper, started by each test, checking the signature)
//! and SIPp phones. The HTTP router forwards a call to a phone's URI with
//! a header the phone checks, rejects one, leaves one to the static routes,
//! and when it cannot be reached the PBX falls back or answers 503; the
//! locator webhook hears a registration; the CDR push brings the record
//! and its recording, and one made while the receiver is down arrives
//! once it is up, across a restart. Every wait polls with a deadline.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trunkline_cdr::Disposition;
use trunkline_e2e::{EXTENSIONS, Pbx, call_as_1001, phone, phone_at, phones_done, records};
use trunkline_testkit::free_port;
use trunkline_webhooks::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, verify};

const SECRET: &str = "s3cret";

/// One request as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or_default())
    }

    /// Checks the signature as an integrator's receiver would.
    fn signed(&self) -> bool {
        verify(
            SECRET.as_bytes(),
            self.header(TIMESTAMP_HEADER),
            &self.body,
            self.header(SIGNATURE_HEADER),
        )
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the receiver answers a request: status, JSON body, delay.
type Answer = dyn Fn(&Received) -> (StatusCode, String, Duration) + Send + Sync;

/// A webhook receiver on a loopback port, on its own runtime (the tests
/// themselves drive blocking processes).
struct Receiver {
    runtime: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(
        addr: SocketAddr,
        answer: impl Fn(&Received) -> (StatusCode, String, Duration) + Send + Sync + 'static,
    ) -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let log = Arc::clone(&requests);
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, answer) = (Arc::clone(&log), Arc::clone(&answer));
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (log, answer) = (Arc::clone(&log), Arc::clone(&answer));
                        async move {
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let received = Received {
                                path: parts.uri.path().to_owned(),
                                headers: parts.headers,
                                body,
                            };
                            log.lock().unwrap().push(received.clone());
                            let (status, text, delay) = answer(&received);
                            tokio::time::sleep(delay).await;
                            let mut response = Response::new(Full::new(Bytes::from(text)));
                            *response.status_mut() = status;
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            runtime: Some(runtime),
            addr,
            requests,
        }
    }

    /// A receiver answering 200 to everything.
    fn accepting(addr: SocketAddr) -> Receiver {
        Receiver::start(addr, |_| (StatusCode::OK, String::new(), Duration::ZERO))
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// Waits (bounded) until `count` requests to `path` came; returns them.
    fn wait_for(&self, path: &str, count: usize, limit: Duration, pbx: &Pbx) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let got: Vec<Received> = self
                .requests()
                .into_iter()
                .filter(|r| r.path == path)
                .collect();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} requests to {path} within {limit:?}; log:\n{}",
                got.len(),
                pbx.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Stops the accept loop and the connections at once.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The dialled number of a router request (`sip:7000@…` → `7000`).
fn dialled(request: &Received) -> String {
    let uri = request.json()["uri"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let user = uri.trim_start_matches("sip:");
    user.split('@').next().unwrap_or_default().to_owned()
}

fn decision(value: Value) -> (StatusCode, String, Duration) {
    (StatusCode::OK, value.to_string(), Duration::ZERO)
}

fn router_config(url: &str, extra: &str) -> String {
    format!(
        "{EXTENSIONS}\n[proxy.http_router]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n{extra}\n\
         [proxy.http_router.headers]\nX-Api-Key = \"k-123\"\n"
    )
}

/// The router forwards 7000 (no extension, no route) to 1002's phone by
/// its URI, adding a header the phone checks; the request it got is the
/// documented one, signed and with the configured header.
#[test]
fn the_http_router_forwards_to_a_phone_uri_with_its_headers() {
    let phone_port = Arc::new(Mutex::new(0u16));
    let target = Arc::clone(&phone_port);
    let receiver = Receiver::start(loopback(0), move |_| {
        let port = *target.lock().unwrap();
        decision(json!({
            "action": "forward",
            "targets": [format!("sip:1002@127.0.0.1:{port}")],
            "strategy": "parallel",
            "timeout": 20,
            "headers": {"X-Call-Reason": "vip-customer"},
            "unknown_field": "ignored",
        }))
    });
    let pbx = Pbx::start(&router_config(&receiver.url("/route"), ""));
    let (callee, port) = phone_at(&pbx, "1002", "second-secret", "uas_answer_reason.xml");
    *phone_port.lock().unwrap() = port;
    call_as_1001(&pbx, "call_answered.xml", "7000");
    phones_done(&pbx, vec![("1002", callee)]);

    let requests = receiver.wait_for("/route", 1, Duration::from_secs(5), &pbx);
    assert_eq!(requests.len(), 1, "one request per INVITE");
    let request = &requests[0];
    assert!(request.signed(), "signature");
    assert_eq!(request.header("x-api-key"), "k-123");
    assert_eq!(request.header("content-type"), "application/json");
    let body = request.json();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "body",
            "call_id",
            "direction",
            "from",
            "headers",
            "method",
            "source_addr",
            "to",
            "uri"
        ],
        "{body}"
    );
    assert_eq!(body["method"], "INVITE");
    assert_eq!(body["direction"], "internal");
    assert_eq!(
        body["uri"],
        format!("sip:7000@127.0.0.1:{}", pbx.sip_port),
        "{body}"
    );
    assert!(
        body["from"]
            .as_str()
            .unwrap()
            .starts_with("<sip:1001@127.0.0.1>;tag="),
        "{body}"
    );
    assert_eq!(body["to"], "<sip:7000@127.0.0.1>");
    assert!(
        body["source_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{body}"
    );
    assert_eq!(body["headers"]["User-Agent"], "SIPp");
    assert_eq!(body["headers"]["Call-ID"], body["call_id"]);
    assert!(body["headers"].get("Proxy-Authorization").is_none());
    assert!(body["body"].as_str().unwrap().starts_with("v=0"), "{body}");

    let records = records(&pbx);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].disposition, Disposition::Answered);
    assert_eq!(
        records[0].destination_channel.as_deref(),
        Some("http_router")
    );
}

/// A trunk's call (admitted by its ACL, no challenge) goes to the router
/// too, as `inbound`: here to a number the trunk has no DID for, which
/// the router sends to 1002.
#[test]
fn a_trunks_call_is_routed_by_the_http_router() {
    let receiver = Receiver::start(loopback(0), |_| {
        decision(json!({"action": "forward", "targets": ["1002"]}))
    });
    let trunk = "[[trunks]]\nname = \"carrier\"\nuri = \"sip:127.0.0.2:5080\"\n\
                 inbound_acl = [\"127.0.0.2\"]\n";
    let pbx = Pbx::start(&format!(
        "{}{trunk}",
        router_config(&receiver.url("/route"), "")
    ));
    let callee = phone(&pbx, "1002", "second-secret", "uas_answer.xml");
    let mut carrier = trunkline_testkit::sipp();
    carrier
        .args(["-sf", &trunkline_e2e::scenario_path("carrier_call.xml")])
        .args([
            "-i",
            "127.0.0.2",
            "-t",
            "u1",
            "-m",
            "1",
            "-s",
            "+442079999999",
        ])
        .args(["-p", &free_port().to_string()])
        .arg(format!("127.0.0.1:{}", pbx.sip_port));
    let code = trunkline_testkit::Reaped::spawn(&mut carrier).exit_code(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{}", pbx.log());
    phones_done(&pbx, vec![("1002", callee)]);

    let requests = receiver.wait_for("/route", 1, Duration::from_secs(5), &pbx);
    let body = requests[0].json();
    assert_eq!(body["direction"], "inbound", "{body}");
    assert!(
        body["source_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.2:"),
        "{body}"
    );
    let records = records(&pbx);
    assert_eq!(records[0].disposition, Disposition::Answered);
    assert_eq!(records[0].source_channel, "trunk/carrier");
    assert_eq!(
        records[0].destination_channel.as_deref(),
        Some("http_router")
    );
}

/// `reject` refuses with 403; `not_handled` leaves the call to the PBX,
/// which rings the extension dialled.
#[test]
fn the_http_router_rejects_or_leaves_the_call_to_the_static_routes() {
    let receiver = Receiver::start(loopback(0), |request| match dialled(request).as_str() {
        "6000" => decision(json!({"action": "reject"})),
        _ => decision(json!({"action": "not_handled"})),
    });
    let pbx = Pbx::start(&router_config(&receiver.url("/route"), ""));
    let callee = phone(&pbx, "1002", "second-secret", "uas_answer.xml");
    call_as_1001(&pbx, "call_refused_403.xml", "6000");
    call_as_1001(&pbx, "call_answered.xml", "1002");
    phones_done(&pbx, vec![("1002", callee)]);

    assert_eq!(receiver.requests().len(), 2);
    let records = records(&pbx);
    let rejected = records.iter().find(|r| r.callee.number == "6000").unwrap();
    assert_eq!(rejected.hangup.sip_status, Some(403));
    assert_eq!(rejected.destination_channel.as_deref(), Some("http_router"));
    assert_eq!(
        rejected.hangup.reason.as_deref(),
        Some("rejected by the HTTP router")
    );
    let answered = records.iter().find(|r| r.callee.number == "1002").unwrap();
    assert_eq!(answered.disposition, Disposition::Answered);
    assert_eq!(
        answered.destination_channel.as_deref(),
        Some("extension/1002")
    );
}

/// A router nobody listens on, with the default `fallback_to_static`:
/// calls go by the static routes (here a route to 1002).
#[test]
fn an_unreachable_router_falls_back_to_the_static_routes() {
    let closed = format!("http://127.0.0.1:{}/route", free_port());
    let extra = "\n[[routes]]\nname = \"desk\"\nmatch = { prefix = \"5\" }\nto = { extension = \"1002\" }\n";
    let pbx = Pbx::start(&format!("{}{extra}", router_config(&closed, "")));
    let callee = phone(&pbx, "1002", "second-secret", "uas_answer.xml");
    call_as_1001(&pbx, "call_answered.xml", "500");
    phones_done(&pbx, vec![("1002", callee)]);
    let records = records(&pbx);
    assert_eq!(records[0].disposition, Disposition::Answered);
    assert_eq!(
        records[0].destination_channel.as_deref(),
        Some("route/desk")
    );
    assert!(pbx.log().contains("routing by the static routes"));
}

/// A router slower than `timeout_ms`, without fallback: 503, and the
/// call is not put through (the answer that comes later is ignored).
#[test]
fn a_router_timeout_without_fallback_is_503() {
    let receiver = Receiver::start(loopback(0), |_| {
        let (status, body, _) = decision(json!({"action": "forward", "targets": ["1002"]}));
        (status, body, Duration::from_secs(10))
    });
    let extra = "fallback_to_static = false\ntimeout_ms = 300";
    let pbx = Pbx::start(&router_config(&receiver.url("/route"), extra));
    let started = Instant::now();
    call_as_1001(&pbx, "call_refused_503.xml", "1002");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "waited for the router"
    );
    pbx.wait_idle();
    let records = records(&pbx);
    assert_eq!(records[0].hangup.sip_status, Some(503));
    assert_eq!(receiver.requests().len(), 1);
}

/// A SIPp REGISTER reaches the locator webhook as the documented JSON,
/// signed.
#[test]
fn the_locator_webhook_hears_a_registration() {
    let receiver = Receiver::accepting(loopback(0));
    let pbx = Pbx::start(&format!(
        "{EXTENSIONS}\n[proxy.locator_webhook]\nurl = \"{}\"\nevents = [\"registered\", \"offline\"]\nsecret = \"{SECRET}\"\ntimeout_ms = 2000\n",
        receiver.url("/locator")
    ));
    call_as_1001(&pbx, "register.xml", "1001");
    let events = receiver.wait_for("/locator", 1, Duration::from_secs(10), &pbx);
    let event = &events[0];
    assert!(event.signed());
    let body = event.json();
    let timestamp = body["timestamp"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(timestamp) < 60, "{body}");
    let destination = body["location"]["destination"].as_str().unwrap().to_owned();
    assert!(destination.starts_with("127.0.0.1:"), "{body}");
    assert_eq!(
        body,
        json!({
            "event": "registered",
            "timestamp": timestamp,
            "location": {
                "aor": "sip:1001@127.0.0.1",
                "destination": destination,
                "transport": "UDP",
                "user_agent": "SIPp",
                "expires": 3600,
            }
        })
    );
    // The health check counts the delivery once the outbox has its answer.
    let outbox = outbox_when(&pbx, |outbox| outbox["delivered"] == 1);
    assert_eq!(
        (outbox["pending"].as_u64(), outbox["failed"].as_u64()),
        (Some(0), Some(0)),
        "{outbox}"
    );
}

/// The health check's `outbox` once `ready` holds of it (within 10 s).
fn outbox_when(pbx: &Pbx, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let outbox = pbx.health()["outbox"].clone();
        if ready(&outbox) {
            return outbox;
        }
        assert!(Instant::now() < deadline, "{outbox}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The multipart body's parts by form name: (headers, content).
fn parts(request: &Received) -> Vec<(String, Vec<u8>)> {
    let content_type = request.header("content-type");
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap_or_else(|| panic!("{content_type}"));
    let delimiter = format!("--{boundary}");
    let body = &request.body[..];
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(at) = find(rest, delimiter.as_bytes()) {
        rest = &rest[at + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let content_start = head_end + 4;
        let end = find(
            &rest[content_start..],
            format!("\r\n{delimiter}").as_bytes(),
        )
        .unwrap();
        parts.push((head, rest[content_start..content_start + end].to_vec()));
        rest = &rest[content_start + end + 2..];
    }
    parts
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn callrecord(url: &str) -> String {
    format!(
        "{EXTENSIONS}\n[recording]\nenabled = true\n\
         [callrecord]\ntype = \"http\"\nurl = \"{url}\"\nwith_media = true\nsecret = \"{SECRET}\"\n"
    )
}

/// Checks a CDR push: signed, the record of the answered call, its WAV.
fn check_push(push: &Received) {
    assert!(push.signed(), "signature");
    let parts = parts(push);
    assert_eq!(parts.len(), 2, "{parts:?}");
    let (head, calllog) = &parts[0];
    assert!(head.contains("name=\"calllog.json\""), "{head}");
    let record: Value = serde_json::from_slice(calllog).unwrap();
    assert_eq!(record["disposition"], "ANSWERED", "{record}");
    assert_eq!(record["callee"]["number"], "1002");
    let (head, wav) = &parts[1];
    assert!(head.contains("name=\"media_audio-0\""), "{head}");
    assert!(head.contains("Content-Type: audio/wav"), "{head}");
    let recording = record["recording"].as_str().unwrap();
    let file_name = std::path::Path::new(recording).file_name().unwrap();
    assert!(
        head.contains(&format!("filename=\"{}\"", file_name.to_string_lossy())),
        "{head}"
    );
    assert_eq!(&wav[..4], b"RIFF");
    assert_eq!(&wav[8..12], b"WAVE");
}

/// A recorded call's record is pushed with its WAV.
#[test]
fn the_cdr_push_brings_the_record_and_the_recording() {
    let receiver = Receiver::accepting(loopback(0));
    let pbx = Pbx::start(&callrecord(&receiver.url("/cdr")));
    let callee = phone(&pbx, "1002", "second-secret", "uas_answer.xml");
    call_as_1001(&pbx, "call_answered.xml", "1002");
    phones_done(&pbx, vec![("1002", callee)]);
    let pushes = receiver.wait_for("/cdr", 1, Duration::from_secs(10), &pbx);
    check_push(&pushes[0]);
    let stored = records(&pbx);
    let pushed: Value = serde_json::from_slice(&parts(&pushes[0])[0].1).unwrap();
    assert_eq!(pushed["id"], stored[0].id.as_str());
}

/// The receiver is down when the call ends and while the PBX stops; the
/// push waits in the outbox, and once the receiver is up and the PBX
/// started again on the same data it arrives, once.
#[test]
fn a_cdr_push_made_while_the_receiver_is_down_arrives_after_it_comes_up() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/cdr");
    let mut pbx = Pbx::start(&callrecord(&url));
    let callee = phone(&pbx, "1002", "second-secret", "uas_answer.xml");
    call_as_1001(&pbx, "call_answered.xml", "1002");
    phones_done(&pbx, vec![("1002", callee)]);
    // An attempt failed: the push is in the outbox, not lost.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pbx.log().contains("webhook attempt failed") {
        assert!(
            Instant::now() < deadline,
            "no failed attempt:\n{}",
            pbx.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let outbox = outbox_when(&pbx, |outbox| outbox["failed_attempts"].as_u64() >= Some(1));
    assert_eq!(
        (outbox["pending"].as_u64(), outbox["delivered"].as_u64()),
        (Some(1), Some(0)),
        "{outbox}"
    );
    pbx.stop();
    assert!(
        pbx.log().contains("left for the next start"),
        "{}",
        pbx.log()
    );
    let Pbx { dir, .. } = pbx;

    let receiver = Receiver::accepting(loopback(port));
    let pbx = Pbx::start_in(dir, &callrecord(&url));
    let pushes = receiver.wait_for("/cdr", 1, Duration::from_secs(20), &pbx);
    check_push(&pushes[0]);
    // Delivered, so not sent again.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(receiver.requests().len(), 1);
}
