//! SDP (RFC 8866) as a B2BUA needs it: parsed into session lines and media
//! sections, every line kept in order (unknown ones too), serialized back
//! byte for byte; and the edits of offer/answer (RFC 3264) and media
//! anchoring: connection address, ports, direction (hold), codecs,
//! `a=crypto` (RFC 4568).

use std::fmt;
use std::net::IpAddr;

/// Why text is not SDP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// A line is not `<letter>=<value>`.
    #[error("line {line}: not `<letter>=<value>`")]
    Syntax {
        /// 1-based line number.
        line: usize,
    },
    /// The description does not start with `v=0`.
    #[error("an SDP description starts with v=0")]
    Version,
    /// An `m=` line that does not read `m=<media> <port>[/<n>] <proto> <fmt>…`.
    #[error("line {line}: bad m= line")]
    Media {
        /// 1-based line number.
        line: usize,
    },
}

/// One `<type>=<value>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The type letter.
    pub kind: u8,
    /// Everything after `=`.
    pub value: String,
}

impl Line {
    fn new(kind: u8, value: impl Into<String>) -> Line {
        Line {
            kind,
            value: value.into(),
        }
    }

    /// For an `a=` line, the attribute's name and its value if it has one
    /// (`a=rtcp:49999` is `("rtcp", Some("49999"))`, `a=sendrecv` is
    /// `("sendrecv", None)`).
    pub fn attribute(&self) -> Option<(&str, Option<&str>)> {
        if self.kind != b'a' {
            return None;
        }
        Some(match self.value.split_once(':') {
            Some((name, value)) => (name, Some(value)),
            None => (self.value.as_str(), None),
        })
    }
}

/// A media description: its `m=` line and the lines under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, …
    pub media: String,
    /// The transport port; 0 rejects or disables the stream.
    pub port: u16,
    /// The `/<n>` port count, if written.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, …
    pub proto: String,
    /// The formats (payload types for RTP), in order of preference.
    pub formats: Vec<String>,
    /// The other lines of the section, in order.
    pub lines: Vec<Line>,
}

/// Media direction (RFC 3264 §5.1, §8.4 for hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both ways (the default).
    SendRecv,
    /// Only sending (what a phone puts a call on hold with).
    SendOnly,
    /// Only receiving.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn parse(s: &str) -> Option<Direction> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }

    /// The direction the other side answers with (RFC 3264 §6.1).
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }
}

/// An RTP codec of a media section: payload type and `a=rtpmap` (or the
/// static assignment of RFC 3551 for payload types without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// The payload type.
    pub payload_type: u8,
    /// The encoding name as written (`PCMU`, `opus`, `telephone-event`).
    pub name: String,
    /// The clock rate.
    pub clock_rate: u32,
    /// The channel count, if written.
    pub channels: Option<u8>,
}

impl Codec {
    /// Same encoding, clock rate and channels (names compare without
    /// case, RFC 4855 §3).
    pub fn same_as(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.clock_rate == other.clock_rate
            && self.channels.unwrap_or(1) == other.channels.unwrap_or(1)
    }
}

/// The static audio payload types of RFC 3551 a description may use
/// without an `a=rtpmap`.
fn static_codec(payload_type: u8) -> Option<Codec> {
    let (name, clock_rate) = match payload_type {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        13 => ("CN", 8000),
        18 => ("G729", 8000),
        _ => return None,
    };
    Some(Codec {
        payload_type,
        name: name.into(),
        clock_rate,
        channels: None,
    })
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    /// The session-level lines, `v=` first, in order.
    pub session: Vec<Line>,
    /// The media sections, in order.
    pub media: Vec<Media>,
}

