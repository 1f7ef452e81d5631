//! The Trunkline HTTP API: the console's REST routes (call records, their
//! recordings and SIP ladders, the calls in progress), the AMI's health
//! check, Prometheus metrics and the OpenAPI document, on axum over hyper.
//!
//! ```text
//! GET  /ami/v1/health                            open, AMI allow-list
//! GET  /ami/v1/dialogs                           read, AMI allow-list
//! POST /ami/v1/reload/{trunks,routes,acl}        admin, AMI allow-list
//! POST /ami/v1/shutdown                          admin, AMI allow-list
//! GET  /console/{extensions,sip-trunk,routing}   read   (and /{id})
//! POST /console/{extensions,sip-trunk,routing}   admin
//! PUT, DELETE /console/{…}/{id}                  admin
//! GET  /console/call-records?from&to&party&…     read
//! POST /console/call-records   {"from":…}        read
//! GET  /console/call-records/{id}                read
//! GET  /console/call-records/{id}/sip-flow       read
//! GET  /console/call-records/{id}/recording      read (Range: bytes=…)
//! GET  /console/calls/active                     read
//! POST /console/calls/active/{call_id}/commands  control
//! POST /console/calls                            control
//! GET  /call-api                    (WebSocket)  control
//! GET  /metrics                                  read
//! GET  /api/v1/openapi.json                      read
//! GET  /api/v1/events?since&types   (WebSocket)  read
//! ```
//!
//! Every route but the health check wants `Authorization: Bearer {key}`
//! with a key from [`ApiConfig::keys`] whose [`Scope`] is at least the
//! route's (`admin` ⊇ `control` ⊇ `read`): 401 without a known key, 403
//! with too small a scope. Routes under `/ami/v1/` also answer only the
//! addresses in [`ApiConfig::ami_allows`] (loopback by default); the
//! health check needs nothing else, so a load balancer on an allowed
//! address can probe it without a key. Every error is JSON,
//! `{"error":{"code":"…","message":"…"}}`, with a code from
//! [`error::CODES`]; a handler's panic is a 500 `internal`, never a
//! dropped connection.
//!
//! The PBX is reached through the [`Pbx`] trait (the binary implements it
//! over its engine and registrar), the records through a
//! [`CdrStore`], the configuration (CRUD, reloads, shutdown, dialogs)
//! through the [`Admin`] trait when [`Api::with_admin`] gives one, and the
//! live events from an [`EventHub`] the program feeds
//! ([`Api::with_events`], [`EventHub::follow`]).
//!
//! ```no_run
//! # async fn run(pbx: std::sync::Arc<dyn trunkline_api::Pbx>,
//! #              cdr: std::sync::Arc<dyn trunkline_cdr::CdrStore>) -> std::io::Result<()> {
//! use trunkline_api::{Api, ApiConfig, ApiKey, Scope};
//!
//! let mut config = ApiConfig::default();
//! config.keys.push(ApiKey { name: "ops".into(), key: "a-long-random-secret".into(), scope: Scope::Admin });
//! let api = Api::new(config, pbx, cdr)
//!     .with_metrics(|out: &mut trunkline_api::MetricsWriter| out.gauge("my_queue", "Queued.", 0.0));
//! let (address, task) = api.serve("127.0.0.1:8080".parse().unwrap()).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod admin;
mod auth;
mod call_api;
mod calls;
pub mod error;
pub mod events;
mod health;
mod metrics;
mod openapi;
mod recording;
mod records;

pub use admin::{Admin, AdminFuture, DialogInfo, Reload, Resource};
pub use auth::{AmiAllowList, ApiKey, Caller, Scope};
pub use error::ApiError;
pub use events::{EventHub, ExtensionState};
pub use health::OutboxHealth;
pub use metrics::{Family, MetricKind, MetricsSource, MetricsWriter};

