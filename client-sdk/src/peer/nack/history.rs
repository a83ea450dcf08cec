//! The last packets sent on one RTP stream, for answering NACKs.
//!
//! A ring indexed by sequence number, as in webrtc-rs's `SendBuffer`
//! (rtc-interceptor, MIT/Apache-2.0): a lookup is one index and one
//! comparison, and the memory is fixed when the stream is bound. Each slot
//! keeps the whole packet, so a resend carries the original header
//! extensions.

use rtc::rtp;

/// Sequence numbers more than this far ahead of the newest are taken as
/// older (RFC 3550 §A.1 serial-number arithmetic on 16 bits).
const HALF: u16 = 1 << 15;

/// Sent packets by sequence number, at most `capacity` of them, and only
/// the ones within `capacity` of the newest.
pub(super) struct SendHistory {
    slots: Box<[Option<rtp::Packet>]>,
    /// `capacity - 1`; the capacity is a power of two.
    mask: u16,
    /// The newest sequence number recorded, if any.
    newest: Option<u16>,
}

impl SendHistory {
    /// Room for `capacity` packets, rounded up to a power of two and kept
    /// within 1..=32768 so that "ahead" and "behind" stay unambiguous.
    pub(super) fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, usize::from(HALF)).next_power_of_two();
        Self {
            slots: vec![None; capacity].into_boxed_slice(),
            mask: (capacity - 1) as u16,
            newest: None,
        }
    }

    /// How many packets it can hold.
    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Keeps a copy of `packet`. A packet older than the window is not
    /// kept; one that jumps ahead clears the slots it skipped, so they
    /// cannot answer for packets that were never sent.
    pub(super) fn record(&mut self, packet: &rtp::Packet) {
        let seq = packet.header.sequence_number;
        match self.newest {
            None => self.newest = Some(seq),
            Some(newest) => {
                let ahead = seq.wrapping_sub(newest);
                if ahead != 0 && ahead < HALF {
                    let skipped = usize::from(ahead - 1).min(self.capacity());
                    for i in 1..=skipped as u16 {
                        self.slots[self.index(newest.wrapping_add(i))] = None;
                    }
                    self.newest = Some(seq);
                } else if usize::from(newest.wrapping_sub(seq)) >= self.capacity() {
                    return;
                }
            }
        }
        let i = self.index(seq);
        self.slots[i] = Some(packet.clone());
    }

    /// The packet sent with `seq`, if it is still in the window.
    pub(super) fn get(&self, seq: u16) -> Option<&rtp::Packet> {
        let behind = self.newest?.wrapping_sub(seq);
        if behind >= HALF || usize::from(behind) >= self.capacity() {
            return None;
        }
        self.slots[self.index(seq)]
            .as_ref()
            .filter(|p| p.header.sequence_number == seq)
    }

    /// How far `seq` is behind the newest packet (0 for the newest), or
    /// `None` if it is ahead of it or nothing was recorded.
    pub(super) fn age(&self, seq: u16) -> Option<u16> {
        let behind = self.newest?.wrapping_sub(seq);
        (behind < HALF).then_some(behind)
    }

    fn index(&self, seq: u16) -> usize {
        usize::from(seq & self.mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16) -> rtp::Packet {
        rtp::Packet {
            header: rtp::header::Header {
                version: 2,
                sequence_number: seq,
                ..Default::default()
            },
            payload: vec![seq as u8, (seq >> 8) as u8].into(),
        }
    }

    fn seqs(h: &SendHistory, range: impl IntoIterator<Item = u16>) -> Vec<u16> {
        range
            .into_iter()
            .filter_map(|s| h.get(s).map(|p| p.header.sequence_number))
            .collect()
    }

    #[test]
    fn capacity_is_a_bounded_power_of_two() {
        assert_eq!(SendHistory::new(0).capacity(), 1);
        assert_eq!(SendHistory::new(5).capacity(), 8);
        assert_eq!(SendHistory::new(1024).capacity(), 1024);
        assert_eq!(SendHistory::new(1 << 20).capacity(), 1 << 15);
    }

    #[test]
    fn keeps_only_the_last_capacity_packets() {
        let mut h = SendHistory::new(8);
        for s in 100..120 {
            h.record(&packet(s));
        }
        assert_eq!(seqs(&h, 90..130), (112..120).collect::<Vec<_>>());
        // A late first transmission from before the window is not kept.
        h.record(&packet(105));
        assert!(h.get(105).is_none());
        // One inside the window is.
        let mut h = SendHistory::new(8);
        h.record(&packet(10));
        h.record(&packet(12));
        h.record(&packet(11));
        assert_eq!(seqs(&h, 0..20), vec![10, 11, 12]);
    }

    #[test]
    fn wraps_around_the_sequence_space() {
        let mut h = SendHistory::new(8);
        for s in [65533, 65534, 65535, 0, 1, 2] {
            h.record(&packet(s));
        }
        assert_eq!(
            seqs(&h, [65532, 65533, 65535, 0, 2, 3]),
            vec![65533, 65535, 0, 2]
        );
        assert_eq!(h.age(65533), Some(5));
        assert_eq!(h.age(3), None, "ahead of the newest");
    }

    #[test]
    fn a_jump_ahead_forgets_what_it_skipped() {
        let mut h = SendHistory::new(8);
        for s in 0..8 {
            h.record(&packet(s));
        }
        h.record(&packet(10));
        // 3..8 are still within 8 of 10, but 8 and 9 were never sent; the
        // slots they map to must not answer with 0 and 1.
        assert_eq!(seqs(&h, 0..16), vec![3, 4, 5, 6, 7, 10]);
        // A jump past the whole window leaves only the new packet.
        h.record(&packet(30_000));
        assert_eq!(seqs(&h, 0..=u16::MAX), vec![30_000]);
    }

    #[test]
    fn unknown_or_future_sequence_numbers_are_absent() {
        let mut h = SendHistory::new(8);
        assert!(h.get(0).is_none(), "empty");
        h.record(&packet(50));
        assert!(h.get(51).is_none(), "ahead");
        assert!(h.get(49).is_none(), "never sent");
        assert!(h.get(50 + 32_768).is_none(), "half the space away");
        assert!(h.get(50).is_some());
    }
}
