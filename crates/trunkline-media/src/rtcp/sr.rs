//! Sender reports (RFC 3550 §6.4.1).

use super::report::{BLOCK, ReportBlock, ReportBlocks, write_blocks};
use super::{RtcpError, be32, packet_type, write_header};

/// An SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport<'a> {
    /// The sender.
    pub ssrc: u32,
    /// Wall clock, NTP format.
    pub ntp_timestamp: u64,
    /// The same instant on the RTP clock.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload bytes sent.
    pub octet_count: u32,
    /// What the sender received.
    pub reports: ReportBlocks<'a>,
}

impl<'a> SenderReport<'a> {
    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<SenderReport<'a>, RtcpError> {
        if body.len() < 24 {
            return Err(RtcpError::Malformed("sender report"));
        }
        Ok(SenderReport {
            ssrc: be32(body, 0),
            ntp_timestamp: u64::from(be32(body, 4)) << 32 | u64::from(be32(body, 8)),
            rtp_timestamp: be32(body, 12),
            packet_count: be32(body, 16),
            octet_count: be32(body, 20),
            reports: ReportBlocks::take(count, &body[24..])?,
        })
    }

    /// Writes an SR with `blocks` into `out`; returns its length.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        ssrc: u32,
        ntp_timestamp: u64,
        rtp_timestamp: u32,
        packet_count: u32,
        octet_count: u32,
        blocks: &[ReportBlock],
        out: &mut [u8],
    ) -> Result<usize, RtcpError> {
        let count = u8::try_from(blocks.len()).map_err(|_| RtcpError::Malformed("report count"))?;
        let body = 24 + BLOCK * blocks.len();
        let total = write_header(out, count, packet_type::SR, body)?;
        let out = out.get_mut(4..total).ok_or(RtcpError::BufferTooSmall)?;
        out[0..4].copy_from_slice(&ssrc.to_be_bytes());
        out[4..12].copy_from_slice(&ntp_timestamp.to_be_bytes());
        out[12..16].copy_from_slice(&rtp_timestamp.to_be_bytes());
        out[16..20].copy_from_slice(&packet_count.to_be_bytes());
        out[20..24].copy_from_slice(&octet_count.to_be_bytes());
        write_blocks(blocks, &mut out[24..]);
        Ok(total)
    }
}