use auth::{Guard, Keys};
use axum::extract::{ConnectInfo, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use serde::Serialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt;
use trunkline_cdr::CdrStore;
use trunkline_engine::{
    ActiveCall, CallCommand, CallEvent, CallSide, CommandError, EngineStats, Originate, TrunkStatus,
};

/// What the API reads from the running PBX.
pub trait Pbx: Send + Sync + 'static {
    /// Whether shutdown has begun (new calls are refused).
    fn draining(&self) -> bool;
    /// Time since the PBX started.
    fn uptime(&self) -> Duration;
    /// The engine's counters.
    fn stats(&self) -> EngineStats;
    /// Registered contact bindings.
    fn registrations(&self) -> usize;
    /// The registrations with trunks.
    fn trunk_statuses(&self) -> Vec<TrunkStatus>;
    /// The calls in progress.
    fn active_calls(&self) -> Vec<ActiveCall>;
    /// What the SIP stack holds.
    fn sip_tables(&self) -> SipTables;
    /// Tells the call in progress `call` (its record id or a dialog's
    /// Call-ID) to do `command`; resolves once it is done.
    fn command<'a>(&'a self, call: &'a str, command: CallCommand) -> CommandFuture<'a>;
    /// An attended transfer: party `a.1` of call `a.0` and party `b.1`
    /// of call `b.0` are connected, the other two hang up.
    fn attended_transfer<'a>(
        &'a self,
        a: (&'a str, CallSide),
        b: (&'a str, CallSide),
    ) -> CommandFuture<'a>;
    /// Whether a call in progress answers to `call`.
    fn has_call(&self, call: &str) -> bool;
    /// Starts a click-to-dial call; its id (the caller's dialog's
    /// Call-ID).
    fn originate(&self, originate: Originate) -> Result<String, CommandError>;
    /// Call events from now on.
    fn call_events(&self) -> tokio::sync::broadcast::Receiver<CallEvent>;
}

/// A command on its way ([`Pbx::command`]).
pub type CommandFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), CommandError>> + Send + 'a>>;

/// What the SIP stack holds; all three return to zero once nothing goes
/// on (transactions linger up to 32 s for late retransmissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct SipTables {
    /// Live transactions.
    pub transactions: usize,
    /// Dialogs the transaction layer keeps.
    pub dialogs: usize,
    /// Dialogs the call engine routes to its calls.
    pub call_dialogs: u64,
}

/// How the API is set up.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The keys callers present. None: only the health check answers.
    pub keys: Vec<ApiKey>,
    /// The networks the `/ami/v1/` routes answer; loopback by default.
    pub ami_allows: Vec<IpNet>,
    /// The directory recordings are served from: a record's recording
    /// elsewhere is not served. `None` serves none.
    pub recordings: Option<PathBuf>,
}

impl Default for ApiConfig {
    fn default() -> ApiConfig {
        ApiConfig {
            keys: Vec::new(),
            ami_allows: default_ami_allows(),
            recordings: None,
        }
    }
}

/// `127.0.0.1/32` and `::1/128`.
pub fn default_ami_allows() -> Vec<IpNet> {
    vec![
        IpNet::from(std::net::IpAddr::from([127, 0, 0, 1])),
        IpNet::from(std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
    ]
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No key; the AMI allow-list still applies under `/ami/v1/`.
    Open,
    /// A key of at least this scope.
    Key(Scope),
}

/// One route the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// `GET`, `POST`, …
    pub method: &'static str,
    /// The path, parameters as `{id}`.
    pub path: &'static str,
    /// Who may use it.
    pub access: Access,
}

const fn route(method: &'static str, path: &'static str, access: Access) -> RouteInfo {
    RouteInfo {
        method,
        path,
        access,
    }
}

const READ: Access = Access::Key(Scope::Read);
const CONTROL: Access = Access::Key(Scope::Control);
const ADMIN: Access = Access::Key(Scope::Admin);

