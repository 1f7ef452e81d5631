//! Shared RFC 3261 §25.1 grammar: character classes and small nom parsers.
//!
//! Every parser here works on `&str` slices of a message's header section.
//! Header folding has already been replaced by spaces when these run (see
//! `parser::unfold`), so linear whitespace is just a run of SP / HTAB.

use nom::IResult;
use nom::error::{ErrorKind, ParseError};

/// Why a typed parse failed and where: `at` is the unparsed rest of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fault<'a> {
    pub(crate) at: &'a str,
    pub(crate) what: &'static str,
}

impl<'a> ParseError<&'a str> for Fault<'a> {
    fn from_error_kind(at: &'a str, _kind: ErrorKind) -> Self {
        Fault {
            at,
            what: "unexpected character",
        }
    }

    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type PResult<'a, T> = IResult<&'a str, T, Fault<'a>>;

/// A parse failure at `at`. `T` is whatever the failing parser returns,
/// usually `(&str, value)` for a nom parser.
pub(crate) fn fail<'a, T>(at: &'a str, what: &'static str) -> Result<T, nom::Err<Fault<'a>>> {
    Err(nom::Err::Error(Fault { at, what }))
}

// Character classes, one bit each, looked up in a 256-entry table.
const TOKEN: u16 = 1 << 0;
const DIGIT: u16 = 1 << 1;
const USER: u16 = 1 << 2;
const PASSWORD: u16 = 1 << 3;
const PARAM: u16 = 1 << 4;
const HNV: u16 = 1 << 5;
/// `hostname` characters. `_` is accepted too: it is common in the wild.
const HOST: u16 = 1 << 6;
const WORD: u16 = 1 << 7;
const URIC: u16 = 1 << 8;
const SCHEME: u16 = 1 << 9;
const USERINFO: u16 = 1 << 10;
const GEN_VALUE: u16 = 1 << 11;
/// Host characters that cannot be in an IPv4 address: a host with none
/// of them is read as one.
const NOT_IPV4: u16 = 1 << 12;
/// `.`, for finding empty host labels.
const DOT: u16 = 1 << 13;
/// What a quoted string holds as it is: all but `"`, `\`, and control
/// characters other than tab (UTF-8 bytes included).
const QDTEXT: u16 = 1 << 14;

const fn class_table() -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alnum = b.is_ascii_alphanumeric();
        let mark = matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        );
        let mut bits = 0;
        if b.is_ascii_digit() {
            bits |= DIGIT;
        }
        if alnum
            || matches!(
                b,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            )
        {
            bits |= TOKEN;
        }
        if alnum || mark {
            bits |= URIC;
            if matches!(b, b'-' | b'_' | b'.') || alnum {
                bits |= HOST;
            }
        }
        if alnum || mark || matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
            bits |= USER;
        }
        if alnum || mark || matches!(b, b'&' | b'=' | b'+' | b'$' | b',') {
            bits |= PASSWORD;
        }
        if alnum || mark || matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
            bits |= PARAM;
        }
        if alnum || mark || matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$') {
            bits |= HNV;
        }
        if alnum
            || matches!(
                b,
                b'-' | b'.'
                    | b'!'
                    | b'%'
                    | b'*'
                    | b'_'
                    | b'+'
                    | b'`'
                    | b'\''
                    | b'~'
                    | b'('
                    | b')'
                    | b'<'
                    | b'>'
                    | b':'
                    | b'\\'
                    | b'"'
                    | b'/'
                    | b'['
                    | b']'
                    | b'?'
                    | b'{'
                    | b'}'
            )
        {
            bits |= WORD;
        }
        if matches!(
            b,
            b';' | b'/'
                | b'?'
                | b':'
                | b'@'
                | b'&'
                | b'='
                | b'+'
                | b'$'
                | b','
                | b'%'
                | b'['
                | b']'
        ) {
            bits |= URIC;
        }
        if alnum || matches!(b, b'+' | b'-' | b'.') {
            bits |= SCHEME;
        }
        if bits & (USER | PASSWORD) != 0 || matches!(b, b':' | b'%') {
            bits |= USERINFO;
        }
        if bits & TOKEN != 0 || matches!(b, b':' | b'[' | b']') {
            bits |= GEN_VALUE;
        }
        if bits & HOST != 0 && !matches!(b, b'0'..=b'9' | b'.') {
            bits |= NOT_IPV4;
        }
        if b == b'.' {
            bits |= DOT;
        }
        if b != b'"' && b != b'\\' && (b >= 0x20 || b == b'\t') {
            bits |= QDTEXT;
        }
        t[c] = bits;
        c += 1;
    }
    t
}

