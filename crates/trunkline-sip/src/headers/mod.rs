//! Typed header values, parsed from the message text on demand.
//!
//! The headers every layer relies on (the top Via line, From, To, Call-ID,
//! CSeq, Max-Forwards, Content-Length) are checked against their grammar
//! when the message is parsed; the others when they are read, or all at
//! once by [`crate::Message::validate`]. The typed
//! accessors of [`crate::Message`] parse, lazily, only what the caller
//! reads. Values borrow the message.

mod addr;
mod auth;
mod date;
mod values;
mod via;

pub use addr::{Contact, NameAddr};
pub use auth::{Auth, AuthParams};
pub use values::{
    CSeq, Event, MediaType, RAck, Reason, Replaces, RetryAfter, SessionExpires, SubscriptionState,
    TokenParams, Warning,
};
pub use via::{MAGIC_COOKIE, Via};

pub(crate) use addr::{contact, name_addr, name_addr_angle};
pub(crate) use auth::auth;
pub(crate) use date::date;
pub(crate) use values::{
    call_id, content_length, cseq, delta_seconds, max_forwards, media_type, rack, replaces,
    retry_after, rseq, session_expires, token_item, token_params, warning,
};
pub(crate) use via::via;

use crate::HeaderName;
use crate::grammar::{Fault, PResult, all, sws};

/// The values every layer reads (transaction matching, dialogs, framing),
/// learnt while checking the headers so that reading them later is free.
/// Each is the first value of its header; `Some(None)` is "the header is
/// there without that parameter".
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Facts<'a> {
    pub(crate) branch: Option<Option<&'a str>>,
    pub(crate) from_tag: Option<Option<&'a str>>,
    pub(crate) to_tag: Option<Option<&'a str>>,
    pub(crate) call_id: Option<&'a str>,
    pub(crate) cseq: Option<CSeq<'a>>,
    pub(crate) max_forwards: Option<u8>,
    pub(crate) content_length: Option<u32>,
}

/// Whether `Message::parse` checks this header: the ones that identify the
/// transaction and dialog and frame the message (RFC 3261 §8.1.1, §17.1.3,
/// §17.2.3, §18.3), of which Via only on its top line. Every other header
/// is checked where it is used, as RFC 3261 §16.3 step 1 asks of a proxy
/// ("an element would not reject a request because of a malformed Date
/// header field"): by its typed accessor, which skips a malformed value, or
/// by `Message::validate`, which reports it.
pub(crate) fn checked_at_parse(name: HeaderName) -> bool {
    use HeaderName as H;
    matches!(
        name,
        H::Via | H::From | H::To | H::CallId | H::CSeq | H::MaxForwards | H::ContentLength
    )
}

/// Checks a well-known header's value against its grammar, noting the
/// [`Facts`] it meets. Headers of free text (Subject, User-Agent…) and
/// unknown ones pass.
pub(crate) fn validate<'a>(
    name: HeaderName,
    value: &'a str,
    facts: &mut Facts<'a>,
) -> Result<(), Fault<'a>> {
    use HeaderName as H;
    match name {
        H::Via => {
            let mut count = 0;
            for item in ListItems::new(value, via) {
                let via = item?;
                count += 1;
                facts.branch.get_or_insert_with(|| via.branch());
            }
            if count == 0 {
                return Err(Fault {
                    at: value,
                    what: "empty value",
                });
            }
            Ok(())
        }
        H::From | H::To => {
            let tag = all(value, name_addr)?.tag();
            let first = if name == H::From {
                &mut facts.from_tag
            } else {
                &mut facts.to_tag
            };
            first.get_or_insert(tag);
            Ok(())
        }
        H::ReferTo | H::ReferredBy | H::ReplyTo => all(value, name_addr).map(drop),
        H::Contact => {
            let mut wildcard = None;
            let mut count = 0;
            for item in ListItems::new(value, contact) {
                let item = item?;
                count += 1;
                if item == Contact::Wildcard {
                    wildcard = Some(value);
                }
            }
            match (wildcard, count) {
                (_, 0) => Err(Fault {
                    at: value,
                    what: "empty value",
                }),
                (Some(at), 2..) => Err(Fault {
                    at,
                    what: "'*' must be the only Contact",
                }),
                _ => Ok(()),
            }
        }
        H::Route | H::RecordRoute | H::Path => list(value, name_addr_angle, false),
        H::PAssertedIdentity | H::PPreferredIdentity => list(value, name_addr, false),
        H::CallId => all(value, call_id).map(|id| note(&mut facts.call_id, id)),
        H::CSeq => all(value, cseq).map(|cseq| note(&mut facts.cseq, cseq)),
        H::MaxForwards => all(value, max_forwards).map(|hops| note(&mut facts.max_forwards, hops)),
        H::ContentLength => {
            all(value, content_length).map(|length| note(&mut facts.content_length, length))
        }
        H::ContentType => all(value, media_type).map(drop),
        H::Accept => list(value, media_type, true),
        H::Expires | H::MinExpires => all(value, delta_seconds).map(drop),
        H::Authorization | H::ProxyAuthorization | H::WwwAuthenticate | H::ProxyAuthenticate => {
            all(value, auth).map(drop)
        }
        H::Allow | H::Supported => list(value, token_item, true),
        H::Require | H::ProxyRequire | H::Unsupported | H::AllowEvents | H::ContentEncoding => {
            list(value, token_item, false)
        }
        H::Event | H::SubscriptionState => all(value, token_params).map(drop),
        H::Reason => list(value, token_params, false),
        H::RetryAfter => all(value, retry_after).map(drop),
        H::Replaces => all(value, replaces).map(drop),
        H::Warning => list(value, warning, false),
        H::Date => all(value, date).map(drop),
        H::SessionExpires | H::MinSe => all(value, session_expires).map(drop),
        H::RSeq => all(value, rseq).map(drop),
        H::RAck => all(value, rack).map(drop),
        _ => Ok(()),
    }
}

