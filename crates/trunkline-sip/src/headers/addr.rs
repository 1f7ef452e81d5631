//! Addresses: `From`, `To`, `Contact`, `Route`, `Record-Route`, `Path`,
//! `Refer-To`, `Referred-By`, `Reply-To`, `P-Asserted-Identity`
//! (RFC 3261 §20.10 name-addr and addr-spec rules).

use crate::grammar::{Fault, PResult, fail, quoted_string, sws, token, unescape_quoted};
use crate::params::{Params, header_params_checked};
use crate::uri::{Uri, bare_uri, uri_exact};
use std::borrow::Cow;

/// A `name-addr` or `addr-spec` with its header parameters:
/// `"Alice" <sip:alice@example.com>;tag=1928301774`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    display_name: Option<&'a str>,
    quoted: bool,
    uri: Uri<'a>,
    params: Params<'a>,
    /// The first `tag` parameter, noted while the parameters were checked.
    tag: Option<&'a str>,
}

impl<'a> NameAddr<'a> {
    /// The display name, unquoted and unescaped.
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.display_name.map(|d| {
            if self.quoted {
                unescape_quoted(d)
            } else {
                Cow::Borrowed(d)
            }
        })
    }
    /// The display name as written, without the quotes.
    pub fn display_name_raw(&self) -> Option<&'a str> {
        self.display_name
    }
    /// The URI.
    pub fn uri(&self) -> Uri<'a> {
        self.uri
    }
    /// The header parameters (after the URI).
    pub fn params(&self) -> Params<'a> {
        self.params
    }
    /// One header parameter: `None` if absent, `Some("")` if valueless.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.get(name)
    }
    /// The `tag` parameter of From and To (§19.3).
    pub fn tag(&self) -> Option<&'a str> {
        self.tag
    }
    /// The Contact `expires` parameter, saturating at 2^32-1.
    pub fn expires(&self) -> Option<u32> {
        let e = self.param("expires")?;
        crate::grammar::delta_seconds_saturating(e)
            .ok()
            .map(|(_, v)| v)
    }
    /// The Contact `q` parameter in thousandths (`q=0.7` is 700).
    pub fn q(&self) -> Option<u16> {
        qvalue(self.param("q")?)
    }
}

/// A Contact value: an address, or `*` to remove every binding (§10.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *`
    Wildcard,
    /// An address with its parameters.
    Address(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// The address, unless this is the wildcard.
    pub fn address(&self) -> Option<&NameAddr<'a>> {
        match self {
            Contact::Wildcard => None,
            Contact::Address(a) => Some(a),
        }
    }
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn qvalue(q: &str) -> Option<u16> {
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    if frac.len() > 3 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let thousandths = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |v, d| v * 10 + u16::from(d - b'0'));
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// `( name-addr / addr-spec ) *( SEMI generic-param )`
pub(crate) fn name_addr(i: &str) -> PResult<'_, NameAddr<'_>> {
    address(i, false, |_, _| Ok(()))
}

/// `name-addr *( SEMI rr-param )`: Route, Record-Route and Path require `<>`.
pub(crate) fn name_addr_angle(i: &str) -> PResult<'_, NameAddr<'_>> {
    address(i, true, |_, _| Ok(()))
}

/// A Contact value: `*` or an address whose `q` and `expires` are well formed.
pub(crate) fn contact(i: &str) -> PResult<'_, Contact<'_>> {
    if let Some(rest) = i.strip_prefix('*') {
        return Ok((rest, Contact::Wildcard));
    }
    let (rest, addr) = address(i, false, contact_param)?;
    Ok((rest, Contact::Address(addr)))
}

/// `c-p-q` and `c-p-expires` (§20.10).
fn contact_param(name: &str, value: Option<&str>) -> Result<(), &'static str> {
    if name.eq_ignore_ascii_case("q") && value.and_then(qvalue).is_none() {
        return Err("bad q parameter");
    }
    if name.eq_ignore_ascii_case("expires")
        && !value.is_some_and(|e| e.bytes().all(|c| c.is_ascii_digit()))
    {
        return Err("bad expires parameter");
    }
    Ok(())
}

