//! The call engine as the binary runs it: the configuration's media,
//! recording, route and trunk settings turned into an [`EngineConfig`],
//! the relay started on the configured port range.

use crate::config::{self, Config, Match, Target};
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use trunkline_cdr::{Cdr, CdrStore};
use trunkline_engine as engine;
use trunkline_engine::{
    Credentials, Engine, EngineConfig, MediaProxy, RouteDecision, RouteFuture, RouteRequest,
    Router, Routing, Strategy, Trunk,
};
use trunkline_media::relay::{Relay, RelayConfig};
use trunkline_registrar::MemoryLocator;
use trunkline_transaction::Endpoint;

/// The engine over the binary's registrar.
pub(crate) type CallEngine = Engine<MemoryLocator, crate::pbx::LiveUsers>;

/// Starts the relay and builds the engine; the caller runs
/// [`Engine::run`] on the endpoint's events. With `client`, calls are
/// routed by `[proxy.http_router]` when configured; stored records go to
/// `stored_records` (the CDR push) when given. The static routes are
/// returned too, to be replaced while the engine runs.
pub(crate) fn engine(
    config: &Config,
    endpoint: Endpoint,
    registrar: Arc<crate::pbx::Registrar>,
    cdr: Arc<dyn CdrStore>,
    client: Option<&trunkline_webhooks::Client>,
    stored_records: Option<mpsc::Sender<Cdr>>,
) -> Result<(CallEngine, Routes), String> {
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
    let trunks = trunks(config)?;
    let mut engine = EngineConfig::new(config.sip.realm.clone());
    engine.media_proxy = media_proxy(media.media_proxy);
    let routes = Routes::new(config, &trunks);
    engine.router = match (&config.proxy.http_router, client) {
        (Some(settings), Some(client)) => Some(Arc::new(crate::hooks::HttpRouter::new(
            settings,
            client.clone(),
            routes.clone(),
            &config.sip.realm,
        )?)),
        _ => Some(Arc::new(routes.clone())),
    };
    engine.stored_records = stored_records;
    engine.trunks = in_order(config, &trunks);
    engine.ring_timeout = Duration::from_secs(config.calls.ring_timeout_secs);
    engine.record = config.recording.enabled;
    engine.recordings = Some(config.recording_dir());
    let engine = Engine::new(engine, endpoint, registrar, Some(relay), Some(cdr))
        .map_err(|e| format!("starting the call record writer: {e}"))?;
    Ok((engine, routes))
}

/// `trunks` in the order of `config.trunks`: an inbound call goes to the
/// first whose ACL admits its source.
pub(crate) fn in_order(config: &Config, trunks: &HashMap<String, Arc<Trunk>>) -> Vec<Arc<Trunk>> {
    config
        .trunks
        .iter()
        .filter_map(|entry| trunks.get(&entry.name).cloned())
        .collect()
}

/// The `[[trunks]]` by name.
pub(crate) fn trunks(config: &Config) -> Result<HashMap<String, Arc<Trunk>>, String> {
    let mut trunks = HashMap::new();
    for entry in &config.trunks {
        let mut trunk = Trunk::new(entry.name.as_str(), &entry.uri)
            .map_err(|e| format!("trunk {:?}: {e}", entry.name))?;
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            trunk.credentials = Some(Credentials {
                username: username.clone(),
                password: password.clone(),
            });
        }
        trunk.register = entry.register;
        trunk.inbound_acl = entry.inbound_acl.iter().map(|net| net.0).collect();
        trunk.dids = entry.did.clone().into_iter().collect();
        trunks.insert(entry.name.clone(), Arc::new(trunk));
    }
    Ok(trunks)
}

fn media_proxy(setting: config::MediaProxy) -> MediaProxy {
    match setting {
        config::MediaProxy::Auto => MediaProxy::Auto,
        config::MediaProxy::Always => MediaProxy::Always,
        config::MediaProxy::Off => MediaProxy::None,
        config::MediaProxy::Nat => MediaProxy::Nat,
    }
}

/// `[[routes]]`, `[[groups]]` and `[[trunks]]` as the engine's router:
/// the first route whose `match` takes the dialled number sends it to an
/// extension, a group's members, or out through a trunk as its `rewrite`
/// makes it. Clones share one table, which [`Routes::set`] replaces for
/// the calls routed from then on (calls in progress keep their routing).
#[derive(Debug, Clone)]
pub(crate) struct Routes(Arc<RwLock<Arc<Table>>>);

/// The routes in force.
#[derive(Debug)]
struct Table {
    routes: Vec<config::Route>,
    groups: HashMap<String, Vec<String>>,
    trunks: HashMap<String, Arc<Trunk>>,
}

impl Table {
    fn new(config: &Config, trunks: &HashMap<String, Arc<Trunk>>) -> Table {
        Table {
            routes: config.routes.clone(),
            groups: config
                .groups
                .iter()
                .map(|g| (g.name.clone(), g.members.clone()))
                .collect(),
            trunks: trunks.clone(),
        }
    }
}

impl Routes {
    pub(crate) fn new(config: &Config, trunks: &HashMap<String, Arc<Trunk>>) -> Routes {
        Routes(Arc::new(RwLock::new(Arc::new(Table::new(config, trunks)))))
    }

