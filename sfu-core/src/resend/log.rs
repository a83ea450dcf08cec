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
/// `capacity` packets sent are all in it. Allocated on first use.
#[derive(Debug, Default)]
pub(crate) struct SentLog {
    slots: Box<[Sent]>,
}

/// The largest log: 2^15 entries (512 KiB), far beyond any useful
/// retransmission window.
const MAX_SLOTS: usize = 1 << 15;

impl SentLog {
    /// Notes that sequence number `seq` went out with timestamp `ts`
    /// carrying the stored packet `stored`. `capacity` sizes the ring on
    /// first use (rounded up to a power of two); 0 keeps nothing.
    #[inline]
    pub(crate) fn record(&mut self, capacity: usize, seq: u64, stored: StoreIndex, ts: u32) {
        if self.slots.is_empty() {
            if capacity == 0 {
                return;
            }
            let n = capacity.clamp(16, MAX_SLOTS).next_power_of_two();
            self.slots = vec![Sent::default(); n].into_boxed_slice();
        }
        let mask = self.slots.len() - 1;
        self.slots[seq as usize & mask] = Sent {
            stored: stored.get(),
            ts,
            seq: seq as u32,
        };
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
        for seq in 0..40_u64 {
            log.record(32, seq, idx(100 + seq), seq as u32 * 3000);
        }
        assert_eq!(log.bytes(), 32 * 16);
        assert_eq!(log.find(39), Some((idx(139), 39 * 3000)));
        assert_eq!(log.find(8), Some((idx(108), 8 * 3000)));
        assert_eq!(log.find(7), None, "overwritten by 39");
        assert_eq!(log.find(40), None, "not sent yet");
        assert_eq!(log.find(8 + 65_536), None, "a different packet, same slot");
    }

    #[test]
    fn keeps_nothing_without_a_capacity() {
        let mut log = SentLog::default();
        log.record(0, 1, idx(1), 0);
        assert_eq!(log.find(1), None);
        assert_eq!(log.bytes(), 0);
    }

    #[test]
    fn sequence_numbers_wrap_with_the_ring() {
        let mut log = SentLog::default();
        for seq in 65_530..65_560_u64 {
            log.record(16, seq, idx(seq), 0);
        }
        assert_eq!(log.find(65_559).map(|f| f.0), Some(idx(65_559)));
        assert_eq!(log.find(65_544).map(|f| f.0), Some(idx(65_544)));
        assert_eq!(log.find(65_543), None);
    }
}
