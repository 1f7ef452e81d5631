//! Application-defined packets (RFC 3550 §6.7).

use super::{RtcpError, be32, packet_type, write_header};

/// An APP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct App<'a> {
    /// The subtype (the header's count field).
    pub subtype: u8,
    /// The source.
    pub ssrc: u32,
    /// The four-character name.
    pub name: [u8; 4],
    /// The application data (a multiple of 4 bytes).
    pub data: &'a [u8],
}

impl<'a> App<'a> {
    pub(super) fn parse(subtype: u8, body: &'a [u8]) -> Result<App<'a>, RtcpError> {
        let (Some(ssrc), Some(name)) = (body.get(..4), body.get(4..8)) else {
            return Err(RtcpError::Malformed("APP"));
        };
        Ok(App {
            subtype,
            ssrc: be32(ssrc, 0),
            name: [name[0], name[1], name[2], name[3]],
            data: &body[8..],
        })
    }

    /// Writes this packet into `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpError> {
        let total = write_header(out, self.subtype, packet_type::APP, 8 + self.data.len())?;
        let out = out.get_mut(4..total).ok_or(RtcpError::BufferTooSmall)?;
        out[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        out[4..8].copy_from_slice(&self.name);
        out[8..].copy_from_slice(self.data);
        Ok(total)
    }
}
