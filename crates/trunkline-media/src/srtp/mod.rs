//! SRTP and SRTCP (RFC 3711) with the AES-CM/HMAC-SHA1 suites
//! (`AES_CM_128_HMAC_SHA1_80` and `_32`) and the AES-GCM suites of RFC 7714
//! (`AEAD_AES_128_GCM`, `AEAD_AES_256_GCM`): key derivation, the rollover
//! counter with index estimation (appendix A), a 64-packet replay window
//! per source and direction, and protect/unprotect in place on the
//! caller's buffer. The primitives come from a [`CryptoProvider`],
//! [`DefaultCrypto`] unless told otherwise.
//!
//! ```
//! use trunkline_media::sdes::Suite;
//! use trunkline_media::srtp::SrtpContext;
//!
//! let (key, salt) = ([7u8; 16], [9u8; 12]);
//! let mut sender = SrtpContext::new(Suite::AeadAes128Gcm, &key, &salt)?;
//! let mut receiver = SrtpContext::new(Suite::AeadAes128Gcm, &key, &salt)?;
//! // A 12-byte RTP header, 3 bytes of payload, room for the 16-byte tag.
//! let mut buf = [0u8; 12 + 3 + 16];
//! buf[..15].copy_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 42, 1, 2, 3]);
//! let protected = sender.protect_rtp(&mut buf, 15)?;
//! let plain = receiver.unprotect_rtp(&mut buf[..protected])?;
//! assert_eq!(&buf[12..plain], &[1, 2, 3]);
//! # Ok::<(), trunkline_media::srtp::SrtpError>(())
//! ```

pub mod crypto;

pub use crypto::{CryptoProvider, DefaultCrypto};

use crate::sdes::Suite;
use crypto::{AesCtr, AesGcm, HmacSha1};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use subtle::ConstantTimeEq;

/// Why a packet cannot be protected or unprotected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// Master key or salt of the wrong length for the suite (or a key the
    /// crypto provider refuses).
    #[error("bad master key or salt length")]
    KeyLength,
    /// Too short to be (S)RTP or (S)RTCP, or no room for the tag.
    #[error("packet too short")]
    TooShort,
    /// The authentication tag does not match.
    #[error("authentication failed")]
    Authentication,
    /// Already received (or, protecting, already sent: the keystream
    /// must not be used twice), or too old for the replay window.
    #[error("replayed packet")]
    Replay,
    /// 2^31 SRTCP packets were sent with this key (RFC 3711 §9.2): it is
    /// time for a new one.
    #[error("SRTCP index exhausted")]
    Exhausted,
}

/// Session salt length of the AES-CM suites (112 bits); GCM uses the first
/// 12 bytes (96 bits).
const SALT: usize = 14;
/// HMAC-SHA1 session authentication key length.
const AUTH_KEY: usize = 20;
/// The AES-GCM tag.
const GCM_TAG: usize = 16;
/// The SRTCP tag of both AES-CM suites: 80 bits, even for `_32`
/// (RFC 4568 §6.2.2).
const SRTCP_CM_TAG: usize = 10;
/// SRTCP's E flag and 31-bit index, after the packet.
const SRTCP_TRAILER: usize = 4;
/// The replay window, in packets (RFC 3711 §3.3.2 asks for at least 64).
const WINDOW: u64 = 64;

/// How one direction's packets are encrypted and authenticated.
#[derive(Clone)]
enum Transform<P: CryptoProvider> {
    /// AES-CM then HMAC-SHA1 over the encrypted packet (RFC 3711 §4).
    CmSha1 {
        cipher: P::AesCtr,
        auth: P::HmacSha1,
    },
    /// AES-GCM with the header as associated data (RFC 7714).
    Gcm(P::AesGcm),
}

/// The session keys of RTP, or of RTCP.
#[derive(Clone)]
struct SessionKeys<P: CryptoProvider> {
    transform: Transform<P>,
    /// The session salt as the IVs use it: its bytes first, zeros after.
    salt: u128,
}

