//! When to churn and whom: leaves-and-joins at a steady rate, victims
//! drawn with the run's seeded generator. Pure: the caller says the time.

use rand::Rng;
use rand::rngs::StdRng;
use std::time::{Duration, Instant};

/// Spaced-out churn events between a start and a stop time.
#[derive(Debug, Clone)]
pub struct ChurnSchedule {
    interval: Option<Duration>,
    next: Option<Instant>,
    stop: Instant,
}

impl ChurnSchedule {
    /// `per_min` events a minute, the first one interval after `start`,
    /// none at or after `stop`. Zero (or a rate below one per day) means
    /// no churn.
    pub fn new(per_min: f64, start: Instant, stop: Instant) -> Self {
        let interval = (per_min.is_finite() && per_min >= 1.0 / 1440.0)
            .then(|| Duration::from_secs_f64(60.0 / per_min));
        let next = interval
            .and_then(|i| start.checked_add(i))
            .filter(|n| *n < stop);
        Self {
            interval,
            next,
            stop,
        }
    }

    /// The time of the next event.
    pub fn next_due(&self) -> Option<Instant> {
        self.next
    }

    /// Whether an event is due at `now`; if so, schedules the following one.
    pub fn poll(&mut self, now: Instant) -> bool {
        match (self.next, self.interval) {
            (Some(due), Some(i)) if now >= due => {
                self.next = due.checked_add(i).filter(|n| *n < self.stop);
                true
            }
            _ => false,
        }
    }
}

/// Picks one of `candidates` (indices of participants that may leave).
pub fn pick_victim(rng: &mut StdRng, candidates: &[usize]) -> Option<usize> {
    if candidates.is_empty() {
        return None;
    }
    candidates
        .get(rng.random_range(0..candidates.len()))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn events_are_evenly_spaced_until_stop() {
        let t0 = Instant::now();
        let mut s = ChurnSchedule::new(30.0, t0, t0 + Duration::from_secs(9));
        assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(2)));
        assert!(!s.poll(t0 + Duration::from_secs(1)));
        let mut at = Vec::new();
        for ms in (0..20_000).step_by(100) {
            let now = t0 + Duration::from_millis(ms);
            if s.poll(now) {
                at.push(ms);
            }
        }
        assert_eq!(at, vec![2000, 4000, 6000, 8000]);
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn zero_rate_never_fires() {
        let t0 = Instant::now();
        let mut s = ChurnSchedule::new(0.0, t0, t0 + Duration::from_secs(100));
        assert_eq!(s.next_due(), None);
        assert!(!s.poll(t0 + Duration::from_secs(50)));
        assert_eq!(ChurnSchedule::new(f64::NAN, t0, t0).next_due(), None);
    }

    #[test]
    fn victims_depend_only_on_the_seed() {
        let pick = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..20)
                .map(|_| pick_victim(&mut rng, &[3, 5, 8, 13]))
                .collect::<Vec<_>>()
        };
        assert_eq!(pick(7), pick(7));
        assert!(pick(7).iter().all(|v| matches!(v, Some(3 | 5 | 8 | 13))));
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(pick_victim(&mut rng, &[]), None);
    }
}
