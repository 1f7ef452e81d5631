//! The cryptographic primitives SRTP needs, behind a small provider trait
//! so the backend can change without touching the packet logic.
//! [`DefaultCrypto`] takes each primitive from where it measured fastest
//! on a G.711 packet (`benches/srtp.rs`): AES counter mode from the `aes`
//! and `ctr` crates, HMAC-SHA1 driven straight over the `sha1` crate's
//! compression function, AES-GCM from `ring`. All of them pick AES-NI,
//! VAES, CLMUL and SHA-NI at run time where the CPU has them.

use aes::cipher::{BlockCipherEncrypt, InnerIvInit, KeyInit, StreamCipherCore};
use aes::{Aes128, Aes256};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha1::Digest;
use sha1::block_api::compress;
use std::cell::RefCell;

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
    /// The MAC of `data` followed, for SRTP, by the rollover counter
    /// (big-endian), which is authenticated but not in the packet
    /// (RFC 3711 §4.2); SRTCP has none.
    fn sign(&self, data: &[u8], roc: Option<u32>) -> [u8; 20];
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

/// The primitives [`SrtpContext`](super::SrtpContext) uses unless told
/// otherwise: [`RustAesCtr`], [`RustHmacSha1`], [`RingAesGcm`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultCrypto;

impl CryptoProvider for DefaultCrypto {
    type AesCtr = RustAesCtr;
    type HmacSha1 = RustHmacSha1;
    type AesGcm = RingAesGcm;
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
/// copied per packet. (Measured on a 160-byte payload, this beat both a
/// hand-rolled loop over `encrypt_blocks` and aws-lc's `AES_ctr128`.)
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

/// The SHA-1 block.
const BLOCK: usize = 64;

/// [`HmacSha1`] driving the `sha1` crate's compression function (SHA-NI
/// where present) directly. The key's inner and outer pad blocks are
/// compressed once, at `new`; a MAC then costs its blocks and little else
/// (four blocks for a G.711 packet): no hasher is cloned, no input is
/// buffered, the padding is built in place. Against `hmac`'s clone,
/// update and finalize this took a quarter off each MAC. What is left is
/// SHA-1 itself: each block waits on the one before, about 40 ns even
/// with SHA-NI, so the blocks are most of an AES-CM packet's cost.
#[derive(Clone)]
pub struct RustHmacSha1 {
    /// The state after the key ⊕ ipad block.
    inner: [u32; 5],
    /// The state after the key ⊕ opad block.
    outer: [u32; 5],
}

impl std::fmt::Debug for RustHmacSha1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pad states are as good as the key.
        f.write_str("RustHmacSha1")
    }
}

/// SHA-1's initial state (FIPS 180-4 §5.3.1).
const SHA1_INIT: [u32; 5] = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];

/// The bit length of `bytes` bytes hashed after one pad block, as SHA-1's
/// padding ends.
fn bit_len(bytes: usize) -> [u8; 8] {
    ((BLOCK as u64 + bytes as u64) * 8).to_be_bytes()
}

impl HmacSha1 for RustHmacSha1 {
    fn new(key: &[u8]) -> Self {
        // RFC 2104 §2: a key longer than the block is hashed first.
        let digest;
        let key = if key.len() > BLOCK {
            digest = sha1::Sha1::digest(key);
            &digest[..]
        } else {
            key
        };
        let pad_state = |pad: u8| {
            let mut block = [pad; BLOCK];
            for (b, k) in block.iter_mut().zip(key) {
                *b ^= k;
            }
            let mut state = SHA1_INIT;
            compress(&mut state, &[block]);
            state
        };
        RustHmacSha1 {
            inner: pad_state(0x36),
            outer: pad_state(0x5c),
        }
    }

    fn sign(&self, data: &[u8], roc: Option<u32>) -> [u8; 20] {
        // The inner hash: the data's whole blocks straight from the
        // packet, then one or two blocks holding the rest of it, the
        // rollover counter and the padding.
        let mut state = self.inner;
        let (blocks, rest) = data.as_chunks::<BLOCK>();
        compress(&mut state, blocks);
        let mut tail = [[0u8; BLOCK]; 2];
        let flat = tail.as_flattened_mut();
        flat[..rest.len()].copy_from_slice(rest);
        let mut end = rest.len();
        let mut message_len = data.len();
        if let Some(roc) = roc {
            flat[end..end + 4].copy_from_slice(&roc.to_be_bytes());
            end += 4;
            message_len += 4;
        }
        flat[end] = 0x80;
        // 0x80 and the 8-byte length must fit after the message.
        let tail = if end + 9 <= BLOCK {
            &mut tail[..1]
        } else {
            &mut tail[..]
        };
        let last = tail.len() * BLOCK;
        tail.as_flattened_mut()[last - 8..].copy_from_slice(&bit_len(message_len));
        compress(&mut state, tail);

        // The outer hash: one block, the inner digest and the padding.
        let mut block = [0u8; BLOCK];
        for (bytes, word) in block.chunks_exact_mut(4).zip(state) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        block[20] = 0x80;
        block[56..].copy_from_slice(&bit_len(20));
        let mut outer = self.outer;
        compress(&mut outer, &[block]);
        let mut mac = [0u8; 20];
        for (bytes, word) in mac.chunks_exact_mut(4).zip(outer) {
            bytes.copy_from_slice(&word.to_be_bytes());
        }
        mac
    }
}