impl<P: CryptoProvider> SessionKeys<P> {
    /// RFC 3711 §4.3 (RFC 7714 §11 for GCM): the encryption key, the
    /// authentication key (AES-CM only) and the salt, for labels `base`,
    /// `base + 1`, `base + 2`. `None` if the provider refuses a key.
    fn derive(suite: Suite, prf: &P::AesCtr, master_salt: &[u8; SALT], base: u8) -> Option<Self> {
        let mut key = [0u8; 32];
        let key = &mut key[..suite.key_len()];
        let mut salt = [0u8; SALT];
        kdf(prf, master_salt, base, key);
        kdf(prf, master_salt, base + 2, &mut salt[..suite.salt_len()]);
        let transform = if is_gcm(suite) {
            Transform::Gcm(P::AesGcm::new(key)?)
        } else {
            let mut auth = [0u8; AUTH_KEY];
            kdf(prf, master_salt, base + 1, &mut auth);
            Transform::CmSha1 {
                cipher: P::AesCtr::new(key)?,
                auth: P::HmacSha1::new(&auth),
            }
        };
        Some(SessionKeys {
            transform,
            salt: salt_block(&salt),
        })
    }

    /// The AES-CM IV (RFC 3711 §4.1.1): salt·2^16 ⊕ SSRC·2^64 ⊕ i·2^16.
    fn cm_iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        (self.salt ^ (u128::from(ssrc) << 64) ^ (u128::from(index) << 16)).to_be_bytes()
    }

    /// The GCM IV (RFC 7714 §8.1 and §9.1): 00 00 ‖ SSRC ‖ the 48-bit
    /// `index`, XORed with the 12-byte salt. SRTP's index is the rollover
    /// counter and sequence number, SRTCP's is the SRTCP index.
    fn gcm_iv(&self, ssrc: u32, index: u64) -> [u8; 12] {
        let iv = (self.salt ^ (((u128::from(ssrc) << 48) | u128::from(index)) << 32)).to_be_bytes();
        let mut out = [0u8; 12];
        out.copy_from_slice(&iv[..12]);
        out
    }
}

/// `salt` (14 or 12 bytes) at the top of a 128-bit block.
fn salt_block(salt: &[u8]) -> u128 {
    let mut block = [0u8; 16];
    block[..salt.len()].copy_from_slice(salt);
    u128::from_be_bytes(block)
}

fn is_gcm(suite: Suite) -> bool {
    matches!(suite, Suite::AeadAes128Gcm | Suite::AeadAes256Gcm)
}

/// The AES-CM PRF of RFC 3711 §4.3.3 for `label`, key derivation rate 0:
/// the keystream from IV (master salt ⊕ label·2^48)·2^16. A 12-byte GCM
/// master salt is padded with zeros on the right, as libsrtp does.
fn kdf<C: AesCtr>(prf: &C, master_salt: &[u8; SALT], label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..SALT].copy_from_slice(master_salt);
    iv[7] ^= label;
    out.fill(0);
    prf.apply_keystream(&iv, out);
}

/// Which indices of one source have been seen: the highest, and a bit per
/// index in the `WINDOW` below it (bit n: highest − n was seen).
#[derive(Debug, Clone, Copy)]
struct Window {
    highest: u64,
    seen: u64,
}

impl Window {
    fn is_replay(&self, index: u64) -> bool {
        match self.highest.checked_sub(index) {
            None => false,
            Some(behind) => behind >= WINDOW || self.seen & (1 << behind) != 0,
        }
    }

    fn accept(&mut self, index: u64) {
        match index.checked_sub(self.highest) {
            Some(0) => self.seen |= 1,
            Some(ahead) => {
                self.seen = if ahead >= WINDOW {
                    1
                } else {
                    (self.seen << ahead) | 1
                };
                self.highest = index;
            }
            None => self.seen |= 1 << (self.highest - index),
        }
    }
}

/// `window` with `index` accepted; a first index opens the window.
fn accepted(window: Option<Window>, index: u64) -> Window {
    let mut window = window.unwrap_or(Window {
        highest: index,
        seen: 0,
    });
    window.accept(index);
    window
}