    /// Replaces the table with `config`'s routes and groups over `trunks`.
    pub(crate) fn set(&self, config: &Config, trunks: &HashMap<String, Arc<Trunk>>) {
        let table = Arc::new(Table::new(config, trunks));
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = table;
    }

    fn table(&self) -> Arc<Table> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The static routes take an extension's call to a number that is not a
/// registered extension's own; a trunk's call only ever rings its DID.
impl Router for Routes {
    fn route<'a>(&'a self, call: &'a RouteRequest) -> RouteFuture<'a> {
        let routed = match (&call.trunk, call.registered) {
            (None, false) => self.lookup(&call.dialled),
            _ => None,
        };
        Box::pin(std::future::ready(
            routed.map_or(RouteDecision::Default, RouteDecision::Route),
        ))
    }
}

impl Routes {
    /// Whether the route `dialled` takes goes out through a trunk.
    pub(crate) fn goes_out(&self, dialled: &str) -> bool {
        self.lookup(dialled).is_some_and(|routing| {
            routing
                .targets
                .iter()
                .any(|t| matches!(t, engine::Target::Trunk { .. }))
        })
    }

    /// The first route that takes `dialled`.
    fn lookup(&self, dialled: &str) -> Option<Routing> {
        if dialled.is_empty() {
            return None;
        }
        let table = self.table();
        let route = table.routes.iter().find(|route| match &route.matches {
            Match::Prefix(prefix) => dialled.starts_with(prefix.as_str()),
            Match::Regex(pattern) => pattern.regex().is_match(dialled),
        })?;
        let targets = match &route.to {
            Target::Extension(number) => vec![engine::Target::Extension(number.clone())],
            Target::Group(group) => table
                .groups
                .get(group)?
                .iter()
                .cloned()
                .map(engine::Target::Extension)
                .collect(),
            Target::Trunk(name) => vec![engine::Target::Trunk {
                // check-config made sure the trunk exists.
                trunk: table.trunks.get(name)?.clone(),
                number: rewrite(route, dialled),
            }],
        };
        let mut routing = Routing::new(route.name.clone(), targets);
        routing.strategy = match route.strategy {
            config::Strategy::Parallel => Strategy::Parallel,
            config::Strategy::Sequential => Strategy::Sequential,
        };
        routing.ring_timeout = Some(Duration::from_secs(u64::from(route.ring_timeout_secs)));
        routing.record = route.record;
        routing.media_proxy = route.media_proxy.map(media_proxy);
        Some(routing)
    }
}

/// The number `route` sends on for `dialled`: with a prefix match, the
/// prefix replaced by `rewrite`; with a regex, `rewrite` with the groups
/// captured put in. Unchanged without a `rewrite`.
fn rewrite(route: &config::Route, dialled: &str) -> String {
    let Some(rewrite) = &route.rewrite else {
        return dialled.to_owned();
    };
    match &route.matches {
        Match::Prefix(prefix) => format!("{rewrite}{}", &dialled[prefix.len()..]),
        Match::Regex(pattern) => {
            let mut number = String::new();
            if let Some(captures) = pattern.regex().captures(dialled) {
                captures.expand(rewrite, &mut number);
            }
            number
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(toml: &str) -> Routes {
        let config = Config::parse(toml).expect("valid configuration");
        let trunks = trunks(&config).expect("valid trunks");
        Routes::new(&config, &trunks)
    }

    const CARRIER: &str = "[[trunks]]\nname = \"carrier\"\nuri = \"sip:127.0.0.2:5080\"\n";

    fn number(routing: &Routing) -> &str {
        match &routing.targets[..] {
            [engine::Target::Trunk { number, .. }] => number,
            other => panic!("not one trunk target: {other:?}"),
        }
    }

    #[test]
    fn a_prefix_rewrite_replaces_the_prefix() {
        let routes = routes(&format!(
            "{CARRIER}[[routes]]\nname = \"out\"\nmatch = {{ prefix = \"9\" }}\nrewrite = \"+44\"\nto = {{ trunk = \"carrier\" }}\n"
        ));
        assert_eq!(
            number(&routes.lookup("92071234567").unwrap()),
            "+442071234567"
        );
        assert!(routes.lookup("1001").is_none());
    }

    #[test]
    fn a_regex_rewrite_puts_the_captured_groups_in() {
        let routes = routes(&format!(
            "{CARRIER}[[routes]]\nname = \"uk\"\nmatch = {{ regex = '0(\\d{{9,10}})' }}\nrewrite = \"+44${{1}}\"\nto = {{ trunk = \"carrier\" }}\n"
        ));
        assert_eq!(
            number(&routes.lookup("02071234567").unwrap()),
            "+442071234567"
        );
        // The regex takes the whole number or nothing.
        assert!(routes.lookup("020712345678901").is_none());
    }

    #[test]
    fn without_a_rewrite_the_number_goes_out_as_dialled() {
        let routes = routes(&format!(
            "{CARRIER}[[routes]]\nname = \"all\"\nmatch = {{ prefix = \"\" }}\nto = {{ trunk = \"carrier\" }}\n"
        ));
        let routing = routes.lookup("5551234").unwrap();
        assert_eq!(number(&routing), "5551234");
        assert_eq!(routing.name, "all");
    }
}
