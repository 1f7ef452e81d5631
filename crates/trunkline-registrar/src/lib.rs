//! The Trunkline registrar: REGISTER handling (RFC 3261 §10.3), digest
//! authentication (RFC 3261 §22, RFC 7616, RFC 8760), the location service
//! and user backends.
//!
//! [`Registrar::handle`] takes a REGISTER and returns the response and the
//! [`RegistrationEvent`]s it caused; it does no I/O itself. Accounts come
//! from a [`UserBackend`], bindings live in a [`Locator`]; both are traits
//! with async methods so that networked implementations fit.

#![forbid(unsafe_code)]

pub mod digest;
mod events;
mod guard;
#[cfg(feature = "http-users")]
mod http_users;
mod locator;
mod registrar;
#[cfg(feature = "sqlite-users")]
mod sqlite_users;
mod users;

pub use digest::{Algorithm, Digest, DigestConfig, Secret, Verdict, authorization};
pub use events::{EventKind, Location, RegistrationEvent};
pub use guard::{Guard, GuardConfig};
#[cfg(feature = "http-users")]
pub use http_users::{HttpUsers, HttpUsersConfig};
pub use locator::{Applied, Binding, Change, Locator, LocatorError, MemoryLocator, Update};
pub use registrar::{Handled, Registrar, RegistrarConfig, RegistrarStats};
#[cfg(feature = "sqlite-users")]
pub use sqlite_users::SqliteUsers;
pub use users::{BackendError, Lookup, StaticUsers, User, UserBackend};