/// The 48-bit SRTP index of sequence number `seq` (RFC 3711 §3.3.1 and
/// appendix A): the rollover counter is the one of the highest index seen,
/// one more or one less when `seq` is nearer across the wrap. The first
/// packet of a source has rollover counter 0. `None` for a packet from
/// before index 0, which can only be older than the stream.
fn estimate_index(window: Option<&Window>, seq: u16) -> Option<u64> {
    let Some(window) = window else {
        return Some(u64::from(seq));
    };
    let roc = window.highest >> 16;
    let highest = window.highest as u16;
    let roc = if highest < 0x8000 {
        if seq > highest && seq - highest > 0x8000 {
            roc.checked_sub(1)?
        } else {
            roc
        }
    } else if seq < highest - 0x8000 {
        roc + 1
    } else {
        roc
    };
    // The rollover counter is 32 bits: the index wraps at 2^48.
    Some(((roc << 16) | u64::from(seq)) & 0xffff_ffff_ffff)
}

/// Hashes an SSRC with one multiplication. SipHash's resistance to chosen
/// keys buys nothing here: a receiver adds a source only once one of its
/// packets has authenticated, and SSRCs are random (RFC 3550 §8.1).
#[derive(Debug, Default, Clone, Copy)]
struct SsrcHasher(u64);