/// Keeps the first value seen: the one every layer reads.
fn note<T>(slot: &mut Option<T>, value: T) {
    slot.get_or_insert(value);
}

/// Checks a comma-separated list; `allow_empty` for grammars like
/// `Allow = "Allow" HCOLON [Method *(COMMA Method)]`.
fn list<'a, T>(
    value: &'a str,
    item: fn(&'a str) -> PResult<'a, T>,
    allow_empty: bool,
) -> Result<(), Fault<'a>> {
    let mut count = 0;
    for item in ListItems::new(value, item) {
        item?;
        count += 1;
    }
    if count == 0 && !allow_empty {
        return Err(Fault {
            at: value,
            what: "empty value",
        });
    }
    Ok(())
}

/// The elements of one comma-separated header value, parsed one at a time
/// by `item`: a function pointer by default, or any parser, which is then
/// inlined (the checks at parse time pass the function itself).
pub(crate) struct ListItems<'a, T, F = fn(&'a str) -> PResult<'a, T>> {
    rest: &'a str,
    item: F,
    // `T` comes from `item`; a function type keeps the auto traits of
    // `Values` (which holds this) what they were.
    parsed: std::marker::PhantomData<fn() -> T>,
}

impl<'a, T, F: Fn(&'a str) -> PResult<'a, T>> ListItems<'a, T, F> {
    pub(crate) fn new(value: &'a str, item: F) -> Self {
        ListItems {
            rest: sws(value),
            item,
            parsed: std::marker::PhantomData,
        }
    }
}

impl<'a, T, F: Fn(&'a str) -> PResult<'a, T>> Iterator for ListItems<'a, T, F> {
    type Item = Result<T, Fault<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = (self.item)(self.rest).map_err(|e| match e {
            nom::Err::Error(f) | nom::Err::Failure(f) => f,
            nom::Err::Incomplete(_) => Fault {
                at: self.rest,
                what: "incomplete value",
            },
        });
        let (rest, value) = match parsed {
            Ok(ok) => ok,
            Err(f) => {
                self.rest = "";
                return Some(Err(f));
            }
        };
        let rest = sws(rest);
        self.rest = match rest.strip_prefix(',') {
            Some(next) => {
                let next = sws(next);
                if next.is_empty() {
                    self.rest = "";
                    return Some(Err(Fault {
                        at: rest,
                        what: "empty element after ','",
                    }));
                }
                next
            }
            None if rest.is_empty() => rest,
            None => {
                self.rest = "";
                return Some(Err(Fault {
                    at: rest,
                    what: "expected ',' or the end of the value",
                }));
            }
        };
        Some(Ok(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: HeaderName, value: &str) -> bool {
        validate(name, value, &mut Facts::default()).is_ok()
    }

    #[test]
    fn lists() {
        assert!(check(HeaderName::Allow, ""));
        assert!(!check(HeaderName::Require, ""));
        assert!(check(HeaderName::Supported, "replaces, timer"));
        assert!(!check(HeaderName::Supported, "replaces,, timer"));
        assert!(!check(HeaderName::Supported, "replaces,"));
        assert!(!check(HeaderName::Via, "SIP/2.0/UDP 192.0.2.15;;,;,,"));
        assert!(check(HeaderName::Contact, "*"));
        assert!(!check(HeaderName::Contact, "*, <sip:a@b>"));
        assert!(check(HeaderName::Contact, "<sip:a@b>, <sip:c@d>;q=0.5"));
        let items: Vec<_> = ListItems::new("a , b,c", token_item).collect();
        assert_eq!(items, vec![Ok("a"), Ok("b"), Ok("c")]);
        // A fault ends the list: readers that skip faults must not spin.
        for malformed in ["a, ", "a b, c"] {
            let items: Vec<_> = ListItems::new(malformed, token_item).collect();
            assert!(matches!(items[..], [Err(_)]), "{malformed}: {items:?}");
        }
    }
}
