//! Source descriptions (RFC 3550 §6.5): chunks of items per source.

use super::{RtcpError, be32, packet_type, write_header};

/// An SDES packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdes<'a> {
    count: u8,
    body: &'a [u8],
}

/// One item: its type (1 CNAME, 2 NAME, … 8 PRIV) and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesItem<'a> {
    /// The item type.
    pub kind: u8,
    /// The value as sent (UTF-8 by the RFC, not checked).
    pub value: &'a [u8],
}

/// The CNAME item type.
pub const CNAME: u8 = 1;

impl<'a> Sdes<'a> {
    pub(super) fn parse(count: u8, body: &'a [u8]) -> Result<Sdes<'a>, RtcpError> {
        let sdes = Sdes { count, body };
        // Walk it once so that a malformed packet is refused here and the
        // iterators below can trust it.
        let mut chunks = sdes.chunks();
        for _ in 0..count {
            let chunk = chunks
                .next()
                .ok_or(RtcpError::Malformed("SDES chunk count"))??;
            for item in chunk.items() {
                item?;
            }
        }
        Ok(sdes)
    }

    /// The chunks.
    pub fn chunks(&self) -> Chunks<'a> {
        Chunks {
            left: self.count,
            rest: self.body,
        }
    }

    /// Writes an SDES with one chunk holding a CNAME; returns its length.
    pub fn write_cname(ssrc: u32, cname: &[u8], out: &mut [u8]) -> Result<usize, RtcpError> {
        let len = u8::try_from(cname.len()).map_err(|_| RtcpError::Malformed("CNAME length"))?;
        // SSRC, type, length, text, then a zero end byte, padded to 4.
        let body = (4 + 2 + cname.len() + 1).div_ceil(4) * 4;
        let total = write_header(out, 1, packet_type::SDES, body)?;
        let out = out.get_mut(4..total).ok_or(RtcpError::BufferTooSmall)?;
        out.fill(0);
        out[0..4].copy_from_slice(&ssrc.to_be_bytes());
        out[4] = CNAME;
        out[5] = len;
        out[6..6 + cname.len()].copy_from_slice(cname);
        Ok(total)
    }
}

/// One chunk: a source and its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// The source.
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> Chunk<'a> {
    /// The items.
    pub fn items(&self) -> Items<'a> {
        Items { rest: self.items }
    }

    /// The CNAME, if the chunk has one.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items()
            .filter_map(Result::ok)
            .find(|i| i.kind == CNAME)
            .map(|i| i.value)
    }
}

/// Iterator over the chunks of an SDES packet.
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    left: u8,
    rest: &'a [u8],
}

impl<'a> Iterator for Chunks<'a> {
    type Item = Result<Chunk<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if self.rest.len() < 4 {
            self.left = 0;
            return Some(Err(RtcpError::Malformed("SDES chunk")));
        }
        let ssrc = be32(self.rest, 0);
        // Items run to a zero type byte; the chunk then pads to 4 bytes.
        let mut at = 4;
        while at < self.rest.len() && self.rest[at] != 0 {
            at += 2 + usize::from(*self.rest.get(at + 1).unwrap_or(&0));
        }
        if at >= self.rest.len() {
            self.left = 0;
            return Some(Err(RtcpError::Malformed("SDES items")));
        }
        let items = &self.rest[4..at];
        let end = (at + 1).div_ceil(4) * 4;
        self.rest = self.rest.get(end..).unwrap_or(&[]);
        Some(Ok(Chunk { ssrc, items }))
    }
}

/// Iterator over the items of a chunk.
#[derive(Debug, Clone)]
pub struct Items<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<SdesItem<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        let &[kind, len, ..] = self.rest else {
            return None;
        };
        let end = 2 + usize::from(len);
        let Some(value) = self.rest.get(2..end) else {
            self.rest = &[];
            return Some(Err(RtcpError::Malformed("SDES item length")));
        };
        self.rest = &self.rest[end..];
        Some(Ok(SdesItem { kind, value }))
    }
}