impl Hasher for SsrcHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u32(u32::from(b));
        }
    }

    fn write_u32(&mut self, ssrc: u32) {
        // Fibonacci hashing: spreads the bits over the whole word, whose
        // high bits the table reads as well as its low ones.
        self.0 = (self.0 ^ u64::from(ssrc)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The sources of a context.
type Streams = HashMap<u32, Stream, BuildHasherDefault<SsrcHasher>>;

/// What one source has sent or received in this context.
#[derive(Debug, Clone, Copy, Default)]
struct Stream {
    rtp: Option<Window>,
    rtcp: Option<Window>,
    /// The next SRTCP index to send.
    srtcp_next: u32,
}

/// One SRTP session direction: protects what we send, or unprotects what
/// we receive (use two contexts for the two directions of a call). Each
/// source (SSRC) has its own rollover counter and replay windows.
#[derive(Clone)]
pub struct SrtpContext<P: CryptoProvider = DefaultCrypto> {
    suite: Suite,
    rtp: SessionKeys<P>,
    rtcp: SessionKeys<P>,
    streams: Streams,
}

impl<P: CryptoProvider> std::fmt::Debug for SrtpContext<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No keys in logs.
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

impl SrtpContext {
    /// A context for `suite` from its master key and salt (an SDES
    /// `a=crypto` attribute gives both), with the [`DefaultCrypto`]
    /// primitives.
    pub fn new(suite: Suite, master_key: &[u8], master_salt: &[u8]) -> Result<Self, SrtpError> {
        Self::with_provider(suite, master_key, master_salt)
    }
}

impl<P: CryptoProvider> SrtpContext<P> {
    /// A context for `suite` whose primitives come from `P`.
    pub fn with_provider(
        suite: Suite,
        master_key: &[u8],
        master_salt: &[u8],
    ) -> Result<Self, SrtpError> {
        if master_key.len() != suite.key_len() || master_salt.len() != suite.salt_len() {
            return Err(SrtpError::KeyLength);
        }
        let prf = P::AesCtr::new(master_key).ok_or(SrtpError::KeyLength)?;
        let mut salt = [0u8; SALT];
        salt[..master_salt.len()].copy_from_slice(master_salt);
        Ok(SrtpContext {
            suite,
            rtp: SessionKeys::derive(suite, &prf, &salt, 0).ok_or(SrtpError::KeyLength)?,
            rtcp: SessionKeys::derive(suite, &prf, &salt, 3).ok_or(SrtpError::KeyLength)?,
            streams: Streams::default(),
        })
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// What protecting adds to an RTP packet: the authentication tag.
    pub fn tag_len(&self) -> usize {
        match self.suite {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => GCM_TAG,
        }
    }

    /// What protecting adds to an RTCP packet: the E flag and SRTCP index,
    /// and the tag.
    pub fn srtcp_overhead(&self) -> usize {
        SRTCP_TRAILER
            + if is_gcm(self.suite) {
                GCM_TAG
            } else {
                SRTCP_CM_TAG
            }
    }

    /// Protects the RTP packet in `buf[..len]` in place; `buf` needs
    /// [`tag_len`](Self::tag_len) bytes of room after it. Returns the SRTP
    /// length. Each sequence number is protected once: a second time
    /// would reuse keystream, so it is refused as a replay.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let total = len + self.tag_len();
        if buf.len() < total {
            return Err(SrtpError::TooShort);
        }
        let header_len = crate::rtp::header_len(&buf[..len]).map_err(|_| SrtpError::TooShort)?;
        let (seq, ssrc) = rtp_ids(buf);
        let stream = self.streams.entry(ssrc).or_default();
        let index = estimate_index(stream.rtp.as_ref(), seq).ok_or(SrtpError::Replay)?;
        if stream.rtp.is_some_and(|w| w.is_replay(index)) {
            return Err(SrtpError::Replay);
        }
        stream.rtp = Some(accepted(stream.rtp, index));
        match &self.rtp.transform {
            Transform::CmSha1 { cipher, auth } => {
                cipher.apply_keystream(&self.rtp.cm_iv(ssrc, index), &mut buf[header_len..len]);
                let tag = auth.sign(&buf[..len], Some(roc(index)));
                buf[len..total].copy_from_slice(&tag[..total - len]);
            }
            Transform::Gcm(gcm) => {
                let (header, rest) = buf.split_at_mut(header_len);
                let (payload, tag) = rest[..total - header_len].split_at_mut(len - header_len);
                tag.copy_from_slice(&gcm.seal(&self.rtp.gcm_iv(ssrc, index), header, payload));
            }
        }
        Ok(total)
    }

    /// Checks and decrypts the SRTP packet in `buf` in place; returns the
    /// RTP length. A packet that fails is left as it was.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let len = buf
            .len()
            .checked_sub(self.tag_len())
            .ok_or(SrtpError::TooShort)?;
        let header_len = crate::rtp::header_len(&buf[..len]).map_err(|_| SrtpError::TooShort)?;
        let (seq, ssrc) = rtp_ids(buf);
        // Looked up once: the stream is updated through this borrow.
        let mut stream = self.streams.get_mut(&ssrc);
        let window = stream.as_ref().and_then(|s| s.rtp);
        let index = estimate_index(window.as_ref(), seq).ok_or(SrtpError::Replay)?;
        if window.is_some_and(|w| w.is_replay(index)) {
            return Err(SrtpError::Replay);
        }
        match &self.rtp.transform {
            Transform::CmSha1 { cipher, auth } => {
                let tag = auth.sign(&buf[..len], Some(roc(index)));
                if !bool::from(tag[..buf.len() - len].ct_eq(&buf[len..])) {
                    return Err(SrtpError::Authentication);
                }
                cipher.apply_keystream(&self.rtp.cm_iv(ssrc, index), &mut buf[header_len..len]);
            }
            Transform::Gcm(gcm) => {
                let (header, rest) = buf.split_at_mut(header_len);
                let (payload, tag) = rest.split_at_mut(len - header_len);
                let tag: &[u8; GCM_TAG] = (&*tag).try_into().map_err(|_| SrtpError::TooShort)?;
                if !gcm.open(&self.rtp.gcm_iv(ssrc, index), header, payload, tag) {
                    return Err(SrtpError::Authentication);
                }
            }
        }
        // Only an authentic packet opens or moves a source's window.
        let window = Some(accepted(window, index));
        match stream.as_mut() {
            Some(stream) => stream.rtp = window,
            None => {
                self.streams.insert(
                    ssrc,
                    Stream {
                        rtp: window,
                        ..Stream::default()
                    },
                );
            }
        }
        Ok(len)
    }

    /// Protects the RTCP compound packet in `buf[..len]` in place (SRTCP,
    /// RFC 3711 §3.4, RFC 7714 §9): encrypted after its first 8 bytes, with
    /// the E flag, the SRTCP index and the tag after it. `buf` needs
    /// [`srtcp_overhead`](Self::srtcp_overhead) bytes of room. Returns the
    /// length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let total = len + self.srtcp_overhead();
        if len < 8 || buf.len() < total {
            return Err(SrtpError::TooShort);
        }
        let ssrc = rtcp_ssrc(buf);
        let stream = self.streams.entry(ssrc).or_default();
        let index = stream.srtcp_next;
        if index > 0x7fff_ffff {
            return Err(SrtpError::Exhausted);
        }
        stream.srtcp_next += 1;
        let trailer = (0x8000_0000 | index).to_be_bytes();
        match &self.rtcp.transform {
            Transform::CmSha1 { cipher, auth } => {
                let iv = self.rtcp.cm_iv(ssrc, u64::from(index));
                cipher.apply_keystream(&iv, &mut buf[8..len]);
                buf[len..len + SRTCP_TRAILER].copy_from_slice(&trailer);
                let tag = auth.sign(&buf[..len + SRTCP_TRAILER], None);
                buf[len + SRTCP_TRAILER..total].copy_from_slice(&tag[..SRTCP_CM_TAG]);
            }
            Transform::Gcm(gcm) => {
                // Associated data: the first 8 bytes, then E and the index.
                let mut aad = [0u8; 8 + SRTCP_TRAILER];
                aad[..8].copy_from_slice(&buf[..8]);
                aad[8..].copy_from_slice(&trailer);
                let iv = self.rtcp.gcm_iv(ssrc, u64::from(index));
                let tag = gcm.seal(&iv, &aad, &mut buf[8..len]);
                buf[len..len + GCM_TAG].copy_from_slice(&tag);
                buf[len + GCM_TAG..total].copy_from_slice(&trailer);
            }
        }
        Ok(total)
    }

    /// Checks and decrypts the SRTCP packet in `buf` in place; returns the
    /// RTCP length. Packets sent unencrypted (E flag clear) are checked
    /// only. A packet that fails is left as it was.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let len = buf
            .len()
            .checked_sub(self.srtcp_overhead())
            .filter(|&len| len >= 8)
            .ok_or(SrtpError::TooShort)?;
        // AES-CM puts E and the index before the tag, GCM after it.
        let trailer_at = if is_gcm(self.suite) {
            len + GCM_TAG
        } else {
            len
        };
        let trailer: [u8; SRTCP_TRAILER] = buf[trailer_at..trailer_at + SRTCP_TRAILER]
            .try_into()
            .map_err(|_| SrtpError::TooShort)?;
        let e_index = u32::from_be_bytes(trailer);
        let (encrypted, index) = (e_index & 0x8000_0000 != 0, u64::from(e_index & 0x7fff_ffff));
        let ssrc = rtcp_ssrc(buf);
        let window = self.streams.get(&ssrc).and_then(|s| s.rtcp);
        if window.is_some_and(|w| w.is_replay(index)) {
            return Err(SrtpError::Replay);
        }
        match &self.rtcp.transform {
            Transform::CmSha1 { cipher, auth } => {
                let tag = auth.sign(&buf[..len + SRTCP_TRAILER], None);
                if !bool::from(tag[..SRTCP_CM_TAG].ct_eq(&buf[len + SRTCP_TRAILER..])) {
                    return Err(SrtpError::Authentication);
                }
                if encrypted {
                    cipher.apply_keystream(&self.rtcp.cm_iv(ssrc, index), &mut buf[8..len]);
                }
            }
            Transform::Gcm(gcm) => {
                let iv = self.rtcp.gcm_iv(ssrc, index);
                let tag: [u8; GCM_TAG] = buf[len..len + GCM_TAG]
                    .try_into()
                    .map_err(|_| SrtpError::TooShort)?;
                let authentic = if encrypted {
                    let mut aad = [0u8; 8 + SRTCP_TRAILER];
                    aad[..8].copy_from_slice(&buf[..8]);
                    aad[8..].copy_from_slice(&trailer);
                    gcm.open(&iv, &aad, &mut buf[8..len], &tag)
                } else {
                    // The whole packet then E and the index are associated
                    // data: move the trailer up against the packet, where
                    // the tag was, and put the tag back if it fails.
                    buf[len..len + SRTCP_TRAILER].copy_from_slice(&trailer);
                    let authentic = gcm.open(&iv, &buf[..len + SRTCP_TRAILER], &mut [], &tag);
                    if !authentic {
                        buf[len..len + GCM_TAG].copy_from_slice(&tag);
                    }
                    authentic
                };
                if !authentic {
                    return Err(SrtpError::Authentication);
                }
            }
        }
        let stream = self.streams.entry(ssrc).or_default();
        stream.rtcp = Some(accepted(stream.rtcp, index));
        Ok(len)
    }
}

