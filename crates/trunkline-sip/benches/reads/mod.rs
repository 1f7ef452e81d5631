//! Trunkline's side of `parse_and_route`, shared with
//! `examples/parse_loop.rs`, which counts its instructions.

use bytes::Bytes;
use std::hint::black_box;

/// Parses `raw` and reads the routing headers (what `trunkline` in
/// `benches/parse.rs` reads) without building owned strings.
pub(crate) fn trunkline_sum(raw: &Bytes) -> usize {
    let m = trunkline_sip::Message::parse(raw.clone()).expect("valid message");
    let cseq = m.cseq().expect("CSeq");
    black_box((cseq.method, m.contact().expect("Contact").uri()));
    m.branch().map_or(0, str::len)
        + m.from_tag().map_or(0, str::len)
        + m.to_tag().map_or(0, str::len)
        + m.call_id().map_or(0, str::len)
        + cseq.seq as usize
        + m.content_length().map_or(0, |l| l as usize)
}
