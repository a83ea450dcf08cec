//! Putting a frame's RTP payloads back together before decryption.

use std::collections::BTreeMap;

use super::replay::ReplayWindow;

/// Most packets buffered at once, whatever their size.
const MAX_PACKETS: usize = 4096;
/// Sequence numbers remembered as done (emitted or discarded), so late copies
/// are recognised.
const DONE_WINDOW: u64 = 1024;
/// A packet further behind the last finished frame than this is taken as a
/// restarted stream rather than a late one.
const RESTART_GAP: u64 = 4096;
/// Largest reorder depth [`FrameAssembler::with_reorder_depth`] accepts.
pub const MAX_REORDER_DEPTH: usize = 64;

/// One whole frame: the concatenated payloads of its packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledFrame {
    /// The SFrame ciphertext.
    pub data: Vec<u8>,
    /// RTP timestamp of its packets.
    pub timestamp: u32,
    /// Sequence number of its first packet.
    pub first_seq: u16,
    /// Sequence number of its last packet.
    pub last_seq: u16,
}

#[derive(Debug)]
struct Packet {
    ts: u32,
    start: bool,
    end: bool,
    payload: Vec<u8>,
}

/// Reassembles frames from the RTP packets of one stream.
///
/// A frame is emitted once its start packet, its end packet and every
/// sequence number between them (wrapping at 65535) are present with one
/// timestamp. Packets may arrive in any order within a frame and across
/// neighbouring frames; duplicates are ignored.
///
/// Memory is bounded: a frame over `max_frame_bytes` is discarded; when a
/// frame completes, every incomplete frame before it is discarded (with
/// [`new`](Self::new); see [`with_reorder_depth`](Self::with_reorder_depth)
/// to wait for retransmissions); and buffered packets are capped at four
/// times `max_frame_bytes` and 4096 packets, evicting the oldest incomplete
/// frame. [`discarded`](Self::discarded) counts discarded frames. Packets of a
/// frame already emitted or discarded are ignored, except that a late
/// single-packet frame (`start && end`, e.g. audio) is still emitted.
///
/// ```
/// use e2ee::frame::{FrameAssembler, packetize};
///
/// let mut asm = FrameAssembler::new(1 << 20);
/// let chunks: Vec<_> = packetize(b"one sframe ciphertext", 8).collect();
/// // Delivered in reverse order: only the last push completes the frame.
/// let mut out = None;
/// for (i, c) in chunks.iter().enumerate().rev() {
///     out = asm.push(100 + i as u16, 9000, c.start, c.end, c.payload);
/// }
/// let frame = out.expect("complete");
/// assert_eq!(frame.data, b"one sframe ciphertext");
/// assert_eq!((frame.first_seq, frame.last_seq, frame.timestamp), (100, 102, 9000));
/// ```
#[derive(Debug)]
pub struct FrameAssembler {
    max_frame_bytes: usize,
    /// Buffered packets by extended (unwrapped) sequence number.
    packets: BTreeMap<u64, Packet>,
    buffered_bytes: usize,
    /// Highest extended sequence number buffered so far.
    highest: Option<u64>,
    /// Packets at or below it belong to frames emitted or given up on.
    boundary: Option<u64>,
    /// Extended sequence numbers emitted or discarded, to ignore copies.
    done: ReplayWindow,
    /// How many newer complete frames an incomplete frame survives.
    depth: usize,
    /// First extended sequence numbers of the `depth + 1` newest complete
    /// frames, ascending.
    recent: Vec<u64>,
    discarded: u64,
}

impl FrameAssembler {
    /// An assembler that discards frames larger than `max_frame_bytes`, and
    /// an incomplete frame as soon as a newer frame completes.
    pub fn new(max_frame_bytes: usize) -> Self {
        Self::with_reorder_depth(max_frame_bytes, 0)
    }

