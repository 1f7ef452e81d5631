//! Report blocks (RFC 3550 §6.4.1), shared by SR and RR.

use super::{RtcpError, be32};

/// Bytes of one report block.
pub(super) const BLOCK: usize = 24;

/// Reception of one source, as a receiver reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, 24-bit signed.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_sequence: u32,
    /// Interarrival jitter, timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the last SR's NTP timestamp.
    pub last_sr: u32,
    /// Delay since that SR, 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8]) -> ReportBlock {
        // 24 bits, sign-extended.
        let lost = i32::from_be_bytes([b[5], b[6], b[7], 0]) >> 8;
        ReportBlock {
            ssrc: be32(b, 0),
            fraction_lost: b[4],
            cumulative_lost: lost,
            highest_sequence: be32(b, 8),
            jitter: be32(b, 12),
            last_sr: be32(b, 16),
            delay_since_last_sr: be32(b, 20),
        }
    }

    fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        out[4] = self.fraction_lost;
        let lost = self.cumulative_lost.clamp(-(1 << 23), (1 << 23) - 1);
        out[5..8].copy_from_slice(&lost.to_be_bytes()[1..]);
        out[8..12].copy_from_slice(&self.highest_sequence.to_be_bytes());
        out[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        out[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        out[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

/// The report blocks of an SR or RR, read on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlocks<'a> {
    bytes: &'a [u8],
}

impl<'a> ReportBlocks<'a> {
    /// `count` blocks at the start of `bytes`; what follows them (profile
    /// extensions) is left alone.
    pub(super) fn take(count: u8, bytes: &'a [u8]) -> Result<ReportBlocks<'a>, RtcpError> {
        let len = usize::from(count) * BLOCK;
        let bytes = bytes
            .get(..len)
            .ok_or(RtcpError::Malformed("report count"))?;
        Ok(ReportBlocks { bytes })
    }

    /// How many blocks.
    pub fn len(&self) -> usize {
        self.bytes.len() / BLOCK
    }

    /// No block.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The blocks.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = ReportBlock> + 'a {
        self.bytes.chunks_exact(BLOCK).map(ReportBlock::parse)
    }
}

/// Writes `blocks` into `out`, which must hold them.
pub(super) fn write_blocks(blocks: &[ReportBlock], out: &mut [u8]) {
    for (block, out) in blocks.iter().zip(out.chunks_exact_mut(BLOCK)) {
        block.write(out);
    }
}
