//! Splitting a byte stream (TCP, TLS) into messages and RFC 5626 keep-alives.

use crate::message::{ContentLength, content_lengths};
use crate::parser::{self, index_head};
use crate::{Error, Message};
use bytes::{Buf, Bytes, BytesMut};

/// What a stream yields next.
#[derive(Debug)]
pub enum Frame {
    /// A complete, valid message.
    Message(Message),
    /// A message that was framed correctly (its bytes are consumed) but is
    /// malformed. The stream goes on; a request deserves the response
    /// [`crate::reject_malformed`] builds from `raw`.
    Malformed {
        /// What is wrong.
        error: Error,
        /// The message as received.
        raw: Bytes,
    },
    /// A double-CRLF keep-alive ping; answer with a CRLF pong (RFC 5626 §4.4.1).
    Ping,
    /// A single-CRLF keep-alive pong.
    Pong,
}

/// Frames SIP messages on a stream transport by Content-Length (§18.3).
///
/// Feed received bytes into a `BytesMut` and call [`Decoder::decode`] until
/// it returns `Ok(None)` (more bytes needed). Each message shares the
/// buffer it was received in. An `Err` means the stream cannot be framed
/// any more (no or conflicting Content-Length, a message over the size
/// limit, a header section that cannot be indexed): close the connection.
#[derive(Debug, Clone)]
pub struct Decoder {
    max_message_size: usize,
}

impl Default for Decoder {
    /// A 64 KiB limit, the largest a UDP datagram can carry.
    fn default() -> Self {
        Decoder::new(65_535)
    }
}

impl Decoder {
    /// A decoder that refuses messages larger than `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Decoder {
        Decoder { max_message_size }
    }

    /// Takes the next frame from the front of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        // Stray line feeds before a start line are ignored (§7.5).
        let stray = buf.iter().take_while(|c| **c == b'\n').count();
        buf.advance(stray);
        if buf.starts_with(b"\r\n\r\n") {
            buf.advance(4);
            return Ok(Some(Frame::Ping));
        }
        if buf.starts_with(b"\r\n") {
            if buf.len() == 3 {
                // "\r\n\r" could still become a ping.
                return Ok(None);
            }
            buf.advance(2);
            return Ok(Some(Frame::Pong));
        }
        if buf.len() == 1 && buf[0] == b'\r' {
            return Ok(None);
        }
        let limit = self.max_message_size;
        let Some(index) = index_head(buf)? else {
            return if buf.len() > limit {
                Err(Error::TooLarge { limit })
            } else {
                Ok(None)
            };
        };
        let body_len = match content_lengths(&buf[..index.head_len], &index.entries)? {
            ContentLength::One(len) => len,
            ContentLength::None => return Err(Error::MissingContentLength),
            ContentLength::Conflict { offset, .. } => {
                return Err(Error::ContentLengthConflict { offset });
            }
        };
        let total = index.head_len.saturating_add(body_len);
        if total > limit {
            return Err(Error::TooLarge { limit });
        }
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let mut head = buf.split_to(total).freeze();
        let raw = head.clone();
        let body = head.split_off(index.head_len);
        let length = u32::try_from(body_len).ok();
        Ok(Some(match parser::build(head, body, index, length) {
            Ok(message) => Frame::Message(message),
            Err(error) => Frame::Malformed { error, raw },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 4\r\n\r\nbody";

    #[test]
    fn frames_messages_byte_by_byte_between_keepalives() {
        // Keep-alives arrive whole (one small write each); messages may be
        // cut anywhere.
        let one_byte_each = |m: &'static [u8]| m.chunks(1).collect::<Vec<_>>();
        let chunks = [
            vec![&b"\r\n\r\n"[..]],
            one_byte_each(OPTIONS),
            vec![&b"\r\n"[..]],
            one_byte_each(OPTIONS),
        ];
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in chunks.iter().flatten() {
            buf.extend_from_slice(chunk);
            while let Some(f) = decoder.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(frames.len(), 4, "{frames:?}");
        assert!(matches!(frames[0], Frame::Ping));
        assert!(matches!(&frames[1], Frame::Message(m) if &m.body()[..] == b"body"));
        assert!(matches!(frames[2], Frame::Pong));
        assert!(
            matches!(&frames[3], Frame::Message(m) if m.via().unwrap().branch() == Some("z9hG4bK1"))
        );
    }

    #[test]
    fn framing_errors() {
        let mut d = Decoder::new(100);
        let mut no_length = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\n\r\n"[..]);
        assert_eq!(
            d.decode(&mut no_length).unwrap_err(),
            Error::MissingContentLength
        );
        let mut conflict =
            BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nl: 2\r\n\r\nab"[..]);
        assert!(matches!(
            d.decode(&mut conflict),
            Err(Error::ContentLengthConflict { offset: 34 })
        ));
        let mut big = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nl: 1000\r\n\r\n"[..]);
        assert_eq!(
            d.decode(&mut big).unwrap_err(),
            Error::TooLarge { limit: 100 }
        );
        let mut endless = BytesMut::from(&[b'a'; 101][..]);
        assert_eq!(
            d.decode(&mut endless).unwrap_err(),
            Error::TooLarge { limit: 100 }
        );
    }

    #[test]
    fn malformed_messages_keep_the_stream_going() {
        let mut d = Decoder::default();
        let mut buf =
            BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nMax-Forwards: 300\r\nl: 0\r\n\r\n"[..]);
        buf.extend_from_slice(OPTIONS);
        assert!(matches!(
            d.decode(&mut buf),
            Ok(Some(Frame::Malformed { .. }))
        ));
        assert!(matches!(d.decode(&mut buf), Ok(Some(Frame::Message(_)))));
    }
}