/// Every route served (besides `HEAD` for each `GET`); the OpenAPI
/// document describes each, and a test holds the two and the router to
/// each other.
pub const ROUTES: &[RouteInfo] = &[
    route("GET", "/ami/v1/health", Access::Open),
    route("GET", "/ami/v1/dialogs", READ),
    route("POST", "/ami/v1/reload/trunks", ADMIN),
    route("POST", "/ami/v1/reload/routes", ADMIN),
    route("POST", "/ami/v1/reload/acl", ADMIN),
    route("POST", "/ami/v1/shutdown", ADMIN),
    route("GET", "/console/extensions", READ),
    route("POST", "/console/extensions", ADMIN),
    route("GET", "/console/extensions/{id}", READ),
    route("PUT", "/console/extensions/{id}", ADMIN),
    route("DELETE", "/console/extensions/{id}", ADMIN),
    route("GET", "/console/sip-trunk", READ),
    route("POST", "/console/sip-trunk", ADMIN),
    route("GET", "/console/sip-trunk/{id}", READ),
    route("PUT", "/console/sip-trunk/{id}", ADMIN),
    route("DELETE", "/console/sip-trunk/{id}", ADMIN),
    route("GET", "/console/routing", READ),
    route("POST", "/console/routing", ADMIN),
    route("GET", "/console/routing/{id}", READ),
    route("PUT", "/console/routing/{id}", ADMIN),
    route("DELETE", "/console/routing/{id}", ADMIN),
    route("GET", "/console/call-records", READ),
    route("POST", "/console/call-records", READ),
    route("GET", "/console/call-records/{id}", READ),
    route("GET", "/console/call-records/{id}/sip-flow", READ),
    route("GET", "/console/call-records/{id}/recording", READ),
    route("GET", "/console/calls/active", READ),
    route("POST", "/console/calls/active/{call_id}/commands", CONTROL),
    route("POST", "/console/calls", CONTROL),
    route("GET", "/call-api", CONTROL),
    route("GET", "/metrics", READ),
    route("GET", "/api/v1/openapi.json", READ),
    route("GET", "/api/v1/events", READ),
];

/// What the handlers share.
pub(crate) struct Shared {
    pub(crate) pbx: Arc<dyn Pbx>,
    pub(crate) cdr: Arc<dyn CdrStore>,
    pub(crate) recordings: Option<PathBuf>,
    pub(crate) metrics: Vec<Box<dyn MetricsSource>>,
    /// The configuration, when the embedding program lets it be managed.
    pub(crate) admin: Option<Arc<dyn Admin>>,
    pub(crate) events: EventHub,
    /// The webhook outbox's counters, for the health check.
    pub(crate) outbox: Option<Box<dyn Fn() -> OutboxHealth + Send + Sync>>,
    rate: Mutex<health::CallRate>,
}

impl Shared {
    /// Calls started per second over the last minute, `calls` being the
    /// count since start now.
    pub(crate) fn calls_per_second(&self, calls: u64) -> f64 {
        match self.rate.lock() {
            Ok(mut rate) => rate.observe(Instant::now(), calls),
            Err(poisoned) => poisoned.into_inner().observe(Instant::now(), calls),
        }
    }
}

/// The API, ready to serve or to hand its router to another server.
pub struct Api {
    config: ApiConfig,
    shared: Shared,
    /// `config.ami_allows`, replaceable while serving.
    allows: AmiAllowList,
    /// Route groups added by the embedding program, each behind a scope.
    extra: Vec<(Scope, Router)>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A client that has not sent its request head by then is dropped, so
/// idle connections cannot pile up.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

impl Api {
    /// The API over `pbx` and the records in `cdr`.
    pub fn new(config: ApiConfig, pbx: Arc<dyn Pbx>, cdr: Arc<dyn CdrStore>) -> Api {
        let shared = Shared {
            pbx,
            cdr,
            recordings: config.recordings.clone(),
            metrics: Vec::new(),
            admin: None,
            events: EventHub::default(),
            outbox: None,
            rate: Mutex::default(),
        };
        Api {
            allows: AmiAllowList::new(config.ami_allows.clone()),
            config,
            shared,
            extra: Vec::new(),
        }
    }

    /// Adds `routes` (with their own state already given) behind keys of
    /// at least `scope`. Errors, the fallback and the 405 answer stay the
    /// API's. Paths must not clash with [`ROUTES`] (axum panics at
    /// start-up if they do).
    pub fn with_routes(mut self, scope: Scope, routes: Router) -> Api {
        self.extra.push((scope, routes));
        self
    }

    /// Serves the console's CRUD and the AMI's commands over `admin`;
    /// without one those routes answer 404.
    pub fn with_admin(mut self, admin: Arc<dyn Admin>) -> Api {
        self.shared.admin = Some(admin);
        self
    }

