//! From bytes to a [`Message`]: finding the header section, indexing its
//! lines, unfolding, checking the start line and the headers every layer
//! relies on (see [`headers::checked_at_parse`]).

use crate::grammar::{Class, Fault, class_end, find_byte, find_ws, is_token, is_ws, ws_end};
use crate::headers::Facts;
use crate::message::{Core, Entry, Message, Span, Start};
use crate::uri::{Uri, uri_exact};
use crate::{Error, HeaderName, Method, StatusCode, headers};
use bytes::{Bytes, BytesMut};
use bytestring::ByteString;

/// Headers a typical message carries; the index grows beyond if needed.
const INDEX_CAPACITY: usize = 16;

/// Where the start line, the header lines and the empty line are.
pub(crate) struct HeadIndex {
    /// Bytes of the start line, without its line ending.
    pub(crate) start_line_len: usize,
    /// Bytes up to and including the empty line.
    pub(crate) head_len: usize,
    /// Some header value spans a folded line (§7.3.1).
    pub(crate) folded: bool,
    pub(crate) entries: Vec<Entry>,
}

/// Indexes the header section at the start of `buf`. `Ok(None)` means the
/// empty line that ends it has not arrived yet.
pub(crate) fn index_head(buf: &[u8]) -> Result<Option<HeadIndex>, Error> {
    let Some((start_line_len, mut pos)) = line_end(buf, 0)? else {
        return Ok(None);
    };
    let mut entries = Vec::with_capacity(INDEX_CAPACITY);
    let mut folded = false;
    loop {
        let Some(&first) = buf.get(pos) else {
            return Ok(None);
        };
        if is_token(first) {
            // Nearly every line: one pass from the name to the line end.
            let Some(next) = header_line(buf, pos, &mut entries)? else {
                return Ok(None);
            };
            pos = next;
            continue;
        }
        let Some((end, next)) = line_end(buf, pos)? else {
            return Ok(None);
        };
        if end == pos {
            return Ok(Some(HeadIndex {
                start_line_len,
                head_len: next,
                folded,
                entries,
            }));
        }
        if !is_ws(first) {
            return Err(Error::HeaderLine {
                offset: pos,
                what: "header line does not start with a name",
            });
        }
        // A continuation line: the previous value goes on.
        let Some(last) = entries.last_mut() else {
            return Err(Error::HeaderLine {
                offset: pos,
                what: "continuation line before any header",
            });
        };
        let text_end = trim_ws_end(buf, pos, end);
        if text_end > pos {
            if last.value.is_empty() {
                last.value = Span::new(ws_end(buf, pos), text_end);
            } else {
                last.value.end = text_end as u32;
                folded = true;
            }
        }
        pos = next;
    }
}

/// Finds the end of the line starting at `pos`: `(end of its text, start of
/// the next line)`. Lines end in CRLF or a bare LF. A CR anywhere else is an
/// error: no grammar rule admits it inside a line, and peers disagree on
/// whether a bare CR ends one (header smuggling).
fn line_end(buf: &[u8], pos: usize) -> Result<Option<(usize, usize)>, Error> {
    let Some(at) = memchr::memchr2(b'\r', b'\n', &buf[pos..]).map(|n| pos + n) else {
        return Ok(None);
    };
    if buf[at] == b'\n' {
        return Ok(Some((at, at + 1)));
    }
    match buf.get(at + 1) {
        Some(b'\n') => Ok(Some((at, at + 2))),
        Some(_) => Err(Error::HeaderLine {
            offset: at,
            what: "bare CR inside a line",
        }),
        None => Ok(None),
    }
}

fn trim_ws_end(buf: &[u8], start: usize, mut end: usize) -> usize {
    while end > start && is_ws(buf[end - 1]) {
        end -= 1;
    }
    end
}

/// `field-name HCOLON field-value`, for the line starting at `start` with a
/// token character: adds its entry to `entries` and returns the start of
/// the next line, or `None` while the line has not ended. Scans the name
/// and the separator, then searches the value for the line end, each byte
/// once.
fn header_line(buf: &[u8], start: usize, entries: &mut Vec<Entry>) -> Result<Option<usize>, Error> {
    let name_end = class_end(buf, start, Class::TOKEN);
    let colon = ws_end(buf, name_end);
    if buf.get(colon) != Some(&b':') {
        // Only a complete line is wrong: on a stream the rest may follow,
        // and a bare CR in it is the error to report first.
        return match line_end(buf, start)? {
            None => Ok(None),
            Some(_) => Err(Error::HeaderLine {
                offset: colon,
                what: "expected ':' after the header name",
            }),
        };
    }
    let value_start = ws_end(buf, colon + 1);
    let Some((end, next)) = line_end(buf, value_start)? else {
        return Ok(None);
    };
    entries.push(Entry {
        name: HeaderName::from_bytes(&buf[start..name_end]),
        name_span: Span::new(start, name_end),
        value: Span::new(value_start, trim_ws_end(buf, value_start, end)),
    });
    Ok(Some(next))
}

