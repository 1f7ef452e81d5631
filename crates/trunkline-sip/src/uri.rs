//! URIs: `sip:` / `sips:` (RFC 3261 §19.1), `tel:` (RFC 3966), and any
//! other absolute URI kept as text.

use crate::Error;
use crate::grammar::{
    Class, Fault, PResult, escaped_run, fail, find_byte, host_run, is_password, is_scheme, is_uric,
    is_userinfo, percent_decode,
};
use crate::params::{Params, uri_params};
use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A parsed URI, borrowing the text it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uri<'a> {
    /// `sip:` or `sips:`.
    Sip(SipUri<'a>),
    /// `tel:`.
    Tel(TelUri<'a>),
    /// Any other scheme (`http:`, `urn:`, `isbn:`…), kept as text.
    Other(AbsoluteUri<'a>),
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipUri<'a> {
    raw: &'a str,
    secure: bool,
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: Host<'a>,
    port: Option<u16>,
    params: Params<'a>,
    headers: Option<&'a str>,
}

/// A `tel:` URI: a telephone number and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelUri<'a> {
    raw: &'a str,
    number: &'a str,
    params: Params<'a>,
}

/// An absolute URI of a scheme this crate does not interpret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbsoluteUri<'a> {
    raw: &'a str,
    scheme: &'a str,
}

/// The host part of a SIP URI or Via.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Host<'a> {
    /// A domain name, as written (compare case-insensitively).
    Domain(&'a str),
    /// An IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 reference; written in brackets.
    Ipv6(Ipv6Addr),
}

impl<'a> Uri<'a> {
    /// Parses a whole URI, as it appears between `<` and `>`.
    pub fn parse(s: &'a str) -> Result<Uri<'a>, Error> {
        uri_exact(s).map_err(|f| Error::Uri {
            offset: s.len() - f.at.len(),
            what: f.what,
        })
    }

    /// The URI exactly as written.
    pub fn as_str(&self) -> &'a str {
        match self {
            Uri::Sip(u) => u.raw,
            Uri::Tel(u) => u.raw,
            Uri::Other(u) => u.raw,
        }
    }

    /// The scheme, as written (`sip`, `SIPS`, `tel`, `http`…).
    pub fn scheme(&self) -> &'a str {
        let raw = self.as_str();
        &raw[..find_byte(raw, b':').unwrap_or(0)]
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }
}

impl<'a> SipUri<'a> {
    /// `sips:`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }
    /// The user part, escapes kept (`%75se%72`).
    pub fn user(&self) -> Option<&'a str> {
        self.user
    }
    /// The user part with `%HH` escapes decoded; may hold any octet.
    pub fn user_decoded(&self) -> Option<Cow<'a, [u8]>> {
        self.user.map(percent_decode)
    }
    /// The password, escapes kept. RFC 3261 advises against using it.
    pub fn password(&self) -> Option<&'a str> {
        self.password
    }
    /// The host.
    pub fn host(&self) -> Host<'a> {
        self.host
    }
    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// The URI parameters (`;transport=tcp;lr`).
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// One URI parameter: `None` if absent, `Some("")` if valueless.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.get(name)
    }
    /// The `transport` parameter.
    pub fn transport(&self) -> Option<&'a str> {
        self.param("transport")
    }
    /// The `lr` parameter (loose routing, RFC 3261 §16.12).
    pub fn is_loose_route(&self) -> bool {
        self.params.contains("lr")
    }
    /// The `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.param("maddr")
    }
    /// The headers after `?`, as written (`Route=%3Csip:x%3E&Subject=y`).
    pub fn headers(&self) -> Option<&'a str> {
        self.headers
    }
    /// The URI exactly as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
}

impl<'a> TelUri<'a> {
    /// The number, visual separators kept (`+1-201-555-0123`).
    pub fn number(&self) -> &'a str {
        self.number
    }
    /// The parameters (`;phone-context=example.com`).
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// The URI exactly as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
}

impl<'a> AbsoluteUri<'a> {
    /// The scheme.
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }
    /// The URI exactly as written.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
}