    /// The AMI allow-list the API checks, to replace while it serves
    /// (starts as [`ApiConfig::ami_allows`]).
    pub fn ami_allow_list(&self) -> AmiAllowList {
        self.allows.clone()
    }

    /// Adds `source`'s metrics to `/metrics`, after the PBX's own.
    pub fn with_metrics(mut self, source: impl MetricsSource) -> Api {
        self.shared.metrics.push(Box::new(source));
        self
    }

    /// Serves `hub`'s events at `/api/v1/events` (by default a hub that
    /// nothing feeds).
    pub fn with_events(mut self, hub: EventHub) -> Api {
        self.shared.events = hub;
        self
    }

    /// Adds the webhook outbox's counters, as `source` reads them, to the
    /// health check (which leaves `outbox` out without one).
    pub fn with_outbox(mut self, source: impl Fn() -> OutboxHealth + Send + Sync + 'static) -> Api {
        self.shared.outbox = Some(Box::new(source));
        self
    }

    /// The router. The AMI allow-list needs the peer's address in each
    /// request's extensions as `ConnectInfo<SocketAddr>` ([`Api::serve`]
    /// puts it there; without it AMI routes answer 403). The call rate
    /// is sampled when asked for; [`Api::serve`] also samples it every
    /// second.
    pub fn router(self) -> Router {
        self.build().0
    }

    fn build(self) -> (Router, Arc<Shared>) {
        let shared = Arc::new(self.shared);
        let keys = Arc::new(Keys::new(&self.config.keys));
        let guard = |scope| Guard {
            keys: keys.clone(),
            scope,
        };
        let allowed =
            || axum::middleware::from_fn_with_state(self.allows.clone(), auth::require_allowed);

        let ami = Router::new()
            .route("/ami/v1/health", get(health::health))
            .route_layer(allowed());
        // The AMI's other routes: the allow-list first, then the key.
        let ami_read = Router::new()
            .route("/ami/v1/dialogs", get(admin::dialogs))
            .route_layer(axum::middleware::from_fn_with_state(
                guard(Scope::Read),
                auth::require_scope,
            ))
            .route_layer(allowed());
        let mut ami_admin = Router::new().route("/ami/v1/shutdown", post(admin::shutdown));
        for what in [Reload::Trunks, Reload::Routes, Reload::Acl] {
            ami_admin = ami_admin.route(
                &format!("/ami/v1/reload/{}", what.as_str()),
                post(move |State(shared): State<Arc<Shared>>| admin::reload(shared, what)),
            );
        }
        let ami_admin = ami_admin
            .route_layer(axum::middleware::from_fn_with_state(
                guard(Scope::Admin),
                auth::require_scope,
            ))
            .route_layer(allowed());
        let (console_read, console_admin) = console_routes();
        let console_read = console_read.route_layer(axum::middleware::from_fn_with_state(
            guard(Scope::Read),
            auth::require_scope,
        ));
        let console_admin = console_admin.route_layer(axum::middleware::from_fn_with_state(
            guard(Scope::Admin),
            auth::require_scope,
        ));
        let read = Router::new()
            .route(
                "/console/call-records",
                get(records::list).post(records::find),
            )
            .route("/console/call-records/{id}", get(records::one))
            .route(
                "/console/call-records/{id}/sip-flow",
                get(records::sip_flow),
            )
            .route(
                "/console/call-records/{id}/recording",
                get(recording::recording),
            )
            .route("/console/calls/active", get(active_calls))
            .route("/metrics", get(metrics::metrics))
            .route("/api/v1/openapi.json", get(openapi_document))
            .route("/api/v1/events", get(events::socket::events))
            .route_layer(axum::middleware::from_fn_with_state(
                guard(Scope::Read),
                auth::require_scope,
            ));
        let control = Router::new()
            .route(
                "/console/calls/active/{call_id}/commands",
                post(calls::command),
            )
            .route("/console/calls", post(calls::originate))
            .route("/call-api", get(call_api::upgrade))
            .route_layer(axum::middleware::from_fn_with_state(
                guard(Scope::Control),
                auth::require_scope,
            ));
        let mut router = Router::new()
            .merge(ami)
            .merge(ami_read)
            .merge(ami_admin)
            .merge(read)
            .merge(control)
            .merge(console_read)
            .merge(console_admin)
            .with_state(shared.clone());
        for (scope, routes) in self.extra {
            router = router.merge(routes.route_layer(axum::middleware::from_fn_with_state(
                guard(scope),
                auth::require_scope,
            )));
        }
        let router = router
            .fallback(error::no_route)
            .method_not_allowed_fallback(error::wrong_method)
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                error::panicked,
            ));
        (router, shared)
    }

    /// Binds `address` and serves the API on a task (HTTP/1.1, a 10 s
    /// limit on request heads); the bound address (port 0 picks one) and
    /// the task, to abort at shutdown.
    pub async fn serve(self, address: SocketAddr) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
        let listener = TcpListener::bind(address).await?;
        let bound = listener.local_addr()?;
        let (router, shared) = self.build();
        let task = tokio::spawn(async move {
            // Stopped with the serving task, even when that is aborted:
            // it holds the PBX's state, which must go at shutdown.
            let _sampler = AbortOnDrop(tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(1));
                loop {
                    every.tick().await;
                    shared.calls_per_second(shared.pbx.stats().calls);
                }
            }));
            accept(listener, router).await;
        });
        Ok((bound, task))
    }
}

