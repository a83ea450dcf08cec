//! An emulated bottleneck in front of a light listener's socket: what a
//! subscriber on a slow link (a phone on a train, hotel Wi-Fi) sees.
//!
//! Datagrams leave the bottleneck at its rate, one after another, each
//! taking its size (with UDP and IPv4 headers) over the rate; what arrives
//! while the queue already holds more than [`MAX_QUEUE`] of sending time
//! is dropped (drop-tail), as a router's buffer does. So the SFU's
//! congestion control sees what it would on a real link: delay growing as
//! the queue fills, then loss. Sans-IO: the listener tells it the time.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The longest queue, in sending time: a typical access-link buffer.
pub(super) const MAX_QUEUE: Duration = Duration::from_millis(300);

/// Bytes a datagram costs on the link beyond its payload: IPv4 and UDP
/// headers.
const OVERHEAD: usize = 28;

/// A datagram in the queue.
pub(super) struct Held {
    /// When it leaves the bottleneck.
    due: Instant,
    /// Where it came from.
    pub(super) source: SocketAddr,
    /// Its bytes.
    pub(super) bytes: Vec<u8>,
}

/// The bottleneck.
pub(super) struct Downlink {
    rate_bps: u64,
    queue: VecDeque<Held>,
    /// When the link has sent everything it holds.
    busy_until: Option<Instant>,
    /// Buffers of released datagrams, for the next ones.
    spare: Vec<Vec<u8>>,
    /// Datagrams dropped at a full queue.
    pub(super) dropped: u64,
}

impl Downlink {
    /// A bottleneck of `rate_bps` bits per second.
    pub(super) fn new(rate_bps: u64) -> Self {
        Self {
            rate_bps: rate_bps.max(1),
            queue: VecDeque::new(),
            busy_until: None,
            spare: Vec::new(),
            dropped: 0,
        }
    }

    /// A datagram from `source` arrives at the bottleneck at `now`.
    /// Returns `false` if it was dropped.
    pub(super) fn arrive(&mut self, now: Instant, source: SocketAddr, data: &[u8]) -> bool {
        let start = self.busy_until.map_or(now, |b| b.max(now));
        if start.duration_since(now) > MAX_QUEUE {
            self.dropped += 1;
            tracing::trace!(dropped = self.dropped, "emulated downlink queue full");
            return false;
        }
        let bits = ((data.len() + OVERHEAD) * 8) as u64;
        let due = start + Duration::from_nanos(bits * 1_000_000_000 / self.rate_bps);
        self.busy_until = Some(due);
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(data);
        self.queue.push_back(Held { due, source, bytes });
        true
    }

    /// When the next datagram leaves, if any is queued.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|h| h.due)
    }

    /// The next datagram that has left by `now`; give its buffer back with
    /// [`Self::recycle`].
    pub(super) fn depart(&mut self, now: Instant) -> Option<Held> {
        if self.queue.front().is_some_and(|h| h.due <= now) {
            self.queue.pop_front()
        } else {
            None
        }
    }

    /// Takes back a departed datagram's buffer.
    pub(super) fn recycle(&mut self, held: Held) {
        if self.spare.len() < 64 {
            self.spare.push(held.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    #[test]
    fn datagrams_leave_at_the_link_rate() {
        let t0 = Instant::now();
        // 1 Mbit/s: a 972-byte datagram (1000 on the link) takes 8 ms.
        let mut d = Downlink::new(1_000_000);
        for _ in 0..3 {
            assert!(d.arrive(t0, addr(), &[0u8; 972]));
        }
        assert_eq!(d.next_due(), Some(t0 + Duration::from_millis(8)));
        assert!(d.depart(t0 + Duration::from_millis(7)).is_none());
        let first = d.depart(t0 + Duration::from_millis(8)).unwrap();
        assert_eq!(first.bytes.len(), 972);
        d.recycle(first);
        assert_eq!(d.next_due(), Some(t0 + Duration::from_millis(16)));
        // An idle link sends a late arrival at once (plus its own time).
        let later = t0 + Duration::from_secs(1);
        assert!(d.arrive(later, addr(), &[0u8; 972]));
        let mut out = Vec::new();
        while let Some(h) = d.depart(later + Duration::from_millis(8)) {
            out.push(h.bytes.len());
        }
        assert_eq!(out, [972, 972, 972]);
        assert_eq!(d.dropped, 0);
    }

    #[test]
    fn a_full_queue_drops_the_tail() {
        let t0 = Instant::now();
        let mut d = Downlink::new(1_000_000);
        // 300 ms of queue at 8 ms a datagram: the 38th starts after
        // 296 ms and fits, the 39th would start after 304 ms.
        let sent = (0..50)
            .filter(|_| d.arrive(t0, addr(), &[0u8; 972]))
            .count();
        assert_eq!(sent, 38);
        assert_eq!(d.dropped, 12);
        // As the queue drains, room comes back.
        let mut n = 0;
        while d.depart(t0 + Duration::from_millis(80)).is_some() {
            n += 1;
        }
        assert_eq!(n, 10);
        assert!(d.arrive(t0 + Duration::from_millis(80), addr(), &[0u8; 972]));
    }
}
