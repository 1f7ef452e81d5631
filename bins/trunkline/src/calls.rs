//! The call engine as the binary runs it: the configuration's media and
//! recording settings turned into an [`EngineConfig`], the relay started
//! on the configured port range.

use crate::config::{self, Config};
use std::sync::Arc;
use trunkline_cdr::CdrStore;
use trunkline_engine::{Engine, EngineConfig, MediaProxy};
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
    engine.media_proxy = match media.media_proxy {
        config::MediaProxy::Auto => MediaProxy::Auto,
        config::MediaProxy::Always => MediaProxy::Always,
        config::MediaProxy::Off => MediaProxy::None,
        config::MediaProxy::Nat => MediaProxy::Nat,
    };
    engine.ring_timeout = std::time::Duration::from_secs(config.calls.ring_timeout_secs);
    engine.record = config.recording.enabled;
    engine.recordings = Some(config.recording_dir());
    Engine::new(engine, endpoint, registrar, Some(relay), Some(cdr))
        .map_err(|e| format!("starting the call record writer: {e}"))
}
