//! `GET /ami/v1/health`, and the figures it shares with the metrics: the
//! load average and the call rate.

use crate::Shared;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use trunkline_engine::TrunkStatus;

/// The health document, fields in this order.
#[derive(Debug, Serialize)]
pub(crate) struct Health {
    status: &'static str,
    uptime_seconds: u64,
    active_calls: u64,
    registrations: usize,
    /// Registrations with trunks (only those that register).
    trunks: Vec<TrunkStatus>,
    /// The 1-minute load average; `null` where the system does not say.
    load: Option<f64>,
    /// Calls started per second over the last minute.
    calls_per_second: f64,
    /// What the SIP stack holds.
    sip: crate::SipTables,
    /// The webhook outbox, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    outbox: Option<OutboxHealth>,
}

/// The webhook outbox's counters in the health check: deliveries waiting
/// and dead letters kept now, the rest since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct OutboxHealth {
    /// Deliveries waiting (queued or to be retried).
    pub pending: u64,
    /// Deliveries a receiver accepted.
    pub delivered: u64,
    /// Deliveries given up on: refused for good, or out of retries.
    pub failed: u64,
    /// Attempts that failed, retried or not.
    pub failed_attempts: u64,
    /// Deliveries refused because the outbox was full.
    pub refused_full: u64,
    /// Dead letters kept.
    pub dead: u64,
}

pub(crate) async fn health(State(shared): State<Arc<Shared>>) -> (StatusCode, Json<Health>) {
    let pbx = &shared.pbx;
    let stats = pbx.stats();
    let draining = pbx.draining();
    let health = Health {
        status: if draining { "draining" } else { "ok" },
        uptime_seconds: pbx.uptime().as_secs(),
        active_calls: stats.active_calls,
        registrations: pbx.registrations(),
        trunks: pbx.trunk_statuses(),
        load: load_average(),
        calls_per_second: shared.calls_per_second(stats.calls),
        sip: pbx.sip_tables(),
        outbox: shared.outbox.as_ref().map(|source| source()),
    };
    // A load balancer takes a draining node out on the status code alone.
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(health))
}

/// The 1-minute load average from `/proc/loadavg` (Linux).
pub(crate) fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    parse_loadavg(&text)
}

fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

/// The window the call rate is averaged over.
const WINDOW: Duration = Duration::from_secs(60);

/// Samples of the calls-since-start counter, at least a second apart,
/// reaching back just past [`WINDOW`].
#[derive(Debug, Default)]
pub(crate) struct CallRate {
    samples: VecDeque<(Instant, u64)>,
}

impl CallRate {
    /// Notes that `calls` had started by `now`; the rate over the last
    /// minute (over the time since the oldest sample kept when the
    /// samples reach back less far, or more when they are sparse).
    pub(crate) fn observe(&mut self, now: Instant, calls: u64) -> f64 {
        let due = self
            .samples
            .back()
            .is_none_or(|(at, _)| now.saturating_duration_since(*at) >= Duration::from_secs(1));
        if due {
            self.samples.push_back((now, calls));
        }
        // Keep one sample at or before the window's start, as its anchor.
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= WINDOW)
        {
            self.samples.pop_front();
        }
        let Some(&(since, first)) = self.samples.front() else {
            return 0.0;
        };
        let elapsed = now.saturating_duration_since(since).as_secs_f64();
        if elapsed < 1.0 {
            return 0.0;
        }
        let rate = calls.saturating_sub(first) as f64 / elapsed;
        // Three decimals are plenty and keep the JSON short.
        (rate * 1000.0).round() / 1000.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn loadavg_is_its_first_field() {
        assert_eq!(parse_loadavg("0.42 0.30 0.21 1/234 5678\n"), Some(0.42));
        assert_eq!(parse_loadavg(""), None);
        assert_eq!(parse_loadavg("x 1 2"), None);
    }

    #[test]
    fn the_rate_is_over_the_last_minute() {
        let start = Instant::now();
        let mut rate = CallRate::default();
        assert_eq!(rate.observe(start, 0), 0.0);
        // 2 calls a second for two minutes, sampled every second.
        let mut last = 0.0;
        for second in 1..=120u64 {
            last = rate.observe(start + Duration::from_secs(second), 2 * second);
        }
        assert_eq!(last, 2.0);
        assert!(rate.samples.len() <= 62, "{}", rate.samples.len());
        // Then none for a minute: the rate falls to zero.
        for second in 121..=181u64 {
            last = rate.observe(start + Duration::from_secs(second), 240);
        }
        assert_eq!(last, 0.0);
    }

    #[test]
    fn sparse_samples_average_over_the_gap() {
        let start = Instant::now();
        let mut rate = CallRate::default();
        rate.observe(start, 10);
        let r = rate.observe(start + Duration::from_secs(300), 310);
        assert_eq!(r, 1.0);
    }
}
