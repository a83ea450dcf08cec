//! Decides when a run cannot go on: the SFU went away, or nobody can
//! join. Pure: the caller reports what it sees and what time it is.

use crate::sfu_usage::Health;
use std::time::{Duration, Instant};

/// With `/metrics` down, this long without a frame means the SFU is gone.
pub const STALL_WITH_METRICS_DOWN: Duration = Duration::from_secs(5);
/// This long without a frame, after frames flowed, ends the run anyway.
pub const STALL: Duration = Duration::from_secs(15);
/// Failed joins with none succeeding that end the run early.
pub const FAILED_JOINS_WITHOUT_SUCCESS: u64 = 10;

/// What the run looks like now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// Participants whose join was attempted so far.
    pub attempted: u64,
    /// Whether every planned join has been attempted and has finished
    /// (connected or failed).
    pub joins_settled: bool,
    /// Sessions that were established.
    pub sessions: u64,
    /// Joins that failed.
    pub failed: u64,
    /// Sessions that closed without being asked to.
    pub lost: u64,
    /// Frames received so far, all receivers.
    pub frames_received: u64,
    /// Whether the SFU's `/metrics` answers.
    pub metrics: Health,
}

/// Remembers when media last moved.
#[derive(Debug, Clone)]
pub struct Watchdog {
    last_frames: u64,
    last_progress: Instant,
    media_flowed: bool,
    metrics_were_up: bool,
}

impl Watchdog {
    /// A watchdog for a run that starts at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            last_frames: 0,
            last_progress: now,
            media_flowed: false,
            metrics_were_up: false,
        }
    }

    /// Checks `obs` at `now`; `Some(reason)` means stop the run.
    pub fn check(&mut self, now: Instant, obs: &Observation) -> Option<String> {
        if obs.frames_received > self.last_frames {
            self.last_frames = obs.frames_received;
            self.last_progress = now;
            self.media_flowed = true;
        }
        if obs.metrics == Health::Up {
            self.metrics_were_up = true;
        }
        if obs.sessions > 0 && obs.lost * 2 > obs.sessions {
            return Some(format!(
                "{} of {} participant sessions were lost (the SFU closed them or stopped answering)",
                obs.lost, obs.sessions
            ));
        }
        if obs.sessions == 0
            && obs.failed > 0
            && (obs.joins_settled || obs.failed >= FAILED_JOINS_WITHOUT_SUCCESS)
        {
            return Some(format!(
                "no participant could connect ({} of {} joins failed)",
                obs.failed, obs.attempted
            ));
        }
        let idle = now.saturating_duration_since(self.last_progress);
        if self.media_flowed
            && self.metrics_were_up
            && obs.metrics == Health::Down
            && idle >= STALL_WITH_METRICS_DOWN
        {
            return Some(format!(
                "the SFU stopped answering: /metrics unreachable and no media for {} s",
                idle.as_secs()
            ));
        }
        if self.media_flowed && idle >= STALL {
            return Some(format!("no media received for {} s", idle.as_secs()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy(frames: u64) -> Observation {
        Observation {
            attempted: 10,
            joins_settled: true,
            sessions: 10,
            failed: 0,
            lost: 0,
            frames_received: frames,
            metrics: Health::Up,
        }
    }

    #[test]
    fn a_healthy_run_goes_on() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(t0);
        for s in 0..60 {
            assert_eq!(
                w.check(t0 + Duration::from_secs(s), &healthy(s * 100)),
                None
            );
        }
        // Before any media, silence is no failure (joins take time).
        let mut fresh = Watchdog::new(t0);
        assert_eq!(fresh.check(t0 + Duration::from_secs(60), &healthy(0)), None);
    }

    #[test]
    fn losing_most_sessions_stops_the_run() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(t0);
        let half = Observation {
            lost: 5,
            ..healthy(1)
        };
        assert_eq!(w.check(t0, &half), None);
        let most = Observation {
            lost: 6,
            ..healthy(1)
        };
        assert!(w.check(t0, &most).expect("stop").contains("6 of 10"));
    }

    #[test]
    fn nobody_connecting_stops_the_run() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(t0);
        let some_failed = Observation {
            attempted: 3,
            joins_settled: false,
            sessions: 0,
            failed: 3,
            ..healthy(0)
        };
        assert_eq!(w.check(t0, &some_failed), None);
        let settled = Observation {
            joins_settled: true,
            ..some_failed
        };
        assert!(
            w.check(t0, &settled)
                .expect("stop")
                .contains("no participant")
        );
        let many = Observation {
            failed: 10,
            attempted: 10,
            ..some_failed
        };
        assert!(w.check(t0, &many).is_some());
    }

    #[test]
    fn media_stall_with_metrics_down_stops_the_run() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(t0);
        assert_eq!(w.check(t0, &healthy(100)), None);
        let down = Observation {
            metrics: Health::Down,
            ..healthy(100)
        };
        assert_eq!(w.check(t0 + Duration::from_secs(4), &down), None);
        let why = w.check(t0 + Duration::from_secs(5), &down).expect("stop");
        assert!(why.contains("stopped answering"), "{why}");
    }

    #[test]
    fn long_stall_stops_the_run_even_without_metrics() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(t0);
        let blind = Observation {
            metrics: Health::Unknown,
            ..healthy(100)
        };
        assert_eq!(w.check(t0, &blind), None);
        assert_eq!(w.check(t0 + Duration::from_secs(14), &blind), None);
        assert!(w.check(t0 + Duration::from_secs(15), &blind).is_some());
        // Metrics that never worked do not speed it up.
        let mut v = Watchdog::new(t0);
        let down = Observation {
            metrics: Health::Down,
            ..healthy(100)
        };
        assert_eq!(v.check(t0, &down), None);
        assert_eq!(v.check(t0 + Duration::from_secs(10), &down), None);
    }
}
