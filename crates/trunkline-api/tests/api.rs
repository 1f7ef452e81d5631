//! The API over real TCP on loopback, against a real SQLite store of
//! call records and recordings on disk: keys and scopes, the AMI
//! allow-list, paging, recordings whole and in ranges, SIP ladders, the
//! OpenAPI document and the metrics page.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT_RANGES, ALLOW, CONTENT_RANGE, CONTENT_TYPE, RANGE, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use trunkline_api::{
    Access, Admin, AdminFuture, AmiAllowList, Api, ApiConfig, ApiError, ApiKey, DialogInfo,
    MetricKind, Pbx, ROUTES, Reload, Resource, Scope, SipTables,
};
use trunkline_cdr::{
    CallStart, Cdr, CdrBuilder, CdrId, CdrStore, Direction, Hangup, HangupCause, Party, Side,
    SipDirection, SipFlowEntry, SqliteCdrStore,
};
use trunkline_engine::{ActiveCall, CallState, EngineStats, TrunkStatus};

const READ_KEY: &str = "read-key-0123456789";
const CONTROL_KEY: &str = "control-key-0123456789";
const ADMIN_KEY: &str = "admin-key-0123456789";

/// A PBX with fixed figures and one call in progress.
struct FakePbx {
    draining: AtomicBool,
}

impl Pbx for FakePbx {
    fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
    fn uptime(&self) -> Duration {
        Duration::from_secs(42)
    }
    fn stats(&self) -> EngineStats {
        EngineStats {
            active_calls: 1,
            calls: 7,
            dialogs: 2,
        }
    }
    fn registrations(&self) -> usize {
        3
    }
    fn trunk_statuses(&self) -> Vec<TrunkStatus> {
        vec![TrunkStatus {
            name: "carrier \"a\"".into(),
            registered: true,
            expires_at: Some(1_900_000_000),
            error: None,
        }]
    }
    fn active_calls(&self) -> Vec<ActiveCall> {
        vec![ActiveCall {
            id: CdrId::new("active-1"),
            call_id: "abc@127.0.0.1".into(),
            caller: "1001".into(),
            callee: "1002".into(),
            direction: Direction::Internal,
            state: CallState::Answered,
            started: SystemTime::UNIX_EPOCH.into(),
            answered_at: Some((SystemTime::UNIX_EPOCH + Duration::from_secs(3)).into()),
        }]
    }
    fn sip_tables(&self) -> SipTables {
        SipTables {
            transactions: 4,
            dialogs: 2,
            call_dialogs: 2,
        }
    }
    common::no_call_control!();
}

/// 25 records a minute apart from 2025-03-14T00:00:00Z: even ones
/// answered from 1001, odd ones busy from 1003; record 0 has a recording.
fn records(recording: &std::path::Path) -> Vec<Cdr> {
    let base = UNIX_EPOCH + Duration::from_secs(1_741_910_400);
    let a: SocketAddr = "127.0.0.1:5062".parse().unwrap();
    let pbx: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    (0..25u64)
        .map(|i| {
            let start = base + Duration::from_secs(60 * i);
            let caller = if i % 2 == 0 { "1001" } else { "1003" };
            let mut call = CdrBuilder::new(CallStart {
                id: CdrId::new(format!("rec-{i:02}")),
                call_id: format!("call-{i}@127.0.0.1"),
                caller: Party::new(caller, None),
                callee: Party::new("1002", None),
                source_channel: format!("extension/{caller}"),
                direction: Direction::Internal,
                time: start,
            });
            call.push_sip(SipFlowEntry::new(
                start,
                SipDirection::Received,
                "UDP",
                a,
                pbx,
                "INVITE sip:1002@trunkline.localhost SIP/2.0\r\nContent-Length: 0\r\n\r\n",
            ));
            call.push_sip(SipFlowEntry::new(
                start + Duration::from_millis(5),
                SipDirection::Sent,
                "UDP",
                pbx,
                a,
                "SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n",
            ));
            if i == 0 {
                call.recording(recording.display().to_string());
            }
            if i == 1 {
                call.recording("/etc/passwd");
            }
            let (hangup, end) = if i % 2 == 0 {
                call.answered(start + Duration::from_secs(2));
                let hangup = Hangup::new(HangupCause::NormalClearing, Some(200), Side::Caller);
                (hangup, start + Duration::from_secs(30))
            } else {
                let hangup = Hangup::new(HangupCause::Rejected, Some(486), Side::Callee);
                (hangup, start + Duration::from_secs(1))
            };
            call.end(end, hangup)
        })
        .collect()
}