impl Sdp {
    /// Parses a description; lines may end in CRLF or LF.
    pub fn parse(text: &str) -> Result<Sdp, SdpError> {
        let mut sdp = Sdp {
            session: Vec::new(),
            media: Vec::new(),
        };
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            if raw.is_empty() {
                continue;
            }
            let bytes = raw.as_bytes();
            if bytes.len() < 2 || bytes[1] != b'=' || !bytes[0].is_ascii_lowercase() {
                return Err(SdpError::Syntax { line });
            }
            let (kind, value) = (bytes[0], &raw[2..]);
            if sdp.session.is_empty() && sdp.media.is_empty() && (kind, value) != (b'v', "0") {
                return Err(SdpError::Version);
            }
            if kind == b'm' {
                sdp.media
                    .push(media_line(value).ok_or(SdpError::Media { line })?);
            } else if let Some(media) = sdp.media.last_mut() {
                media.lines.push(Line::new(kind, value));
            } else {
                sdp.session.push(Line::new(kind, value));
            }
        }
        if sdp.session.is_empty() {
            return Err(SdpError::Version);
        }
        Ok(sdp)
    }

    /// The connection address of media section `index` (its own `c=`, or
    /// the session's).
    pub fn connection(&self, index: usize) -> Option<IpAddr> {
        let own = self.media.get(index)?.lines.iter().find(|l| l.kind == b'c');
        let line = own.or_else(|| self.session.iter().find(|l| l.kind == b'c'))?;
        line.value
            .split_whitespace()
            .nth(2)?
            .split('/')
            .next()?
            .parse()
            .ok()
    }

    /// Points every `c=` line, and the origin's address, at `address`:
    /// media anchoring through a relay.
    pub fn set_connection(&mut self, address: IpAddr) {
        let family = if address.is_ipv4() { "IP4" } else { "IP6" };
        let lines = self
            .session
            .iter_mut()
            .chain(self.media.iter_mut().flat_map(|m| m.lines.iter_mut()));
        for line in lines {
            match line.kind {
                b'c' => line.value = format!("IN {family} {address}"),
                b'o' => {
                    // o=<user> <id> <version> IN <family> <address>
                    let mut fields: Vec<&str> = line.value.split_whitespace().collect();
                    if fields.len() == 6 {
                        let address = address.to_string();
                        fields[4] = family;
                        fields[5] = &address;
                        line.value = fields.join(" ");
                    }
                }
                _ => {}
            }
        }
    }

    /// The direction of media section `index`: its own attribute, else
    /// the session's, else sendrecv.
    pub fn direction(&self, index: usize) -> Direction {
        let find = |lines: &[Line]| {
            lines
                .iter()
                .filter_map(Line::attribute)
                .find_map(|(name, _)| Direction::parse(name))
        };
        self.media
            .get(index)
            .and_then(|m| find(&m.lines))
            .or_else(|| find(&self.session))
            .unwrap_or(Direction::SendRecv)
    }

    /// Sets the direction of media section `index`.
    pub fn set_direction(&mut self, index: usize, direction: Direction) {
        if let Some(media) = self.media.get_mut(index) {
            media.lines.retain(|l| {
                l.attribute()
                    .is_none_or(|(n, _)| Direction::parse(n).is_none())
            });
            media.lines.push(Line::new(b'a', direction.as_str()));
        }
    }

    /// The RTP codecs of media section `index`, in preference order.
    pub fn codecs(&self, index: usize) -> Vec<Codec> {
        let Some(media) = self.media.get(index) else {
            return Vec::new();
        };
        media
            .formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter_map(|pt| rtpmap(media, pt).or_else(|| static_codec(pt)))
            .collect()
    }

    /// Keeps in media section `index` only the codecs `keep` accepts, with
    /// their `a=rtpmap`, `a=fmtp` and `a=rtcp-fb` lines; non-RTP formats
    /// are kept.
    pub fn retain_codecs(&mut self, index: usize, mut keep: impl FnMut(&Codec) -> bool) {
        let codecs = self.codecs(index);
        let Some(media) = self.media.get_mut(index) else {
            return;
        };
        let dropped: Vec<u8> = codecs
            .iter()
            .filter(|c| !keep(c))
            .map(|c| c.payload_type)
            .collect();
        let is_dropped = |s: &str| s.parse::<u8>().is_ok_and(|pt| dropped.contains(&pt));
        media.formats.retain(|f| !is_dropped(f));
        media.lines.retain(|l| match l.attribute() {
            Some(("rtpmap" | "fmtp" | "rtcp-fb", Some(value))) => {
                !is_dropped(value.split_whitespace().next().unwrap_or_default())
            }
            _ => true,
        });
    }

    /// The `a=crypto` values (RFC 4568) of media section `index`.
    pub fn cryptos(&self, index: usize) -> Vec<&str> {
        self.media.get(index).map_or_else(Vec::new, |m| {
            m.lines
                .iter()
                .filter_map(Line::attribute)
                .filter_map(|(name, value)| (name == "crypto").then_some(value).flatten())
                .collect()
        })
    }

    /// Removes the `a=crypto` lines of media section `index`.
    pub fn strip_crypto(&mut self, index: usize) {
        if let Some(media) = self.media.get_mut(index) {
            media
                .lines
                .retain(|l| l.attribute().is_none_or(|(n, _)| n != "crypto"));
        }
    }

    /// Adds `a=crypto:<value>` to media section `index`.
    pub fn add_crypto(&mut self, index: usize, value: &str) {
        if let Some(media) = self.media.get_mut(index) {
            media.lines.push(Line::new(b'a', format!("crypto:{value}")));
        }
    }
}

/// `<media> <port>[/<count>] <proto> <fmt> …`
fn media_line(value: &str) -> Option<Media> {
    let mut fields = value.split_whitespace();
    let media = fields.next()?.to_owned();
    let port_field = fields.next()?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((port, count)) => (port.parse().ok()?, Some(count.parse().ok()?)),
        None => (port_field.parse().ok()?, None),
    };
    let proto = fields.next()?.to_owned();
    Some(Media {
        media,
        port,
        port_count,
        proto,
        formats: fields.map(str::to_owned).collect(),
        lines: Vec::new(),
    })
}

/// `a=rtpmap:<pt> <name>/<rate>[/<channels>]` for `payload_type`.
fn rtpmap(media: &Media, payload_type: u8) -> Option<Codec> {
    media
        .lines
        .iter()
        .filter_map(Line::attribute)
        .find_map(|(name, value)| {
            let (pt, encoding) = value?.split_once(' ')?;
            if name != "rtpmap" || pt.parse::<u8>().ok()? != payload_type {
                return None;
            }
            let mut parts = encoding.trim().split('/');
            let name = parts.next()?.to_owned();
            let clock_rate = parts.next()?.parse().ok()?;
            let channels = parts.next().and_then(|c| c.parse().ok());
            Some(Codec {
                payload_type,
                name,
                clock_rate,
                channels,
            })
        })
}

impl fmt::Display for Sdp {
    /// The description with CRLF line ends.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.session {
            write!(f, "{}={}\r\n", char::from(line.kind), line.value)?;
        }
        for m in &self.media {
            write!(f, "m={} {}", m.media, m.port)?;
            if let Some(count) = m.port_count {
                write!(f, "/{count}")?;
            }
            write!(f, " {}", m.proto)?;
            for format in &m.formats {
                write!(f, " {format}")?;
            }
            f.write_str("\r\n")?;
            for line in &m.lines {
                write!(f, "{}={}\r\n", char::from(line.kind), line.value)?;
            }
        }
        Ok(())
    }
}
