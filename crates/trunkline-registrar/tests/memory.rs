//! The in-memory locator holds a binding in well under 1 KiB (the issue's
//! budget for a million bindings), measured with dhat on 20 000 typical
//! phone bindings; the figure is printed for the record.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::time::{Duration, SystemTime};
use trunkline_registrar::{Binding, Change, Locator, MemoryLocator, Update};
use trunkline_transaction::{Peer, Transport};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const BINDINGS: u32 = 20_000;

fn binding(n: u32, now: SystemTime) -> Binding {
    let ip = format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255);
    Binding {
        aor: format!("sip:{}@pbx.example.com", 100_000 + n),
        contact: format!("sip:{}@{ip}:5060;transport=udp;ob", 100_000 + n),
        q: None,
        expires_at: now + Duration::from_secs(3600),
        call_id: format!("{n:016x}-2b1f9c0e@{ip}"),
        cseq: 1,
        path: Vec::new(),
        flow: Peer::new(Transport::Udp, format!("{ip}:5060").parse().unwrap()),
        user_agent: Some("Yealink SIP-T46U 108.86.0.45".to_owned()),
    }
}

// dhat counts every thread's allocations, so this test runs without libtest
// (`harness = false`).
fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let now = SystemTime::now();
    let locator = MemoryLocator::default();
    let before = dhat::HeapStats::get().curr_bytes;
    for n in 0..BINDINGS {
        let b = binding(n, now);
        let aor = b.aor.clone();
        let update = Update {
            call_id: b.call_id.clone(),
            cseq: 1,
            now,
            change: Change::Set(vec![b]),
        };
        runtime.block_on(locator.update(&aor, update)).unwrap();
    }
    let per_binding = (dhat::HeapStats::get().curr_bytes - before) / BINDINGS as usize;
    println!("memory per binding: {per_binding} bytes");
    assert_eq!(locator.len(), BINDINGS as usize);
    assert!(per_binding < 1024, "{per_binding} bytes per binding");
}