fn address(
    i: &str,
    require_angle: bool,
    check_param: impl Fn(&str, Option<&str>) -> Result<(), &'static str>,
) -> PResult<'_, NameAddr<'_>> {
    let (rest, display_name, quoted) = if i.starts_with('"') {
        let (r, d) = quoted_string(i)?;
        (sws(r), Some(d), true)
    } else {
        // Tokens separated by whitespace, then `<`, make a display name
        // (`caller<sip:…>` is valid too, RFC 4475 §3.1.1.6).
        let mut r = i;
        let mut end = 0;
        while let Ok((after, _)) = token(r) {
            end = i.len() - after.len();
            r = sws(after);
        }
        if end > 0 && r.starts_with('<') {
            (r, Some(&i[..end]), false)
        } else if end > 0 && !r.starts_with(':') {
            return fail(
                r,
                "display name must be tokens or a quoted string before '<'",
            );
        } else {
            (i, None, false)
        }
    };
    let (rest, uri) = match rest.strip_prefix('<') {
        Some(inner) => {
            // A URI between brackets runs for dozens of bytes: a SIMD
            // search pays here, where a byte loop costs three times more.
            let Some(close) = memchr::memchr(b'>', inner.as_bytes()) else {
                return fail(rest, "missing '>'");
            };
            let uri = uri_exact(&inner[..close]).map_err(|f| {
                let what = match f.at.as_bytes().first() {
                    Some(b' ' | b'\t') => "whitespace inside '<' '>'",
                    _ => f.what,
                };
                nom::Err::Error(Fault { at: f.at, what })
            })?;
            (&inner[close + 1..], uri)
        }
        None if require_angle || display_name.is_some() => {
            return fail(rest, "expected '<'");
        }
        None => bare_uri(rest)?,
    };
    let (rest, (params, tag)) = header_params_checked(rest, "tag", check_param)?;
    Ok((
        rest,
        NameAddr {
            display_name,
            quoted,
            uri,
            params,
            tag,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::all;

    #[test]
    fn name_addr_forms() {
        let a = all(
            r#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
            name_addr,
        )
        .unwrap();
        assert_eq!(a.display_name().unwrap(), r#"J Rosenberg \""#);
        assert_eq!(a.uri().as_str(), "sip:jdrosen@example.com");
        assert_eq!(a.tag(), Some("98asjd8"));

        let a = all("caller<sip:caller@example.com>;tag=323", name_addr).unwrap();
        assert_eq!(a.display_name().unwrap(), "caller");

        let a = all(
            "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>",
            name_addr,
        )
        .unwrap();
        assert_eq!(a.display_name().unwrap(), "token1~` token2'+_ token3*%!.-");

        let a = all("sip:caller@example.net;tag=134161461246", name_addr).unwrap();
        assert_eq!(a.display_name(), None);
        assert_eq!(a.uri().as_str(), "sip:caller@example.net");
        assert_eq!(a.tag(), Some("134161461246"));

        let a = all("isbn:2983792873", name_addr).unwrap();
        assert_eq!(a.uri().scheme(), "isbn");
    }

    #[test]
    fn contact_params_and_wildcard() {
        let (_, c) = contact(r#""Quoted string \"\"" <sip:jdrosen@example.com> ; newparam = newvalue ;  secondparam ; q = 0.33"#).unwrap();
        let a = c.address().unwrap();
        assert_eq!(a.q(), Some(330));
        assert_eq!(a.param("newparam"), Some("newvalue"));
        assert_eq!(a.param("secondparam"), Some(""));
        assert_eq!(contact("*").unwrap().1, Contact::Wildcard);
        assert!(contact("<sip:a@b>;q=1.5").is_err());
        assert!(contact("<sip:a@b>;expires=soon").is_err());
        assert_eq!(qvalue("1.000"), Some(1000));
        assert_eq!(qvalue("0"), Some(0));
        assert_eq!(qvalue("0.5"), Some(500));
        assert_eq!(qvalue("0.1234"), None);
    }

    #[test]
    fn torture_invalid_addresses() {
        for bad in [
            r#""Mr. J. User <sip:j.user@example.com>"#,
            r#""Watson, Thomas" < sip:t.watson@example.org >"#,
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            r#""Joe" <sip:joe@example.org>;;;;"#,
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            "<sip:a@b",
            r#""Joe" sip:joe@example.org"#,
        ] {
            assert!(all(bad, name_addr).is_err(), "{bad}");
        }
        assert!(all("sip:a@b;lr", name_addr_angle).is_err());
    }
}