/// The console's CRUD routes: those that read (`GET`) and those that
/// change (`POST`, `PUT`, `DELETE`), each resource alike.
fn console_routes() -> (Router<Arc<Shared>>, Router<Arc<Shared>>) {
    use axum::extract::Path;
    use axum::extract::rejection::{JsonRejection, PathRejection};
    use axum::routing::{delete, put};
    type Body = Result<Json<serde_json::Value>, JsonRejection>;
    type Id = Result<Path<String>, PathRejection>;
    let mut read = Router::new();
    let mut write = Router::new();
    for resource in Resource::ALL {
        let collection = resource.path();
        let item = format!("{collection}/{{id}}");
        read = read
            .route(
                collection,
                get(move |State(s): State<Arc<Shared>>| admin::list(s, resource)),
            )
            .route(
                &item,
                get(move |State(s): State<Arc<Shared>>, id: Id| admin::one(s, resource, id)),
            );
        write = write
            .route(
                collection,
                post(move |State(s): State<Arc<Shared>>, body: Body| {
                    admin::create(s, resource, body)
                }),
            )
            .route(
                &item,
                put(move |State(s): State<Arc<Shared>>, id: Id, body: Body| {
                    admin::update(s, resource, id, body)
                })
                .merge(delete(move |State(s): State<Arc<Shared>>, id: Id| {
                    admin::delete(s, resource, id)
                })),
            );
    }
    (read, write)
}

/// Aborts its task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves every connection `listener` accepts with `router`. The
/// connections' tasks end with this future (a `JoinSet` aborts them when
/// dropped), so aborting the server lets go of the PBX's state even while
/// clients keep connections alive.
async fn accept(listener: TcpListener, router: Router) {
    let mut connections = tokio::task::JoinSet::<()>::new();
    loop {
        // Finished connections' results, so the set does not grow.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, usually: pause rather than
                // spin, and go on serving once some are free.
                tracing::warn!("http accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let router = router.clone();
        connections.spawn(async move {
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    router.clone().oneshot(request)
                });
            let served = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                // WebSocket routes (the call API, the events) take the
                // connection over.
                .with_upgrades()
                .await;
            if let Err(e) = served {
                tracing::debug!("http connection: {e}");
            }
        });
    }
}

/// The calls in progress.
#[derive(Debug, Serialize)]
struct ActiveCalls {
    calls: Vec<ActiveCall>,
}

/// `GET /console/calls/active`
async fn active_calls(State(shared): State<Arc<Shared>>) -> Json<ActiveCalls> {
    Json(ActiveCalls {
        calls: shared.pbx.active_calls(),
    })
}

/// `GET /api/v1/openapi.json`
async fn openapi_document() -> Json<serde_json::Value> {
    Json(openapi::document())
}

/// The OpenAPI 3.1 document of every route in [`ROUTES`].
pub fn openapi() -> serde_json::Value {
    openapi::document()
}
