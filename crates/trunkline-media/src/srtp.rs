//! SRTP and SRTCP (RFC 3711) with the AES-CM/HMAC-SHA1 suites
//! (`AES_CM_128_HMAC_SHA1_80` and `_32`): key derivation, the rollover
//! counter with index estimation (appendix A), a 64-packet replay window
//! per source, and protect/unprotect in place on the caller's buffer.

use crate::sdes::Suite;
use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// Why a packet cannot be protected or unprotected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// The suite is not implemented here (yet): the GCM suites.
    #[error("unsupported SRTP suite")]
    Suite,
    /// Master key or salt of the wrong length.
    #[error("bad master key or salt length")]
    KeyLength,
    /// Too short to be (S)RTP or (S)RTCP, or no room for the tag.
    #[error("packet too short")]
    TooShort,
    /// The authentication tag does not match.
    #[error("authentication failed")]
    Authentication,
    /// Already received, or too old for the replay window.
    #[error("replayed packet")]
    Replay,
}

const SALT: usize = 14;
const AUTH_KEY: usize = 20;
/// The replay window, in packets (RFC 3711 §3.3.2 asks for at least 64).
const WINDOW: u64 = 64;

/// The session keys of one direction of RTP or RTCP.
#[derive(Clone)]
struct SessionKeys {
    cipher: Aes128,
    salt: [u8; SALT],
    auth: Hmac<Sha1>,
}

impl SessionKeys {
    /// RFC 3711 §4.3: the keys for labels `base`, `base+1`, `base+2`.
    fn derive(master_key: &[u8; 16], master_salt: &[u8; SALT], base: u8) -> SessionKeys {
        let prf = Aes128::new(master_key.into());
        let mut key = [0u8; 16];
        let mut auth = [0u8; AUTH_KEY];
        let mut salt = [0u8; SALT];
        kdf(&prf, master_salt, base, &mut key);
        kdf(&prf, master_salt, base + 1, &mut auth);
        kdf(&prf, master_salt, base + 2, &mut salt);
        SessionKeys {
            cipher: Aes128::new(&key.into()),
            salt,
            auth: <Hmac<Sha1> as KeyInit>::new_from_slice(&auth)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        }
    }

    /// XORs the AES-CM keystream for `iv` into `data` (RFC 3711 §4.1.1).
    fn apply_keystream(&self, iv: [u8; 16], data: &mut [u8]) {
        apply_ctr(&self.cipher, iv, data);
    }

    /// The IV for `ssrc` and 48-bit `index`: salt·2^16 ⊕ SSRC·2^64 ⊕ i·2^16.
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..SALT].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        iv
    }

    fn tag(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut mac = self.auth.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// AES in counter mode from `iv`, the counter in the block's low bits.
fn apply_ctr(cipher: &Aes128, iv: [u8; 16], data: &mut [u8]) {
    let mut counter = u128::from_be_bytes(iv);
    // A batch of blocks per call lets AES-NI pipeline them.
    const BATCH: usize = 8;
    for chunk in data.chunks_mut(16 * BATCH) {
        let mut blocks = [aes::Block::default(); BATCH];
        let n = chunk.len().div_ceil(16);
        for block in &mut blocks[..n] {
            block.copy_from_slice(&counter.to_be_bytes());
            counter = counter.wrapping_add(1);
        }
        cipher.encrypt_blocks(&mut blocks[..n]);
        for (bytes, block) in chunk.chunks_mut(16).zip(&blocks) {
            for (b, k) in bytes.iter_mut().zip(block.iter()) {
                *b ^= k;
            }
        }
    }
}

/// The AES-CM PRF of RFC 3711 §4.3.3 for `label`, key derivation rate 0.
fn kdf(prf: &Aes128, master_salt: &[u8; SALT], label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..SALT].copy_from_slice(master_salt);
    // key_id = label ‖ r (r = 0), XORed into the salt's low 56 bits.
    iv[7] ^= label;
    out.fill(0);
    apply_ctr(prf, iv, out);
}

/// Per-source receive state: rollover counter, highest sequence number,
/// replay window.
#[derive(Debug, Clone, Copy, Default)]
struct Stream {
    roc: u32,
    highest: u16,
    /// Bit n: the packet `n` before the highest index was received.
    window: u64,
}

