//! The relay over real loopback sockets: plain peers on both sides,
//! latching, SRTP on one leg only, RTCP on its own port and muxed, DTMF
//! events, taps, inactivity, malformed and spoofed packets, port reuse.

#![cfg(feature = "relay")]
#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use trunkline_media::dtmf::TelephoneEvent;
use trunkline_media::relay::{
    Leg, LegSrtp, Relay, RelayConfig, RelayEvent, Session, SessionOptions, SessionStats, TICK,
};
use trunkline_media::rtp::{RtpHeader, RtpPacket};
use trunkline_media::sdes::Suite;
use trunkline_media::srtp::SrtpContext;

const LIMIT: Duration = Duration::from_secs(5);

fn relay_with(config: RelayConfig) -> (Relay, mpsc::Receiver<RelayEvent>) {
    Relay::start(config).unwrap()
}

/// A relay on its own port range, so parallel tests never share ports.
fn relay(first_port: u16) -> (Relay, mpsc::Receiver<RelayEvent>) {
    relay_with(RelayConfig {
        ports: (first_port, first_port + 99),
        ..RelayConfig::default()
    })
}

/// A peer: a loopback socket that gives up reading after `LIMIT`.
fn peer() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    socket
}

fn rtp(payload_type: u8, sequence: u16, payload: &[u8]) -> Vec<u8> {
    let header = RtpHeader {
        payload_type,
        sequence,
        timestamp: u32::from(sequence) * 160,
        ssrc: 0x1234_5678,
        ..Default::default()
    };
    let mut buf = vec![0; 1500];
    let len = header.write(payload, &mut buf).unwrap();
    buf.truncate(len);
    buf
}

fn receive(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0; 2048];
    let (len, from) = socket.recv_from(&mut buf).unwrap();
    (buf[..len].to_vec(), from)
}

