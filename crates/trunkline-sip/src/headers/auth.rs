//! `Authorization`, `Proxy-Authorization`, `WWW-Authenticate`,
//! `Proxy-Authenticate` (RFC 3261 §20.7, §20.27, §20.28, §20.44; RFC 7616).

use crate::grammar::{PResult, fail, lws, quoted_string, sep, token};
use std::fmt;

/// An authentication header value: a scheme and its parameters, such as
/// `Digest username="1001", realm="pbx.example.com", …`. The same shape
/// carries credentials (Authorization) and challenges (WWW-Authenticate).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Auth<'a> {
    scheme: &'a str,
    params: &'a str,
}

impl<'a> Auth<'a> {
    /// The scheme as written, usually `Digest`.
    pub fn scheme(&self) -> &'a str {
        self.scheme
    }
    /// Whether the scheme is `Digest` (case-insensitive).
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }
    /// The parameters as written.
    pub fn params_str(&self) -> &'a str {
        self.params
    }
    /// Every `(name, value)` pair; quoted values come without their quotes.
    pub fn params(&self) -> AuthParams<'a> {
        AuthParams { rest: self.params }
    }
    /// One parameter by case-insensitive name, unquoted (escapes kept).
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
    /// `username`
    pub fn username(&self) -> Option<&'a str> {
        self.param("username")
    }
    /// `realm`
    pub fn realm(&self) -> Option<&'a str> {
        self.param("realm")
    }
    /// `nonce`
    pub fn nonce(&self) -> Option<&'a str> {
        self.param("nonce")
    }
    /// `uri` (the digest-uri)
    pub fn uri(&self) -> Option<&'a str> {
        self.param("uri")
    }
    /// `response`
    pub fn response(&self) -> Option<&'a str> {
        self.param("response")
    }
    /// `algorithm` (`MD5` when absent, RFC 7616 §3.3)
    pub fn algorithm(&self) -> Option<&'a str> {
        self.param("algorithm")
    }
    /// `qop`
    pub fn qop(&self) -> Option<&'a str> {
        self.param("qop")
    }
    /// `cnonce`
    pub fn cnonce(&self) -> Option<&'a str> {
        self.param("cnonce")
    }
    /// `nc`, the nonce count, from its eight hex digits.
    pub fn nonce_count(&self) -> Option<u32> {
        u32::from_str_radix(self.param("nc")?, 16).ok()
    }
    /// `opaque`
    pub fn opaque(&self) -> Option<&'a str> {
        self.param("opaque")
    }
    /// `stale=true` in a challenge.
    pub fn is_stale(&self) -> bool {
        self.param("stale")
            .is_some_and(|s| s.eq_ignore_ascii_case("true"))
    }
}

impl fmt::Debug for Auth<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("scheme", &self.scheme)
            .field("params", &self.params().collect::<Vec<_>>())
            .finish()
    }
}

/// Iterator over the `name=value` pairs of an [`Auth`] value.
#[derive(Debug, Clone)]
pub struct AuthParams<'a> {
    rest: &'a str,
}

impl<'a> Iterator for AuthParams<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        // Validated at parse time: `name = value` pairs separated by commas.
        let (r, name) = token(self.rest).ok()?;
        let (r, ()) = sep(b'=', "")(r).ok()?;
        let (r, value) = auth_value(r).ok()?;
        self.rest = sep(b',', "")(r).map_or("", |(r, ())| r);
        Some((name, value))
    }
}

/// `token / quoted-string`, unquoted.
fn auth_value(i: &str) -> PResult<'_, &str> {
    if i.starts_with('"') {
        quoted_string(i)
    } else {
        token(i)
    }
}

/// `auth-scheme LWS auth-param *( COMMA auth-param )`
pub(crate) fn auth(i: &str) -> PResult<'_, Auth<'_>> {
    let (r, scheme) = token(i)?;
    let (r, ()) = lws(r)?;
    let params_start = r;
    let mut r = r;
    loop {
        let (after, _) = token(r)?;
        let (after, ()) = sep(b'=', "expected '=' in an authentication parameter")(after)?;
        let (after, _) = auth_value(after)?;
        match sep(b',', "")(after) {
            Ok((next, ())) => r = next,
            Err(_) => {
                r = after;
                break;
            }
        }
    }
    let params = &params_start[..params_start.len() - r.len()];
    if params.is_empty() {
        return fail(params_start, "authentication scheme without parameters");
    }
    Ok((r, Auth { scheme, params }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grammar::all;

    #[test]
    fn digest_credentials() {
        let a = all(
            r#"Digest username="1001", realm="pbx.example.com", nonce="dcd98b", uri="sip:pbx.example.com", response="6629fae4", algorithm=MD5, qop=auth, nc=00000001, cnonce="0a4f113b""#,
            auth,
        )
        .unwrap();
        assert!(a.is_digest());
        assert_eq!(a.username(), Some("1001"));
        assert_eq!(a.realm(), Some("pbx.example.com"));
        assert_eq!(a.uri(), Some("sip:pbx.example.com"));
        assert_eq!(a.algorithm(), Some("MD5"));
        assert_eq!(a.qop(), Some("auth"));
        assert_eq!(a.nonce_count(), Some(1));
        assert_eq!(a.params().count(), 9);
    }

    #[test]
    fn challenges_and_unknown_schemes() {
        let c = all(
            r#"Digest realm="x", nonce="y", qop="auth,auth-int", algorithm=SHA-256, stale=TRUE"#,
            auth,
        )
        .unwrap();
        assert_eq!(c.qop(), Some("auth,auth-int"));
        assert!(c.is_stale());
        let o = all("NoOneKnowsThisScheme opaque-data=here", auth).unwrap();
        assert_eq!(o.scheme(), "NoOneKnowsThisScheme");
        assert_eq!(o.param("opaque-data"), Some("here"));
        for bad in [
            "Digest",
            "Digest realm",
            "Digest realm=\"x\",",
            "Digest realm=\"x",
        ] {
            assert!(all(bad, auth).is_err(), "{bad}");
        }
    }
}
