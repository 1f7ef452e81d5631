//! The checks serde cannot make: ranges, references between sections
//! (a route naming a trunk that does not exist), duplicates, clashing
//! listeners. Each fault names the key to fix.

use super::{Config, ConfigError, Match, Target, TransportName};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use trunkline_sip::Uri;

/// Every fault in `config`, in file order of sections.
pub(super) fn check(config: &Config) -> Vec<ConfigError> {
    let mut errors = Errors::default();
    sip(config, &mut errors);
    registrar(config, &mut errors);
    media(config, &mut errors);
    let extensions = extensions(config, &mut errors);
    groups(config, &extensions, &mut errors);
    trunks(config, &extensions, &mut errors);
    routes(config, &extensions, &mut errors);
    hooks(config, &mut errors);
    api(config, &mut errors);
    if config.calls.ring_timeout_secs == 0 {
        errors.push("calls.ring_timeout_secs", "must be at least 1");
    }
    errors.0
}

#[derive(Default)]
struct Errors(Vec<ConfigError>);

impl Errors {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(key, message));
    }
}

/// Listeners and the HTTP address: UDP and stream sockets are separate
/// port spaces, so `udp` and `tcp` may share an address but `tcp`, `tls`,
/// `ws`, `wss` and HTTP may not.
fn sip(config: &Config, errors: &mut Errors) {
    let sip = &config.sip;
    if sip.listen.is_empty() {
        errors.push("sip.listen", "at least one listener is needed");
    }
    let mut taken: HashMap<(bool, SocketAddr), String> = HashMap::new();
    let mut claim = |udp: bool, address: SocketAddr, key: String, errors: &mut Errors| {
        // Port 0 asks the system for a free port: never a clash.
        if address.port() == 0 {
            return;
        }
        match taken.get(&(udp, address)) {
            Some(owner) => errors.push(key, format!("{address} is already taken by {owner}")),
            None => {
                taken.insert((udp, address), key);
            }
        }
    };
    for (i, listen) in sip.listen.iter().enumerate() {
        let key = format!("sip.listen[{i}]");
        let udp = listen.transport == TransportName::Udp;
        if listen.address.0.ip().is_unspecified() {
            // Via, Contact and Refer-To carry the listener's address:
            // phones must be able to send to it.
            errors.push(
                format!("{key}.address"),
                format!(
                    "{} is no address a phone can reach: give the one it should use",
                    listen.address.0.ip()
                ),
            );
        }
        claim(udp, listen.address.0, format!("{key}.address"), errors);
        if listen.transport.is_secure() && sip.tls.is_none() {
            errors.push(
                format!("{key}.transport"),
                format!(
                    "a {} listener needs [sip.tls] certificate and private_key",
                    listen.transport
                ),
            );
        }
    }
    claim(false, config.http.address.0, "http.address".into(), errors);
    if let Some(tls) = &sip.tls {
        for (name, path) in [
            ("certificate", &tls.certificate),
            ("private_key", &tls.private_key),
        ] {
            if !path.is_file() {
                errors.push(
                    format!("sip.tls.{name}"),
                    format!("no file {:?} (relative to the working directory)", path),
                );
            }
        }
    }
    // The realm is sent as a quoted string in every challenge.
    if sip.realm.is_empty()
        || sip
            .realm
            .chars()
            .any(|c| c.is_control() || "\"\\".contains(c))
    {
        errors.push(
            "sip.realm",
            format!(
                "{:?} is not a realm: it must be non-empty, without quotes, backslashes or control characters",
                sip.realm
            ),
        );
    }
}

