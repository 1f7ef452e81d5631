//! Server-side digest authentication: RFC 3261 §22, RFC 7616 and RFC 8760
//! (SHA-256 for SIP). Nonces are stateless — a timestamp, random bytes and
//! an HMAC over both with a server secret — so any node holding the
//! secret verifies them;
//! only the nonce counts seen are remembered, to refuse replays, and only
//! for the life of a nonce.

use dashmap::DashMap;
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;
use trunkline_sip::Auth;

/// A digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, what most phones still use.
    Md5,
    /// `SHA-256` (RFC 8760).
    Sha256,
}

impl Algorithm {
    /// The `algorithm` parameter value.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// The algorithm of an `algorithm` parameter; MD5 when absent (RFC 7616
    /// §3.3). `None` for one this server does not implement.
    pub fn from_param(param: Option<&str>) -> Option<Algorithm> {
        match param {
            None => Some(Algorithm::Md5),
            Some(p) if p.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(p) if p.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            Some(_) => None,
        }
    }

    /// The lower-case hex hash of `parts` joined by `:`.
    pub fn hash(self, parts: &[&[u8]]) -> String {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> String {
            let mut d = D::new();
            for (n, part) in parts.iter().enumerate() {
                if n > 0 {
                    d.update(b":");
                }
                d.update(part);
            }
            hex(&d.finalize())
        }
        match self {
            Algorithm::Md5 => run::<Md5>(parts),
            Algorithm::Sha256 => run::<Sha256>(parts),
        }
    }

    /// HA1 = H(username:realm:password), what a backend may store instead
    /// of the password.
    pub fn ha1(self, username: &str, realm: &str, password: &str) -> String {
        self.hash(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
    }
}

/// What a user's account holds to check a response with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    /// The password itself.
    Password(String),
    /// HA1 in hex; 32 digits is MD5, 64 is SHA-256. It only checks
    /// responses made with its own algorithm.
    Ha1(String),
}

impl Secret {
    /// A password as user stores keep it: 32 or 64 hex digits is an MD5 or
    /// SHA-256 HA1, anything else the password itself. (A plain password
    /// that happens to look like a hash is misread: stores should not hold
    /// such passwords.)
    pub fn from_stored(password: String) -> Secret {
        let hex = password.bytes().all(|c| c.is_ascii_hexdigit());
        if hex && matches!(password.len(), 32 | 64) {
            Secret::Ha1(password)
        } else {
            Secret::Password(password)
        }
    }

    /// HA1 for `algorithm`, if this secret can give it.
    fn ha1(&self, algorithm: Algorithm, username: &str, realm: &str) -> Option<String> {
        match self {
            Secret::Password(p) => Some(algorithm.ha1(username, realm, p)),
            Secret::Ha1(h) => {
                let fits = match algorithm {
                    Algorithm::Md5 => h.len() == 32,
                    Algorithm::Sha256 => h.len() == 64,
                };
                fits.then(|| h.to_ascii_lowercase())
            }
        }
    }
}

/// The result of checking credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The response is right and the nonce fresh.
    Valid,
    /// The response is right but the nonce expired: challenge again with
    /// `stale=true` and the client retries without asking the user.
    Stale,
    /// Wrong; the reason is for the log, never for the client.
    Invalid(&'static str),
}

/// Digest settings.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// The realm, usually the SIP domain.
    pub realm: String,
    /// How long a nonce is good for. 5 minutes by default.
    pub nonce_lifetime: Duration,
    /// The algorithms offered, one challenge each, in this order. MD5
    /// then SHA-256 by default: RFC 8760 would put SHA-256 first, but many
    /// phones (and SIPp) answer the first challenge whatever its algorithm
    /// and fail on SHA-256; clients that know SHA-256 still find it.
    pub algorithms: Vec<Algorithm>,
}

impl DigestConfig {
    /// `realm` with the defaults.
    pub fn new(realm: impl Into<String>) -> DigestConfig {
        DigestConfig {
            realm: realm.into(),
            nonce_lifetime: Duration::from_secs(300),
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
        }
    }
}

