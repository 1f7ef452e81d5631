//! SIP over WebSocket (RFC 7118): the `sip` subprotocol, one SIP message
//! per WebSocket message, plain or over TLS.

use super::stream::Side;
use super::{Counters, HANDSHAKE_TIMEOUT, Shared, WRITE_TIMEOUT};
use crate::peer::{Peer, Transport};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::{WebSocketStream, accept_hdr_async_with_config, client_async_with_config};
use trunkline_sip::{Message, reject_malformed};

const SUBPROTOCOL: &str = "sip";

/// The WebSocket handshake on `stream`, then the connection.
pub(super) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    peer: Peer,
    stream: S,
    queue: mpsc::Receiver<Bytes>,
    side: Side,
) {
    let max = shared.config.max_message_size;
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let handshake = async {
        match side {
            Side::Server => accept_hdr_async_with_config(stream, require_sip, Some(config))
                .await
                .ok(),
            Side::Client => {
                let scheme = if peer.transport == Transport::Wss {
                    "wss"
                } else {
                    "ws"
                };
                let mut request = format!("{scheme}://{}/", peer.addr)
                    .into_client_request()
                    .ok()?;
                request.headers_mut().insert(
                    "Sec-WebSocket-Protocol",
                    HeaderValue::from_static(SUBPROTOCOL),
                );
                client_async_with_config(request, stream, Some(config))
                    .await
                    .ok()
                    .map(|(ws, _)| ws)
            }
        }
    };
    if let Ok(Some(ws)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        serve(shared, peer, ws, queue).await;
    }
}

/// RFC 7118 §4.1: a server accepts only the `sip` subprotocol, and says so.
// The signature is tungstenite's handshake callback.
#[allow(clippy::result_large_err)]
fn require_sip(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let offered = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case(SUBPROTOCOL));
    if !offered {
        let mut refusal = ErrorResponse::new(Some("the sip subprotocol is required".into()));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(refusal);
    }
    response.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    Ok(response)
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    peer: Peer,
    mut ws: WebSocketStream<S>,
    mut queue: mpsc::Receiver<Bytes>,
) {
    let config = &shared.config;
    let counters = &shared.counters;
    let stop = shared.stopped();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            frame = ws.next() => {
                let bytes = match frame {
                    Some(Ok(WsMessage::Text(text))) => Bytes::from(text),
                    Some(Ok(WsMessage::Binary(bytes))) => bytes,
                    // The library queues the pong and sends it as it reads on.
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => continue,
                    Some(Err(WsError::Capacity(_))) => {
                        // Over the size limit: refused before it was
                        // buffered whole, and the connection with it.
                        Counters::count(&counters.malformed);
                        return;
                    }
                    Some(Ok(WsMessage::Close(_)) | Err(_)) | None => return,
                };
                match Message::parse(bytes.clone()) {
                    Ok(message) => shared.deliver(message, peer),
                    Err(error) => {
                        Counters::count(&counters.malformed);
                        if let Some(response) = reject_malformed(&bytes, &error)
                            && !send(&mut ws, response).await
                        {
                            return;
                        }
                    }
                }
            }
            next = queue.recv() => {
                let Some(bytes) = next else { return };
                if !send(&mut ws, bytes).await {
                    return;
                }
                Counters::count(&counters.sent);
            }
            // Restarted by every message read or written above.
            () = tokio::time::sleep(config.idle_timeout) => return,
            () = &mut stop => return,
        }
    }
}

/// Sends one SIP message; `false` if the connection failed or the peer did
/// not read it within [`WRITE_TIMEOUT`].
async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    bytes: Bytes,
) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, ws.send(frame_of(bytes))).await,
        Ok(Ok(()))
    )
}

/// A SIP message as a WebSocket message: text when it is UTF-8, as SIP
/// nearly always is, binary otherwise (RFC 7118 §5.1).
fn frame_of(bytes: Bytes) -> WsMessage {
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => WsMessage::Text(text),
        Err(_) => WsMessage::Binary(bytes),
    }
}
