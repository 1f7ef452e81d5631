//! Goodbye packets (RFC 3550 §6.6).

use super::{RtcpError, be32, packet_type, write_header};

/// A BYE: the sources leaving, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bye<'a> {
    ssrcs: &'a [u8],
    /// The reason, if given.
    pub reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Bye<'a>, RtcpError> {
        let len = 4 * usize::from(count);
        let ssrcs = body.get(..len).ok_or(RtcpError::Malformed("BYE count"))?;
        let reason = match body.get(len) {
            Some(&n) => Some(
                body.get(len + 1..len + 1 + usize::from(n))
                    .ok_or(RtcpError::Malformed("BYE reason"))?,
            ),
            None => None,
        };
        Ok(Bye { ssrcs, reason })
    }

    /// The sources.
    pub fn ssrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.ssrcs.chunks_exact(4).map(|c| be32(c, 0))
    }

    /// Writes a BYE for `ssrcs` with an optional reason; returns its length.
    pub fn write(ssrcs: &[u32], reason: Option<&[u8]>, out: &mut [u8]) -> Result<usize, RtcpError> {
        let count = u8::try_from(ssrcs.len()).map_err(|_| RtcpError::Malformed("BYE count"))?;
        let reason_len = match reason {
            Some(r) => {
                1 + usize::from(
                    u8::try_from(r.len()).map_err(|_| RtcpError::Malformed("BYE reason"))?,
                )
            }
            None => 0,
        };
        let body = (4 * ssrcs.len() + reason_len).div_ceil(4) * 4;
        let total = write_header(out, count, packet_type::BYE, body)?;
        let out = out.get_mut(4..total).ok_or(RtcpError::BufferTooSmall)?;
        out.fill(0);
        for (ssrc, slot) in ssrcs.iter().zip(out.chunks_exact_mut(4)) {
            slot.copy_from_slice(&ssrc.to_be_bytes());
        }
        if let Some(reason) = reason {
            let at = 4 * ssrcs.len();
            out[at] = reason.len() as u8;
            out[at + 1..at + 1 + reason.len()].copy_from_slice(reason);
        }
        Ok(total)
    }
}
