//! The configuration file: its schema with the documented defaults
//! (docs/configuration.md), parsing with errors that name the key, and the
//! checks across keys (`validate`).
//!
//! Every section and key has a default, so an empty file is valid; the
//! built-in configuration ([`DEFAULT`]) spells those defaults out and adds
//! the two demo extensions, and a test holds the two to each other.

mod validate;
mod values;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
pub(crate) use values::{Parsed, Pattern};

/// The configuration `trunkline` runs when given no `--config`.
pub(crate) const DEFAULT: &str = include_str!("../default.toml");

/// The whole file.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    pub(crate) sip: Sip,
    pub(crate) http: Http,
    pub(crate) api: Api,
    pub(crate) ami: Ami,
    pub(crate) data: Data,
    pub(crate) registrar: Registrar,
    pub(crate) media: Media,
    pub(crate) recording: Recording,
    pub(crate) cdr: Cdr,
    pub(crate) callrecord: Option<CallRecord>,
    pub(crate) proxy: Proxy,
    pub(crate) shutdown: Shutdown,
    pub(crate) calls: Calls,
    pub(crate) extensions: Vec<Extension>,
    pub(crate) groups: Vec<Group>,
    pub(crate) routes: Vec<Route>,
    pub(crate) trunks: Vec<Trunk>,
}

/// `[sip]`: where SIP is served and the authentication realm.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Sip {
    pub(crate) listen: Vec<Listen>,
    pub(crate) realm: String,
    pub(crate) tls: Option<Tls>,
}

impl Default for Sip {
    fn default() -> Self {
        let address = Parsed(SocketAddr::from((Ipv4Addr::LOCALHOST, 5060)));
        Sip {
            listen: vec![
                Listen {
                    transport: TransportName::Udp,
                    address,
                },
                Listen {
                    transport: TransportName::Tcp,
                    address,
                },
            ],
            // RFC 6761 reserves `.localhost` for loopback: it can never be
            // somebody else's domain, and the default serves loopback only.
            realm: "trunkline.localhost".into(),
            tls: None,
        }
    }
}

/// One `[[sip.listen]]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Listen {
    pub(crate) transport: TransportName,
    pub(crate) address: Parsed<SocketAddr>,
}

/// A SIP transport as the file names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TransportName {
    // As `trunkline_transaction::Transport`, which is not serde.
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl TransportName {
    /// Whether the listener needs `[sip.tls]`.
    pub(crate) fn is_secure(self) -> bool {
        matches!(self, TransportName::Tls | TransportName::Wss)
    }
}

impl fmt::Display for TransportName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportName::Udp => "udp",
            TransportName::Tcp => "tcp",
            TransportName::Tls => "tls",
            TransportName::Ws => "ws",
            TransportName::Wss => "wss",
        })
    }
}

/// `[sip.tls]`: the certificate of TLS and WSS listeners.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tls {
    pub(crate) certificate: PathBuf,
    pub(crate) private_key: PathBuf,
}

/// `[http]`: the HTTP API.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Http {
    pub(crate) address: Parsed<SocketAddr>,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            address: Parsed(SocketAddr::from((Ipv4Addr::LOCALHOST, 8080))),
        }
    }
}

/// `[api]`: who may use the HTTP API.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Api {
    /// None: only the health check answers.
    pub(crate) keys: Vec<trunkline_api::ApiKey>,
    /// The live events kept for clients that reconnect with `?since=`.
    pub(crate) events_retention: usize,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            keys: Vec::new(),
            events_retention: trunkline_api::events::DEFAULT_RETENTION,
        }
    }
}

/// `[ami]`: the addresses the `/ami/v1/` routes answer.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Ami {
    pub(crate) allows: Vec<Parsed<ipnet::IpNet>>,
}

impl Default for Ami {
    fn default() -> Self {
        Ami {
            allows: trunkline_api::default_ami_allows()
                .into_iter()
                .map(Parsed)
                .collect(),
        }
    }
}

/// `[data]`: where everything Trunkline writes lives.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Data {
    pub(crate) dir: PathBuf,
}

impl Default for Data {
    fn default() -> Self {
        Data {
            dir: "trunkline-data".into(),
        }
    }
}

/// `[registrar]`: registration expiry rules and digest algorithms.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Registrar {
    pub(crate) min_expires: u32,
    pub(crate) max_expires: u32,
    pub(crate) default_expires: u32,
    pub(crate) max_contacts: usize,
    pub(crate) nonce_lifetime_secs: u64,
    pub(crate) algorithms: Vec<DigestAlgorithm>,
}

