//! Timer values (RFC 3261 §17.1.1.1, Table 4).

use std::time::Duration;

/// The base timers every transaction timer derives from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// T1, the round-trip estimate: first retransmission interval. 500 ms.
    pub t1: Duration,
    /// T2, the cap on non-INVITE request and INVITE response
    /// retransmission intervals. 4 s.
    pub t2: Duration,
    /// T4, how long a message may linger in the network. 5 s.
    pub t4: Duration,
    /// How long an INVITE server transaction waits for the application's
    /// first response before it sends `100 Trying` itself (§17.2.1). 200 ms.
    pub trying: Duration,
    /// How long an INVITE may go unanswered before the layer answers it
    /// 408 itself, so a forgotten transaction cannot live for ever; RFC
    /// 3261 §16.6 gives proxies the same bound (timer C). 3 minutes.
    pub unanswered_invite: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            trying: Duration::from_millis(200),
            unanswered_invite: Duration::from_secs(180),
        }
    }
}

impl Timers {
    /// 64·T1: timers B, F, H, J (unreliable), L and M.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: how long a client INVITE transaction absorbs response
    /// retransmissions after a non-2xx final: at least 32 s on an
    /// unreliable transport, zero on a reliable one.
    pub(crate) fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.transaction_timeout())
        }
    }

    /// Timers I and K: T4 on an unreliable transport, zero on a reliable one.
    pub(crate) fn linger(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer J: 64·T1 on an unreliable transport, zero on a reliable one.
    pub(crate) fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.transaction_timeout()
        }
    }

    /// The retransmission interval after `interval`, capped at T2 (timers
    /// E and G, and the UAS core's 2xx retransmission).
    pub(crate) fn backoff_capped(&self, interval: Duration) -> Duration {
        (interval * 2).min(self.t2)
    }
}
