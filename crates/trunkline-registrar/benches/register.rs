//! An authenticated registration through the registrar, as a server does
//! it: parse the REGISTER, challenge it (401), parse the answer, check the
//! digest, update the in-memory locator, build the 200. The phone's side
//! (computing the answer) is outside the timed part.
//!
//! `cargo bench -p trunkline-registrar --bench register`

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};
use trunkline_registrar::{MemoryLocator, Registrar, RegistrarConfig, StaticUsers, authorization};
use trunkline_sip::{Message, StatusCode};
use trunkline_transaction::{Peer, Transport};

const REALM: &str = "pbx.example.com";
/// Extensions registering in turn, so the locator holds many bindings.
const PHONES: u32 = 10_000;

fn register(user: u32, cseq: u32, authorization: Option<&str>) -> Bytes {
    let auth = authorization.map_or_else(String::new, |a| format!("Authorization: {a}\r\n"));
    Bytes::from(format!(
        "REGISTER sip:{REALM} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.{}.{}:5060;branch=z9hG4bK{user}x{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@{REALM}>;tag=t{user}\r\n\
         To: <sip:{user}@{REALM}>\r\n\
         Call-ID: reg{user}@10.0.0.1\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{user}@10.0.{}.{}:5060>;expires=3600\r\n\
         User-Agent: Bench/1.0\r\n\
         {auth}Content-Length: 0\r\n\r\n",
        user / 250,
        user % 250,
        user / 250,
        user % 250,
    ))
}

fn authenticated_register(c: &mut Criterion) {
    let mut users = StaticUsers::new();
    for user in 0..PHONES {
        users = users.with_password(&user.to_string(), "secret");
    }
    let registrar = Registrar::new(
        RegistrarConfig::new(REALM),
        [9; 32],
        MemoryLocator::new(10),
        users,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let peer = Peer::new(Transport::Udp, "10.0.0.1:5060".parse().expect("addr"));
    let mut n = 0u32;
    c.bench_function("authenticated_register/memory_locator", |b| {
        b.iter_custom(|iterations| {
            let mut timed = Duration::ZERO;
            for _ in 0..iterations {
                n += 1;
                let (user, cseq) = (n % PHONES, 2 * (n / PHONES) + 1);
                let now = SystemTime::now();
                let start = Instant::now();
                let first = Message::parse(register(user, cseq, None)).expect("parses");
                let challenge = runtime
                    .block_on(registrar.handle(now, &first, peer))
                    .response;
                let challenge_bytes = black_box(challenge.to_bytes());
                timed += start.elapsed();

                // The phone's work, not timed.
                let challenge = Message::parse(challenge_bytes).expect("parses");
                let offer = challenge.www_authenticates().next().expect("challenged");
                let answer = authorization(
                    &offer,
                    "REGISTER",
                    &format!("sip:{REALM}"),
                    &user.to_string(),
                    "secret",
                    "c0ffee",
                    1,
                )
                .expect("answer");
                let answered = register(user, cseq + 1, Some(&answer));

                let start = Instant::now();
                let second = Message::parse(answered).expect("parses");
                let ok = runtime
                    .block_on(registrar.handle(now, &second, peer))
                    .response;
                let ok_bytes = black_box(ok.to_bytes());
                timed += start.elapsed();
                assert!(ok_bytes.starts_with(b"SIP/2.0 200 "), "registered");
                assert_eq!(ok.status(), Some(StatusCode::OK));
            }
            timed
        })
    });
}

criterion_group!(benches, authenticated_register);
criterion_main!(benches);
