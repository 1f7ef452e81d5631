//! `rvoip-sip-core` 0.4: `parse_message` (every header parsed into its
//! typed form up front), then the `Message` accessors and `typed_header`.

use super::Routing;
use bytes::Bytes;
use rvoip_sip_core::parse_message;
use rvoip_sip_core::types::{CSeq, Via, contact::Contact};
use std::hint::black_box;

/// Parses with rvoip-sip-core and reads the routing headers as owned values.
pub(crate) fn route(raw: &Bytes) -> Routing {
    let m = parse_message(raw).expect("rvoip parses");
    let via: &Via = m.typed_header().expect("Via");
    let cseq: &CSeq = m.typed_header().expect("CSeq");
    let contact: &Contact = m.typed_header().expect("Contact");
    Routing {
        via_branch: via.branch().expect("branch").to_string(),
        from_tag: m
            .from()
            .and_then(|f| f.tag())
            .expect("From tag")
            .to_string(),
        to_tag: m.to().expect("To").tag().map(str::to_string),
        call_id: m.call_id().expect("Call-ID").as_str().to_string(),
        cseq: cseq.seq,
        cseq_method: cseq.method.to_string(),
        contact_uri: contact.address().expect("Contact address").uri.to_string(),
        content_length: m.content_length().expect("Content-Length") as usize,
    }
}

/// The same reads without building strings.
pub(crate) fn route_sum(raw: &Bytes) -> usize {
    let m = parse_message(raw).expect("rvoip parses");
    let via: &Via = m.typed_header().expect("Via");
    let cseq: &CSeq = m.typed_header().expect("CSeq");
    let contact: &Contact = m.typed_header().expect("Contact");
    black_box((
        &cseq.method,
        &contact.address().expect("Contact address").uri,
    ));
    via.branch().map_or(0, str::len)
        + m.from().and_then(|f| f.tag()).map_or(0, str::len)
        + m.to().and_then(|t| t.tag()).map_or(0, str::len)
        + m.call_id().map_or(0, |c| c.as_str().len())
        + cseq.seq as usize
        + m.content_length().unwrap_or(0) as usize
}
