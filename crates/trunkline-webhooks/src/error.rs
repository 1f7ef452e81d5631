//! The crate's one error type.

use std::path::PathBuf;
use std::time::Duration;

/// What can go wrong configuring a hook, sending a request, or keeping the
/// outbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A hook's URL is not an `http://` or `https://` URL with a host.
    #[error("webhook URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A hook's static header has an invalid name or value.
    #[error("webhook header {name:?}: {reason}")]
    InvalidHeader {
        /// The header name as configured.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS client could not be set up.
    #[error("TLS client setup: {0}")]
    Tls(#[from] rustls::Error),
    /// The receiver did not answer in time.
    #[error("{url}: no answer within {timeout:?}")]
    Timeout {
        /// The hook's URL.
        url: String,
        /// The hook's timeout.
        timeout: Duration,
    },
    /// The request failed before an answer: no connection, a TLS failure,
    /// a broken or oversized answer.
    #[error("{url}: {source}")]
    Transport {
        /// The hook's URL.
        url: String,
        /// What failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The receiver answered with a status other than 2xx.
    #[error("{url} answered {status}")]
    Status {
        /// The hook's URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The router's 2xx answer is not a routing decision.
    #[error("{url}: the answer is not a routing decision: {source}")]
    Decision {
        /// The router's URL.
        url: String,
        /// Why it did not parse.
        source: serde_json::Error,
    },
    /// A payload could not be written as JSON.
    #[error("writing a payload as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A CDR push's recording could not be read.
    #[error("the recording {path:?} cannot be read: {source}")]
    Recording {
        /// The WAV file's path.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The outbox's database failed.
    #[error("webhook outbox database ({context}): {source}")]
    Database {
        /// What the outbox was doing.
        context: &'static str,
        /// SQLite's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The outbox database was written by a newer build.
    #[error("webhook outbox schema version {found}; this build knows {known}")]
    Schema {
        /// The version in the file.
        found: i64,
        /// The version this build writes.
        known: i64,
    },
    /// The outbox holds as many deliveries as it may; the delivery was
    /// refused, not stored.
    #[error("the webhook outbox is full ({max_rows} deliveries); a delivery to {hook} was refused")]
    OutboxFull {
        /// The hook the refused delivery was for.
        hook: String,
        /// The outbox's limit.
        max_rows: u64,
    },
    /// No hook of that name is configured in the outbox.
    #[error("no webhook named {0:?} is configured")]
    UnknownHook(String),
    /// The outbox's background work stopped (the runtime is shutting
    /// down).
    #[error("the webhook outbox has stopped")]
    Stopped,
}

impl Error {
    /// Whether retrying cannot help: a 4xx answer other than 408 (Request
    /// Timeout) and 429 (Too Many Requests), which say "later", or a
    /// recording that cannot be read. Timeouts, transport failures and
    /// 5xx may pass.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Status { status, .. } => {
                (400..500).contains(status) && !matches!(status, 408 | 429)
            }
            Error::Recording { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn database(context: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |source| Error::Database {
            context,
            source: Box::new(source),
        }
    }
}
