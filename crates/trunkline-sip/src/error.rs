//! The one error type of this crate, and the SIP response each error earns.

use crate::{HeaderName, StatusCode};
use std::borrow::Cow;

/// What was wrong with a message, and where.
///
/// Offsets count bytes from the first byte of the message. Every error maps
/// to the response a server sends back ([`Error::status`],
/// [`Error::reason_phrase`]); a response that fails to parse is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request or status line does not follow RFC 3261 §7.1 / §7.2.
    #[error("malformed start line at byte {offset}: {what}")]
    StartLine {
        /// Where the fault is.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// The SIP version is not `SIP/2.0`.
    #[error("unsupported SIP version at byte {offset}")]
    Version {
        /// Where the version starts.
        offset: usize,
    },
    /// The Request-URI is malformed.
    #[error("malformed Request-URI at byte {offset}: {what}")]
    RequestUri {
        /// Where the fault is.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A URI given to [`crate::Uri::parse`] is malformed.
    #[error("malformed URI at byte {offset}: {what}")]
    Uri {
        /// Where the fault is, from the start of the URI.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A header line is not `name: value`.
    #[error("malformed header line at byte {offset}: {what}")]
    HeaderLine {
        /// Where the fault is.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// A well-known header's value does not follow its grammar.
    #[error("malformed {name} header at byte {offset}: {what}")]
    Header {
        /// Which header.
        name: HeaderName,
        /// Where the fault is.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// The header section holds bytes that are not UTF-8 (RFC 3261 §7.3.1).
    #[error("header section is not valid UTF-8 at byte {offset}")]
    Utf8 {
        /// The first invalid byte.
        offset: usize,
    },
    /// The start line or headers end before the empty line that closes them.
    #[error("message ends inside the header section")]
    Truncated,
    /// Fewer body bytes arrived than Content-Length announces (§18.3).
    #[error("Content-Length is {expected} but only {got} body bytes arrived")]
    BodyTruncated {
        /// The Content-Length value.
        expected: usize,
        /// The body bytes present.
        got: usize,
    },
    /// Several Content-Length headers disagree, so a stream cannot be framed.
    #[error("conflicting Content-Length headers at byte {offset}")]
    ContentLengthConflict {
        /// The second, disagreeing value.
        offset: usize,
    },
    /// A message on a stream transport lacks Content-Length (§18.3, §20.14).
    #[error("Content-Length is required on stream transports")]
    MissingContentLength,
    /// The message is larger than the configured limit.
    #[error("message is larger than the {limit}-byte limit")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The CSeq method differs from the request method (RFC 4475 §3.1.2.17).
    #[error("CSeq method at byte {offset} does not match the request method")]
    CSeqMethodMismatch {
        /// Where the CSeq method starts.
        offset: usize,
    },
    /// A header every request or response carries is absent (§8.1.1).
    #[error("missing {0} header")]
    MissingHeader(HeaderName),
    /// A header that takes one value has several (RFC 4475 §3.3.8).
    #[error("{0} header must have exactly one value")]
    RepeatedHeader(HeaderName),
    /// The Request-URI scheme is not one this element serves (§8.2.2.1).
    #[error("unsupported URI scheme {0:?} in the Request-URI")]
    UnsupportedUriScheme(String),
}

impl Error {
    /// The response status a server answers a request with this fault.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Version { .. } => StatusCode::VERSION_NOT_SUPPORTED,
            Error::TooLarge { .. } => StatusCode::MESSAGE_TOO_LARGE,
            Error::UnsupportedUriScheme(_) => StatusCode::UNSUPPORTED_URI_SCHEME,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// A reason phrase that tells the sender what to fix, such as
    /// `Bad Via Header` or `Missing Call-ID Header`.
    pub fn reason_phrase(&self) -> Cow<'static, str> {
        match self {
            Error::StartLine { .. } => "Bad Request Line".into(),
            Error::RequestUri { .. } | Error::Uri { .. } => "Bad Request-URI".into(),
            Error::HeaderLine { .. } => "Bad Header Line".into(),
            Error::Header { name, .. } => format!("Bad {name} Header").into(),
            Error::Utf8 { .. } => "Bad Header Encoding".into(),
            Error::Truncated => "Incomplete Header Section".into(),
            Error::BodyTruncated { .. } | Error::ContentLengthConflict { .. } => {
                "Bad Content-Length".into()
            }
            Error::MissingContentLength => "Missing Content-Length".into(),
            Error::CSeqMethodMismatch { .. } => "CSeq Method Mismatch".into(),
            Error::MissingHeader(name) => format!("Missing {name} Header").into(),
            Error::RepeatedHeader(name) => format!("Repeated {name} Header").into(),
            Error::Version { .. } | Error::TooLarge { .. } | Error::UnsupportedUriScheme(_) => {
                self.status().reason().into()
            }
        }
    }

    /// The byte offset of the fault, where one applies.
    pub fn offset(&self) -> Option<usize> {
        match *self {
            Error::StartLine { offset, .. }
            | Error::Version { offset }
            | Error::RequestUri { offset, .. }
            | Error::Uri { offset, .. }
            | Error::HeaderLine { offset, .. }
            | Error::Header { offset, .. }
            | Error::Utf8 { offset }
            | Error::ContentLengthConflict { offset }
            | Error::CSeqMethodMismatch { offset } => Some(offset),
            _ => None,
        }
    }

    /// The header the fault is in, where one applies.
    pub fn header(&self) -> Option<HeaderName> {
        match *self {
            Error::Header { name, .. }
            | Error::MissingHeader(name)
            | Error::RepeatedHeader(name) => Some(name),
            Error::ContentLengthConflict { .. }
            | Error::BodyTruncated { .. }
            | Error::MissingContentLength => Some(HeaderName::ContentLength),
            Error::CSeqMethodMismatch { .. } => Some(HeaderName::CSeq),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_statuses_and_reasons() {
        let e = Error::Header {
            name: HeaderName::Via,
            offset: 40,
            what: "empty parameter",
        };
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.reason_phrase(), "Bad Via Header");
        assert_eq!(
            e.to_string(),
            "malformed Via header at byte 40: empty parameter"
        );
        assert_eq!(e.offset(), Some(40));
        assert_eq!(Error::Version { offset: 8 }.status().as_u16(), 505);
        assert_eq!(
            Error::UnsupportedUriScheme("isbn".into()).status().as_u16(),
            416
        );
        assert_eq!(
            Error::TooLarge { limit: 10 }.reason_phrase(),
            "Message Too Large"
        );
        assert_eq!(
            Error::MissingHeader(HeaderName::CallId).reason_phrase(),
            "Missing Call-ID Header"
        );
    }
}
