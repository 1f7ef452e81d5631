//! `GET /metrics` in the Prometheus text format (version 0.0.4), with a
//! hook for the embedding program's own figures.

use crate::Shared;
use crate::health::load_average;
use axum::extract::State;
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use std::sync::Arc;

/// The kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A value that goes up and down.
    Gauge,
    /// A value that only goes up (its name should end in `_total`).
    Counter,
}

/// Adds metrics to the `/metrics` page: the binary's webhook outbox
/// depth, for one. Closures `Fn(&mut MetricsWriter)` are sources.
pub trait MetricsSource: Send + Sync + 'static {
    /// Writes this source's families.
    fn write(&self, out: &mut MetricsWriter);
}

impl<F> MetricsSource for F
where
    F: Fn(&mut MetricsWriter) + Send + Sync + 'static,
{
    fn write(&self, out: &mut MetricsWriter) {
        self(out)
    }
}

/// Writes metric families in the Prometheus text format.
#[derive(Debug, Default)]
pub struct MetricsWriter {
    out: String,
}

/// Whether `name` is a valid metric or label name
/// (`[a-zA-Z_:][a-zA-Z0-9_:]*`; labels without the colon).
fn valid_name(name: &str, colon: bool) -> bool {
    let ok = |c: char, first: bool| {
        c.is_ascii_alphabetic() || c == '_' || (colon && c == ':') || (!first && c.is_ascii_digit())
    };
    let mut chars = name.chars();
    chars.next().is_some_and(|c| ok(c, true)) && chars.all(|c| ok(c, false))
}

fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        value.to_string()
    }
}

impl MetricsWriter {
    /// Starts the family `name` with its help text; add samples to it.
    /// A family with an invalid name is left out (and logged).
    pub fn family(&mut self, name: &str, help: &str, kind: MetricKind) -> Family<'_> {
        let valid = valid_name(name, true);
        if valid {
            let help = help.replace('\\', "\\\\").replace('\n', "\\n");
            let kind = match kind {
                MetricKind::Gauge => "gauge",
                MetricKind::Counter => "counter",
            };
            let _ = writeln!(self.out, "# HELP {name} {help}");
            let _ = writeln!(self.out, "# TYPE {name} {kind}");
        } else {
            tracing::warn!(name, "metric with an invalid name left out");
        }
        Family {
            writer: self,
            name: name.to_owned(),
            valid,
        }
    }

    /// A family of one unlabelled gauge.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, MetricKind::Gauge)
            .sample(&[], value);
    }

    /// A family of one unlabelled counter.
    pub fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, MetricKind::Counter)
            .sample(&[], value);
    }

    /// The text so far.
    pub fn finish(self) -> String {
        self.out
    }
}

/// One family being written.
#[derive(Debug)]
pub struct Family<'a> {
    writer: &'a mut MetricsWriter,
    name: String,
    valid: bool,
}

impl Family<'_> {
    /// A sample with these labels (values escaped as the format wants;
    /// a label with an invalid name drops the sample).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        if !self.valid || labels.iter().any(|(name, _)| !valid_name(name, false)) {
            return self;
        }
        let out = &mut self.writer.out;
        out.push_str(&self.name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let value = value
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(out, "{name}=\"{value}\"");
            }
            out.push('}');
        }
        let _ = writeln!(out, " {}", number(value));
        self
    }
}

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// `GET /metrics`
pub(crate) async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let pbx = &shared.pbx;
    let stats = pbx.stats();
    let mut out = MetricsWriter::default();
    out.gauge(
        "trunkline_up",
        "1 while the node takes calls, 0 while it drains.",
        flag(!pbx.draining()),
    );
    out.gauge(
        "trunkline_uptime_seconds",
        "Seconds since the PBX started.",
        pbx.uptime().as_secs_f64().floor(),
    );
    out.gauge(
        "trunkline_active_calls",
        "Calls in progress (trying, ringing or answered).",
        stats.active_calls as f64,
    );
    out.counter(
        "trunkline_calls_total",
        "Calls accepted since the PBX started.",
        stats.calls as f64,
    );
    out.gauge(
        "trunkline_calls_per_second",
        "Calls started per second over the last minute.",
        shared.calls_per_second(stats.calls),
    );
    out.gauge(
        "trunkline_dialogs",
        "SIP dialogs of calls in progress.",
        stats.dialogs as f64,
    );
    out.gauge(
        "trunkline_registrations",
        "Registered contact bindings (lapsed ones until the next sweep).",
        pbx.registrations() as f64,
    );
    let trunks = pbx.trunk_statuses();
    let mut family = out.family(
        "trunkline_trunk_registered",
        "1 while the PBX holds a registration with the trunk.",
        MetricKind::Gauge,
    );
    for trunk in &trunks {
        family.sample(&[("trunk", &trunk.name)], flag(trunk.registered));
    }
    if let Some(load) = load_average() {
        out.gauge("trunkline_load1", "The 1-minute load average.", load);
    }
    for source in &shared.metrics {
        source.write(&mut out);
    }
    let mut response = out.finish().into_response();
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escapes() {
        let mut out = MetricsWriter::default();
        out.counter("a_total", "Line one\nline two.", 3.0);
        out.family("b", "B.", MetricKind::Gauge)
            .sample(&[("trunk", "x\"y\\z\nw")], 0.5)
            .sample(&[("trunk", "t"), ("side", "a")], f64::INFINITY)
            .sample(&[("bad-label", "v")], 1.0);
        out.gauge("9bad", "left out", 1.0);
        assert_eq!(
            out.finish(),
            "# HELP a_total Line one\\nline two.\n# TYPE a_total counter\na_total 3\n\
             # HELP b B.\n# TYPE b gauge\nb{trunk=\"x\\\"y\\\\z\\nw\"} 0.5\n\
             b{trunk=\"t\",side=\"a\"} +Inf\n"
        );
    }
}