static CLASSES: [u16; 256] = class_table();

/// A character class that [`many1`], [`escaped_run`] and [`class_end`]
/// take runs of. Each holds only ASCII characters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Class(u16);

impl Class {
    /// `token`
    pub(crate) const TOKEN: Class = Class(TOKEN);
    /// `DIGIT`
    pub(crate) const DIGIT: Class = Class(DIGIT);
    /// Call-ID `word`
    pub(crate) const WORD: Class = Class(WORD);
    /// `gen-value` outside quotes: `token / host`.
    pub(crate) const GEN_VALUE: Class = Class(GEN_VALUE);
    /// `paramchar` other than escapes.
    pub(crate) const PARAM: Class = Class(PARAM);
    /// `hname` / `hvalue` characters other than escapes.
    pub(crate) const HNV: Class = Class(HNV);
    /// `password` characters other than escapes.
    #[cfg(test)]
    pub(crate) const PASSWORD: Class = Class(PASSWORD);
    /// `user` characters other than escapes.
    #[cfg(test)]
    pub(crate) const USER: Class = Class(USER);
}

#[inline]
fn has(c: u8, class: u16) -> bool {
    CLASSES[c as usize] & class != 0
}

/// `token` characters (RFC 3261 §25.1).
#[inline]
pub(crate) fn is_token(c: u8) -> bool {
    has(c, TOKEN)
}
/// `password` characters other than escapes.
#[inline]
pub(crate) fn is_password(c: u8) -> bool {
    has(c, PASSWORD)
}
/// Characters of `userinfo`: user, `:`, password, with `%` for escapes.
#[inline]
pub(crate) fn is_userinfo(c: u8) -> bool {
    has(c, USERINFO)
}
/// `uric` characters of an absolute URI (escapes included as `%`).
#[inline]
pub(crate) fn is_uric(c: u8) -> bool {
    has(c, URIC)
}
/// URI scheme characters after the first letter.
#[inline]
pub(crate) fn is_scheme(c: u8) -> bool {
    has(c, SCHEME)
}

/// Where the run of `class` characters starting at `at` ends.
#[inline(always)]
pub(crate) fn class_end(b: &[u8], at: usize, class: Class) -> usize {
    class_run(b, at, class.0).end
}

/// Where the linear whitespace starting at `at` ends.
#[inline(always)]
pub(crate) fn ws_end(b: &[u8], mut at: usize) -> usize {
    while at < b.len() && is_ws(b[at]) {
        at += 1;
    }
    at
}

/// What [`host_run`] finds at the start of a host.
pub(crate) struct HostRun {
    /// The length of the run of `hostname` characters.
    pub(crate) len: usize,
    /// It has a character other than digits and dots: not an IPv4 address.
    pub(crate) domain: bool,
    /// It has two dots in a row: an empty label.
    pub(crate) double_dot: bool,
}

/// The run of `hostname` characters at the start of `b`, and what it is
/// made of, in one pass.
#[inline]
pub(crate) fn host_run(b: &[u8]) -> HostRun {
    let run = class_run(b, 0, HOST);
    HostRun {
        len: run.end,
        domain: run.seen & NOT_IPV4 != 0,
        double_dot: run.pairs & DOT != 0,
    }
}

