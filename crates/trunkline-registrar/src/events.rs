//! Registration events, in the JSON shape the locator webhook publishes:
//! `{"event":"registered","timestamp":1708201234,"location":{"aor":
//! "sip:1001@pbx.com","destination":"1.2.3.4:12345","transport":"TLS",
//! "user_agent":"MicroSIP/3.21.3","expires":3600}}`.

use crate::locator::Binding;
use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// What happened to a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A new binding (a refresh of an existing one is not an event).
    Registered,
    /// The phone removed it (`Expires: 0`, `Contact: *`).
    Unregistered,
    /// It lapsed without a refresh.
    Offline,
}

/// One registration event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct RegistrationEvent {
    /// What happened.
    pub event: EventKind,
    /// When, in seconds since the Unix epoch.
    pub timestamp: u64,
    /// The binding.
    pub location: Location,
}

/// The binding an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Location {
    /// The address-of-record.
    pub aor: String,
    /// Where the phone is reached: the source address of its REGISTER.
    pub destination: String,
    /// The transport of that flow: `UDP`, `TCP`, `TLS`, `WS`, `WSS`.
    pub transport: String,
    /// The phone's User-Agent, if it sent one.
    pub user_agent: Option<String>,
    /// Seconds the binding was granted (0 once removed or lapsed).
    pub expires: u32,
}

impl RegistrationEvent {
    /// The event `kind` for `binding` at `now`.
    pub fn new(kind: EventKind, binding: &Binding, now: SystemTime) -> RegistrationEvent {
        RegistrationEvent {
            event: kind,
            timestamp: now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            location: Location {
                aor: binding.aor.clone(),
                destination: binding.flow.addr.to_string(),
                transport: binding.flow.transport.as_str().to_owned(),
                user_agent: binding.user_agent.clone(),
                expires: match kind {
                    EventKind::Registered => binding.remaining(now),
                    EventKind::Unregistered | EventKind::Offline => 0,
                },
            },
        }
    }
}