/// Replaces the line breaks inside folded values by spaces, so that every
/// value is one line of text and its offsets stay put.
fn unfold(head: Bytes, entries: &[Entry]) -> Bytes {
    let mut owned = BytesMut::from(&head[..]);
    for e in entries {
        for c in &mut owned[e.value.range()] {
            if *c == b'\r' || *c == b'\n' {
                *c = b' ';
            }
        }
    }
    owned.freeze()
}

/// Builds a message from its header section (`head`, as indexed) and body.
/// `head` must be exactly `index.head_len` bytes. Content-Length was
/// checked by [`crate::message::content_lengths`] to frame the body:
/// `content_length` is its first value.
pub(crate) fn build(
    head: Bytes,
    body: Bytes,
    index: HeadIndex,
    content_length: Option<u32>,
) -> Result<Message, Error> {
    let head = if index.folded {
        unfold(head, &index.entries)
    } else {
        head
    };
    let head = ByteString::try_from(head).map_err(|e| Error::Utf8 {
        offset: e.valid_up_to(),
    })?;
    let start = start_line(&head, index.start_line_len)?;
    let mut facts = Facts {
        content_length,
        ..Facts::default()
    };
    let mut top_via_seen = false;
    for e in &index.entries {
        let Some(name) = e.name else { continue };
        let checked_already =
            name == HeaderName::ContentLength || (name == HeaderName::Via && top_via_seen);
        if !headers::checked_at_parse(name) || checked_already {
            continue;
        }
        top_via_seen |= name == HeaderName::Via;
        let value = &head[e.value.range()];
        headers::validate(name, value, &mut facts)
            .map_err(|f| header_error(&head, name, value, f))?;
    }
    let core = Core::new(&head, &facts);
    let message = Message::from_parts(head, body, start, index.entries, core);
    if let (Some(method), Some(cseq)) = (message.method(), message.cseq())
        && cseq.method != method.as_str()
    {
        return Err(Error::CSeqMethodMismatch {
            offset: message.offset_of(cseq.method),
        });
    }
    Ok(message)
}

/// The error for `fault`, found in the value of header `name`.
pub(crate) fn header_error(head: &str, name: HeaderName, value: &str, fault: Fault<'_>) -> Error {
    // An empty `at` may be a literal "" rather than a sub-slice: report the
    // end of the value then.
    let at = fault.at.as_ptr() as usize;
    let (lo, hi) = (head.as_ptr() as usize, head.as_ptr() as usize + head.len());
    let offset = if (lo..=hi).contains(&at) && !fault.at.is_empty() {
        at - lo
    } else {
        value.as_ptr() as usize - lo + value.len()
    };
    Error::Header {
        name,
        offset,
        what: fault.what,
    }
}

/// `s.split_once(' ')` without the generic string search, whose set-up
/// costs more than the few bytes of a start line's parts. The first part
/// is nearly always a token (a method, a status code): when its run ends
/// at a space, that is the first space.
fn split_at_space(s: &str) -> Option<(&str, &str)> {
    let token = class_end(s.as_bytes(), 0, Class::TOKEN);
    let at = match s.as_bytes().get(token) {
        Some(b' ') => token,
        _ => find_byte(s, b' ')?,
    };
    Some((&s[..at], &s[at + 1..]))
}

/// `s.rsplit_once(' ')`, as [`split_at_space`]; the last part of a request
/// line is nearly always ` SIP/2.0`.
fn rsplit_at_space(s: &str) -> Option<(&str, &str)> {
    const VERSION: &str = " SIP/2.0";
    let at = if s.ends_with(VERSION) {
        s.len() - VERSION.len()
    } else {
        s.bytes().rposition(|c| c == b' ')?
    };
    Some((&s[..at], &s[at + 1..]))
}

