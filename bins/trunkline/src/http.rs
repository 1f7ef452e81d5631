//! The HTTP side: trunkline-api's router over this PBX's state, with the
//! keys and allow-list of `[api]` and `[ami]`, the CDR store and the
//! recordings directory, the live events, the webhook outbox's figures in
//! `/metrics` and the health check, and the console (CRUD, reloads,
//! shutdown, dialogs).

use crate::config::Config;
use crate::pbx::State;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use trunkline_api::{
    Api, ApiConfig, CommandFuture, MetricKind, MetricsWriter, OutboxHealth, Pbx, SipTables,
};
use trunkline_cdr::CdrStore;
use trunkline_engine::{
    ActiveCall, CallCommand, CallEvent, CallSide, CommandError, EngineStats, Originate, TrunkStatus,
};
use trunkline_webhooks::Outbox;

impl Pbx for State {
    fn draining(&self) -> bool {
        self.is_draining()
    }

    fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    fn stats(&self) -> EngineStats {
        self.engine.stats()
    }

    fn registrations(&self) -> usize {
        // Bindings held, lapsed ones included until the next expiry sweep
        // (every few seconds): counting only live ones would copy them all.
        self.registrar.locator().len()
    }

    fn trunk_statuses(&self) -> Vec<TrunkStatus> {
        self.engine.trunk_statuses()
    }

    fn active_calls(&self) -> Vec<ActiveCall> {
        self.engine.active_calls()
    }

    fn sip_tables(&self) -> SipTables {
        let (transactions, dialogs) = self.endpoint.load();
        SipTables {
            transactions,
            dialogs,
            call_dialogs: self.engine.stats().dialogs,
        }
    }

    fn command<'a>(&'a self, call: &'a str, command: CallCommand) -> CommandFuture<'a> {
        Box::pin(self.engine.command(call, command))
    }

    fn attended_transfer<'a>(
        &'a self,
        a: (&'a str, CallSide),
        b: (&'a str, CallSide),
    ) -> CommandFuture<'a> {
        Box::pin(self.engine.attended_transfer(a, b))
    }

    fn has_call(&self, call: &str) -> bool {
        self.engine.has_call(call)
    }

    fn originate(&self, originate: Originate) -> Result<String, CommandError> {
        self.engine.originate(originate)
    }

    fn call_events(&self) -> tokio::sync::broadcast::Receiver<CallEvent> {
        self.engine.subscribe()
    }
}

/// Binds `[http] address` and serves the API on a task; the bound
/// address (port 0 picks one) and the task, to abort at shutdown.
pub(crate) async fn serve(
    config: &Config,
    state: Arc<State>,
    cdr: Arc<dyn CdrStore>,
    outbox: Option<Arc<Outbox>>,
    console: Arc<crate::console::Console>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let api_config = ApiConfig {
        keys: config.api.keys.clone(),
        ami_allows: config.ami.allows.iter().map(|net| net.0).collect(),
        recordings: Some(config.recording_dir()),
    };
    let events = state.events.clone();
    let mut api = Api::new(api_config, state, cdr)
        .with_admin(console.clone())
        .with_events(events);
    console.set_allow_list(api.ami_allow_list());
    if let Some(outbox) = outbox {
        let health = outbox.clone();
        api = api
            .with_metrics(move |out: &mut MetricsWriter| outbox_metrics(&outbox, out))
            .with_outbox(move || outbox_health(&health));
    }
    api.serve(config.http.address.0).await
}

fn outbox_health(outbox: &Outbox) -> OutboxHealth {
    let stats = outbox.stats();
    OutboxHealth {
        pending: stats.depth,
        delivered: stats.delivered,
        failed: stats.dead_lettered,
        failed_attempts: stats.failed_attempts,
        refused_full: stats.refused_full,
        dead: stats.dead,
    }
}

fn outbox_metrics(outbox: &Outbox, out: &mut MetricsWriter) {
    let stats = outbox.stats();
    out.gauge(
        "trunkline_webhook_outbox_depth",
        "Webhook deliveries waiting in the outbox.",
        stats.depth as f64,
    );
    out.gauge(
        "trunkline_webhook_outbox_dead",
        "Dead letters kept in the outbox.",
        stats.dead as f64,
    );
    out.family(
        "trunkline_webhook_deliveries_total",
        "Webhook deliveries since start, by outcome.",
        MetricKind::Counter,
    )
    .sample(&[("outcome", "delivered")], stats.delivered as f64)
    .sample(&[("outcome", "dead_lettered")], stats.dead_lettered as f64)
    .sample(&[("outcome", "refused_full")], stats.refused_full as f64);
    out.counter(
        "trunkline_webhook_failed_attempts_total",
        "Webhook delivery attempts that failed.",
        stats.failed_attempts as f64,
    );
}
