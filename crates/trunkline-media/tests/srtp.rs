//! SRTP and SRTCP with the AES-CM/HMAC-SHA1 suites: what one side
//! protects the other unprotects, tampering and replays are refused, the
//! rollover counter follows the sequence wrap, and packets arriving out of
//! order inside the window pass.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use trunkline_media::rtcp::Sdes;
use trunkline_media::rtp::{RtpHeader, RtpPacket};
use trunkline_media::sdes::Suite;
use trunkline_media::srtp::{SrtpContext, SrtpError};

const KEY: [u8; 16] = [1; 16];
const SALT: [u8; 14] = [2; 14];

fn pair(suite: Suite) -> (SrtpContext, SrtpContext) {
    (
        SrtpContext::new(suite, &KEY, &SALT).unwrap(),
        SrtpContext::new(suite, &KEY, &SALT).unwrap(),
    )
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
    for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
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
    let (mut sender, mut receiver) = pair(Suite::AesCm128HmacSha1_80);
    let (mut buf, len) = packet(7);
    let n = sender.protect_rtp(&mut buf, len).unwrap();
    let mut tampered = buf[..n].to_vec();
    tampered[20] ^= 1;
    assert_eq!(
        receiver.unprotect_rtp(&mut tampered),
        Err(SrtpError::Authentication)
    );
    let mut copy = buf[..n].to_vec();
    receiver.unprotect_rtp(&mut buf[..n]).unwrap();
    assert_eq!(receiver.unprotect_rtp(&mut copy), Err(SrtpError::Replay));
    let mut wrong_key = SrtpContext::new(Suite::AesCm128HmacSha1_80, &[9; 16], &SALT).unwrap();
    let (mut buf, len) = packet(8);
    let n = sender.protect_rtp(&mut buf, len).unwrap();
    assert_eq!(
        wrong_key.unprotect_rtp(&mut buf[..n]),
        Err(SrtpError::Authentication)
    );
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
fn srtcp_round_trips_and_is_authenticated() {
    let (mut sender, mut receiver) = pair(Suite::AesCm128HmacSha1_80);
    let mut buf = [0u8; 128];
    let len = Sdes::write_cname(0x5eed, b"alice@example.com", &mut buf).unwrap();
    let original = buf[..len].to_vec();
    let n = sender.protect_rtcp(&mut buf, len).unwrap();
    assert_eq!(n, len + 4 + 10);
    assert_ne!(&buf[8..len], &original[8..]);
    let mut tampered = buf[..n].to_vec();
    tampered[9] ^= 0x80;
    assert_eq!(
        receiver.unprotect_rtcp(&mut tampered),
        Err(SrtpError::Authentication)
    );
    let plain = receiver.unprotect_rtcp(&mut buf[..n]).unwrap();
    assert_eq!(&buf[..plain], &original[..]);
}

#[test]
fn gcm_suites_are_refused_until_implemented() {
    assert_eq!(
        SrtpContext::new(Suite::AeadAes128Gcm, &KEY, &[0; 12]).map(|_| ()),
        Err(SrtpError::Suite)
    );
}
