//! Per-subscriber RTP sequence number and timestamp rewriting.
//!
//! A subscriber must see one continuous stream per track even when the source
//! behind it changes: a publisher that reconnects with a new SSRC, or a
//! simulcast layer switch. The rewriter maps each source's extended sequence
//! numbers and timestamps onto the subscriber's stream with an offset, and
//! picks a new offset at each source change so the output stays continuous.

use std::time::Instant;

/// The first outgoing sequence number of a stream. Small, so the subscriber's
/// SRTP rollover counter starts at zero (RFC 3711 §3.3.1) without signalling;
/// not zero, so packets that arrive slightly out of order before the first
/// one still map to valid numbers.
const FIRST_OUT_SEQ: u64 = 1000;

/// How far before the first packet a late packet may be and still be sent.
const MAX_EARLY_REORDER: u64 = FIRST_OUT_SEQ - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Source {
    ssrc: u32,
    seq_offset: u64,
    ts_offset: u32,
    first_in_seq: u64,
}

/// The rewriting state of one outgoing stream (one subscriber m-line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewriter {
    source: Option<Source>,
    max_out_seq: u64,
    last_out_ts: u32,
    last_out_at: Option<Instant>,
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
        let out_seq = seq.wrapping_add(src.seq_offset);
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
        let src = Source {
            ssrc,
            seq_offset: next_seq.wrapping_sub(seq),
            ts_offset: next_ts.wrapping_sub(ts),
            first_in_seq: seq,
        };
        self.source = Some(src);
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
