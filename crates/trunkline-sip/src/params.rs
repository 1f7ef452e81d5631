//! `;name=value` parameter lists, shared by URIs and header values.

use crate::grammar::{
    Class, PResult, class_end, escaped_run, fail, find_byte, is_token, is_ws, quoted_string, sws,
    trim_ws, ws_end,
};
use std::fmt;

/// A validated parameter list, read lazily: `;lr;transport=tcp` or
/// `; tag = 98asjd8`. Names compare case-insensitively. A parameter
/// without a value reads as `Some("")` from [`Params::get`]; a quoted value
/// reads without its quotes (escapes kept).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Params<'a> {
    raw: &'a str,
}

impl<'a> Params<'a> {
    pub(crate) fn new(raw: &'a str) -> Params<'a> {
        Params { raw }
    }

    /// The list as written, from its first `;`.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }

    /// No parameters at all.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Every `(name, value)` pair in order.
    pub fn iter(&self) -> ParamIter<'a> {
        ParamIter { rest: self.raw }
    }

    /// The value of `name`: `None` if absent, `Some("")` if it has no value.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        let b = self.raw.as_bytes();
        let skip_ws = |i: usize| i + b[i..].iter().take_while(|c| is_ws(**c)).count();
        let after_name = skip_ws(self.find(name)?);
        if b.get(after_name) != Some(&b'=') {
            // Empty, but still a slice of the message: spans and
            // `Message::share` rely on every value pointing into it.
            return Some(&self.raw[after_name..after_name]);
        }
        let start = skip_ws(after_name + 1);
        if b.get(start) == Some(&b'"') {
            // A quoted value, read without its quotes; escapes are kept.
            let mut end = start + 1;
            while end < b.len() && b[end] != b'"' {
                end += if b[end] == b'\\' { 2 } else { 1 };
            }
            return Some(&self.raw[start + 1..end.min(b.len())]);
        }
        let len = b[start..]
            .iter()
            .take_while(|c| !matches!(c, b';' | b' ' | b'\t'))
            .count();
        Some(&self.raw[start..start + len])
    }

    /// Whether `name` is present, with or without a value.
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// The offset just after parameter `name`. The hot path of every tag
    /// and branch read: one pass over the bytes that compares names only
    /// at parameter starts.
    fn find(&self, name: &str) -> Option<usize> {
        let (b, name) = (self.raw.as_bytes(), name.as_bytes());
        let mut i = 0;
        let mut quoted = false;
        while i < b.len() {
            match b[i] {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b';' if !quoted => {
                    let start = i + 1 + b[i + 1..].iter().take_while(|c| is_ws(**c)).count();
                    let end = start + name.len();
                    if b.get(start..end)
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                        && !b.get(end).is_some_and(|c| is_token(*c))
                    {
                        return Some(end);
                    }
                }
                _ => {}
            }
            i += 1;
        }
        None
    }
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Iterator over a [`Params`] list.
#[derive(Debug, Clone)]
pub struct ParamIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a str, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        // The list was validated when parsed, so a plain scan is enough:
        // `;` outside quotes ends a parameter, the first `=` splits it.
        let s = sws(self.rest).strip_prefix(';')?;
        let bytes = s.as_bytes();
        let mut end = 0;
        let mut quoted = false;
        while end < bytes.len() {
            match bytes[end] {
                b'\\' if quoted => end += 1,
                b'"' => quoted = !quoted,
                b';' if !quoted => break,
                _ => {}
            }
            end += 1;
        }
        let end = end.min(s.len());
        let (param, rest) = s.split_at(end);
        self.rest = rest;
        let (name, value) = match find_byte(param, b'=') {
            Some(eq) => {
                let v = trim_ws(&param[eq + 1..]);
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(v);
                (&param[..eq], Some(v))
            }
            None => (param, None),
        };
        Some((trim_ws(name), value))
    }
}

/// Header parameters: `*( SEMI generic-param )`, `generic-param = token
/// [ EQUAL gen-value ]`, `gen-value = token / host / quoted-string`.
/// Returns the list as written; stops before anything that is not `;`.
pub(crate) fn header_params(i: &str) -> PResult<'_, Params<'_>> {
    // No parameter is named "": nothing is noted.
    let (rest, (params, _)) = header_params_checked(i, "", |_, _| Ok(()))?;
    Ok((rest, params))
}

