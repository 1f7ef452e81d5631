//! The cryptographic primitives SRTP needs, behind a small provider trait
//! so the backend can change without touching the packet logic.
//! [`RustCrypto`] implements them with the RustCrypto crates (`aes`, `ctr`,
//! `hmac`, `sha1`, `aes-gcm`), which pick AES-NI, CLMUL and SHA-NI at run
//! time where the CPU has them.

use aes::cipher::{BlockCipherEncrypt, InnerIvInit, KeyInit, StreamCipherCore};
use aes::{Aes128, Aes256};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// AES in counter mode (RFC 3711 §4.1.1): the SRTP cipher of the AES-CM
/// suites and the key derivation function of every suite.
pub trait AesCtr: Clone + Send + Sync + Sized {
    /// A cipher for a 16- or 32-byte key; `None` for any other length.
    fn new(key: &[u8]) -> Option<Self>;
    /// XORs into `data` the keystream that starts at counter block `iv`
    /// (the whole block counts up, big-endian).
    fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]);
}

/// HMAC-SHA1 (RFC 2104) with a fixed key: the SRTP authentication
/// transform of the AES-CM suites.
pub trait HmacSha1: Clone + Send + Sync + Sized {
    /// A MAC keyed with `key`.
    fn new(key: &[u8]) -> Self;
    /// The MAC of `data` followed by `trailer`: SRTP authenticates the
    /// packet and then its rollover counter, which is not in the packet.
    fn sign(&self, data: &[u8], trailer: &[u8]) -> [u8; 20];
}

/// AES-GCM with a 12-byte nonce and a 16-byte tag (RFC 7714).
pub trait AesGcm: Clone + Send + Sync + Sized {
    /// A cipher for a 16- or 32-byte key; `None` for any other length.
    fn new(key: &[u8]) -> Option<Self>;
    /// Encrypts `data` in place and returns the tag over `aad` and it.
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16];
    /// Checks `tag` over `aad` and `data`, then decrypts `data` in place.
    /// Returns false, `data` untouched, when the tag does not match.
    fn open(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8; 16]) -> bool;
}

/// A set of implementations of the SRTP primitives.
pub trait CryptoProvider {
    /// AES counter mode.
    type AesCtr: AesCtr;
    /// HMAC-SHA1.
    type HmacSha1: HmacSha1;
    /// AES-GCM.
    type AesGcm: AesGcm;
}

/// The RustCrypto implementations: constant-time AES (AES-NI where
/// present), SHA-1 with SHA-NI where present, GHASH with CLMUL.
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto;

impl CryptoProvider for RustCrypto {
    type AesCtr = RustAesCtr;
    type HmacSha1 = RustHmacSha1;
    type AesGcm = RustAesGcm;
}

/// [`AesCtr`] over the `aes` and `ctr` crates.
#[derive(Clone)]
pub enum RustAesCtr {
    /// A 128-bit key.
    Aes128(Aes128),
    /// A 256-bit key.
    Aes256(Aes256),
}

impl std::fmt::Debug for RustAesCtr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str(match self {
            RustAesCtr::Aes128(_) => "RustAesCtr::Aes128",
            RustAesCtr::Aes256(_) => "RustAesCtr::Aes256",
        })
    }
}

impl AesCtr for RustAesCtr {
    fn new(key: &[u8]) -> Option<Self> {
        match key.len() {
            16 => Aes128::new_from_slice(key).ok().map(RustAesCtr::Aes128),
            32 => Aes256::new_from_slice(key).ok().map(RustAesCtr::Aes256),
            _ => None,
        }
    }

    fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        match self {
            RustAesCtr::Aes128(aes) => ctr_over(aes, iv, data),
            RustAesCtr::Aes256(aes) => ctr_over(aes, iv, data),
        }
    }
}

/// Counter mode over a borrowed key schedule: nothing is expanded or
/// copied per packet, and `ctr` hands AES-NI several blocks at a time.
fn ctr_over<C: BlockCipherEncrypt<BlockSize = aes::cipher::consts::U16>>(
    cipher: &C,
    iv: &[u8; 16],
    data: &mut [u8],
) {
    // A 128-bit counter cannot run out within a datagram, so this never
    // meets the end of the keystream.
    ctr::CtrCore::<&C, ctr::flavors::Ctr128BE>::inner_iv_init(cipher, iv.into())
        .apply_keystream_partial(data.into());
}

/// [`HmacSha1`] over the `hmac` and `sha1` crates.
#[derive(Clone)]
pub struct RustHmacSha1(Hmac<Sha1>);

impl std::fmt::Debug for RustHmacSha1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RustHmacSha1")
    }
}

impl HmacSha1 for RustHmacSha1 {
    fn new(key: &[u8]) -> Self {
        RustHmacSha1(
            <Hmac<Sha1> as KeyInit>::new_from_slice(key)
                .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length")),
        )
    }

    fn sign(&self, data: &[u8], trailer: &[u8]) -> [u8; 20] {
        // The clone starts from the keyed state: the key's two pad blocks
        // were hashed once, at `new`.
        let mut mac = self.0.clone();
        mac.update(data);
        mac.update(trailer);
        mac.finalize().into_bytes().into()
    }
}

/// [`AesGcm`] over the `aes-gcm` crate.
#[derive(Clone)]
pub enum RustAesGcm {
    /// A 128-bit key.
    Aes128(Aes128Gcm),
    /// A 256-bit key.
    Aes256(Aes256Gcm),
}

impl std::fmt::Debug for RustAesGcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RustAesGcm::Aes128(_) => "RustAesGcm::Aes128",
            RustAesGcm::Aes256(_) => "RustAesGcm::Aes256",
        })
    }
}

impl AesGcm for RustAesGcm {
    fn new(key: &[u8]) -> Option<Self> {
        match key.len() {
            16 => Aes128Gcm::new_from_slice(key).ok().map(RustAesGcm::Aes128),
            32 => Aes256Gcm::new_from_slice(key).ok().map(RustAesGcm::Aes256),
            _ => None,
        }
    }

    fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        let tag = match self {
            RustAesGcm::Aes128(c) => c.encrypt_inout_detached(nonce.into(), aad, data.into()),
            RustAesGcm::Aes256(c) => c.encrypt_inout_detached(nonce.into(), aad, data.into()),
        };
        // Only inputs beyond 2^36 bytes fail, far past any UDP datagram.
        tag.unwrap_or_else(|_| unreachable!("GCM input over 2^36 bytes"))
            .into()
    }

    fn open(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8; 16]) -> bool {
        match self {
            RustAesGcm::Aes128(c) => {
                c.decrypt_inout_detached(nonce.into(), aad, data.into(), tag.into())
            }
            RustAesGcm::Aes256(c) => {
                c.decrypt_inout_detached(nonce.into(), aad, data.into(), tag.into())
            }
        }
        .is_ok()
    }
}
