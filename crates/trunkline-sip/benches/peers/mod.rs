//! Adapters for the other Rust SIP parsers, each doing the bench's work
//! through that crate's own public API: parse the whole message as a server
//! receives it (bytes in, request or response not known), then read the
//! routing headers through the crate's typed headers.

use bytes::Bytes;

mod ezk;
mod rsip_api;
mod rvoip;

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

impl Routing {
    /// The same values in a form every parser can match: parameter values
    /// such as `transport=udp` compare case-insensitively (RFC 3261
    /// §19.1.4) and rsip prints them in upper case; rsipstack drops
    /// `transport=udp`, the default, from Contact URIs.
    pub(crate) fn normalized(mut self) -> Self {
        self.contact_uri = self
            .contact_uri
            .to_ascii_lowercase()
            .replace(";transport=udp", "");
        self
    }
}

type Route = fn(&Bytes) -> Routing;
type RouteSum = fn(&Bytes) -> usize;

/// `(name, route, route_sum)` for each peer: `route` returns owned values
/// to check the adapter reads what Trunkline reads; `route_sum` does the
/// same reads without building strings, for timing.
pub(crate) const ALL: &[(&str, Route, RouteSum)] = &[
    ("rsip", rsip_api::rsip::route, rsip_api::rsip::route_sum),
    (
        "rsipstack",
        rsip_api::rsipstack::route,
        rsip_api::rsipstack::route_sum,
    ),
    ("ezk-sip-types", ezk::route, ezk::route_sum),
    ("rvoip-sip-core", rvoip::route, rvoip::route_sum),
];