/// Issues challenges and checks the answers.
#[derive(Debug)]
pub struct Digest {
    config: DigestConfig,
    key: [u8; 32],
    /// Nonce → the highest nonce count seen, for the nonce's life.
    counts: DashMap<String, u32>,
}

/// Bytes of a nonce: an 8-byte timestamp, 8 random bytes (two phones
/// challenged in the same second must not share a nonce, or their nonce
/// counts would collide) and a 16-byte tag.
const NONCE_BYTES: usize = 32;

impl Digest {
    /// A digest authenticator with `key` as the nonce secret. Nodes that
    /// share a key verify each other's nonces.
    pub fn new(config: DigestConfig, key: [u8; 32]) -> Digest {
        Digest {
            config,
            key,
            counts: DashMap::new(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &DigestConfig {
        &self.config
    }

    /// The `WWW-Authenticate` / `Proxy-Authenticate` values to send, one
    /// per algorithm, sharing one nonce.
    pub fn challenges(&self, now: SystemTime, stale: bool) -> Vec<String> {
        let nonce = self.nonce(seconds(now));
        let stale = if stale { ", stale=true" } else { "" };
        self.config
            .algorithms
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{stale}",
                    self.config.realm,
                    a.name()
                )
            })
            .collect()
    }

    fn nonce(&self, issued: u64) -> String {
        let mut bytes = [0u8; NONCE_BYTES];
        bytes[..8].copy_from_slice(&issued.to_be_bytes());
        bytes[8..16].copy_from_slice(&rand::random::<[u8; 8]>());
        let tag = self.tag(&bytes[..16]);
        bytes[16..].copy_from_slice(&tag);
        hex(&bytes)
    }

    /// HMAC-SHA256(key, timestamp ‖ random ‖ realm), cut to 16 bytes.
    fn tag(&self, stamp: &[u8]) -> [u8; 16] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(stamp);
        mac.update(self.config.realm.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full[..16]);
        tag
    }

    /// When a nonce of ours was issued; `None` if it is not ours.
    fn issued(&self, nonce: &str) -> Option<u64> {
        let bytes = unhex::<NONCE_BYTES>(nonce)?;
        let issued = u64::from_be_bytes(bytes[..8].try_into().ok()?);
        bool::from(self.tag(&bytes[..16]).ct_eq(&bytes[16..])).then_some(issued)
    }

    /// Checks the credentials `auth` of a request with `method` against
    /// the user's `secret`.
    pub fn verify(
        &self,
        now: SystemTime,
        auth: &Auth<'_>,
        method: &str,
        secret: &Secret,
    ) -> Verdict {
        use Verdict::Invalid;
        if !auth.is_digest() {
            return Invalid("not Digest");
        }
        let p = Credentials::of(auth);
        let (Some(username), Some(realm), Some(nonce), Some(uri), Some(response)) =
            (p.username, p.realm, p.nonce, p.uri, p.response)
        else {
            return Invalid("a parameter is missing");
        };
        if realm != self.config.realm {
            return Invalid("another realm");
        }
        let Some(algorithm) =
            Algorithm::from_param(p.algorithm).filter(|a| self.config.algorithms.contains(a))
        else {
            return Invalid("an algorithm not offered");
        };
        let Some(issued) = self.issued(nonce) else {
            return Invalid("a nonce not ours");
        };
        let nc = p.nc.and_then(|n| u32::from_str_radix(n, 16).ok());
        let (Some("auth"), Some(nc_text), Some(cnonce), Some(nc)) = (p.qop, p.nc, p.cnonce, nc)
        else {
            return Invalid("qop=auth with nc and cnonce is required");
        };
        let Some(ha1) = secret.ha1(algorithm, username, realm) else {
            return Invalid("the stored HA1 is for another algorithm");
        };
        let ha2 = algorithm.hash(&[method.as_bytes(), uri.as_bytes()]);
        let expected = algorithm.hash(&[
            ha1.as_bytes(),
            nonce.as_bytes(),
            nc_text.as_bytes(),
            cnonce.as_bytes(),
            b"auth",
            ha2.as_bytes(),
        ]);
        let given = response.to_ascii_lowercase();
        if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            return Invalid("wrong response");
        }
        let age = seconds(now).saturating_sub(issued);
        if age > self.config.nonce_lifetime.as_secs() {
            return Verdict::Stale;
        }
        // RFC 7616 §3.4: each request with a nonce raises its count.
        let mut last = self.counts.entry(nonce.to_owned()).or_insert(0);
        if nc <= *last {
            return Invalid("nonce count replayed");
        }
        *last = nc;
        Verdict::Valid
    }

    /// Forgets the counts of expired nonces; call now and then.
    pub fn sweep(&self, now: SystemTime) {
        let oldest = seconds(now).saturating_sub(self.config.nonce_lifetime.as_secs());
        self.counts
            .retain(|nonce, _| self.issued(nonce).is_some_and(|at| at >= oldest));
        // A burst of calls leaves the map at its peak size; give it back.
        self.counts.shrink_to_fit();
    }

    /// Nonces whose counts are remembered.
    pub fn remembered(&self) -> usize {
        self.counts.len()
    }
}

