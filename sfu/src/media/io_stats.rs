//! Counters of the media socket's system calls: how well reads and writes
//! batch, how much GSO carries, and what had to be dropped.
//!
//! Each shard counts into a plain [`IoCounters`] and publishes a copy a few
//! times a second, like the media plane's `Stats`, so nothing is shared per
//! packet. `/metrics` shows the sum over the shards ([`IoStats::render_sum`]).

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
    /// Shard time spent applying participants' SDP and candidates, in
    /// microseconds (parsing is done before, off the shard).
    pub negotiation_micros: u64,
    /// Negotiation requests refused because the participant had used up
    /// its share of shard time.
    pub negotiations_limited: u64,
}

impl IoCounters {
    /// The counters of several shards as one: totals add up; of the gauges,
    /// each is the smallest any shard has, so `gso_enabled` is 1 only while
    /// every shard uses GSO and the buffer sizes are the least any socket
    /// got (all shards ask for the same). Zero for no shards.
    ///
    /// ```
    /// use sfu::media::IoCounters;
    /// let mut a = IoCounters::default();
    /// a.send_datagrams = 3;
    /// a.gso_enabled = 1;
    /// let mut b = a;
    /// b.gso_enabled = 0;
    /// let sum = IoCounters::combine([a, b]);
    /// assert_eq!((sum.send_datagrams, sum.gso_enabled), (6, 0));
    /// ```
    pub fn combine(shards: impl IntoIterator<Item = IoCounters>) -> IoCounters {
        let mut shards = shards.into_iter();
        let Some(mut sum) = shards.next() else {
            return IoCounters::default();
        };
        for c in shards {
            sum.recv_syscalls += c.recv_syscalls;
            sum.recv_empty += c.recv_empty;
            sum.recv_full_batches += c.recv_full_batches;
            sum.recv_datagrams += c.recv_datagrams;
            sum.recv_errors += c.recv_errors;
            sum.send_syscalls += c.send_syscalls;
            sum.send_messages += c.send_messages;
            sum.send_datagrams += c.send_datagrams;
            sum.gso_messages += c.gso_messages;
            sum.gso_segments += c.gso_segments;
            sum.gso_fallbacks += c.gso_fallbacks;
            sum.send_waits += c.send_waits;
            sum.send_dropped += c.send_dropped;
            sum.negotiation_micros += c.negotiation_micros;
            sum.negotiations_limited += c.negotiations_limited;
            sum.gso_enabled = sum.gso_enabled.min(c.gso_enabled);
            sum.recv_buffer_bytes = sum.recv_buffer_bytes.min(c.recv_buffer_bytes);
            sum.send_buffer_bytes = sum.send_buffer_bytes.min(c.send_buffer_bytes);
        }
        sum
    }
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
    /// starting with `sfu_media_io_` (the socket's) and
    /// `sfu_media_negotiation` (the shard's time for negotiation).
    ///
    /// ```
    /// let mut out = String::new();
    /// sfu::media::IoStats::new().render(&mut out);
    /// assert!(out.contains("\nsfu_media_io_send_syscalls_total 0\n"));
    /// ```
    pub fn render(&self, out: &mut String) {
        Self::render_sum(std::slice::from_ref(self), out);
    }

    /// [`Self::render`] for several shards at once: the values are their
    /// [`IoCounters::combine`]d counters.
    pub fn render_sum(shards: &[IoStats], out: &mut String) {
        let c = IoCounters::combine(shards.iter().map(IoStats::snapshot));
        for (name, kind, help, value) in rows(&c) {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

#[rustfmt::skip]
fn rows(c: &IoCounters) -> [(&'static str, &'static str, &'static str, u64); 18] {
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
        ("sfu_media_io_gso_enabled", "gauge", "1 while UDP GSO is in use on every shard's media socket.", c.gso_enabled),
        ("sfu_media_io_recv_buffer_bytes", "gauge", "Kernel receive buffer granted to the media sockets (the smallest).", c.recv_buffer_bytes),
        ("sfu_media_io_send_buffer_bytes", "gauge", "Kernel send buffer granted to the media sockets (the smallest).", c.send_buffer_bytes),
        ("sfu_media_negotiation_microseconds_total", "counter", "Shard time spent applying participants' SDP and candidates.", c.negotiation_micros),
        ("sfu_media_negotiations_rate_limited_total", "counter", "Negotiation requests refused: the participant's share of shard time was used up.", c.negotiations_limited),
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
        assert_eq!(samples.len(), 18);
        for line in out.lines().filter(|l| l.starts_with("# TYPE")) {
            let mut parts = line.split(' ').skip(2);
            let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
        }
    }

    #[test]
    fn shards_render_as_their_sum() {
        let shard = |n: u64, gso: u64, buf: u64| {
            let s = IoStats::new();
            s.publish(&IoCounters {
                recv_syscalls: n,
                recv_datagrams: 10 * n,
                send_dropped: n,
                gso_enabled: gso,
                recv_buffer_bytes: buf,
                send_buffer_bytes: buf,
                ..IoCounters::default()
            });
            s
        };
        let shards = [shard(1, 1, 4096), shard(2, 1, 2048), shard(4, 1, 8192)];
        let mut out = String::new();
        IoStats::render_sum(&shards, &mut out);
        for line in [
            "sfu_media_io_recv_syscalls_total 7",
            "sfu_media_io_recv_datagrams_total 70",
            "sfu_media_io_send_dropped_total 7",
            "sfu_media_io_gso_enabled 1",
            "sfu_media_io_recv_buffer_bytes 2048",
            "sfu_media_io_send_buffer_bytes 2048",
        ] {
            assert!(out.contains(&format!("\n{line}\n")), "{line} in {out}");
        }
        // One shard without GSO: not in use everywhere.
        let c = IoCounters::combine([shards[0].snapshot(), shard(1, 0, 4096).snapshot()]);
        assert_eq!((c.gso_enabled, c.recv_syscalls), (0, 2));
        assert_eq!(IoCounters::combine([]), IoCounters::default());
    }
}
