//! The packets of one published track that went to at least one subscriber,
//! kept for resends.

use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::format::Codec;
use str0m::rtp::ExtensionValues;

/// A packet's place in its track's store: numbered from 1 in the order
/// stored, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoreIndex(NonZeroU64);

impl StoreIndex {
    pub(crate) fn new(n: u64) -> Option<Self> {
        NonZeroU64::new(n).map(Self)
    }

    pub(crate) fn get(self) -> u64 {
        self.0.get()
    }
}

/// What a resend needs of a packet besides the subscriber's own sequence
/// number and timestamp.
#[derive(Debug)]
pub(crate) struct Stored {
    /// The payload, shared with every subscriber's send queue.
    pub(crate) payload: Arc<[u8]>,
    /// The header extensions forwarded with it.
    pub(crate) ext: ExtensionValues,
    pub(crate) marker: bool,
    /// Its codec: a subscriber's payload type is looked up by it.
    pub(crate) codec: Codec,
    at: Instant,
}

/// The last `max_packets` packets of a track, none older than `max_age`.
/// Grows as packets arrive, up to `max_packets`; old packets leave as new
/// ones are stored, so at real video rates it holds `max_age` of them.
#[derive(Debug)]
pub(crate) struct PacketStore {
    packets: VecDeque<Stored>,
    /// The index of `packets[0]`.
    first: u64,
    max_packets: usize,
    max_age: Duration,
}

impl PacketStore {
    pub(crate) fn new(max_packets: usize, max_age: Duration) -> Self {
        Self {
            packets: VecDeque::new(),
            first: 1,
            max_packets: max_packets.max(1),
            max_age,
        }
    }

    /// Keeps a packet; returns where it is.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        payload: Arc<[u8]>,
        ext: ExtensionValues,
        marker: bool,
        codec: Codec,
    ) -> StoreIndex {
        while self
            .packets
            .front()
            .is_some_and(|p| self.packets.len() >= self.max_packets || self.too_old(now, p))
        {
            self.packets.pop_front();
            self.first += 1;
        }
        self.packets.push_back(Stored {
            payload,
            ext,
            marker,
            codec,
            at: now,
        });
        let index = self.first + self.packets.len() as u64 - 1;
        StoreIndex::new(index).expect("indexes start at 1")
    }

    /// The packet at `index`, if it is still kept and not too old.
    pub(crate) fn get(&self, now: Instant, index: StoreIndex) -> Option<&Stored> {
        let offset = index.get().checked_sub(self.first)?;
        let p = self.packets.get(usize::try_from(offset).ok()?)?;
        (!self.too_old(now, p)).then_some(p)
    }

    fn too_old(&self, now: Instant, p: &Stored) -> bool {
        now.saturating_duration_since(p.at) > self.max_age
    }

    /// The oldest packet kept (or the next to be stored, when empty).
    pub(crate) fn oldest(&self) -> StoreIndex {
        StoreIndex::new(self.first).expect("indexes start at 1")
    }

    /// Packets kept.
    pub(crate) fn len(&self) -> usize {
        self.packets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(n: u8) -> Arc<[u8]> {
        vec![n; 4].into()
    }

    fn store(s: &mut PacketStore, now: Instant, n: u8) -> StoreIndex {
        s.push(
            now,
            payload(n),
            ExtensionValues::default(),
            n.is_multiple_of(2),
            Codec::Vp8,
        )
    }

    #[test]
    fn keeps_the_last_packets_up_to_the_count() {
        let now = Instant::now();
        let mut s = PacketStore::new(3, Duration::from_secs(3));
        let idx: Vec<StoreIndex> = (0..5).map(|n| store(&mut s, now, n)).collect();
        assert_eq!(s.len(), 3);
        assert!(s.get(now, idx[0]).is_none());
        assert!(s.get(now, idx[1]).is_none());
        let p = s.get(now, idx[4]).expect("kept");
        assert_eq!(&*p.payload, &[4; 4]);
        assert!(p.marker);
        assert_eq!(&*s.get(now, idx[2]).unwrap().payload, &[2; 4]);
        assert!(
            s.get(now, StoreIndex::new(99).unwrap()).is_none(),
            "not stored yet"
        );
    }

    #[test]
    fn forgets_packets_older_than_the_window() {
        let t0 = Instant::now();
        let mut s = PacketStore::new(100, Duration::from_secs(3));
        let old = store(&mut s, t0, 1);
        let t1 = t0 + Duration::from_secs(2);
        let newer = store(&mut s, t1, 2);
        let t2 = t0 + Duration::from_millis(3001);
        assert!(s.get(t2, old).is_none(), "too old to resend");
        assert!(s.get(t2, newer).is_some());
        // Storing drops what aged out, so memory follows the window.
        store(&mut s, t2, 3);
        assert_eq!(s.len(), 2);
        assert!(s.get(t2, newer).is_some(), "indexes survive eviction");
    }
}
