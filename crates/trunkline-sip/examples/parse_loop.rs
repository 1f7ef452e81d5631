//! `parse_loop MESSAGE [N]`: parses one of the bench messages (`invite`,
//! `register`, `ok`) N times (default 100000) and reads its routing
//! headers, as `benches/parse.rs` does for Trunkline. Made for counting
//! instructions, which repeat from run to run where wall-clock times on a
//! shared machine do not:
//!
//! ```text
//! valgrind --tool=callgrind --dump-instr=no target/release/examples/parse_loop invite
//! ```
//!
//! Instructions per message: the total over N, less a run with N = 0.

use bytes::Bytes;
use std::hint::black_box;

#[path = "../benches/reads/mod.rs"]
mod reads;

fn main() {
    let mut args = std::env::args().skip(1);
    let raw: &'static [u8] = match args.next().as_deref() {
        Some("invite") => include_bytes!("../benches/messages/invite.sip"),
        Some("register") => include_bytes!("../benches/messages/register.sip"),
        Some("ok") => include_bytes!("../benches/messages/ok.sip"),
        _ => {
            eprintln!("usage: parse_loop invite|register|ok [N]");
            std::process::exit(2);
        }
    };
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let raw = Bytes::from_static(raw);
    let mut sum = 0;
    for _ in 0..n {
        sum += reads::trunkline_sum(black_box(&raw));
    }
    println!("{sum}");
}
