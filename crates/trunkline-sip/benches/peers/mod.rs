//! Adapters for the other Rust SIP parsers, each doing the bench's work
//! through that crate's own public API.

use bytes::Bytes;

/// The routing headers, read by every parser in the comparison.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Routing {
    pub(crate) via_branch: String,
    pub(crate) from_tag: String,
    pub(crate) to_tag: Option<String>,
    pub(crate) call_id: String,
    pub(crate) cseq: u32,
    pub(crate) cseq_method: String,
    pub(crate) contact_uri: String,
    pub(crate) content_length: usize,
}

type Route = fn(&Bytes) -> Routing;
type RouteSum = fn(&Bytes) -> usize;

/// `(name, route, route_sum)` for each peer.
pub(crate) const ALL: &[(&str, Route, RouteSum)] = &[];
