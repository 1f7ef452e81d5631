//! [`Message`]: a parsed SIP request or response that shares the bytes it
//! was received in, with an index of its header lines and typed accessors.

use crate::grammar::{PResult, all};
use crate::headers::{
    self, Auth, CSeq, Contact, Facts, ListItems, MediaType, NameAddr, RAck, Reason, Replaces,
    RetryAfter, SessionExpires, TokenParams, Via, Warning,
};
use crate::parser::{self, index_head};
use crate::uri::{Uri, uri_exact};
use crate::{Error, HeaderName, Method, StatusCode};
use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use std::fmt;
use std::ops::Range;
use std::time::SystemTime;

/// A byte range in the header section. `u32` keeps the index small; the
/// header section of a message is far below 4 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    pub(crate) fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    pub(crate) fn is_empty(self) -> bool {
        self.start == self.end
    }
}

/// One header line in the index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// The well-known name, or `None` for an extension header.
    pub(crate) name: Option<HeaderName>,
    pub(crate) name_span: Span,
    pub(crate) value: Span,
}

/// The [`Facts`] of a message, kept as spans of its header section.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Core {
    branch: Option<Span>,
    from_tag: Option<Span>,
    to_tag: Option<Span>,
    call_id: Option<Span>,
    cseq: Option<(u32, Span)>,
    max_forwards: Option<u8>,
    content_length: Option<u32>,
}

impl Core {
    pub(crate) fn new(head: &str, facts: &Facts<'_>) -> Core {
        // Every fact is a slice of `head`; were one not, an empty span is
        // safer than a wrong one (network input never panics).
        let span = |part: &str| {
            let start = (part.as_ptr() as usize).wrapping_sub(head.as_ptr() as usize);
            match start.checked_add(part.len()) {
                Some(end) if end <= head.len() => Span::new(start, end),
                _ => {
                    debug_assert!(false, "a fact outside the head");
                    Span::new(0, 0)
                }
            }
        };
        Core {
            branch: facts.branch.flatten().map(span),
            from_tag: facts.from_tag.flatten().map(span),
            to_tag: facts.to_tag.flatten().map(span),
            call_id: facts.call_id.map(span),
            cseq: facts.cseq.map(|c| (c.seq, span(c.method))),
            max_forwards: facts.max_forwards,
            content_length: facts.content_length,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Start {
    Request { method: Method, uri: Span },
    Response { status: StatusCode, reason: Span },
}

/// A SIP request or response.
///
/// A message holds the header section as received (after unfolding) and
/// the body, both sharing the buffer it was parsed from, plus a compact
/// index of header lines. Typed accessors such as [`Message::via`] parse
/// the value they read on each call, from text that was already checked
/// against its grammar by [`Message::parse`], so they do not fail: `None`
/// means the header is absent.
///
/// ```
/// use trunkline_sip::{Message, Method};
///
/// let msg = Message::parse(bytes::Bytes::from_static(
///     b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
///       Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK74bf9\r\n\
///       From: <sip:alice@example.com>;tag=9fxced76sl\r\n\
///       To: <sip:bob@example.com>\r\n\
///       Call-ID: 3848276298220188511@192.0.2.1\r\n\
///       CSeq: 1 OPTIONS\r\n\
///       Max-Forwards: 70\r\n\
///       Content-Length: 0\r\n\r\n",
/// ))?;
/// assert_eq!(msg.method(), Some(&Method::Options));
/// assert_eq!(msg.via().unwrap().branch(), Some("z9hG4bK74bf9"));
/// assert_eq!(msg.from().unwrap().tag(), Some("9fxced76sl"));
/// assert_eq!(msg.cseq().unwrap().seq, 1);
/// # Ok::<(), trunkline_sip::Error>(())
/// ```
#[derive(Clone)]
pub struct Message {
    head: ByteString,
    body: Bytes,
    start: Start,
    headers: Vec<Entry>,
    core: Core,
}

/// A header name to look up: a [`HeaderName`] or any text (`"X-Custom"`,
/// `"v"`), matched case-insensitively with compact forms.
#[derive(Debug, Clone, Copy)]
pub enum HeaderKey<'k> {
    /// A well-known header.
    Known(HeaderName),
    /// An extension header, by name.
    Other(&'k str),
}

impl From<HeaderName> for HeaderKey<'_> {
    fn from(name: HeaderName) -> Self {
        HeaderKey::Known(name)
    }
}

impl<'k> From<&'k str> for HeaderKey<'k> {
    fn from(name: &'k str) -> Self {
        HeaderName::parse(name).map_or(HeaderKey::Other(name), HeaderKey::Known)
    }
}

/// One header line: its name as written and its value (unfolded, trimmed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The name as written (`v`, `VIA`, `X-Custom`).
    pub name: &'a str,
    /// The well-known name, if it is one.
    pub known: Option<HeaderName>,
    /// The value.
    pub value: &'a str,
}