/// Waits (bounded) until the published statistics satisfy `ok`.
fn stats_until(session: &Session, ok: impl Fn(&SessionStats) -> bool) -> SessionStats {
    let deadline = Instant::now() + LIMIT;
    loop {
        let stats = session.stats();
        if ok(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(TICK / 2);
    }
}

/// The next event, waiting at most `LIMIT`.
fn event(events: &mut mpsc::Receiver<RelayEvent>) -> RelayEvent {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Ok(event) = events.try_recv() {
            return event;
        }
        assert!(Instant::now() < deadline, "no event within {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn plain_rtp_flows_both_ways_and_each_leg_latches() {
    let (relay, mut events) = relay(31000);
    let session = relay.open(SessionOptions::default()).unwrap();
    let (a, b) = (peer(), peer());
    let (leg_a, leg_b) = (session.local(Leg::A), session.local(Leg::B));
    assert_eq!(leg_a.rtp.port() % 2, 0, "an even RTP port");
    assert_eq!(leg_a.rtcp.port(), leg_a.rtp.port() + 1);
    // Leg B knows its peer from SDP; leg A will learn its peer by latching.
    let b_addr = b.local_addr().unwrap();
    session.set_remote(Leg::B, b_addr, b_addr);

    for seq in 0..50u16 {
        let packet = rtp(0, seq, &[0xd5; 160]);
        a.send_to(&packet, leg_a.rtp).unwrap();
        let (got, from) = receive(&b);
        assert_eq!(got, packet, "relayed unchanged");
        assert_eq!(from, leg_b.rtp, "from leg B's port: symmetric RTP");
    }
    assert_eq!(
        event(&mut events),
        RelayEvent::Latched {
            session: session.id(),
            leg: Leg::A,
            from: a.local_addr().unwrap()
        }
    );
    // Now back: leg A sends to where A's packets came from.
    for seq in 0..50u16 {
        let packet = rtp(0, seq, &[0x55; 160]);
        b.send_to(&packet, leg_b.rtp).unwrap();
        let (got, from) = receive(&a);
        assert_eq!(got, packet);
        assert_eq!(from, leg_a.rtp);
    }
    let stats = stats_until(&session, |s| s.leg(Leg::B).received == 50);
    for leg in [Leg::A, Leg::B] {
        let leg = stats.leg(leg);
        assert_eq!(
            (leg.received, leg.sent, leg.lost, leg.dropped),
            (50, 50, 0, 0)
        );
        assert!(leg.latched);
    }
    assert_eq!(stats.leg(Leg::A).received_bytes, 50 * 172);
    assert_eq!(relay.stats().relayed, 100);
}

#[test]
fn srtp_on_one_leg_meets_plain_rtp_on_the_other() {
    let (relay, _events) = relay(31100);
    let session = relay.open(SessionOptions::default()).unwrap();
    let (phone, trunk) = (peer(), peer());
    let (leg_a, leg_b) = (session.local(Leg::A), session.local(Leg::B));
    let trunk_addr = trunk.local_addr().unwrap();
    session.set_remote(Leg::B, trunk_addr, trunk_addr);
    let phone_addr = phone.local_addr().unwrap();
    session.set_remote(Leg::A, phone_addr, phone_addr);
    // The phone's key protects what it sends; the relay's key what the
    // relay sends it (RFC 4568: one key per direction).
    let suite = Suite::AesCm128HmacSha1_80;
    let (phone_key, relay_key) = ([1u8; 16], [2u8; 16]);
    let salt = [3u8; 14];
    let context = |key: &[u8; 16]| SrtpContext::new(suite, key, &salt).unwrap();
    session.set_srtp(
        Leg::A,
        Some(LegSrtp {
            inbound: context(&phone_key),
            outbound: context(&relay_key),
        }),
    );
    let mut phone_out = context(&phone_key);
    let mut phone_in = context(&relay_key);
    // Commands apply in order: the SRTP setting is in before the packet.
    for seq in 0..20u16 {
        let plain = rtp(8, seq, &[0x2a; 160]);
        let mut buf = plain.clone();
        buf.resize(plain.len() + 10, 0);
        let len = phone_out.protect_rtp(&mut buf, plain.len()).unwrap();
        phone.send_to(&buf[..len], leg_a.rtp).unwrap();
        let (got, _) = receive(&trunk);
        assert_eq!(got, plain, "the trunk gets plain RTP");

        trunk.send_to(&plain, leg_b.rtp).unwrap();
        let (mut got, _) = receive(&phone);
        assert_eq!(got.len(), plain.len() + 10, "the phone gets SRTP");
        let len = phone_in.unprotect_rtp(&mut got).unwrap();
        assert_eq!(got[..len], plain[..]);
    }
    // A packet that fails authentication is dropped and counted.
    let mut forged = rtp(8, 100, &[0; 160]);
    forged.extend_from_slice(&[0; 10]);
    phone.send_to(&forged, leg_a.rtp).unwrap();
    let stats = stats_until(&session, |s| s.leg(Leg::A).dropped == 1);
    assert_eq!(stats.leg(Leg::A).dropped, 1);
    assert_eq!(stats.leg(Leg::A).received, 20);
}

#[test]
fn rtcp_goes_port_to_port_and_muxed() {
    let (relay, _events) = relay(31200);
    let options = SessionOptions {
        rtcp_mux_a: false,
        rtcp_mux_b: true,
    };
    let session = relay.open(options).unwrap();
    let (leg_a, leg_b) = (session.local(Leg::A), session.local(Leg::B));
    assert_eq!(leg_b.rtcp, leg_b.rtp, "rtcp-mux: one port");
    let (a_rtp, a_rtcp, b) = (peer(), peer(), peer());
    session.set_remote(
        Leg::A,
        a_rtp.local_addr().unwrap(),
        a_rtcp.local_addr().unwrap(),
    );
    let b_addr = b.local_addr().unwrap();
    session.set_remote(Leg::B, b_addr, b_addr);
    // A receiver report from A's RTCP port reaches B on the muxed port…
    let report = [0x80, 201, 0, 1, 0, 0, 0, 1];
    a_rtcp.send_to(&report, leg_a.rtcp).unwrap();
    let (got, from) = receive(&b);
    assert_eq!((got.as_slice(), from), (&report[..], leg_b.rtp));
    // …and B's, sent on the muxed port, reaches A's RTCP port from leg A's.
    let report = [0x80, 201, 0, 1, 0, 0, 0, 2];
    b.send_to(&report, leg_b.rtp).unwrap();
    let (got, from) = receive(&a_rtcp);
    assert_eq!((got.as_slice(), from), (&report[..], leg_a.rtcp));
    // RTP on the muxed port still goes to A's RTP port.
    let packet = rtp(0, 1, &[1; 160]);
    b.send_to(&packet, leg_b.rtp).unwrap();
    assert_eq!(receive(&a_rtp).0, packet);
}

#[test]
fn a_digit_is_reported_once_and_taps_see_every_packet() {
    let (relay, mut events) = relay(31300);
    let session = relay.open(SessionOptions::default()).unwrap();
    let (a, b) = (peer(), peer());
    let b_addr = b.local_addr().unwrap();
    session.set_remote(Leg::B, b_addr, b_addr);
    session.set_telephone_event(Leg::A, Some(101));
    let mut tap = session.tap(64);
    let leg_a = session.local(Leg::A);
    let mut sent = Vec::new();
    // Digit 5 for 100 ms: updates, then the end packet three times, all
    // with the event's one timestamp.
    for (n, (end, duration)) in [
        (false, 400),
        (false, 800),
        (true, 800),
        (true, 800),
        (true, 800),
    ]
    .into_iter()
    .enumerate()
    {
        let event = TelephoneEvent {
            event: 5,
            end,
            volume: 10,
            duration,
        };
        let mut packet = rtp(101, n as u16, &event.to_bytes());
        packet[4..8].copy_from_slice(&1600u32.to_be_bytes());
        a.send_to(&packet, leg_a.rtp).unwrap();
        receive(&b);
        sent.push(packet);
    }
    let mut reported = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        match events.try_recv() {
            Ok(RelayEvent::Dtmf {
                digit, duration_ms, ..
            }) => reported.push((digit, duration_ms)),
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    assert_eq!(reported, [(Some('5'), 100)]);
    for packet in &sent {
        let tapped = tap.try_recv().unwrap();
        assert_eq!((tapped.leg, &tapped.packet[..]), (Leg::A, &packet[..]));
        RtpPacket::parse(&tapped.packet).unwrap();
    }
    assert!(tap.try_recv().is_err(), "nothing more");

    // A tap nobody reads fills up; the relay goes on and counts.
    let _full = session.tap(1);
    for seq in 10..13u16 {
        a.send_to(&rtp(0, seq, &[0; 160]), leg_a.rtp).unwrap();
        receive(&b);
    }
    assert_eq!(relay.stats().tap_dropped, 2);
}

#[test]
fn a_live_latch_is_not_stolen_but_a_silent_one_moves() {
    let (relay, mut events) = relay_with(RelayConfig {
        ports: (31400, 31499),
        relatch_after: Duration::from_millis(300),
        ..RelayConfig::default()
    });
    let session = relay.open(SessionOptions::default()).unwrap();
    let (a, intruder, b) = (peer(), peer(), peer());
    let b_addr = b.local_addr().unwrap();
    session.set_remote(Leg::B, b_addr, b_addr);
    let leg_a = session.local(Leg::A);
    a.send_to(&rtp(0, 1, &[0; 160]), leg_a.rtp).unwrap();
    receive(&b);
    assert!(matches!(event(&mut events), RelayEvent::Latched { .. }));
    // While A is live, another source is dropped…
    intruder.send_to(&rtp(0, 2, &[0; 160]), leg_a.rtp).unwrap();
    let stats = stats_until(&session, |s| s.leg(Leg::A).dropped == 1);
    assert_eq!(stats.leg(Leg::A).dropped, 1);
    assert_eq!(stats.leg(Leg::A).remote, Some(a.local_addr().unwrap()));
    // …once A has been silent long enough, a new source takes over (a
    // phone whose NAT mapping changed).
    std::thread::sleep(Duration::from_millis(400));
    intruder.send_to(&rtp(0, 3, &[0; 160]), leg_a.rtp).unwrap();
    receive(&b);
    assert_eq!(
        event(&mut events),
        RelayEvent::Latched {
            session: session.id(),
            leg: Leg::A,
            from: intruder.local_addr().unwrap()
        }
    );
}

#[test]
fn malformed_packets_are_counted_and_dropped() {
    let (relay, _events) = relay(31500);
    let session = relay.open(SessionOptions::default()).unwrap();
    let (a, b) = (peer(), peer());
    let b_addr = b.local_addr().unwrap();
    session.set_remote(Leg::B, b_addr, b_addr);
    let leg_a = session.local(Leg::A);
    // Too short, version 1, a CSRC count running past the end.
    for junk in [
        &[0x80u8][..],
        &[0x40; 20],
        &[0x8f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
    ] {
        a.send_to(junk, leg_a.rtp).unwrap();
    }
    let good = rtp(0, 1, &[7; 160]);
    a.send_to(&good, leg_a.rtp).unwrap();
    assert_eq!(receive(&b).0, good, "the relay goes on");
    let stats = stats_until(&session, |s| s.leg(Leg::A).dropped == 3);
    assert_eq!(
        (stats.leg(Leg::A).dropped, stats.leg(Leg::A).received),
        (3, 1)
    );
}

#[test]
fn a_silent_session_is_reported_inactive_once() {
    let (relay, mut events) = relay_with(RelayConfig {
        ports: (31600, 31699),
        inactivity_timeout: Duration::from_millis(500),
        ..RelayConfig::default()
    });
    let session = relay.open(SessionOptions::default()).unwrap();
    assert_eq!(
        event(&mut events),
        RelayEvent::Inactive {
            session: session.id()
        }
    );
    std::thread::sleep(Duration::from_millis(800));
    assert!(events.try_recv().is_err(), "reported once");
}

#[test]
fn ports_are_freed_with_the_session_and_a_full_range_refuses() {
    // Two port pairs: one session (two legs) fills the range.
    let (relay, _events) = relay_with(RelayConfig {
        ports: (31700, 31703),
        ..RelayConfig::default()
    });
    let session = relay.open(SessionOptions::default()).unwrap();
    let err = relay.open(SessionOptions::default()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    let port = session.local(Leg::A).rtp;
    drop(session);
    // The worker closes the sockets once it takes the command.
    let deadline = Instant::now() + LIMIT;
    while UdpSocket::bind(port).is_err() {
        assert!(Instant::now() < deadline, "{port} still bound");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(relay.stats().sessions, 0);
    relay.open(SessionOptions::default()).unwrap();
}

#[test]
fn a_muted_leg_is_not_heard_until_unmuted_and_its_rtcp_still_passes() {
    let (relay, _events) = relay(31800);
    let session = relay.open(SessionOptions::default()).unwrap();
    let (a, b) = (peer(), peer());
    let (leg_a, leg_b) = (session.local(Leg::A), session.local(Leg::B));
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    session.set_remote(Leg::A, a_addr, a_addr);
    session.set_remote(Leg::B, b_addr, b_addr);
    session.set_muted(Leg::A, true);

    for seq in 0..10u16 {
        a.send_to(&rtp(0, seq, &[0xd5; 160]), leg_a.rtp).unwrap();
    }
    // An RTCP receiver report (RFC 3550 §6.4.2, no report blocks).
    let report = [0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78];
    a.send_to(&report, leg_a.rtcp).unwrap();
    let (got, _) = receive(&b);
    assert_eq!(
        got, report,
        "RTCP passes, the muted audio before it did not"
    );
    let stats = stats_until(&session, |s| s.leg(Leg::A).received == 11);
    assert_eq!(stats.leg(Leg::A).received, 11, "muted audio still counts");
    assert_eq!(stats.leg(Leg::A).dropped, 0, "muting is not loss");
    // The other way is untouched.
    let packet = rtp(0, 0, &[0x55; 160]);
    b.send_to(&packet, leg_b.rtp).unwrap();
    assert_eq!(receive(&a).0, packet);

    session.set_muted(Leg::A, false);
    let packet = rtp(0, 10, &[0xd5; 160]);
    a.send_to(&packet, leg_a.rtp).unwrap();
    assert_eq!(receive(&b).0, packet, "heard again");
}

#[test]
fn a_replaced_peer_takes_over_a_live_latch_at_once_and_the_old_one_is_dropped() {
    let (relay, _events) = relay(31900);
    let session = relay.open(SessionOptions::default()).unwrap();
    let (a, old, new) = (peer(), peer(), peer());
    let (leg_a, leg_b) = (session.local(Leg::A), session.local(Leg::B));
    let a_addr = a.local_addr().unwrap();
    session.set_remote(Leg::A, a_addr, a_addr);
    // The old peer on leg B latches it by sending.
    let packet = rtp(0, 0, &[0x11; 160]);
    old.send_to(&packet, leg_b.rtp).unwrap();
    assert_eq!(receive(&a).0, packet);

    let new_addr = new.local_addr().unwrap();
    session.replace_remote(Leg::B, new_addr, new_addr);
    // A's audio goes to the new peer before it sends anything…
    let packet = rtp(0, 1, &[0x22; 160]);
    a.send_to(&packet, leg_a.rtp).unwrap();
    assert_eq!(receive(&new).0, packet);
    // …the old peer's late packets are not relayed any more…
    old.send_to(&rtp(0, 2, &[0x11; 160]), leg_b.rtp).unwrap();
    // …and the new peer's are, though the old latch was live.
    let packet = rtp(0, 1, &[0x33; 160]);
    new.send_to(&packet, leg_b.rtp).unwrap();
    assert_eq!(receive(&a).0, packet, "the old peer's packet was dropped");
    let stats = stats_until(&session, |s| s.leg(Leg::B).remote == Some(new_addr));
    assert_eq!(stats.leg(Leg::B).remote, Some(new_addr));
}
