//! REGISTER processing (RFC 3261 §10.3) with digest authentication.

use crate::digest::{Digest, DigestConfig, Verdict};
use crate::events::{EventKind, RegistrationEvent};
use crate::guard::{Guard, GuardConfig};
use crate::locator::{Applied, Binding, Change, Locator, LocatorError, Update};
use crate::users::{Lookup, User, UserBackend};
use std::time::{Duration, SystemTime};
use tokio::sync::broadcast;
use trunkline_sip::headers::Contact;
use trunkline_sip::{HeaderName, Message, MessageBuilder, Method, StatusCode};
use trunkline_transaction::{Peer, new_tag};

/// Events a slow subscriber may fall behind by.
const EVENT_BACKLOG: usize = 1024;

/// Registrar settings.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// The digest realm (usually the SIP domain) and nonce settings.
    pub digest: DigestConfig,
    /// Shorter requested expiries get 423 with this Min-Expires. 60 s.
    pub min_expires: u32,
    /// Longer ones are cut to this. 3600 s.
    pub max_expires: u32,
    /// When the request says nothing. 3600 s.
    pub default_expires: u32,
    /// Failed-authentication limits.
    pub guard: GuardConfig,
    /// The answer to a source or user over those limits. 403.
    pub blocked_status: StatusCode,
}

impl RegistrarConfig {
    /// Defaults for `realm`.
    pub fn new(realm: impl Into<String>) -> RegistrarConfig {
        RegistrarConfig {
            digest: DigestConfig::new(realm),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            guard: GuardConfig::default(),
            blocked_status: StatusCode::FORBIDDEN,
        }
    }
}

/// What the registrar did with a request.
#[derive(Debug)]
pub struct Handled {
    /// The response to send.
    pub response: Message,
    /// Bindings added or removed.
    pub events: Vec<RegistrationEvent>,
}

/// Why the contacts of a REGISTER cannot be applied.
enum Refusal {
    /// `Contact: *` with other contacts or a non-zero expiry.
    BadWildcard,
    /// An expiry under the minimum: 423 (§10.3 step 7).
    TooBrief,
}

/// Counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RegistrarStats {
    /// REGISTERs that changed or queried bindings.
    pub accepted: u64,
    /// Authentication failures (wrong password, unknown user, bad nonce).
    pub auth_failures: u64,
    /// Requests refused by the brute-force guard.
    pub blocked: u64,
}

/// The registrar: authenticates REGISTER requests and keeps the bindings
/// in a [`Locator`]. It does no I/O of its own; its user backend and
/// locator may.
#[derive(Debug)]
pub struct Registrar<L, U> {
    config: RegistrarConfig,
    digest: Digest,
    guard: Guard,
    locator: L,
    users: U,
    stats: std::sync::Mutex<RegistrarStats>,
    events: broadcast::Sender<RegistrationEvent>,
}

impl<L: Locator, U: UserBackend> Registrar<L, U> {
    /// A registrar whose nonces are signed with `key` (share it between
    /// nodes that serve one domain).
    pub fn new(config: RegistrarConfig, key: [u8; 32], locator: L, users: U) -> Self {
        Registrar {
            digest: Digest::new(config.digest.clone(), key),
            guard: Guard::new(config.guard),
            config,
            locator,
            users,
            stats: std::sync::Mutex::default(),
            events: broadcast::channel(EVENT_BACKLOG).0,
        }
    }

    /// Every registration event from now on, for as many subscribers as
    /// want them. A subscriber more than 1024 events behind loses the
    /// oldest (and is told so by the channel).
    pub fn subscribe(&self) -> broadcast::Receiver<RegistrationEvent> {
        self.events.subscribe()
    }

    fn publish(&self, events: &[RegistrationEvent]) {
        for event in events {
            // No subscriber is not an error.
            let _ = self.events.send(event.clone());
        }
    }

    /// The location service.
    pub fn locator(&self) -> &L {
        &self.locator
    }