impl Default for Registrar {
    fn default() -> Self {
        Registrar {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 10,
            nonce_lifetime_secs: 300,
            algorithms: vec![DigestAlgorithm::Md5, DigestAlgorithm::Sha256],
        }
    }
}

/// A digest algorithm, spelled as in the `algorithm=` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub(crate) enum DigestAlgorithm {
    // As `trunkline_registrar::Algorithm`, which is not serde.
    #[serde(rename = "MD5")]
    Md5,
    #[serde(rename = "SHA-256")]
    Sha256,
}

/// `[media]`: the RTP relay's addresses and when calls go through it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Media {
    pub(crate) address: Parsed<IpAddr>,
    pub(crate) rtp_port_min: u16,
    pub(crate) rtp_port_max: u16,
    pub(crate) media_proxy: MediaProxy,
}

impl Default for Media {
    fn default() -> Self {
        Media {
            address: Parsed(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            // The relay's own default range (trunkline-media RelayConfig).
            rtp_port_min: 20000,
            rtp_port_max: 29999,
            media_proxy: MediaProxy::Auto,
        }
    }
}

/// When a call's media is anchored through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MediaProxy {
    /// When the engine decides it is needed (NAT, recording, SRTP to RTP).
    #[default]
    Auto,
    /// On every call.
    Always,
    /// Never: the phones send RTP to each other.
    #[serde(rename = "none")]
    Off,
    /// Only when a party appears to be behind NAT.
    Nat,
}

/// `[recording]`: call recordings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Recording {
    pub(crate) enabled: bool,
    pub(crate) dir: PathBuf,
}

impl Default for Recording {
    fn default() -> Self {
        Recording {
            enabled: false,
            dir: "recordings".into(),
        }
    }
}

/// `[cdr]`: where call detail records are stored.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Cdr {
    #[serde(rename = "type")]
    pub(crate) kind: CdrKind,
    pub(crate) path: PathBuf,
}

impl Default for Cdr {
    fn default() -> Self {
        Cdr {
            kind: CdrKind::Sqlite,
            path: "cdr.sqlite".into(),
        }
    }
}

/// The CDR store. PostgreSQL joins SQLite when trunkline-cdr has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CdrKind {
    #[default]
    Sqlite,
}

/// `[callrecord]`: each call's record pushed to an HTTP receiver once
/// stored (through the outbox).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CallRecord {
    #[serde(rename = "type")]
    pub(crate) kind: CallRecordKind,
    pub(crate) url: String,
    #[serde(default = "yes")]
    pub(crate) with_media: bool,
    pub(crate) secret: Option<String>,
    #[serde(default = "default_hook_timeout")]
    pub(crate) timeout_ms: u64,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
}

/// Where records are pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CallRecordKind {
    /// `multipart/form-data` POSTs (docs/webhooks.md).
    Http,
}

fn yes() -> bool {
    true
}

fn default_hook_timeout() -> u64 {
    5000
}

/// `[proxy]`: how calls and registrations reach integrators.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Proxy {
    pub(crate) http_router: Option<HttpRouter>,
    pub(crate) locator_webhook: Option<LocatorWebhook>,
}

/// `[proxy.http_router]`: asked where each call goes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HttpRouter {
    pub(crate) url: String,
    #[serde(default = "yes")]
    pub(crate) fallback_to_static: bool,
    #[serde(default = "default_hook_timeout")]
    pub(crate) timeout_ms: u64,
    pub(crate) secret: Option<String>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
}

/// `[proxy.locator_webhook]`: told of registrations.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LocatorWebhook {
    pub(crate) url: String,
    #[serde(default = "all_events")]
    pub(crate) events: Vec<RegistrationEventName>,
    pub(crate) secret: Option<String>,
    #[serde(default = "default_hook_timeout")]
    pub(crate) timeout_ms: u64,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
}

/// A registration event's name, as the locator webhook's `event` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RegistrationEventName {
    Registered,
    Unregistered,
    Offline,
}

fn all_events() -> Vec<RegistrationEventName> {
    vec![
        RegistrationEventName::Registered,
        RegistrationEventName::Unregistered,
        RegistrationEventName::Offline,
    ]
}

/// `[shutdown]`: graceful shutdown on SIGTERM or Ctrl-C.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Shutdown {
    pub(crate) drain_timeout_secs: u64,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            drain_timeout_secs: 30,
        }
    }
}

/// `[calls]`: how calls between extensions ring.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Calls {
    pub(crate) ring_timeout_secs: u64,
}

impl Default for Calls {
    fn default() -> Self {
        Calls {
            ring_timeout_secs: 60,
        }
    }
}