impl Message {
    /// Parses one complete message, such as a UDP datagram (RFC 3261 §18.3):
    /// the body is as long as Content-Length says, and any bytes after it are
    /// dropped; without Content-Length the body runs to the end. CRLFs before
    /// the start line are skipped. For stream transports see
    /// [`crate::Decoder`].
    ///
    /// Checks the start line and the headers every layer relies on (top Via
    /// line, From, To, Call-ID, CSeq, Max-Forwards, Content-Length); the
    /// others are checked by their accessors or by [`Message::validate`].
    pub fn parse(datagram: Bytes) -> Result<Message, Error> {
        let skip = datagram
            .iter()
            .take_while(|c| **c == b'\r' || **c == b'\n')
            .count();
        let mut rest = datagram.slice(skip..);
        let index = index_head(&rest)?.ok_or(Error::Truncated)?;
        let head = rest.split_to(index.head_len);
        let lengths = content_lengths(&head, &index.entries)?;
        let body = match lengths {
            ContentLength::One(len) if len > rest.len() => {
                return Err(Error::BodyTruncated {
                    expected: len,
                    got: rest.len(),
                });
            }
            ContentLength::One(len) => rest.split_to(len),
            // Disagreeing values (RFC 4475 §3.3.9): keep every byte and let
            // `check` report it.
            ContentLength::None | ContentLength::Conflict { .. } => rest,
        };
        parser::build(head, body, index, lengths.first())
    }

    /// Copies `bytes` and parses them as [`Message::parse`] does.
    pub fn parse_slice(bytes: &[u8]) -> Result<Message, Error> {
        Message::parse(Bytes::copy_from_slice(bytes))
    }

    pub(crate) fn from_parts(
        head: ByteString,
        body: Bytes,
        start: Start,
        headers: Vec<Entry>,
        core: Core,
    ) -> Message {
        Message {
            head,
            body,
            start,
            headers,
            core,
        }
    }

    fn text(&self, span: Span) -> &str {
        &self.head[span.range()]
    }

