//! Accounts in an SQLite table (SQLite built in, no server):
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS sip_users (
//!     username          TEXT NOT NULL,
//!     realm             TEXT NOT NULL DEFAULT '',   -- '' matches any realm
//!     password          TEXT NOT NULL,              -- plain, or HA1 in hex
//!     display_name      TEXT,
//!     email             TEXT,
//!     allow_guest_calls INTEGER NOT NULL DEFAULT 0,
//!     enabled           INTEGER NOT NULL DEFAULT 1,
//!     PRIMARY KEY (username, realm)
//! );
//! ```
//!
//! A lookup is one indexed query on a connection behind a mutex: tens of
//! microseconds, run inline rather than on a thread of its own.

use crate::digest::Secret;
use crate::users::{BackendError, Lookup, User, UserBackend};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS sip_users (
    username          TEXT NOT NULL,
    realm             TEXT NOT NULL DEFAULT '',
    password          TEXT NOT NULL,
    display_name      TEXT,
    email             TEXT,
    allow_guest_calls INTEGER NOT NULL DEFAULT 0,
    enabled           INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (username, realm)
)";

/// The SQLite user backend.
#[derive(Debug)]
pub struct SqliteUsers {
    connection: Mutex<Connection>,
}

fn failed(e: rusqlite::Error) -> BackendError {
    BackendError(format!("sqlite: {e}"))
}

impl SqliteUsers {
    /// Opens (or creates) the database at `path`, with the table, in WAL
    /// mode so the PBX and an administrator can use it at once.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteUsers, BackendError> {
        let connection = Connection::open(path).map_err(failed)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(failed)?;
        SqliteUsers::with(connection)
    }

    /// An in-memory database, for tests and demos.
    pub fn in_memory() -> Result<SqliteUsers, BackendError> {
        SqliteUsers::with(Connection::open_in_memory().map_err(failed)?)
    }

    fn with(connection: Connection) -> Result<SqliteUsers, BackendError> {
        connection.execute(SCHEMA, []).map_err(failed)?;
        Ok(SqliteUsers {
            connection: Mutex::new(connection),
        })
    }

    /// Adds or replaces an account (`realm` empty for any realm).
    pub fn upsert(&self, user: &User, realm: &str, enabled: bool) -> Result<(), BackendError> {
        let password = match &user.secret {
            Secret::Password(p) | Secret::Ha1(p) => p,
        };
        self.connection()
            .execute(
                "INSERT OR REPLACE INTO sip_users
                 (username, realm, password, display_name, email, allow_guest_calls, enabled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    user.username,
                    realm,
                    password,
                    user.display_name,
                    user.email,
                    user.allow_guest_calls,
                    enabled
                ],
            )
            .map_err(failed)?;
        Ok(())
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl UserBackend for SqliteUsers {
    async fn lookup(&self, username: &str, realm: &str) -> Result<Lookup, BackendError> {
        let row = self
            .connection()
            .query_row(
                // The realm's own row wins over a realm-less one.
                "SELECT password, display_name, email, allow_guest_calls, enabled
                 FROM sip_users WHERE username = ?1 AND realm IN (?2, '')
                 ORDER BY realm = '' LIMIT 1",
                params![username, realm],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, Option<String>>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, bool>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(failed)?;
        Ok(match row {
            None => Lookup::Unknown,
            Some((_, _, _, _, false)) => Lookup::Refused {
                reason: "disabled".into(),
            },
            Some((password, display_name, email, allow_guest_calls, true)) => Lookup::Found(User {
                username: username.to_owned(),
                secret: Secret::from_stored(password),
                display_name,
                id: None,
                email,
                allow_guest_calls,
            }),
        })
    }
}