/// `Request-Line = Method SP Request-URI SP SIP-Version CRLF` or
/// `Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF`:
/// single spaces, nothing trailing (RFC 4475 §3.1.2.9, §3.1.2.10).
fn start_line(head: &ByteString, len: usize) -> Result<Start, Error> {
    let line = &head[..len];
    let bad = |offset: usize, what| Err(Error::StartLine { offset, what });
    if line.starts_with("SIP/") {
        let version_first = line
            .strip_prefix("SIP/2.0 ")
            .map(|after| (&line[..7], after));
        let Some((version, after)) = version_first.or_else(|| split_at_space(line)) else {
            return bad(0, "status line without a status code");
        };
        if version != "SIP/2.0" {
            return Err(Error::Version { offset: 0 });
        }
        let (code, reason) = split_at_space(after).unwrap_or((after, ""));
        let status = match code.parse::<u16>() {
            Ok(c) if code.len() == 3 => StatusCode::new(c),
            _ => None,
        };
        let Some(status) = status else {
            return bad(
                version.len() + 1,
                "status code must be three digits from 100 to 699",
            );
        };
        let reason_start = len - reason.len();
        if let Some(c) = reason.bytes().position(|c| c < 0x20 && c != b'\t') {
            return bad(reason_start + c, "control character in the reason phrase");
        }
        return Ok(Start::Response {
            status,
            reason: Span::new(reason_start, len),
        });
    }
    if line.ends_with([' ', '\t']) {
        return bad(len, "trailing whitespace in the request line");
    }
    let Some((method, rest)) = split_at_space(line) else {
        return bad(0, "request line without a Request-URI");
    };
    let Some((uri, version)) = rsplit_at_space(rest) else {
        return bad(method.len(), "request line without a SIP version");
    };
    let uri_start = method.len() + 1;
    if method.is_empty() || !method.bytes().all(is_token) {
        return bad(0, "method is not a token");
    }
    if uri.is_empty() || uri.starts_with([' ', '\t']) || uri.ends_with([' ', '\t']) {
        return bad(uri_start, "extra whitespace in the request line");
    }
    if version != "SIP/2.0" {
        return Err(Error::Version {
            offset: len - version.len(),
        });
    }
    match uri_exact(uri) {
        Ok(Uri::Sip(sip)) if sip.headers().is_some() => {
            return Err(Error::RequestUri {
                offset: uri_start + uri.find('?').unwrap_or(0),
                what: "URI headers are not allowed in the Request-URI",
            });
        }
        Ok(_) => {}
        Err(f) => {
            // No URI grammar admits whitespace, so only a URI that failed
            // can hold some; when it does, that is the fault to report.
            if let Some(ws) = find_ws(uri) {
                return Err(Error::RequestUri {
                    offset: uri_start + ws,
                    what: "whitespace in the Request-URI",
                });
            }
            return Err(Error::RequestUri {
                offset: uri_start + (uri.len() - f.at.len().min(uri.len())),
                what: f.what,
            });
        }
    }
    Ok(Start::Request {
        method: Method::from_shared(head, method),
        uri: Span::new(uri_start, uri_start + uri.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Message, Error> {
        Message::parse(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn start_lines() {
        let ok = "OPTIONS sip:a@b SIP/2.0\r\n\r\n";
        assert!(parse(ok).is_ok());
        for (bad, what) in [
            ("OPTIONS  sip:a@b SIP/2.0\r\n\r\n", "extra whitespace"),
            ("OPTIONS sip:a@b  SIP/2.0\r\n\r\n", "extra whitespace"),
            ("OPTIONS sip:a@b SIP/2.0 \r\n\r\n", "trailing whitespace"),
            (
                "OPTIONS sip:a@b; lr SIP/2.0\r\n\r\n",
                "whitespace in the Request-URI",
            ),
            ("OPTIONS <sip:a@b> SIP/2.0\r\n\r\n", "bad URI scheme"),
            (
                "OPTIONS sip:a@b?Route=x SIP/2.0\r\n\r\n",
                "URI headers are not allowed",
            ),
            ("SIP/2.0 4294967301 big\r\n\r\n", "three digits"),
            ("SIP/2.0 99 low\r\n\r\n", "three digits"),
            ("OPTIONS\r\n\r\n", "without a Request-URI"),
            ("OPT@IONS sip:a@b SIP/2.0\r\n\r\n", "method is not a token"),
            ("OPTIONS sip:a@b\r\n\r\n", "without a SIP version"),
            ("SIP/2.0  200 OK\r\n\r\n", "three digits"),
            ("SIP/2.0\r\n\r\n", "without a status code"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.to_string().contains(what), "{bad:?}: {e}");
        }
        assert_eq!(
            parse("OPTIONS sip:a@b SIP/7.0\r\n\r\n").unwrap_err(),
            Error::Version { offset: 16 }
        );
        assert_eq!(
            parse("SIP/3.0 200 OK\r\n\r\n").unwrap_err(),
            Error::Version { offset: 0 }
        );
        assert_eq!(
            parse("OPTIONS sip:a@b SIP/2.0x\r\n\r\n").unwrap_err(),
            Error::Version { offset: 16 }
        );
        let r = parse("SIP/2.0 100 \r\n\r\n").unwrap();
        assert_eq!(r.reason(), Some(""));
        let r = parse("SIP/2.0 180\r\n\r\n").unwrap();
        assert_eq!(r.reason(), Some(""));
    }

    #[test]
    fn header_lines() {
        for (bad, offset) in [
            ("OPTIONS sip:a@b SIP/2.0\r\n: x\r\n\r\n", 25),
            ("OPTIONS sip:a@b SIP/2.0\r\nVia x\r\n\r\n", 29),
            ("OPTIONS sip:a@b SIP/2.0\r\n folded\r\n\r\n", 25),
            ("OPTIONS sip:a@b SIP/2.0\r\nSubject: a\rVia: x\r\n\r\n", 35),
            ("OPTIONS sip:a@b SIP/2.0\r\nVia\rx: y\r\n\r\n", 28),
            ("OPTIONS sip:a@b SIP/2.0\r\n:x\ry\r\n\r\n", 27),
            ("OPTIONS sip:a@b SIP/2.0\r\nVia \r\n\r\n", 29),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(matches!(e, Error::HeaderLine { .. }), "{e}");
            assert_eq!(e.offset(), Some(offset), "{bad:?}");
        }
        let e = parse("OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 300\r\n\r\n")
            .unwrap_err();
        assert_eq!(
            e,
            Error::Header {
                name: HeaderName::MaxForwards,
                offset: 56,
                what: "Max-Forwards above 255"
            }
        );
    }

    #[test]
    fn a_head_cut_anywhere_waits_for_the_rest() {
        let head = b"OPTIONS sip:a@b SIP/2.0\r\nVia : SIP/2.0/UDP h\r\n  ;branch=z9hG4bK1\r\n\
                     X-Empty:\nSubject:\r\n folded\r\nCall-ID: \t c \r\n\r\n";
        for cut in 0..head.len() {
            assert!(
                matches!(index_head(&head[..cut]), Ok(None)),
                "{:?}",
                String::from_utf8_lossy(&head[..cut])
            );
        }
        let index = index_head(head).unwrap().unwrap();
        assert_eq!(index.head_len, head.len());
        let values: Vec<_> = index
            .entries
            .iter()
            .map(|e| String::from_utf8_lossy(&head[e.value.range()]).into_owned())
            .collect();
        assert_eq!(
            values,
            ["SIP/2.0/UDP h\r\n  ;branch=z9hG4bK1", "", "folded", "c"]
        );
        assert_eq!(index.entries[0].name, Some(HeaderName::Via));
        assert_eq!(index.entries[1].name, None);
    }

    #[test]
    fn the_first_content_length_is_read() {
        let one = parse("OPTIONS sip:a@b SIP/2.0\r\nl: 4\r\n\r\nbody").unwrap();
        assert_eq!(one.content_length(), Some(4));
        let two =
            parse("OPTIONS sip:a@b SIP/2.0\r\nl: 4\r\nContent-Length: 2\r\n\r\nbody").unwrap();
        assert_eq!((two.content_length(), two.body().len()), (Some(4), 4));
        let none = parse("OPTIONS sip:a@b SIP/2.0\r\n\r\nbody").unwrap();
        assert_eq!(none.content_length(), None);
        let bad = parse("OPTIONS sip:a@b SIP/2.0\r\nl: 4\r\nl: x\r\n\r\nbody").unwrap_err();
        assert!(
            matches!(
                bad,
                Error::Header {
                    name: HeaderName::ContentLength,
                    ..
                }
            ),
            "{bad}"
        );
    }

    #[test]
    fn folding_keeps_offsets() {
        let m = parse("OPTIONS sip:a@b SIP/2.0\r\nSubject: one\r\n two\r\n\tthree\r\nTO :\r\n sip:x@y\r\n\r\n").unwrap();
        assert_eq!(
            m.header("subject"),
            Some("one\r\n two\r\n\tthree".replace(['\r', '\n'], " ").as_str())
        );
        assert_eq!(m.header(HeaderName::To), Some("sip:x@y"));
    }
}
