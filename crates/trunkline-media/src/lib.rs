//! Media for Trunkline: RTP and RTCP packets (RFC 3550, RFC 8285), SRTP
//! (RFC 3711, with the AES-GCM suites of RFC 7714), SDES keys (RFC 4568),
//! SDP (RFC 8866), stream statistics, RFC 4733 telephone events and G.711.
//! Packet parsing, writing and SRTP work on the caller's buffers and never
//! allocate per packet; nothing here does I/O or reads a clock.
//!
//! ```
//! use trunkline_media::rtp::{RtpHeader, RtpPacket};
//!
//! let mut buf = [0u8; 1500];
//! let header = RtpHeader { payload_type: 0, sequence: 7, timestamp: 160, ssrc: 0x1234, ..Default::default() };
//! let silence = [trunkline_media::g711::ulaw_encode(0); 160];
//! let len = header.write(&silence, &mut buf)?;
//! let packet = RtpPacket::parse(&buf[..len])?;
//! assert_eq!((packet.sequence(), packet.payload().len()), (7, 160));
//! # Ok::<(), trunkline_media::rtp::RtpError>(())
//! ```

#![forbid(unsafe_code)]

pub mod dtmf;
pub mod g711;
#[cfg(feature = "relay")]
pub mod relay;
pub mod rtcp;
pub mod rtp;
pub mod sdes;
pub mod sdp;
pub mod srtp;
pub mod stats;
