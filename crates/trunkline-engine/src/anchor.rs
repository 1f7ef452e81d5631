//! Media anchoring: rewriting a session description so that its media goes
//! through one leg of the relay, and reading where a peer wants media.

use std::net::{IpAddr, SocketAddr};
use trunkline_media::relay::LegAddrs;
use trunkline_media::sdp::{Direction, Sdp};

/// Where a description asks for its first audio stream: RTP and RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MediaTarget {
    pub(crate) rtp: SocketAddr,
    pub(crate) rtcp: SocketAddr,
}

/// The first audio section's index.
fn audio(sdp: &Sdp) -> Option<usize> {
    sdp.media.iter().position(|m| m.media == "audio")
}

/// Where the peer that wrote `sdp` receives its audio, if it offers any
/// (a port of 0 is a stream turned down).
pub(crate) fn target(sdp: &Sdp) -> Option<MediaTarget> {
    let index = audio(sdp)?;
    let media = &sdp.media[index];
    if media.port == 0 {
        return None;
    }
    let ip = sdp.connection(index)?;
    let rtcp_port = media
        .lines
        .iter()
        .filter_map(|l| l.attribute())
        .find(|(name, _)| *name == "rtcp")
        .and_then(|(_, value)| value?.split_whitespace().next()?.parse().ok())
        .unwrap_or(media.port.wrapping_add(1));
    Some(MediaTarget {
        rtp: SocketAddr::new(ip, media.port),
        rtcp: SocketAddr::new(ip, rtcp_port),
    })
}

/// Rewrites `sdp` so its peer sends audio to `leg`: the connection
/// address and the audio port become the relay's. RTCP goes to the next
/// port, so `a=rtcp` and `a=rtcp-mux` (which would move it) are dropped;
/// other media sections (video) are turned down with port 0, since only
/// audio is relayed. Everything else — codecs, `a=crypto` (SRTP keys pass
/// end to end through a relay that does not touch the payload), direction
/// — stays as the peer wrote it.
pub(crate) fn anchor(sdp: &mut Sdp, leg: LegAddrs) {
    let Some(index) = audio(sdp) else {
        return;
    };
    sdp.set_connection(leg.rtp.ip());
    for (n, media) in sdp.media.iter_mut().enumerate() {
        if n == index {
            media.port = leg.rtp.port();
            media
                .lines
                .retain(|line| !matches!(line.attribute(), Some(("rtcp" | "rtcp-mux", _))));
        } else {
            media.port = 0;
        }
    }
}

/// The direction of the first audio stream: `sendonly` or `inactive` from
/// a phone is hold (RFC 3264 §8.4).
pub(crate) fn holds(sdp: &Sdp) -> bool {
    audio(sdp).is_some_and(|index| {
        matches!(
            sdp.direction(index),
            Direction::SendOnly | Direction::Inactive
        )
    })
}

/// The direction of the first audio stream (`sendrecv` without one).
pub(crate) fn direction(sdp: &Sdp) -> Direction {
    audio(sdp).map_or(Direction::SendRecv, |index| sdp.direction(index))
}

/// Sets the direction of the first audio stream.
pub(crate) fn set_direction(sdp: &mut Sdp, direction: Direction) {
    if let Some(index) = audio(sdp) {
        sdp.set_direction(index, direction);
    }
}

/// Our own offer for a call the PBX starts (click-to-dial): audio at the
/// relay's `leg` in G.711 µ-law or A-law, with RFC 4733 digits.
pub(crate) fn own_offer(leg: LegAddrs, session_id: u64) -> Option<Sdp> {
    let ip = leg.rtp.ip();
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let port = leg.rtp.port();
    Sdp::parse(&format!(
        "v=0\r\no=trunkline {session_id} 1 IN {family} {ip}\r\ns=trunkline\r\n\
         c=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
    ))
    .ok()
}

/// `sdp` as the next version of `previous` (RFC 3264 §8: a changed
/// description in the same session keeps the origin and raises its
/// version by one).
pub(crate) fn next_version(previous: &Sdp, sdp: &mut Sdp) {
    let origin = |sdp: &Sdp| sdp.session.iter().position(|l| l.kind == b'o');
    let (Some(old), Some(new)) = (origin(previous), origin(sdp)) else {
        return;
    };
    let mut fields: Vec<String> = previous.session[old]
        .value
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if fields.len() != 6 {
        return;
    }
    let Ok(version) = fields[2].parse::<u64>() else {
        return;
    };
    fields[2] = version.wrapping_add(1).to_string();
    sdp.session[new].value = fields.join(" ");
}

