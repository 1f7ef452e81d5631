//! Accounts from an HTTP service, with the contract integrators already
//! serve: `GET {url}?{username_field}=1001&{realm_field}=pbx.com` answers
//! 200 `{"id":1001,"username":"1001","password":"…","display_name":"John
//! Doe","email":"john@pbx.com","allow_guest_calls":false}` (the password
//! plain or as HA1), or 403 `{"reason":"invalid_password","message":
//! "Account locked"}`; 404 means no such user. Answers are cached for a
//! short time.

use crate::digest::Secret;
use crate::users::{BackendError, Lookup, User, UserBackend};
use dashmap::DashMap;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Cache entries past which lapsed ones are swept before an insert.
const CACHE_SWEEP_AT: usize = 10_000;

/// Settings of the HTTP backend.
#[derive(Debug, Clone)]
pub struct HttpUsersConfig {
    /// The service URL, queried with GET.
    pub url: String,
    /// The query parameter carrying the user name. `u` by default.
    pub username_field: String,
    /// The query parameter carrying the realm. `r` by default.
    pub realm_field: String,
    /// How long a request may take. 2 s by default.
    pub timeout: Duration,
    /// How long an answer (user found, or unknown) is reused. 30 s by
    /// default; errors are never cached.
    pub cache_ttl: Duration,
}

impl HttpUsersConfig {
    /// `url` with the defaults.
    pub fn new(url: impl Into<String>) -> HttpUsersConfig {
        HttpUsersConfig {
            url: url.into(),
            username_field: "u".into(),
            realm_field: "r".into(),
            timeout: Duration::from_secs(2),
            cache_ttl: Duration::from_secs(30),
        }
    }
}

/// The 200 answer.
#[derive(Debug, Deserialize)]
struct Account {
    #[serde(default)]
    id: Option<serde_json::Value>,
    username: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    allow_guest_calls: bool,
}

/// The 403 answer.
#[derive(Debug, Deserialize)]
struct Refusal {
    reason: String,
    #[serde(default)]
    message: Option<String>,
}

/// The HTTP user backend.
#[derive(Debug, Clone)]
pub struct HttpUsers {
    config: HttpUsersConfig,
    client: reqwest::Client,
    cache: Arc<DashMap<(String, String), (Instant, Lookup)>>,
}

impl HttpUsers {
    /// A backend querying `config.url`. Fails if the TLS setup fails.
    pub fn new(config: HttpUsersConfig) -> Result<HttpUsers, BackendError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| BackendError(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.timeout)
            .build()
            .map_err(|e| BackendError(e.to_string()))?;
        Ok(HttpUsers {
            config,
            client,
            cache: Arc::default(),
        })
    }

    async fn fetch(&self, username: &str, realm: &str) -> Result<Lookup, BackendError> {
        let query = [
            (self.config.username_field.as_str(), username),
            (self.config.realm_field.as_str(), realm),
        ];
        let bad = |what: String| BackendError(format!("{}: {what}", self.config.url));
        let response = self
            .client
            .get(&self.config.url)
            .query(&query)
            .send()
            .await
            .map_err(|e| bad(e.to_string()))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| bad(e.to_string()))?;
        match status.as_u16() {
            200 => {
                let account: Account = serde_json::from_slice(&body)
                    .map_err(|e| bad(format!("a 200 whose body is not an account: {e}")))?;
                if account.username != username {
                    return Err(bad(format!(
                        "asked for {username}, answered {}",
                        account.username
                    )));
                }
                Ok(Lookup::Found(User {
                    secret: Secret::from_stored(account.password),
                    username: account.username,
                    display_name: account.display_name,
                    id: account.id.map(|id| match id {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    }),
                    email: account.email,
                    allow_guest_calls: account.allow_guest_calls,
                }))
            }
            403 => {
                let refusal: Refusal = serde_json::from_slice(&body)
                    .map_err(|e| bad(format!("a 403 without a reason: {e}")))?;
                let reason = match refusal.message {
                    Some(message) => format!("{}: {message}", refusal.reason),
                    None => refusal.reason,
                };
                Ok(Lookup::Refused { reason })
            }
            404 => Ok(Lookup::Unknown),
            other => Err(bad(format!("answered {other}"))),
        }
    }
}

impl UserBackend for HttpUsers {
    async fn lookup(&self, username: &str, realm: &str) -> Result<Lookup, BackendError> {
        let key = (username.to_owned(), realm.to_owned());
        if let Some(hit) = self.cache.get(&key)
            && hit.0.elapsed() < self.config.cache_ttl
        {
            return Ok(hit.1.clone());
        }
        let lookup = self.fetch(username, realm).await?;
        if !matches!(lookup, Lookup::Refused { .. }) {
            if self.cache.len() >= CACHE_SWEEP_AT {
                // Guessed user names must not grow the cache for ever.
                let ttl = self.config.cache_ttl;
                self.cache.retain(|_, (at, _)| at.elapsed() < ttl);
            }
            self.cache.insert(key, (Instant::now(), lookup.clone()));
        }
        Ok(lookup)
    }
}
