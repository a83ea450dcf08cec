//! Per-subscriber RTP sequence number and timestamp rewriting.
//!
//! A subscriber must see one continuous stream per track even when the source
//! behind it changes: a publisher that reconnects with a new SSRC, or a
//! simulcast layer switch. The rewriter maps each source's extended sequence
//! numbers and timestamps onto the subscriber's stream with an offset, and
//! picks a new offset at each source change so the output stays continuous.
//!
//! Layer selection drops whole frames of a source (a temporal layer the
//! subscriber does not get). Their sequence numbers must not leave a gap,
//! or the subscriber would ask for them again and count them lost: each
//! dropped packet ([`Rewriter::skip`]) lowers the offset of the packets
//! after it. A packet that arrives late is numbered with the offset that
//! was in force at its place in the stream, which the rewriter remembers
//! for the last [`OFFSET_HISTORY`] changes.
//!
//! The dependency descriptor's frame numbers pass unchanged. Within a
//! source, a gap in them only means frames the subscriber does not need.
//! Across simulcast encodings they stay in order because a publisher
//! numbers the frames of all its encodings from one counter: libwebrtc does
//! so exactly so that an SFU can switch encodings without rewriting them,
//! and our SDK does the same. (Rewriting them would mean a new descriptor
//! value per packet and subscriber, an allocation on the hot path.)

use std::time::Instant;

/// The first outgoing sequence number of a stream. Small, so the subscriber's
/// SRTP rollover counter starts at zero (RFC 3711 §3.3.1) without signalling;
/// not zero, so packets that arrive slightly out of order before the first
/// one still map to valid numbers.
const FIRST_OUT_SEQ: u64 = 1000;

/// How far before the first packet a late packet may be and still be sent.
const MAX_EARLY_REORDER: u64 = FIRST_OUT_SEQ - 1;

/// How many offset changes (runs of dropped packets) a rewriter remembers
/// to number late packets: at 30 frames a second with half of them dropped,
/// about two seconds of reordering.
pub const OFFSET_HISTORY: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Source {
    ssrc: u32,
    /// The offset for packets after the last drop.
    seq_offset: u64,
    /// The offset before the first drop this source had.
    base_offset: u64,
    ts_offset: u32,
    first_in_seq: u64,
    max_in_seq: u64,
}

/// The rewriting state of one outgoing stream (one subscriber m-line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewriter {
    source: Option<Source>,
    max_out_seq: u64,
    last_out_ts: u32,
    last_out_at: Option<Instant>,
    /// Offset changes of the current source, oldest first: from this input
    /// sequence number on, this offset.
    changes: [(u64, u64); OFFSET_HISTORY],
    n_changes: usize,
    /// Older changes were forgotten: a packet before the oldest one kept
    /// cannot be numbered.
    forgot: bool,
}

/// A rewritten sequence number and timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// Extended outgoing sequence number.
    pub seq: u64,
    /// Outgoing RTP timestamp.
    pub ts: u32,
}

impl Rewriter {
    /// The SSRC of the source currently mapped onto the output, if any.
    pub fn source_ssrc(&self) -> Option<u32> {
        self.source.map(|s| s.ssrc)
    }

    /// Maps one incoming packet. `seq` is the publisher-side extended
    /// sequence number. Returns `None` for a packet that cannot be placed in
    /// the output (from a source we switched away from, or too old).
    pub fn rewrite(
        &mut self,
        ssrc: u32,
        seq: u64,
        ts: u32,
        clock_rate: u32,
        now: Instant,
    ) -> Option<Rewritten> {
        let src = match self.source {
            Some(s) if s.ssrc == ssrc => s,
            Some(_) | None => self.switch_to(ssrc, seq, ts, clock_rate, now),
        };
        if seq.saturating_add(MAX_EARLY_REORDER) < src.first_in_seq {
            return None;
        }
        let out_seq = seq.wrapping_add(self.offset_at(&src, seq)?);
        if seq > src.max_in_seq
            && let Some(s) = self.source.as_mut()
        {
            s.max_in_seq = seq;
        }
        let out_ts = ts.wrapping_add(src.ts_offset);
        if out_seq > self.max_out_seq {
            self.max_out_seq = out_seq;
            self.last_out_ts = out_ts;
            self.last_out_at = Some(now);
        }
        Some(Rewritten {
            seq: out_seq,
            ts: out_ts,
        })
    }

    /// The offset in force at input `seq` of the current source.
    fn offset_at(&self, src: &Source, seq: u64) -> Option<u64> {
        let changes = &self.changes[..self.n_changes];
        match changes.iter().rposition(|(from, _)| *from <= seq) {
            Some(i) => Some(changes[i].1),
            None if self.forgot => None,
            None => Some(src.base_offset),
        }
    }

    /// Layer selection dropped this packet of the current source: the
    /// packets after it move down so the output has no gap. A dropped
    /// packet older than one already forwarded leaves its number unused
    /// (the subscriber may ask for it; nothing is sent).
    pub fn skip(&mut self, ssrc: u32, seq: u64) {
        let Some(src) = self.source.as_mut().filter(|s| s.ssrc == ssrc) else {
            return;
        };
        if seq <= src.max_in_seq {
            return;
        }
        src.max_in_seq = seq;
        src.seq_offset = src.seq_offset.wrapping_sub(1);
        let change = (seq + 1, src.seq_offset);
        match self.changes[..self.n_changes].last_mut() {
            // The run of drops goes on: one change covers it.
            Some(last) if last.0 == seq => *last = change,
            _ if self.n_changes == OFFSET_HISTORY => {
                self.changes.copy_within(1.., 0);
                self.changes[OFFSET_HISTORY - 1] = change;
                self.forgot = true;
            }
            _ => {
                self.changes[self.n_changes] = change;
                self.n_changes += 1;
            }
        }
    }

