//! The call engine as the binary runs it: the configuration's media and
//! recording settings turned into an [`EngineConfig`], the relay started
//! on the configured port range.

use crate::config::{self, Config, Match, Target};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use trunkline_cdr::CdrStore;
use trunkline_engine::{Engine, EngineConfig, MediaProxy, Router, Routing, Strategy};
use trunkline_media::relay::{Relay, RelayConfig};
use trunkline_registrar::{MemoryLocator, StaticUsers};
use trunkline_transaction::Endpoint;

/// The engine over the binary's registrar.
pub(crate) type CallEngine = Engine<MemoryLocator, StaticUsers>;

/// Starts the relay and builds the engine; the caller runs
/// [`Engine::run`] on the endpoint's events.
pub(crate) fn engine(
    config: &Config,
    endpoint: Endpoint,
    registrar: Arc<crate::pbx::Registrar>,
    cdr: Arc<dyn CdrStore>,
) -> Result<CallEngine, String> {
    let media = &config.media;
    let (relay, mut events) = Relay::start(RelayConfig {
        address: media.address.0,
        ports: (media.rtp_port_min, media.rtp_port_max),
        ..RelayConfig::default()
    })
    .map_err(|e| format!("starting the RTP relay: {e}"))?;
    // The engine ends calls by their signalling; the relay's events are
    // only logged for now.
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            tracing::debug!(?event, "relay");
        }
    });
    let mut engine = EngineConfig::new(config.sip.realm.clone());
    engine.media_proxy = media_proxy(media.media_proxy);
    engine.router = Some(Arc::new(Routes::new(config)));
    engine.ring_timeout = Duration::from_secs(config.calls.ring_timeout_secs);
    engine.record = config.recording.enabled;
    engine.recordings = Some(config.recording_dir());
    Engine::new(engine, endpoint, registrar, Some(relay), Some(cdr))
        .map_err(|e| format!("starting the call record writer: {e}"))
}

fn media_proxy(setting: config::MediaProxy) -> MediaProxy {
    match setting {
        config::MediaProxy::Auto => MediaProxy::Auto,
        config::MediaProxy::Always => MediaProxy::Always,
        config::MediaProxy::Off => MediaProxy::None,
        config::MediaProxy::Nat => MediaProxy::Nat,
    }
}

/// `[[routes]]` and `[[groups]]` as the engine's router: the first route
/// whose `match` takes the dialled number sends it to an extension or a
/// group's members. Trunks are not dialled yet: a number routed to one
/// is refused (480) and logged.
#[derive(Debug)]
struct Routes {
    routes: Vec<config::Route>,
    groups: HashMap<String, Vec<String>>,
}

impl Routes {
    fn new(config: &Config) -> Routes {
        Routes {
            routes: config.routes.clone(),
            groups: config
                .groups
                .iter()
                .map(|g| (g.name.clone(), g.members.clone()))
                .collect(),
        }
    }
}

impl Router for Routes {
    fn route(&self, dialled: &str) -> Option<Routing> {
        let route = self.routes.iter().find(|route| match &route.matches {
            Match::Prefix(prefix) => dialled.starts_with(prefix.as_str()),
            Match::Regex(pattern) => pattern.regex().is_match(dialled),
        })?;
        let targets = match &route.to {
            Target::Extension(number) => vec![number.clone()],
            Target::Group(group) => self.groups.get(group).cloned().unwrap_or_default(),
            Target::Trunk(trunk) => {
                tracing::warn!(
                    route = route.name,
                    trunk,
                    dialled,
                    "trunks are not dialled yet"
                );
                return None;
            }
        };
        Some(Routing {
            name: route.name.clone(),
            targets,
            strategy: match route.strategy {
                config::Strategy::Parallel => Strategy::Parallel,
                config::Strategy::Sequential => Strategy::Sequential,
            },
            ring_timeout: Some(Duration::from_secs(u64::from(route.ring_timeout_secs))),
            record: route.record,
            media_proxy: route.media_proxy.map(media_proxy),
        })
    }
}