impl Stream {
    /// The index of sequence number `seq` (appendix A).
    fn estimate(&self, seq: u16) -> u64 {
        let roc = if self.highest < 32_768 {
            if i32::from(seq) - i32::from(self.highest) > 32_768 {
                self.roc.wrapping_sub(1)
            } else {
                self.roc
            }
        } else if i32::from(self.highest) - 32_768 > i32::from(seq) {
            self.roc.wrapping_add(1)
        } else {
            self.roc
        };
        (u64::from(roc) << 16) | u64::from(seq)
    }

    fn index(&self) -> u64 {
        (u64::from(self.roc) << 16) | u64::from(self.highest)
    }

    fn is_replay(&self, index: u64) -> bool {
        let highest = self.index();
        if index > highest {
            return false;
        }
        let behind = highest - index;
        behind >= WINDOW || self.window & (1 << behind) != 0
    }

    fn accept(&mut self, index: u64) {
        let highest = self.index();
        if index > highest {
            let ahead = index - highest;
            self.window = if ahead >= WINDOW {
                0
            } else {
                self.window << ahead
            };
            self.window |= 1;
            self.roc = (index >> 16) as u32;
            self.highest = index as u16;
        } else {
            self.window |= 1 << (highest - index);
        }
    }
}

/// One SRTP session direction: protects what we send, or unprotects what
/// we receive (use two contexts for the two directions of a call).
#[derive(Clone)]
pub struct SrtpContext {
    tag_len: usize,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    streams: HashMap<u32, Stream>,
    /// The next SRTCP index we send.
    srtcp_index: u32,
}

impl std::fmt::Debug for SrtpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpContext")
            .field("tag_len", &self.tag_len)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// A context for `suite` from its master key and salt (an SDES
    /// `a=crypto` attribute gives both).
    pub fn new(
        suite: Suite,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<SrtpContext, SrtpError> {
        let tag_len = match suite {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => return Err(SrtpError::Suite),
        };
        let key: &[u8; 16] = master_key.try_into().map_err(|_| SrtpError::KeyLength)?;
        let salt: &[u8; SALT] = master_salt.try_into().map_err(|_| SrtpError::KeyLength)?;
        Ok(SrtpContext {
            tag_len,
            rtp: SessionKeys::derive(key, salt, 0),
            rtcp: SessionKeys::derive(key, salt, 3),
            streams: HashMap::new(),
            srtcp_index: 0,
        })
    }

    /// The authentication tag length added to each RTP packet.
    pub fn tag_len(&self) -> usize {
        self.tag_len
    }

    /// Protects the RTP packet in `buf[..len]` in place; `buf` needs
    /// `tag_len()` bytes of room after it. Returns the SRTP length.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let total = len + self.tag_len;
        if buf.len() < total {
            return Err(SrtpError::TooShort);
        }
        let header_len = rtp_header_len(&buf[..len])?;
        let (seq, ssrc) = rtp_ids(buf);
        let stream = self.streams.entry(ssrc).or_insert(Stream {
            roc: 0,
            highest: seq.wrapping_sub(1),
            window: 0,
        });
        let index = stream.estimate(seq);
        stream.accept(index);
        let roc = (index >> 16) as u32;
        let iv = self.rtp.iv(ssrc, index);
        self.rtp.apply_keystream(iv, &mut buf[header_len..len]);
        let tag = self.rtp.tag(&[&buf[..len], &roc.to_be_bytes()]);
        buf[len..total].copy_from_slice(&tag[..self.tag_len]);
        Ok(total)
    }

    /// Checks and decrypts the SRTP packet in `buf` in place; returns the
    /// RTP length. A packet that fails is left as it was.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let len = buf
            .len()
            .checked_sub(self.tag_len)
            .ok_or(SrtpError::TooShort)?;
        let header_len = rtp_header_len(&buf[..len])?;
        let (seq, ssrc) = rtp_ids(buf);
        let stream = self.streams.get(&ssrc).copied().unwrap_or(Stream {
            roc: 0,
            highest: seq.wrapping_sub(1),
            window: 0,
        });
        let index = stream.estimate(seq);
        if stream.is_replay(index) {
            return Err(SrtpError::Replay);
        }
        let roc = (index >> 16) as u32;
        let tag = self.rtp.tag(&[&buf[..len], &roc.to_be_bytes()]);
        if !bool::from(tag[..self.tag_len].ct_eq(&buf[len..])) {
            return Err(SrtpError::Authentication);
        }
        let iv = self.rtp.iv(ssrc, index);
        self.rtp.apply_keystream(iv, &mut buf[header_len..len]);
        let mut stream = stream;
        stream.accept(index);
        self.streams.insert(ssrc, stream);
        Ok(len)
    }

    /// Protects the RTCP compound packet in `buf[..len]` in place (SRTCP,
    /// §3.4): encrypted after its first 8 bytes, then E‖index and the
    /// 80-bit tag. `buf` needs 4 + 10 bytes of room. Returns the length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        const RTCP_TAG: usize = 10;
        let total = len + 4 + RTCP_TAG;
        if len < 8 || buf.len() < total {
            return Err(SrtpError::TooShort);
        }
        let index = self.srtcp_index & 0x7fff_ffff;
        self.srtcp_index = (index + 1) & 0x7fff_ffff;
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let iv = self.rtcp.iv(ssrc, u64::from(index));
        self.rtcp.apply_keystream(iv, &mut buf[8..len]);
        buf[len..len + 4].copy_from_slice(&(0x8000_0000 | index).to_be_bytes());
        let tag = self.rtcp.tag(&[&buf[..len + 4]]);
        buf[len + 4..total].copy_from_slice(&tag[..RTCP_TAG]);
        Ok(total)
    }

    /// Checks and decrypts the SRTCP packet in `buf` in place; returns the
    /// RTCP length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        const RTCP_TAG: usize = 10;
        let len = buf
            .len()
            .checked_sub(4 + RTCP_TAG)
            .ok_or(SrtpError::TooShort)?;
        if len < 8 {
            return Err(SrtpError::TooShort);
        }
        let tag = self.rtcp.tag(&[&buf[..len + 4]]);
        if !bool::from(tag[..RTCP_TAG].ct_eq(&buf[len + 4..])) {
            return Err(SrtpError::Authentication);
        }
        let e_index = u32::from_be_bytes([buf[len], buf[len + 1], buf[len + 2], buf[len + 3]]);
        if e_index & 0x8000_0000 != 0 {
            let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            let iv = self.rtcp.iv(ssrc, u64::from(e_index & 0x7fff_ffff));
            self.rtcp.apply_keystream(iv, &mut buf[8..len]);
        }
        Ok(len)
    }
}

fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    crate::rtp::RtpPacket::parse(packet)
        .map(|p| p.header_len())
        .map_err(|_| SrtpError::TooShort)
}

fn rtp_ids(buf: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([buf[2], buf[3]]),
        u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_default())
            .collect()
    }

    #[test]
    fn rfc_3711_b2_aes_cm_keystream() {
        let key: [u8; 16] = hex("2B7E151628AED2A6ABF7158809CF4F3C")
            .try_into()
            .unwrap_or_default();
        let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000")
            .try_into()
            .unwrap_or_default();
        let mut stream = [0u8; 48];
        apply_ctr(&Aes128::new(&key.into()), iv, &mut stream);
        assert_eq!(
            stream.to_vec(),
            hex(
                "E03EAD0935C95E80E166B16DD92B4EB4D23513162B02D0F72A43A2FE4A5F97AB41E95B3BB0A2E8DD477901E4FCA894C0"
            )
        );
    }

    #[test]
    fn rfc_3711_b3_key_derivation() {
        let key: [u8; 16] = hex("E1F97A0D3E018BE0D64FA32C06DE4139")
            .try_into()
            .unwrap_or_default();
        let salt: [u8; SALT] = hex("0EC675AD498AFEEBB6960B3AABE6")
            .try_into()
            .unwrap_or_default();
        let prf = Aes128::new(&key.into());
        let mut cipher_key = [0u8; 16];
        let mut cipher_salt = [0u8; SALT];
        let mut auth_key = [0u8; AUTH_KEY];
        kdf(&prf, &salt, 0, &mut cipher_key);
        kdf(&prf, &salt, 2, &mut cipher_salt);
        kdf(&prf, &salt, 1, &mut auth_key);
        assert_eq!(cipher_key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(cipher_salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        assert_eq!(
            auth_key.to_vec(),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
    }
}