/// [`AesGcm`] over `ring`, whose assembly interleaves AES and GHASH
/// (with VAES and AVX2, or AES-NI and CLMUL): sealing and opening a
/// G.711 payload took half the time of the `aes-gcm` crate, counting the
/// copy of the ciphertext that opening keeps.
#[derive(Clone)]
pub struct RingAesGcm(LessSafeKey);

impl std::fmt::Debug for RingAesGcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RingAesGcm")
            .field(self.0.algorithm())
            .finish()
    }
}

thread_local! {
    /// Where [`RingAesGcm::open`] keeps the ciphertext while `ring`
    /// decrypts it: one per thread, grown to the largest packet seen, so
    /// a packet costs a copy and no allocation.
    static CIPHERTEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl AesGcm for RingAesGcm {
    fn new(key: &[u8]) -> Option<Self> {
        let algorithm = match key.len() {
            16 => &AES_128_GCM,
            32 => &AES_256_GCM,
            _ => return None,
        };
        let key = UnboundKey::new(algorithm, key).ok()?;
        Some(RingAesGcm(LessSafeKey::new(key)))
    }

    fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> [u8; 16] {
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), data)
            // Only inputs beyond 2^36 bytes fail, far past any datagram.
            .unwrap_or_else(|_| unreachable!("GCM input over 2^36 bytes"));
        let mut out = [0u8; 16];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn open(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8; 16]) -> bool {
        // ring decrypts while it authenticates and zeroes the plaintext
        // when the tag is wrong; the packet must come back as it was, so
        // its ciphertext is kept aside and put back then.
        CIPHERTEXT.with_borrow_mut(|kept| {
            kept.clear();
            kept.extend_from_slice(data);
            let opened = self
                .0
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    (*tag).into(),
                    data,
                    0..,
                )
                .is_ok();
            if !opened {
                data.copy_from_slice(kept);
            }
            opened
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

    use super::*;

    /// HMAC-SHA1 as RFC 2104 defines it, over the `sha1` crate's hasher.
    fn reference_hmac(key: &[u8], message: &[u8]) -> [u8; 20] {
        let mut padded = [0u8; BLOCK];
        if key.len() > BLOCK {
            padded[..20].copy_from_slice(&sha1::Sha1::digest(key));
        } else {
            padded[..key.len()].copy_from_slice(key);
        }
        let pad = |byte: u8| padded.map(|k| k ^ byte);
        let inner = sha1::Sha1::new()
            .chain_update(pad(0x36))
            .chain_update(message)
            .finalize();
        sha1::Sha1::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize()
            .into()
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc_2202_hmac_sha1_vectors() {
        let cases: [(&[u8], &[u8], &str); 7] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b617318655057264e28bc0b6fb378c8ef146be00",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            ),
            (
                &[0xaa; 20],
                &[0xdd; 50],
                "125d7342b9ac11cd91a39af48aa17b4f63f175d3",
            ),
            (
                &[
                    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                    23, 24, 25,
                ],
                &[0xcd; 50],
                "4c9007f4026250c6bc8414f9bf50c86c2d7235da",
            ),
            (
                &[0x0c; 20],
                b"Test With Truncation",
                "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04",
            ),
            (
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "aa4ae5e15272d00e95705637ce8a3b55ed402112",
            ),
            (
                &[0xaa; 80],
                b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data",
                "e8e99d0f45237d786d6bbaa7965c7808bbff1a91",
            ),
        ];
        for (key, data, mac) in cases {
            assert_eq!(RustHmacSha1::new(key).sign(data, None).to_vec(), hex(mac));
        }
    }

    #[test]
    fn every_length_pads_like_the_reference() {
        // Lengths either side of each place the padding moves to a second
        // block (56 bytes, or 52 with a rollover counter) or a third.
        let key = [0x42; 20];
        let mac = RustHmacSha1::new(&key);
        let message: Vec<u8> = (0..300).map(|n| (n * 7) as u8).collect();
        for len in 0..=message.len() {
            let data = &message[..len];
            assert_eq!(mac.sign(data, None), reference_hmac(&key, data), "{len}");
            let roc = 0x0102_0304 + len as u32;
            let with_roc = [data, &roc.to_be_bytes()].concat();
            assert_eq!(
                mac.sign(data, Some(roc)),
                reference_hmac(&key, &with_roc),
                "{len} with the rollover counter"
            );
        }
    }

    #[test]
    fn a_failed_gcm_open_leaves_the_data_as_it_was() {
        let gcm = RingAesGcm::new(&[3; 16]).unwrap();
        let nonce = [4; 12];
        let mut data = *b"a packet's payload";
        let tag = gcm.seal(&nonce, b"header", &mut data);
        let sealed = data;
        let mut forged = tag;
        forged[0] ^= 1;
        assert!(!gcm.open(&nonce, b"header", &mut data, &forged));
        assert_eq!(data, sealed);
        assert!(gcm.open(&nonce, b"header", &mut data, &tag));
        assert_eq!(&data, b"a packet's payload");
    }
}