/// Whether a peer that signals from `source` writes an address it cannot
/// be reached at in its description: behind NAT, or at least not where it
/// says it is.
pub(crate) fn behind_nat(described: Option<IpAddr>, source: IpAddr) -> bool {
    described.is_some_and(|ip| ip != source)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
        m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp:49999\r\n\
        a=rtcp-mux\r\na=sendrecv\r\nm=video 51372 RTP/AVP 96\r\n";

    #[test]
    fn the_target_is_the_audio_address_and_its_rtcp() {
        let sdp = Sdp::parse(OFFER).unwrap_or_else(|e| panic!("{e}"));
        let target = target(&sdp).unwrap_or_else(|| panic!("audio"));
        assert_eq!(
            target.rtp,
            "192.0.2.10:49170".parse().unwrap_or_else(|e| panic!("{e}"))
        );
        assert_eq!(target.rtcp.port(), 49999);
    }

    #[test]
    fn anchoring_points_audio_at_the_relay_and_turns_video_down() {
        let mut sdp = Sdp::parse(OFFER).unwrap_or_else(|e| panic!("{e}"));
        let leg = LegAddrs {
            rtp: "127.0.0.1:20000".parse().unwrap_or_else(|e| panic!("{e}")),
            rtcp: "127.0.0.1:20001".parse().unwrap_or_else(|e| panic!("{e}")),
        };
        anchor(&mut sdp, leg);
        let text = sdp.to_string();
        assert!(text.contains("c=IN IP4 127.0.0.1"), "{text}");
        assert!(text.contains("o=alice 1 1 IN IP4 127.0.0.1"), "{text}");
        assert!(text.contains("m=audio 20000 RTP/AVP 0 8 101"), "{text}");
        assert!(text.contains("m=video 0 RTP/AVP 96"), "{text}");
        assert!(!text.contains("a=rtcp"), "{text}");
        assert!(text.contains("a=rtpmap:101 telephone-event/8000"), "{text}");
        assert_eq!(target(&sdp).map(|t| t.rtcp.port()), Some(20001));
    }

    #[test]
    fn a_new_version_keeps_the_origin_and_counts_up() {
        let previous = Sdp::parse(OFFER).unwrap_or_else(|e| panic!("{e}"));
        let other = OFFER.replace(
            "o=alice 1 1 IN IP4 192.0.2.10",
            "o=bob 77 9 IN IP4 192.0.2.99",
        );
        let mut sdp = Sdp::parse(&other).unwrap_or_else(|e| panic!("{e}"));
        next_version(&previous, &mut sdp);
        let text = sdp.to_string();
        assert!(text.contains("o=alice 1 2 IN IP4 192.0.2.10\r\n"), "{text}");
        assert!(text.contains("c=IN IP4 192.0.2.10"), "{text}");
        set_direction(&mut sdp, Direction::SendOnly);
        assert_eq!(direction(&sdp), Direction::SendOnly);
        assert!(holds(&sdp));
    }

    #[test]
    fn our_offer_points_at_the_relay_in_g711() {
        let leg = LegAddrs {
            rtp: "127.0.0.1:20000".parse().unwrap_or_else(|e| panic!("{e}")),
            rtcp: "127.0.0.1:20001".parse().unwrap_or_else(|e| panic!("{e}")),
        };
        let sdp = own_offer(leg, 42).unwrap_or_else(|| panic!("offer"));
        assert_eq!(
            target(&sdp),
            Some(MediaTarget {
                rtp: leg.rtp,
                rtcp: leg.rtcp
            })
        );
        let names: Vec<String> = sdp.codecs(0).into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["PCMU", "PCMA", "telephone-event"]);
    }

    #[test]
    fn sendonly_and_inactive_are_hold() {
        for (direction, held) in [("sendonly", true), ("inactive", true), ("sendrecv", false)] {
            let text = OFFER.replace("a=sendrecv", &format!("a={direction}"));
            let sdp = Sdp::parse(&text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(holds(&sdp), held, "{direction}");
        }
    }
}
