//! Who may register: the [`UserBackend`] trait and the static backend.

use crate::digest::Secret;
use std::collections::HashMap;
use std::future::Future;

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The authentication user name (the extension, `1001`).
    pub username: String,
    /// The password or its HA1.
    pub secret: Secret,
    /// The name shown to callees.
    pub display_name: Option<String>,
    /// The backend's own identifier, if it has one.
    pub id: Option<String>,
    /// The e-mail address, if known.
    pub email: Option<String>,
    /// Whether calls from unauthenticated guests may reach this user.
    pub allow_guest_calls: bool,
}

/// What a backend says about a user name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The account.
    Found(User),
    /// No such user. The registrar answers exactly as for a wrong
    /// password, so a caller cannot tell.
    Unknown,
    /// The account exists but may not register (locked, disabled); the
    /// registrar answers 403 and logs the reason.
    Refused {
        /// A machine-readable reason (`invalid_password`, `locked`…).
        reason: String,
    },
}

/// Why a backend could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("user backend: {0}")]
pub struct BackendError(pub String);

/// Where accounts come from.
pub trait UserBackend: Send + Sync {
    /// Looks up `username` in `realm`.
    fn lookup(
        &self,
        username: &str,
        realm: &str,
    ) -> impl Future<Output = Result<Lookup, BackendError>> + Send;
}

/// Accounts from configuration.
#[derive(Debug, Clone, Default)]
pub struct StaticUsers {
    users: HashMap<String, User>,
}

impl StaticUsers {
    /// No accounts yet.
    pub fn new() -> StaticUsers {
        StaticUsers::default()
    }

    /// Adds (or replaces) an account.
    pub fn insert(&mut self, user: User) {
        self.users.insert(user.username.clone(), user);
    }

    /// Adds an account with a plain password.
    pub fn with_password(mut self, username: &str, password: &str) -> StaticUsers {
        self.insert(User {
            username: username.to_owned(),
            secret: Secret::Password(password.to_owned()),
            display_name: None,
            id: None,
            email: None,
            allow_guest_calls: false,
        });
        self
    }
}

impl UserBackend for StaticUsers {
    async fn lookup(&self, username: &str, _realm: &str) -> Result<Lookup, BackendError> {
        Ok(self
            .users
            .get(username)
            .cloned()
            .map_or(Lookup::Unknown, Lookup::Found))
    }
}
