//! RTP packets (RFC 3550 §5.1) with header extensions (RFC 8285): a view
//! over the received bytes, a writer into a caller's buffer, and in-place
//! edits for the relay. Nothing allocates.

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Fewer bytes than the header says there are.
    #[error("packet too short: {0} bytes")]
    TooShort(usize),
    /// Not version 2.
    #[error("RTP version {0}, not 2")]
    Version(u8),
    /// The padding count is zero or larger than the payload.
    #[error("bad padding length")]
    Padding,
    /// The output buffer cannot hold the packet.
    #[error("buffer too small")]
    BufferTooSmall,
    /// More than 15 CSRCs, or an extension over 65 535 words.
    #[error("header field out of range")]
    OutOfRange,
}

/// The fixed header is 12 bytes.
pub const FIXED_HEADER: usize = 12;

/// A parsed RTP packet borrowing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    bytes: &'a [u8],
    header_len: usize,
    extension: Option<Extension<'a>>,
    payload: &'a [u8],
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a> RtpPacket<'a> {
    /// Parses `bytes` as one RTP packet.
    pub fn parse(bytes: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        let (header_len, extension) = split_header(bytes)?;
        let mut payload_end = bytes.len();
        if bytes[0] & 0x20 != 0 {
            let padding = usize::from(bytes[bytes.len() - 1]);
            if padding == 0 || padding > bytes.len() - header_len {
                return Err(RtpError::Padding);
            }
            payload_end -= padding;
        }
        Ok(RtpPacket {
            bytes,
            header_len,
            extension,
            payload: &bytes[header_len..payload_end],
        })
    }

    /// The marker bit.
    pub fn marker(&self) -> bool {
        self.bytes[1] & 0x80 != 0
    }
    /// The payload type.
    pub fn payload_type(&self) -> u8 {
        self.bytes[1] & 0x7f
    }
    /// The sequence number.
    pub fn sequence(&self) -> u16 {
        be16(self.bytes, 2)
    }
    /// The timestamp.
    pub fn timestamp(&self) -> u32 {
        be32(self.bytes, 4)
    }
    /// The synchronization source.
    pub fn ssrc(&self) -> u32 {
        be32(self.bytes, 8)
    }
    /// The contributing sources.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        let bytes = self.bytes;
        let count = usize::from(bytes[0] & 0x0f);
        (0..count).map(move |n| be32(bytes, FIXED_HEADER + 4 * n))
    }
    /// The header extension's profile value and data, if present.
    pub fn extension(&self) -> Option<(u16, &'a [u8])> {
        self.extension
    }
    /// The RFC 8285 extension elements `(id, data)`, for the one-byte
    /// (`0xBEDE`) and two-byte (`0x100x`) forms; empty for other profiles.
    pub fn extension_elements(&self) -> Elements<'a> {
        let (form, data) = match self.extension {
            Some((0xBEDE, data)) => (Form::OneByte, data),
            Some((profile, data)) if profile & 0xfff0 == 0x1000 => (Form::TwoByte, data),
            _ => (Form::OneByte, &[][..]),
        };
        Elements { form, rest: data }
    }
    /// The payload, without padding.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
    /// The header length, extension included.
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    /// The whole packet.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// The header length (CSRCs and extension included) of an RTP or SRTP
/// packet, checked against its length. Unlike [`RtpPacket::parse`] it
/// reads nothing after the header, so it also serves packets whose payload,
/// padding count included, SRTP has encrypted.
pub fn header_len(bytes: &[u8]) -> Result<usize, RtpError> {
    split_header(bytes).map(|(len, _)| len)
}

/// A header extension: its profile value and data.
type Extension<'a> = (u16, &'a [u8]);

/// The header length and the extension.
fn split_header(bytes: &[u8]) -> Result<(usize, Option<Extension<'_>>), RtpError> {
    if bytes.len() < FIXED_HEADER {
        return Err(RtpError::TooShort(bytes.len()));
    }
    let version = bytes[0] >> 6;
    if version != 2 {
        return Err(RtpError::Version(version));
    }
    let csrc_count = usize::from(bytes[0] & 0x0f);
    let header_len = FIXED_HEADER + 4 * csrc_count;
    if bytes.len() < header_len {
        return Err(RtpError::TooShort(bytes.len()));
    }
    if bytes[0] & 0x10 == 0 {
        return Ok((header_len, None));
    }
    if bytes.len() < header_len + 4 {
        return Err(RtpError::TooShort(bytes.len()));
    }
    let profile = be16(bytes, header_len);
    let words = usize::from(be16(bytes, header_len + 2));
    let data_start = header_len + 4;
    let data_end = data_start + 4 * words;
    if bytes.len() < data_end {
        return Err(RtpError::TooShort(bytes.len()));
    }
    Ok((data_end, Some((profile, &bytes[data_start..data_end]))))
}

