//! Parse three representative messages and read their routing headers
//! (top Via branch, From tag, To tag, Call-ID, CSeq, Contact URI,
//! Content-Length), with Trunkline and, side by side in the same run, the
//! other Rust SIP parsers: `rsip`, `rsipstack`, `ezk-sip-types` and
//! `rvoip-sip-core`.
//!
//! `cargo bench -p trunkline-sip --bench parse`

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

mod peers;
mod reads;

use peers::Routing;
use reads::trunkline_sum;

const MESSAGES: [(&str, &[u8]); 3] = [
    ("invite", include_bytes!("messages/invite.sip")),
    ("register", include_bytes!("messages/register.sip")),
    ("ok", include_bytes!("messages/ok.sip")),
];

/// Trunkline: parse (index and check every header, noting the values every
/// layer reads), then read the routing headers.
fn trunkline(raw: &Bytes) -> Routing {
    let m = trunkline_sip::Message::parse(raw.clone()).expect("valid message");
    let cseq = m.cseq().expect("CSeq");
    Routing {
        via_branch: m.branch().expect("branch").into(),
        from_tag: m.from_tag().expect("From tag").into(),
        to_tag: m.to_tag().map(Into::into),
        call_id: m.call_id().expect("Call-ID").into(),
        cseq: cseq.seq,
        cseq_method: cseq.method.into(),
        contact_uri: m.contact().expect("Contact").uri().as_str().into(),
        content_length: m.content_length().expect("Content-Length") as usize,
    }
}

fn parse_and_route(c: &mut Criterion) {
    for (name, raw) in MESSAGES {
        let raw = Bytes::from_static(raw);
        let expected = trunkline(&raw).normalized();
        for (peer, route, _) in peers::ALL {
            let read = route(&raw).normalized();
            assert_eq!(read, expected, "{peer} reads {name} differently");
        }
        let mut group = c.benchmark_group(format!("parse_and_route/{name}"));
        group.throughput(Throughput::Bytes(raw.len() as u64));
        group.bench_function("trunkline", |b| b.iter(|| trunkline_sum(black_box(&raw))));
        for (peer, _, route_sum) in peers::ALL {
            group.bench_function(*peer, |b| b.iter(|| route_sum(black_box(&raw))));
        }
        group.finish();
    }
}

/// Where Trunkline's time goes: parsing alone (index, grammar checks, the
/// values noted on the way), reading the routing headers from a parsed
/// message through those notes, and reading them through the full typed
/// values (`via()`, `from()`, `to()`), which parse lazily.
fn trunkline_phases(c: &mut Criterion) {
    let mut group = c.benchmark_group("trunkline_phases");
    for (name, raw) in MESSAGES {
        let raw = Bytes::from_static(raw);
        group.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| {
                trunkline_sip::Message::parse(black_box(&raw).clone()).map(|m| m.headers().len())
            })
        });
        let m = trunkline_sip::Message::parse(raw.clone()).expect("valid message");
        group.bench_function(format!("read_routing/{name}"), |b| {
            b.iter(|| {
                let m = black_box(&m);
                black_box((
                    m.branch(),
                    m.from_tag(),
                    m.to_tag(),
                    m.call_id(),
                    m.cseq(),
                    m.contact().map(|c| c.uri()),
                    m.content_length(),
                ))
            })
        });
        group.bench_function(format!("read_typed/{name}"), |b| {
            b.iter(|| {
                let m = black_box(&m);
                black_box((
                    m.via().and_then(|v| v.branch()),
                    m.from().and_then(|f| f.tag()),
                    m.to().and_then(|t| t.tag()),
                    m.call_id(),
                    m.cseq(),
                    m.contact().map(|c| c.uri()),
                    m.content_length(),
                ))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse_and_route, trunkline_phases);
criterion_main!(benches);