/// Entries kept in memory by id, as the API hands them over; an id
/// starting with `file-` stands for the configuration file's.
#[derive(Default)]
struct MemoryAdmin {
    entries: Mutex<BTreeMap<(&'static str, String), Value>>,
    shutdown: AtomicBool,
}

impl MemoryAdmin {
    fn id(resource: Resource, entry: &Value) -> Result<String, ApiError> {
        entry[resource.id_field()]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ApiError::invalid_field(format!("{}: missing", resource.id_field())))
    }
}

impl Admin for MemoryAdmin {
    fn list(&self, resource: Resource) -> AdminFuture<'_, Vec<Value>> {
        let entries = self.entries.lock().unwrap();
        let list = entries
            .iter()
            .filter(|((r, _), _)| *r == resource.name())
            .map(|(_, v)| v.clone())
            .collect();
        Box::pin(std::future::ready(Ok(list)))
    }
    fn get(&self, resource: Resource, id: String) -> AdminFuture<'_, Value> {
        let entries = self.entries.lock().unwrap();
        let found = entries.get(&(resource.name(), id.clone())).cloned();
        Box::pin(std::future::ready(
            found.ok_or_else(|| ApiError::not_found(format!("no {id:?}"))),
        ))
    }
    fn create(&self, resource: Resource, entry: Value) -> AdminFuture<'_, Value> {
        let result = Self::id(resource, &entry).and_then(|id| {
            let mut entries = self.entries.lock().unwrap();
            let key = (resource.name(), id.clone());
            if entries.contains_key(&key) {
                return Err(ApiError::conflict(format!("{id:?} exists")));
            }
            entries.insert(key, entry.clone());
            Ok(entry)
        });
        Box::pin(std::future::ready(result))
    }
    fn update(&self, resource: Resource, id: String, entry: Value) -> AdminFuture<'_, Value> {
        let mut entries = self.entries.lock().unwrap();
        let result = match entries.get_mut(&(resource.name(), id.clone())) {
            _ if id.starts_with("file-") => Err(ApiError::read_only("edit the file")),
            Some(stored) => {
                *stored = entry.clone();
                Ok(entry)
            }
            None => Err(ApiError::not_found(format!("no {id:?}"))),
        };
        Box::pin(std::future::ready(result))
    }
    fn delete(&self, resource: Resource, id: String) -> AdminFuture<'_, ()> {
        let mut entries = self.entries.lock().unwrap();
        let result = match entries.remove(&(resource.name(), id.clone())) {
            Some(_) => Ok(()),
            None => Err(ApiError::not_found(format!("no {id:?}"))),
        };
        Box::pin(std::future::ready(result))
    }
    fn reload(&self, what: Reload) -> AdminFuture<'_, Value> {
        Box::pin(std::future::ready(Ok(json!({"reloaded": what.as_str()}))))
    }
    fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }
    fn dialogs(&self) -> Vec<DialogInfo> {
        vec![DialogInfo {
            call_id: "abc@127.0.0.1".into(),
            local_tag: "l".into(),
            remote_tag: "r".into(),
            state: "confirmed",
            local: "<sip:1002@127.0.0.1>;tag=l".into(),
            remote: "<sip:1001@127.0.0.1>;tag=r".into(),
            remote_target: "sip:1001@127.0.0.1:5070".into(),
            route_set: Vec::new(),
            local_cseq: 0,
            remote_cseq: Some(1),
            secure: false,
            transport: "UDP".into(),
            peer: "127.0.0.1:5070".into(),
        }]
    }
}

