//! The Trunkline registrar: REGISTER handling (RFC 3261 §10.3), digest
//! authentication (RFC 3261 §22, RFC 7616, RFC 8760), the location service
//! and user backends.

#![forbid(unsafe_code)]

pub mod digest;

pub use digest::{Algorithm, Digest, DigestConfig, Secret, Verdict};
