//! Where a webhook goes and how it is sent: URL, secret, timeout, extra
//! headers and the outbox's retry policy.

use crate::Error;
use hyper::Uri;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use std::fmt;
use std::time::Duration;

/// One configured webhook endpoint.
///
/// ```
/// # fn main() -> Result<(), trunkline_webhooks::Error> {
/// use std::time::Duration;
/// use trunkline_webhooks::Hook;
///
/// let cdr_hook = Hook::new("https://crm.example.com/hooks/cdr")?
///     .with_secret("s3cret")
///     .with_timeout(Duration::from_secs(10))
///     .with_header("Authorization", "Bearer 0123")?;
/// assert_eq!(cdr_hook.url().host(), Some("crm.example.com"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Hook {
    url: Uri,
    secret: Option<Vec<u8>>,
    timeout: Duration,
    headers: HeaderMap,
    retry: RetryPolicy,
}

impl Hook {
    /// How long one request may take by default, connection included.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// A hook posting to `url` (`http://` or `https://`), unsigned, with
    /// the default timeout and retry policy and no extra headers.
    pub fn new(url: &str) -> Result<Hook, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
        match parsed.scheme_str() {
            Some("http" | "https") => {}
            _ => return Err(invalid("the scheme must be http or https")),
        }
        if parsed.host().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        Ok(Hook {
            url: parsed,
            secret: None,
            timeout: Hook::DEFAULT_TIMEOUT,
            headers: HeaderMap::new(),
            retry: RetryPolicy::default(),
        })
    }

    /// Signs every request with `secret` (see [`crate::signature`]).
    pub fn with_secret(mut self, secret: impl Into<Vec<u8>>) -> Hook {
        self.secret = Some(secret.into());
        self
    }

    /// Limits each request, from connecting to the last byte of the
    /// answer, to `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Hook {
        self.timeout = timeout;
        self
    }

    /// Adds a static header to every request (an API key, a tenant id).
    /// It cannot replace `Content-Type` or the `X-Trunkline-*` headers,
    /// which the client sets last.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Hook, Error> {
        let invalid = |reason: String| Error::InvalidHeader {
            name: name.to_owned(),
            reason,
        };
        let header_name = HeaderName::try_from(name).map_err(|e| invalid(e.to_string()))?;
        let header_value = HeaderValue::try_from(value).map_err(|e| invalid(e.to_string()))?;
        self.headers.append(header_name, header_value);
        Ok(self)
    }

    /// How the outbox retries this hook's deliveries. Router requests are
    /// never retried: the call cannot wait, and the engine falls back to
    /// its own routes instead.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Hook {
        self.retry = retry;
        self
    }

    /// The URL requests go to.
    pub fn url(&self) -> &Uri {
        &self.url
    }

    pub(crate) fn secret(&self) -> Option<&[u8]> {
        self.secret.as_deref()
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub(crate) fn retry(&self) -> &RetryPolicy {
        &self.retry
    }
}

impl fmt::Debug for Hook {
    /// Everything but the secret and the header values (which may hold
    /// credentials too).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hook")
            .field("url", &self.url)
            .field("signed", &self.secret.is_some())
            .field("timeout", &self.timeout)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("retry", &self.retry)
            .finish()
    }
}

/// How the outbox retries a delivery that failed for a reason that may
/// pass (no connection, a timeout, a 5xx, 408, 429): after `first_delay`,
/// then twice as long each time up to `max_delay`. A delivery is given up
/// (dead-lettered) after `max_attempts` attempts or once it is `max_age`
/// old, whichever comes first; with the defaults (1 s doubling to 5 min,
/// 1000 attempts, 3 days) a receiver may be down for a long weekend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failed attempt.
    pub first_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// Attempts after which a delivery is given up.
    pub max_attempts: u32,
    /// The age (since it entered the outbox) after which a delivery is
    /// given up.
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
            max_attempts: 1000,
            max_age: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

impl RetryPolicy {
    /// The wait after the `failures`-th failed attempt (1 for the first).
    pub(crate) fn delay_after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(Hook::new("http://127.0.0.1:8080/x").is_ok());
        assert!(Hook::new("https://example.com").is_ok());
        for bad in [
            "ftp://example.com/",
            "example.com/x",
            "http://",
            "not a url",
        ] {
            let err = Hook::new(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{bad}: {err}");
        }
    }

    #[test]
    fn headers_are_checked_and_secrets_not_shown() {
        let hook = Hook::new("http://127.0.0.1/")
            .unwrap()
            .with_secret("s3cret")
            .with_header("Authorization", "Bearer token")
            .unwrap();
        let shown = format!("{hook:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("token"),
            "{shown}"
        );
        let err = hook.with_header("Bad Name", "x").unwrap_err();
        assert!(matches!(err, Error::InvalidHeader { .. }), "{err}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
            ..RetryPolicy::default()
        };
        let delays: Vec<u128> = (1..=6).map(|n| policy.delay_after(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 700, 700, 700]);
        assert_eq!(policy.delay_after(u32::MAX), Duration::from_millis(700));
    }
}