impl Host<'_> {
    /// The address, when the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(a)),
            Host::Ipv6(a) => Some(IpAddr::V6(a)),
        }
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Parses a URI that must span all of `s`.
pub(crate) fn uri_exact(s: &str) -> Result<Uri<'_>, Fault<'_>> {
    match uri_prefix(s, s.len()) {
        Ok((_, uri)) => Ok(uri),
        Err(nom::Err::Error(f) | nom::Err::Failure(f)) => Err(f),
        Err(nom::Err::Incomplete(_)) => Err(Fault {
            at: s,
            what: "incomplete URI",
        }),
    }
}

/// Parses a URI occupying the first `len` bytes of `i`. Inlined, as is
/// [`sip_uri`]: a URI is a large value, and each call level would copy it.
#[inline]
fn uri_prefix(i: &str, len: usize) -> PResult<'_, Uri<'_>> {
    let raw = &i[..len];
    let b = raw.as_bytes();
    // `sip:` and `sips:` first: nearly every URI a PBX reads is one.
    let sip_scheme = if b.len() > 4 && b[..4].eq_ignore_ascii_case(b"sip:") {
        Some((false, 4))
    } else if b.len() > 5 && b[..5].eq_ignore_ascii_case(b"sips:") {
        Some((true, 5))
    } else {
        None
    };
    if let Some((secure, scheme_len)) = sip_scheme {
        let uri = sip_uri(raw, secure, &raw[scheme_len..])?;
        return Ok((&i[len..], Uri::Sip(uri)));
    }
    let Some(colon) = find_byte(raw, b':') else {
        return fail(i, "URI has no scheme");
    };
    let (scheme, rest) = (&raw[..colon], &raw[colon + 1..]);
    if !scheme
        .as_bytes()
        .first()
        .is_some_and(u8::is_ascii_alphabetic)
        || !scheme.bytes().all(is_scheme)
    {
        return fail(i, "bad URI scheme");
    }
    let uri = if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        return fail(rest, "empty SIP URI");
    } else if scheme.eq_ignore_ascii_case("tel") {
        Uri::Tel(tel_uri(raw, rest)?)
    } else {
        if rest.is_empty() {
            return fail(rest, "empty URI after the scheme");
        }
        if let Some(bad) = rest.bytes().position(|c| !is_uric(c)) {
            return fail(&rest[bad..], "character not allowed in a URI");
        }
        Uri::Other(AbsoluteUri { raw, scheme })
    };
    Ok((&i[len..], uri))
}

#[inline]
fn sip_uri<'a>(
    raw: &'a str,
    secure: bool,
    rest: &'a str,
) -> Result<SipUri<'a>, nom::Err<Fault<'a>>> {
    let (user, password, hostport) = match userinfo(rest)? {
        Some((user, password, hostport)) => (Some(user), password, hostport),
        None => (None, None, rest),
    };
    let (r, host) = host(hostport)?;
    let (r, port) = match r.strip_prefix(':') {
        Some(p) => {
            let (r, port) = port(p)?;
            (r, Some(port))
        }
        None => (r, None),
    };
    let (r, params) = uri_params(r)?;
    let (r, headers) = match r.strip_prefix('?') {
        Some(h) => {
            let r = uri_headers(h)?;
            (r, Some(&h[..h.len() - r.len()]))
        }
        None => (r, None),
    };
    if !r.is_empty() {
        return fail(r, "unexpected character in URI");
    }
    Ok(SipUri {
        raw,
        secure,
        user,
        password,
        host,
        port,
        params,
        headers,
    })
}

/// `userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"`, read
/// in one pass: `Some((user, password, rest after '@'))`, or `None` when
/// there is no `@` and the URI starts with its host.
#[allow(clippy::type_complexity)]
fn userinfo(rest: &str) -> Result<Option<(&str, Option<&str>, &str)>, nom::Err<Fault<'_>>> {
    let b = rest.as_bytes();
    let mut colon = None;
    let mut n = 0;
    while n < b.len() {
        match b[n] {
            b'@' => {
                let user = &rest[..colon.unwrap_or(n)];
                if user.is_empty() {
                    return fail(rest, "empty user part");
                }
                let password = colon.map(|c| &rest[c + 1..n]);
                if let Some(p) = password
                    && let Some(bad) = p.bytes().position(|c| !(is_password(c) || c == b'%'))
                {
                    return fail(&p[bad..], "character not allowed in the password");
                }
                return Ok(Some((user, password, &rest[n + 1..])));
            }
            b'%' if !(n + 2 < b.len()
                && b[n + 1].is_ascii_hexdigit()
                && b[n + 2].is_ascii_hexdigit()) =>
            {
                return fail(
                    &rest[n..],
                    "bad %-escape: '%' must be followed by two hex digits",
                );
            }
            b':' if colon.is_none() => colon = Some(n),
            c if !is_userinfo(c) => return Ok(None),
            _ => {}
        }
        n += 1;
    }
    Ok(None)
}

