//! Building messages: new requests and responses, responses to a request
//! (RFC 3261 §8.2.6), edited copies for proxies, and a 400 for a request
//! too malformed to parse.

use crate::message::{HeaderKey, Start};
use crate::parser::index_head;
use crate::{Error, HeaderName, Message, Method, StatusCode};
use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

#[derive(Debug, Clone)]
enum Name {
    Known(HeaderName),
    Other(ByteString),
}

impl Name {
    fn as_str(&self) -> &str {
        match self {
            Name::Known(n) => n.as_str(),
            Name::Other(n) => n,
        }
    }

    fn matches(&self, key: HeaderKey<'_>) -> bool {
        match (self, key) {
            (Name::Known(a), HeaderKey::Known(b)) => *a == b,
            (Name::Other(a), HeaderKey::Other(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

impl From<HeaderKey<'_>> for Name {
    fn from(key: HeaderKey<'_>) -> Name {
        match key {
            HeaderKey::Known(n) => Name::Known(n),
            HeaderKey::Other(n) => Name::Other(ByteString::from(n)),
        }
    }
}

#[derive(Debug, Clone)]
enum StartLine {
    Request {
        method: Method,
        uri: ByteString,
    },
    Response {
        status: StatusCode,
        reason: ByteString,
    },
}

/// Assembles a message header by header; [`MessageBuilder::build`] writes
/// it out and parses the result, so a built message obeys every rule a
/// received one does. Content-Length is always written by `build`, from the
/// body.
///
/// ```
/// use trunkline_sip::{HeaderName, Message, Method};
///
/// let invite = Message::request(Method::Invite, "sip:bob@example.com")
///     .header(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds")
///     .header(HeaderName::MaxForwards, "70")
///     .header(HeaderName::From, "\"Alice\" <sip:alice@example.com>;tag=1928301774")
///     .header(HeaderName::To, "<sip:bob@example.com>")
///     .header(HeaderName::CallId, "a84b4c76e66710@pc33.example.com")
///     .header(HeaderName::CSeq, "314159 INVITE")
///     .header("X-Call-Reason", "demo")
///     .body("application/sdp", "v=0\r\n")
///     .build()?;
/// assert_eq!(invite.content_length(), Some(5));
///
/// let ringing = invite.response_to(trunkline_sip::StatusCode::RINGING).to_tag("a6c85cf").build()?;
/// assert_eq!(ringing.to().unwrap().tag(), Some("a6c85cf"));
/// assert_eq!(ringing.cseq(), invite.cseq());
/// # Ok::<(), trunkline_sip::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct MessageBuilder {
    start: StartLine,
    headers: Vec<(Name, ByteString)>,
    body: Bytes,
}

impl Message {
    /// Starts a request.
    pub fn request(method: Method, uri: impl Into<ByteString>) -> MessageBuilder {
        MessageBuilder::new(StartLine::Request {
            method,
            uri: uri.into(),
        })
    }

    /// Starts a response with the status's standard reason phrase.
    pub fn response(status: StatusCode) -> MessageBuilder {
        MessageBuilder::new(StartLine::Response {
            status,
            reason: ByteString::from_static(status.reason()),
        })
    }

    /// Starts a response to this request per RFC 3261 §8.2.6: the Via
    /// headers, From, To, Call-ID and CSeq are copied (sharing this
    /// message's buffer), and Timestamp too for a 100 (§8.2.6.1). Add a To
    /// tag with [`MessageBuilder::to_tag`] unless the status is 100.
    pub fn response_to(&self, status: StatusCode) -> MessageBuilder {
        use HeaderName as H;
        let mut builder = Message::response(status);
        for h in self.headers() {
            let copy = match h.known {
                Some(H::Via | H::From | H::To | H::CallId | H::CSeq) => true,
                Some(H::Timestamp) => status == StatusCode::TRYING,
                _ => false,
            };
            if let (true, Some(name)) = (copy, h.known) {
                builder
                    .headers
                    .push((Name::Known(name), self.share(h.value)));
            }
        }
        builder
    }

    /// A builder holding this message's start line, headers (sharing its
    /// buffer) and body, to edit and send on, as a proxy does.
    pub fn to_builder(&self) -> MessageBuilder {
        let start = match self.start() {
            Start::Request { method, uri } => StartLine::Request {
                method: method.clone(),
                uri: self.share(&self.head()[uri.range()]),
            },
            Start::Response { status, reason } => StartLine::Response {
                status: *status,
                reason: self.share(&self.head()[reason.range()]),
            },
        };
        let mut builder = MessageBuilder::new(start);
        builder.headers = self
            .headers()
            .filter(|h| h.known != Some(HeaderName::ContentLength))
            .map(|h| {
                let name = match h.known {
                    Some(n) => Name::Known(n),
                    None => Name::Other(self.share(h.name)),
                };
                (name, self.share(h.value))
            })
            .collect();
        builder.body = self.body().clone();
        builder
    }
}

impl MessageBuilder {
    fn new(start: StartLine) -> MessageBuilder {
        MessageBuilder {
            start,
            headers: Vec::with_capacity(12),
            body: Bytes::new(),
        }
    }

    /// Appends a header line.
    pub fn header<'k>(
        mut self,
        name: impl Into<HeaderKey<'k>>,
        value: impl Into<ByteString>,
    ) -> Self {
        self.headers.push((name.into().into(), value.into()));
        self
    }

    /// Inserts a header line before all others (a proxy's new Via, §16.6).
    pub fn header_first<'k>(
        mut self,
        name: impl Into<HeaderKey<'k>>,
        value: impl Into<ByteString>,
    ) -> Self {
        self.headers.insert(0, (name.into().into(), value.into()));
        self
    }

    /// Removes every line of a header.
    pub fn remove<'k>(mut self, name: impl Into<HeaderKey<'k>>) -> Self {
        let key = name.into();
        self.headers.retain(|(n, _)| !n.matches(key));
        self
    }

