//! CPU time and memory from `/proc`, thread CPU clocks, and core pinning.
//!
//! Parsing is pure and tested; only the `read_*` functions and the pinning
//! touch the system.

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::time::{ClockId, clock_gettime};
use nix::unistd::Pid;

/// Linux reports `/proc` CPU times in these ticks per second (`USER_HZ`,
/// 100 on every architecture we run on).
const USER_HZ: f64 = 100.0;

/// User + system seconds from a `/proc/<pid>/stat` or
/// `/proc/<pid>/task/<tid>/stat` line.
pub fn parse_stat_cpu_s(text: &str) -> Option<f64> {
    // The command name (field 2) may hold spaces and parentheses; what
    // follows its last ')' is plain numbers: state is field 3, utime 14 and
    // stime 15.
    let rest = text.get(text.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// `VmRSS` in bytes from a `/proc/<pid>/status` text.
pub fn parse_status_rss(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut it = line.split_whitespace().skip(1);
    let kb: u64 = it.next()?.parse().ok()?;
    match it.next() {
        Some("kB") | None => Some(kb * 1024),
        Some(_) => None,
    }
}

/// Busy seconds (everything but idle and iowait) of one core from the
/// text of `/proc/stat`.
pub fn parse_core_busy_s(text: &str, cpu: usize) -> Option<f64> {
    let tag = format!("cpu{cpu} ");
    let line = text.lines().find(|l| l.starts_with(&tag))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice];
    // guest time is already inside user.
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some(total.saturating_sub(idle) as f64 / USER_HZ)
}

/// `RcvbufErrors` of the `Udp:` lines of `/proc/net/snmp`: datagrams the
/// kernel dropped because a socket's receive buffer was full.
pub fn parse_udp_rcvbuf_errors(text: &str) -> Option<u64> {
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let names = udp.next()?;
    let values = udp.next()?;
    let i = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// Busy seconds of one core so far.
pub fn read_core_busy_s(cpu: usize) -> Option<f64> {
    parse_core_busy_s(&std::fs::read_to_string("/proc/stat").ok()?, cpu)
}

/// The host's UDP receive-buffer drops so far.
pub fn read_udp_rcvbuf_errors() -> Option<u64> {
    parse_udp_rcvbuf_errors(&std::fs::read_to_string("/proc/net/snmp").ok()?)
}

/// CPU seconds (user + system) of a whole process.
pub fn read_process_cpu_s(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu_s(&text)
}

/// CPU seconds of one thread of a process.
pub fn read_thread_cpu_s(pid: u32, tid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
    parse_stat_cpu_s(&text)
}

/// Resident memory of a process, bytes.
pub fn read_rss_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_rss(&text)
}

/// Thread ids of `pid` whose name starts with `prefix` (the SFU names its
/// media threads `sfu-shard-<i>`).
pub fn threads_named(pid: u32, prefix: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut tids: Vec<u32> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let tid: u32 = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            comm.trim_end().starts_with(prefix).then_some(tid)
        })
        .collect();
    tids.sort_unstable();
    tids
}

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
    fn reads_cpu_even_with_odd_names() {
        let line = "4242 (sfu (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100 0 0\n";
        assert_eq!(parse_stat_cpu_s(line), Some(3.0));
        assert_eq!(parse_stat_cpu_s("garbage"), None);
        assert_eq!(parse_stat_cpu_s("1 (x) S 1 2"), None);
    }

    #[test]
    fn reads_rss() {
        let text = "Name:\tsfu\nVmPeak:\t  9 kB\nVmRSS:\t   5120 kB\nThreads: 4\n";
        assert_eq!(parse_status_rss(text), Some(5120 * 1024));
        assert_eq!(parse_status_rss("Name: x\n"), None);
        assert_eq!(parse_status_rss("VmRSS: 12 MB\n"), None);
    }

    #[test]
    fn reads_core_busy_and_udp_drops() {
        let stat = "cpu  1 2 3 4\ncpu0 100 20 30 1000 50 5 5 10 7 0\ncpu1 1 1 1 1 1 1 1 1\n";
        assert_eq!(parse_core_busy_s(stat, 0), Some(1.7));
        assert_eq!(parse_core_busy_s(stat, 1), Some(0.06));
        assert_eq!(parse_core_busy_s(stat, 2), None);
        let snmp = "Ip: a b\nIp: 1 2\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\n\
                    Udp: 10 0 7 9 7\nUdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(parse_udp_rcvbuf_errors(snmp), Some(7));
        assert_eq!(parse_udp_rcvbuf_errors("Ip: a\n"), None);
    }

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
    fn this_process_is_readable() {
        let pid = std::process::id();
        assert!(read_process_cpu_s(pid).is_some());
        assert!(read_rss_bytes(pid).is_some_and(|b| b > 0));
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
