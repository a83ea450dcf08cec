//! One process-wide time origin, so a send time written by one simulated
//! participant and a receive time read by another come from one clock.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The origin of every timestamp in frame headers (fixed at first use).
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds from [`epoch`] to `t` (0 for an instant before it).
pub fn micros_at(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch()).as_micros()).unwrap_or(u64::MAX)
}

/// Microseconds since [`epoch`].
pub fn now_us() -> u64 {
    micros_at(Instant::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn later_instants_give_larger_stamps() {
        let a = epoch();
        assert_eq!(micros_at(a), 0);
        assert_eq!(micros_at(a + Duration::from_millis(3)), 3_000);
        assert!(now_us() >= micros_at(a));
    }
}