/// [`header_params`], with `check` judging each `(name, value)` as it is
/// read (a quoted value keeps its quotes); a header whose parameters have
/// rules of their own (Via `ttl`, Contact `q`) passes them here. Also
/// returns the first value of parameter `noted`, as [`Params::get`] would
/// read it: the `tag` of an address or the `branch` of a Via, which every
/// layer reads, without a second scan of the list. Inlined: its result
/// (the rest, the list and the noted value) would otherwise go through
/// memory at each of the few places that call it.
#[inline]
pub(crate) fn header_params_checked<'a>(
    i: &'a str,
    noted: &str,
    check: impl Fn(&str, Option<&str>) -> Result<(), &'static str>,
) -> PResult<'a, (Params<'a>, Option<&'a str>)> {
    // One pass over the bytes, by offsets: `end` is where the list read so
    // far ends, whitespace after it not included.
    let b = i.as_bytes();
    let mut end = 0;
    let mut noted_value = None;
    loop {
        let semi = ws_end(b, end);
        if b.get(semi) != Some(&b';') {
            break;
        }
        let name_start = ws_end(b, semi + 1);
        let name_end = class_end(b, name_start, Class::TOKEN);
        if name_end == name_start {
            return fail(&i[name_start..], "empty parameter");
        }
        let equal = ws_end(b, name_end);
        let (value, param_end) = if b.get(equal) == Some(&b'=') {
            let start = ws_end(b, equal + 1);
            let value_end = if b.get(start) == Some(&b'"') {
                let (r, _) = quoted_string(&i[start..])?;
                i.len() - r.len()
            } else {
                class_end(b, start, Class::GEN_VALUE)
            };
            if value_end == start {
                return fail(&i[start..], "empty parameter value");
            }
            (Some(&i[start..value_end]), value_end)
        } else {
            (None, name_end)
        };
        let name = &i[name_start..name_end];
        if let Err(what) = check(name, value) {
            return fail(&i[name_start..], what);
        }
        if noted_value.is_none() && name.eq_ignore_ascii_case(noted) {
            noted_value = Some(value_as_read(name, value));
        }
        end = param_end;
    }
    Ok((&i[end..], (Params::new(&i[..end]), noted_value)))
}

/// A checked parameter's value as [`Params::get`] reads it: a quoted one
/// without its quotes, a missing one empty (a slice of the message still,
/// just after the name).
fn value_as_read<'a>(name: &'a str, value: Option<&'a str>) -> &'a str {
    match value {
        Some(v) => v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v),
        None => &name[name.len()..],
    }
}

/// URI parameters: `*( ";" pname [ "=" pvalue ] )`, no whitespace.
pub(crate) fn uri_params(i: &str) -> PResult<'_, Params<'_>> {
    let start = i;
    let mut rest = i;
    while let Some(after_semi) = rest.strip_prefix(';') {
        let (r, _) = escaped_run(after_semi, Class::PARAM, Some("empty URI parameter"))?;
        rest = match r.strip_prefix('=') {
            Some(v) => escaped_run(v, Class::PARAM, Some("empty URI parameter value"))?.0,
            None => r,
        };
    }
    let consumed = start.len() - rest.len();
    Ok((rest, Params::new(&start[..consumed])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_params_with_whitespace_and_quotes() {
        let (rest, p) = header_params(" ;   tag    = 1918181833n ; x=\"a;b\";lr , next").unwrap();
        assert_eq!(rest, " , next");
        assert_eq!(p.get("TAG"), Some("1918181833n"));
        assert_eq!(p.get("x"), Some("a;b"));
        assert_eq!(p.get("lr"), Some(""));
        assert_eq!(p.get("missing"), None);
        assert_eq!(p.iter().count(), 3);
        let lr = p.get("lr").unwrap().as_ptr() as usize;
        let raw = p.as_str().as_ptr() as usize;
        assert!((raw..=raw + p.as_str().len()).contains(&lr), "in the list");
        // Names match whole, and never inside a quoted value.
        let (_, p) = header_params(";tagx=1;x=\";tag=2\";tag=3").unwrap();
        assert_eq!(p.get("tag"), Some("3"));
        assert_eq!(p.get("ta"), None);
        assert!(p.contains("TAGX") && !p.contains("t"));
    }

    #[test]
    fn the_noted_value_is_what_get_reads() {
        for list in [
            "",
            ";tag=1",
            " ; TAG = 2 ;tag=3",
            ";tagx=1;x=\";tag=2\";Tag=\"q\\\"uo;ted\"",
            ";tag;tag=5",
            ";tag  ;x",
            ";x=[2001:db8::1];tag=a.b-c",
        ] {
            let (_, (params, noted)) = header_params_checked(list, "tag", |_, _| Ok(())).unwrap();
            assert_eq!(noted, params.get("tag"), "{list}");
        }
    }

    #[test]
    fn empty_parameters_are_errors() {
        assert!(header_params(";;").is_err());
        assert!(header_params(";tag=").is_err());
        assert!(uri_params(";;lr").is_err());
        assert!(uri_params(";a=").is_err());
    }

    #[test]
    fn uri_params_stop_at_headers() {
        let (rest, p) = uri_params(";lr;n%61me=v%61lue?x=y").unwrap();
        assert_eq!(rest, "?x=y");
        assert_eq!(p.get("lr"), Some(""));
        assert_eq!(p.get("n%61me"), Some("v%61lue"));
    }

    #[test]
    fn received_may_be_ipv6() {
        let (_, p) = header_params(";received=2001:db8::1;rport").unwrap();
        assert_eq!(p.get("received"), Some("2001:db8::1"));
    }
}
