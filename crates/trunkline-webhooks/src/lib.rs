//! Trunkline's outbound webhooks: the JSON contracts integrators already
//! serve for other PBXs, and one HTTP client that signs every request and
//! loses no delivery.
//!
//! | hook | request | how it is sent |
//! |---|---|---|
//! | HTTP router | [`RouterRequest`] → [`RouterDecision`] | [`Client::route`]: one attempt, synchronous, the engine falls back on error |
//! | locator | [`RegistrationEvent`] as JSON ([`Payload::registration`]) | [`Outbox`] |
//! | CDR push | `multipart/form-data`: `calllog.json` ([`Cdr`]) and `media_audio-0` (the WAV) ([`Payload::cdr_push`]) | [`Outbox`] |
//!
//! [`json_schema`] generates the JSON Schema of every contract; the
//! repository keeps it as `docs/webhooks.schema.json` (a test fails when
//! it is stale), beside `docs/webhooks.md`.
//!
//! # Signature
//!
//! Every request carries three headers:
//!
//! - `X-Trunkline-Timestamp`: when it was signed, in seconds since the Unix
//!   epoch (a new value on every attempt);
//! - `X-Trunkline-Delivery`: a UUID naming the delivery, the same on every
//!   attempt of it, for receivers to drop repeats;
//! - `X-Trunkline-Signature`, when the hook has a secret: the lowercase hex
//!   of HMAC-SHA256 keyed with the secret over the timestamp header's
//!   text, a full stop and the raw body as sent:
//!   `hex(HMAC-SHA256(secret, timestamp + "." + body))`.
//!
//! A receiver recomputes the signature over the bytes it received,
//! compares in constant time ([`signature::verify`] does both) and refuses
//! old timestamps. A hook's static headers ([`Hook::with_header`]) come
//! with every request too.
//!
//! # The outbox
//!
//! Deliveries that must not be lost go through the [`Outbox`]:
//! [`Outbox::enqueue`] stores the delivery in an SQLite file (WAL mode,
//! synced) before any attempt, then one task per hook sends that hook's
//! deliveries one at a time, oldest first:
//!
//! - a 2xx deletes the delivery;
//! - no connection, a timeout, a 5xx, 408 or 429 keeps it and tries again
//!   after a delay doubling from the hook's [`RetryPolicy::first_delay`] up
//!   to [`RetryPolicy::max_delay`]; later deliveries of that hook wait
//!   behind it, so order is kept;
//! - any other 4xx (or a recording that cannot be read) is final: the
//!   delivery becomes a dead letter, kept in the file, counted and logged,
//!   never sent again; so does one whose retry policy ran out
//!   ([`RetryPolicy::max_attempts`], [`RetryPolicy::max_age`]);
//! - a process restart loses nothing: [`Outbox::open`] on the same file
//!   resumes the waiting deliveries, attempt counts and delays included;
//! - the file is bounded: past [`OutboxConfig::max_rows`] deliveries
//!   (waiting and dead), `enqueue` refuses with [`Error::OutboxFull`] and
//!   [`OutboxStats::refused_full`] counts it.
//!
//! Delivery is at least once. A receiver sees a delivery twice only when
//! it handled it but its 2xx never reached the PBX (the connection broke,
//! the answer came after the hook's timeout, the process stopped before
//! storing the outcome); the `X-Trunkline-Delivery` header lets it drop
//! the repeat.
//!
//! ```no_run
//! # async fn run(event: trunkline_registrar::RegistrationEvent) -> Result<(), trunkline_webhooks::Error> {
//! use trunkline_webhooks::{Client, Hook, Outbox, OutboxConfig, Payload};
//!
//! let mut config = OutboxConfig::new("/var/lib/trunkline/webhooks.db");
//! config.hooks.insert(
//!     "locator".into(),
//!     Hook::new("https://crm.example.com/hooks/registrations")?.with_secret("s3cret"),
//! );
//! let outbox = Outbox::open(config, Client::new()?)?;
//! let delivery = outbox.enqueue("locator", Payload::registration(&event)?).await?;
//! println!("stored {delivery}; {} waiting", outbox.stats().depth);
//! outbox.shutdown().await;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod client;
mod error;
mod hook;
mod outbox;
mod payload;
mod router;
mod schema;
pub mod signature;

pub use client::Client;
pub use error::Error;
pub use hook::{Hook, RetryPolicy};
pub use outbox::{Outbox, OutboxConfig, OutboxStats};
pub use payload::{CALLLOG_FIELD, DeliveryId, MEDIA_FIELD, Payload};
pub use router::{MediaProxy, RouterAction, RouterDecision, RouterRequest, Strategy};
pub use schema::json_schema;
pub use trunkline_cdr::{Cdr, Direction};
pub use trunkline_registrar::{EventKind, Location, RegistrationEvent};