/// The rollover counter of SRTP index `index`.
fn roc(index: u64) -> u32 {
    (index >> 16) as u32
}

fn rtp_ids(buf: &[u8]) -> (u16, u32) {
    (
        u16::from_be_bytes([buf[2], buf[3]]),
        u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
    )
}

fn rtcp_ssrc(buf: &[u8]) -> u32 {
    u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

    use super::crypto::{RingAesGcm, RustAesCtr};
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc_3711_b2_aes_cm_keystream() {
        let cipher = RustAesCtr::new(&hex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap();
        let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
        // The keystream of a whole 2^16-block segment, to reach the
        // table's last blocks (FEFF, FF00, FF01).
        let mut stream = vec![0u8; 0xFF02 * 16];
        cipher.apply_keystream(&iv, &mut stream);
        let block = |n: usize| stream[n * 16..(n + 1) * 16].to_vec();
        assert_eq!(block(0), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
        assert_eq!(block(1), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
        assert_eq!(block(2), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
        assert_eq!(block(0xFEFF), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
        assert_eq!(block(0xFF00), hex("362B7C3C6773516318A077D7FC5073AE"));
        assert_eq!(block(0xFF01), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
    }

    #[test]
    fn rfc_3711_b3_key_derivation() {
        let prf = RustAesCtr::new(&hex("E1F97A0D3E018BE0D64FA32C06DE4139")).unwrap();
        let salt: [u8; SALT] = hex("0EC675AD498AFEEBB6960B3AABE6").try_into().unwrap();
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

    /// A GCM context keyed with session keys directly, as RFC 7714's
    /// vectors are (the same key and salt for SRTP and SRTCP).
    fn gcm_session(suite: Suite, key: &str, salt: &str) -> SrtpContext {
        let keys = SessionKeys {
            transform: Transform::Gcm(RingAesGcm::new(&hex(key)).unwrap()),
            salt: salt_block(&hex(salt)),
        };
        SrtpContext {
            suite,
            rtp: keys.clone(),
            rtcp: keys,
            streams: Streams::default(),
        }
    }

    // RFC 7714 §16 and §17: the session keys, the salt ("Quid pro quo"),
    // and the packets every vector there protects.
    const KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
    const KEY_256: &str = "000102030405060708090a0b0c0d0e0f 101112131415161718191a1b1c1d1e1f";
    const SALT_7714: &str = "517569642070726f2071756f";
    const RTP_7714: &str = "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973
                            20646976 69736120 696e2070 61727465 73207472 6573";
    const RTCP_7714: &str = "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930
                             4c756e61 deadbeef deadbeef deadbeef deadbeef deadbeef";
    const RTCP_SSRC: u32 = 0x4d61_7273;
    const RTCP_INDEX: u32 = 0x5d4;

    /// Protects `plain` and checks it gives `protected`, then unprotects
    /// `protected` back to `plain` in a fresh context.
    fn both_ways(new: impl Fn() -> SrtpContext, rtcp: bool, plain: &[u8], protected: &[u8]) {
        let mut sender = new();
        if rtcp {
            sender.streams.entry(RTCP_SSRC).or_default().srtcp_next = RTCP_INDEX;
        }
        let mut buf = vec![0u8; plain.len() + 32];
        buf[..plain.len()].copy_from_slice(plain);
        let n = if rtcp {
            sender.protect_rtcp(&mut buf, plain.len())
        } else {
            sender.protect_rtp(&mut buf, plain.len())
        }
        .unwrap();
        assert_eq!(buf[..n], *protected);
        let mut wire = protected.to_vec();
        let mut receiver = new();
        let n = if rtcp {
            receiver.unprotect_rtcp(&mut wire)
        } else {
            receiver.unprotect_rtp(&mut wire)
        }
        .unwrap();
        assert_eq!(wire[..n], *plain);
    }

    #[test]
    fn rfc_7714_16_1_srtp_aead_aes_128_gcm() {
        let protected = hex(
            "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca
                             be633bd5 0d294e6f 42a5f47a 51c7d19b 36de3adf 8833899d 7f27beb1
                             6a9152cf 765ee439 0cce",
        );
        let new = || gcm_session(Suite::AeadAes128Gcm, KEY_128, SALT_7714);
        both_ways(new, false, &hex(RTP_7714), &protected);
        // §16.1.1's IV: the salt XOR 00 00 ‖ SSRC ‖ ROC ‖ SEQ.
        assert_eq!(
            new().rtp.gcm_iv(0x5501_a0b2, 0xf17b).to_vec(),
            hex("51753c6580c2726f20718414")
        );
    }

    #[test]
    fn rfc_7714_16_2_srtp_aead_aes_256_gcm() {
        let protected = hex(
            "8040f17b 8041f8d3 5501a0b2 32b1de78 a822fe12 ef9f78fa 332e33aa
                             b1801238 9a58e2f3 b50b2a02 76ffae0f 1ba63799 b87b7aa3 db36dfff
                             d6b0f9bb 7878d7a7 6c13",
        );
        let new = || gcm_session(Suite::AeadAes256Gcm, KEY_256, SALT_7714);
        both_ways(new, false, &hex(RTP_7714), &protected);
    }

    #[test]
    fn rfc_7714_17_1_srtcp_aead_aes_128_gcm() {
        let protected = hex(
            "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7
                             6c06f32d c676a5f1 730d6fda 4ce09b46 86303ded 0bb9275b c84aa458
                             96cf4d2f c5abf872 45d9eade 800005d4",
        );
        let new = || gcm_session(Suite::AeadAes128Gcm, KEY_128, SALT_7714);
        both_ways(new, true, &hex(RTCP_7714), &protected);
        // §17.1's IV: the salt XOR 00 00 ‖ SSRC ‖ 00 00 ‖ index.
        assert_eq!(
            new().rtcp.gcm_iv(RTCP_SSRC, RTCP_INDEX.into()).to_vec(),
            hex("517524055203726f207170bb")
        );
    }

    #[test]
    fn rfc_7714_17_2_srtcp_aead_aes_256_gcm() {
        let protected = hex(
            "81c8000d 4d617273 d50ae4d1 f5ce5d30 4ba297e4 7d470c28 2c3ece5d
                             bffe0a50 a2eaa5c1 110555be 8415f658 c61de047 6f1b6fad 1d1eb30c
                             4446839f 57ff6f6c b26ac3be 800005d4",
        );
        let new = || gcm_session(Suite::AeadAes256Gcm, KEY_256, SALT_7714);
        both_ways(new, true, &hex(RTCP_7714), &protected);
    }

    #[test]
    fn rfc_7714_17_3_and_17_4_srtcp_authenticated_only() {
        // The E flag clear: the packet in clear, then the tag, then the index.
        for (suite, key, tag) in [
            (
                Suite::AeadAes128Gcm,
                KEY_128,
                "841dd968 3dd78ec9 2ae58790 125f62b3",
            ),
            (
                Suite::AeadAes256Gcm,
                KEY_256,
                "91db4afb feee5a97 8fab4393 ed2615fe",
            ),
        ] {
            let plain = hex(RTCP_7714);
            let mut wire = [plain.clone(), hex(tag), hex("000005d4")].concat();
            let original = wire.clone();
            let mut receiver = gcm_session(suite, key, SALT_7714);
            let mut forged = wire.clone();
            forged[20] ^= 1;
            assert_eq!(
                receiver.unprotect_rtcp(&mut forged),
                Err(SrtpError::Authentication)
            );
            forged[20] ^= 1;
            assert_eq!(forged, original, "a refused packet is left as it was");
            let n = receiver.unprotect_rtcp(&mut wire).unwrap();
            assert_eq!(wire[..n], plain[..]);
            assert_eq!(
                receiver.unprotect_rtcp(&mut original.clone()),
                Err(SrtpError::Replay)
            );
        }
    }

    #[test]
    fn gcm_master_keys_derive_the_session_keys_openssl_computes() {
        // Session keys and salts for labels 0 and 2 (SRTP) and 3 and 5
        // (SRTCP) computed with `openssl enc -aes-128-ctr` / `-aes-256-ctr`
        // over zeros, IV = (master salt ‖ 00 00) ⊕ label·2^48, then ‖ 00 00.
        let master_salt = hex("a0a1a2a3a4a5a6a7a8a9aaab");
        for (suite, master_key, rtp_key, rtp_salt, rtcp_key, rtcp_salt) in [
            (
                Suite::AeadAes128Gcm,
                KEY_128,
                "077c6143cb221bc355ff23d5f984a16e",
                "9af3e95364ebac9c99c5a7c4",
                "615dcd9042600666f6fd4d9e4fe4519f",
                "fcca937b9112a500dac72269",
            ),
            (
                Suite::AeadAes256Gcm,
                KEY_256,
                "b7a435ce454463b760dc82c838468a115c699625af4b93a0f8220a2a6119c5d0",
                "944bd21c268a962cd09c674a",
                "3c90f52a0a13ff8a853397cadc245b9eac76b36edb4a6062bf624aa1174eebf2",
                "258c540cf38ddd40848ceaed",
            ),
        ] {
            let mut derived = SrtpContext::new(suite, &hex(master_key), &master_salt).unwrap();
            let mut rtp = gcm_session(suite, rtp_key, rtp_salt);
            let mut rtcp = gcm_session(suite, rtcp_key, rtcp_salt);
            let packet = hex(RTP_7714);
            let (mut a, mut b) = (vec![0u8; 80], vec![0u8; 80]);
            a[..packet.len()].copy_from_slice(&packet);
            b[..packet.len()].copy_from_slice(&packet);
            let n = derived.protect_rtp(&mut a, packet.len()).unwrap();
            rtp.protect_rtp(&mut b, packet.len()).unwrap();
            assert_eq!(a[..n], b[..n]);
            let packet = hex(RTCP_7714);
            a[..packet.len()].copy_from_slice(&packet);
            b[..packet.len()].copy_from_slice(&packet);
            let n = derived.protect_rtcp(&mut a, packet.len()).unwrap();
            rtcp.protect_rtcp(&mut b, packet.len()).unwrap();
            assert_eq!(a[..n], b[..n]);
        }
    }

    #[test]
    fn the_index_follows_the_wrap_both_ways() {
        let at = |highest: u64| Window { highest, seen: 1 };
        assert_eq!(estimate_index(None, 0), Some(0), "a first packet has ROC 0");
        assert_eq!(estimate_index(None, 65_535), Some(65_535));
        assert_eq!(estimate_index(Some(&at(65_535)), 2), Some(0x1_0002));
        assert_eq!(estimate_index(Some(&at(0x1_0002)), 65_534), Some(65_534));
        // Half the sequence space away decides the direction.
        assert_eq!(estimate_index(Some(&at(0x5_8000)), 0x0001), Some(0x5_0001));
        assert_eq!(estimate_index(Some(&at(0x5_8002)), 0x0001), Some(0x6_0001));
        assert_eq!(estimate_index(Some(&at(0x5_7fff)), 0xffff), Some(0x5_ffff));
        assert_eq!(estimate_index(Some(&at(0x5_7ffe)), 0xffff), Some(0x4_ffff));
        // Before index 0: older than the stream itself.
        assert_eq!(estimate_index(Some(&at(100)), 65_000), None);
    }

    #[test]
    fn the_window_remembers_64_packets() {
        let mut window = Window {
            highest: 1000,
            seen: 1,
        };
        assert!(window.is_replay(1000));
        assert!(!window.is_replay(999));
        window.accept(999);
        assert!(window.is_replay(999));
        assert!(!window.is_replay(1000 - 63));
        assert!(window.is_replay(1000 - 64), "older than the window");
        window.accept(1100);
        assert!(!window.is_replay(1099) && window.is_replay(1100));
        assert!(window.is_replay(1000), "now behind the window");
        window.accept(1101);
        assert!(window.is_replay(1100) && window.is_replay(1101));
    }
}
