//! The HTTP router contract: one POST per incoming INVITE, answered with a
//! routing decision.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use trunkline_cdr::Direction;

/// What the PBX asks the router about an incoming INVITE.
///
/// ```json
/// {"call_id":"a84b4c76e66710@1.2.3.4","from":"<sip:1001@pbx.com>;tag=1928301774",
///  "to":"<sip:1002@pbx.com>","source_addr":"1.2.3.4:5060","direction":"internal",
///  "method":"INVITE","uri":"sip:1002@pbx.com","headers":{"User-Agent":"MicroSIP/3.21.3"},
///  "body":"v=0\r\n…"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RouterRequest {
    /// The INVITE's Call-ID.
    pub call_id: String,
    /// The From header's value, as received: `<sip:1001@pbx.com>;tag=…`.
    pub from: String,
    /// The To header's value, as received.
    pub to: String,
    /// Where the INVITE came from: `1.2.3.4:5060`.
    pub source_addr: SocketAddr,
    /// Which way the call crosses the PBX, as far as the PBX can tell
    /// before routing: `inbound` (from a trunk), `outbound` (a local user
    /// calling out) or `internal`.
    pub direction: Direction,
    /// The request method: `INVITE`.
    pub method: String,
    /// The Request-URI.
    pub uri: String,
    /// The INVITE's headers by name, as received; a header that appears
    /// more than once has its values joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The INVITE's body (the caller's SDP offer), empty if it had none.
    pub body: String,
}

/// What the router decided.
///
/// Only `action` is required; the other fields, when absent, leave the
/// PBX's defaults for the route in force. Fields the PBX does not know are
/// ignored, so routers written for other PBXs work unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub struct RouterDecision {
    /// What to do with the call.
    pub action: RouterAction,
    /// Where to send it (`forward`): SIP URIs such as
    /// `sip:1001@192.168.1.50:5060`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// How to ring several targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Whether to record the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<bool>,
    /// Seconds to ring before giving up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// Whether the PBX relays the media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_proxy: Option<MediaProxy>,
    /// Headers to add to the forwarded INVITE: `{"X-Call-Reason": "…"}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// The router's verdict on a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RouterAction {
    /// Ring the `targets`.
    Forward,
    /// Refuse the call.
    Reject,
    /// Stop handling the call at once, as on an error.
    Abort,
    /// Refuse the call and mark it as spam.
    Spam,
    /// The router has no opinion: the PBX routes the call by its own
    /// rules, as it does when the router cannot be reached.
    #[default]
    NotHandled,
}

/// How several targets ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// All at once; the first to answer takes the call.
    Parallel,
    /// One after another, in the order given.
    Sequential,
}

/// Whether the PBX anchors (relays) the call's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaProxy {
    /// The PBX decides (it relays when recording or when a party is
    /// behind NAT).
    Auto,
    /// Always relay.
    Always,
    /// Never relay: the phones send media to each other.
    None,
    /// Relay only for parties behind NAT.
    Nat,
}