    /// Like [`new`](Self::new), but an incomplete frame is kept until `depth`
    /// newer frames have completed (at most [`MAX_REORDER_DEPTH`]), so a
    /// retransmitted packet that arrives after the next frame can still
    /// complete it. Such a frame is then emitted after newer ones: the caller
    /// orders frames by RTP timestamp if it needs to.
    pub fn with_reorder_depth(max_frame_bytes: usize, depth: usize) -> Self {
        let depth = depth.min(MAX_REORDER_DEPTH);
        Self {
            max_frame_bytes,
            packets: BTreeMap::new(),
            buffered_bytes: 0,
            highest: None,
            boundary: None,
            done: ReplayWindow::new(DONE_WINDOW),
            depth,
            recent: Vec::with_capacity(depth + 2),
            discarded: 0,
        }
    }

    /// Frames discarded so far (too large, superseded while incomplete, or
    /// evicted to bound memory).
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Takes one RTP packet of a frame. `start`/`end` come from outside the
    /// ciphertext (dependency descriptor for video; audio frames are single
    /// packets with both set). Returns the frame this packet completes, if
    /// any.
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        start: bool,
        end: bool,
        payload: &[u8],
    ) -> Option<AssembledFrame> {
        let mut ext = self.extend(seq);
        if self
            .boundary
            .is_some_and(|b| b > ext && b - ext > RESTART_GAP)
        {
            self.restart();
            ext = self.extend(seq);
        }
        if !self.done.check(ext) || self.packets.contains_key(&ext) {
            return None;
        }
        if self.boundary.is_some_and(|b| ext <= b) {
            // Its frame was already emitted or given up on; only a whole
            // single-packet frame is still of use.
            if !(start && end) {
                return None;
            }
            self.done.accept(ext);
            if payload.len() > self.max_frame_bytes {
                self.discarded += 1;
                return None;
            }
            return Some(AssembledFrame {
                data: payload.to_vec(),
                timestamp,
                first_seq: seq,
                last_seq: seq,
            });
        }

        self.buffered_bytes += payload.len();
        self.packets.insert(
            ext,
            Packet {
                ts: timestamp,
                start,
                end,
                payload: payload.to_vec(),
            },
        );
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));

        if let Some((first, last, bytes)) = self.complete_around(ext) {
            let frame = self.take_range(first, last, bytes);
            self.completed(first);
            if bytes > self.max_frame_bytes {
                self.discarded += 1;
                return None;
            }
            return Some(frame);
        }
        self.enforce_bounds();
        None
    }

    /// Unwraps `seq` to the extended value closest to the highest seen. The
    /// first packet lands at 2^32 so that unwrapping never goes below zero.
    fn extend(&self, seq: u16) -> u64 {
        let Some(h) = self.highest else {
            return (1 << 32) | u64::from(seq);
        };
        let delta = i64::from(seq.wrapping_sub(h as u16) as i16);
        h.saturating_add_signed(delta)
    }

    /// Forgets everything after a jump back too far to be a late packet.
    fn restart(&mut self) {
        let groups = self.count_groups(self.packets.iter());
        self.discarded += groups;
        *self = Self {
            discarded: self.discarded,
            ..Self::with_reorder_depth(self.max_frame_bytes, self.depth)
        };
    }

    /// `(first, last, bytes)` if the packet at `ext` belongs to a frame whose
    /// packets are all present.
    fn complete_around(&self, ext: u64) -> Option<(u64, u64, usize)> {
        let p = self.packets.get(&ext)?;
        let ts = p.ts;
        let mut bytes = p.payload.len();
        let (mut first, mut at) = (ext, p);
        while !at.start {
            let prev = first.checked_sub(1)?;
            at = self.packets.get(&prev).filter(|q| q.ts == ts && !q.end)?;
            bytes += at.payload.len();
            first = prev;
        }
        let (mut last, mut at) = (ext, p);
        while !at.end {
            let next = last + 1;
            at = self.packets.get(&next).filter(|q| q.ts == ts && !q.start)?;
            bytes += at.payload.len();
            last = next;
        }
        Some((first, last, bytes))
    }

    /// Notes a complete frame starting at `first`; incomplete frames that
    /// more than `depth` complete frames have overtaken are discarded.
    fn completed(&mut self, first: u64) {
        let at = self.recent.partition_point(|&f| f < first);
        self.recent.insert(at, first);
        if self.recent.len() > self.depth + 1 {
            self.recent.remove(0);
        }
        if self.recent.len() == self.depth + 1 {
            let cut = self.recent[0];
            self.discard_before(cut);
            let b = cut - 1;
            self.boundary = Some(self.boundary.map_or(b, |x| x.max(b)));
        }
    }

    /// Removes `first..=last` and joins their payloads.
    fn take_range(&mut self, first: u64, last: u64, bytes: usize) -> AssembledFrame {
        let mut taken = self.packets.split_off(&first);
        let mut newer = taken.split_off(&(last + 1));
        self.packets.append(&mut newer);
        let mut data = Vec::with_capacity(bytes.min(self.max_frame_bytes));
        let mut timestamp = 0;
        for (ext, p) in taken {
            self.buffered_bytes -= p.payload.len();
            self.done.accept(ext);
            timestamp = p.ts;
            if bytes <= self.max_frame_bytes {
                data.extend_from_slice(&p.payload);
            }
        }
        AssembledFrame {
            data,
            timestamp,
            first_seq: first as u16,
            last_seq: last as u16,
        }
    }

    /// Discards every buffered packet before `first`: incomplete frames a
    /// newer complete frame has overtaken.
    fn discard_before(&mut self, first: u64) {
        let keep = self.packets.split_off(&first);
        let gone = std::mem::replace(&mut self.packets, keep);
        if gone.is_empty() {
            return;
        }
        self.discarded += self.count_groups(gone.iter());
        for (ext, p) in gone {
            self.buffered_bytes -= p.payload.len();
            self.done.accept(ext);
        }
    }

    /// Evicts the oldest incomplete frame while over the memory bounds.
    fn enforce_bounds(&mut self) {
        let max_bytes = self.max_frame_bytes.saturating_mul(4);
        while self.buffered_bytes > max_bytes || self.packets.len() > MAX_PACKETS {
            let Some(end) = self.first_group_end() else {
                return;
            };
            self.discard_before(end + 1);
            self.boundary = Some(self.boundary.map_or(end, |b| b.max(end)));
        }
    }

    /// Last extended sequence number of the oldest buffered frame.
    fn first_group_end(&self) -> Option<u64> {
        let mut it = self.packets.iter();
        let (&first, p) = it.next()?;
        let (mut last, mut prev) = (first, p);
        for (&ext, q) in it {
            if !same_frame(prev, q) {
                break;
            }
            (last, prev) = (ext, q);
        }
        Some(last)
    }

    /// How many frames a run of packets (in order) belongs to.
    fn count_groups<'a>(&self, packets: impl Iterator<Item = (&'a u64, &'a Packet)>) -> u64 {
        let mut groups = 0;
        let mut prev: Option<&Packet> = None;
        for (_, p) in packets {
            if !prev.is_some_and(|q| same_frame(q, p)) {
                groups += 1;
            }
            prev = Some(p);
        }
        groups
    }
}

/// Whether buffered packet `next`, the one after `prev` in sequence order
/// (possibly with lost packets between), belongs to the same frame.
fn same_frame(prev: &Packet, next: &Packet) -> bool {
    prev.ts == next.ts && !prev.end && !next.start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_keeps_memory_bounded() {
        let mut a = FrameAssembler::new(100);
        // Frames that never complete (no end packet), 60 bytes each.
        for i in 0..100u16 {
            assert!(a.push(i, u32::from(i), true, false, &[0; 60]).is_none());
            assert!(a.buffered_bytes <= 400, "{} buffered", a.buffered_bytes);
        }
        assert_eq!(a.discarded(), 100 - 6);
    }

    #[test]
    fn restart_after_big_backward_jump() {
        let mut a = FrameAssembler::new(1000);
        for i in 0..10_000u16 {
            assert!(a.push(i, u32::from(i), true, true, &[1]).is_some());
        }
        assert!(a.push(20, 7, true, false, &[2]).is_none());
        assert!(
            a.push(21, 7, false, true, &[3]).is_some(),
            "fresh start after the jump"
        );
    }
}