fn registrar(config: &Config, errors: &mut Errors) {
    let r = &config.registrar;
    if r.min_expires == 0 {
        errors.push("registrar.min_expires", "must be at least 1 second");
    }
    if r.min_expires > r.max_expires {
        errors.push(
            "registrar.max_expires",
            format!("{} is under min_expires ({})", r.max_expires, r.min_expires),
        );
    }
    if !(r.min_expires..=r.max_expires).contains(&r.default_expires) {
        errors.push(
            "registrar.default_expires",
            format!(
                "{} is outside min_expires..max_expires ({}..{})",
                r.default_expires, r.min_expires, r.max_expires
            ),
        );
    }
    if r.max_contacts == 0 {
        errors.push("registrar.max_contacts", "must be at least 1");
    }
    if r.nonce_lifetime_secs == 0 {
        errors.push("registrar.nonce_lifetime_secs", "must be at least 1");
    }
    if r.algorithms.is_empty() {
        errors.push("registrar.algorithms", "at least one algorithm is needed");
    }
    for (i, algorithm) in r.algorithms.iter().enumerate() {
        if r.algorithms[..i].contains(algorithm) {
            errors.push(format!("registrar.algorithms[{i}]"), "listed twice");
        }
    }
}

/// The relay takes an even RTP port and the odd one after it, so the
/// range must hold such a pair (as trunkline-media's PortAllocator asks).
fn media(config: &Config, errors: &mut Errors) {
    let m = &config.media;
    if m.address.0.is_unspecified() {
        // The SDP the relay writes names this address.
        errors.push(
            "media.address",
            format!(
                "{} is no address a phone can send media to: give the one it should use",
                m.address.0
            ),
        );
    }
    let first_even = m.rtp_port_min.max(1).next_multiple_of(2);
    if first_even >= m.rtp_port_max {
        errors.push(
            "media.rtp_port_max",
            format!(
                "the range {}..{} holds no even port with the port after it",
                m.rtp_port_min, m.rtp_port_max
            ),
        );
    }
}

/// Checks the extensions and returns their numbers.
fn extensions<'a>(config: &'a Config, errors: &mut Errors) -> BTreeSet<&'a str> {
    let mut numbers = BTreeSet::new();
    for (i, extension) in config.extensions.iter().enumerate() {
        let key = format!("extensions[{i}]");
        let number = extension.number.as_str();
        // The number is the user part of SIP URIs and the digest user name:
        // keep to characters that need no escaping in either.
        let usable = |c: char| c.is_ascii_alphanumeric() || "._-+*".contains(c);
        if number.is_empty() || !number.chars().all(usable) {
            errors.push(
                format!("{key}.number"),
                format!("{number:?} is not an extension number: use letters, digits and . _ - + *"),
            );
        }
        if !numbers.insert(number) {
            errors.push(
                format!("{key}.number"),
                format!("{number:?} is defined twice"),
            );
        }
        match (&extension.password, &extension.ha1) {
            (Some(_), Some(_)) => errors.push(
                format!("{key}.ha1"),
                "give password or ha1, not both (neither: a random password is printed at start)",
            ),
            (Some(password), None) if password.is_empty() => errors.push(
                format!("{key}.password"),
                "is empty (leave it out for a random password printed at start)",
            ),
            (None, Some(ha1)) if !is_ha1(ha1) => errors.push(
                format!("{key}.ha1"),
                "must be 32 hex digits (MD5) or 64 (SHA-256)",
            ),
            _ => {}
        }
    }
    numbers
}

