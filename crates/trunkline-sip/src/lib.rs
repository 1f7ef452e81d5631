//! SIP messages for Trunkline: a zero-copy parser, typed headers, URIs, a
//! builder and serializer, and stream framing. No I/O and no async runtime.
//!
//! - [`Message::parse`] takes one complete message (a UDP datagram) as
//!   [`bytes::Bytes`]; the result shares that buffer. [`Decoder`] frames a
//!   TCP or TLS byte stream into messages and RFC 5626 keep-alives, saying
//!   when it needs more bytes.
//! - Parsing indexes the header lines (one allocation for the whole index)
//!   and checks the headers every layer relies on (top Via line, From, To,
//!   Call-ID, CSeq, Max-Forwards, Content-Length) against their RFC 3261
//!   §25 grammar; [`Message::validate`] checks all the others (RFC 3261
//!   §16.3: a header is checked where it is used). Typed accessors
//!   ([`Message::via`], [`Message::cseq`], …) parse lazily, borrow the
//!   message and skip a value that does not parse. Unknown headers and
//!   methods are kept verbatim.
//! - Every [`Error`] says what is wrong and where, and maps to the response
//!   a server sends ([`Error::status`], [`Error::reason_phrase`]);
//!   [`reject_malformed`] builds that response from the raw bytes.
//! - [`MessageBuilder`] creates requests, responses (RFC 3261 §8.2.6 via
//!   [`Message::response_to`]) and edited copies ([`Message::to_builder`]).
//!
//! ```
//! use trunkline_sip::{Message, StatusCode};
//!
//! let raw = bytes::Bytes::from_static(
//!     b"REGISTER sip:pbx.example.com SIP/2.0\r\n\
//!       v: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKnashds7;rport\r\n\
//!       Max-Forwards: 70\r\n\
//!       t: <sip:1001@pbx.example.com>\r\n\
//!       f: <sip:1001@pbx.example.com>;tag=456248\r\n\
//!       i: 843817637684230@998sdasdh09\r\n\
//!       CSeq: 1826 REGISTER\r\n\
//!       m: <sip:1001@192.0.2.10:5060>;expires=3600\r\n\
//!       l: 0\r\n\r\n",
//! );
//! let register = Message::parse(raw)?;
//! register.validate()?;
//! register.check()?;
//! let contact = register.contact().unwrap();
//! assert_eq!(contact.uri().as_str(), "sip:1001@192.0.2.10:5060");
//! assert_eq!(contact.expires(), Some(3600));
//! assert_eq!(register.via().unwrap().rport(), Some(None));
//!
//! let ok = register.response_to(StatusCode::OK).to_tag("8f2e").build()?;
//! assert_eq!(ok.to().unwrap().tag(), Some("8f2e"));
//! assert!(ok.to_bytes().starts_with(b"SIP/2.0 200 OK\r\n"));
//! # Ok::<(), trunkline_sip::Error>(())
//! ```

#![forbid(unsafe_code)]

mod builder;
mod error;
mod framing;
mod grammar;
pub mod headers;
mod message;
mod method;
mod name;
mod params;
mod parser;
mod uri;

pub use builder::{MessageBuilder, reject_malformed};
pub use error::Error;
pub use framing::{Decoder, Frame};
pub use headers::{Auth, CSeq, Contact, MediaType, NameAddr, Via};
pub use message::{Header, HeaderKey, Message, Values};
pub use method::{Method, StatusCode};
pub use name::HeaderName;
pub use params::{ParamIter, Params};
pub use uri::{AbsoluteUri, Host, SipUri, TelUri, Uri};
