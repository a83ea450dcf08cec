//! Whether the load tester itself was the bottleneck.
//!
//! A load tester that runs out of CPU measures itself: its frames leave
//! late and are read late, and that delay shows up as the SFU's latency
//! and loss. So the run watches its own process CPU, the whole host's CPU
//! (an SFU on the same host competes for it) and how late the async
//! runtime wakes a timer, and flags the run as overloaded when any of
//! them says the tester could not keep up. Judging is pure; only
//! [`CpuSample::read`] (through [`testkit::procfs`]) and [`lag_probe`]
//! touch the system.

use crate::report::TesterUsage;
use crate::stats::DurationHistogram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::procfs::{self, Cpu};
use tokio_util::sync::CancellationToken;

/// How often the lag probe asks to be woken.
pub const PROBE_PERIOD: Duration = Duration::from_millis(20);
/// Runtime wake-up lag at p99 beyond which the tester's own delay is a
/// visible part of the latency it reports.
pub const MAX_LAG_P99_MS: f64 = 20.0;
/// Share of the host's cores in use beyond which the host is saturated.
pub const MAX_HOST_BUSY: f64 = 0.9;

/// CPU times at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuSample {
    /// When it was taken.
    pub at: Instant,
    /// This process's user + system time, seconds.
    pub process_s: Option<f64>,
    /// The host's non-idle time summed over cores, seconds.
    pub host_busy_s: Option<f64>,
}

impl CpuSample {
    /// Reads `/proc/self/stat` and `/proc/stat`; fields it cannot read
    /// are `None` (not Linux, or a restricted `/proc`).
    pub fn read() -> Self {
        let at = Instant::now();
        Self {
            at,
            process_s: procfs::read_self_cpu_s(),
            host_busy_s: procfs::read_busy_s(Cpu::All),
        }
    }
}

/// Judges a run from CPU samples at its start and end and the lag probe.
pub fn judge(
    start: &CpuSample,
    end: &CpuSample,
    host_cores: u32,
    lag: &DurationHistogram,
) -> TesterUsage {
    let wall = end.at.saturating_duration_since(start.at).as_secs_f64();
    let delta = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if wall > 0.0 => Some((b - a).max(0.0)),
        _ => None,
    };
    let cpu_seconds = delta(start.process_s, end.process_s);
    let cpu_cores = cpu_seconds.map(|s| s / wall);
    let host_busy_cores = delta(start.host_busy_s, end.host_busy_s).map(|s| s / wall);
    let runtime_lag_ms = lag.percentiles();
    let mut reasons = Vec::new();
    if runtime_lag_ms.count > 0 && runtime_lag_ms.p99 > MAX_LAG_P99_MS {
        reasons.push(format!(
            "its async runtime woke timers {:.0} ms late at p99 (limit {MAX_LAG_P99_MS:.0} ms)",
            runtime_lag_ms.p99
        ));
    }
    if let Some(busy) = host_busy_cores
        && host_cores > 0
        && busy >= MAX_HOST_BUSY * f64::from(host_cores)
    {
        reasons.push(format!("the host was busy {busy:.2} of {host_cores} cores"));
    }
    TesterUsage {
        cpu_seconds,
        cpu_cores,
        host_cores,
        host_busy_cores,
        runtime_lag_ms,
        overloaded: !reasons.is_empty(),
        overload_reasons: reasons,
    }
}

/// Cores this process may use.
pub fn host_cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1)
}

/// Asks the runtime to wake it every [`PROBE_PERIOD`] until `stop`, and
/// records how late each wake-up came.
pub async fn lag_probe(into: Arc<Mutex<DurationHistogram>>, stop: CancellationToken) {
    loop {
        let due = Instant::now() + PROBE_PERIOD;
        tokio::select! {
            () = tokio::time::sleep_until(due.into()) => {}
            () = stop.cancelled() => return,
        }
        let late = Instant::now().saturating_duration_since(due);
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut h) = into.lock() {
            h.record_us(us.max(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Instant, process: f64, host: f64) -> CpuSample {
        CpuSample {
            at,
            process_s: Some(process),
            host_busy_s: Some(host),
        }
    }

    #[test]
    fn a_busy_host_or_a_late_runtime_is_overloaded() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(10);
        let mut quick = DurationHistogram::new();
        for _ in 0..100 {
            quick.record_us(500);
        }
        let calm = judge(&sample(t0, 5.0, 10.0), &sample(t1, 10.0, 20.0), 2, &quick);
        assert!(!calm.overloaded, "{:?}", calm.overload_reasons);
        assert_eq!(calm.cpu_seconds, Some(5.0));
        assert_eq!(calm.cpu_cores, Some(0.5));
        assert_eq!(calm.host_busy_cores, Some(1.0));

        let busy = judge(&sample(t0, 0.0, 0.0), &sample(t1, 12.0, 19.0), 2, &quick);
        assert!(busy.overloaded);
        assert!(busy.overload_reasons[0].contains("1.90 of 2 cores"));

        let mut slow = quick.clone();
        for _ in 0..10 {
            slow.record_us(80_000);
        }
        let late = judge(&sample(t0, 0.0, 0.0), &sample(t1, 1.0, 1.0), 2, &slow);
        assert!(late.overloaded);
        assert!(late.overload_reasons[0].contains("late at p99"));
    }

    #[test]
    fn missing_figures_judge_nothing() {
        let t0 = Instant::now();
        let none = CpuSample {
            at: t0,
            process_s: None,
            host_busy_s: None,
        };
        let u = judge(&none, &none, 2, &DurationHistogram::new());
        assert_eq!((u.cpu_seconds, u.host_busy_cores), (None, None));
        assert!(!u.overloaded);
    }

    #[tokio::test]
    async fn the_probe_records_wakeups_until_stopped() {
        let h = Arc::new(Mutex::new(DurationHistogram::new()));
        let stop = CancellationToken::new();
        let task = tokio::spawn(lag_probe(Arc::clone(&h), stop.clone()));
        while h.lock().expect("lock").count() < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("stops")
            .expect("no panic");
    }
}
