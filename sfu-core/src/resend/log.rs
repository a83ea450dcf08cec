//! One subscription's record of what it sent, by its own sequence numbers.

use super::StoreIndex;

#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    /// Where the packet is in the track's store; 0 for an empty slot.
    stored: u64,
    /// The timestamp this subscription sent it with.
    ts: u32,
    /// The low 32 bits of the (extended) sequence number it went out
    /// with, telling a slot's current packet from one a ring length, or a
    /// 16-bit wrap, earlier or later.
    seq: u32,
}

/// A ring indexed by the subscription's own (rewritten) sequence numbers.
/// The rewriter numbers a subscription's packets without gaps, so the last
/// `len` packets sent are all in it. It starts small and doubles, up to a
/// limit, whenever it would overwrite a packet the store still keeps: it
/// holds what can still be resent, and a quiet subscription costs little.
#[derive(Debug, Default)]
pub(crate) struct SentLog {
    slots: Box<[Sent]>,
}

/// The largest log: 2^15 entries (512 KiB), far beyond any useful
/// retransmission window.
const MAX_SLOTS: usize = 1 << 15;
/// The first allocation: 1 KiB.
const MIN_SLOTS: usize = 64;

impl SentLog {
    /// Notes that sequence number `seq` went out with timestamp `ts`
    /// carrying the stored packet `stored`. `oldest` is the oldest packet
    /// the store still keeps: an entry naming an older one is worthless
    /// and may be overwritten. `capacity` caps the ring (rounded up to a
    /// power of two); 0 keeps nothing.
    #[inline]
    pub(crate) fn record(
        &mut self,
        capacity: usize,
        seq: u64,
        stored: StoreIndex,
        ts: u32,
        oldest: StoreIndex,
    ) {
        if self.slots.is_empty() {
            if capacity == 0 {
                return;
            }
            self.slots = vec![Sent::default(); MIN_SLOTS].into_boxed_slice();
        }
        let limit = capacity.clamp(MIN_SLOTS, MAX_SLOTS).next_power_of_two();
        loop {
            let old = self.slots[seq as usize & (self.slots.len() - 1)];
            let resendable = old.stored >= oldest.get() && old.seq != seq as u32;
            if !resendable || self.slots.len() >= limit {
                break;
            }
            self.grow();
        }
        let mask = self.slots.len() - 1;
        self.slots[seq as usize & mask] = Sent {
            stored: stored.get(),
            ts,
            seq: seq as u32,
        };
    }

    /// Doubles the ring; each entry moves to its slot in the larger one.
    #[cold]
    fn grow(&mut self) {
        let mut bigger = vec![Sent::default(); self.slots.len() * 2].into_boxed_slice();
        let mask = bigger.len() - 1;
        for s in self.slots.iter().filter(|s| s.stored != 0) {
            bigger[s.seq as usize & mask] = *s;
        }
        self.slots = bigger;
    }

    /// Where the packet sent as `seq` is stored, and the timestamp it went
    /// out with, if the log still holds it.
    pub(crate) fn find(&self, seq: u64) -> Option<(StoreIndex, u32)> {
        if self.slots.is_empty() {
            return None;
        }
        let s = self.slots[seq as usize & (self.slots.len() - 1)];
        if s.seq != seq as u32 {
            return None;
        }
        Some((StoreIndex::new(s.stored)?, s.ts))
    }

    /// Bytes it holds.
    #[cfg(test)]
    fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(n: u64) -> StoreIndex {
        StoreIndex::new(n).unwrap()
    }

    #[test]
    fn finds_what_was_sent_until_a_ring_length_later() {
        let mut log = SentLog::default();
        assert_eq!(log.find(5), None, "empty");
        // The store keeps everything: the ring grows to its cap, 64.
        for seq in 0..70_u64 {
            log.record(64, seq, idx(100 + seq), seq as u32 * 3000, idx(1));
        }
        assert_eq!(log.bytes(), 64 * 16);
        assert_eq!(log.find(69), Some((idx(169), 69 * 3000)));
        assert_eq!(log.find(8), Some((idx(108), 8 * 3000)));
        assert_eq!(log.find(5), None, "overwritten by 69");
        assert_eq!(log.find(70), None, "not sent yet");
        assert_eq!(log.find(8 + 65_536), None, "a different packet, same slot");
    }

    #[test]
    fn grows_only_while_it_would_overwrite_what_the_store_keeps() {
        let mut log = SentLog::default();
        // The store keeps the last 100 packets: the ring doubles to 128
        // and stays there, below its cap.
        for seq in 0..1000_u64 {
            let oldest = seq.saturating_sub(99).max(1);
            log.record(1024, seq, idx(seq + 1), 0, idx(oldest));
        }
        assert_eq!(log.bytes(), 128 * 16);
        for seq in 900..1000_u64 {
            assert_eq!(log.find(seq).map(|f| f.0), Some(idx(seq + 1)), "{seq}");
        }
        // Growing kept every entry where it can be found.
        let mut log = SentLog::default();
        for seq in 0..200_u64 {
            log.record(1024, seq, idx(seq + 1), seq as u32, idx(1));
        }
        assert_eq!(log.bytes(), 256 * 16);
        assert!((0..200_u64).all(|s| log.find(s) == Some((idx(s + 1), s as u32))));
    }

    #[test]
    fn keeps_nothing_without_a_capacity() {
        let mut log = SentLog::default();
        log.record(0, 1, idx(1), 0, idx(1));
        assert_eq!(log.find(1), None);
        assert_eq!(log.bytes(), 0);
    }

    #[test]
    fn sequence_numbers_wrap_with_the_ring() {
        let mut log = SentLog::default();
        for seq in 65_500..65_600_u64 {
            log.record(64, seq, idx(seq), 0, idx(1));
        }
        assert_eq!(log.find(65_599).map(|f| f.0), Some(idx(65_599)));
        assert_eq!(log.find(65_536).map(|f| f.0), Some(idx(65_536)));
        assert_eq!(log.find(65_535), None);
    }
}