    pub(crate) fn start(&self) -> &Start {
        &self.start
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, Start::Request { .. })
    }

    /// The request method; `None` for a response.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            Start::Request { method, .. } => Some(method),
            Start::Response { .. } => None,
        }
    }

    /// The Request-URI; `None` for a response.
    pub fn uri(&self) -> Option<Uri<'_>> {
        match self.start {
            Start::Request { uri, .. } => uri_exact(&self.head[uri.range()]).ok(),
            Start::Response { .. } => None,
        }
    }

    /// The Request-URI as written; `None` for a response.
    pub fn uri_str(&self) -> Option<&str> {
        match self.start {
            Start::Request { uri, .. } => Some(&self.head[uri.range()]),
            Start::Response { .. } => None,
        }
    }

    /// The status code; `None` for a request.
    pub fn status(&self) -> Option<StatusCode> {
        match self.start {
            Start::Response { status, .. } => Some(status),
            Start::Request { .. } => None,
        }
    }

    /// The reason phrase as received (may be empty); `None` for a request.
    pub fn reason(&self) -> Option<&str> {
        match self.start {
            Start::Response { reason, .. } => Some(&self.head[reason.range()]),
            Start::Request { .. } => None,
        }
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The header section as received, start line to empty line, with
    /// folded lines joined by spaces.
    pub fn head(&self) -> &str {
        &self.head
    }

    /// A zero-copy owned handle on `part`, which must be a slice of this
    /// message's text (a value returned by an accessor). Lets a caller keep
    /// a branch or tag beyond the message's borrow without copying.
    ///
    /// # Panics
    /// If `part` does not point into this message's header section.
    pub fn share(&self, part: &str) -> ByteString {
        self.head.slice_ref(part)
    }

    /// Every header line, in order.
    pub fn headers(&self) -> impl ExactSizeIterator<Item = Header<'_>> + '_ {
        self.headers.iter().map(|e| Header {
            name: &self.head[e.name_span.range()],
            known: e.name,
            value: &self.head[e.value.range()],
        })
    }

    fn entries<'k>(&self, key: impl Into<HeaderKey<'k>>) -> impl Iterator<Item = &Entry> {
        let key = key.into();
        self.headers.iter().filter(move |e| match key {
            HeaderKey::Known(n) => e.name == Some(n),
            HeaderKey::Other(name) => {
                e.name.is_none() && self.head[e.name_span.range()].eq_ignore_ascii_case(name)
            }
        })
    }

    /// The value of the first header line named `key`.
    pub fn header<'k>(&self, key: impl Into<HeaderKey<'k>>) -> Option<&str> {
        match key.into() {
            HeaderKey::Known(n) => self.value(n),
            other => self
                .entries(other)
                .next()
                .map(|e| &self.head[e.value.range()]),
        }
    }

    /// The values of every header line named `key`, in order.
    pub fn header_values<'k>(&self, key: impl Into<HeaderKey<'k>>) -> impl Iterator<Item = &str> {
        self.entries(key).map(|e| &self.head[e.value.range()])
    }

    /// How many header lines are named `key`.
    pub fn header_count<'k>(&self, key: impl Into<HeaderKey<'k>>) -> usize {
        self.entries(key).count()
    }

    /// First value of a well-known header; the hot path of every accessor.
    fn value(&self, name: HeaderName) -> Option<&str> {
        self.headers
            .iter()
            .find(|e| e.name == Some(name))
            .map(|e| &self.head[e.value.range()])
    }

    fn single<'a, T>(
        &'a self,
        name: HeaderName,
        parse: fn(&'a str) -> PResult<'a, T>,
    ) -> Option<T> {
        all(self.value(name)?, parse).ok()
    }

    fn list<'a, T>(
        &'a self,
        name: HeaderName,
        item: fn(&'a str) -> PResult<'a, T>,
    ) -> Values<'a, T> {
        Values {
            message: self,
            entries: self.headers.iter(),
            name,
            current: None,
            item,
        }
    }

    /// Every `Via` value, top first, across lines and commas.
    pub fn vias(&self) -> Values<'_, Via<'_>> {
        self.list(HeaderName::Via, headers::via)
    }
    /// The top `Via`.
    pub fn via(&self) -> Option<Via<'_>> {
        self.vias().next()
    }
    /// `From`
    pub fn from(&self) -> Option<NameAddr<'_>> {
        self.single(HeaderName::From, headers::name_addr)
    }
    /// `To`
    pub fn to(&self) -> Option<NameAddr<'_>> {
        self.single(HeaderName::To, headers::name_addr)
    }
    /// The `branch` of the top Via: the transaction identifier (§17.2.3).
    /// Read at parse time; costs nothing.
    pub fn branch(&self) -> Option<&str> {
        self.core.branch.map(|s| self.text(s))
    }
    /// The From `tag`. Read at parse time; costs nothing.
    pub fn from_tag(&self) -> Option<&str> {
        self.core.from_tag.map(|s| self.text(s))
    }
    /// The To `tag`. Read at parse time; costs nothing.
    pub fn to_tag(&self) -> Option<&str> {
        self.core.to_tag.map(|s| self.text(s))
    }
    /// `Call-ID`. Read at parse time; costs nothing.
    pub fn call_id(&self) -> Option<&str> {
        self.core.call_id.map(|s| self.text(s))
    }
    /// `CSeq`. Read at parse time; costs nothing.
    pub fn cseq(&self) -> Option<CSeq<'_>> {
        self.core.cseq.map(|(seq, method)| CSeq {
            seq,
            method: self.text(method),
        })
    }
    /// `Max-Forwards`. Read at parse time; costs nothing.
    pub fn max_forwards(&self) -> Option<u8> {
        self.core.max_forwards
    }
    /// Every `Contact` value.
    pub fn contacts(&self) -> Values<'_, Contact<'_>> {
        self.list(HeaderName::Contact, headers::contact)
    }
    /// The first `Contact` address (not the wildcard).
    pub fn contact(&self) -> Option<NameAddr<'_>> {
        // What `contacts().find_map(..)` finds, without the layers of
        // `Values` copying each address: every REGISTER and every request
        // that starts a dialog is read for it.
        self.headers
            .iter()
            .filter(|e| e.name == Some(HeaderName::Contact))
            .find_map(|e| {
                ListItems::new(&self.head[e.value.range()], headers::contact).find_map(
                    |c| match c {
                        Ok(Contact::Address(address)) => Some(address),
                        Ok(Contact::Wildcard) | Err(_) => None,
                    },
                )
            })
    }
    /// Every `Route` value, in order.
    pub fn routes(&self) -> Values<'_, NameAddr<'_>> {
        self.list(HeaderName::Route, headers::name_addr_angle)
    }
    /// Every `Record-Route` value, in order.
    pub fn record_routes(&self) -> Values<'_, NameAddr<'_>> {
        self.list(HeaderName::RecordRoute, headers::name_addr_angle)
    }
    /// Every `Path` value (RFC 3327).
    pub fn paths(&self) -> Values<'_, NameAddr<'_>> {
        self.list(HeaderName::Path, headers::name_addr_angle)
    }
    /// `Content-Length`, the first if several. Read at parse time.
    pub fn content_length(&self) -> Option<u32> {
        self.core.content_length
    }
    /// `Content-Type`
    pub fn content_type(&self) -> Option<MediaType<'_>> {
        self.single(HeaderName::ContentType, headers::media_type)
    }
    /// Every `Accept` media range.
    pub fn accept(&self) -> Values<'_, MediaType<'_>> {
        self.list(HeaderName::Accept, headers::media_type)
    }
    /// `Expires`, saturating at 2^32-1.
    pub fn expires(&self) -> Option<u32> {
        self.single(HeaderName::Expires, headers::delta_seconds)
    }
    /// `Min-Expires`
    pub fn min_expires(&self) -> Option<u32> {
        self.single(HeaderName::MinExpires, headers::delta_seconds)
    }
    /// Every `Authorization` value.
    pub fn authorizations(&self) -> Values<'_, Auth<'_>> {
        self.list(HeaderName::Authorization, headers::auth)
    }
    /// Every `Proxy-Authorization` value.
    pub fn proxy_authorizations(&self) -> Values<'_, Auth<'_>> {
        self.list(HeaderName::ProxyAuthorization, headers::auth)
    }
    /// Every `WWW-Authenticate` challenge.
    pub fn www_authenticates(&self) -> Values<'_, Auth<'_>> {
        self.list(HeaderName::WwwAuthenticate, headers::auth)
    }
    /// Every `Proxy-Authenticate` challenge.
    pub fn proxy_authenticates(&self) -> Values<'_, Auth<'_>> {
        self.list(HeaderName::ProxyAuthenticate, headers::auth)
    }
    /// The methods in `Allow`.
    pub fn allow(&self) -> Values<'_, &str> {
        self.list(HeaderName::Allow, headers::token_item)
    }
    /// The option tags in `Supported`.
    pub fn supported(&self) -> Values<'_, &str> {
        self.list(HeaderName::Supported, headers::token_item)
    }
    /// The option tags in `Require`.
    pub fn require(&self) -> Values<'_, &str> {
        self.list(HeaderName::Require, headers::token_item)
    }
    /// The option tags in `Proxy-Require`.
    pub fn proxy_require(&self) -> Values<'_, &str> {
        self.list(HeaderName::ProxyRequire, headers::token_item)
    }
    /// The option tags in `Unsupported`.
    pub fn unsupported(&self) -> Values<'_, &str> {
        self.list(HeaderName::Unsupported, headers::token_item)
    }
    /// The event types in `Allow-Events`.
    pub fn allow_events(&self) -> Values<'_, &str> {
        self.list(HeaderName::AllowEvents, headers::token_item)
    }
    /// `Event`: the package and its parameters.
    pub fn event(&self) -> Option<TokenParams<'_>> {
        self.single(HeaderName::Event, headers::token_params)
    }
    /// `Subscription-State`
    pub fn subscription_state(&self) -> Option<TokenParams<'_>> {
        self.single(HeaderName::SubscriptionState, headers::token_params)
    }
    /// Every `Reason` value.
    pub fn reasons(&self) -> Values<'_, Reason<'_>> {
        self.list(HeaderName::Reason, headers::token_params)
    }
    /// `Refer-To`
    pub fn refer_to(&self) -> Option<NameAddr<'_>> {
        self.single(HeaderName::ReferTo, headers::name_addr)
    }
    /// `Referred-By`
    pub fn referred_by(&self) -> Option<NameAddr<'_>> {
        self.single(HeaderName::ReferredBy, headers::name_addr)
    }
    /// `Reply-To`
    pub fn reply_to(&self) -> Option<NameAddr<'_>> {
        self.single(HeaderName::ReplyTo, headers::name_addr)
    }
    /// Every `P-Asserted-Identity` value (RFC 3325).
    pub fn p_asserted_identities(&self) -> Values<'_, NameAddr<'_>> {
        self.list(HeaderName::PAssertedIdentity, headers::name_addr)
    }
    /// `Replaces` (RFC 3891)
    pub fn replaces(&self) -> Option<Replaces<'_>> {
        self.single(HeaderName::Replaces, headers::replaces)
    }
    /// `Retry-After`
    pub fn retry_after(&self) -> Option<RetryAfter<'_>> {
        self.single(HeaderName::RetryAfter, headers::retry_after)
    }
    /// `User-Agent`, as written.
    pub fn user_agent(&self) -> Option<&str> {
        self.value(HeaderName::UserAgent)
    }
    /// `Server`, as written.
    pub fn server(&self) -> Option<&str> {
        self.value(HeaderName::Server)
    }
    /// `Date`
    pub fn date(&self) -> Option<SystemTime> {
        self.single(HeaderName::Date, headers::date)
    }
    /// Every `Warning` value.
    pub fn warnings(&self) -> Values<'_, Warning<'_>> {
        self.list(HeaderName::Warning, headers::warning)
    }
    /// `Session-Expires` (RFC 4028)
    pub fn session_expires(&self) -> Option<SessionExpires<'_>> {
        self.single(HeaderName::SessionExpires, headers::session_expires)
    }
    /// `Min-SE` (RFC 4028)
    pub fn min_se(&self) -> Option<SessionExpires<'_>> {
        self.single(HeaderName::MinSe, headers::session_expires)
    }
    /// `RSeq` (RFC 3262)
    pub fn rseq(&self) -> Option<u32> {
        self.single(HeaderName::RSeq, headers::rseq)
    }
    /// `RAck` (RFC 3262)
    pub fn rack(&self) -> Option<RAck<'_>> {
        self.single(HeaderName::RAck, headers::rack)
    }

    /// Checks every well-known header against its grammar, the ones
    /// [`Message::parse`] leaves to their readers included (Contact, Route,
    /// Authorization, Content-Type…): what a strict server runs before it
    /// answers, and what a registrar needs of Contact. The error names the
    /// header and the byte offset of the fault and maps to a 400.
    pub fn validate(&self) -> Result<(), Error> {
        let mut facts = Facts::default();
        for e in &self.headers {
            if let Some(name) = e.name {
                let value = &self.head[e.value.range()];
                headers::validate(name, value, &mut facts)
                    .map_err(|f| parser::header_error(&self.head, name, value, f))?;
            }
        }
        Ok(())
    }

    /// The checks RFC 3261 asks of a request or response beyond its syntax
    /// (§8.1.1, §8.2.2.1, §18.3): To, From, Call-ID, CSeq and Via present
    /// and single-valued, one Content-Length and at most one Max-Forwards,
    /// and a Request-URI scheme this element serves (sip, sips, tel).
    /// Max-Forwards may be absent: RFC 2543 peers omit it (RFC 4475 §3.4.1)
    /// and a proxy then passes the check (§16.3). The error maps to the
    /// response to send.
    pub fn check(&self) -> Result<(), Error> {
        use HeaderName as H;
        for name in [H::To, H::From, H::CallId, H::CSeq, H::Via] {
            if self.value(name).is_none() {
                return Err(Error::MissingHeader(name));
            }
        }
        for name in [
            H::To,
            H::From,
            H::CallId,
            H::CSeq,
            H::MaxForwards,
            H::ContentLength,
        ] {
            if self.header_count(name) > 1 {
                return Err(Error::RepeatedHeader(name));
            }
        }
        if let Some(uri) = self.uri()
            && let Uri::Other(other) = uri
        {
            return Err(Error::UnsupportedUriScheme(other.scheme().to_owned()));
        }
        Ok(())
    }

    /// The byte offset of `part` (a slice of this message's text).
    pub(crate) fn offset_of(&self, part: &str) -> usize {
        (part.as_ptr() as usize).saturating_sub(self.head.as_ptr() as usize)
    }

    /// The message in wire form: the start line, each header line as
    /// `Name: value` (well-known names in their canonical spelling,
    /// extension names as received), an empty line and the body.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.head.len() + self.body.len() + 32);
        self.write_to(&mut out);
        out.freeze()
    }

    /// Appends the wire form ([`Message::to_bytes`]) to `out`.
    pub fn write_to(&self, out: &mut impl BufMut) {
        match &self.start {
            Start::Request { method, uri } => {
                out.put_slice(method.as_str().as_bytes());
                out.put_u8(b' ');
                out.put_slice(self.head[uri.range()].as_bytes());
                out.put_slice(b" SIP/2.0\r\n");
            }
            Start::Response { status, reason } => {
                let code = status.as_u16();
                out.put_slice(b"SIP/2.0 ");
                // Three digits, 100 to 699: no formatter needed.
                out.put_slice(&[
                    b'0' + (code / 100) as u8,
                    b'0' + (code / 10 % 10) as u8,
                    b'0' + (code % 10) as u8,
                    b' ',
                ]);
                out.put_slice(self.head[reason.range()].as_bytes());
                out.put_slice(b"\r\n");
            }
        }
        for h in self.headers() {
            out.put_slice(h.known.map_or(h.name, |n| n.as_str()).as_bytes());
            out.put_slice(b": ");
            out.put_slice(h.value.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        out.put_slice(&self.body);
    }
}

/// Two messages are equal when their start lines, header names (well-known
/// ones compared by meaning, others case-insensitively), header values and
/// bodies are; how they were spelled on the wire does not matter.
impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        let start_eq = match (&self.start, &other.start) {
            (Start::Request { method: m1, .. }, Start::Request { method: m2, .. }) => {
                m1 == m2 && self.uri_str() == other.uri_str()
            }
            (Start::Response { status: s1, .. }, Start::Response { status: s2, .. }) => {
                s1 == s2 && self.reason() == other.reason()
            }
            _ => false,
        };
        start_eq
            && self.body == other.body
            && self.headers.len() == other.headers.len()
            && self.headers().zip(other.headers()).all(|(a, b)| {
                a.value == b.value
                    && match (a.known, b.known) {
                        (Some(x), Some(y)) => x == y,
                        (None, None) => a.name.eq_ignore_ascii_case(b.name),
                        _ => false,
                    }
            })
    }
}

