//! `GET /api/v1/events`: a subscription over a WebSocket, one text
//! message per event, with pings to keep it alive and a clean close
//! when the hub closes.

use super::{EventHub, EventType, Subscription};
use crate::Shared;
use crate::error::ApiError;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often the server pings an idle client.
const PING_EVERY: Duration = Duration::from_secs(30);

/// A client not heard from (not even a pong) for this long is gone.
const SILENCE_LIMIT: Duration = Duration::from_secs(75);

/// How long a closing handshake may take before the socket is dropped.
const CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// A client that takes no message for this long (its connection full) is
/// dropped; it reconnects with `since` to fetch what it missed.
const SEND_LIMIT: Duration = Duration::from_secs(30);

/// The largest message a client may send: it has nothing to say but
/// pongs and a close.
const CLIENT_MESSAGE_LIMIT: usize = 4096;

/// The query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Params {
    /// Replay the events after this one first.
    since: Option<u64>,
    /// Only these types, comma-separated.
    types: Option<String>,
    /// The API key, for a browser (checked with the others, by `auth`).
    #[serde(rename = "access_token")]
    _access_token: Option<String>,
}

/// The types of `?types=call,extension`.
fn types(list: &str) -> Result<Vec<EventType>, ApiError> {
    list.split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            EventType::from_name(name)
                .filter(|kind| {
                    matches!(
                        kind,
                        EventType::Call | EventType::Registration | EventType::Extension
                    )
                })
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "types: {name:?} is not call, registration or extension"
                    ))
                })
        })
        .collect()
}

/// `GET /api/v1/events`: upgrades to a WebSocket streaming the events.
pub(crate) async fn events(
    State(shared): State<Arc<Shared>>,
    params: Result<Query<Params>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Query(params) = match params {
        Ok(params) => params,
        Err(rejection) => return ApiError::from(rejection).into_response(),
    };
    // `?types=` with no type in it asks for no filter.
    let types = match params.types.as_deref().map(types).transpose() {
        Ok(types) => types.filter(|types| !types.is_empty()),
        Err(e) => return e.into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ApiError::bad_request(format!(
                "this route is a WebSocket ({})",
                rejection.body_text()
            ))
            .into_response();
        }
    };
    // Subscribed before the 101 goes out: once the client sees it,
    // nothing that happens is missed.
    let hub: &EventHub = &shared.events;
    let mut subscription = hub.subscribe(params.since);
    if let Some(types) = types {
        subscription = subscription.only(types);
    }
    let closing = hub.closing();
    upgrade
        .max_message_size(CLIENT_MESSAGE_LIMIT)
        .max_frame_size(CLIENT_MESSAGE_LIMIT)
        .on_upgrade(move |socket| stream(socket, subscription, closing))
}

/// Sends `subscription`'s deliveries until the client goes, falls
/// silent, or the hub closes.
async fn stream(
    mut socket: WebSocket,
    mut subscription: Subscription,
    mut closing: watch::Receiver<bool>,
) {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut heard = Instant::now();
    loop {
        if *closing.borrow_and_update() {
            // What happened before the close still goes out.
            for _ in 0..subscription.waiting() {
                let Some(delivery) = subscription.try_next() else {
                    break;
                };
                if !send(&mut socket, Message::Text(delivery.json())).await {
                    return;
                }
            }
            return close(socket, close_code::AWAY, "the PBX is shutting down").await;
        }
        tokio::select! {
            changed = closing.changed() => {
                if changed.is_err() {
                    return close(socket, close_code::AWAY, "the PBX is shutting down").await;
                }
            }
            incoming = socket.recv() => match incoming {
                // Anything the client sends shows it is there; what it
                // says is not read.
                Some(Ok(Message::Close(_))) => return finish(socket).await,
                Some(Ok(_)) => heard = Instant::now(),
                Some(Err(_)) | None => return,
            },
            _ = ping.tick() => {
                if heard.elapsed() >= SILENCE_LIMIT {
                    tracing::debug!("events client silent: dropped");
                    return;
                }
                if !send(&mut socket, Message::Ping(Bytes::new())).await {
                    return;
                }
            }
            delivery = subscription.next() => match delivery {
                Some(delivery) => {
                    if !send(&mut socket, Message::Text(delivery.json())).await {
                        return;
                    }
                }
                None => return close(socket, close_code::AWAY, "the event hub is gone").await,
            },
        }
    }
}

/// Sends `message`; whether it went within [`SEND_LIMIT`].
async fn send(socket: &mut WebSocket, message: Message) -> bool {
    match tokio::time::timeout(SEND_LIMIT, socket.send(message)).await {
        Ok(sent) => sent.is_ok(),
        Err(_) => {
            tracing::debug!("events client takes nothing: dropped");
            false
        }
    }
}

/// Starts the closing handshake and waits (briefly) for the client's
/// answer.
async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if tokio::time::timeout(CLOSE_LIMIT, socket.send(Message::Close(Some(frame))))
        .await
        .is_ok_and(|sent| sent.is_ok())
    {
        finish(socket).await;
    }
}

/// Reads until the socket ends, so that the closing handshake's last
/// frame goes out.
async fn finish(mut socket: WebSocket) {
    let _ = tokio::time::timeout(CLOSE_LIMIT, async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn types_are_the_event_kinds_a_client_can_pick() {
        assert_eq!(
            types("call, extension,").unwrap(),
            [EventType::Call, EventType::Extension]
        );
        assert_eq!(types("").unwrap(), []);
        for bad in ["gap", "lag", "calls", "call;registration"] {
            let error = types(bad).unwrap_err();
            assert_eq!(error.code(), "bad_request", "{bad}");
        }
    }
}
