//! Frames held back because their KID names an epoch not installed yet.
//!
//! Nothing about them is authenticated, so the queue is bounded by count and
//! by bytes, and full means the oldest frame goes.

use std::collections::VecDeque;
use web_time::Instant;

use super::codec::Header;

#[derive(Debug)]
pub(crate) struct Pending<T> {
    /// When it is given up (`None`: only by eviction or a new epoch).
    pub(crate) deadline: Option<Instant>,
    pub(crate) header: Header,
    pub(crate) frame: Vec<u8>,
    pub(crate) metadata: Vec<u8>,
    /// The metadata is the media format's clear prefix, to be put back in
    /// front of the plaintext.
    pub(crate) keep_metadata: bool,
    pub(crate) ctx: T,
}

impl<T> Pending<T> {
    fn bytes(&self) -> usize {
        self.frame.len() + self.metadata.len()
    }
}

#[derive(Debug)]
pub(crate) struct PendingQueue<T> {
    queue: VecDeque<Pending<T>>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
}

impl<T> PendingQueue<T> {
    pub(crate) fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            bytes: 0,
            max_frames,
            max_bytes,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Queues `p`, evicting the oldest frames to stay within bounds, and
    /// returns how many were evicted. `Err` gives `p` back if it alone is
    /// over the bounds (nothing is evicted then).
    pub(crate) fn push(&mut self, p: Pending<T>) -> Result<u64, Pending<T>> {
        if self.max_frames == 0 || p.bytes() > self.max_bytes {
            return Err(p);
        }
        let mut evicted = 0;
        while self.queue.len() >= self.max_frames || self.bytes + p.bytes() > self.max_bytes {
            if self.pop_front().is_none() {
                break;
            }
            evicted += 1;
        }
        self.bytes += p.bytes();
        self.queue.push_back(p);
        Ok(evicted)
    }

    fn pop_front(&mut self) -> Option<Pending<T>> {
        let p = self.queue.pop_front()?;
        self.bytes -= p.bytes();
        Some(p)
    }

    /// Drops every frame whose deadline is at or before `now`; returns how
    /// many.
    pub(crate) fn expire(&mut self, now: Instant) -> u64 {
        let before = self.queue.len();
        let mut bytes = self.bytes;
        self.queue.retain(|p| {
            let keep = p.deadline.is_none_or(|d| d > now);
            if !keep {
                bytes -= p.bytes();
            }
            keep
        });
        self.bytes = bytes;
        (before - self.queue.len()) as u64
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.queue.iter().filter_map(|p| p.deadline).min()
    }

    /// Empties the queue, oldest first.
    pub(crate) fn take_all(&mut self) -> VecDeque<Pending<T>> {
        self.bytes = 0;
        std::mem::take(&mut self.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn p(now: Instant, ms: u64, size: usize, ctx: u32) -> Pending<u32> {
        Pending {
            deadline: Some(now + Duration::from_millis(ms)),
            header: Header {
                kid: 1,
                ctr: 0,
                len: 1,
            },
            frame: vec![0; size],
            metadata: vec![],
            keep_metadata: false,
            ctx,
        }
    }

    #[test]
    fn bounded_by_count_and_bytes() {
        let now = Instant::now();
        let mut q = PendingQueue::new(2, 100);
        let ok = |r: Result<u64, Pending<u32>>| r.ok();
        assert_eq!(ok(q.push(p(now, 10, 10, 1))), Some(0));
        assert_eq!(ok(q.push(p(now, 10, 10, 2))), Some(0));
        assert_eq!(
            ok(q.push(p(now, 10, 10, 3))),
            Some(1),
            "count bound evicts the oldest"
        );
        assert_eq!(
            ok(q.push(p(now, 10, 91, 4))),
            Some(2),
            "count, then byte bound evict"
        );
        let too_big = q.push(p(now, 10, 101, 5)).err().map(|p| p.ctx);
        assert_eq!(too_big, Some(5), "too big alone");
        let left: Vec<u32> = q.take_all().into_iter().map(|p| p.ctx).collect();
        assert_eq!(left, [4]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn expiry() {
        let now = Instant::now();
        let mut q = PendingQueue::new(10, 1000);
        assert!(q.push(p(now, 20, 1, 1)).is_ok());
        assert!(q.push(p(now, 10, 1, 2)).is_ok());
        assert_eq!(q.next_deadline(), Some(now + Duration::from_millis(10)));
        assert_eq!(q.expire(now + Duration::from_millis(10)), 1);
        assert_eq!(q.expire(now + Duration::from_millis(19)), 0);
        assert_eq!(q.expire(now + Duration::from_millis(20)), 1);
        assert_eq!(q.next_deadline(), None);
    }
}