impl Eq for Message {}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("head", &self.head())
            .field("body", &self.body)
            .finish()
    }
}

/// Typed values of one header across all its lines and comma-separated
/// elements, in order. Created by [`Message::vias`] and its siblings.
pub struct Values<'a, T> {
    message: &'a Message,
    entries: std::slice::Iter<'a, Entry>,
    name: HeaderName,
    current: Option<ListItems<'a, T>>,
    item: fn(&'a str) -> PResult<'a, T>,
}

impl<'a, T> Iterator for Values<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        loop {
            if let Some(items) = &mut self.current
                && let Some(item) = items.next()
            {
                // Values were checked at parse time; an error cannot occur,
                // but if it did the element is skipped rather than panicking.
                match item {
                    Ok(v) => return Some(v),
                    Err(_) => continue,
                }
            }
            let entry = self.entries.find(|e| e.name == Some(self.name))?;
            let value = &self.message.head[entry.value.range()];
            self.current = Some(ListItems::new(value, self.item));
        }
    }
}

impl<T> fmt::Debug for Values<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Values").field("name", &self.name).finish()
    }
}

/// What the Content-Length headers of a message say.
pub(crate) enum ContentLength {
    None,
    One(usize),
    Conflict { offset: usize, first: usize },
}

impl ContentLength {
    /// The first value, the one every layer reads.
    pub(crate) fn first(&self) -> Option<u32> {
        match *self {
            ContentLength::None => None,
            ContentLength::One(first) | ContentLength::Conflict { first, .. } => {
                u32::try_from(first).ok()
            }
        }
    }
}

