//! SDES key exchange (RFC 4568): the `a=crypto` attribute value —
//! `<tag> <suite> inline:<base64 key‖salt>[|<lifetime>][|<MKI>:<length>]
//! [<session params>]`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::fmt;

/// Why an `a=crypto` value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdesError {
    /// Fields missing or out of order.
    #[error("a=crypto is `<tag> <suite> inline:<key>`")]
    Syntax,
    /// The key is not base64.
    #[error("the inline key is not base64")]
    Base64,
    /// The key and salt do not have the suite's length.
    #[error("the {suite} key and salt are {expected} bytes, got {got}")]
    KeyLength {
        /// The suite.
        suite: String,
        /// Its key plus salt length.
        expected: usize,
        /// What the attribute holds.
        got: usize,
    },
}

/// An SRTP crypto suite of RFC 4568 / RFC 7714 this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// AES counter mode, 128-bit key, HMAC-SHA1 80-bit tag.
    AesCm128HmacSha1_80,
    /// The same with a 32-bit tag.
    AesCm128HmacSha1_32,
    /// AES-GCM, 128-bit key (RFC 7714).
    AeadAes128Gcm,
    /// AES-GCM, 256-bit key (RFC 7714).
    AeadAes256Gcm,
}

impl Suite {
    /// The name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
        }
    }

    /// The suite of a name.
    pub fn from_name(name: &str) -> Option<Suite> {
        [
            Suite::AesCm128HmacSha1_80,
            Suite::AesCm128HmacSha1_32,
            Suite::AeadAes128Gcm,
            Suite::AeadAes256Gcm,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Suite::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master salt length in bytes: 14 for AES-CM, 12 for GCM.
    pub fn salt_len(self) -> usize {
        match self {
            Suite::AeadAes128Gcm | Suite::AeadAes256Gcm => 12,
            _ => 14,
        }
    }
}

/// One `a=crypto` offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag that pairs an answer with its offer.
    pub tag: u32,
    /// The suite.
    pub suite: Suite,
    /// Master key then master salt.
    pub key_salt: Vec<u8>,
    /// The `|lifetime` and `|MKI:length` parts, as written.
    pub key_params: Vec<String>,
    /// Session parameters after the key, as written.
    pub session_params: Vec<String>,
}

impl CryptoAttribute {
    /// Reads an `a=crypto` value (without `a=crypto:`). Suites this crate
    /// does not implement are `Ok(None)`: an offer may list them.
    pub fn parse(value: &str) -> Result<Option<CryptoAttribute>, SdesError> {
        let mut fields = value.split_whitespace();
        let (Some(tag), Some(suite), Some(key)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(SdesError::Syntax);
        };
        let tag = tag.parse().map_err(|_| SdesError::Syntax)?;
        let Some(suite) = Suite::from_name(suite) else {
            return Ok(None);
        };
        // Several keys (`inline:a;inline:b`) are allowed; the first counts.
        let first = key.split(';').next().unwrap_or_default();
        let mut parts = first
            .strip_prefix("inline:")
            .ok_or(SdesError::Syntax)?
            .split('|');
        let key_salt = STANDARD
            .decode(parts.next().unwrap_or_default())
            .map_err(|_| SdesError::Base64)?;
        let expected = suite.key_len() + suite.salt_len();
        if key_salt.len() != expected {
            return Err(SdesError::KeyLength {
                suite: suite.name().into(),
                expected,
                got: key_salt.len(),
            });
        }
        Ok(Some(CryptoAttribute {
            tag,
            suite,
            key_salt,
            key_params: parts.map(str::to_owned).collect(),
            session_params: fields.map(str::to_owned).collect(),
        }))
    }

    /// A fresh attribute for `suite` with random key material.
    pub fn generate(tag: u32, suite: Suite, random: impl FnOnce(&mut [u8])) -> CryptoAttribute {
        let mut key_salt = vec![0; suite.key_len() + suite.salt_len()];
        random(&mut key_salt);
        CryptoAttribute {
            tag,
            suite,
            key_salt,
            key_params: Vec::new(),
            session_params: Vec::new(),
        }
    }

    /// The master key.
    pub fn key(&self) -> &[u8] {
        &self.key_salt[..self.suite.key_len()]
    }

    /// The master salt.
    pub fn salt(&self) -> &[u8] {
        &self.key_salt[self.suite.key_len()..]
    }
}

impl fmt::Display for CryptoAttribute {
    /// The attribute value, for `a=crypto:<value>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(&self.key_salt)
        )?;
        for p in &self.key_params {
            write!(f, "|{p}")?;
        }
        for p in &self.session_params {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_4568_example_reads_and_writes_back() {
        // RFC 4568 §4 (one key, lifetime and MKI).
        let value = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4 FEC_ORDER=FEC_SRTP";
        let attr = CryptoAttribute::parse(value).unwrap().unwrap();
        assert_eq!((attr.tag, attr.suite), (1, Suite::AesCm128HmacSha1_80));
        assert_eq!((attr.key().len(), attr.salt().len()), (16, 14));
        assert_eq!(attr.key_params, vec!["2^20", "1:4"]);
        assert_eq!(attr.session_params, vec!["FEC_ORDER=FEC_SRTP"]);
        assert_eq!(attr.to_string(), value);
    }

    #[test]
    fn unknown_suites_are_skipped_and_bad_keys_refused() {
        assert_eq!(
            CryptoAttribute::parse("2 F8_128_HMAC_SHA1_80 inline:abc"),
            Ok(None)
        );
        assert_eq!(
            CryptoAttribute::parse("1 AES_CM_128_HMAC_SHA1_80"),
            Err(SdesError::Syntax)
        );
        assert_eq!(
            CryptoAttribute::parse("1 AES_CM_128_HMAC_SHA1_80 inline:!!"),
            Err(SdesError::Base64)
        );
        assert!(matches!(
            CryptoAttribute::parse(
                "1 AEAD_AES_256_GCM inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"
            ),
            Err(SdesError::KeyLength {
                expected: 44,
                got: 30,
                ..
            })
        ));
        let fresh = CryptoAttribute::generate(3, Suite::AeadAes128Gcm, |b| b.fill(7));
        assert_eq!(
            CryptoAttribute::parse(&fresh.to_string()).unwrap(),
            Some(fresh)
        );
    }
}