#[derive(Debug, Clone, Copy)]
enum Form {
    OneByte,
    TwoByte,
}

/// Iterator over RFC 8285 header extension elements.
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    form: Form,
    rest: &'a [u8],
}

impl<'a> Iterator for Elements<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (&first, after) = self.rest.split_first()?;
            if first == 0 {
                // Padding between elements.
                self.rest = after;
                continue;
            }
            let (id, len, after) = match self.form {
                Form::OneByte if first >> 4 == 15 => {
                    // ID 15: stop (RFC 8285 §4.2).
                    self.rest = &[];
                    return None;
                }
                Form::OneByte => (first >> 4, usize::from(first & 0x0f) + 1, after),
                Form::TwoByte => {
                    let (&len, after) = after.split_first()?;
                    (first, usize::from(len), after)
                }
            };
            if after.len() < len {
                // A truncated element ends the list.
                self.rest = &[];
                return None;
            }
            let (data, rest) = after.split_at(len);
            self.rest = rest;
            return Some((id, data));
        }
    }
}

/// The fields of an RTP header to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    /// The marker bit.
    pub marker: bool,
    /// The payload type (7 bits).
    pub payload_type: u8,
    /// The sequence number.
    pub sequence: u16,
    /// The timestamp.
    pub timestamp: u32,
    /// The synchronization source.
    pub ssrc: u32,
    /// Contributing sources, at most 15.
    pub csrcs: &'a [u32],
    /// A header extension: profile value and data (a multiple of 4 bytes).
    pub extension: Option<(u16, &'a [u8])>,
}

impl RtpHeader<'_> {
    /// The header's length in bytes.
    pub fn len(&self) -> usize {
        FIXED_HEADER + 4 * self.csrcs.len() + self.extension.map_or(0, |(_, d)| 4 + d.len())
    }

    /// Never: a header has its 12 fixed bytes.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the header then `payload` into `out`; returns the packet's
    /// length.
    pub fn write(&self, payload: &[u8], out: &mut [u8]) -> Result<usize, RtpError> {
        if self.csrcs.len() > 15 || self.payload_type > 127 {
            return Err(RtpError::OutOfRange);
        }
        if let Some((_, data)) = self.extension
            && (!data.len().is_multiple_of(4) || data.len() / 4 > usize::from(u16::MAX))
        {
            return Err(RtpError::OutOfRange);
        }
        let total = self.len() + payload.len();
        let out = out.get_mut(..total).ok_or(RtpError::BufferTooSmall)?;
        out[0] = 0x80 | (u8::from(self.extension.is_some()) << 4) | self.csrcs.len() as u8;
        out[1] = (u8::from(self.marker) << 7) | self.payload_type;
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let mut at = FIXED_HEADER;
        for csrc in self.csrcs {
            out[at..at + 4].copy_from_slice(&csrc.to_be_bytes());
            at += 4;
        }
        if let Some((profile, data)) = self.extension {
            out[at..at + 2].copy_from_slice(&profile.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&((data.len() / 4) as u16).to_be_bytes());
            out[at + 4..at + 4 + data.len()].copy_from_slice(data);
            at += 4 + data.len();
        }
        out[at..].copy_from_slice(payload);
        Ok(total)
    }
}

/// In-place edits of a packet the relay forwards: the fields a relay
/// rewrites without touching the rest. `packet` must have been parsed
/// (at least 12 bytes).
pub fn set_ssrc(packet: &mut [u8], ssrc: u32) {
    packet[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// See [`set_ssrc`].
pub fn set_sequence(packet: &mut [u8], sequence: u16) {
    packet[2..4].copy_from_slice(&sequence.to_be_bytes());
}

/// See [`set_ssrc`].
pub fn set_timestamp(packet: &mut [u8], timestamp: u32) {
    packet[4..8].copy_from_slice(&timestamp.to_be_bytes());
}

/// See [`set_ssrc`].
pub fn set_payload_type(packet: &mut [u8], payload_type: u8) {
    packet[1] = (packet[1] & 0x80) | (payload_type & 0x7f);
}
