//! Thread CPU clocks and core pinning. CPU time and memory of processes
//! come from `/proc` through [`testkit::procfs`].

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::Pid;

/// CPU time the calling thread has used, nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(|t| {
            u64::try_from(t.tv_sec()).unwrap_or(0) * 1_000_000_000
                + u64::try_from(t.tv_nsec()).unwrap_or(0)
        })
        .unwrap_or(0)
}

/// The CPUs this process may run on, ascending.
pub fn allowed_cpus() -> Vec<usize> {
    let Ok(set) = sched_getaffinity(Pid::from_raw(0)) else {
        return Vec::new();
    };
    (0..CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect()
}

/// Pins the calling thread (and the threads it starts later) to `cpu`.
pub fn pin_current_thread(cpu: usize) -> nix::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set)
}

/// Which cores the forwarder under test and the load generator get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pinning {
    /// The core of the SFU process, and of the baseline forwarder thread.
    pub forwarder_cpu: usize,
    /// The core of the generator (this process's other threads).
    pub generator_cpu: usize,
}

/// Two distinct allowed cores, the first for the forwarder; `None` when
/// fewer than two are allowed (nothing is then pinned).
pub fn choose_pinning(allowed: &[usize]) -> Option<Pinning> {
    match allowed {
        [f, g, ..] => Some(Pinning {
            forwarder_cpu: *f,
            generator_cpu: *g,
        }),
        _ => None,
    }
}

/// CPU seconds of a forwarder at one instant: the whole forwarder (the SFU
/// process; the baseline's thread) and its hot thread(s) (the SFU's shard
/// threads; the same baseline thread).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuReading {
    /// Whole forwarder.
    pub total_s: f64,
    /// Hot threads: what saturates first.
    pub hot_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_two_distinct_cores_or_none() {
        assert_eq!(
            choose_pinning(&[0, 1]),
            Some(Pinning {
                forwarder_cpu: 0,
                generator_cpu: 1
            })
        );
        assert_eq!(choose_pinning(&[3]), None);
        assert_eq!(choose_pinning(&[]), None);
    }

    #[test]
    fn this_thread_is_pinnable_and_clocked() {
        assert!(!allowed_cpus().is_empty());
        let t0 = thread_cpu_ns();
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_ns() > t0);
    }
}