struct Server {
    base: String,
    admin: Arc<MemoryAdmin>,
    allows: AmiAllowList,
    task: tokio::task::JoinHandle<()>,
    wav: Vec<u8>,
    pbx: Arc<FakePbx>,
    _dir: tempfile::TempDir,
}

/// The API on `ip`, port 0, its AMI allowing `allows`.
async fn server(ip: &str, allows: &[&str]) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("recordings");
    std::fs::create_dir_all(&recordings).unwrap();
    // 200 kB of varied bytes: more than one chunk of the stream.
    let wav: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = recordings.join("rec-00.wav");
    std::fs::write(&file, &wav).unwrap();
    let store = SqliteCdrStore::open(dir.path().join("cdr.sqlite")).unwrap();
    store.insert_batch(&records(&file)).unwrap();
    let pbx = Arc::new(FakePbx {
        draining: AtomicBool::new(false),
    });
    let key = |name: &str, key: &str, scope| ApiKey {
        name: name.into(),
        key: key.into(),
        scope,
    };
    let config = ApiConfig {
        keys: vec![
            key("crm", READ_KEY, Scope::Read),
            key("dialer", CONTROL_KEY, Scope::Control),
            key("ops", ADMIN_KEY, Scope::Admin),
        ],
        ami_allows: allows.iter().map(|a| a.parse().unwrap()).collect(),
        recordings: Some(recordings),
    };
    let control = axum::Router::new().route("/test/control", axum::routing::get(|| async { "c" }));
    let admin = axum::Router::new().route("/test/admin", axum::routing::post(|| async { "a" }));
    let api = Api::new(config, pbx.clone(), Arc::new(store))
        .with_metrics(|out: &mut trunkline_api::MetricsWriter| {
            out.family(
                "trunkline_webhook_outbox",
                "Deliveries waiting.",
                MetricKind::Gauge,
            )
            .sample(&[("kind", "cdr")], 4.0);
        })
        .with_routes(Scope::Control, control)
        .with_routes(Scope::Admin, admin);
    let memory = Arc::new(MemoryAdmin::default());
    let api = api.with_admin(memory.clone());
    let allow_list = api.ami_allow_list();
    let address: SocketAddr = format!("{ip}:0").parse().unwrap();
    let (bound, task) = api.serve(address).await.unwrap();
    Server {
        base: format!("http://{bound}"),
        admin: memory,
        allows: allow_list,
        task,
        wav,
        pbx,
        _dir: dir,
    }
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn client() -> reqwest::Client {
    client_from("127.0.0.1")
}

