//! When each media shard last turned its loop, for the readiness check.
//!
//! A shard beats once per turn of its loop, and an idle shard still turns
//! a few times a second (it wakes to publish its counters), so a beat that
//! is long overdue means the thread is stuck or gone. Reading it takes no
//! lock and costs the shard one relaxed atomic store per turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One shard's heartbeat, shared between the shard and its readers.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// Beats are stored as microseconds since this instant.
    origin: Instant,
    last: Arc<AtomicU64>,
}

impl Heartbeat {
    /// A heartbeat that last beat at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            origin: now,
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records a turn of the loop at `now`.
    pub fn beat(&self, now: Instant) {
        let us = now.saturating_duration_since(self.origin).as_micros();
        self.last
            .store(u64::try_from(us).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// How long before `now` the last beat was (zero if it was later).
    pub fn age(&self, now: Instant) -> Duration {
        let last = self.origin + Duration::from_micros(self.last.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_age_is_the_time_since_the_last_beat() {
        let t0 = Instant::now();
        let h = Heartbeat::new(t0);
        let reader = h.clone();
        assert_eq!(reader.age(t0), Duration::ZERO);
        assert_eq!(
            reader.age(t0 + Duration::from_secs(3)),
            Duration::from_secs(3)
        );
        h.beat(t0 + Duration::from_secs(2));
        assert_eq!(
            reader.age(t0 + Duration::from_millis(2500)),
            Duration::from_millis(500)
        );
        // A reader whose clock is behind the beat sees no age.
        assert_eq!(reader.age(t0 + Duration::from_secs(1)), Duration::ZERO);
    }
}