/// A run of the characters of one class.
struct Run {
    /// Where it ends.
    end: usize,
    /// The union of the classes of its characters.
    seen: u16,
    /// The union of the classes that two neighbouring characters share.
    pairs: u16,
}

/// The run of `class` characters starting at `at`. Tests four bytes a step
/// with one branch: the runs in a header (names, hosts, tokens) are mostly
/// longer than that, and a byte a step costs twice the instructions. (A
/// caller that drops `seen` or `pairs` does not pay for them once this is
/// inlined.)
#[inline(always)]
fn class_run(b: &[u8], mut at: usize, class: u16) -> Run {
    let (mut seen, mut pairs, mut previous) = (0, 0, 0);
    while let Some(&[c0, c1, c2, c3]) = b.get(at..at + 4) {
        let k = [
            CLASSES[c0 as usize],
            CLASSES[c1 as usize],
            CLASSES[c2 as usize],
            CLASSES[c3 as usize],
        ];
        if k[0] & k[1] & k[2] & k[3] & class == 0 {
            // The run ends in these four: no need to load them again.
            for kn in k {
                if kn & class == 0 {
                    break;
                }
                (seen, pairs, previous, at) = (seen | kn, pairs | (previous & kn), kn, at + 1);
            }
            return Run {
                end: at,
                seen,
                pairs,
            };
        }
        seen |= k[0] | k[1] | k[2] | k[3];
        pairs |= (previous & k[0]) | (k[0] & k[1]) | (k[1] & k[2]) | (k[2] & k[3]);
        previous = k[3];
        at += 4;
    }
    while let Some(&c) = b.get(at) {
        let kn = CLASSES[c as usize];
        if kn & class == 0 {
            break;
        }
        (seen, pairs, previous, at) = (seen | kn, pairs | (previous & kn), kn, at + 1);
    }
    Run {
        end: at,
        seen,
        pairs,
    }
}

#[inline]
pub(crate) fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

#[inline(always)]
fn take_bytes_while(i: &str, pred: impl Fn(u8) -> bool) -> (&str, &str) {
    let b = i.as_bytes();
    let mut n = 0;
    while n < b.len() && pred(b[n]) {
        n += 1;
    }
    // `pred` only accepts ASCII, so `n` is a char boundary.
    (&i[n..], &i[..n])
}

/// Skips optional linear whitespace.
#[inline(always)]
pub(crate) fn sws(i: &str) -> &str {
    take_bytes_while(i, is_ws).0
}

/// Trims linear whitespace at both ends.
#[inline]
pub(crate) fn trim_ws(i: &str) -> &str {
    let i = sws(i);
    let n = i.bytes().rev().take_while(|c| is_ws(*c)).count();
    &i[..i.len() - n]
}

/// The index of the first `byte` in `s`. Header values are short: a plain
/// loop beats a SIMD search's set-up there.
#[inline]
pub(crate) fn find_byte(s: &str, byte: u8) -> Option<usize> {
    s.bytes().position(|c| c == byte)
}

/// The index of the first space or tab in `s`.
#[inline]
pub(crate) fn find_ws(s: &str) -> Option<usize> {
    s.bytes().position(is_ws)
}

/// Requires at least one whitespace character (`LWS`).
pub(crate) fn lws(i: &str) -> PResult<'_, ()> {
    let rest = sws(i);
    if rest.len() == i.len() {
        return fail(i, "expected whitespace");
    }
    Ok((rest, ()))
}

/// The run of `class` characters at the start of `i`, and the rest.
#[inline(always)]
fn run(i: &str, class: Class) -> (&str, &str) {
    let n = class_run(i.as_bytes(), 0, class.0).end;
    // Every `Class` holds only ASCII, so `n` is a char boundary.
    (&i[n..], &i[..n])
}

