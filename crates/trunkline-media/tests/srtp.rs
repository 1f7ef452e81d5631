//! SRTP and SRTCP with every suite: what one side protects the other
//! unprotects, tampering and replays are refused, the rollover counter
//! follows the sequence wrap, packets arriving out of order inside the
//! window pass, and no input makes unprotecting panic.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use trunkline_media::rtcp::Sdes;
use trunkline_media::rtp::{RtpHeader, RtpPacket, set_ssrc};
use trunkline_media::sdes::Suite;
use trunkline_media::srtp::crypto::{AesGcm, RingAesGcm, RustAesCtr, RustHmacSha1};
use trunkline_media::srtp::{CryptoProvider, SrtpContext, SrtpError};

const SUITES: [Suite; 4] = [
    Suite::AesCm128HmacSha1_80,
    Suite::AesCm128HmacSha1_32,
    Suite::AeadAes128Gcm,
    Suite::AeadAes256Gcm,
];

fn context(suite: Suite) -> SrtpContext {
    let key = vec![1; suite.key_len()];
    let salt = vec![2; suite.salt_len()];
    SrtpContext::new(suite, &key, &salt).unwrap()
}

fn pair(suite: Suite) -> (SrtpContext, SrtpContext) {
    (context(suite), context(suite))
}

/// A G.711 packet (160-byte payload) with room for a tag.
fn packet(seq: u16) -> (Vec<u8>, usize) {
    let mut buf = vec![0u8; 12 + 160 + 16];
    let header = RtpHeader {
        payload_type: 0,
        sequence: seq,
        timestamp: u32::from(seq) * 160,
        ssrc: 0x5eed,
        ..RtpHeader::default()
    };
    let payload: Vec<u8> = (0..160).map(|n| (n as u8) ^ (seq as u8)).collect();
    let len = header.write(&payload, &mut buf).unwrap();
    (buf, len)
}

#[test]
fn protected_packets_unprotect_to_the_original() {
    for suite in SUITES {
        let (mut sender, mut receiver) = pair(suite);
        for seq in 100..110 {
            let (mut buf, len) = packet(seq);
            let original = buf[..len].to_vec();
            let protected = sender.protect_rtp(&mut buf, len).unwrap();
            assert_eq!(protected, len + sender.tag_len());
            assert_ne!(&buf[12..len], &original[12..], "the payload is encrypted");
            assert_eq!(&buf[..12], &original[..12], "the header is not");
            let plain = receiver.unprotect_rtp(&mut buf[..protected]).unwrap();
            assert_eq!(&buf[..plain], &original[..]);
        }
    }
}

#[test]
fn tampering_and_replays_are_refused() {
    for suite in SUITES {
        let (mut sender, mut receiver) = pair(suite);
        let (mut buf, len) = packet(7);
        let n = sender.protect_rtp(&mut buf, len).unwrap();
        // A bit flipped in the header, the payload, or the tag.
        for at in [1, 20, n - 1] {
            let mut tampered = buf[..n].to_vec();
            tampered[at] ^= 1;
            let before = tampered.clone();
            assert_eq!(
                receiver.unprotect_rtp(&mut tampered),
                Err(SrtpError::Authentication),
                "{suite:?} byte {at}"
            );
            assert_eq!(tampered, before, "a refused packet is left as it was");
        }
        let mut copy = buf[..n].to_vec();
        receiver.unprotect_rtp(&mut buf[..n]).unwrap();
        assert_eq!(receiver.unprotect_rtp(&mut copy), Err(SrtpError::Replay));
        let key = vec![9; suite.key_len()];
        let mut wrong_key = SrtpContext::new(suite, &key, &vec![2; suite.salt_len()]).unwrap();
        let (mut buf, len) = packet(8);
        let n = sender.protect_rtp(&mut buf, len).unwrap();
        assert_eq!(
            wrong_key.unprotect_rtp(&mut buf[..n]),
            Err(SrtpError::Authentication)
        );
        // Protecting a sequence number twice would reuse its keystream.
        let (mut buf, len) = packet(8);
        assert_eq!(sender.protect_rtp(&mut buf, len), Err(SrtpError::Replay));
    }
}

#[test]
fn headers_with_csrcs_extensions_and_padding_are_authenticated() {
    for suite in SUITES {
        let (mut sender, mut receiver) = pair(suite);
        let mut buf = vec![0u8; 128];
        let header = RtpHeader {
            payload_type: 96,
            sequence: 1,
            ssrc: 0xabc,
            csrcs: &[1, 2],
            extension: Some((0xBEDE, &[0x10, 0xff, 0, 0])),
            ..RtpHeader::default()
        };
        // Three bytes of payload and a padding count of 1 (the P bit set):
        // SRTP encrypts the count, so it must not be read before.
        let len = header.write(&[5, 6, 7, 1], &mut buf).unwrap();
        buf[0] |= 0x20;
        let original = buf[..len].to_vec();
        let n = sender.protect_rtp(&mut buf, len).unwrap();
        let mut tampered = buf[..n].to_vec();
        tampered[25] ^= 0x40; // the extension element's data
        assert_eq!(
            receiver.unprotect_rtp(&mut tampered),
            Err(SrtpError::Authentication)
        );
        let plain = receiver.unprotect_rtp(&mut buf[..n]).unwrap();
        assert_eq!(buf[..plain], original[..]);
        assert_eq!(
            RtpPacket::parse(&buf[..plain]).unwrap().payload(),
            [5, 6, 7]
        );
    }
}