fn is_ha1(text: &str) -> bool {
    matches!(text.len(), 32 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn groups(config: &Config, extensions: &BTreeSet<&str>, errors: &mut Errors) {
    let mut names = BTreeSet::new();
    for (i, group) in config.groups.iter().enumerate() {
        let key = format!("groups[{i}]");
        named(&key, &group.name, &mut names, errors);
        if group.members.is_empty() {
            errors.push(
                format!("{key}.members"),
                "a group needs at least one member",
            );
        }
        for (j, member) in group.members.iter().enumerate() {
            let key = format!("{key}.members[{j}]");
            if !extensions.contains(member.as_str()) {
                errors.push(&key, format!("no extension {member:?}"));
            } else if group.members[..j].contains(member) {
                errors.push(&key, format!("{member:?} is listed twice"));
            }
        }
    }
}

/// A name that must be there and unique within its kind.
fn named<'a>(key: &str, name: &'a str, names: &mut BTreeSet<&'a str>, errors: &mut Errors) {
    if name.trim().is_empty() {
        errors.push(format!("{key}.name"), "must not be empty");
    } else if !names.insert(name) {
        errors.push(format!("{key}.name"), format!("{name:?} is used twice"));
    }
}

fn trunks(config: &Config, extensions: &BTreeSet<&str>, errors: &mut Errors) {
    let mut names = BTreeSet::new();
    for (i, trunk) in config.trunks.iter().enumerate() {
        let key = format!("trunks[{i}]");
        named(&key, &trunk.name, &mut names, errors);
        match Uri::parse(&trunk.uri) {
            Ok(Uri::Sip(_)) => {}
            Ok(_) => errors.push(format!("{key}.uri"), "must be a sip: or sips: URI"),
            Err(e) => errors.push(
                format!("{key}.uri"),
                format!("invalid SIP URI {:?}: {e}", trunk.uri),
            ),
        }
        match (&trunk.username, &trunk.password) {
            (Some(_), None) => errors.push(format!("{key}.password"), "username without password"),
            (None, Some(_)) => errors.push(format!("{key}.username"), "password without username"),
            (None, None) if trunk.register => errors.push(
                format!("{key}.register"),
                "registering needs username and password",
            ),
            _ => {}
        }
        for (number, extension) in &trunk.did {
            let key = format!("{key}.did.{number:?}");
            if number.is_empty() {
                errors.push(&key, "an empty number matches no call");
            }
            if !extensions.contains(extension.as_str()) {
                errors.push(&key, format!("no extension {extension:?}"));
            }
        }
    }
}

fn routes(config: &Config, extensions: &BTreeSet<&str>, errors: &mut Errors) {
    let groups: BTreeSet<&str> = config.groups.iter().map(|g| g.name.as_str()).collect();
    let trunks: BTreeSet<&str> = config.trunks.iter().map(|t| t.name.as_str()).collect();
    let mut names = BTreeSet::new();
    for (i, route) in config.routes.iter().enumerate() {
        let key = format!("routes[{i}]");
        named(&key, &route.name, &mut names, errors);
        match &route.matches {
            Match::Prefix(prefix)
                if prefix.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                errors.push(
                    format!("{key}.match.prefix"),
                    format!("{prefix:?}: dialled numbers hold no spaces or control characters"),
                );
            }
            Match::Regex(pattern) => {
                if let Some(rewrite) = &route.rewrite
                    && let Err(why) = check_replacement(rewrite, pattern.regex())
                {
                    errors.push(format!("{key}.rewrite"), why);
                }
            }
            Match::Prefix(_) => {}
        }
        let (kind, name, known) = match &route.to {
            Target::Extension(n) => ("extension", n, extensions.contains(n.as_str())),
            Target::Group(n) => ("group", n, groups.contains(n.as_str())),
            Target::Trunk(n) => ("trunk", n, trunks.contains(n.as_str())),
        };
        if !known {
            errors.push(format!("{key}.to.{kind}"), format!("no {kind} {name:?}"));
        }
        if route.ring_timeout_secs == 0 {
            errors.push(format!("{key}.ring_timeout_secs"), "must be at least 1");
        }
    }
}

/// The webhooks: http(s) URLs, timeouts, header names and values, event
/// names listed once.
fn hooks(config: &Config, errors: &mut Errors) {
    let hook = |key: &str,
                url: &str,
                timeout_ms: u64,
                headers: &std::collections::BTreeMap<String, String>,
                errors: &mut Errors| {
        if let Err(e) = trunkline_webhooks::Hook::new(url) {
            errors.push(format!("{key}.url"), e.to_string());
        }
        if timeout_ms == 0 {
            errors.push(format!("{key}.timeout_ms"), "must be at least 1");
        }
        for (name, value) in headers {
            let checked = trunkline_webhooks::Hook::new("http://127.0.0.1/")
                .and_then(|h| h.with_header(name, value));
            if let Err(e) = checked {
                errors.push(format!("{key}.headers.{name:?}"), e.to_string());
            }
        }
    };
    if let Some(router) = &config.proxy.http_router {
        hook(
            "proxy.http_router",
            &router.url,
            router.timeout_ms,
            &router.headers,
            errors,
        );
    }
    if let Some(locator) = &config.proxy.locator_webhook {
        hook(
            "proxy.locator_webhook",
            &locator.url,
            locator.timeout_ms,
            &locator.headers,
            errors,
        );
        if locator.events.is_empty() {
            errors.push(
                "proxy.locator_webhook.events",
                "at least one event is needed (leave the section out for none)",
            );
        }
        for (i, event) in locator.events.iter().enumerate() {
            if locator.events[..i].contains(event) {
                errors.push(format!("proxy.locator_webhook.events[{i}]"), "listed twice");
            }
        }
    }
    if let Some(push) = &config.callrecord {
        hook(
            "callrecord",
            &push.url,
            push.timeout_ms,
            &push.headers,
            errors,
        );
    }
}

