//! A seeded network emulator on virtual time.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How one direction of a link behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Probability in [0, 1] that a datagram is dropped.
    pub loss: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra uniformly random delay in [0, jitter). Reorders packets.
    pub jitter: Duration,
    /// Drop only RTP/RTCP (first byte 128..=191), never STUN or DTLS, so a
    /// loss test measures media recovery rather than handshake retries.
    pub loss_media_only: bool,
    /// A bottleneck: datagrams leave one after another at this many bits
    /// per second (a router's queue in front of a slow last mile). `None`
    /// for no limit.
    pub rate_bps: Option<u64>,
    /// With a rate: a datagram that would wait longer than this in the
    /// bottleneck's queue is dropped (drop-tail), as a router with a
    /// bounded buffer does.
    pub queue_limit: Duration,
}

impl Default for Link {
    fn default() -> Self {
        Self {
            loss: 0.0,
            delay: Duration::from_millis(1),
            jitter: Duration::ZERO,
            loss_media_only: true,
            rate_bps: None,
            queue_limit: Duration::from_millis(200),
        }
    }
}

/// A datagram in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Sender.
    pub source: SocketAddr,
    /// Receiver.
    pub destination: SocketAddr,
    /// Bytes.
    pub contents: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Queued {
    at: Instant,
    order: u64,
    source: SocketAddr,
    destination: SocketAddr,
    contents: Vec<u8>,
}

/// The emulator. Deterministic for a given seed and input sequence.
#[derive(Debug)]
pub struct SimNet {
    state: u64,
    default: Link,
    links: HashMap<(SocketAddr, SocketAddr), Link>,
    /// Per rate-limited link, when its bottleneck is free again.
    busy_until: HashMap<(SocketAddr, SocketAddr), Instant>,
    queue: BinaryHeap<Reverse<Queued>>,
    order: u64,
    /// Datagrams dropped so far.
    pub dropped: u64,
    /// Datagrams delivered so far.
    pub delivered: u64,
}

impl SimNet {
    /// A network where every link is `default`.
    pub fn new(seed: u64, default: Link) -> Self {
        Self {
            state: seed ^ 0x9E37_79B9_7F4A_7C15,
            default,
            links: HashMap::new(),
            busy_until: HashMap::new(),
            queue: BinaryHeap::new(),
            order: 0,
            dropped: 0,
            delivered: 0,
        }
    }

    /// Overrides the link from `source` to `destination`.
    pub fn set_link(&mut self, source: SocketAddr, destination: SocketAddr, link: Link) {
        self.links.insert((source, destination), link);
    }

    // splitmix64: tiny, seedable, good enough for test randomness.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Sends a datagram at `now`.
    pub fn send(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: Vec<u8>,
    ) {
        let link = self
            .links
            .get(&(source, destination))
            .copied()
            .unwrap_or(self.default);
        let is_media = matches!(contents.first(), Some(128..=191));
        if link.loss > 0.0 && (is_media || !link.loss_media_only) && self.unit() < link.loss {
            self.dropped += 1;
            return;
        }
        // The bottleneck: the datagram leaves when the ones queued before
        // it have, taking its size over the rate.
        let mut leaves = now;
        if let Some(rate) = link.rate_bps.filter(|r| *r > 0) {
            let key = (source, destination);
            let free = self.busy_until.get(&key).copied().unwrap_or(now).max(now);
            if free.saturating_duration_since(now) > link.queue_limit {
                self.dropped += 1;
                return;
            }
            let bits = contents.len() as u64 * 8;
            leaves = free + Duration::from_nanos(bits * 1_000_000_000 / rate);
            self.busy_until.insert(key, leaves);
        }
        let jitter = if link.jitter.is_zero() {
            Duration::ZERO
        } else {
            link.jitter.mul_f64(self.unit())
        };
        self.order += 1;
        self.queue.push(Reverse(Queued {
            at: leaves + link.delay + jitter,
            order: self.order,
            source,
            destination,
            contents,
        }));
    }

    /// When the next datagram arrives, if any is in flight.
    pub fn next_delivery(&self) -> Option<Instant> {
        self.queue.peek().map(|q| q.0.at)
    }

    /// The next datagram due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Datagram> {
        if self.next_delivery()? > now {
            return None;
        }
        let Reverse(q) = self.queue.pop()?;
        self.delivered += 1;
        Some(Datagram {
            source: q.source,
            destination: q.destination,
            contents: q.contents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], p))
    }

    #[test]
    fn same_seed_same_losses_and_order() {
        let run = |seed| {
            let t0 = Instant::now();
            let link = Link {
                loss: 0.2,
                delay: Duration::from_millis(5),
                jitter: Duration::from_millis(20),
                loss_media_only: false,
                ..Link::default()
            };
            let mut n = SimNet::new(seed, link);
            for i in 0..200u8 {
                n.send(t0, addr(1), addr(2), vec![128, i]);
            }
            let mut got = Vec::new();
            while let Some(d) = n.pop_due(t0 + Duration::from_secs(1)) {
                got.push(d.contents[1]);
            }
            got
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let got = run(7);
        assert!(
            (140..=180).contains(&got.len()),
            "about 20% lost: {}",
            got.len()
        );
        assert!(got.windows(2).any(|w| w[0] > w[1]), "jitter reorders");
    }

    #[test]
    fn media_only_loss_spares_handshakes() {
        let t0 = Instant::now();
        let link = Link {
            loss: 1.0,
            ..Link::default()
        };
        let mut n = SimNet::new(1, link);
        n.send(t0, addr(1), addr(2), vec![0, 1]); // STUN
        n.send(t0, addr(1), addr(2), vec![22, 1]); // DTLS
        n.send(t0, addr(1), addr(2), vec![128, 1]); // RTP
        assert_eq!(n.dropped, 1);
        assert!(n.pop_due(t0).is_none(), "delay applies");
        let later = t0 + Duration::from_millis(1);
        assert_eq!(n.pop_due(later).unwrap().contents, vec![0, 1]);
        assert_eq!(n.pop_due(later).unwrap().contents, vec![22, 1]);
        assert!(n.pop_due(later).is_none());
    }

    #[test]
    fn a_bottleneck_spaces_datagrams_and_drops_past_its_queue() {
        let t0 = Instant::now();
        let link = Link {
            rate_bps: Some(80_000), // 1,000-byte datagrams: 100 ms each
            queue_limit: Duration::from_millis(250),
            delay: Duration::from_millis(10),
            ..Link::default()
        };
        let mut n = SimNet::new(7, link);
        for _ in 0..5 {
            n.send(t0, addr(1), addr(2), vec![128; 1000]);
        }
        // Three fit the queue (waits 0, 100, 200 ms); the fourth would wait
        // 300 ms.
        assert_eq!(n.dropped, 2);
        let mut arrivals = Vec::new();
        while let Some(at) = n.next_delivery() {
            n.pop_due(at).unwrap();
            arrivals.push(at - t0);
        }
        let ms: Vec<u128> = arrivals.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [110, 210, 310]);
        // Other links are not slowed by it.
        n.set_link(addr(3), addr(4), Link::default());
        n.send(t0, addr(3), addr(4), vec![128; 1000]);
        assert_eq!(n.next_delivery(), Some(t0 + Duration::from_millis(1)));
    }
}
