//! The headers every webhook request carries, and its signature.
//!
//! `X-Trunkline-Signature` is the lowercase hex HMAC-SHA256, keyed with the
//! hook's secret, of the `X-Trunkline-Timestamp` header's text, a full stop,
//! and the raw request body exactly as sent:
//!
//! ```text
//! hex(HMAC-SHA256(secret, "1708201234" + "." + body))
//! ```
//!
//! A receiver recomputes it over the bytes it received (before any JSON or
//! multipart parsing), compares in constant time, and rejects timestamps
//! too far from its clock (five minutes is usual) so a captured request
//! cannot be replayed later.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header carrying the signature (HTTP header names are
/// case-insensitive; hyper writes them in lowercase).
pub const SIGNATURE_HEADER: &str = "x-trunkline-signature";

/// The header carrying the signing time, in seconds since the Unix epoch.
pub const TIMESTAMP_HEADER: &str = "x-trunkline-timestamp";

/// The header carrying the delivery id: the same on every attempt of one
/// delivery, so a receiver can drop a repeat it has already handled.
pub const DELIVERY_HEADER: &str = "x-trunkline-delivery";

/// The signature of `body` sent at `timestamp` (the header's text).
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Whether `signature` (hex, either case) signs `body` sent at `timestamp`
/// with `secret`. Compares in constant time. It does not judge the
/// timestamp's age: that is the receiver's policy.
pub fn verify(secret: &[u8], timestamp: &str, body: &[u8], signature: &str) -> bool {
    let expected = sign(secret, timestamp, body);
    bool::from(
        expected
            .as_bytes()
            .ct_eq(signature.to_ascii_lowercase().as_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // printf '1708201234.{"a":1}' | openssl dgst -sha256 -hmac s3cret
        let expected = "3be74d9b7a5d6887a1502891c1fe40f9cf98ff8b47b6b83c3e6048a516fccf96";
        assert_eq!(sign(b"s3cret", "1708201234", br#"{"a":1}"#), expected);
        assert!(verify(b"s3cret", "1708201234", br#"{"a":1}"#, expected));
        let upper = expected.to_ascii_uppercase();
        assert!(verify(b"s3cret", "1708201234", br#"{"a":1}"#, &upper));
    }

    #[test]
    fn any_change_fails() {
        let good = sign(b"s3cret", "1708201234", b"body");
        assert!(!verify(b"other", "1708201234", b"body", &good));
        assert!(!verify(b"s3cret", "1708201235", b"body", &good));
        assert!(!verify(b"s3cret", "1708201234", b"bodY", &good));
        assert!(!verify(b"s3cret", "1708201234", b"body", &good[..10]));
    }
}
