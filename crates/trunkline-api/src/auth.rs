//! Who may call what: Bearer API keys with a scope, and the AMI's
//! address allow-list.

use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};
use subtle::ConstantTimeEq;

/// What a key may do. Each scope holds the ones before it:
/// `admin` ⊇ `control` ⊇ `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Look: call records, recordings, active calls, metrics.
    Read,
    /// Also act on calls (hang up, transfer, originate).
    Control,
    /// Also change the configuration and the node (reload, shutdown).
    Admin,
}

impl Scope {
    /// The name in the configuration and in errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Control => "control",
            Scope::Admin => "admin",
        }
    }
}

/// One configured API key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Who holds it, for logs and errors (never the key itself).
    pub name: String,
    /// The secret sent as `Authorization: Bearer {key}`.
    pub key: String,
    /// What it may do.
    pub scope: Scope,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("key", &"…")
            .field("scope", &self.scope)
            .finish()
    }
}

/// The key a request was made with, put in its extensions once checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's name.
    pub name: String,
    /// Its scope.
    pub scope: Scope,
}

/// The configured keys, kept as SHA-256 digests so that every comparison
/// takes the same time whatever the key's length or content.
#[derive(Debug, Clone, Default)]
pub(crate) struct Keys {
    keys: Vec<(Caller, [u8; 32])>,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl Keys {
    pub(crate) fn new(keys: &[ApiKey]) -> Keys {
        Keys {
            keys: keys
                .iter()
                .map(|k| {
                    let caller = Caller {
                        name: k.name.clone(),
                        scope: k.scope,
                    };
                    (caller, digest(&k.key))
                })
                .collect(),
        }
    }

    /// The key `presented` is, if any: every configured key is compared,
    /// each in constant time.
    pub(crate) fn find(&self, presented: &str) -> Option<&Caller> {
        let presented = digest(presented);
        let mut found = None;
        for (caller, key) in &self.keys {
            if bool::from(key.ct_eq(&presented)) {
                found = Some(caller);
            }
        }
        found
    }
}

/// The token of an `Authorization: Bearer …` header; for a WebSocket
/// upgrade without one, the `access_token` query parameter (RFC 6750
/// §2.3): a browser's WebSocket cannot send headers.
fn bearer(request: &Request) -> Result<&str, ApiError> {
    let missing = || ApiError::unauthorized("an API key is required: Authorization: Bearer {key}");
    let Some(value) = request.headers().get(AUTHORIZATION) else {
        return query_token(request).ok_or_else(missing);
    };
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}

/// `access_token` of a WebSocket upgrade's query.
fn query_token(request: &Request) -> Option<&str> {
    let upgrade = request.headers().get(axum::http::header::UPGRADE)?;
    if !upgrade.as_bytes().eq_ignore_ascii_case(b"websocket") {
        return None;
    }
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))
        .filter(|token| !token.is_empty())
}

/// What a group of routes asks of its callers.
#[derive(Clone)]
pub(crate) struct Guard {
    pub(crate) keys: Arc<Keys>,
    pub(crate) scope: Scope,
}

/// Lets the request through with a key of at least the guard's scope:
/// 401 without a known key, 403 with too small a scope.
pub(crate) async fn require_scope(
    State(guard): State<Guard>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match bearer(&request).map(|token| guard.keys.find(token)) {
        Ok(Some(caller)) => caller.clone(),
        Ok(None) => return ApiError::unauthorized("unknown API key").into_response(),
        Err(e) => return e.into_response(),
    };
    if caller.scope < guard.scope {
        return ApiError::forbidden(format!(
            "key {:?} has scope {}; this route needs {}",
            caller.name,
            caller.scope.as_str(),
            guard.scope.as_str()
        ))
        .into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The networks the AMI answers. Clones share one list: [`set`] replaces
/// it for every request from then on (a reload of `[ami] allows`).
///
/// [`set`]: AmiAllowList::set
#[derive(Debug, Clone)]
pub struct AmiAllowList(Arc<RwLock<Arc<[IpNet]>>>);

impl AmiAllowList {
    /// A list of `networks`.
    pub fn new(networks: Vec<IpNet>) -> AmiAllowList {
        AmiAllowList(Arc::new(RwLock::new(networks.into())))
    }

    /// Replaces the networks.
    pub fn set(&self, networks: Vec<IpNet>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = networks.into();
    }

    /// The networks now.
    pub fn get(&self) -> Vec<IpNet> {
        self.current().to_vec()
    }

    fn current(&self) -> Arc<[IpNet]> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn admits(&self, address: IpAddr) -> bool {
        // An IPv4 client of a dual-stack socket shows as ::ffff:a.b.c.d.
        let address = address.to_canonical();
        self.current().iter().any(|net| net.contains(&address))
    }
}

/// Lets the request through from an address the allow-list holds: 403
/// otherwise, and for a request whose peer is unknown.
pub(crate) async fn require_allowed(
    State(allows): State<AmiAllowList>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    match peer {
        Some(ip) if allows.admits(ip) => next.run(request).await,
        Some(ip) => {
            tracing::debug!(%ip, "AMI request from an address not allowed");
            ApiError::forbidden(format!("{ip} is not in the AMI allow-list")).into_response()
        }
        None => ApiError::forbidden("the client's address is unknown").into_response(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn scopes_hold_the_smaller_ones() {
        assert!(Scope::Admin > Scope::Control && Scope::Control > Scope::Read);
    }

    #[test]
    fn keys_are_found_by_their_whole_text() {
        let keys = Keys::new(&[
            ApiKey {
                name: "ops".into(),
                key: "k-admin-0123456789".into(),
                scope: Scope::Admin,
            },
            ApiKey {
                name: "crm".into(),
                key: "k-read-0123456789".into(),
                scope: Scope::Read,
            },
        ]);
        assert_eq!(keys.find("k-read-0123456789").unwrap().name, "crm");
        assert_eq!(keys.find("k-admin-0123456789").unwrap().scope, Scope::Admin);
        for wrong in [
            "",
            "k-read-012345678",
            "k-read-01234567890",
            "K-READ-0123456789",
        ] {
            assert!(keys.find(wrong).is_none(), "{wrong}");
        }
    }

    #[test]
    fn the_allow_list_sees_mapped_ipv4() {
        let allows = AmiAllowList::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert!(allows.admits("127.0.0.1".parse().unwrap()));
        assert!(allows.admits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!allows.admits("127.0.0.2".parse().unwrap()));
        assert!(!allows.admits("::1".parse().unwrap()));
        allows.set(vec!["::1/128".parse().unwrap()]);
        assert!(!allows.admits("127.0.0.1".parse().unwrap()));
        assert!(allows.admits("::1".parse().unwrap()));
    }

    #[test]
    fn a_key_debugs_without_its_secret() {
        let key = ApiKey {
            name: "ops".into(),
            key: "secret-secret-secret".into(),
            scope: Scope::Read,
        };
        assert!(!format!("{key:?}").contains("secret-secret"));
    }
}
