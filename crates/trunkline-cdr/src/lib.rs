//! Call detail records for Trunkline: one [`Cdr`] per call, the
//! [`CdrBuilder`] the call engine fills in while the call runs, and the
//! [`CdrStore`]s that keep records and page through them by date range,
//! party, disposition and direction: embedded SQLite ([`SqliteCdrStore`])
//! by default, PostgreSQL later behind the same trait.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use trunkline_cdr::*;
//!
//! let start = SystemTime::now();
//! let mut call = CdrBuilder::new(CallStart {
//!     id: CdrId::generate(),
//!     call_id: "a84b4c76e66710@192.168.1.20".into(),
//!     caller: Party::new("1001", Some("Alice")),
//!     callee: Party::new("+14155550123", None),
//!     source_channel: "extension/1001".into(),
//!     direction: Direction::Outbound,
//!     time: start,
//! });
//! call.routed("trunk/carrier-a", Direction::Outbound);
//! call.ringing(start + Duration::from_secs(1));
//! call.answered(start + Duration::from_secs(7));
//! let cdr = call.end(
//!     start + Duration::from_secs(131),
//!     Hangup { cause: HangupCause::NormalClearing, sip_status: Some(200), reason: None, by: Side::Callee },
//! );
//! assert_eq!((cdr.disposition, cdr.duration, cdr.billsec), (Disposition::Answered, 131, 124));
//! let json = serde_json::to_string(&cdr).expect("a record always serialises");
//! assert!(json.contains(r#""disposition":"ANSWERED""#));
//! ```
//!
//! # The record's JSON
//!
//! A [`Cdr`] serialises (serde) to the `calllog.json` that webhooks push and
//! the REST API serves. Its shape is fixed, and a test holds it to this
//! example byte for byte:
//!
//! - field names are snake_case, every field is always present (`null`
//!   when empty), and they come in this order;
//! - times are RFC 3339 in UTC with milliseconds (see [`Timestamp`]);
//! - `disposition` is `"ANSWERED"`, `"NO ANSWER"`, `"BUSY"` or `"FAILED"`;
//!   `direction` is `"inbound"`, `"outbound"` or `"internal"`;
//!   `hangup.cause` is one of [`HangupCause`]'s names and `hangup.by` is
//!   `"caller"`, `"callee"` or `"pbx"`;
//! - `duration` and `billsec` are whole seconds from the start and from
//!   the answer;
//! - `sip_flow` lists every SIP message of the call (shortened to two
//!   here), each with its time, whether the PBX `"received"` or `"sent"`
//!   it, the transport and both addresses, so a ladder can be drawn.
//!
//! Reading is more liberal than writing: times in any RFC 3339 form are
//! accepted.
//!
//! ```json
#![doc = include_str!("../tests/data/calllog.json")]
//! ```
//!
//! # Disposition
//!
//! An answered call is `ANSWERED`. Otherwise a caller's CANCEL or the
//! PBX's ring timeout is `NO ANSWER`, and the final SIP status decides the
//! rest, as Asterisk and FreeSWITCH count: 486 and 600 are `BUSY`; 408,
//! 480 and 487 are `NO ANSWER`; anything else, or no final response, is
//! `FAILED` ([`Disposition::from_final_status`], [`CdrBuilder::end`]).
//!
//! # Stores
//!
//! [`CdrStore`] is a blocking trait: a store works on the calling thread,
//! and the async call engine calls it through `spawn_blocking`. A query
//! returns at most [`MAX_PAGE_SIZE`] (10,000) records per page, paged by
//! start time and id so that records stored meanwhile do not shift the
//! pages. The SQLite store is the `sqlite` feature, on by default.

#![forbid(unsafe_code)]

mod builder;
mod model;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod timestamp;

pub use builder::{CallStart, CdrBuilder, SIP_FLOW_LIMIT};
pub use model::{
    Cdr, CdrId, Direction, Disposition, Hangup, HangupCause, Party, Side, SipDirection,
    SipFlowEntry, UnknownName,
};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteCdrStore;
pub use store::{CdrQuery, CdrStore, Cursor, Error, MAX_PAGE_SIZE, Order, Page, PageSize};
pub use timestamp::{Timestamp, TimestampError};
