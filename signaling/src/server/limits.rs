//! Per-connection rate limiting. Pure logic: the caller passes the time.

use super::config::RateLimit;
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

/// The message bucket plus a strike bucket for sustained abuse.
#[derive(Debug, Clone)]
pub(crate) struct RateLimiter {
    messages: TokenBucket,
    strikes: TokenBucket,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Self {
        Self {
            messages: TokenBucket::new(limit.burst, limit.per_second, now),
            strikes: TokenBucket::new(limit.max_violations, 1.0, now),
        }
    }

    /// Judges one inbound message arriving at `now`.
    pub(crate) fn check(&mut self, now: Instant) -> Verdict {
        if self.messages.try_take(now) {
            Verdict::Allow
        } else if self.strikes.try_take(now) {
            Verdict::Limited
        } else {
            Verdict::Close
        }
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
        let mut r = RateLimiter::new(limit, t0);
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
        let mut r = RateLimiter::new(RateLimit::new(50.0, 100), t0);
        for i in 0..10_000u64 {
            let now = t0 + Duration::from_millis(25 * i); // 40 msgs/s
            assert_eq!(r.check(now), Verdict::Allow);
        }
    }
}