#[test]
fn keys_of_the_wrong_length_are_refused() {
    for suite in SUITES {
        let key = vec![0; suite.key_len()];
        let salt = vec![0; suite.salt_len()];
        assert!(SrtpContext::new(suite, &key, &salt).is_ok());
        assert_eq!(
            SrtpContext::new(suite, &key[1..], &salt).map(|_| ()),
            Err(SrtpError::KeyLength)
        );
        assert_eq!(
            SrtpContext::new(suite, &key, &[0; 13]).map(|_| ()),
            Err(SrtpError::KeyLength)
        );
    }
}

#[test]
fn the_rollover_counter_follows_the_wrap_and_late_packets_pass() {
    let (mut sender, mut receiver) = pair(Suite::AesCm128HmacSha1_80);
    let mut protected = Vec::new();
    for seq in (65_530..=65_535).chain(0..6) {
        let (mut buf, len) = packet(seq);
        let n = sender.protect_rtp(&mut buf, len).unwrap();
        protected.push((seq, buf[..n].to_vec()));
    }
    // Deliver with two swapped across the wrap and one very late.
    protected.swap(5, 6);
    let late = protected.remove(2);
    for (seq, mut srtp) in protected {
        let len = receiver.unprotect_rtp(&mut srtp).unwrap();
        assert_eq!(RtpPacket::parse(&srtp[..len]).unwrap().sequence(), seq);
    }
    let (_, mut late) = late;
    let len = receiver.unprotect_rtp(&mut late).unwrap();
    assert_eq!(RtpPacket::parse(&late[..len]).unwrap().sequence(), 65_532);
}

#[test]
fn each_source_has_its_own_rollover_counter() {
    let suite = Suite::AesCm128HmacSha1_80;
    let mut sender = context(suite);
    // Source A wraps while source B, started later, does not: protected
    // by one context, each reads back in a context that sees it alone.
    let (mut a, mut b) = (context(suite), context(suite));
    for (ssrc, seq) in [(0xa, 65_535), (0xb, 10), (0xa, 0), (0xb, 11), (0xa, 1)] {
        let (mut buf, len) = packet(seq);
        set_ssrc(&mut buf, ssrc);
        let n = sender.protect_rtp(&mut buf, len).unwrap();
        let receiver = if ssrc == 0xa { &mut a } else { &mut b };
        assert_eq!(
            receiver.unprotect_rtp(&mut buf[..n]),
            Ok(len),
            "{ssrc} {seq}"
        );
    }
}

/// The default GCM, counting the packets it seals.
#[derive(Clone)]
struct CountingGcm(RingAesGcm);

static SEALED: AtomicUsize = AtomicUsize::new(0);

impl AesGcm for CountingGcm {
    fn new(key: &[u8]) -> Option<Self> {
        RingAesGcm::new(key).map(CountingGcm)
    }
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        SEALED.fetch_add(1, Ordering::Relaxed);
        self.0.seal(nonce, aad, data)
    }
    fn open(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8; 16]) -> bool {
        self.0.open(nonce, aad, data, tag)
    }
}

struct Counting;

impl CryptoProvider for Counting {
    type AesCtr = RustAesCtr;
    type HmacSha1 = RustHmacSha1;
    type AesGcm = CountingGcm;
}

#[test]
fn another_provider_plugs_in() {
    let suite = Suite::AeadAes128Gcm;
    let mut counted = SrtpContext::<Counting>::with_provider(suite, &[1; 16], &[2; 12]).unwrap();
    let (mut buf, len) = packet(1);
    let n = counted.protect_rtp(&mut buf, len).unwrap();
    assert_eq!(SEALED.load(Ordering::Relaxed), 1);
    let (mut reference, _) = packet(1);
    context(suite).protect_rtp(&mut reference, len).unwrap();
    assert_eq!(buf[..n], reference[..n]);
}

#[test]
fn srtcp_round_trips_and_is_authenticated() {
    for suite in SUITES {
        let (mut sender, mut receiver) = pair(suite);
        let mut buf = [0u8; 128];
        let len = Sdes::write_cname(0x5eed, b"alice@example.com", &mut buf).unwrap();
        let original = buf[..len].to_vec();
        let n = sender.protect_rtcp(&mut buf, len).unwrap();
        assert_eq!(n, len + sender.srtcp_overhead());
        assert_ne!(&buf[8..len], &original[8..], "encrypted after 8 bytes");
        assert_eq!(&buf[..8], &original[..8]);
        let mut tampered = buf[..n].to_vec();
        tampered[9] ^= 0x80;
        assert_eq!(
            receiver.unprotect_rtcp(&mut tampered),
            Err(SrtpError::Authentication)
        );
        let mut copy = buf[..n].to_vec();
        let plain = receiver.unprotect_rtcp(&mut buf[..n]).unwrap();
        assert_eq!(&buf[..plain], &original[..], "{suite:?}");
        assert_eq!(receiver.unprotect_rtcp(&mut copy), Err(SrtpError::Replay));
        // The next one carries the next SRTCP index.
        let len = Sdes::write_cname(0x5eed, b"alice@example.com", &mut buf).unwrap();
        let n = sender.protect_rtcp(&mut buf, len).unwrap();
        // E and the index: before the tag with AES-CM, last with GCM.
        let at = if sender.tag_len() == 16 { n - 4 } else { len };
        assert_eq!(buf[at..at + 4], [0x80, 0, 0, 1]);
        assert_eq!(receiver.unprotect_rtcp(&mut buf[..n]), Ok(len));
    }
}

proptest! {
    #[test]
    fn unprotecting_any_bytes_is_an_error_not_a_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..96),
        suite in proptest::sample::select(SUITES.to_vec()),
    ) {
        let mut receiver = context(suite);
        prop_assert!(receiver.unprotect_rtp(&mut bytes.clone()).is_err());
        prop_assert!(receiver.unprotect_rtcp(&mut bytes.clone()).is_err());
    }
}