/// A non-empty run of `class` characters; `what` names the thing expected.
#[inline]
pub(crate) fn many1(class: Class, what: &'static str) -> impl Fn(&str) -> PResult<'_, &str> {
    move |i| {
        let (rest, run) = run(i, class);
        if run.is_empty() {
            return fail(i, what);
        }
        Ok((rest, run))
    }
}

/// A run of `class` characters and `%HH` escapes; `what` names the thing
/// expected when `nonempty` is set and the run is empty.
pub(crate) fn escaped_run<'a>(
    i: &'a str,
    class: Class,
    nonempty: Option<&'static str>,
) -> PResult<'a, &'a str> {
    let b = i.as_bytes();
    let mut n = class_run(b, 0, class.0).end;
    while b.get(n) == Some(&b'%') {
        if !(n + 2 < b.len() && b[n + 1].is_ascii_hexdigit() && b[n + 2].is_ascii_hexdigit()) {
            return fail(
                &i[n..],
                "bad %-escape: '%' must be followed by two hex digits",
            );
        }
        n = class_run(b, n + 3, class.0).end;
    }
    if n == 0
        && let Some(what) = nonempty
    {
        return fail(i, what);
    }
    Ok((&i[n..], &i[..n]))
}

/// A `token`.
#[inline]
pub(crate) fn token(i: &str) -> PResult<'_, &str> {
    many1(Class::TOKEN, "expected a token")(i)
}

/// Eats one literal character with optional whitespace around it (the
/// `SEMI`, `COMMA`, `EQUAL`, `SLASH`, `COLON` of §25.1); `None` if the
/// next character is another.
#[inline(always)]
pub(crate) fn eat(i: &str, c: u8) -> Option<&str> {
    let j = sws(i);
    match j.as_bytes().first() {
        Some(&b) if b == c => Some(sws(&j[1..])),
        _ => None,
    }
}

/// [`eat`] as a nom parser that fails with `what`.
pub(crate) fn sep(c: u8, what: &'static str) -> impl Fn(&str) -> PResult<'_, ()> {
    move |i| match eat(i, c) {
        Some(rest) => Ok((rest, ())),
        None => fail(sws(i), what),
    }
}

/// A `quoted-string`; returns the text between the quotes, escapes kept.
pub(crate) fn quoted_string(i: &str) -> PResult<'_, &str> {
    let b = i.as_bytes();
    if b.first() != Some(&b'"') {
        return fail(i, "expected '\"'");
    }
    let mut n = 1;
    loop {
        n = class_run(b, n, QDTEXT).end;
        match b.get(n) {
            Some(b'"') => return Ok((&i[n + 1..], &i[1..n])),
            // quoted-pair: any octet but CR and LF.
            Some(b'\\') => match b.get(n + 1) {
                Some(b'\r' | b'\n') | None => break,
                Some(_) => n += 2,
            },
            Some(b'\r' | b'\n') | None => break,
            Some(_) => return fail(&i[n..], "control character in quoted string"),
        }
    }
    fail(i, "unterminated quoted string")
}