/// The client side: the `Authorization` value answering `challenge` for
/// a request with `method` to `uri` (RFC 7616 §3.4), with `qop=auth` when
/// the challenge offers it. `None` for an algorithm this crate does not
/// implement or a challenge without realm or nonce.
pub fn authorization(
    challenge: &Auth<'_>,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    cnonce: &str,
    nc: u32,
) -> Option<String> {
    let algorithm = Algorithm::from_param(challenge.algorithm())?;
    let (realm, nonce) = (challenge.realm()?, challenge.nonce()?);
    let ha1 = algorithm.ha1(username, realm, password);
    let ha2 = algorithm.hash(&[method.as_bytes(), uri.as_bytes()]);
    let auth_qop = challenge
        .qop()
        .is_some_and(|q| q.split(',').any(|o| o.trim() == "auth"));
    let algorithm_name = algorithm.name();
    if !auth_qop {
        let response = algorithm.hash(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]);
        return Some(format!(
            "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", \
             uri=\"{uri}\", response=\"{response}\", algorithm={algorithm_name}"
        ));
    }
    let nc = format!("{nc:08x}");
    let response = algorithm.hash(&[
        ha1.as_bytes(),
        nonce.as_bytes(),
        nc.as_bytes(),
        cnonce.as_bytes(),
        b"auth",
        ha2.as_bytes(),
    ]);
    let opaque = challenge
        .opaque()
        .map(|o| format!(", opaque=\"{o}\""))
        .unwrap_or_default();
    Some(format!(
        "Digest username=\"{username}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm={algorithm_name}, qop=auth, nc={nc}, \
         cnonce=\"{cnonce}\"{opaque}"
    ))
}

/// The parameters `verify` reads, found in one pass over the header
/// (looking each up by name would rescan it every time).
#[derive(Default)]
struct Credentials<'a> {
    username: Option<&'a str>,
    realm: Option<&'a str>,
    nonce: Option<&'a str>,
    uri: Option<&'a str>,
    response: Option<&'a str>,
    algorithm: Option<&'a str>,
    qop: Option<&'a str>,
    nc: Option<&'a str>,
    cnonce: Option<&'a str>,
}

impl<'a> Credentials<'a> {
    fn of(auth: &Auth<'a>) -> Credentials<'a> {
        let mut c = Credentials::default();
        for (name, value) in auth.params() {
            let slot = match name.to_ascii_lowercase().as_str() {
                "username" => &mut c.username,
                "realm" => &mut c.realm,
                "nonce" => &mut c.nonce,
                "uri" => &mut c.uri,
                "response" => &mut c.response,
                "algorithm" => &mut c.algorithm,
                "qop" => &mut c.qop,
                "nc" => &mut c.nc,
                "cnonce" => &mut c.cnonce,
                _ => continue,
            };
            // The first of a repeated parameter counts, as `Auth::param`.
            slot.get_or_insert(value);
        }
        c
    }
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}
