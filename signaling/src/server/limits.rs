//! Rate limiting by token buckets. Pure logic: the caller passes the time.

use super::config::{MessageRates, RateLimit};
use std::time::Instant;

/// A classic token bucket.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(capacity: u32, per_second: f64, now: Instant) -> Self {
        let capacity = f64::from(capacity.max(1));
        Self {
            capacity,
            per_second: per_second.max(0.0),
            tokens: capacity,
            last: now,
        }
    }

    /// Whether the bucket would be full at `now`.
    pub(crate) fn is_full(&self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + dt * self.per_second >= self.capacity
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What to do with one inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Process it.
    Allow,
    /// Drop it and answer `rate_limited`.
    Limited,
    /// Drop it and close the connection.
    Close,
}

/// The kinds of message that cost more than their count: each has a rate
/// of its own on top of the message rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Costly {
    /// `mls_key_package`: relayed to the whole room.
    KeyPackage,
    /// `mls_commit`: relayed to the whole room, with its Welcome.
    Commit,
    /// `mls_application` and `mute`: relayed to the whole room.
    Chat,
    /// `offer` and `answer`: parsed by the media plane.
    Sdp,
}

impl Costly {
    /// Every kind with its label, in a stable order.
    pub(crate) const ALL: [(Costly, &'static str); 4] = [
        (Costly::KeyPackage, "key_package"),
        (Costly::Commit, "commit"),
        (Costly::Chat, "chat"),
        (Costly::Sdp, "sdp"),
    ];

    /// Its slot in [`Costly::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Costly::KeyPackage => 0,
            Costly::Commit => 1,
            Costly::Chat => 2,
            Costly::Sdp => 3,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        Costly::ALL[self.index()].1
    }

    fn limit(self, rates: &MessageRates) -> RateLimit {
        match self {
            Costly::KeyPackage => rates.key_package,
            Costly::Commit => rates.mls_commit,
            Costly::Chat => rates.chat,
            Costly::Sdp => rates.sdp,
        }
    }
}

/// One identity's (or, before a join, one connection's) rate allowance:
/// the message bucket, a bucket per [`Costly`] kind, and a strike bucket
/// for sustained abuse that every kind of violation draws on.
#[derive(Debug, Clone)]
pub(crate) struct Allowance {
    messages: TokenBucket,
    strikes: TokenBucket,
    kinds: [TokenBucket; Costly::ALL.len()],
}

impl Allowance {
    pub(crate) fn new(limit: RateLimit, rates: &MessageRates, now: Instant) -> Self {
        let bucket = |l: RateLimit| TokenBucket::new(l.burst, l.per_second, now);
        Self {
            messages: bucket(limit),
            strikes: TokenBucket::new(limit.max_violations, 1.0, now),
            kinds: Costly::ALL.map(|(k, _)| bucket(k.limit(rates))),
        }
    }

    fn strike(&mut self, now: Instant) -> Verdict {
        if self.strikes.try_take(now) {
            Verdict::Limited
        } else {
            Verdict::Close
        }
    }

    /// Judges one inbound message arriving at `now`.
    pub(crate) fn check(&mut self, now: Instant) -> Verdict {
        if self.messages.try_take(now) {
            Verdict::Allow
        } else {
            self.strike(now)
        }
    }

    /// Judges one message of a costly kind (already counted by
    /// [`Allowance::check`]).
    pub(crate) fn check_kind(&mut self, kind: Costly, now: Instant) -> Verdict {
        if self.kinds[kind.index()].try_take(now) {
            Verdict::Allow
        } else {
            self.strike(now)
        }
    }

    /// Whether every bucket would be full at `now`: forgetting this
    /// allowance and starting a fresh one later changes nothing.
    pub(crate) fn is_idle(&self, now: Instant) -> bool {
        self.messages.is_full(now)
            && self.strikes.is_full(now)
            && self.kinds.iter().all(|b| b.is_full(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, 10.0, t0);
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0));
        // 100 ms at 10/s is one token.
        assert!(b.try_take(t0 + Duration::from_millis(100)));
        assert!(!b.try_take(t0 + Duration::from_millis(100)));
        // Refill is capped at capacity.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.try_take(later));
        }
        assert!(!b.try_take(later));
    }

    #[test]
    fn time_going_backwards_does_not_refill() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut b = TokenBucket::new(1, 10.0, t0);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 - Duration::from_millis(500)));
        assert!(!b.try_take(t0));
    }

    #[test]
    fn sustained_abuse_closes() {
        let t0 = Instant::now();
        let limit = RateLimit::new(1.0, 2).with_max_violations(3);
        let mut r = Allowance::new(limit, &MessageRates::default(), t0);
        let verdicts: Vec<_> = (0..7).map(|_| r.check(t0)).collect();
        use Verdict::*;
        assert_eq!(
            verdicts,
            [Allow, Allow, Limited, Limited, Limited, Close, Close]
        );
    }

    #[test]
    fn a_polite_client_is_never_limited() {
        let t0 = Instant::now();
        let mut r = Allowance::new(RateLimit::new(50.0, 100), &MessageRates::default(), t0);
        for i in 0..10_000u64 {
            let now = t0 + Duration::from_millis(25 * i); // 40 msgs/s
            assert_eq!(r.check(now), Verdict::Allow);
        }
    }

    #[test]
    fn each_costly_kind_has_its_own_bucket_and_shares_the_strikes() {
        let t0 = Instant::now();
        let rates = MessageRates {
            key_package: RateLimit::new(0.1, 2),
            ..MessageRates::default()
        };
        let mut a = Allowance::new(RateLimit::new(50.0, 100).with_max_violations(2), &rates, t0);
        use Verdict::*;
        let kp: Vec<_> = (0..5)
            .map(|_| a.check_kind(Costly::KeyPackage, t0))
            .collect();
        assert_eq!(kp, [Allow, Allow, Limited, Limited, Close]);
        // Other kinds still have their own tokens, but strikes are spent.
        assert_eq!(a.check_kind(Costly::Chat, t0), Allow);
        assert_eq!(a.check(t0), Allow);
        // Ten seconds at 0.1/s is one more KeyPackage.
        let t10 = t0 + Duration::from_secs(10);
        assert_eq!(a.check_kind(Costly::KeyPackage, t10), Allow);
        assert!(!a.is_idle(t10));
        // Idle once every bucket has refilled (KeyPackages are slowest:
        // two tokens from empty at t10).
        assert!(!a.is_idle(t0 + Duration::from_secs(29)));
        assert!(a.is_idle(t0 + Duration::from_secs(31)));
    }
}
