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

            /// Every lower-case spelling, full and compact, with its name.
            pub(crate) const SPELLINGS: &'static [(&'static str, HeaderName)] = &[
                $( ($lower, HeaderName::$variant), $( ($alias, HeaderName::$variant), )* )*
            ];
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

/// Slots of the name table: a power of two, about three times the spellings.
const TABLE_SLOTS: usize = 256;

/// Lower-cases a `token` byte for comparing with a lower-case spelling made
/// of letters, digits and `-`: setting bit 5 maps `A-Z` to `a-z` and leaves
/// digits and `-` alone; the token bytes it changes (`_`) match no spelling.
#[inline]
const fn lower_token_byte(c: u8) -> u8 {
    c | 0x20
}

#[inline]
const fn slot_of(len: usize, first: u8, last: u8) -> usize {
    let first = lower_token_byte(first) as usize;
    let last = lower_token_byte(last) as usize;
    (len * 37 + first * 7 + last) % TABLE_SLOTS
}

/// Whether `name` lower-cased (see [`lower_token_byte`]) is `spelling`, both
/// of one length and at most [`MAX_KNOWN_LEN`] long. Compares two
/// overlapping words, four or eight bytes each, rather than byte by byte:
/// this runs for every header line.
#[inline]
fn eq_lowered(spelling: &[u8], name: &[u8]) -> bool {
    const LOWER_4: u32 = u32::from_ne_bytes([0x20; 4]);
    const LOWER_8: u64 = u64::from_ne_bytes([0x20; 8]);
    fn word4(b: &[u8]) -> Option<(u32, u32)> {
        let (first, last) = (b.first_chunk::<4>()?, b.last_chunk::<4>()?);
        Some((u32::from_ne_bytes(*first), u32::from_ne_bytes(*last)))
    }
    fn word8(b: &[u8]) -> Option<(u64, u64)> {
        let (first, last) = (b.first_chunk::<8>()?, b.last_chunk::<8>()?);
        Some((u64::from_ne_bytes(*first), u64::from_ne_bytes(*last)))
    }
    match name.len() {
        0..4 => spelling
            .iter()
            .zip(name)
            .all(|(s, c)| *s == lower_token_byte(*c)),
        4..8 => word4(spelling)
            .zip(word4(name))
            .is_some_and(|(s, n)| s.0 == n.0 | LOWER_4 && s.1 == n.1 | LOWER_4),
        8..=16 => word8(spelling)
            .zip(word8(name))
            .is_some_and(|(s, n)| s.0 == n.0 | LOWER_8 && s.1 == n.1 | LOWER_8),
        // 17 to 20 bytes: the first eight, then the last twelve or more.
        _ => eq_lowered(&spelling[..8], &name[..8]) && eq_lowered(&spelling[8..], &name[8..]),
    }
}

/// Every spelling at its hash slot, collisions in the following free slots.
static NAME_TABLE: [Option<(&[u8], HeaderName)>; TABLE_SLOTS] = {
    let mut table: [Option<(&[u8], HeaderName)>; TABLE_SLOTS] = [None; TABLE_SLOTS];
    let mut i = 0;
    while i < HeaderName::SPELLINGS.len() {
        let (spelling, name) = HeaderName::SPELLINGS[i];
        let bytes = spelling.as_bytes();
        let mut slot = slot_of(bytes.len(), bytes[0], bytes[bytes.len() - 1]);
        while table[slot].is_some() {
            slot = (slot + 1) % TABLE_SLOTS;
        }
        table[slot] = Some((bytes, name));
        i += 1;
    }
    table
};

impl HeaderName {
    /// Recognises a header name, in any case, full or compact.
    pub fn parse(name: &str) -> Option<HeaderName> {
        HeaderName::from_bytes(name.as_bytes())
    }

    /// [`HeaderName::parse`] on bytes, through a small open-addressing
    /// table keyed by length and first and last letter.
    pub(crate) fn from_bytes(name: &[u8]) -> Option<HeaderName> {
        let (&first, &last) = (name.first()?, name.last()?);
        if name.len() > MAX_KNOWN_LEN {
            return None;
        }
        let mut slot = slot_of(name.len(), first, last);
        loop {
            let (spelling, known) = NAME_TABLE[slot]?;
            if spelling.len() == name.len() && eq_lowered(spelling, name) {
                return Some(known);
            }
            slot = (slot + 1) % TABLE_SLOTS;
        }
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

    #[test]
    fn one_byte_off_is_another_name() {
        // Names are compared a word at a time: every byte must count.
        for &(spelling, name) in HeaderName::SPELLINGS {
            for at in 0..spelling.len() {
                let mut near = spelling.as_bytes().to_vec();
                near[at] = if near[at] == b'q' { b'z' } else { b'q' };
                let near = String::from_utf8(near).unwrap();
                assert_ne!(HeaderName::parse(&near), Some(name), "{near}");
            }
        }
    }
}
