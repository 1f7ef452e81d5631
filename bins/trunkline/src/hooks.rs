//! The webhooks as the binary runs them: the HTTP router in front of the
//! static routes, and the locator webhook and CDR push through the durable
//! outbox (`data.dir/outbox.sqlite`).

use crate::calls::Routes;
use crate::config::{self, Config, RegistrationEventName};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use trunkline_cdr::Cdr;
use trunkline_engine::{
    self as engine, RouteDecision, RouteFuture, RouteRequest, Router, Routing, SipAddress,
};
use trunkline_registrar::{EventKind, RegistrationEvent};
use trunkline_sip::{HeaderName, StatusCode};
use trunkline_webhooks::{
    Client, Direction, Hook, MediaProxy, Outbox, OutboxConfig, Payload, RouterAction,
    RouterDecision, RouterRequest, Strategy,
};

/// The outbox's name for the locator webhook.
const LOCATOR: &str = "locator";
/// The outbox's name for the CDR push.
const CDR_PUSH: &str = "cdr";
/// The record's destination channel for calls the router decided.
pub(crate) const ROUTER_CHANNEL: &str = "http_router";
/// Records waiting to be put in the outbox; past it, a finishing call
/// waits.
const RECORD_QUEUE: usize = 1024;

/// A configured hook's common keys.
fn hook(
    url: &str,
    secret: Option<&String>,
    timeout_ms: u64,
    headers: &BTreeMap<String, String>,
) -> Result<Hook, String> {
    let mut hook = Hook::new(url)
        .map_err(|e| e.to_string())?
        .with_timeout(Duration::from_millis(timeout_ms));
    if let Some(secret) = secret {
        hook = hook.with_secret(secret.as_bytes());
    }
    for (name, value) in headers {
        hook = hook.with_header(name, value).map_err(|e| e.to_string())?;
    }
    Ok(hook)
}

/// One client for every hook (they share its connection pool), made only
/// when a hook is configured.
pub(crate) fn client(config: &Config) -> Result<Option<Client>, String> {
    let any = config.proxy.http_router.is_some()
        || config.proxy.locator_webhook.is_some()
        || config.callrecord.is_some();
    if !any {
        return Ok(None);
    }
    Client::new()
        .map(Some)
        .map_err(|e| format!("starting the webhook client: {e}"))
}

/// `[proxy.http_router]` as the engine's router: asks the integrator about
/// every call, and falls back to the static routes when it has no opinion
/// (`not_handled`) or, with `fallback_to_static`, when it cannot be asked.
#[derive(Debug)]
pub(crate) struct HttpRouter {
    client: Client,
    hook: Hook,
    fallback_to_static: bool,
    routes: Routes,
    domain: String,
}

impl HttpRouter {
    pub(crate) fn new(
        settings: &config::HttpRouter,
        client: Client,
        routes: Routes,
        domain: &str,
    ) -> Result<HttpRouter, String> {
        let hook = hook(
            &settings.url,
            settings.secret.as_ref(),
            settings.timeout_ms,
            &settings.headers,
        )
        .map_err(|e| format!("proxy.http_router: {e}"))?;
        Ok(HttpRouter {
            client,
            hook,
            fallback_to_static: settings.fallback_to_static,
            routes,
            domain: domain.to_ascii_lowercase(),
        })
    }

    /// The router's request for `call`.
    fn request(&self, call: &RouteRequest) -> RouterRequest {
        let invite = &call.invite;
        let direction = if call.trunk.is_some() {
            Direction::Inbound
        } else if !call.registered && self.routes.goes_out(&call.dialled) {
            Direction::Outbound
        } else {
            Direction::Internal
        };
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for header in invite.headers() {
            // The caller's digest answer stays here.
            if matches!(
                header.known,
                Some(HeaderName::Authorization | HeaderName::ProxyAuthorization)
            ) {
                continue;
            }
            let name = header
                .known
                .map_or_else(|| header.name.to_owned(), |n| n.to_string());
            headers
                .entry(name)
                .and_modify(|joined| {
                    joined.push_str(", ");
                    joined.push_str(header.value);
                })
                .or_insert_with(|| header.value.to_owned());
        }
        RouterRequest {
            call_id: invite.call_id().unwrap_or_default().to_owned(),
            from: invite
                .header(HeaderName::From)
                .unwrap_or_default()
                .to_owned(),
            to: invite.header(HeaderName::To).unwrap_or_default().to_owned(),
            source_addr: call.source,
            direction,
            method: "INVITE".into(),
            uri: invite
                .uri()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default(),
            headers,
            body: String::from_utf8_lossy(invite.body()).into_owned(),
        }
    }

