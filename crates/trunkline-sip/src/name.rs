//! Header field names: the well-known ones as an enum, with compact forms.

use std::fmt;

macro_rules! header_names {
    ($( $(#[$doc:meta])* $variant:ident => $canonical:literal, $lower:literal $(| $alias:literal)* ; )*) => {
        /// A well-known SIP header field name.
        ///
        /// Names are matched case-insensitively, and the compact forms of
        /// RFC 3261 §7.3.3 and later RFCs map to their full names
        /// (`v` is [`HeaderName::Via`]). Headers not listed here are kept
        /// verbatim and reached by their text (see [`crate::Message::header`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $variant, )*
        }

        impl HeaderName {
            /// The canonical spelling, as Trunkline writes it.
            pub const fn as_str(self) -> &'static str {
                match self { $( HeaderName::$variant => $canonical, )* }
            }

            /// Every well-known name.
            pub const ALL: &'static [HeaderName] = &[$( HeaderName::$variant, )*];

            /// Looks a name up from its lower-case spelling. A `match` on
            /// byte strings compiles to a length switch and a few compares.
            fn from_lower(lower: &str) -> Option<HeaderName> {
                match lower {
                    $( $lower $(| $alias)* => Some(HeaderName::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

header_names! {
    /// `Accept`
    Accept => "Accept", "accept";
    /// `Accept-Contact` (RFC 3841), compact `a`
    AcceptContact => "Accept-Contact", "accept-contact" | "a";
    /// `Accept-Encoding`
    AcceptEncoding => "Accept-Encoding", "accept-encoding";
    /// `Accept-Language`
    AcceptLanguage => "Accept-Language", "accept-language";
    /// `Alert-Info`
    AlertInfo => "Alert-Info", "alert-info";
    /// `Allow`
    Allow => "Allow", "allow";
    /// `Allow-Events` (RFC 6665), compact `u`
    AllowEvents => "Allow-Events", "allow-events" | "u";
    /// `Authentication-Info`
    AuthenticationInfo => "Authentication-Info", "authentication-info";
    /// `Authorization`
    Authorization => "Authorization", "authorization";
    /// `Call-ID`, compact `i`
    CallId => "Call-ID", "call-id" | "i";
    /// `Call-Info`
    CallInfo => "Call-Info", "call-info";
    /// `Contact`, compact `m`
    Contact => "Contact", "contact" | "m";
    /// `Content-Disposition`
    ContentDisposition => "Content-Disposition", "content-disposition";
    /// `Content-Encoding`, compact `e`
    ContentEncoding => "Content-Encoding", "content-encoding" | "e";
    /// `Content-Language`
    ContentLanguage => "Content-Language", "content-language";
    /// `Content-Length`, compact `l`
    ContentLength => "Content-Length", "content-length" | "l";
    /// `Content-Type`, compact `c`
    ContentType => "Content-Type", "content-type" | "c";
    /// `CSeq`
    CSeq => "CSeq", "cseq";
    /// `Date`
    Date => "Date", "date";
    /// `Error-Info`
    ErrorInfo => "Error-Info", "error-info";
    /// `Event` (RFC 6665), compact `o`
    Event => "Event", "event" | "o";
    /// `Expires`
    Expires => "Expires", "expires";
    /// `From`, compact `f`
    From => "From", "from" | "f";
    /// `Identity` (RFC 8224), compact `y`
    Identity => "Identity", "identity" | "y";
    /// `In-Reply-To`
    InReplyTo => "In-Reply-To", "in-reply-to";
    /// `Max-Forwards`
    MaxForwards => "Max-Forwards", "max-forwards";
    /// `MIME-Version`
    MimeVersion => "MIME-Version", "mime-version";
    /// `Min-Expires`
    MinExpires => "Min-Expires", "min-expires";
    /// `Min-SE` (RFC 4028)
    MinSe => "Min-SE", "min-se";
    /// `Organization`
    Organization => "Organization", "organization";
    /// `P-Asserted-Identity` (RFC 3325)
    PAssertedIdentity => "P-Asserted-Identity", "p-asserted-identity";
    /// `P-Preferred-Identity` (RFC 3325)
    PPreferredIdentity => "P-Preferred-Identity", "p-preferred-identity";
    /// `Path` (RFC 3327)
    Path => "Path", "path";
    /// `Priority`
    Priority => "Priority", "priority";
    /// `Proxy-Authenticate`
    ProxyAuthenticate => "Proxy-Authenticate", "proxy-authenticate";
    /// `Proxy-Authorization`
    ProxyAuthorization => "Proxy-Authorization", "proxy-authorization";
    /// `Proxy-Require`
    ProxyRequire => "Proxy-Require", "proxy-require";
    /// `RAck` (RFC 3262)
    RAck => "RAck", "rack";
    /// `Reason` (RFC 3326)
    Reason => "Reason", "reason";
    /// `Record-Route`
    RecordRoute => "Record-Route", "record-route";
    /// `Refer-To` (RFC 3515), compact `r`
    ReferTo => "Refer-To", "refer-to" | "r";
    /// `Referred-By` (RFC 3892), compact `b`
    ReferredBy => "Referred-By", "referred-by" | "b";
    /// `Reject-Contact` (RFC 3841), compact `j`
    RejectContact => "Reject-Contact", "reject-contact" | "j";
    /// `Replaces` (RFC 3891)
    Replaces => "Replaces", "replaces";
    /// `Reply-To`
    ReplyTo => "Reply-To", "reply-to";
    /// `Request-Disposition` (RFC 3841), compact `d`
    RequestDisposition => "Request-Disposition", "request-disposition" | "d";
    /// `Require`
    Require => "Require", "require";
    /// `Retry-After`
    RetryAfter => "Retry-After", "retry-after";
    /// `Route`
    Route => "Route", "route";
    /// `RSeq` (RFC 3262)
    RSeq => "RSeq", "rseq";
    /// `Server`
    Server => "Server", "server";
    /// `Session-Expires` (RFC 4028), compact `x`
    SessionExpires => "Session-Expires", "session-expires" | "x";
    /// `Subject`, compact `s`
    Subject => "Subject", "subject" | "s";
    /// `Subscription-State` (RFC 6665)
    SubscriptionState => "Subscription-State", "subscription-state";
    /// `Supported`, compact `k`
    Supported => "Supported", "supported" | "k";
    /// `Timestamp`
    Timestamp => "Timestamp", "timestamp";
    /// `To`, compact `t`
    To => "To", "to" | "t";
    /// `Unsupported`
    Unsupported => "Unsupported", "unsupported";
    /// `User-Agent`
    UserAgent => "User-Agent", "user-agent";
    /// `Via`, compact `v`
    Via => "Via", "via" | "v";
    /// `Warning`
    Warning => "Warning", "warning";
    /// `WWW-Authenticate`
    WwwAuthenticate => "WWW-Authenticate", "www-authenticate";
}

/// Longest well-known name (`P-Preferred-Identity`, `Request-Disposition`).
const MAX_KNOWN_LEN: usize = 20;

impl HeaderName {
    /// Recognises a header name, in any case, full or compact.
    pub fn parse(name: &str) -> Option<HeaderName> {
        let name = name.as_bytes();
        if name.is_empty() || name.len() > MAX_KNOWN_LEN {
            return None;
        }
        let mut lower = [0u8; MAX_KNOWN_LEN];
        let lower = &mut lower[..name.len()];
        for (l, c) in lower.iter_mut().zip(name) {
            *l = c.to_ascii_lowercase();
        }
        // ASCII lower-casing keeps the text valid UTF-8.
        std::str::from_utf8(lower)
            .ok()
            .and_then(HeaderName::from_lower)
    }

    /// Whether the header's grammar is a comma-separated list, so several
    /// header lines may be combined (RFC 3261 §7.3.1).
    pub const fn is_list(self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Accept
                | AcceptContact
                | AcceptEncoding
                | AcceptLanguage
                | AlertInfo
                | Allow
                | AllowEvents
                | CallInfo
                | Contact
                | ContentEncoding
                | ContentLanguage
                | ErrorInfo
                | InReplyTo
                | PAssertedIdentity
                | PPreferredIdentity
                | Path
                | ProxyRequire
                | Reason
                | RecordRoute
                | RejectContact
                | RequestDisposition
                | Require
                | Route
                | Supported
                | Unsupported
                | Via
                | Warning
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_compact_forms_map() {
        assert_eq!(
            HeaderName::parse("MaX-fOrWaRdS"),
            Some(HeaderName::MaxForwards)
        );
        for (compact, full) in [
            ("i", HeaderName::CallId),
            ("m", HeaderName::Contact),
            ("f", HeaderName::From),
            ("t", HeaderName::To),
            ("v", HeaderName::Via),
            ("l", HeaderName::ContentLength),
            ("c", HeaderName::ContentType),
            ("k", HeaderName::Supported),
            ("s", HeaderName::Subject),
            ("e", HeaderName::ContentEncoding),
            ("o", HeaderName::Event),
            ("r", HeaderName::ReferTo),
            ("u", HeaderName::AllowEvents),
            ("b", HeaderName::ReferredBy),
            ("x", HeaderName::SessionExpires),
            ("y", HeaderName::Identity),
        ] {
            assert_eq!(HeaderName::parse(compact), Some(full), "{compact}");
            assert_eq!(HeaderName::parse(&compact.to_uppercase()), Some(full));
        }
        assert_eq!(HeaderName::parse("X-Custom"), None);
        assert_eq!(HeaderName::parse(""), None);
    }

    #[test]
    fn every_canonical_name_round_trips() {
        for &n in HeaderName::ALL {
            assert_eq!(HeaderName::parse(n.as_str()), Some(n));
            assert_eq!(HeaderName::parse(&n.as_str().to_uppercase()), Some(n));
            assert!(n.as_str().len() <= MAX_KNOWN_LEN);
        }
    }
}