/// Checks that every `$n`, `${n}`, `$name` and `${name}` in a regex
/// replacement names a group of `regex`. The regex crate would quietly put
/// nothing in place of an unknown one, and reads `$1a` as a group called
/// `1a`: both are configuration mistakes worth reporting.
pub(super) fn check_replacement(rewrite: &str, regex: &regex::Regex) -> Result<(), String> {
    let mut rest = rewrite;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let name = if let Some(braced) = rest.strip_prefix('{') {
            let Some(end) = braced.find('}') else {
                return Err(format!("{rewrite:?}: unclosed ${{"));
            };
            rest = &braced[end + 1..];
            &braced[..end]
        } else if let Some(after) = rest.strip_prefix('$') {
            // `$$` is a literal dollar.
            rest = after;
            continue;
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            rest = &rest[end..];
            name
        };
        // A `$` with no name after it stands for itself.
        if name.is_empty() {
            continue;
        }
        let known = match name.parse::<usize>() {
            Ok(index) => index < regex.captures_len(),
            Err(_) => regex.capture_names().flatten().any(|n| n == name),
        };
        if !known {
            let hint = if name.starts_with(|c: char| c.is_ascii_digit())
                && name.parse::<usize>().is_err()
            {
                " (write ${1} when a letter or digit follows the group number)"
            } else {
                ""
            };
            return Err(format!(
                "{rewrite:?} refers to ${name}, which the regex does not capture{hint}"
            ));
        }
    }
    Ok(())
}

/// The shortest API key taken: 16 characters of a random token are far
/// beyond guessing, and anything shorter is likely a placeholder.
const MIN_KEY_LENGTH: usize = 16;

/// The most live events `[api] events_retention` may keep (a few hundred
/// bytes each).
pub(super) const MAX_EVENTS_RETENTION: usize = 1_000_000;

/// API keys: named, long enough, sendable in a header, and each name and
/// key given once; the events' retention within bounds.
fn api(config: &Config, errors: &mut Errors) {
    if !(1..=MAX_EVENTS_RETENTION).contains(&config.api.events_retention) {
        errors.push(
            "api.events_retention",
            format!("must be 1 to {MAX_EVENTS_RETENTION} events"),
        );
    }
    let mut names = BTreeSet::new();
    for (i, key) in config.api.keys.iter().enumerate() {
        let at = format!("api.keys[{i}]");
        if key.name.trim().is_empty() {
            errors.push(format!("{at}.name"), "must not be empty");
        } else if !names.insert(key.name.as_str()) {
            errors.push(
                format!("{at}.name"),
                format!("{:?} is named twice", key.name),
            );
        }
        if key.key.chars().count() < MIN_KEY_LENGTH {
            errors.push(
                format!("{at}.key"),
                format!("must be at least {MIN_KEY_LENGTH} characters (a random token)"),
            );
        } else if !key.key.chars().all(|c| c.is_ascii_graphic()) {
            errors.push(
                format!("{at}.key"),
                "must be printable ASCII without spaces (it is sent in an HTTP header)",
            );
        }
        if config.api.keys[..i].iter().any(|k| k.key == key.key) {
            errors.push(format!("{at}.key"), "the same key is given twice");
        }
    }
}
