//! SIPp (Debian `sip-tester`) through the relay: one SIPp calls another
//! and plays the G.711 A-law recording Debian ships (`g711a.pcap`, 236
//! packets) and then RFC 4733 digit 1; the callee's SDP points the media
//! at the relay's leg A, leg B forwards to the callee's `-rtp_echo` port,
//! and the echo comes back through the relay. The relay's own counters
//! must show every packet both ways, none lost or dropped, and the digit.

#![cfg(feature = "relay")]
#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use trunkline_media::relay::{Leg, Relay, RelayConfig, RelayEvent, SessionOptions};
use trunkline_testkit::{Reaped, free_port, sipp, sipp_scenario, wait_listener};

/// RTP packets in `/usr/share/sip-tester/g711a.pcap`.
const RECORDING_PACKETS: u64 = 236;

#[test]
fn sipp_plays_g711a_through_the_relay_to_an_echo_without_loss() {
    let (relay, mut events) = Relay::start(RelayConfig {
        ports: (32000, 32099),
        ..RelayConfig::default()
    })
    .unwrap();
    let session = relay.open(SessionOptions::default()).unwrap();
    session.set_telephone_event(Leg::A, Some(101));
    let echo: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    session.set_remote(Leg::B, echo, SocketAddr::new(echo.ip(), echo.port() + 1));

    let uas_port = free_port();
    let mut uas = sipp();
    uas.args([
        "-sf",
        &sipp_scenario(env!("CARGO_MANIFEST_DIR"), "uas_echo.xml"),
    ])
    .args(["-p", &uas_port.to_string(), "-m", "1"])
    .args(["-rtp_echo", "-mp", &echo.port().to_string()])
    .args([
        "-key",
        "relay_port",
        &session.local(Leg::A).rtp.port().to_string(),
    ]);
    let mut uas = Reaped::spawn(&mut uas);
    wait_listener(&mut uas, uas_port).unwrap_or_else(|e| panic!("SIPp: {e}"));
    let mut uac = sipp();
    uac.args([
        "-sf",
        &sipp_scenario(env!("CARGO_MANIFEST_DIR"), "uac_pcap.xml"),
    ])
    .args(["-p", &free_port().to_string(), "-m", "1"])
    .arg(format!("127.0.0.1:{uas_port}"));
    let mut uac = Reaped::spawn(&mut uac);
    assert_eq!(uac.exit_code(Duration::from_secs(60)), Some(0), "the call");
    assert_eq!(uas.exit_code(Duration::from_secs(10)), Some(0));

    // Statistics are published every tick: wait for the last of them.
    let deadline = Instant::now() + Duration::from_secs(5);
    let stats = loop {
        let stats = session.stats();
        let done = stats.leg(Leg::B).received >= RECORDING_PACKETS;
        if done || Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (a, b) = (stats.leg(Leg::A), stats.leg(Leg::B));
    // The digit's packets come after the recording's, on the same stream.
    assert!(a.received > RECORDING_PACKETS, "caller → relay: {a:?}");
    assert_eq!(b.sent, a.received, "relay → echo: all of it");
    assert_eq!(b.received, b.sent, "echo → relay: all of it");
    assert_eq!(a.sent, b.received, "relay → caller: all of it");
    assert_eq!((a.lost, b.lost, a.dropped, b.dropped), (0, 0, 0, 0));
    assert!(a.latched && b.latched);

    let mut digits = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let RelayEvent::Dtmf { digit, .. } = event {
            digits.push(digit);
        }
    }
    assert_eq!(digits, [Some('1')]);
}
