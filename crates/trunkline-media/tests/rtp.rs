//! RTP packets: the fixed header, CSRCs, RFC 8285 extensions, padding,
//! writing and in-place edits; malformed input is an error, never a panic.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use proptest::prelude::*;
use trunkline_media::rtp::{
    RtpError, RtpHeader, RtpPacket, header_len, set_payload_type, set_sequence, set_ssrc,
    set_timestamp,
};

#[test]
fn a_g711_packet_reads_as_written_on_the_wire() {
    // V=2, no padding/extension/CSRC; M=1, PT=8; seq 0x1234; ts 0x0000a0b0;
    // SSRC 0xdeadbeef; then 4 payload bytes.
    let wire = [
        0x80, 0x88, 0x12, 0x34, 0x00, 0x00, 0xa0, 0xb0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4,
    ];
    let p = RtpPacket::parse(&wire).unwrap();
    assert!(p.marker());
    assert_eq!(p.payload_type(), 8);
    assert_eq!(p.sequence(), 0x1234);
    assert_eq!(p.timestamp(), 0xa0b0);
    assert_eq!(p.ssrc(), 0xdead_beef);
    assert_eq!(p.csrcs().count(), 0);
    assert_eq!(p.extension(), None);
    assert_eq!(p.payload(), &[1, 2, 3, 4]);
    assert_eq!(p.header_len(), 12);
}

#[test]
fn csrcs_extensions_and_padding_round_trip() {
    // One-byte elements: id 1 len 1 (0x10), id 2 len 2 (0x21), a padding
    // byte, then id 3 len 1 — 8 bytes, two words.
    let extension = [0x10, 0xaa, 0x21, 0xbb, 0xcc, 0x00, 0x30, 0xdd];
    let header = RtpHeader {
        marker: false,
        payload_type: 0,
        sequence: 65_535,
        timestamp: u32::MAX,
        ssrc: 42,
        csrcs: &[7, 8, 9],
        extension: Some((0xBEDE, &extension)),
    };
    let mut buf = [0u8; 256];
    let len = header.write(&[0x55; 20], &mut buf).unwrap();
    assert_eq!(len, 12 + 12 + 4 + 8 + 20);
    let p = RtpPacket::parse(&buf[..len]).unwrap();
    assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![7, 8, 9]);
    assert_eq!(p.extension(), Some((0xBEDE, &extension[..])));
    let elements: Vec<_> = p.extension_elements().collect();
    assert_eq!(
        elements,
        vec![(1, &[0xaa][..]), (2, &[0xbb, 0xcc][..]), (3, &[0xdd][..])]
    );
    assert_eq!(p.payload(), &[0x55; 20]);

    // Padding: set P, append three bytes, the last saying 3.
    let mut padded = buf[..len].to_vec();
    padded[0] |= 0x20;
    padded.extend_from_slice(&[0, 0, 3]);
    assert_eq!(RtpPacket::parse(&padded).unwrap().payload(), &[0x55; 20]);
}

#[test]
fn two_byte_extension_elements() {
    // Profile 0x1000: id 5 len 0, id 6 len 3, padding.
    let data = [5, 0, 6, 3, 1, 2, 3, 0];
    let header = RtpHeader {
        extension: Some((0x1000, &data)),
        ..RtpHeader::default()
    };
    let mut buf = [0u8; 64];
    let len = header.write(&[], &mut buf).unwrap();
    let p = RtpPacket::parse(&buf[..len]).unwrap();
    let elements: Vec<_> = p.extension_elements().collect();
    assert_eq!(elements, vec![(5, &[][..]), (6, &[1, 2, 3][..])]);
}

#[test]
fn malformed_packets_are_errors() {
    let ok = {
        let mut b = [0u8; 16];
        b[0] = 0x80;
        b
    };
    assert_eq!(RtpPacket::parse(&ok[..11]), Err(RtpError::TooShort(11)));
    let mut v1 = ok;
    v1[0] = 0x40;
    assert_eq!(RtpPacket::parse(&v1), Err(RtpError::Version(1)));
    let mut many_csrcs = ok;
    many_csrcs[0] = 0x8f; // 15 CSRCs need 72 bytes
    assert_eq!(RtpPacket::parse(&many_csrcs), Err(RtpError::TooShort(16)));
    let mut long_extension = ok;
    long_extension[0] = 0x90;
    long_extension[14] = 0xff; // 0xff00 words of extension
    assert_eq!(
        RtpPacket::parse(&long_extension),
        Err(RtpError::TooShort(16))
    );
    let mut padding = ok;
    padding[0] = 0xa0;
    padding[15] = 5; // more padding than payload
    assert_eq!(RtpPacket::parse(&padding), Err(RtpError::Padding));
    padding[15] = 0;
    assert_eq!(RtpPacket::parse(&padding), Err(RtpError::Padding));
    let too_many = RtpHeader {
        csrcs: &[0; 16],
        ..RtpHeader::default()
    };
    assert_eq!(
        too_many.write(&[], &mut [0; 128]),
        Err(RtpError::OutOfRange)
    );
    assert_eq!(
        RtpHeader::default().write(&[0; 10], &mut [0; 15]),
        Err(RtpError::BufferTooSmall)
    );
}

#[test]
fn the_header_length_ignores_the_payload() {
    let mut buf = [0u8; 64];
    let header = RtpHeader {
        csrcs: &[7],
        extension: Some((0xBEDE, &[0x10, 1, 0, 0])),
        ..RtpHeader::default()
    };
    let len = header.write(&[9, 9, 0], &mut buf).unwrap();
    // The P bit with a zero count: not RTP, but an SRTP packet can look
    // so, its count being encrypted.
    buf[0] |= 0x20;
    assert_eq!(RtpPacket::parse(&buf[..len]), Err(RtpError::Padding));
    assert_eq!(header_len(&buf[..len]), Ok(12 + 4 + 8));
    assert_eq!(header_len(&buf[..20]), Err(RtpError::TooShort(20)));
}

#[test]
fn a_relay_rewrites_fields_in_place() {
    let mut buf = [0u8; 32];
    let header = RtpHeader {
        marker: true,
        payload_type: 0,
        sequence: 1,
        timestamp: 2,
        ssrc: 3,
        ..RtpHeader::default()
    };
    let len = header.write(&[9; 8], &mut buf).unwrap();
    let packet = &mut buf[..len];
    set_ssrc(packet, 0xabcd);
    set_sequence(packet, 500);
    set_timestamp(packet, 80_000);
    set_payload_type(packet, 101);
    let p = RtpPacket::parse(packet).unwrap();
    assert_eq!(
        (p.ssrc(), p.sequence(), p.timestamp(), p.payload_type()),
        (0xabcd, 500, 80_000, 101)
    );
    assert!(p.marker(), "the marker survives a payload type change");
    assert_eq!(p.payload(), &[9; 8]);
}

proptest! {
    #[test]
    fn any_bytes_parse_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = RtpPacket::parse(&bytes) {
            prop_assert!(p.header_len() + p.payload().len() <= bytes.len());
            let _ = p.extension_elements().count();
            let _ = p.csrcs().count();
        }
    }
}
