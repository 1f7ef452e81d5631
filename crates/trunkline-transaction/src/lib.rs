//! SIP transactions and dialogs for Trunkline.
//!
//! [`Transactions`] is the RFC 3261 §17 transaction layer, with the RFC 6026
//! fixes, as a sans-IO state machine in the manner of `quinn-proto`: the
//! caller feeds it received messages and the current time
//! (`handle_message`, `handle_timeout`) and takes out what it produces
//! (`poll_transmit`, `poll_event`, `poll_timeout`). It never reads a clock
//! and never touches a socket, so tests drive it with a virtual clock.
//!
//! With the `runtime` feature (on by default), [`transport`] is the tokio
//! glue — UDP, TCP, TLS and WebSocket listeners that turn bytes into
//! messages and [`Transmit`]s into bytes — and [`Endpoint`] runs the layer
//! over them, with its timers, for applications.

#![forbid(unsafe_code)]

mod config;
mod dialog;
#[cfg(feature = "runtime")]
mod endpoint;
mod key;
mod layer;
mod peer;
#[cfg(feature = "runtime")]
pub mod transport;

pub use config::Timers;
pub use dialog::{Dialog, DialogId, DialogState};
#[cfg(feature = "runtime")]
pub use endpoint::{ClientEvent, ClientTransaction, Endpoint, EndpointConfig, EndpointEvent};
pub use layer::{ClientTxId, Event, ServerTxId, Stats, Transactions};
pub use peer::{ConnectionId, Peer, Transmit, Transport};

use trunkline_sip::headers::MAGIC_COOKIE;

/// Why the transaction layer refused a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The transaction has ended (or never existed).
    #[error("no such transaction: it has ended")]
    UnknownTransaction,
    /// The dialog has ended (or never existed).
    #[error("no such dialog: it has ended")]
    UnknownDialog,
    /// A request was expected.
    #[error("not a request")]
    NotARequest,
    /// A response was expected.
    #[error("not a response")]
    NotAResponse,
    /// The message lacks what the operation needs.
    #[error("the message has no {0}")]
    Missing(&'static str),
    /// A client transaction with this branch and method is running.
    #[error("a transaction with this branch is already running")]
    DuplicateBranch,
    /// The operation does not fit the transaction's state.
    #[error("{0}")]
    State(&'static str),
    /// A message the layer built (ACK, CANCEL) did not build.
    #[error("building a message: {0}")]
    Build(#[source] trunkline_sip::Error),
}

/// A fresh RFC 3261 branch: the magic cookie and 64 random bits.
pub fn new_branch() -> String {
    format!("{MAGIC_COOKIE}{:016x}", rand::random::<u64>())
}

/// A fresh From or To tag: 64 random bits.
pub fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}
