//! The SIP side: the endpoint's events dispatched to the registrar, to an
//! OPTIONS answer, or to the calls seam.

use crate::calls;
use crate::pbx::State;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::mpsc;
use trunkline_sip::{HeaderName, Message, Method, StatusCode};
use trunkline_transaction::{Endpoint, EndpointEvent, ServerTxId, new_tag};

/// The methods this PBX serves, for `Allow` headers.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER";

/// Serves the endpoint's events until the endpoint closes.
pub(crate) async fn serve(
    endpoint: Endpoint,
    mut events: mpsc::Receiver<EndpointEvent>,
    state: Arc<State>,
) {
    while let Some(event) = events.recv().await {
        let EndpointEvent::Request {
            tx: Some(tx),
            request,
            peer,
            dialog,
        } = event
        else {
            calls::handle(&endpoint, event);
            continue;
        };
        let new = request.to_tag().is_none();
        match request.method() {
            Some(Method::Register) => {
                // The registrar may wait on its user backend: one task per
                // REGISTER keeps the other requests moving.
                let endpoint = endpoint.clone();
                let state = state.clone();
                tokio::spawn(async move {
                    let handled = state
                        .registrar
                        .handle(SystemTime::now(), &request, peer)
                        .await;
                    if let Err(e) = endpoint.respond(tx, &handled.response) {
                        tracing::debug!("REGISTER answer: {e}");
                    }
                });
            }
            // Phones and trunks ping with OPTIONS to keep NAT bindings and
            // to see whether we are up.
            Some(Method::Options) if new => respond(&endpoint, tx, &request, StatusCode::OK),
            // Shutting down: new calls go elsewhere (RFC 3261 §21.5.4),
            // calls in progress keep their in-dialog requests.
            Some(Method::Invite) if new && state.is_draining() => {
                respond(&endpoint, tx, &request, StatusCode::SERVICE_UNAVAILABLE);
            }
            _ => calls::handle(
                &endpoint,
                EndpointEvent::Request {
                    tx: Some(tx),
                    request,
                    peer,
                    dialog,
                },
            ),
        }
    }
}

/// Answers `request` with `status` (and `Allow` on a 200 or 405). A
/// failure is only logged: the transaction may have ended meanwhile.
pub(crate) fn respond(endpoint: &Endpoint, tx: ServerTxId, request: &Message, status: StatusCode) {
    let mut response = request.response_to(status).to_tag(&new_tag());
    if status == StatusCode::METHOD_NOT_ALLOWED || status == StatusCode::OK {
        response = response.header(HeaderName::Allow, ALLOW);
    }
    let method = request.method().map_or("?", Method::as_str);
    match response.build() {
        Ok(response) => {
            if let Err(e) = endpoint.respond(tx, &response) {
                tracing::debug!("{} to {method}: {e}", status.as_u16());
            }
        }
        Err(e) => tracing::warn!("building the {} to {method}: {e}", status.as_u16()),
    }
}
