//! RTCP (RFC 3550 §6): compound packets read as an iterator of typed
//! packets borrowing the bytes, and each type written into a caller's
//! buffer. One packet type per file.

mod app;
mod bye;
mod report;
mod rr;
mod sdes;
mod sr;

pub use app::App;
pub use bye::Bye;
pub use report::{ReportBlock, ReportBlocks};
pub use rr::ReceiverReport;
pub use sdes::{CNAME, Chunk, Chunks, Items, Sdes, SdesItem};
pub use sr::SenderReport;

/// Why bytes are not RTCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Fewer bytes than a header or its length field says.
    #[error("RTCP packet truncated")]
    Truncated,
    /// Not version 2.
    #[error("RTCP version {0}, not 2")]
    Version(u8),
    /// A count or length that does not fit the packet.
    #[error("RTCP {0} is malformed")]
    Malformed(&'static str),
    /// The output buffer cannot hold the packet.
    #[error("buffer too small")]
    BufferTooSmall,
}

/// Packet types (RFC 3550 §12.1).
pub mod packet_type {
    /// Sender report.
    pub const SR: u8 = 200;
    /// Receiver report.
    pub const RR: u8 = 201;
    /// Source description.
    pub const SDES: u8 = 202;
    /// Goodbye.
    pub const BYE: u8 = 203;
    /// Application-defined.
    pub const APP: u8 = 204;
}

/// One packet of a compound packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RtcpPacket<'a> {
    /// SR.
    SenderReport(SenderReport<'a>),
    /// RR.
    ReceiverReport(ReceiverReport<'a>),
    /// SDES.
    Sdes(Sdes<'a>),
    /// BYE.
    Bye(Bye<'a>),
    /// APP.
    App(App<'a>),
    /// Another type (feedback, XR…), kept as bytes.
    Other {
        /// Its packet type.
        packet_type: u8,
        /// The count field of its header.
        count: u8,
        /// What follows the 4-byte header, padding removed.
        body: &'a [u8],
    },
}

/// The packets of a compound RTCP packet, in order. A malformed packet
/// yields an error and ends the iteration.
#[derive(Debug, Clone)]
pub struct Compound<'a> {
    rest: &'a [u8],
}

/// Reads a compound packet.
pub fn packets(bytes: &[u8]) -> Compound<'_> {
    Compound { rest: bytes }
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let parsed = split(self.rest).and_then(|(packet, rest)| {
            self.rest = rest;
            packet.typed()
        });
        if parsed.is_err() {
            self.rest = &[];
        }
        Some(parsed)
    }
}

/// One packet's header fields and body.
struct Raw<'a> {
    count: u8,
    packet_type: u8,
    body: &'a [u8],
}

/// The first packet of `bytes` and what follows it.
fn split(bytes: &[u8]) -> Result<(Raw<'_>, &[u8]), RtcpError> {
    let &[first, packet_type, high, low, ..] = bytes else {
        return Err(RtcpError::Truncated);
    };
    if first >> 6 != 2 {
        return Err(RtcpError::Version(first >> 6));
    }
    let len = 4 * (usize::from(u16::from_be_bytes([high, low])) + 1);
    let packet = bytes.get(..len).ok_or(RtcpError::Truncated)?;
    let mut body = &packet[4..];
    if first & 0x20 != 0 {
        let padding = usize::from(*packet.last().unwrap_or(&0));
        if padding == 0 || padding > body.len() {
            return Err(RtcpError::Malformed("padding"));
        }
        body = &body[..body.len() - padding];
    }
    let raw = Raw {
        count: first & 0x1f,
        packet_type,
        body,
    };
    Ok((raw, &bytes[len..]))
}

impl<'a> Raw<'a> {
    fn typed(self) -> Result<RtcpPacket<'a>, RtcpError> {
        use packet_type as pt;
        Ok(match self.packet_type {
            pt::SR => RtcpPacket::SenderReport(SenderReport::parse(self.count, self.body)?),
            pt::RR => RtcpPacket::ReceiverReport(ReceiverReport::parse(self.count, self.body)?),
            pt::SDES => RtcpPacket::Sdes(Sdes::parse(self.count, self.body)?),
            pt::BYE => RtcpPacket::Bye(Bye::parse(self.count, self.body)?),
            pt::APP => RtcpPacket::App(App::parse(self.count, self.body)?),
            packet_type => RtcpPacket::Other {
                packet_type,
                count: self.count,
                body: self.body,
            },
        })
    }
}

/// Writes a packet header for a body of `body_len` bytes (a multiple of
/// four) into `out`, returning the whole packet's length.
fn write_header(
    out: &mut [u8],
    count: u8,
    packet_type: u8,
    body_len: usize,
) -> Result<usize, RtcpError> {
    let total = 4 + body_len;
    if !body_len.is_multiple_of(4) || count > 31 || total / 4 - 1 > usize::from(u16::MAX) {
        return Err(RtcpError::Malformed("length"));
    }
    let header = out.get_mut(..4).ok_or(RtcpError::BufferTooSmall)?;
    header[0] = 0x80 | count;
    header[1] = packet_type;
    header[2..4].copy_from_slice(&((total / 4 - 1) as u16).to_be_bytes());
    Ok(total)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
