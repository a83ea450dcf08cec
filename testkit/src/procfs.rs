//! CPU time and memory from Linux's `/proc`, for the tools that measure
//! a process from outside (the forwarding benchmark, the load tester).
//!
//! Parsing is pure and tested on fixed text; only the `read_*` functions
//! and [`threads_named`] touch the system, and they return `None` (or
//! nothing) where `/proc` is missing or restricted.

/// Clock ticks per second of `/proc` CPU times (`USER_HZ`): 100 in the
/// kernel's user ABI on every architecture we run on. Reading `sysconf`
/// instead would need `unsafe`.
pub const USER_HZ: f64 = 100.0;

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
    parse_status_kb(text, "VmRSS:")
}

/// `RssAnon` from a `/proc/<pid>/status` text, in bytes: resident memory
/// that is not backed by a file (heap, stacks), without the executable's
/// code pages that `VmRSS` counts as they are first run.
pub fn parse_status_anon_rss(text: &str) -> Option<u64> {
    parse_status_kb(text, "RssAnon:")
}

fn parse_status_kb(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let mut it = line.split_whitespace().skip(1);
    let kb: u64 = it.next()?.parse().ok()?;
    match it.next() {
        Some("kB") | None => Some(kb * 1024),
        Some(_) => None,
    }
}

/// Which line of `/proc/stat` to read busy time from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cpu {
    /// The `cpu` line: all cores summed.
    All,
    /// The `cpu<n>` line of one core.
    Core(usize),
}

/// Busy seconds (everything but idle and iowait) of `cpu` from the text of
/// `/proc/stat`.
pub fn parse_busy_s(text: &str, cpu: Cpu) -> Option<f64> {
    let tag = match cpu {
        Cpu::All => "cpu ".to_owned(),
        Cpu::Core(n) => format!("cpu{n} "),
    };
    let line = text.lines().find(|l| l.starts_with(&tag))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice];
    // guest time is already inside user, so it is not added again.
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

/// Busy seconds of `cpu` so far.
pub fn read_busy_s(cpu: Cpu) -> Option<f64> {
    parse_busy_s(&std::fs::read_to_string("/proc/stat").ok()?, cpu)
}

/// The host's UDP receive-buffer drops so far.
pub fn read_udp_rcvbuf_errors() -> Option<u64> {
    parse_udp_rcvbuf_errors(&std::fs::read_to_string("/proc/net/snmp").ok()?)
}

/// CPU seconds (user + system) of a whole process.
pub fn read_process_cpu_s(pid: u32) -> Option<f64> {
    parse_stat_cpu_s(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU seconds (user + system) of the calling process.
pub fn read_self_cpu_s() -> Option<f64> {
    parse_stat_cpu_s(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// CPU seconds of one thread of a process.
pub fn read_thread_cpu_s(pid: u32, tid: u32) -> Option<f64> {
    parse_stat_cpu_s(&std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?)
}

/// Resident memory of a process, bytes.
pub fn read_rss_bytes(pid: u32) -> Option<u64> {
    parse_status_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The resident anonymous memory of process `pid` (see
/// [`parse_status_anon_rss`]).
pub fn read_anon_rss_bytes(pid: u32) -> Option<u64> {
    parse_status_anon_rss(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// Thread ids of `pid` whose name starts with `prefix`, ascending.
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
        let text = "VmRSS:\t 5120 kB\nRssAnon:\t 1024 kB\nRssFile:\t 4096 kB\n";
        assert_eq!(parse_status_anon_rss(text), Some(1024 * 1024));
    }

    #[test]
    fn reads_busy_time_of_the_host_and_of_one_core() {
        let stat = "cpu  100 20 30 1000 50 5 5 10 7 0\n\
                    cpu0 100 20 30 1000 50 5 5 10 7 0\ncpu1 1 1 1 1 1 1 1 1\nintr 1\n";
        // user+nice+system+irq+softirq+steal = 170 ticks; guest not re-added.
        assert_eq!(parse_busy_s(stat, Cpu::All), Some(1.7));
        assert_eq!(parse_busy_s(stat, Cpu::Core(0)), Some(1.7));
        assert_eq!(parse_busy_s(stat, Cpu::Core(1)), Some(0.06));
        assert_eq!(parse_busy_s(stat, Cpu::Core(2)), None);
        assert_eq!(parse_busy_s("intr 1\n", Cpu::All), None);
        assert_eq!(parse_busy_s("cpu  1 x 3 4\n", Cpu::All), None);
    }

    #[test]
    fn reads_udp_drops() {
        let snmp = "Ip: a b\nIp: 1 2\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\n\
                    Udp: 10 0 7 9 7\nUdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(parse_udp_rcvbuf_errors(snmp), Some(7));
        assert_eq!(parse_udp_rcvbuf_errors("Ip: a\n"), None);
    }

    #[test]
    fn this_process_is_readable() {
        let pid = std::process::id();
        assert!(read_process_cpu_s(pid).is_some());
        assert!(read_self_cpu_s().is_some());
        assert!(read_rss_bytes(pid).is_some_and(|b| b > 0));
        assert!(read_busy_s(Cpu::All).is_some());
        assert!(!threads_named(pid, "").is_empty());
    }
}
