//! Parsing allocates the header index and nothing else: no allocation per
//! header, none for the head or body (they share the received buffer).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use bytes::Bytes;
use trunkline_sip::Message;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// A received buffer, already shared as the transport's buffers are (the
/// first clone of a `Bytes` made from a `Vec` allocates its shared header).
fn received(raw: &[u8]) -> Bytes {
    let bytes = Bytes::from(raw.to_vec());
    drop(bytes.clone());
    bytes
}

/// Allocations made by `f`.
fn blocks(f: impl FnOnce()) -> u64 {
    let before = dhat::HeapStats::get().total_blocks;
    f();
    dhat::HeapStats::get().total_blocks - before
}

// dhat counts every thread's allocations, so this test runs without libtest
// (`harness = false`): its main thread would allocate beside the test's.
fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    // One-time statics (the header name table) are built on first use.
    Message::parse_slice(include_bytes!("../benches/messages/ok.sip")).unwrap();
    for raw in [
        &include_bytes!("../benches/messages/invite.sip")[..],
        include_bytes!("../benches/messages/register.sip"),
        include_bytes!("../benches/messages/ok.sip"),
    ] {
        let buf = received(raw);
        let mut message = None;
        assert_eq!(
            blocks(|| message = Some(Message::parse(buf.clone()).unwrap())),
            1
        );
        let m = message.unwrap();
        let reads = blocks(|| {
            let via = m.via().unwrap();
            std::hint::black_box((
                via.branch(),
                m.from().unwrap().tag(),
                m.to().unwrap().tag(),
                m.call_id(),
                m.cseq(),
                m.contact().unwrap().uri(),
                m.content_length(),
                m.vias().count(),
                m.allow().count(),
                m.authorizations().next().map(|a| a.response()),
            ));
        });
        assert_eq!(reads, 0, "typed reads borrow the message");
    }
    println!("allocations: parse allocates only the header index, typed reads nothing");
}
