//! Where calls go. **This module is the seam trunkline-engine replaces.**
//!
//! Until the engine lands Trunkline routes no call: every new INVITE is
//! answered 480 Temporarily Unavailable. Everything the SIP side receives
//! except REGISTER, out-of-dialog OPTIONS and INVITEs refused during
//! shutdown comes here (see `sip::serve`), so the engine takes over by
//! replacing [`handle`] with its own dispatch and [`active`] with its call
//! table's size; nothing else in the binary changes.

use crate::sip::respond;
use trunkline_sip::{Method, StatusCode};
use trunkline_transaction::{Endpoint, EndpointEvent};

/// Calls in progress, which a graceful shutdown waits for. None until the
/// engine routes calls.
pub(crate) fn active() -> usize {
    0
}

/// Takes one event of the SIP endpoint that belongs to calls.
pub(crate) fn handle(endpoint: &Endpoint, event: EndpointEvent) {
    let EndpointEvent::Request {
        tx: Some(tx),
        request,
        ..
    } = event
    else {
        // ACKs of 2xx, CANCELs matched, unacknowledged 2xx, ended dialogs
        // and stray 2xx all concern calls this PBX never answered 2xx to:
        // there is nothing to do.
        return;
    };
    let status = if request.to_tag().is_some() {
        // There are no dialogs yet, so an in-dialog request is for one we
        // do not know (RFC 3261 §12.2.2).
        StatusCode::CALL_OR_TRANSACTION_DOES_NOT_EXIST
    } else if request.method() == Some(&Method::Invite) {
        // ENGINE: route the call here. Until then, nobody can be reached.
        StatusCode::TEMPORARILY_UNAVAILABLE
    } else {
        StatusCode::METHOD_NOT_ALLOWED
    };
    respond(endpoint, tx, &request, status);
}