    /// The counters.
    pub fn stats(&self) -> RegistrarStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, field: fn(&mut RegistrarStats) -> &mut u64) {
        *field(&mut self.stats.lock().unwrap_or_else(|p| p.into_inner())) += 1;
    }

    /// Removes the bindings lapsed at `now` (one `offline` event each) and
    /// forgets old nonce counts and failure windows. Call every few
    /// seconds.
    pub async fn expire(&self, now: SystemTime) -> Vec<RegistrationEvent> {
        self.digest.sweep(now);
        self.guard.sweep(now);
        let lapsed = self.locator.expire(now).await.unwrap_or_default();
        let events: Vec<_> = lapsed
            .iter()
            .map(|b| RegistrationEvent::new(EventKind::Offline, b, now))
            .collect();
        self.publish(&events);
        events
    }

    /// Removes every binding of the account `username`, whatever host its
    /// phones registered to, with an `unregistered` event each: a deleted
    /// account's phones stop ringing at once instead of when their
    /// registrations lapse. It reads every binding (a page at a time): an
    /// administrator's operation, not a call's.
    pub async fn forget_user(&self, username: &str, now: SystemTime) -> Vec<RegistrationEvent> {
        const PAGE: usize = 10_000;
        let mut aors = Vec::new();
        let mut offset = 0;
        while let Ok(page) = self.locator.list(offset, PAGE).await {
            let users_own = page.iter().filter(|b| user_of(&b.aor) == Some(username));
            aors.extend(users_own.map(|b| b.aor.clone()));
            if page.len() < PAGE {
                break;
            }
            offset += PAGE;
        }
        aors.sort_unstable();
        aors.dedup();
        let mut events = Vec::new();
        for aor in aors {
            let update = Update {
                // No REGISTER's: never out of order with the phone's own.
                call_id: String::new(),
                cseq: 0,
                now,
                change: Change::RemoveAll,
            };
            if let Ok(applied) = self.locator.update(&aor, update).await {
                let removed = applied.removed.iter();
                events.extend(
                    removed.map(|b| RegistrationEvent::new(EventKind::Unregistered, b, now)),
                );
            }
        }
        self.publish(&events);
        events
    }

    /// Authenticates `request` (RFC 3261 §22): `Ok` with the account when
    /// its credentials are right, else the response to send — a challenge
    /// (401 with WWW-Authenticate for REGISTER, 407 with
    /// Proxy-Authenticate for any other request), `stale=true` for an
    /// expired nonce, the blocked status past the failure limit, 403 for an
    /// account the backend refuses, 503 when the backend fails. An unknown
    /// user gets the same challenge as a wrong password.
    pub async fn authenticate(
        &self,
        now: SystemTime,
        request: &Message,
        source: Peer,
    ) -> Result<User, Message> {
        let tag = new_tag();
        let refuse =
            |builder: MessageBuilder| builder.build().unwrap_or_else(|_| bare(request, &tag));
        let reply = |status: StatusCode| request.response_to(status).to_tag(&tag);
        let register = request.method() == Some(&Method::Register);
        let (challenge_status, challenge_header) = if register {
            (StatusCode::UNAUTHORIZED, HeaderName::WwwAuthenticate)
        } else {
            (
                StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                HeaderName::ProxyAuthenticate,
            )
        };
        let method = request.method().map_or("", Method::as_str);
        let realm = self.config.digest.realm.as_str();
        let ours = |a: &trunkline_sip::Auth<'_>| a.is_digest() && a.realm() == Some(realm);
        let auth = if register {
            request.authorizations().find(ours)
        } else {
            request.proxy_authorizations().find(ours)
        };
        let ip = source.addr.ip();
        if self
            .guard
            .is_blocked(now, ip, auth.as_ref().and_then(|a| a.username()))
        {
            self.count(|s| &mut s.blocked);
            return Err(refuse(reply(self.config.blocked_status)));
        }
        let challenge = |stale: bool| {
            let mut builder = reply(challenge_status);
            for value in self.digest.challenges(now, stale) {
                builder = builder.header(challenge_header, value);
            }
            refuse(builder)
        };
        let Some(auth) = auth else {
            return Err(challenge(false));
        };
        let username = auth.username().unwrap_or_default();
        let (verdict, user) = match self.users.lookup(username, realm).await {
            Ok(Lookup::Found(user)) => (
                self.digest.verify(now, &auth, method, &user.secret),
                Some(user),
            ),
            // The same answer as a wrong password: never reveal which
            // user names exist.
            Ok(Lookup::Unknown) => (Verdict::Invalid("unknown user"), None),
            Ok(Lookup::Refused { reason }) => {
                tracing::info!(username, %reason, "refused by the user backend");
                return Err(refuse(reply(StatusCode::FORBIDDEN)));
            }
            Err(error) => {
                tracing::warn!(username, %error, "user backend failed; answering 503");
                return Err(refuse(
                    reply(StatusCode::SERVICE_UNAVAILABLE).header(HeaderName::RetryAfter, "10"),
                ));
            }
        };
        match (verdict, user) {
            (Verdict::Valid, Some(user)) => Ok(user),
            (Verdict::Stale, _) => Err(challenge(true)),
            _ => {
                self.count(|s| &mut s.auth_failures);
                self.guard.failed(now, ip, username);
                if self.guard.is_blocked(now, ip, Some(username)) {
                    self.count(|s| &mut s.blocked);
                    return Err(refuse(reply(self.config.blocked_status)));
                }
                Err(challenge(false))
            }
        }
    }

    /// Handles a REGISTER that came from `source` at `now`.
    pub async fn handle(&self, now: SystemTime, request: &Message, source: Peer) -> Handled {
        let tag = new_tag();
        let reply = |status: StatusCode| request.response_to(status).to_tag(&tag);
        let done = |builder: MessageBuilder| Handled {
            response: builder.build().unwrap_or_else(|_| bare(request, &tag)),
            events: Vec::new(),
        };
        if request.method() != Some(&Method::Register) {
            return done(
                reply(StatusCode::METHOD_NOT_ALLOWED).header(HeaderName::Allow, "REGISTER"),
            );
        }
        // Extensions we do not support (§10.3 step 2); Path we do.
        if let Some(unknown) = request.require().find(|o| !o.eq_ignore_ascii_case("path")) {
            return done(
                reply(StatusCode::BAD_EXTENSION)
                    .header(HeaderName::Unsupported, unknown.to_owned()),
            );
        }
        let user = match self.authenticate(now, request, source).await {
            Ok(user) => user,
            Err(refusal) => {
                return Handled {
                    response: refusal,
                    events: Vec::new(),
                };
            }
        };
        let username = user.username.as_str();
        let Some(aor) = request.to().and_then(|to| address_of_record(&to.uri())) else {
            return done(reply(StatusCode::BAD_REQUEST).reason("Bad To URI"));
        };
        if request
            .to()
            .and_then(|to| to.uri().as_sip().and_then(|s| s.user()))
            != Some(username)
        {
            return done(reply(StatusCode::FORBIDDEN).reason("Not your address-of-record"));
        }
        let change = match self.change(now, request, source, &aor) {
            Ok(Some(change)) => change,
            Ok(None) => {
                // No Contact: a query for the current bindings (§10.3 step 6).
                let current = self.locator.lookup(&aor, now).await.unwrap_or_default();
                self.count(|s| &mut s.accepted);
                return done(self.ok(reply(StatusCode::OK), request, &current, now));
            }
            Err(Refusal::BadWildcard) => {
                return done(
                    reply(StatusCode::BAD_REQUEST)
                        .reason("Contact * needs Expires: 0 and no other Contact"),
                );
            }
            Err(Refusal::TooBrief) => {
                let min = self.config.min_expires.to_string();
                return done(
                    reply(StatusCode::INTERVAL_TOO_BRIEF).header(HeaderName::MinExpires, min),
                );
            }
        };
        let update = Update {
            call_id: request.call_id().unwrap_or_default().to_owned(),
            cseq: request.cseq().map_or(0, |c| c.seq),
            now,
            change,
        };
        match self.locator.update(&aor, update).await {
            Ok(Applied {
                current,
                added,
                removed,
            }) => {
                self.count(|s| &mut s.accepted);
                let events = added
                    .iter()
                    .map(|b| RegistrationEvent::new(EventKind::Registered, b, now))
                    .chain(
                        removed
                            .iter()
                            .map(|b| RegistrationEvent::new(EventKind::Unregistered, b, now)),
                    )
                    .collect::<Vec<_>>();
                self.publish(&events);
                Handled {
                    response: self
                        .ok(reply(StatusCode::OK), request, &current, now)
                        .build()
                        .unwrap_or_else(|_| bare(request, &tag)),
                    events,
                }
            }
            Err(LocatorError::OutOfOrder) => {
                done(reply(StatusCode::SERVER_INTERNAL_ERROR).reason("CSeq out of order"))
            }
            Err(LocatorError::TooManyContacts) => {
                done(reply(StatusCode::FORBIDDEN).reason("Too many contacts"))
            }
            Err(LocatorError::Store(_)) => {
                done(reply(StatusCode::SERVICE_UNAVAILABLE).header(HeaderName::RetryAfter, "10"))
            }
        }
    }

    /// The change the request's Contact and Expires ask for; `None` for a
    /// query (no Contact).
    fn change(
        &self,
        now: SystemTime,
        request: &Message,
        source: Peer,
        aor: &str,
    ) -> Result<Option<Change>, Refusal> {
        let contacts: Vec<Contact<'_>> = request.contacts().collect();
        if contacts.is_empty() {
            return Ok(None);
        }
        let expires_header = request.expires();
        if contacts.contains(&Contact::Wildcard) {
            // `*` only alone and only with Expires: 0 (§10.3 step 6).
            return if contacts.len() == 1 && expires_header == Some(0) {
                Ok(Some(Change::RemoveAll))
            } else {
                Err(Refusal::BadWildcard)
            };
        }
        let call_id = request.call_id().unwrap_or_default();
        let cseq = request.cseq().map_or(0, |c| c.seq);
        let path: Vec<String> = request
            .paths()
            .map(|p| format!("<{}>{}", p.uri().as_str(), p.params().as_str()))
            .collect();
        let user_agent = request.user_agent().map(str::to_owned);
        let mut bindings = Vec::with_capacity(contacts.len());
        for contact in &contacts {
            let Contact::Address(address) = contact else {
                continue;
            };
            let asked = address
                .expires()
                .or(expires_header)
                .unwrap_or(self.config.default_expires);
            if asked != 0 && asked < self.config.min_expires {
                return Err(Refusal::TooBrief);
            }
            let granted = asked.min(self.config.max_expires);
            bindings.push(Binding {
                aor: aor.to_owned(),
                contact: address.uri().as_str().to_owned(),
                q: address.q(),
                expires_at: now + Duration::from_secs(u64::from(granted)),
                call_id: call_id.to_owned(),
                cseq,
                path: path.clone(),
                flow: source,
                user_agent: user_agent.clone(),
            });
        }
        Ok(Some(Change::Set(bindings)))
    }

    /// 200 OK listing every binding with its remaining time (§10.3 step 8).
    fn ok(
        &self,
        builder: MessageBuilder,
        request: &Message,
        current: &[Binding],
        now: SystemTime,
    ) -> MessageBuilder {
        let mut builder = builder.header(HeaderName::Date, httpdate::fmt_http_date(now));
        for b in current {
            builder = builder.header(
                HeaderName::Contact,
                format!("<{}>;expires={}", b.contact, b.remaining(now)),
            );
        }
        if request.supported().any(|o| o.eq_ignore_ascii_case("path")) {
            for path in request.header_values(HeaderName::Path) {
                builder = builder.header(HeaderName::Path, path.to_owned());
            }
        }
        builder
    }
}

/// `sip:user@host` of a To URI, host in lower case; `None` for a URI
/// that is not SIP or has no user.
fn address_of_record(uri: &trunkline_sip::Uri<'_>) -> Option<String> {
    let sip = uri.as_sip()?;
    let scheme = if sip.is_secure() { "sips" } else { "sip" };
    Some(format!(
        "{scheme}:{}@{}",
        sip.user()?,
        sip.host().to_string().to_ascii_lowercase()
    ))
}

/// A last-resort response when a built one fails (it cannot: the values
/// are ours), so the client is never left without an answer.
fn bare(request: &Message, tag: &str) -> Message {
    request
        .response_to(StatusCode::SERVER_INTERNAL_ERROR)
        .to_tag(tag)
        .build()
        .unwrap_or_else(|_| request.clone())
}

/// The user part of an address-of-record `sip:user@host`.
fn user_of(aor: &str) -> Option<&str> {
    let rest = aor
        .strip_prefix("sip:")
        .or_else(|| aor.strip_prefix("sips:"))?;
    rest.split_once('@').map(|(user, _)| user)
}
