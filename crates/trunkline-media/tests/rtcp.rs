//! RTCP: SR, RR, SDES, BYE and APP written, read back from one compound
//! packet, and malformed input refused without panicking.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use proptest::prelude::*;
use trunkline_media::rtcp::{
    App, Bye, ReceiverReport, ReportBlock, RtcpError, RtcpPacket, Sdes, SenderReport, packets,
};

fn block(ssrc: u32, lost: i32) -> ReportBlock {
    ReportBlock {
        ssrc,
        fraction_lost: 12,
        cumulative_lost: lost,
        highest_sequence: 70_000,
        jitter: 33,
        last_sr: 0x1234_5678,
        delay_since_last_sr: 65_536,
    }
}

#[test]
fn a_compound_packet_reads_back_what_was_written() {
    let mut buf = [0u8; 512];
    let mut at = 0;
    at += SenderReport::write(
        0xaaaa,
        0x0102_0304_0506_0708,
        160,
        50,
        8000,
        &[block(1, -3)],
        &mut buf[at..],
    )
    .unwrap();
    at += ReceiverReport::write(0xbbbb, &[block(2, 100), block(3, 0)], &mut buf[at..]).unwrap();
    at += Sdes::write_cname(0xaaaa, b"trunkline@127.0.0.1", &mut buf[at..]).unwrap();
    at += Bye::write(&[0xaaaa, 0xcccc], Some(b"call ended"), &mut buf[at..]).unwrap();
    let app = App {
        subtype: 3,
        ssrc: 0xaaaa,
        name: *b"TLNE",
        data: &[1, 2, 3, 4],
    };
    at += app.write(&mut buf[at..]).unwrap();
    assert_eq!(at % 4, 0);

    let read: Vec<_> = packets(&buf[..at]).map(Result::unwrap).collect();
    assert_eq!(read.len(), 5);
    let RtcpPacket::SenderReport(sr) = read[0] else {
        panic!("{:?}", read[0])
    };
    assert_eq!(
        (
            sr.ssrc,
            sr.ntp_timestamp,
            sr.rtp_timestamp,
            sr.packet_count,
            sr.octet_count
        ),
        (0xaaaa, 0x0102_0304_0506_0708, 160, 50, 8000)
    );
    assert_eq!(
        sr.reports.iter().collect::<Vec<_>>(),
        vec![block(1, -3)],
        "negative loss survives 24 bits"
    );
    let RtcpPacket::ReceiverReport(rr) = read[1] else {
        panic!("{:?}", read[1])
    };
    assert_eq!(rr.ssrc, 0xbbbb);
    assert_eq!(
        rr.reports.iter().collect::<Vec<_>>(),
        vec![block(2, 100), block(3, 0)]
    );
    let RtcpPacket::Sdes(sdes) = read[2] else {
        panic!("{:?}", read[2])
    };
    let chunk = sdes.chunks().next().unwrap().unwrap();
    assert_eq!(
        (chunk.ssrc, chunk.cname()),
        (0xaaaa, Some(&b"trunkline@127.0.0.1"[..]))
    );
    let RtcpPacket::Bye(bye) = read[3] else {
        panic!("{:?}", read[3])
    };
    assert_eq!(bye.ssrcs().collect::<Vec<_>>(), vec![0xaaaa, 0xcccc]);
    assert_eq!(bye.reason, Some(&b"call ended"[..]));
    assert_eq!(read[4], RtcpPacket::App(app));
}

#[test]
fn unknown_types_pass_through_and_malformed_packets_stop_the_walk() {
    // A transport-layer feedback packet (205), then garbage.
    let mut buf = vec![0x81, 205, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2];
    buf.extend_from_slice(&[0x40, 200, 0, 0]);
    let mut walk = packets(&buf);
    assert!(matches!(
        walk.next(),
        Some(Ok(RtcpPacket::Other {
            packet_type: 205,
            count: 1,
            ..
        }))
    ));
    assert_eq!(walk.next(), Some(Err(RtcpError::Version(1))));
    assert_eq!(walk.next(), None);
    // Counts that do not fit their packet.
    let rr_claims_two_blocks = [0x82, 201, 0x00, 0x01, 0, 0, 0, 9];
    assert_eq!(
        packets(&rr_claims_two_blocks).next(),
        Some(Err(RtcpError::Malformed("report count")))
    );
    let length_beyond = [0x80, 201, 0x00, 0x09, 0, 0, 0, 9];
    assert_eq!(
        packets(&length_beyond).next(),
        Some(Err(RtcpError::Truncated))
    );
}

proptest! {
    #[test]
    fn any_bytes_read_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for packet in packets(&bytes).take(100) {
            if let Ok(RtcpPacket::Sdes(sdes)) = packet {
                for chunk in sdes.chunks().flatten() {
                    let _ = chunk.items().count();
                }
            }
        }
    }
}