    /// The engine's decision for the router's; `None` for `not_handled`.
    fn decide(&self, decision: RouterDecision) -> Result<Option<RouteDecision>, String> {
        let refuse = |status: StatusCode, reason: &str| {
            Ok(Some(RouteDecision::Refuse {
                status,
                channel: Some(ROUTER_CHANNEL.into()),
                reason: Some(reason.into()),
            }))
        };
        match decision.action {
            RouterAction::NotHandled => Ok(None),
            RouterAction::Reject => refuse(StatusCode::FORBIDDEN, "rejected by the HTTP router"),
            RouterAction::Abort => refuse(
                StatusCode::TEMPORARILY_UNAVAILABLE,
                "aborted by the HTTP router",
            ),
            RouterAction::Spam => refuse(StatusCode::DECLINE, "spam, said the HTTP router"),
            RouterAction::Forward => {
                let targets = decision
                    .targets
                    .iter()
                    .map(|target| self.target(target))
                    .collect::<Result<Vec<_>, _>>()?;
                if targets.is_empty() {
                    return Err("forward without targets".into());
                }
                let mut routing = Routing::new(ROUTER_CHANNEL, targets);
                routing.channel = Some(ROUTER_CHANNEL.into());
                routing.strategy = match decision.strategy {
                    Some(Strategy::Sequential) => engine::Strategy::Sequential,
                    Some(Strategy::Parallel) | None => engine::Strategy::Parallel,
                };
                routing.ring_timeout = decision
                    .timeout
                    .filter(|&secs| secs > 0)
                    .map(|secs| Duration::from_secs(u64::from(secs)));
                routing.record = decision.record;
                routing.media_proxy = decision.media_proxy.map(|m| match m {
                    MediaProxy::Auto => engine::MediaProxy::Auto,
                    MediaProxy::Always => engine::MediaProxy::Always,
                    MediaProxy::None => engine::MediaProxy::None,
                    MediaProxy::Nat => engine::MediaProxy::Nat,
                });
                routing.headers = decision.headers.into_iter().collect();
                Ok(Some(RouteDecision::Route(routing)))
            }
        }
    }

    /// A router's target: a bare extension number, or a SIP URI (at our
    /// domain: that extension's phones; elsewhere: called as it is).
    fn target(&self, target: &str) -> Result<engine::Target, String> {
        let usable = |c: char| c.is_ascii_alphanumeric() || "._-+*".contains(c);
        if !target.is_empty() && target.chars().all(usable) {
            return Ok(engine::Target::Extension(target.to_owned()));
        }
        let address =
            SipAddress::parse(target).map_err(|why| format!("target {target:?}: {why}"))?;
        let host = address.host().to_ascii_lowercase();
        match address.user() {
            Some(user) if host == self.domain => Ok(engine::Target::Extension(user.to_owned())),
            _ => Ok(engine::Target::Uri(address)),
        }
    }
}

impl Router for HttpRouter {
    fn route<'a>(&'a self, call: &'a RouteRequest) -> RouteFuture<'a> {
        Box::pin(async move {
            let request = self.request(call);
            let decided = match self.client.route(&self.hook, &request).await {
                Ok(decision) => self.decide(decision),
                Err(e) => Err(e.to_string()),
            };
            match decided {
                Ok(Some(decision)) => decision,
                Ok(None) => self.routes.route(call).await,
                Err(e) if self.fallback_to_static => {
                    tracing::warn!(
                        call_id = request.call_id,
                        "HTTP router: {e}; routing by the static routes"
                    );
                    self.routes.route(call).await
                }
                Err(e) => {
                    tracing::warn!(call_id = request.call_id, "HTTP router: {e}; refusing");
                    RouteDecision::Refuse {
                        status: StatusCode::SERVICE_UNAVAILABLE,
                        channel: Some(ROUTER_CHANNEL.into()),
                        reason: Some(format!("HTTP router: {e}")),
                    }
                }
            }
        })
    }
}