/// `hname "=" hvalue *( "&" hname "=" hvalue )`
fn uri_headers(i: &str) -> Result<&str, nom::Err<Fault<'_>>> {
    let mut rest = i;
    loop {
        let (r, _) = escaped_run(rest, Class::HNV, Some("empty URI header name"))?;
        let Some(v) = r.strip_prefix('=') else {
            return fail(r, "URI header without '='");
        };
        let (r, _) = escaped_run(v, Class::HNV, None)?;
        match r.strip_prefix('&') {
            Some(next) => rest = next,
            None => return Ok(r),
        }
    }
}

fn tel_uri<'a>(raw: &'a str, rest: &'a str) -> Result<TelUri<'a>, nom::Err<Fault<'a>>> {
    let n = rest
        .bytes()
        .position(|c| {
            !(c.is_ascii_hexdigit() || matches!(c, b'*' | b'#' | b'+' | b'-' | b'.' | b'(' | b')'))
        })
        .unwrap_or(rest.len());
    if n == 0 {
        return fail(rest, "empty telephone number");
    }
    let (r, params) = uri_params(&rest[n..])?;
    if !r.is_empty() {
        return fail(r, "unexpected character in tel URI");
    }
    Ok(TelUri {
        raw,
        number: &rest[..n],
        params,
    })
}

/// `host = hostname / IPv4address / IPv6reference`
pub(crate) fn host(i: &str) -> PResult<'_, Host<'_>> {
    if let Some(v6) = i.strip_prefix('[') {
        let Some(close) = find_byte(v6, b']') else {
            return fail(i, "unterminated IPv6 reference");
        };
        return match v6[..close].parse() {
            Ok(addr) => Ok((&v6[close + 1..], Host::Ipv6(addr))),
            Err(_) => fail(i, "bad IPv6 address"),
        };
    }
    let run = host_run(i.as_bytes());
    let (name, rest) = i.split_at(run.len);
    if name.is_empty() {
        return fail(i, "missing host");
    }
    if !run.domain {
        return match ipv4(name.as_bytes()) {
            Some(addr) => Ok((rest, Host::Ipv4(addr))),
            None => fail(i, "bad IPv4 address"),
        };
    }
    // Every label has a character: no leading dot, no two in a row.
    if name.starts_with(['-', '.']) || run.double_dot {
        return fail(i, "bad host name");
    }
    Ok((rest, Host::Domain(name)))
}

/// `IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT`, each
/// at most 255; `s` holds only digits and dots.
fn ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let (mut index, mut value, mut digits) = (0, 0u16, 0);
    for &c in s {
        if c == b'.' {
            if digits == 0 || index == 3 {
                return None;
            }
            octets[index] = u8::try_from(value).ok()?;
            (index, value, digits) = (index + 1, 0, 0);
        } else {
            digits += 1;
            if digits > 3 {
                return None;
            }
            value = value * 10 + u16::from(c - b'0');
        }
    }
    if index != 3 || digits == 0 {
        return None;
    }
    octets[3] = u8::try_from(value).ok()?;
    Some(Ipv4Addr::from(octets))
}

/// `port = 1*DIGIT`, within 0..=65535.
pub(crate) fn port(i: &str) -> PResult<'_, u16> {
    let (r, p) = crate::grammar::u32_digits(i, "expected a port number")?;
    match u16::try_from(p) {
        Ok(p) => Ok((r, p)),
        Err(_) => fail(i, "port number out of range"),
    }
}

