//! SIP over WebSocket (RFC 7118): the `sip` subprotocol, one SIP message
//! per WebSocket message, plain or over TLS.

use super::stream::Side;
use super::{Counters, Transports, stopped};
use crate::peer::Peer;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::{WebSocketStream, accept_hdr_async_with_config, client_async_with_config};
use trunkline_sip::{Message, reject_malformed};

const SUBPROTOCOL: &str = "sip";

/// The WebSocket handshake on `stream`, then the connection.
pub(super) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    transports: &Transports,
    peer: Peer,
    stream: S,
    queue: mpsc::Receiver<Bytes>,
    side: Side,
) {
    let max = transports.inner.config.max_message_size;
    let config = WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max));
    let handshake = async {
        match side {
            Side::Server => accept_hdr_async_with_config(stream, require_sip, Some(config))
                .await
                .ok(),
            Side::Client => {
                let scheme = if peer.transport == crate::Transport::Wss {
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
    let limit = std::time::Duration::from_secs(10);
    if let Ok(Some(ws)) = tokio::time::timeout(limit, handshake).await {
        serve(transports, peer, ws, queue).await;
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
    transports: &Transports,
    peer: Peer,
    mut ws: WebSocketStream<S>,
    mut queue: mpsc::Receiver<Bytes>,
) {
    let config = &transports.inner.config;
    let counters = &transports.inner.counters;
    let stop = stopped(transports.stopped());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            frame = ws.next() => {
                let bytes = match frame {
                    Some(Ok(WsMessage::Text(text))) => Bytes::from(text),
                    Some(Ok(WsMessage::Binary(bytes))) => bytes,
                    // Pings are answered by the library on the next write.
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => continue,
                    Some(Ok(WsMessage::Close(_)) | Err(_)) | None => return,
                };
                match Message::parse(bytes.clone()) {
                    Ok(message) => transports.deliver(message, peer),
                    Err(error) => {
                        Counters::count(&counters.malformed);
                        if let Some(response) = reject_malformed(&bytes, &error)
                            && ws.send(frame_of(response)).await.is_err()
                        {
                            return;
                        }
                    }
                }
            }
            next = queue.recv() => {
                let Some(bytes) = next else { return };
                if ws.send(frame_of(bytes)).await.is_err() {
                    return;
                }
                Counters::count(&counters.sent);
            }
            () = tokio::time::sleep(config.idle_timeout) => return,
            () = &mut stop => return,
        }
    }
}

/// A SIP message as a WebSocket message: text when it is UTF-8, as SIP
/// nearly always is, binary otherwise (RFC 7118 §5.1).
fn frame_of(bytes: Bytes) -> WsMessage {
    match Utf8Bytes::try_from(bytes.clone()) {
        Ok(text) => WsMessage::Text(text),
        Err(_) => WsMessage::Binary(bytes),
    }
}
