//! Receiver reports (RFC 3550 §6.4.2).

use super::report::{BLOCK, ReportBlock, ReportBlocks, write_blocks};
use super::{RtcpError, be32, packet_type, write_header};

/// An RR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport<'a> {
    /// The receiver.
    pub ssrc: u32,
    /// What it received.
    pub reports: ReportBlocks<'a>,
}

impl<'a> ReceiverReport<'a> {
    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<ReceiverReport<'a>, RtcpError> {
        if body.len() < 4 {
            return Err(RtcpError::Malformed("receiver report"));
        }
        Ok(ReceiverReport {
            ssrc: be32(body, 0),
            reports: ReportBlocks::take(count, &body[4..])?,
        })
    }

    /// Writes an RR with `blocks` into `out`; returns its length.
    pub fn write(ssrc: u32, blocks: &[ReportBlock], out: &mut [u8]) -> Result<usize, RtcpError> {
        let count = u8::try_from(blocks.len()).map_err(|_| RtcpError::Malformed("report count"))?;
        let total = write_header(out, count, packet_type::RR, 4 + BLOCK * blocks.len())?;
        let out = out.get_mut(4..total).ok_or(RtcpError::BufferTooSmall)?;
        out[0..4].copy_from_slice(&ssrc.to_be_bytes());
        write_blocks(blocks, &mut out[4..]);
        Ok(total)
    }
}
