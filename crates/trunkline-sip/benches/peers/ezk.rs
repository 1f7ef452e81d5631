//! `ezk-sip-types` 0.6: the head split by `msg::PullParser`, the start
//! line by `MessageLine::parse`, each header line by `msg::Line::parse`
//! into `Headers` (as ezk-sip-core's transports do), then the typed headers
//! decoded from `Headers`.

use super::Routing;
use bytes::Bytes;
use ezk_sip_types::header::typed::{CSeq, CallID, Contact, ContentLength, FromTo, Via};
use ezk_sip_types::msg::{Line, MessageLine, PullParser};
use ezk_sip_types::parse::Parse;
use ezk_sip_types::print::AppendCtx;
use ezk_sip_types::{Headers, Name};
use std::hint::black_box;

/// A parsed message: start line, header map and body.
struct Parsed {
    _line: MessageLine,
    headers: Headers,
    _body: Bytes,
}

/// One line of the head as text.
fn text<E: std::fmt::Debug>(line: Result<&[u8], E>) -> &str {
    std::str::from_utf8(line.expect("complete head")).expect("UTF-8")
}

fn parse(raw: &Bytes) -> Parsed {
    let mut lines = PullParser::new(raw, 0);
    let start = text(lines.next().expect("start line"));
    let (_, line) = MessageLine::parse(raw)(start).expect("start line parses");
    let mut headers = Headers::with_capacity(16);
    for header in &mut lines {
        let (_, Line { name, value }) = Line::parse(raw, text(header)).expect("header line parses");
        headers.insert(name, value);
    }
    let body = raw.slice(lines.head_end()..);
    Parsed {
        _line: line,
        headers,
        _body: body,
    }
}

/// The typed headers the bench reads, decoded from the parsed message.
struct Typed {
    via: Via,
    from: FromTo,
    to: FromTo,
    call_id: CallID,
    cseq: CSeq,
    contact: Contact,
    length: ContentLength,
}

fn typed(raw: &Bytes) -> Typed {
    let m = parse(raw);
    Typed {
        via: m.headers.get_named().expect("Via"),
        from: m.headers.get(Name::FROM).expect("From"),
        to: m.headers.get(Name::TO).expect("To"),
        call_id: m.headers.get_named().expect("Call-ID"),
        cseq: m.headers.get_named().expect("CSeq"),
        contact: m.headers.get_named().expect("Contact"),
        length: m.headers.get_named().expect("Content-Length"),
    }
}

/// Parses with ezk-sip-types and reads the routing headers as owned values.
pub(crate) fn route(raw: &Bytes) -> Routing {
    let t = typed(raw);
    Routing {
        via_branch: t.via.params.get_val("branch").expect("branch").to_string(),
        from_tag: t.from.tag.expect("From tag").to_string(),
        to_tag: t.to.tag.map(|t| t.to_string()),
        call_id: t.call_id.0.to_string(),
        cseq: t.cseq.cseq,
        cseq_method: t.cseq.method.to_string(),
        contact_uri: t.contact.uri.uri.default_print_ctx().to_string(),
        content_length: t.length.0,
    }
}

/// The same reads without building strings.
pub(crate) fn route_sum(raw: &Bytes) -> usize {
    let t = typed(raw);
    black_box((&t.cseq.method, &t.contact.uri.uri));
    t.via.params.get_val("branch").map_or(0, |b| b.len())
        + t.from.tag.map_or(0, |t| t.len())
        + t.to.tag.map_or(0, |t| t.len())
        + t.call_id.0.len()
        + t.cseq.cseq as usize
        + t.length.0
}
