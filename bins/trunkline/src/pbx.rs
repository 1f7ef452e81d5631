//! Starting the PBX from a checked configuration, and stopping it
//! gracefully.

use crate::calls::{self, CallEngine};
use crate::config::{Config, DigestAlgorithm, TransportName};
use crate::console::{self, Console};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::broadcast::error::RecvError;
use trunkline_api::EventHub;
use trunkline_cdr::{CdrStore, SqliteCdrStore};
use trunkline_registrar::{
    Algorithm, BackendError, Lookup, MemoryLocator, RegistrarConfig, Secret, StaticUsers, User,
    UserBackend,
};
use trunkline_transaction::transport::{Listener, TlsIdentity, TransportConfig};
use trunkline_transaction::{Endpoint, EndpointConfig, Transport};

/// The registrar as the binary runs it: bindings in memory, accounts from
/// the configuration and the console.
pub(crate) type Registrar = trunkline_registrar::Registrar<MemoryLocator, LiveUsers>;

/// The accounts in force: clones share them, and [`LiveUsers::set`]
/// replaces them for every lookup from then on (a REGISTER or INVITE
/// being authenticated sees the old or the new set, whole).
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveUsers(Arc<RwLock<Arc<StaticUsers>>>);

impl LiveUsers {
    pub(crate) fn new(users: StaticUsers) -> LiveUsers {
        LiveUsers(Arc::new(RwLock::new(Arc::new(users))))
    }

    pub(crate) fn set(&self, users: StaticUsers) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(users);
    }
}

impl UserBackend for LiveUsers {
    async fn lookup(&self, username: &str, realm: &str) -> Result<Lookup, BackendError> {
        let users = self
            .0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        users.lookup(username, realm).await
    }
}

/// What the SIP and HTTP sides share.
pub(crate) struct State {
    pub(crate) started: Instant,
    pub(crate) registrar: Arc<Registrar>,
    pub(crate) engine: CallEngine,
    pub(crate) endpoint: Endpoint,
    /// The live events of `/api/v1/events`.
    pub(crate) events: EventHub,
    draining: AtomicBool,
}

impl State {
    /// Whether shutdown has begun: new calls are refused.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Calls in progress, which a graceful shutdown waits for.
    pub(crate) fn active_calls(&self) -> u64 {
        self.engine.stats().active_calls
    }
}

/// How often lapsed registrations are removed.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// How long a shutdown asked through the API waits for its answer to
/// leave.
const ANSWER_GRACE: Duration = Duration::from_millis(200);

/// How often a draining shutdown looks at the calls left.
const DRAIN_POLL: Duration = Duration::from_millis(100);

/// How long the events' WebSocket clients get to answer the close at
/// shutdown.
const EVENTS_CLOSE: Duration = Duration::from_secs(1);

