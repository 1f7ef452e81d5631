//! Brute-force defence: failed authentications are counted per source
//! address and per user name in a fixed window; past the limit, either
//! key is refused until its window ends.

use dashmap::DashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// Limits for [`Guard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    /// Failures allowed in a window before the source or user is refused.
    pub max_failures: u32,
    /// The window.
    pub window: Duration,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            max_failures: 10,
            window: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: SystemTime,
    failures: u32,
}

/// Counts failures and says who is refused.
#[derive(Debug, Default)]
pub struct Guard {
    config: GuardConfig,
    sources: DashMap<IpAddr, Window>,
    users: DashMap<String, Window>,
}

impl Guard {
    /// A guard with `config`.
    pub fn new(config: GuardConfig) -> Guard {
        Guard {
            config,
            sources: DashMap::new(),
            users: DashMap::new(),
        }
    }

    fn over(&self, window: Option<Window>, now: SystemTime) -> bool {
        window.is_some_and(|w| w.failures >= self.config.max_failures && self.in_window(w, now))
    }

    fn in_window(&self, w: Window, now: SystemTime) -> bool {
        now.duration_since(w.started)
            .is_ok_and(|age| age < self.config.window)
    }

    /// Whether requests from `source`, or for `user`, are refused now.
    pub fn is_blocked(&self, now: SystemTime, source: IpAddr, user: Option<&str>) -> bool {
        self.over(self.sources.get(&source).map(|w| *w), now)
            || user.is_some_and(|u| self.over(self.users.get(u).map(|w| *w), now))
    }

    /// Counts a failed authentication.
    pub fn failed(&self, now: SystemTime, source: IpAddr, user: &str) {
        let bump = |w: &mut Window| {
            if self.in_window(*w, now) {
                w.failures = w.failures.saturating_add(1);
            } else {
                *w = Window {
                    started: now,
                    failures: 1,
                };
            }
        };
        let fresh = Window {
            started: now,
            failures: 0,
        };
        bump(&mut self.sources.entry(source).or_insert(fresh));
        bump(&mut self.users.entry(user.to_owned()).or_insert(fresh));
    }

    /// Forgets windows that have ended; call now and then.
    pub fn sweep(&self, now: SystemTime) {
        self.sources.retain(|_, w| self.in_window(*w, now));
        self.users.retain(|_, w| self.in_window(*w, now));
    }
}
