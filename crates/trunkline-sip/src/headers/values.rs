//! The single-purpose headers: CSeq, Call-ID, counters and durations,
//! media types, option-tag lists, Event, Subscription-State, Reason,
//! Retry-After, Replaces, Warning, Session-Expires, RAck.

use crate::grammar::{
    Class, PResult, delta_seconds_saturating, fail, lws, many1, quoted_string, sep, sws, token,
    u32_digits,
};
use crate::params::{Params, header_params};

/// `CSeq: 314159 INVITE`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number.
    pub seq: u32,
    /// The method, as written.
    pub method: &'a str,
}

/// `CSeq = 1*DIGIT LWS Method`; the number must fit 32 bits (RFC 4475 §3.1.2.4).
pub(crate) fn cseq(i: &str) -> PResult<'_, CSeq<'_>> {
    let (i, seq) = u32_digits(i, "expected a sequence number")?;
    let (i, ()) = lws(i)?;
    let (i, method) = token(i)?;
    Ok((i, CSeq { seq, method }))
}

/// `callid = word [ "@" word ]`
pub(crate) fn call_id(i: &str) -> PResult<'_, &str> {
    let (r, _) = many1(Class::WORD, "empty Call-ID")(i)?;
    let r = match r.strip_prefix('@') {
        Some(host) => many1(Class::WORD, "empty Call-ID host part")(host)?.0,
        None => r,
    };
    Ok((r, &i[..i.len() - r.len()]))
}

/// `Max-Forwards = 1*DIGIT`, at most 255 (§20.22).
pub(crate) fn max_forwards(i: &str) -> PResult<'_, u8> {
    let (r, v) = u32_digits(i, "expected a number")?;
    match u8::try_from(v) {
        Ok(v) => Ok((r, v)),
        Err(_) => fail(i, "Max-Forwards above 255"),
    }
}

/// `Content-Length = 1*DIGIT`
pub(crate) fn content_length(i: &str) -> PResult<'_, u32> {
    u32_digits(i, "expected a non-negative number")
}

/// `Expires`, `Min-Expires`: `delta-seconds`, saturating (§20.19).
pub(crate) fn delta_seconds(i: &str) -> PResult<'_, u32> {
    delta_seconds_saturating(i)
}

/// `RSeq = 1*DIGIT` (RFC 3262).
pub(crate) fn rseq(i: &str) -> PResult<'_, u32> {
    u32_digits(i, "expected a number")
}

/// A token in a comma-separated list: a method in Allow, an option tag in
/// Supported / Require / Proxy-Require / Unsupported, an event type in
/// Allow-Events, a coding in Content-Encoding.
pub(crate) fn token_item(i: &str) -> PResult<'_, &str> {
    token(i)
}

/// A media type: `application/sdp;charset=utf-8`. Accept's `*/*` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    mtype: &'a str,
    subtype: &'a str,
    params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// `application` in `application/sdp`.
    pub fn mtype(&self) -> &'a str {
        self.mtype
    }
    /// `sdp` in `application/sdp`.
    pub fn subtype(&self) -> &'a str {
        self.subtype
    }
    /// Parameters such as `charset` or `boundary`.
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// Whether this is `type/subtype`, case-insensitively.
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// `m-type SLASH m-subtype *( SEMI m-parameter )`
pub(crate) fn media_type(i: &str) -> PResult<'_, MediaType<'_>> {
    let (i, mtype) = token(i)?;
    let (i, ()) = sep(b'/', "expected '/' in a media type")(i)?;
    let (i, subtype) = token(i)?;
    let (i, params) = header_params(i)?;
    Ok((
        i,
        MediaType {
            mtype,
            subtype,
            params,
        },
    ))
}

/// A token and its parameters: Event (`presence;id=7`), Subscription-State
/// (`active;expires=600`), Reason (`SIP;cause=200;text="Call completed"`),
/// Session-Expires refresher and similar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenParams<'a> {
    value: &'a str,
    params: Params<'a>,
}

impl<'a> TokenParams<'a> {
    /// The token: the event package, subscription state or protocol.
    pub fn value(&self) -> &'a str {
        self.value
    }
    /// The parameters.
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// One parameter: `None` if absent, `Some("")` if valueless.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.get(name)
    }
    /// A numeric parameter (`expires`, `retry-after`, `cause`).
    pub fn param_u32(&self, name: &str) -> Option<u32> {
        self.param(name)?.parse().ok()
    }
}