/// Runs the PBX until SIGTERM, SIGINT or `POST /ami/v1/shutdown`, then
/// drains and returns. `file` is where `config` came from (none: the
/// built-in configuration), read again by reloads.
pub(crate) async fn run(config: Config, file: Option<PathBuf>) -> Result<(), String> {
    // Before anything binds: a signal during start-up is then a graceful
    // stop rather than the default kill.
    let mut signals = Signals::new().map_err(|e| format!("installing signal handlers: {e}"))?;

    let data = &config.data.dir;
    std::fs::create_dir_all(data)
        .map_err(|e| format!("creating the data directory {}: {e}", data.display()))?;
    let recordings = config.recording_dir();
    std::fs::create_dir_all(&recordings).map_err(|e| {
        format!(
            "creating the recordings directory {}: {e}",
            recordings.display()
        )
    })?;
    repair_recordings(&recordings);
    let cdr_path = config.cdr_path();
    // Opened now so that a bad path or a newer schema stops the start, not
    // the first call; the engine will write through it.
    let cdr = SqliteCdrStore::open(&cdr_path)
        .map_err(|e| format!("opening the CDR store {}: {e}", cdr_path.display()))?;
    let cdr: Arc<dyn CdrStore> = Arc::new(cdr);
    // The entries made through the API, in force with the file's.
    let store = console::Store::open(&config.console_path())?;
    let made = console::load(&store, &config)?;
    let merged = console::merge(&config, &made);
    let mut generated = HashMap::new();
    let users = LiveUsers::new(users(&merged, &mut generated));

    let registrar = Arc::new(Registrar::new(
        registrar_config(&config),
        rand::random(),
        MemoryLocator::new(config.registrar.max_contacts),
        users.clone(),
    ));
    // Webhooks: deliveries left from the last run resume now; the locator
    // webhook hears every registration from the first.
    let client = crate::hooks::client(&config)?;
    let mut durable = crate::hooks::Durable::open(&config, client.as_ref())?;
    let stored_records = match &mut durable {
        Some(durable) => {
            durable.forward_registrations(&config, registrar.subscribe());
            durable.push_records(&config)
        }
        None => None,
    };
    let (endpoint, events) = Endpoint::bind(EndpointConfig::new(transport_config(&config)))
        .await
        .map_err(|e| format!("starting SIP: {e}"))?;
    let (engine, routes) = calls::engine(
        &merged,
        endpoint.clone(),
        registrar.clone(),
        cdr.clone(),
        client.as_ref(),
        stored_records,
    )?;
    // Subscribed before the engine runs: the first event is numbered 1.
    let hub = EventHub::new(config.api.events_retention);
    hub.add_extensions(config.extensions.iter().map(|e| e.number.clone()));
    let follow_events = hub.follow(engine.subscribe(), registrar.subscribe());
    let state = Arc::new(State {
        started: Instant::now(),
        registrar,
        engine: engine.clone(),
        endpoint: endpoint.clone(),
        events: hub,
        draining: AtomicBool::new(false),
    });
    let console = Arc::new(Console::new(console::Parts {
        file,
        store,
        base: config.clone(),
        api: made,
        generated,
        users,
        registrar: state.registrar.clone(),
        routes,
        engine: engine.clone(),
        endpoint: endpoint.clone(),
    }));
    let outbox = durable.as_ref().map(crate::hooks::Durable::outbox);
    let (http_address, http) =
        crate::http::serve(&config, state.clone(), cdr, outbox, console.clone())
            .await
            .map_err(|e| format!("starting HTTP on {}: {e}", config.http.address.0))?;

    let sweeper = state.clone();
    let sweep = tokio::spawn(async move {
        let mut every = tokio::time::interval(SWEEP_EVERY);
        loop {
            every.tick().await;
            sweeper.registrar.expire(SystemTime::now()).await;
        }
    });
    let mut registrations = state.registrar.subscribe();
    let log_registrations = tokio::spawn(async move {
        loop {
            match registrations.recv().await {
                Ok(event) => {
                    let l = &event.location;
                    tracing::info!(event = ?event.event, aor = %l.aor, destination = %l.destination,
                        transport = %l.transport, expires = l.expires, "registration");
                }
                // A burst outran the log: say so and go on with the rest.
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "registration events left out of the log");
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
    // REGISTER, OPTIONS, calls and everything in their dialogs.
    console.register_trunks().await;
    let sip = tokio::spawn(async move { engine.run(events).await });

    let mut listening: Vec<String> = config
        .sip
        .listen
        .iter()
        .map(|l| {
            // Port 0 was the system's choice: ask the endpoint which.
            let configured = l.address.0;
            let address = match configured.port() {
                0 => endpoint
                    .local_addr(transport(l.transport))
                    .unwrap_or(configured),
                _ => configured,
            };
            format!("sip {} {address}", l.transport)
        })
        .collect();
    listening.push(format!("http {http_address}"));
    tracing::info!(realm = %config.sip.realm, data = %data.display(), "started");
    // Tests and scripts wait for this line.
    println!("ready: {}", listening.join(", "));

    let signal = tokio::select! {
        signal = signals.next() => signal,
        () = console.shutdown_asked() => {
            // Time for the 202 to leave before the API stops.
            tokio::time::sleep(ANSWER_GRACE).await;
            "POST /ami/v1/shutdown"
        }
    };
    let deadline = Duration::from_secs(config.shutdown.drain_timeout_secs);
    tracing::info!(
        signal,
        active_calls = state.active_calls(),
        "shutting down: new calls refused, waiting up to {}s for calls in progress",
        deadline.as_secs()
    );
    state.draining.store(true, Ordering::Relaxed);
    state.engine.stop_accepting();
    tokio::select! {
        drained = drain(&state, deadline) => {
            if !drained {
                tracing::warn!(active_calls = state.active_calls(), "drain deadline passed: exiting with calls in progress");
            }
        }
        signal = signals.next() => {
            tracing::warn!(signal, active_calls = state.active_calls(), "second signal: not waiting for calls");
        }
    }

    // Unregistered while the endpoint still runs: the trunk stops sending
    // calls here.
    console.unregister_trunks().await;
    sip.abort();
    // The events' clients get what happened so far, then a close.
    if !state.events.close(EVENTS_CLOSE).await {
        tracing::debug!("events clients did not answer the close in time");
    }
    follow_events.abort();
    http.abort();
    sweep.abort();
    log_registrations.abort();
    // The last endpoint clone closes the listeners and connections; the
    // engine's records are stored before its calls stop counting, and the
    // store checkpoints its WAL into the database file when the engine,
    // its last holder, goes.
    drop(endpoint);
    drop(state);
    drop(console);
    // Every record and registration event handed over so far goes into the
    // outbox; what is not delivered yet waits there for the next start.
    if let Some(durable) = durable {
        durable.shutdown().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Fixes the headers of recordings a crash cut off, so every file in the
/// directory plays. A file that cannot be repaired is reported and left.
fn repair_recordings(dir: &std::path::Path) {
    let repaired = match trunkline_recording::repair_dir(dir) {
        Ok(repaired) => repaired,
        Err(e) => return tracing::warn!("recordings not checked: {e}"),
    };
    for file in repaired {
        match file.outcome {
            Ok(trunkline_recording::Repair::Intact) => {}
            Ok(repair) => {
                tracing::info!(path = %file.path.display(), ?repair, "recording repaired")
            }
            Err(e) => tracing::warn!(path = %file.path.display(), "recording not repaired: {e}"),
        }
    }
}

/// Waits until no call is left or `deadline` passes; whether none is left.
async fn drain(state: &State, deadline: Duration) -> bool {
    let start = Instant::now();
    while state.active_calls() > 0 {
        if start.elapsed() >= deadline {
            return false;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
    true
}

/// SIGTERM (service managers) and SIGINT (Ctrl-C).
struct Signals {
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The name of the next signal received.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

fn transport(name: TransportName) -> Transport {
    match name {
        TransportName::Udp => Transport::Udp,
        TransportName::Tcp => Transport::Tcp,
        TransportName::Tls => Transport::Tls,
        TransportName::Ws => Transport::Ws,
        TransportName::Wss => Transport::Wss,
    }
}

fn transport_config(config: &Config) -> TransportConfig {
    let listeners = config
        .sip
        .listen
        .iter()
        .map(|l| Listener::new(transport(l.transport), l.address.0))
        .collect();
    let mut transport = TransportConfig::new(listeners);
    transport.tls_identity = config.sip.tls.as_ref().map(|tls| TlsIdentity::Files {
        certificate_chain: tls.certificate.clone(),
        private_key: tls.private_key.clone(),
    });
    transport
}

fn registrar_config(config: &Config) -> RegistrarConfig {
    let mut registrar = RegistrarConfig::new(config.sip.realm.clone());
    registrar.min_expires = config.registrar.min_expires;
    registrar.max_expires = config.registrar.max_expires;
    registrar.default_expires = config.registrar.default_expires;
    registrar.digest.nonce_lifetime = Duration::from_secs(config.registrar.nonce_lifetime_secs);
    registrar.digest.algorithms = config
        .registrar
        .algorithms
        .iter()
        .map(|a| match a {
            DigestAlgorithm::Md5 => Algorithm::Md5,
            DigestAlgorithm::Sha256 => Algorithm::Sha256,
        })
        .collect();
    registrar
}

/// The extensions as registrar accounts. One with neither password nor
/// HA1 gets a random password, printed for the operator the first time
/// and kept in `generated`.
pub(crate) fn users(config: &Config, generated: &mut HashMap<String, String>) -> StaticUsers {
    let mut users = StaticUsers::new();
    for extension in &config.extensions {
        let secret = match (&extension.password, &extension.ha1) {
            (Some(password), _) => Secret::Password(password.clone()),
            (None, Some(ha1)) => Secret::Ha1(ha1.clone()),
            (None, None) => {
                let password = generated
                    .entry(extension.number.clone())
                    .or_insert_with(|| {
                        let password = random_password();
                        println!("extension {} password {password}", extension.number);
                        password
                    });
                Secret::Password(password.clone())
            }
        };
        users.insert(User {
            username: extension.number.clone(),
            secret,
            display_name: extension.display_name.clone(),
            id: None,
            email: None,
            allow_guest_calls: false,
        });
    }
    users
}

/// 16 characters from a 32-letter alphabet (80 bits) without the look-alikes
/// 0/o and 1/l, so it can be read off a screen and typed into a phone.
fn random_password() -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    // 256 is a multiple of 32: taking each byte modulo 32 is unbiased.
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
        .collect()
}