    /// Removes the first line of a header (a proxy popping its Route, §16.4).
    pub fn remove_first<'k>(mut self, name: impl Into<HeaderKey<'k>>) -> Self {
        let key = name.into();
        if let Some(pos) = self.headers.iter().position(|(n, _)| n.matches(key)) {
            self.headers.remove(pos);
        }
        self
    }

    /// Replaces every line of a header by one line with `value`, kept at
    /// the place of the first, or appended if there was none.
    pub fn set<'k>(mut self, name: impl Into<HeaderKey<'k>>, value: impl Into<ByteString>) -> Self {
        let key = name.into();
        let value = value.into();
        match self.headers.iter().position(|(n, _)| n.matches(key)) {
            Some(pos) => {
                self.headers[pos].1 = value;
                let mut index = 0;
                self.headers.retain(|(n, _)| {
                    index += 1;
                    index - 1 == pos || !n.matches(key)
                });
            }
            None => self.headers.push((key.into(), value)),
        }
        self
    }

    /// Adds `;tag=tag` to the To header unless it has a tag (§8.2.6.2).
    pub fn to_tag(mut self, tag: &str) -> Self {
        let to = self
            .headers
            .iter_mut()
            .find(|(n, _)| matches!(n, Name::Known(HeaderName::To)));
        if let Some((_, value)) = to {
            let tagged = crate::grammar::all(value, crate::headers::name_addr)
                .is_ok_and(|a| a.tag().is_some());
            if !tagged {
                *value = ByteString::from(format!("{value};tag={tag}"));
            }
        }
        self
    }

    /// Sets the reason phrase of a response.
    pub fn reason(mut self, phrase: impl Into<ByteString>) -> Self {
        if let StartLine::Response { reason, .. } = &mut self.start {
            *reason = phrase.into();
        }
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(self, content_type: &str, body: impl Into<Bytes>) -> Self {
        let mut builder = self.set(HeaderName::ContentType, content_type);
        builder.body = body.into();
        builder
    }

    /// Writes the message out and parses it. Fails if a value holds a line
    /// break or breaks its header's grammar, or the start line is invalid.
    pub fn build(self) -> Result<Message, Error> {
        let size = 64
            + self
                .headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 4)
                .sum::<usize>()
            + self.body.len();
        let mut out = BytesMut::with_capacity(size);
        match &self.start {
            StartLine::Request { method, uri } => {
                put_line(&mut out, &[method.as_str(), " ", uri, " SIP/2.0"])?;
            }
            StartLine::Response { status, reason } => {
                let code = status.as_u16().to_string();
                put_line(&mut out, &["SIP/2.0 ", &code, " ", reason])?;
            }
        }
        for (name, value) in &self.headers {
            if !matches!(name, Name::Known(HeaderName::ContentLength)) {
                put_line(&mut out, &[name.as_str(), ": ", value])?;
            }
        }
        let length = self.body.len().to_string();
        put_line(&mut out, &["Content-Length: ", &length])?;
        out.put_slice(b"\r\n");
        out.put_slice(&self.body);
        Message::parse(out.freeze())
    }
}

/// Writes `parts` and CRLF, refusing line breaks inside (header injection).
fn put_line(out: &mut BytesMut, parts: &[&str]) -> Result<(), Error> {
    for part in parts {
        if let Some(at) = part.find(['\r', '\n']) {
            return Err(Error::HeaderLine {
                offset: out.len() + at,
                what: "line break inside a header value or start line",
            });
        }
        out.put_slice(part.as_bytes());
    }
    out.put_slice(b"\r\n");
    Ok(())
}