    fn switch_to(&mut self, ssrc: u32, seq: u64, ts: u32, clock_rate: u32, now: Instant) -> Source {
        let (next_seq, next_ts) = match self.last_out_at {
            None => (FIRST_OUT_SEQ, ts),
            Some(at) => {
                // Advance the timestamp by the wall time since the last packet
                // so the receiver's jitter buffer sees time moving forward.
                let elapsed = now.saturating_duration_since(at);
                let ticks = (elapsed.as_micros() as u64 * clock_rate as u64 / 1_000_000) as u32;
                (
                    self.max_out_seq + 1,
                    self.last_out_ts.wrapping_add(ticks.max(1)),
                )
            }
        };
        let offset = next_seq.wrapping_sub(seq);
        let src = Source {
            ssrc,
            seq_offset: offset,
            base_offset: offset,
            ts_offset: next_ts.wrapping_sub(ts),
            first_in_seq: seq,
            max_in_seq: seq,
        };
        self.source = Some(src);
        self.n_changes = 0;
        self.forgot = false;
        src
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn continuous_across_source_switch() {
        let t0 = Instant::now();
        let mut rw = Rewriter::default();
        let a = rw.rewrite(1, 70_000, 5000, 90_000, t0).unwrap();
        assert_eq!(a.seq, FIRST_OUT_SEQ);
        assert_eq!(a.ts, 5000);
        let b = rw.rewrite(1, 70_001, 8000, 90_000, t0).unwrap();
        assert_eq!((b.seq, b.ts), (FIRST_OUT_SEQ + 1, 8000));
        // Reordered packet just before the first one still maps.
        let early = rw.rewrite(1, 69_999, 2000, 90_000, t0).unwrap();
        assert_eq!(early.seq, FIRST_OUT_SEQ - 1);
        // New source 100 ms later: seq continues, ts advances by 100 ms.
        let t1 = t0 + Duration::from_millis(100);
        let c = rw.rewrite(2, 5, 123, 90_000, t1).unwrap();
        assert_eq!(c.seq, FIRST_OUT_SEQ + 2);
        assert_eq!(c.ts, 8000 + 9000);
        let d = rw.rewrite(2, 6, 3123, 90_000, t1).unwrap();
        assert_eq!((d.seq, d.ts), (FIRST_OUT_SEQ + 3, 8000 + 9000 + 3000));
    }

    #[test]
    fn dropped_packets_leave_no_gap_and_late_ones_keep_their_place() {
        let t0 = Instant::now();
        let mut rw = Rewriter::default();
        let out = |rw: &mut Rewriter, seq| rw.rewrite(1, seq, 0, 90_000, t0).map(|r| r.seq);
        assert_eq!(out(&mut rw, 10), Some(FIRST_OUT_SEQ));
        // 11 is delayed; 12 and 13 (a frame) are dropped, then 15 is.
        rw.skip(1, 12);
        rw.skip(1, 13);
        assert_eq!(out(&mut rw, 14), Some(FIRST_OUT_SEQ + 2));
        rw.skip(1, 15);
        assert_eq!(out(&mut rw, 16), Some(FIRST_OUT_SEQ + 3));
        assert_eq!(
            out(&mut rw, 11),
            Some(FIRST_OUT_SEQ + 1),
            "late, in its place"
        );
        // A dropped packet that comes late cannot move what was sent.
        rw.skip(1, 13);
        assert_eq!(out(&mut rw, 17), Some(FIRST_OUT_SEQ + 4));
        // Drops of another source are not ours to close.
        rw.skip(2, 18);
        assert_eq!(out(&mut rw, 18), Some(FIRST_OUT_SEQ + 5));
    }

    #[test]
    fn a_packet_older_than_the_remembered_drops_is_refused() {
        let t0 = Instant::now();
        let mut rw = Rewriter::default();
        rw.rewrite(1, 100, 0, 90_000, t0).unwrap();
        // 101 is delayed past OFFSET_HISTORY + 1 separate runs of drops.
        let mut seq = 102;
        for _ in 0..=OFFSET_HISTORY {
            rw.skip(1, seq);
            rw.rewrite(1, seq + 1, 0, 90_000, t0).unwrap();
            seq += 2;
        }
        assert_eq!(rw.rewrite(1, 101, 0, 90_000, t0), None);
        // Within the history, a late packet still finds its place.
        let late = seq - 3;
        let on_time = rw.rewrite(1, seq - 1, 0, 90_000, t0).unwrap().seq;
        assert_eq!(rw.rewrite(1, late, 0, 90_000, t0).unwrap().seq, on_time - 1);
    }

    #[test]
    fn very_old_packets_are_refused() {
        let t0 = Instant::now();
        let mut rw = Rewriter::default();
        rw.rewrite(7, 50_000, 0, 48_000, t0).unwrap();
        assert!(rw.rewrite(7, 40_000, 0, 48_000, t0).is_none());
    }

    #[test]
    fn timestamp_wraps() {
        let t0 = Instant::now();
        let mut rw = Rewriter::default();
        rw.rewrite(1, 1, u32::MAX - 10, 48_000, t0).unwrap();
        let b = rw.rewrite(1, 2, 950, 48_000, t0).unwrap();
        assert_eq!(b.ts, 950);
        assert_eq!(b.seq, FIRST_OUT_SEQ + 1);
    }
}