/// Undoes `quoted-pair` escapes of a quoted string's inside.
pub(crate) fn unescape_quoted(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\\') {
        return s.into();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// Decodes `%HH` escapes. Returns bytes: an escape may encode any octet.
pub(crate) fn percent_decode(s: &str) -> std::borrow::Cow<'_, [u8]> {
    if !s.contains('%') {
        return s.as_bytes().into();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut n = 0;
    while n < b.len() {
        if b[n] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(n + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(n + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            n += 3;
        } else {
            out.push(b[n]);
            n += 1;
        }
    }
    out.into()
}

/// Parses decimal digits into a `u32`, failing on overflow.
#[inline]
pub(crate) fn u32_digits<'a>(i: &'a str, what: &'static str) -> PResult<'a, u32> {
    // One pass: these numbers (ports, CSeq, lengths) are a few digits.
    let mut v: u64 = 0;
    let mut n = 0;
    while let Some(d) = i.as_bytes().get(n).filter(|d| d.is_ascii_digit()) {
        v = v * 10 + u64::from(d - b'0');
        if v > u64::from(u32::MAX) {
            return fail(i, "number out of range (more than 2^32-1)");
        }
        n += 1;
    }
    if n == 0 {
        return fail(i, what);
    }
    Ok((&i[n..], v as u32))
}

/// `delta-seconds`, saturating at 2^32-1: RFC 3261 §20.19 and RFC 4475
/// §3.1.2.4 let an element treat an overlarge expiry as the largest value.
pub(crate) fn delta_seconds_saturating(i: &str) -> PResult<'_, u32> {
    let (rest, digits) = many1(Class::DIGIT, "expected delta-seconds")(i)?;
    let v = digits.bytes().fold(0u64, |v, d| {
        (v * 10 + u64::from(d - b'0')).min(u64::from(u32::MAX))
    });
    Ok((rest, v as u32))
}

/// Fails unless the whole input was consumed (trailing whitespace allowed).
pub(crate) fn end<'a>(i: &'a str, what: &'static str) -> PResult<'a, ()> {
    let rest = sws(i);
    if rest.is_empty() {
        Ok((rest, ()))
    } else {
        fail(rest, what)
    }
}

/// Runs `parser` on an entire value; the value must be fully consumed.
pub(crate) fn all<'a, T>(
    value: &'a str,
    parser: impl Fn(&'a str) -> PResult<'a, T>,
) -> Result<T, Fault<'a>> {
    let run = || -> PResult<'a, T> {
        let (rest, out) = parser(sws(value))?;
        end(rest, "unexpected text after the value")?;
        Ok(("", out))
    };
    run().map(|(_, out)| out).map_err(|e| match e {
        nom::Err::Error(f) | nom::Err::Failure(f) => f,
        nom::Err::Incomplete(_) => Fault {
            at: "",
            what: "incomplete value",
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_with_escapes() {
        assert_eq!(
            quoted_string(r#""a \"b\" c" rest"#),
            Ok((" rest", r#"a \"b\" c"#))
        );
        assert_eq!(unescape_quoted(r#"J Rosenberg \\\""#), r#"J Rosenberg \""#);
        assert!(quoted_string("\"open").is_err());
        assert!(quoted_string("\"a\\").is_err());
        assert_eq!(
            quoted_string("\"tab\tand UTF-8 \u{e9}, escaped \\\u{1}\" x"),
            Ok((" x", "tab\tand UTF-8 \u{e9}, escaped \\\u{1}"))
        );
        let fault = quoted_string("\"a\u{1}b\"").unwrap_err();
        assert_eq!(
            fault,
            nom::Err::Error(Fault {
                at: "\u{1}b\"",
                what: "control character in quoted string"
            })
        );
        assert!(quoted_string("\"a\r\n b\"").is_err());
    }

    #[test]
    fn escapes_are_checked_and_decoded() {
        assert_eq!(
            escaped_run("a%41b;x", Class::PASSWORD, None),
            Ok((";x", "a%41b"))
        );
        assert_eq!(
            escaped_run("a%41b;x", Class::USER, None),
            Ok(("", "a%41b;x"))
        );
        assert!(escaped_run("a%4", Class::USER, None).is_err());
        assert_eq!(percent_decode("%75se%72"), b"user".as_slice());
        assert_eq!(percent_decode("null-%00-null"), b"null-\0-null".as_slice());
    }

    #[test]
    fn numbers_overflow_is_an_error_or_saturates() {
        assert_eq!(u32_digits("4294967295x", ""), Ok(("x", u32::MAX)));
        assert!(u32_digits("4294967296", "").is_err());
        assert_eq!(
            delta_seconds_saturating("99999999999999999999"),
            Ok(("", u32::MAX))
        );
    }

    #[test]
    fn separators_take_surrounding_whitespace() {
        assert_eq!(sep(b';', "")("  ;  x"), Ok(("x", ())));
        assert!(sep(b';', "")("x").is_err());
    }
}