/// The response for a request too malformed to parse: `error`'s status and
/// reason, with the Via, From, To, Call-ID and CSeq lines copied as
/// received (§8.2.6). `None` when `raw` is not a request, is an ACK (never
/// answered), or lacks one of those lines, so no response can be matched.
pub fn reject_malformed(raw: &[u8], error: &Error) -> Option<Bytes> {
    use HeaderName as H;
    if raw.starts_with(b"SIP/") || raw.starts_with(b"ACK ") {
        return None;
    }
    let index = index_head(raw).ok().flatten()?;
    let mut out = BytesMut::with_capacity(512);
    let status = error.status();
    out.put_slice(format!("SIP/2.0 {} {}\r\n", status.as_u16(), error.reason_phrase()).as_bytes());
    for wanted in [H::Via, H::From, H::To, H::CallId, H::CSeq] {
        let mut found = false;
        for e in index.entries.iter().filter(|e| e.name == Some(wanted)) {
            found = true;
            out.put_slice(wanted.as_str().as_bytes());
            out.put_slice(b": ");
            for &c in &raw[e.value.range()] {
                // Folded lines are joined.
                out.put_u8(if c == b'\r' || c == b'\n' { b' ' } else { c });
            }
            out.put_slice(b"\r\n");
        }
        if !found {
            return None;
        }
    }
    out.put_slice(b"Content-Length: 0\r\n\r\n");
    Some(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite() -> Message {
        Message::parse_slice(include_bytes!("../benches/messages/invite.sip")).unwrap()
    }

    #[test]
    fn response_copies_the_rfc_8_2_6_headers() {
        let req = invite();
        let resp = req
            .response_to(StatusCode::BUSY_HERE)
            .to_tag("x1")
            .build()
            .unwrap();
        assert_eq!(resp.status(), Some(StatusCode::BUSY_HERE));
        assert_eq!(resp.reason(), Some("Busy Here"));
        assert_eq!(resp.vias().count(), 2);
        assert_eq!(resp.via(), req.via());
        assert_eq!(resp.from(), req.from());
        assert_eq!(resp.call_id(), req.call_id());
        assert_eq!(resp.cseq(), req.cseq());
        assert_eq!(resp.to().unwrap().tag(), Some("x1"));
        assert_eq!(resp.content_length(), Some(0));
        assert!(resp.record_routes().next().is_none());
        // An existing tag is kept.
        let again = resp.to_builder().to_tag("other").build().unwrap();
        assert_eq!(again.to().unwrap().tag(), Some("x1"));
    }

    #[test]
    fn proxy_style_edits() {
        let req = invite();
        let fwd = req
            .to_builder()
            .header_first(
                HeaderName::Via,
                "SIP/2.0/UDP 203.0.113.1;branch=z9hG4bKproxy",
            )
            .set(HeaderName::MaxForwards, "68")
            .remove(HeaderName::RecordRoute)
            .build()
            .unwrap();
        assert_eq!(fwd.vias().count(), 3);
        assert_eq!(fwd.via().unwrap().branch(), Some("z9hG4bKproxy"));
        assert_eq!(fwd.max_forwards(), Some(68));
        assert_eq!(fwd.header_count(HeaderName::MaxForwards), 1);
        assert_eq!(fwd.record_routes().count(), 0);
        assert_eq!(fwd.body(), req.body());
        assert_eq!(fwd.content_length(), req.content_length());
    }

    #[test]
    fn builder_refuses_injection_and_bad_values() {
        let inject = Message::request(Method::Options, "sip:a@b")
            .header("Subject", "hi\r\nVia: SIP/2.0/UDP evil")
            .build();
        assert!(matches!(inject, Err(Error::HeaderLine { .. })));
        let bad = Message::request(Method::Options, "sip:a@b")
            .header(HeaderName::CSeq, "x OPTIONS")
            .build();
        assert!(matches!(
            bad,
            Err(Error::Header {
                name: HeaderName::CSeq,
                ..
            })
        ));
        let bad_uri = Message::request(Method::Options, "<sip:a@b>").build();
        assert!(matches!(bad_uri, Err(Error::RequestUri { .. })));
    }

    #[test]
    fn malformed_requests_get_a_matching_400() {
        let raw = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 300\r\n\r\n";
        let err = Message::parse_slice(raw).unwrap_err();
        let resp = Message::parse(reject_malformed(raw, &err).unwrap()).unwrap();
        assert_eq!(resp.status(), Some(StatusCode::BAD_REQUEST));
        assert_eq!(resp.reason(), Some("Bad Max-Forwards Header"));
        assert_eq!(resp.via().unwrap().branch(), Some("z9hG4bK1"));
        assert_eq!(resp.call_id(), Some("x"));
        assert!(reject_malformed(b"ACK sip:a@b SIP/2.0\r\n\r\n", &err).is_none());
        assert!(reject_malformed(b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n", &err).is_none());
    }
}