/// The durable hooks running: the outbox and the tasks feeding it.
pub(crate) struct Durable {
    outbox: Arc<Outbox>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Durable {
    /// Opens the outbox for the locator webhook and the CDR push, if either
    /// is configured; deliveries left from the last run resume.
    pub(crate) fn open(
        config: &Config,
        client: Option<&Client>,
    ) -> Result<Option<Durable>, String> {
        let mut outbox = OutboxConfig::new(config.outbox_path());
        if let Some(l) = &config.proxy.locator_webhook {
            let hook = hook(&l.url, l.secret.as_ref(), l.timeout_ms, &l.headers)
                .map_err(|e| format!("proxy.locator_webhook: {e}"))?;
            outbox.hooks.insert(LOCATOR.into(), hook);
        }
        if let Some(c) = &config.callrecord {
            let hook = hook(&c.url, c.secret.as_ref(), c.timeout_ms, &c.headers)
                .map_err(|e| format!("callrecord: {e}"))?;
            outbox.hooks.insert(CDR_PUSH.into(), hook);
        }
        let (false, Some(client)) = (outbox.hooks.is_empty(), client) else {
            return Ok(None);
        };
        let path = outbox.path.clone();
        let outbox = Outbox::open(outbox, client.clone())
            .map_err(|e| format!("opening the webhook outbox {}: {e}", path.display()))?;
        let stats = outbox.stats();
        if stats.depth > 0 || stats.dead > 0 {
            tracing::info!(
                waiting = stats.depth,
                dead = stats.dead,
                "webhook deliveries from the last run"
            );
        }
        Ok(Some(Durable {
            outbox: Arc::new(outbox),
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }))
    }

    /// The outbox, for its figures.
    pub(crate) fn outbox(&self) -> Arc<Outbox> {
        self.outbox.clone()
    }

    /// Sends the registrar's events of the kinds `[proxy.locator_webhook]`
    /// lists to it.
    pub(crate) fn forward_registrations(
        &mut self,
        config: &Config,
        mut events: broadcast::Receiver<RegistrationEvent>,
    ) {
        let Some(locator) = &config.proxy.locator_webhook else {
            return;
        };
        let wanted: Vec<EventKind> = locator
            .events
            .iter()
            .map(|name| match name {
                RegistrationEventName::Registered => EventKind::Registered,
                RegistrationEventName::Unregistered => EventKind::Unregistered,
                RegistrationEventName::Offline => EventKind::Offline,
            })
            .collect();
        let outbox = Arc::clone(&self.outbox);
        let mut stop = self.stop.subscribe();
        self.tasks.push(tokio::spawn(async move {
            let send = async |event: RegistrationEvent| {
                if !wanted.contains(&event.event) {
                    return;
                }
                let enqueued = match Payload::registration(&event) {
                    Ok(payload) => outbox.enqueue(LOCATOR, payload).await.map(drop),
                    Err(e) => Err(e),
                };
                if let Err(e) = enqueued {
                    tracing::error!(aor = event.location.aor, "registration event not sent: {e}");
                }
            };
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Ok(event) => send(event).await,
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::error!(missed, "registration events lost before the locator webhook");
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    _ = stop.changed() => break,
                }
            }
            // Stopping: what the registrar already published still goes.
            while let Ok(event) = events.try_recv() {
                send(event).await;
            }
        }));
    }

    /// The channel the engine hands stored records to, for the CDR push;
    /// `None` without `[callrecord]`.
    pub(crate) fn push_records(&mut self, config: &Config) -> Option<mpsc::Sender<Cdr>> {
        let with_media = config.callrecord.as_ref()?.with_media;
        let (sender, mut records) = mpsc::channel::<Cdr>(RECORD_QUEUE);
        let outbox = Arc::clone(&self.outbox);
        let mut stop = self.stop.subscribe();
        self.tasks.push(tokio::spawn(async move {
            let push = async |cdr: Cdr| {
                let enqueued = match Payload::cdr_push(&cdr, with_media) {
                    Ok(payload) => outbox.enqueue(CDR_PUSH, payload).await.map(drop),
                    Err(e) => Err(e),
                };
                if let Err(e) = enqueued {
                    tracing::error!(cdr = cdr.id.as_str(), "call record not pushed: {e}");
                }
            };
            loop {
                tokio::select! {
                    cdr = records.recv() => match cdr {
                        Some(cdr) => push(cdr).await,
                        None => return,
                    },
                    _ = stop.changed() => break,
                }
            }
            // Stopping: no more records are taken, those waiting go in.
            records.close();
            while let Some(cdr) = records.recv().await {
                push(cdr).await;
            }
        }));
        Some(sender)
    }

    /// Puts what the tasks still hold in the outbox, lets a delivery under
    /// way finish, and closes the file; the rest waits there for the next
    /// start.
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        let stats = self.outbox.stats();
        match Arc::try_unwrap(self.outbox) {
            Ok(outbox) => outbox.shutdown().await,
            Err(_) => tracing::warn!("webhook outbox still in use at shutdown"),
        }
        if stats.depth > 0 {
            tracing::info!(
                waiting = stats.depth,
                "webhook deliveries left for the next start"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

    use super::*;

    fn router() -> HttpRouter {
        let config = Config::parse(
            "[sip]\nrealm = \"PBX.example.com\"\n\
             [proxy.http_router]\nurl = \"http://127.0.0.1:9/route\"\n",
        )
        .unwrap();
        let trunks = crate::calls::trunks(&config).unwrap();
        let routes = Routes::new(&config, &trunks);
        let settings = config.proxy.http_router.as_ref().unwrap();
        HttpRouter::new(settings, Client::new().unwrap(), routes, &config.sip.realm).unwrap()
    }

    #[test]
    fn targets_are_extensions_or_uris() {
        let router = router();
        let extension = |t: engine::Target| match t {
            engine::Target::Extension(number) => number,
            other => panic!("not an extension: {other:?}"),
        };
        assert_eq!(extension(router.target("1002").unwrap()), "1002");
        let at_realm = router.target("sip:1003@pbx.example.com").unwrap();
        assert_eq!(extension(at_realm), "1003");
        match router
            .target("sip:1001@192.0.2.50:5070;transport=tcp")
            .unwrap()
        {
            engine::Target::Uri(address) => {
                assert_eq!(address.uri(), "sip:1001@192.0.2.50:5070;transport=tcp");
            }
            other => panic!("not a URI: {other:?}"),
        }
        assert!(router.target("tel:+441234").is_err());
        assert!(router.target("").is_err());
    }

    #[test]
    fn actions_become_statuses_and_routings() {
        let router = router();
        let refusal = |action| match router.decide(RouterDecision {
            action,
            ..RouterDecision::default()
        }) {
            Ok(Some(RouteDecision::Refuse {
                status, channel, ..
            })) => (status.as_u16(), channel.unwrap()),
            other => panic!("not a refusal: {other:?}"),
        };
        assert_eq!(refusal(RouterAction::Reject), (403, ROUTER_CHANNEL.into()));
        assert_eq!(refusal(RouterAction::Abort).0, 480);
        assert_eq!(refusal(RouterAction::Spam).0, 603);
        assert!(matches!(router.decide(RouterDecision::default()), Ok(None)));
        let forward = |targets: &[&str]| {
            router.decide(RouterDecision {
                action: RouterAction::Forward,
                targets: targets.iter().map(|t| (*t).to_owned()).collect(),
                strategy: Some(Strategy::Sequential),
                timeout: Some(15),
                record: Some(true),
                media_proxy: Some(MediaProxy::None),
                headers: [("X-Call-Reason".to_owned(), "vip".to_owned())].into(),
            })
        };
        let Ok(Some(RouteDecision::Route(routing))) = forward(&["1002", "sip:a@192.0.2.1"]) else {
            panic!("not routed");
        };
        assert_eq!(routing.channel.as_deref(), Some(ROUTER_CHANNEL));
        assert_eq!(routing.targets.len(), 2);
        assert_eq!(routing.strategy, engine::Strategy::Sequential);
        assert_eq!(routing.ring_timeout, Some(Duration::from_secs(15)));
        assert_eq!(routing.record, Some(true));
        assert_eq!(routing.media_proxy, Some(engine::MediaProxy::None));
        assert_eq!(routing.headers, [("X-Call-Reason".into(), "vip".into())]);
        // A decision the PBX cannot carry out is the router's error.
        assert!(forward(&[]).is_err());
        assert!(forward(&["1002", "mailto:x@example.com"]).is_err());
    }
}
