//! Digest authentication: the RFC 7616 §3.9.1 example, and our nonces'
//! lifetime, replay protection and HA1 storage.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::time::{Duration, SystemTime};
use trunkline_registrar::{Algorithm, Digest, DigestConfig, Secret, Verdict, authorization};
use trunkline_sip::Message;

#[test]
fn the_rfc_7616_example_responses() {
    // RFC 7616 §3.9.1: user Mufasa, password "Circle of Life", GET.
    let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    for (algorithm, expected) in [
        (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
        (
            Algorithm::Sha256,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ] {
        let ha1 = algorithm.ha1("Mufasa", "http-auth@example.org", "Circle of Life");
        let ha2 = algorithm.hash(&[b"GET", b"/dir/index.html"]);
        let response = algorithm.hash(&[
            ha1.as_bytes(),
            nonce.as_bytes(),
            b"00000001",
            cnonce.as_bytes(),
            b"auth",
            ha2.as_bytes(),
        ]);
        assert_eq!(response, expected, "{algorithm:?}");
    }
}

const REALM: &str = "pbx.example.com";

fn digest() -> Digest {
    Digest::new(DigestConfig::new(REALM), [7; 32])
}

/// The nonce of a challenge header value.
fn nonce_of(challenge: &str) -> String {
    let start = challenge.find("nonce=\"").unwrap() + 7;
    challenge[start..].split('"').next().unwrap().to_owned()
}

/// What a phone sends back: a REGISTER carrying the Authorization that
/// answers a challenge with `nonce` and `algorithm`.
fn answer(nonce: &str, algorithm: Algorithm, password: &str, nc: u32) -> Message {
    let uri = "sip:pbx.example.com";
    let challenge = Message::parse_slice(
        format!(
            "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
             To: <sip:a@b>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\
             WWW-Authenticate: Digest realm=\"{REALM}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"\r\n\r\n",
            algorithm.name()
        )
        .as_bytes(),
    )
    .unwrap();
    let offer = challenge.www_authenticates().next().unwrap();
    let credentials =
        authorization(&offer, "REGISTER", uri, "1001", password, "0a4f113b", nc).unwrap();
    let text = format!(
        "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
         From: <sip:1001@{REALM}>;tag=1\r\nTo: <sip:1001@{REALM}>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\
         Authorization: {credentials}\r\nContent-Length: 0\r\n\r\n"
    );
    Message::parse_slice(text.as_bytes()).unwrap()
}

fn verify(digest: &Digest, now: SystemTime, request: &Message, secret: &Secret) -> Verdict {
    let auth = request.authorizations().next().unwrap();
    digest.verify(now, &auth, "REGISTER", secret)
}

#[test]
fn both_algorithms_are_offered_and_checked() {
    let digest = digest();
    let now = SystemTime::now();
    let challenges = digest.challenges(now, false);
    assert_eq!(challenges.len(), 2);
    assert!(challenges[0].contains("algorithm=MD5") && challenges[1].contains("algorithm=SHA-256"));
    assert!(
        challenges
            .iter()
            .all(|c| c.contains("qop=\"auth\"") && !c.contains("stale"))
    );
    let nonce = nonce_of(&challenges[0]);
    let secret = Secret::Password("secret".into());
    for (n, algorithm) in [Algorithm::Sha256, Algorithm::Md5].into_iter().enumerate() {
        let right = answer(&nonce, algorithm, "secret", n as u32 + 1);
        assert_eq!(
            verify(&digest, now, &right, &secret),
            Verdict::Valid,
            "{algorithm:?}"
        );
    }
    let wrong = answer(&nonce, Algorithm::Md5, "guess", 3);
    assert_eq!(
        verify(&digest, now, &wrong, &secret),
        Verdict::Invalid("wrong response")
    );
}

#[test]
fn a_replayed_nonce_count_is_refused() {
    let digest = digest();
    let now = SystemTime::now();
    let nonce = nonce_of(&digest.challenges(now, false)[0]);
    let secret = Secret::Password("secret".into());
    let first = answer(&nonce, Algorithm::Sha256, "secret", 1);
    assert_eq!(verify(&digest, now, &first, &secret), Verdict::Valid);
    assert_eq!(
        verify(&digest, now, &first, &secret),
        Verdict::Invalid("nonce count replayed")
    );
    let next = answer(&nonce, Algorithm::Sha256, "secret", 2);
    assert_eq!(verify(&digest, now, &next, &secret), Verdict::Valid);
}

#[test]
fn an_expired_nonce_is_stale_and_forgotten() {
    let digest = digest();
    let then = SystemTime::now();
    let nonce = nonce_of(&digest.challenges(then, false)[0]);
    let secret = Secret::Password("secret".into());
    assert_eq!(
        verify(
            &digest,
            then,
            &answer(&nonce, Algorithm::Md5, "secret", 1),
            &secret
        ),
        Verdict::Valid
    );
    assert_eq!(digest.remembered(), 1);
    let later = then + Duration::from_secs(301);
    let again = answer(&nonce, Algorithm::Md5, "secret", 2);
    assert_eq!(verify(&digest, later, &again, &secret), Verdict::Stale);
    // A stale nonce with a wrong password is just wrong.
    let wrong = answer(&nonce, Algorithm::Md5, "guess", 3);
    assert_eq!(
        verify(&digest, later, &wrong, &secret),
        Verdict::Invalid("wrong response")
    );
    assert!(digest.challenges(later, true)[0].ends_with(", stale=true"));
    digest.sweep(later);
    assert_eq!(digest.remembered(), 0);
}

#[test]
fn nonces_are_bound_to_the_key_and_realm() {
    let now = SystemTime::now();
    let nonce = nonce_of(&digest().challenges(now, false)[0]);
    let other = Digest::new(DigestConfig::new(REALM), [8; 32]);
    let secret = Secret::Password("secret".into());
    let request = answer(&nonce, Algorithm::Md5, "secret", 1);
    assert_eq!(
        verify(&other, now, &request, &secret),
        Verdict::Invalid("a nonce not ours")
    );
    let mut tampered = nonce.clone();
    tampered.replace_range(0..1, if nonce.starts_with('0') { "1" } else { "0" });
    let request = answer(&tampered, Algorithm::Md5, "secret", 1);
    assert_eq!(
        verify(&digest(), now, &request, &secret),
        Verdict::Invalid("a nonce not ours")
    );
}

#[test]
fn a_stored_ha1_checks_its_own_algorithm_only() {
    let digest = digest();
    let now = SystemTime::now();
    let nonce = nonce_of(&digest.challenges(now, false)[0]);
    let md5 = Secret::Ha1(Algorithm::Md5.ha1("1001", REALM, "secret").to_uppercase());
    let request = answer(&nonce, Algorithm::Md5, "secret", 1);
    assert_eq!(verify(&digest, now, &request, &md5), Verdict::Valid);
    let request = answer(&nonce, Algorithm::Sha256, "secret", 2);
    assert_eq!(
        verify(&digest, now, &request, &md5),
        Verdict::Invalid("the stored HA1 is for another algorithm")
    );
}

#[test]
fn two_phones_challenged_in_the_same_second_do_not_share_a_nonce() {
    let digest = digest();
    let now = SystemTime::now();
    let (a, b) = (
        nonce_of(&digest.challenges(now, false)[0]),
        nonce_of(&digest.challenges(now, false)[0]),
    );
    assert_ne!(a, b);
    let secret = Secret::Password("secret".into());
    for nonce in [a, b] {
        let first = answer(&nonce, Algorithm::Sha256, "secret", 1);
        assert_eq!(verify(&digest, now, &first, &secret), Verdict::Valid);
    }
}