/// Reads every Content-Length line of an indexed, not yet checked head.
pub(crate) fn content_lengths(head: &[u8], entries: &[Entry]) -> Result<ContentLength, Error> {
    let mut found = ContentLength::None;
    for e in entries
        .iter()
        .filter(|e| e.name == Some(HeaderName::ContentLength))
    {
        let text = &head[e.value.range()];
        let len = std::str::from_utf8(text)
            .ok()
            .and_then(|t| all(t, headers::content_length).ok())
            .ok_or(Error::Header {
                name: HeaderName::ContentLength,
                offset: e.value.start as usize,
                what: "expected a non-negative number",
            })? as usize;
        found = match found {
            ContentLength::None => ContentLength::One(len),
            ContentLength::One(first) if first == len => found,
            ContentLength::One(first) => ContentLength::Conflict {
                offset: e.value.start as usize,
                first,
            },
            conflict @ ContentLength::Conflict { .. } => conflict,
        };
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_is_the_first_address_among_contacts() {
        let m = Message::parse_slice(
            b"REGISTER sip:r SIP/2.0\r\nContact: *\r\nContact: <sip:x@y;>, <sip:after-fault@y>\r\n\
              m: <sip:a@b>;q=0.5, <sip:c@d>\r\n\r\n",
        )
        .unwrap();
        assert_eq!(m.contact().unwrap().uri().as_str(), "sip:a@b");
        assert_eq!(m.contact(), m.contacts().find_map(|c| c.address().copied()));
        let none = Message::parse_slice(b"REGISTER sip:r SIP/2.0\r\nContact: *\r\n\r\n").unwrap();
        assert_eq!(none.contact(), None);
    }
}
