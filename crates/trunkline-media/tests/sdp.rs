//! SDP: a phone's offer parsed and written back byte for byte, unknown
//! lines kept in order; anchoring, hold, codec intersection and crypto
//! edits; malformed descriptions refused; random text never panics.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use proptest::prelude::*;
use std::net::IpAddr;
use trunkline_media::sdp::{Direction, Sdp, SdpError};

const OFFER: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.10\r\n\
s=-\r\n\
c=IN IP4 192.0.2.10\r\n\
t=0 0\r\n\
a=x-vendor:keep me\r\n\
m=audio 49170 RTP/AVP 0 8 9 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n\
a=sendrecv\r\n\
m=video 0 RTP/AVP 96\r\n\
a=rtpmap:96 VP8/90000\r\n";

#[test]
fn an_offer_round_trips_byte_for_byte() {
    let sdp = Sdp::parse(OFFER).unwrap();
    assert_eq!(sdp.to_string(), OFFER);
    assert_eq!(sdp.media.len(), 2);
    assert_eq!((sdp.media[0].port, sdp.media[1].port), (49170, 0));
    assert_eq!(sdp.connection(0), Some("192.0.2.10".parse().unwrap()));
    let codecs: Vec<_> = sdp
        .codecs(0)
        .iter()
        .map(|c| (c.payload_type, c.name.clone()))
        .collect();
    // 9 has no rtpmap: RFC 3551's static G722.
    assert_eq!(
        codecs,
        vec![
            (0, "PCMU".into()),
            (8, "PCMA".into()),
            (9, "G722".into()),
            (101, "telephone-event".into())
        ]
    );
    assert_eq!(sdp.direction(0), Direction::SendRecv);
    assert_eq!(sdp.cryptos(0).len(), 1);
    // Bare LF line ends are read too.
    assert_eq!(Sdp::parse(&OFFER.replace("\r\n", "\n")).unwrap(), sdp);
}

#[test]
fn anchoring_rewrites_the_connection_and_ports() {
    let mut sdp = Sdp::parse(OFFER).unwrap();
    let relay: IpAddr = "127.0.0.1".parse().unwrap();
    sdp.set_connection(relay);
    sdp.media[0].port = 30_000;
    let text = sdp.to_string();
    assert!(text.contains("c=IN IP4 127.0.0.1\r\n"));
    assert!(text.contains("o=alice 2890844526 2890844526 IN IP4 127.0.0.1\r\n"));
    assert!(text.contains("m=audio 30000 RTP/AVP 0 8 9 101\r\n"));
    assert!(
        text.contains("a=x-vendor:keep me\r\n"),
        "unknown attributes stay"
    );
    sdp.set_connection("::1".parse().unwrap());
    assert_eq!(sdp.connection(0), Some("::1".parse().unwrap()));
}

#[test]
fn hold_and_its_answer() {
    let mut sdp = Sdp::parse(OFFER).unwrap();
    sdp.set_direction(0, Direction::SendOnly);
    let text = sdp.to_string();
    assert!(text.contains("a=sendonly\r\n") && !text.contains("a=sendrecv"));
    assert_eq!(Sdp::parse(&text).unwrap().direction(0), Direction::SendOnly);
    assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
}

#[test]
fn codecs_intersect_with_what_we_support() {
    let mut sdp = Sdp::parse(OFFER).unwrap();
    sdp.retain_codecs(0, |c| c.name == "PCMA" || c.name == "telephone-event");
    let text = sdp.to_string();
    assert!(text.contains("m=audio 49170 RTP/AVP 8 101\r\n"), "{text}");
    assert!(!text.contains("rtpmap:0 ") && text.contains("a=fmtp:101 0-16"));
}

#[test]
fn crypto_lines_are_stripped_and_added() {
    let mut sdp = Sdp::parse(OFFER).unwrap();
    sdp.strip_crypto(0);
    assert!(sdp.cryptos(0).is_empty());
    sdp.add_crypto(0, "1 AEAD_AES_128_GCM inline:abc");
    assert_eq!(sdp.cryptos(0), vec!["1 AEAD_AES_128_GCM inline:abc"]);
}

#[test]
fn malformed_descriptions_are_refused() {
    assert_eq!(Sdp::parse("o=x\r\n"), Err(SdpError::Version));
    assert_eq!(Sdp::parse(""), Err(SdpError::Version));
    assert_eq!(
        Sdp::parse("v=0\r\nnot a line\r\n"),
        Err(SdpError::Syntax { line: 2 })
    );
    assert_eq!(
        Sdp::parse("v=0\r\nm=audio port RTP/AVP 0\r\n"),
        Err(SdpError::Media { line: 2 })
    );
}

proptest! {
    #[test]
    fn what_parses_serializes_to_the_same_description(text in "(v=0\r\n)?([a-z]=[ -~]{0,20}\r\n){0,12}") {
        if let Ok(sdp) = Sdp::parse(&text) {
            prop_assert_eq!(Sdp::parse(&sdp.to_string()).unwrap(), sdp);
        }
    }
}
