//! A standalone RTP relay on loopback: opens sessions, prints where each
//! leg listens, relays until the sessions fall silent or the input ends,
//! and prints the figures.
//!
//! ```text
//! cargo run -p trunkline-media --example rtp_relay -- [--sessions N] [--ports FIRST-LAST]
//!     [--remote-b HOST:PORT] [--idle SECONDS]
//! ```
//!
//! One line per session: `session ID a RTP_PORT b RTP_PORT`. With
//! `--remote-b`, leg B sends to that address until its peer's packets
//! latch it (leg A always latches: send to its port first). The relay stops
//! when every session has been inactive for `--idle` seconds (10 by
//! default), printing `stats ID a: ... b: ...` per session.

use std::net::SocketAddr;
use std::time::Duration;
use trunkline_media::relay::{Leg, Relay, RelayConfig, RelayEvent, SessionOptions};

struct Options {
    sessions: usize,
    ports: (u16, u16),
    remote_b: Option<SocketAddr>,
    idle: Duration,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        sessions: 1,
        ports: (40000, 40999),
        remote_b: None,
        idle: Duration::from_secs(10),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--sessions" => options.sessions = value()?.parse().map_err(|e| format!("{e}"))?,
            "--ports" => {
                let value = value()?;
                let (first, last) = value.split_once('-').ok_or("--ports FIRST-LAST")?;
                options.ports = (
                    first.parse().map_err(|e| format!("{e}"))?,
                    last.parse().map_err(|e| format!("{e}"))?,
                );
            }
            "--remote-b" => options.remote_b = Some(value()?.parse().map_err(|e| format!("{e}"))?),
            "--idle" => {
                options.idle = Duration::from_secs(value()?.parse().map_err(|e| format!("{e}"))?);
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

fn main() {
    let options = options().unwrap_or_else(|e| {
        eprintln!("rtp_relay: {e}");
        std::process::exit(2);
    });
    let config = RelayConfig {
        ports: options.ports,
        inactivity_timeout: options.idle,
        ..RelayConfig::default()
    };
    let (relay, mut events) = Relay::start(config).unwrap_or_else(|e| {
        eprintln!("rtp_relay: {e}");
        std::process::exit(1);
    });
    let mut sessions = Vec::new();
    for _ in 0..options.sessions {
        let session = relay.open(SessionOptions::default()).unwrap_or_else(|e| {
            eprintln!("rtp_relay: {e}");
            std::process::exit(1);
        });
        if let Some(remote) = options.remote_b {
            let rtcp = SocketAddr::new(remote.ip(), remote.port() + 1);
            session.set_remote(Leg::B, remote, rtcp);
        }
        println!(
            "session {} a {} b {}",
            session.id().0,
            session.local(Leg::A).rtp.port(),
            session.local(Leg::B).rtp.port()
        );
        sessions.push(session);
    }
    let mut inactive = 0;
    while inactive < sessions.len() {
        match events.blocking_recv() {
            Some(RelayEvent::Inactive { .. }) => inactive += 1,
            Some(event) => println!("event {event:?}"),
            None => break,
        }
    }
    for session in &sessions {
        let stats = session.stats();
        let leg = |leg| {
            let s = stats.leg(leg);
            format!(
                "received {} sent {} lost {} dropped {} jitter_ms {:.2}",
                s.received, s.sent, s.lost, s.dropped, s.jitter_ms
            )
        };
        println!(
            "stats {} a: {} b: {}",
            session.id().0,
            leg(Leg::A),
            leg(Leg::B)
        );
    }
}