/// `Event` (RFC 6665 §8.2.1): the package is the token, `id` a parameter.
pub type Event<'a> = TokenParams<'a>;
/// `Subscription-State` (RFC 6665 §8.2.3): `active`, `pending`, `terminated`.
pub type SubscriptionState<'a> = TokenParams<'a>;
/// `Reason` (RFC 3326): protocol with `cause` and `text`.
pub type Reason<'a> = TokenParams<'a>;

/// `token *( SEMI generic-param )`
pub(crate) fn token_params(i: &str) -> PResult<'_, TokenParams<'_>> {
    let (i, value) = token(i)?;
    let (i, params) = header_params(i)?;
    Ok((i, TokenParams { value, params }))
}

/// `Retry-After: 18000 (in maintenance);duration=3600`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter<'a> {
    /// Seconds to wait.
    pub seconds: u32,
    /// The comment, without its parentheses.
    pub comment: Option<&'a str>,
    /// Parameters such as `duration`.
    pub params: Params<'a>,
}

/// `delta-seconds [ comment ] *( SEMI retry-param )`; an overlarge value
/// is an error here (RFC 4475 §3.1.2.5).
pub(crate) fn retry_after(i: &str) -> PResult<'_, RetryAfter<'_>> {
    let (r, seconds) = u32_digits(i, "expected delta-seconds")?;
    let r = sws(r);
    let (r, comment) = if r.starts_with('(') {
        let (after, c) = comment(r)?;
        (after, Some(c))
    } else {
        (r, None)
    };
    let (r, params) = header_params(r)?;
    Ok((
        r,
        RetryAfter {
            seconds,
            comment,
            params,
        },
    ))
}

/// `comment = LPAREN *(ctext / quoted-pair / comment) RPAREN`; returns the inside.
fn comment(i: &str) -> PResult<'_, &str> {
    let b = i.as_bytes();
    let mut depth = 0usize;
    let mut n = 0;
    while n < b.len() {
        match b[n] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok((&i[n + 1..], &i[1..n]));
                }
            }
            b'\\' => n += 1,
            _ => {}
        }
        n += 1;
    }
    fail(i, "unterminated comment")
}

/// `Replaces: 98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff` (RFC 3891).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replaces<'a> {
    /// The Call-ID of the dialog to replace.
    pub call_id: &'a str,
    /// `to-tag`, `from-tag`, `early-only`.
    pub params: Params<'a>,
}

impl<'a> Replaces<'a> {
    /// `to-tag`
    pub fn to_tag(&self) -> Option<&'a str> {
        self.params.get("to-tag")
    }
    /// `from-tag`
    pub fn from_tag(&self) -> Option<&'a str> {
        self.params.get("from-tag")
    }
    /// `early-only`
    pub fn early_only(&self) -> bool {
        self.params.contains("early-only")
    }
}

/// `callid *(SEMI replaces-param)`
pub(crate) fn replaces(i: &str) -> PResult<'_, Replaces<'_>> {
    let (i, call_id) = call_id(i)?;
    let (i, params) = header_params(i)?;
    Ok((i, Replaces { call_id, params }))
}

/// `Warning: 370 devnull "Choose a bigger pipe"` (§20.43).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warning<'a> {
    /// The three-digit warning code.
    pub code: u16,
    /// The host (or pseudonym) that added it.
    pub agent: &'a str,
    /// The text, without quotes.
    pub text: &'a str,
}

/// `warn-code SP warn-agent SP warn-text`
pub(crate) fn warning(i: &str) -> PResult<'_, Warning<'_>> {
    let (r, code) = many1(Class::DIGIT, "expected a warn-code")(i)?;
    if code.len() != 3 {
        return fail(i, "warn-code must be three digits");
    }
    let (r, ()) = lws(r)?;
    // `warn-agent = hostport / pseudonym`: token characters, `:` and brackets.
    let (r, agent) = many1(Class::GEN_VALUE, "expected a warn-agent")(r)?;
    let (r, ()) = lws(r)?;
    let (r, text) = quoted_string(r)?;
    let code = code.bytes().fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
    Ok((r, Warning { code, agent, text }))
}

