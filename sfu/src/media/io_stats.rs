//! Counters of the media socket's system calls: how well reads and writes
//! batch, how much GSO carries, and what had to be dropped.
//!
//! The shard counts into a plain [`IoCounters`] and publishes a copy a few
//! times a second, like the media plane's `Stats`, so nothing is shared per
//! packet.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// Socket-level counters of one media shard. All are totals since start,
/// except the two gauges `gso_enabled` and the buffer sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IoCounters {
    /// recvmmsg calls, the ones that found nothing included.
    pub recv_syscalls: u64,
    /// recvmmsg calls that found the socket empty.
    pub recv_empty: u64,
    /// recvmmsg calls that filled the whole batch (the socket had more).
    pub recv_full_batches: u64,
    /// Datagrams read.
    pub recv_datagrams: u64,
    /// recvmmsg calls that failed with something other than "empty".
    pub recv_errors: u64,
    /// sendmmsg calls, failed ones included.
    pub send_syscalls: u64,
    /// Messages (msghdrs) the kernel accepted; a GSO message carries
    /// several datagrams.
    pub send_messages: u64,
    /// Datagrams the kernel accepted (each GSO segment counts).
    pub send_datagrams: u64,
    /// Messages sent with a UDP_SEGMENT control message and more than one
    /// segment.
    pub gso_messages: u64,
    /// Datagrams carried by those messages.
    pub gso_segments: u64,
    /// Times a GSO send failed and GSO was turned off for the socket.
    pub gso_fallbacks: u64,
    /// Times a write found the socket's send buffer full and waited.
    pub send_waits: u64,
    /// Datagrams dropped because the send buffer stayed full or the kernel
    /// refused them.
    pub send_dropped: u64,
    /// 1 while GSO is in use on the socket, else 0.
    pub gso_enabled: u64,
    /// The kernel receive buffer actually granted, in bytes.
    pub recv_buffer_bytes: u64,
    /// The kernel send buffer actually granted, in bytes.
    pub send_buffer_bytes: u64,
}

/// The latest [`IoCounters`] of a shard, readable from other threads. Cheap
/// to clone.
#[derive(Debug, Clone, Default)]
pub struct IoStats(Arc<Mutex<IoCounters>>);

impl IoStats {
    /// A zeroed handle.
    pub fn new() -> Self {
        Self::default()
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> IoCounters {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn publish(&self, c: &IoCounters) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = *c;
    }

    /// Appends the counters in the Prometheus text format (0.0.4), names
    /// starting with `sfu_media_io_`.
    ///
    /// ```
    /// let mut out = String::new();
    /// sfu::media::IoStats::new().render(&mut out);
    /// assert!(out.contains("\nsfu_media_io_send_syscalls_total 0\n"));
    /// ```
    pub fn render(&self, out: &mut String) {
        let c = self.snapshot();
        for (name, kind, help, value) in rows(&c) {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

#[rustfmt::skip]
fn rows(c: &IoCounters) -> [(&'static str, &'static str, &'static str, u64); 16] {
    [
        ("sfu_media_io_recv_syscalls_total", "counter", "recvmmsg calls on the media socket.", c.recv_syscalls),
        ("sfu_media_io_recv_empty_total", "counter", "recvmmsg calls that found the media socket empty.", c.recv_empty),
        ("sfu_media_io_recv_full_batches_total", "counter", "recvmmsg calls that filled the whole batch.", c.recv_full_batches),
        ("sfu_media_io_recv_datagrams_total", "counter", "Datagrams read by recvmmsg.", c.recv_datagrams),
        ("sfu_media_io_recv_errors_total", "counter", "recvmmsg calls that failed.", c.recv_errors),
        ("sfu_media_io_send_syscalls_total", "counter", "sendmmsg calls on the media socket.", c.send_syscalls),
        ("sfu_media_io_send_messages_total", "counter", "Messages accepted by sendmmsg (a GSO message holds several datagrams).", c.send_messages),
        ("sfu_media_io_send_datagrams_total", "counter", "Datagrams accepted by sendmmsg.", c.send_datagrams),
        ("sfu_media_io_gso_messages_total", "counter", "Messages sent with UDP GSO.", c.gso_messages),
        ("sfu_media_io_gso_segments_total", "counter", "Datagrams sent inside UDP GSO messages.", c.gso_segments),
        ("sfu_media_io_gso_fallbacks_total", "counter", "GSO sends that failed and turned GSO off.", c.gso_fallbacks),
        ("sfu_media_io_send_waits_total", "counter", "Writes that found the send buffer full and waited.", c.send_waits),
        ("sfu_media_io_send_dropped_total", "counter", "Outgoing datagrams dropped: send buffer full too long, or refused by the kernel.", c.send_dropped),
        ("sfu_media_io_gso_enabled", "gauge", "1 while UDP GSO is in use on the media socket.", c.gso_enabled),
        ("sfu_media_io_recv_buffer_bytes", "gauge", "Kernel receive buffer granted to the media socket.", c.recv_buffer_bytes),
        ("sfu_media_io_send_buffer_bytes", "gauge", "Kernel send buffer granted to the media socket.", c.send_buffer_bytes),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter_once_with_help_and_type() {
        let stats = IoStats::new();
        stats.publish(&IoCounters {
            send_datagrams: 7,
            gso_enabled: 1,
            ..IoCounters::default()
        });
        let mut out = String::new();
        stats.render(&mut out);
        assert!(
            out.contains("\nsfu_media_io_send_datagrams_total 7\n"),
            "{out}"
        );
        assert!(out.contains("\nsfu_media_io_gso_enabled 1\n"), "{out}");
        let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(samples.len(), 16);
        for line in out.lines().filter(|l| l.starts_with("# TYPE")) {
            let mut parts = line.split(' ').skip(2);
            let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
        }
    }
}
