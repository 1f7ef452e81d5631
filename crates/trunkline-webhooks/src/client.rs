//! The HTTP client: hyper over rustls, one request per call, signed, with
//! the hook's timeout.

use crate::payload::DeliveryId;
use crate::router::{RouterDecision, RouterRequest};
use crate::signature::{DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use crate::{Error, Hook};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The most of an answer's body that is read: a routing decision is a few
/// hundred bytes, and other hooks' answers are ignored.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Sends webhook requests over HTTP/1.1, to `http://` and `https://` URLs.
/// Cheap to clone; clones share the connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Client {
    /// A client trusting the system's root certificates (rustls' ring
    /// provider, TLS 1.2 and 1.3).
    pub fn new() -> Result<Client, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Client::with_tls(tls))
    }

    /// A client with its own TLS settings: a private CA's roots, a client
    /// certificate.
    pub fn with_tls(tls: rustls::ClientConfig) -> Client {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Client {
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Asks the router `hook` how to route an incoming INVITE. One signed
    /// attempt within the hook's timeout, never queued nor retried: on any
    /// failure (no answer in time, a non-2xx, an answer that is not a
    /// decision) the error tells the engine to fall back to its own
    /// routes.
    pub async fn route(
        &self,
        hook: &Hook,
        request: &RouterRequest,
    ) -> Result<RouterDecision, Error> {
        let body = Bytes::from(serde_json::to_vec(request)?);
        let answer = self
            .post(hook, &DeliveryId::generate(), "application/json", body)
            .await?;
        serde_json::from_slice(&answer).map_err(|source| Error::Decision {
            url: hook.url().to_string(),
            source,
        })
    }

    /// POSTs `body` to `hook`, signed, and returns the 2xx answer's body.
    pub(crate) async fn post(
        &self,
        hook: &Hook,
        delivery: &DeliveryId,
        content_type: &str,
        body: Bytes,
    ) -> Result<Bytes, Error> {
        let url = hook.url().to_string();
        let transport = |source: Box<dyn std::error::Error + Send + Sync>| Error::Transport {
            url: url.clone(),
            source,
        };
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            .to_string();
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(hook.url().clone())
            .body(Full::new(body.clone()))
            .map_err(|e| transport(e.into()))?;
        let headers = request.headers_mut();
        // The hook's own headers first, so they cannot replace ours.
        headers.extend(hook.headers().clone());
        let text = |value: &str| HeaderValue::try_from(value).map_err(|e| transport(e.into()));
        headers.insert(CONTENT_TYPE, text(content_type)?);
        headers.insert(TIMESTAMP_HEADER, text(&timestamp)?);
        headers.insert(DELIVERY_HEADER, text(delivery.as_str())?);
        if let Some(secret) = hook.secret() {
            headers.insert(SIGNATURE_HEADER, text(&sign(secret, &timestamp, &body))?);
        }
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| transport(e.into()))?;
            let status = response.status();
            let answer = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(transport)?
                .to_bytes();
            if status.is_success() {
                Ok(answer)
            } else {
                Err(Error::Status {
                    url: url.clone(),
                    status: status.as_u16(),
                })
            }
        };
        tokio::time::timeout(hook.timeout(), exchange)
            .await
            .map_err(|_| Error::Timeout {
                url: url.clone(),
                timeout: hook.timeout(),
            })?
    }
}