/// One `[[extensions]]` entry: a phone account.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Extension {
    pub(crate) number: String,
    pub(crate) password: Option<String>,
    pub(crate) ha1: Option<String>,
    pub(crate) display_name: Option<String>,
}

/// One `[[groups]]` entry: extensions a route can ring together.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Group {
    pub(crate) name: String,
    pub(crate) members: Vec<String>,
}

/// One `[[routes]]` entry: dialled numbers it takes, where they go.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Route {
    pub(crate) name: String,
    #[serde(rename = "match")]
    pub(crate) matches: Match,
    pub(crate) rewrite: Option<String>,
    pub(crate) to: Target,
    #[serde(default)]
    pub(crate) strategy: Strategy,
    #[serde(default = "default_ring_timeout")]
    pub(crate) ring_timeout_secs: u32,
    pub(crate) record: Option<bool>,
    pub(crate) media_proxy: Option<MediaProxy>,
}

fn default_ring_timeout() -> u32 {
    30
}

/// Which dialled numbers a route takes.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Match {
    /// Numbers starting with this; `""` takes every number.
    Prefix(String),
    /// Numbers this regular expression matches as a whole.
    Regex(Pattern),
}

/// Where a route sends a call.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Target {
    /// An extension's registered phones.
    Extension(String),
    /// A group's members.
    Group(String),
    /// A trunk.
    Trunk(String),
}

/// How the phones a target stands for are rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Strategy {
    /// All at once; the first to answer wins.
    #[default]
    Parallel,
    /// One after another, on to the next on failure or ring timeout.
    Sequential,
}

/// One `[[trunks]]` entry: a carrier or another PBX.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Trunk {
    pub(crate) name: String,
    pub(crate) uri: String,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<String>,
    #[serde(default)]
    pub(crate) register: bool,
    #[serde(default)]
    pub(crate) inbound_acl: Vec<Parsed<ipnet::IpNet>>,
    #[serde(default)]
    pub(crate) did: BTreeMap<String, String>,
}

/// A fault in the file, named by its key path (`sip.listen[0].address`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// The key path; empty when the file is not TOML at all.
    pub(crate) key: String,
    pub(crate) message: String,
    /// Where the parser found it, when it knows (1-based).
    pub(crate) line: Option<usize>,
}

impl ConfigError {
    fn new(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.into(),
            message: message.into(),
            line: None,
        }
    }

    fn from_toml(key: String, error: &toml::de::Error, text: &str) -> ConfigError {
        let line = error.span().map(|span| {
            let before = text.get(..span.start).unwrap_or(text);
            before.matches('\n').count() + 1
        });
        ConfigError {
            key,
            message: error.message().trim_end().to_owned(),
            line,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.key.is_empty(), self.line) {
            (true, Some(line)) => write!(f, "line {line}: {}", self.message),
            (true, None) => f.write_str(&self.message),
            (false, Some(line)) => write!(f, "{}: {} (line {line})", self.key, self.message),
            (false, None) => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

impl Config {
    /// Reads and checks a configuration: every fault found, each naming
    /// its key. A file that does not deserialize stops at the first fault
    /// (serde knows no more); one that does is checked whole.
    pub(crate) fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
        let deserializer = toml::Deserializer::parse(text)
            .map_err(|e| vec![ConfigError::from_toml(String::new(), &e, text)])?;
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let key = e.path().to_string();
            // serde_path_to_error says `.` for the root.
            let key = if key == "." { String::new() } else { key };
            vec![ConfigError::from_toml(key, e.inner(), text)]
        })?;
        let errors = validate::check(&config);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    /// Every fault the checks across keys find in a configuration put
    /// together in code (the file's with the console's entries).
    pub(crate) fn check(&self) -> Vec<ConfigError> {
        validate::check(self)
    }

    /// The console's database: always under `data.dir`.
    pub(crate) fn console_path(&self) -> PathBuf {
        self.data.dir.join("console.sqlite")
    }

    /// The CDR database file: relative paths are under `data.dir`.
    pub(crate) fn cdr_path(&self) -> PathBuf {
        self.data.dir.join(&self.cdr.path)
    }

    /// The webhooks' outbox: always under `data.dir`.
    pub(crate) fn outbox_path(&self) -> PathBuf {
        self.data.dir.join("outbox.sqlite")
    }

    /// The recordings directory: relative paths are under `data.dir`.
    pub(crate) fn recording_dir(&self) -> PathBuf {
        self.data.dir.join(&self.recording.dir)
    }
}

#[cfg(test)]
mod tests;