/// `Session-Expires: 1800;refresher=uac` (RFC 4028), also `Min-SE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires<'a> {
    /// The interval in seconds.
    pub seconds: u32,
    /// Parameters such as `refresher`.
    pub params: Params<'a>,
}

impl<'a> SessionExpires<'a> {
    /// `refresher=uac` / `uas`
    pub fn refresher(&self) -> Option<&'a str> {
        self.params.get("refresher")
    }
}

/// `delta-seconds *( SEMI se-params )`
pub(crate) fn session_expires(i: &str) -> PResult<'_, SessionExpires<'_>> {
    let (i, seconds) = delta_seconds_saturating(i)?;
    let (i, params) = header_params(i)?;
    Ok((i, SessionExpires { seconds, params }))
}

/// `RAck: 776656 1 INVITE` (RFC 3262 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RAck<'a> {
    /// The RSeq of the reliable provisional response.
    pub rseq: u32,
    /// The CSeq number of the request it answered.
    pub cseq: u32,
    /// The method of that request.
    pub method: &'a str,
}

/// `response-num LWS CSeq-num LWS Method`
pub(crate) fn rack(i: &str) -> PResult<'_, RAck<'_>> {
    let (i, rseq) = u32_digits(i, "expected a response number")?;
    let (i, ()) = lws(i)?;
    let (i, CSeq { seq, method }) = cseq(i)?;
    Ok((
        i,
        RAck {
            rseq,
            cseq: seq,
            method,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::all;

    #[test]
    fn scalars() {
        assert_eq!(
            all("0009    INVITE", cseq).unwrap(),
            CSeq {
                seq: 9,
                method: "INVITE"
            }
        );
        assert!(all("36893488147419103232 REGISTER", cseq).is_err());
        assert!(all("8INVITE", cseq).is_err());
        assert_eq!(all("0068", max_forwards), Ok(68));
        assert!(all("300", max_forwards).is_err());
        assert!(all("-999", content_length).is_err());
        assert_eq!(all("1".repeat(100).as_str(), delta_seconds), Ok(u32::MAX));
        assert_eq!(
            all(r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#, call_id),
            Ok(r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#)
        );
        assert!(all("a@b@c", call_id).is_err());
        assert!(all("a b", call_id).is_err());
    }

    #[test]
    fn structured_values() {
        let m = all("application/sdp ; charset=utf-8", media_type).unwrap();
        assert!(m.is("Application", "SDP"));
        assert_eq!(m.params().get("charset"), Some("utf-8"));
        let r = all("18000 (in (deep) maintenance);duration=3600", retry_after).unwrap();
        assert_eq!(
            (r.seconds, r.comment),
            (18000, Some("in (deep) maintenance"))
        );
        assert_eq!(r.params.get("duration"), Some("3600"));
        assert!(all("949302838503028349304023988", retry_after).is_err());
        let w = all(r#"370 devnull "Choose a bigger pipe""#, warning).unwrap();
        assert_eq!(
            (w.code, w.agent, w.text),
            (370, "devnull", "Choose a bigger pipe")
        );
        assert!(all(r#"1812 overture "In Progress""#, warning).is_err());
        let rep = all(
            "98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff;early-only",
            replaces,
        )
        .unwrap();
        assert_eq!(
            (rep.call_id, rep.to_tag(), rep.from_tag()),
            ("98732@sip.example.com", Some("ff87ff"), Some("r33th4x0r"))
        );
        assert!(rep.early_only());
        let reason = all(
            r#"SIP ;cause=200 ;text="Call completed elsewhere""#,
            token_params,
        )
        .unwrap();
        assert_eq!(reason.param_u32("cause"), Some(200));
        assert_eq!(reason.param("text"), Some("Call completed elsewhere"));
        let se = all("1800;refresher=uac", session_expires).unwrap();
        assert_eq!((se.seconds, se.refresher()), (1800, Some("uac")));
        assert_eq!(
            all("776656 1 INVITE", rack).unwrap(),
            RAck {
                rseq: 776656,
                cseq: 1,
                method: "INVITE"
            }
        );
    }
}
