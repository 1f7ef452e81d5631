//! The HTTP side: `GET /ami/v1/health` for now (trunkline-api takes the
//! rest when it lands).

use crate::pbx::State;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A client that has not sent its request head by then is dropped, so idle
/// connections cannot pile up.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds `address` and serves it on a task; the bound address (port 0
/// picks one) and the task, to abort at shutdown.
pub(crate) async fn serve(
    address: SocketAddr,
    state: Arc<State>,
) -> std::io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, usually: pause rather than
                    // spin, and go on serving once some are free.
                    tracing::warn!("http accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let response = answer(&state, &request);
                    async move { Ok::<_, Infallible>(response) }
                });
                let served = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    tracing::debug!("http connection: {e}");
                }
            });
        }
    });
    Ok((bound, task))
}

fn answer(state: &State, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    if request.uri().path() != "/ami/v1/health" {
        return json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "not_found"}),
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = json(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": "method_not_allowed"}),
        );
        response
            .headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let draining = state.is_draining();
    let health = Health {
        status: if draining { "draining" } else { "ok" },
        uptime_seconds: state.started.elapsed().as_secs(),
        active_calls: state.active_calls(),
        // Bindings held, lapsed ones included until the next expiry sweep
        // (every few seconds): counting only live ones would copy them all.
        registrations: state.registrar.locator().len(),
        trunks: state.engine.trunk_statuses(),
        sip: {
            let (transactions, dialogs) = state.endpoint.load();
            SipTables {
                transactions,
                dialogs,
                call_dialogs: state.engine.stats().dialogs,
            }
        },
    };
    // A load balancer takes a draining node out on the status code alone.
    let status = if draining {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    json(status, &health)
}

/// The health document, fields in this order.
#[derive(Serialize)]
struct Health {
    status: &'static str,
    uptime_seconds: u64,
    active_calls: u64,
    registrations: usize,
    /// Registrations with trunks (only those that register).
    trunks: Vec<trunkline_engine::TrunkStatus>,
    sip: SipTables,
}

/// What the SIP stack holds; all three return to zero once nothing goes
/// on (transactions linger up to 32 s for late retransmissions).
#[derive(Serialize)]
struct SipTables {
    /// Live transactions.
    transactions: usize,
    /// Dialogs the transaction layer keeps.
    dialogs: usize,
    /// Dialogs the call engine routes to its calls.
    call_dialogs: u64,
}

fn json(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    // Serializing these plain structs and literals cannot fail.
    let body = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