impl Server {
    async fn get(&self, path: &str, key: Option<&str>) -> reqwest::Response {
        let mut request = client().get(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().await.unwrap()
    }

    async fn json(&self, path: &str) -> Value {
        let response = self.get(path, Some(READ_KEY)).await;
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }
}

/// The status and the error code of an error answer.
async fn error_of(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    (status, body["error"]["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn keys_are_checked_by_scope() {
    let s = server("127.0.0.1", &["127.0.0.1/32"]).await;
    let path = "/console/calls/active";
    let none = s.get(path, None).await;
    assert!(
        none.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(
        error_of(none).await,
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    for wrong in ["nope", "read-key-012345678", ""] {
        let response = s.get(path, Some(wrong)).await;
        assert_eq!(error_of(response).await.1, "unauthorized", "{wrong:?}");
    }
    let basic = client()
        .get(format!("{}{path}", s.base))
        .basic_auth("crm", Some(READ_KEY))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(basic).await.1, "unauthorized");

    // read < control < admin.
    for (key, control, admin) in [
        (READ_KEY, 403, 403),
        (CONTROL_KEY, 200, 403),
        (ADMIN_KEY, 200, 200),
    ] {
        assert_eq!(s.get(path, Some(key)).await.status(), 200);
        assert_eq!(s.get("/test/control", Some(key)).await.status(), control);
        let posted = client()
            .post(format!("{}/test/admin", s.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), admin);
        if admin == 403 {
            assert_eq!(error_of(posted).await.1, "forbidden");
        }
    }
    let calls = s.json(path).await;
    assert_eq!(calls["calls"][0]["state"], "answered", "{calls}");
    assert_eq!(calls["calls"][0]["id"], "active-1");
    assert_eq!(calls["calls"][0]["answered_at"], "1970-01-01T00:00:03.000Z");
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let s = server("127.0.0.1", &["127.0.0.1/32"]).await;
    let no_route = s.get("/nowhere", Some(READ_KEY)).await;
    assert_eq!(
        error_of(no_route).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    let no_route = s.get("/nowhere", None).await;
    assert_eq!(error_of(no_route).await.1, "not_found");
    let deleted = client()
        .delete(format!("{}/console/call-records", s.base))
        .bearer_auth(READ_KEY)
        .send()
        .await
        .unwrap();
    let allow = deleted.headers()[ALLOW].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    assert_eq!(
        error_of(deleted).await,
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed".into())
    );
    for path in [
        "/console/call-records?page_size=0",
        "/console/call-records?from=tomorrow",
        "/console/call-records?after=%ff",
        "/console/call-records?unknown=1",
        "/console/call-records/%ff%fe",
    ] {
        let response = s.get(path, Some(READ_KEY)).await;
        assert_eq!(
            error_of(response).await,
            (StatusCode::BAD_REQUEST, "bad_request".into()),
            "{path}"
        );
    }
    for body in ["{", "[]", r#"{"page_size": "x"}"#, r#"{"nope": 1}"#] {
        let response = client()
            .post(format!("{}/console/call-records", s.base))
            .bearer_auth(READ_KEY)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(response).await.1, "bad_request", "{body}");
    }
    let missing = s
        .get("/console/call-records/no-such-id", Some(READ_KEY))
        .await;
    assert_eq!(error_of(missing).await.1, "not_found");
}

#[tokio::test]
async fn the_ami_answers_only_its_allow_list_and_health_needs_no_key() {
    let s = server("127.0.0.2", &["127.0.0.2/32"]).await;
    let health = |from: &'static str| {
        let url = format!("{}/ami/v1/health", s.base);
        async move { client_from(from).get(url).send().await.unwrap() }
    };
    let allowed = health("127.0.0.2").await;
    assert_eq!(allowed.status(), 200);
    let text = allowed.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["uptime_seconds"], 42);
    assert_eq!(body["active_calls"], 1);
    assert_eq!(body["registrations"], 3);
    assert_eq!(body["trunks"][0]["registered"], true);
    assert!(body["calls_per_second"].is_number(), "{body}");
    assert!(body["load"].is_number() || body["load"].is_null(), "{body}");
    assert_eq!(
        body["sip"],
        serde_json::json!({"transactions": 4, "dialogs": 2, "call_dialogs": 2})
    );
    // The fields come in this order.
    let order = [
        "status",
        "uptime_seconds",
        "active_calls",
        "registrations",
        "trunks",
        "load",
        "calls_per_second",
        "sip",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|k| text.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(positions.is_sorted(), "{text}");

    let refused = health("127.0.0.1").await;
    assert_eq!(
        error_of(refused).await,
        (StatusCode::FORBIDDEN, "forbidden".into())
    );
    // The allow-list is the AMI's alone: the console answers a key from anywhere.
    let console = client_from("127.0.0.1")
        .get(format!("{}/console/calls/active", s.base))
        .bearer_auth(READ_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(console.status(), 200);

    s.pbx.draining.store(true, Ordering::Relaxed);
    let draining = health("127.0.0.2").await;
    assert_eq!(draining.status(), 503);
    let body: Value = draining.json().await.unwrap();
    assert_eq!(body["status"], "draining");
}

#[tokio::test]
async fn call_records_page_with_the_cursor_by_get_and_post() {
    let s = server("127.0.0.1", &["127.0.0.1/32"]).await;
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/console/call-records?page_size=10".to_owned();
        if let Some(after) = &after {
            path.push_str(&format!("&after={after}"));
        }
        let page = s.json(&path).await;
        pages += 1;
        for record in page["records"].as_array().unwrap() {
            ids.push(record["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => {
                assert!(page["next"].is_null());
                break;
            }
        }
        assert!(pages < 10, "paging does not end");
    }
    let expected: Vec<String> = (0..25).map(|i| format!("rec-{i:02}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(pages, 3);

    // The same search as a JSON body, filtered.
    let post = |body: Value| {
        let url = format!("{}/console/call-records", s.base);
        async move {
            let response = client()
                .post(url)
                .bearer_auth(READ_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{body}");
            response.json::<Value>().await.unwrap()
        }
    };
    let busy = post(json!({"disposition": "BUSY", "party": "1003", "page_size": 100})).await;
    assert_eq!(busy["records"].as_array().unwrap().len(), 12);
    assert!(busy["next"].is_null());
    let first = post(json!({"page_size": 4, "order": "newest"})).await;
    assert_eq!(first["records"][0]["id"], "rec-24");
    let second = post(json!({"page_size": 4, "order": "newest", "after": first["next"]})).await;
    assert_eq!(second["records"][0]["id"], "rec-20");
    // From and to as Unix seconds and RFC 3339: minutes 5 to 9.
    let window = s
        .json("/console/call-records?from=1741910700&to=2025-03-14T00:10:00Z")
        .await;
    let ids: Vec<&str> = window["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["rec-05", "rec-06", "rec-07", "rec-08", "rec-09"]);
    let empty = post(json!({})).await;
    assert_eq!(empty["records"].as_array().unwrap().len(), 25);
    let no_body = client()
        .post(format!("{}/console/call-records", s.base))
        .bearer_auth(READ_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(no_body.status(), 200);

    let one = s.json("/console/call-records/rec-03").await;
    assert_eq!(one["disposition"], "BUSY");
    assert_eq!(one["hangup"]["sip_status"], 486);
}

#[tokio::test]
async fn the_sip_flow_is_the_records_ladder() {
    let s = server("127.0.0.1", &["127.0.0.1/32"]).await;
    let flow = s.json("/console/call-records/rec-04/sip-flow").await;
    let record = s.json("/console/call-records/rec-04").await;
    assert_eq!(flow["id"], "rec-04");
    assert_eq!(flow["call_id"], "call-4@127.0.0.1");
    assert_eq!(flow["sip_flow"], record["sip_flow"]);
    assert_eq!(flow["sip_flow"][0]["direction"], "received");
    assert!(
        flow["sip_flow"][1]["message"]
            .as_str()
            .unwrap()
            .starts_with("SIP/2.0 100")
    );
    assert_eq!(flow["sip_flow_omitted"], 0);
    let missing = s
        .get("/console/call-records/nope/sip-flow", Some(READ_KEY))
        .await;
    assert_eq!(error_of(missing).await.1, "not_found");
}

#[tokio::test]
async fn recordings_download_whole_and_by_range() {
    let s = server("127.0.0.1", &["127.0.0.1/32"]).await;
    let path = "/console/call-records/rec-00/recording";
    let whole = s.get(path, Some(READ_KEY)).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()[CONTENT_TYPE], "audio/wav");
    assert_eq!(whole.headers()[ACCEPT_RANGES], "bytes");
    assert_eq!(whole.content_length(), Some(s.wav.len() as u64));
    assert_eq!(whole.bytes().await.unwrap(), s.wav);

    let ranged = |range: &'static str| {
        let url = format!("{}{path}", s.base);
        async move {
            client()
                .get(url)
                .bearer_auth(READ_KEY)
                .header(RANGE, range)
                .send()
                .await
                .unwrap()
        }
    };
    let length = s.wav.len();
    for (range, start, end) in [
        ("bytes=100-199", 100, 199),
        ("bytes=65000-140000", 65_000, 140_000),
        ("bytes=199990-", 199_990, length - 1),
        ("bytes=-10", length - 10, length - 1),
        ("bytes=199999-300000", 199_999, length - 1),
    ] {
        let part = ranged(range).await;
        assert_eq!(part.status(), 206, "{range}");
        assert_eq!(
            part.headers()[CONTENT_RANGE],
            format!("bytes {start}-{end}/{length}").as_str()
        );
        assert_eq!(part.bytes().await.unwrap(), &s.wav[start..=end], "{range}");
    }
    let beyond = ranged("bytes=200000-").await;
    assert_eq!(beyond.headers()[CONTENT_RANGE], "bytes */200000");
    assert_eq!(
        error_of(beyond).await,
        (
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable".into()
        )
    );
    // No recording; a recording outside the recordings directory.
    for id in ["rec-02", "rec-01", "nope"] {
        let response = s
            .get(
                &format!("/console/call-records/{id}/recording"),
                Some(READ_KEY),
            )
            .await;
        assert_eq!(error_of(response).await.1, "not_found", "{id}");
    }
    let head = client()
        .head(format!("{}{path}", s.base))
        .bearer_auth(READ_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()[ACCEPT_RANGES], "bytes");
}

#[tokio::test]
async fn the_openapi_document_covers_every_route_served() {
    let s = server("127.0.0.1", &["127.0.0.1/32"]).await;
    let doc = s.json("/api/v1/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    for route in ROUTES {
        let operation = &doc["paths"][route.path][route.method.to_lowercase()];
        assert!(operation.is_object(), "{route:?} is not documented");
        // And served: neither the no-route 404 nor a 405.
        let path = route.path.replace("{id}", "rec-00");
        let mut request =
            client().request(route.method.parse().unwrap(), format!("{}{path}", s.base));
        if route.access != Access::Open {
            request = request.bearer_auth(ADMIN_KEY);
        }
        let crud = [
            "/console/extensions",
            "/console/sip-trunk",
            "/console/routing",
        ];
        if matches!(route.method, "POST" | "PUT") && crud.iter().any(|c| route.path.starts_with(c))
        {
            // The CRUD routes, in table order: create, read, replace, delete.
            request = request.json(&json!({"number": "rec-00", "name": "rec-00"}));
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        // A route that wants a body or a WebSocket upgrade says so; only a
        // missing route or method would be the router's own answer.
        assert!(
            status != 405 && !body.contains("no such route"),
            "{route:?}: {status} {body}"
        );
        let websocket = ["/call-api", "/api/v1/events"].contains(&route.path);
        if route.method == "GET" && !websocket {
            assert!(status.is_success(), "{route:?}: {status}");
        }
        if let Access::Key(_) = route.access {
            let denied = client()
                .request(route.method.parse().unwrap(), format!("{}{path}", s.base))
                .send()
                .await
                .unwrap();
            assert_eq!(denied.status(), 401, "{route:?}");
        }
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let s = server("127.0.0.1", &["127.0.0.1/32"]).await;
    let response = s.get("/metrics", Some(READ_KEY)).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    let mut samples = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            assert!(matches!(words.first(), Some(&"HELP" | &"TYPE")), "{line}");
            if words[0] == "TYPE" {
                assert!(
                    matches!(words.get(2), Some(&"gauge" | &"counter")),
                    "{line}"
                );
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "{line}"
        );
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "{line}"
        );
        if name_end < series.len() {
            let labels = &series[name_end..];
            assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
        }
        samples.insert(series.to_owned(), value.to_owned());
    }
    assert_eq!(samples["trunkline_active_calls"], "1");
    assert_eq!(samples["trunkline_calls_total"], "7");
    assert_eq!(samples["trunkline_registrations"], "3");
    assert_eq!(samples["trunkline_up"], "1");
    assert_eq!(
        samples[r#"trunkline_trunk_registered{trunk="carrier \"a\""}"#],
        "1"
    );
    assert_eq!(samples[r#"trunkline_webhook_outbox{kind="cdr"}"#], "4");
    assert!(samples.contains_key("trunkline_calls_per_second"));
}

#[tokio::test]
async fn aborting_the_server_lets_go_of_the_pbx_despite_kept_alive_connections() {
    let s = server("127.0.0.1", &["127.0.0.1/32"]).await;
    // A client that keeps its connection open, as Prometheus does.
    let client = client();
    let response = client
        .get(format!("{}/metrics", s.base))
        .bearer_auth(READ_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap();
    assert!(Arc::strong_count(&s.pbx) > 1);
    s.task.abort();
    for _ in 0..100 {
        if Arc::strong_count(&s.pbx) == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the PBX is still held: {}", Arc::strong_count(&s.pbx));
}

#[tokio::test]
async fn the_configuration_routes_want_admin_keys_and_the_ami_its_allow_list() {
    let s = server("127.0.0.1", &["127.0.0.1/32"]).await;
    let post = |key: &str, path: &str, body: Value| {
        client()
            .post(format!("{}{path}", s.base))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let entry = json!({"name": "out", "match": {"prefix": "9"}, "to": {"trunk": "carrier"}});
    // A read key reads, but does not write.
    let refused = post(READ_KEY, "/console/routing", entry.clone())
        .await
        .unwrap();
    assert_eq!(
        error_of(refused).await,
        (StatusCode::FORBIDDEN, "forbidden".into())
    );
    let created = post(ADMIN_KEY, "/console/routing", entry.clone())
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["location"], "/console/routing/out");
    let again = post(ADMIN_KEY, "/console/routing", entry.clone())
        .await
        .unwrap();
    assert_eq!(
        error_of(again).await,
        (StatusCode::CONFLICT, "conflict".into())
    );
    let listed = s.json("/console/routing").await;
    assert_eq!(listed, json!({"routes": [entry]}));
    // Not an object; not JSON.
    let array = post(ADMIN_KEY, "/console/routing", json!([1]))
        .await
        .unwrap();
    assert_eq!(error_of(array).await.1, "bad_request");
    let text = client()
        .post(format!("{}/console/routing", s.base))
        .bearer_auth(ADMIN_KEY)
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(text).await.1, "unsupported_media_type");
    let deleted = client()
        .delete(format!("{}/console/routing/out", s.base))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = s.get("/console/routing/out", Some(READ_KEY)).await;
    assert_eq!(error_of(gone).await.1, "not_found");

    // The AMI's commands: admin keys, and the allow-list, which can change.
    let shutdown = post(CONTROL_KEY, "/ami/v1/shutdown", json!({}))
        .await
        .unwrap();
    assert_eq!(error_of(shutdown).await.1, "forbidden");
    assert!(!s.admin.shutdown.load(Ordering::Relaxed));
    let dialogs = s.json("/ami/v1/dialogs").await;
    assert_eq!(dialogs["dialogs"][0]["state"], "confirmed");
    s.allows.set(vec!["10.0.0.0/8".parse().unwrap()]);
    let outside = post(ADMIN_KEY, "/ami/v1/reload/acl", json!({}))
        .await
        .unwrap();
    assert_eq!(
        error_of(outside).await,
        (StatusCode::FORBIDDEN, "forbidden".into())
    );
    s.allows.set(vec!["127.0.0.1/32".parse().unwrap()]);
    let reloaded = post(ADMIN_KEY, "/ami/v1/reload/acl", json!({}))
        .await
        .unwrap();
    assert_eq!(reloaded.status(), 200);
    let shutdown = post(ADMIN_KEY, "/ami/v1/shutdown", json!({}))
        .await
        .unwrap();
    assert_eq!(shutdown.status(), 202);
    assert!(s.admin.shutdown.load(Ordering::Relaxed));
}
