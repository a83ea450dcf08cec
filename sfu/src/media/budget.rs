//! Each participant's share of its shard's time for negotiation.
//!
//! A shard's thread forwards every packet of its rooms and also applies
//! its participants' SDP offers, answers and candidates. The SDP arrives
//! parsed and within size limits, but applying it still costs shard time
//! that grows with its m-lines, and one participant may send a message
//! after another. So each participant has a token bucket of shard time:
//! the measured cost of each negotiation step is taken from it, and while
//! it is empty the participant's negotiation requests are refused
//! (`rate_limited`) without any work. The bucket may go below zero by the
//! cost of the last step; the time it takes to refill is the wait.

use std::time::{Duration, Instant};

/// How much shard time one participant may spend on negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegotiationBudget {
    /// Shard time earned per second of wall time.
    pub per_second: Duration,
    /// Most shard time saved up (and the bucket's start).
    pub burst: Duration,
}

impl Default for NegotiationBudget {
    /// 10 ms a second (1 % of a shard), bursts of 100 ms.
    fn default() -> Self {
        Self {
            per_second: Duration::from_millis(10),
            burst: Duration::from_millis(100),
        }
    }
}

/// One participant's bucket, in microseconds of shard time.
#[derive(Debug, Clone)]
pub(super) struct ShardTime {
    micros: f64,
    last: Instant,
    /// Refused since the bucket was last positive: only the first refusal
    /// of a run is logged as a warning.
    limited: bool,
}

/// What [`ShardTime::ask`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Go ahead, then [`ShardTime::charge`] the cost.
    Allow,
    /// Refused; the first refusal since the participant was last allowed.
    Refuse { first: bool },
}

impl ShardTime {
    /// A full bucket.
    pub(super) fn new(budget: &NegotiationBudget, now: Instant) -> Self {
        Self {
            micros: micros(budget.burst),
            last: now,
            limited: false,
        }
    }

    /// Refills for the time since the last call, then says whether a
    /// negotiation step may run.
    pub(super) fn ask(&mut self, budget: &NegotiationBudget, now: Instant) -> Verdict {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.micros = (self.micros + dt * micros(budget.per_second)).min(micros(budget.burst));
        if self.micros > 0.0 {
            self.limited = false;
            Verdict::Allow
        } else {
            let first = !self.limited;
            self.limited = true;
            Verdict::Refuse { first }
        }
    }

    /// Takes the measured cost of a step that ran.
    pub(super) fn charge(&mut self, cost: Duration) {
        self.micros -= micros(cost);
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_burst_is_spent_then_the_rate_refills_it() {
        let b = NegotiationBudget {
            per_second: ms(10),
            burst: ms(30),
        };
        let t0 = Instant::now();
        let mut t = ShardTime::new(&b, t0);
        // Steps of 12 ms: three run (the third into debt), the fourth waits.
        for _ in 0..3 {
            assert_eq!(t.ask(&b, t0), Verdict::Allow);
            t.charge(ms(12));
        }
        assert_eq!(t.ask(&b, t0), Verdict::Refuse { first: true });
        assert_eq!(t.ask(&b, t0), Verdict::Refuse { first: false });
        // 6 ms of debt at 10 ms/s: 600 ms.
        assert_eq!(t.ask(&b, t0 + ms(550)), Verdict::Refuse { first: false });
        assert_eq!(t.ask(&b, t0 + ms(650)), Verdict::Allow);
        // Idle time refills up to the burst, not beyond.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(t.ask(&b, later), Verdict::Allow);
        t.charge(ms(31));
        assert_eq!(t.ask(&b, later), Verdict::Refuse { first: true });
    }

    /// Sustained, a participant gets the rate and nothing more, however
    /// often it asks.
    #[test]
    fn a_flood_gets_the_rate() {
        let b = NegotiationBudget::default();
        let t0 = Instant::now();
        let mut t = ShardTime::new(&b, t0);
        let mut spent = Duration::ZERO;
        // 10 s of asking every 20 ms (50 a second) with 5 ms steps.
        for i in 0..500 {
            if t.ask(&b, t0 + ms(20 * i)) == Verdict::Allow {
                t.charge(ms(5));
                spent += ms(5);
            }
        }
        // The burst plus 10 s at the rate, plus at most one step of debt.
        assert!(spent <= b.burst + 10 * b.per_second + ms(5), "{spent:?}");
        assert!(spent >= 10 * b.per_second, "{spent:?}");
    }
}