/// The extent of an `addr-spec` written without angle brackets: it ends at
/// whitespace, `;` (header parameters) or `,` (next list element).
pub(crate) fn bare_uri_len(i: &str) -> usize {
    i.bytes()
        .position(|c| matches!(c, b';' | b',' | b' ' | b'\t'))
        .unwrap_or(i.len())
}

/// An `addr-spec` outside angle brackets (RFC 3261 §20.10): URI headers
/// (`?`) are not allowed there, and `;` starts the header's parameters.
pub(crate) fn bare_uri(i: &str) -> PResult<'_, Uri<'_>> {
    let (rest, uri) = uri_prefix(i, bare_uri_len(i))?;
    if let Uri::Sip(sip) = &uri
        && let Some(h) = sip.headers
    {
        return fail(
            &i[(h.as_ptr() as usize - i.as_ptr() as usize) - 1..],
            "a URI with headers must be enclosed in '<' '>'",
        );
    }
    Ok((rest, uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri<'_> {
        match Uri::parse(s).unwrap() {
            Uri::Sip(u) => u,
            other => panic!("not a SIP URI: {other:?}"),
        }
    }

    #[test]
    fn sip_uri_parts() {
        let u = sip("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?Subject=hi&x=");
        assert!(u.is_secure());
        assert_eq!(u.user(), Some("alice"));
        assert_eq!(u.password(), Some("secret"));
        assert_eq!(u.host(), Host::Ipv6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port(), Some(5061));
        assert_eq!(u.transport(), Some("tcp"));
        assert!(u.is_loose_route());
        assert_eq!(u.headers(), Some("Subject=hi&x="));
        assert_eq!(u.host().to_string(), "[2001:db8::1]");
    }

    #[test]
    fn torture_user_parts() {
        // RFC 4475 §3.1.1.2 and §3.1.1.9.
        let u = sip(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        );
        assert_eq!(
            u.user(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(
            u.password(),
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
        assert_eq!(u.host(), Host::Domain("example.com"));
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user(), Some("user;par=u%40example.net"));
        assert!(u.params().is_empty());
        let u = sip("sip:sips%3Auser%40example.com@example.net");
        assert_eq!(
            u.user_decoded().unwrap(),
            b"sips:user@example.com".as_slice()
        );
    }

    #[test]
    fn other_schemes() {
        assert!(
            matches!(Uri::parse("tel:+1-201-555-0123;phone-context=x"), Ok(Uri::Tel(t)) if t.number() == "+1-201-555-0123")
        );
        let u = Uri::parse("soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.scheme(), "soap.beep");
        assert!(matches!(u, Uri::Other(_)));
        assert_eq!(
            Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent")
                .unwrap()
                .scheme(),
            "nobodyKnowsThisScheme"
        );
    }

    #[test]
    fn malformed_uris() {
        for bad in [
            "<sip:user@example.com>",
            "sip:user@example.com; lr",
            "sip:user@",
            "sip:user@host:99999",
            "sip:user@host;;lr",
            "sip:us%2@host",
            "sip:[::1",
            "sip:host?novalue",
            "sip:256.1.1.1",
            "sip:1.2.3",
            "sip:1.2.3.4.5",
            "sip:1..2.3",
            "sip:a..example.com",
            // Two dots in a row wherever they fall in a four-byte step.
            "sip:abc..d",
            "sip:ab..cd",
            "sip:abcdefg..h",
            "sip:abcdef..",
            "sip:.example.com",
            "sip:-example.com",
            ":nothing",
            "1sip:host",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts() {
        for (text, host) in [
            ("sip:192.0.2.1", Host::Ipv4([192, 0, 2, 1].into())),
            ("sip:a.example.com.", Host::Domain("a.example.com.")),
            ("sip:1.2.3.4a", Host::Domain("1.2.3.4a")),
            ("sip:x_y-1.a-.z", Host::Domain("x_y-1.a-.z")),
        ] {
            assert_eq!(sip(text).host(), host, "{text}");
        }
    }

    #[test]
    fn bare_uris_stop_at_parameters_and_refuse_headers() {
        let (rest, u) = bare_uri("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert_eq!(rest, ";unknownparam");
        assert!(u.as_sip().unwrap().params().is_empty());
        assert!(bare_uri("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
    }
}
