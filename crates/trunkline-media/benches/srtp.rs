//! SRTP protect + unprotect of one G.711 packet (12-byte RTP header,
//! 160-byte payload), ours beside the `webrtc-srtp` crate, with
//! `AES_CM_128_HMAC_SHA1_80` and `AEAD_AES_128_GCM`. Each iteration takes
//! the next sequence number, so the rollover counter and replay windows
//! do their real work. Both receivers keep a 64-packet replay window.
//!
//! `cargo bench -p trunkline-media --bench srtp`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use trunkline_media::rtp::{RtpHeader, set_sequence};
use trunkline_media::sdes::Suite;
use trunkline_media::srtp::SrtpContext;
use webrtc_srtp::context::Context;
use webrtc_srtp::option::srtp_replay_protection;
use webrtc_srtp::protection_profile::ProtectionProfile;

const PAYLOAD: usize = 160;

/// The plain packet: PCMU, SSRC 0x5eed, a payload that is not all zeros.
fn g711_packet() -> Vec<u8> {
    let mut buf = vec![0u8; 12 + PAYLOAD];
    let payload: Vec<u8> = (0..PAYLOAD).map(|n| n as u8).collect();
    let header = RtpHeader {
        payload_type: 0,
        timestamp: 160,
        ssrc: 0x5eed,
        ..RtpHeader::default()
    };
    let len = header
        .write(&payload, &mut buf)
        .unwrap_or_else(|e| panic!("a G.711 packet fits: {e}"));
    assert_eq!(len, buf.len());
    buf
}

fn ours(suite: Suite, key: &[u8], salt: &[u8]) -> SrtpContext {
    SrtpContext::new(suite, key, salt).unwrap_or_else(|e| panic!("{suite:?}: {e}"))
}

fn theirs(profile: ProtectionProfile, key: &[u8], salt: &[u8], receiver: bool) -> Context {
    let replay = receiver.then(|| srtp_replay_protection(64));
    Context::new(key, salt, profile, replay, None).unwrap_or_else(|e| panic!("{profile:?}: {e}"))
}

fn protect_unprotect(c: &mut Criterion) {
    let plain = g711_packet();
    for (suite, profile) in [
        (
            Suite::AesCm128HmacSha1_80,
            ProtectionProfile::Aes128CmHmacSha1_80,
        ),
        (Suite::AeadAes128Gcm, ProtectionProfile::AeadAes128Gcm),
    ] {
        let key: Vec<u8> = (1..=16).collect();
        let salt: Vec<u8> = (100..100 + suite.salt_len() as u8).collect();

        // Before timing anything: both produce the same bytes, and each
        // unprotects the other's (the bench also runs under `cargo test`).
        let mut buf = [0u8; 12 + PAYLOAD + 16];
        buf[..plain.len()].copy_from_slice(&plain);
        let n = ours(suite, &key, &salt)
            .protect_rtp(&mut buf, plain.len())
            .unwrap_or_else(|e| panic!("{e}"));
        let their_srtp = theirs(profile, &key, &salt, false)
            .encrypt_rtp(&plain)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(buf[..n], their_srtp[..], "{suite:?}: the same SRTP bytes");
        let their_plain = theirs(profile, &key, &salt, true)
            .decrypt_rtp(&buf[..n])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(their_plain[..], plain[..]);

        let mut group = c.benchmark_group(format!("srtp/{}", suite.name()));
        group.bench_function("trunkline-media", |b| {
            let (mut sender, mut receiver) = (ours(suite, &key, &salt), ours(suite, &key, &salt));
            let mut seq = 0u16;
            b.iter(|| {
                seq = seq.wrapping_add(1);
                buf[..plain.len()].copy_from_slice(&plain);
                set_sequence(&mut buf, seq);
                let n = sender
                    .protect_rtp(&mut buf, plain.len())
                    .unwrap_or_else(|e| panic!("{e}"));
                let n = receiver
                    .unprotect_rtp(black_box(&mut buf[..n]))
                    .unwrap_or_else(|e| panic!("{e}"));
                black_box(&buf[..n]);
            });
        });
        group.bench_function("webrtc-srtp", |b| {
            let mut sender = theirs(profile, &key, &salt, false);
            let mut receiver = theirs(profile, &key, &salt, true);
            let mut packet = plain.clone();
            let mut seq = 0u16;
            b.iter(|| {
                seq = seq.wrapping_add(1);
                set_sequence(&mut packet, seq);
                let srtp = sender
                    .encrypt_rtp(&packet)
                    .unwrap_or_else(|e| panic!("{e}"));
                let rtp = receiver
                    .decrypt_rtp(black_box(&srtp))
                    .unwrap_or_else(|e| panic!("{e}"));
                black_box(rtp);
            });
        });
        group.finish();
    }
}

criterion_group!(benches, protect_unprotect);
criterion_main!(benches);
