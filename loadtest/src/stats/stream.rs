//! Loss, duplicates, reordering and jitter of one (sender, track) stream
//! as one receiver sees it, from the frames' sequence numbers and send
//! times. Pure: times are arguments.

/// Sequence numbers remembered for duplicate detection behind the highest.
pub const SEQ_WINDOW: u64 = 2048;
const WORDS: usize = (SEQ_WINDOW / 64) as usize;

/// What a frame was, relative to what came before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The next one, or later (a gap before it is loss until filled).
    InOrder,
    /// Older than the newest frame seen, and not seen before.
    Reordered,
    /// Seen before; not counted again.
    Duplicate,
}

/// Which of the last [`SEQ_WINDOW`] sequence numbers have arrived.
#[derive(Debug, Clone)]
struct SeenWindow {
    bits: [u64; WORDS],
}

impl SeenWindow {
    fn new() -> Self {
        Self { bits: [0; WORDS] }
    }

    fn slot(seq: u64) -> (usize, u64) {
        let i = seq % SEQ_WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn get(&self, seq: u64) -> bool {
        let (w, m) = Self::slot(seq);
        self.bits[w] & m != 0
    }

    fn set(&mut self, seq: u64) {
        let (w, m) = Self::slot(seq);
        self.bits[w] |= m;
    }

    /// Forgets `from..=to` (their slots are about to be reused).
    fn clear_range(&mut self, from: u64, to: u64) {
        if to.saturating_sub(from) >= SEQ_WINDOW {
            self.bits = [0; WORDS];
            return;
        }
        let mut s = from;
        while s <= to {
            let (w, m) = Self::slot(s);
            self.bits[w] &= !m;
            s += 1;
        }
    }
}

/// RFC 3550 §6.4.1 interarrival jitter, in µs: the mean deviation of the
/// difference in transit time between consecutive frames, smoothed by 1/16.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Jitter {
    last_transit: Option<i64>,
    jitter_us: f64,
}

impl Jitter {
    /// Folds in one frame received at `arrival_us` that was sent at `send_us`.
    pub fn update(&mut self, arrival_us: u64, send_us: u64) {
        let transit = arrival_us as i64 - send_us as i64;
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs() as f64;
            self.jitter_us += (d - self.jitter_us) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// The current estimate, µs.
    pub fn us(&self) -> f64 {
        self.jitter_us
    }
}

/// Counts since the last [`StreamTracker::take_window`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Frames the advance of the highest sequence number implies.
    pub expected: u64,
    /// Distinct frames that arrived.
    pub received: u64,
}

/// One stream's accounting at one receiver.
#[derive(Debug, Clone)]
pub struct StreamTracker {
    first_seq: u64,
    highest: u64,
    received: u64,
    duplicates: u64,
    reordered: u64,
    bytes: u64,
    seen: SeenWindow,
    jitter: Jitter,
    window: WindowCounts,
}

impl StreamTracker {
    /// Starts tracking at the first frame received, `seq`.
    pub fn new(seq: u64, arrival_us: u64, send_us: u64, bytes: usize) -> Self {
        let mut seen = SeenWindow::new();
        seen.set(seq);
        let mut jitter = Jitter::default();
        jitter.update(arrival_us, send_us);
        Self {
            first_seq: seq,
            highest: seq,
            received: 1,
            duplicates: 0,
            reordered: 0,
            bytes: bytes as u64,
            seen,
            jitter,
            window: WindowCounts {
                expected: 1,
                received: 1,
            },
        }
    }

    /// Accounts one more frame.
    pub fn on_frame(&mut self, seq: u64, arrival_us: u64, send_us: u64, bytes: usize) -> Arrival {
        let arrival = if seq > self.highest {
            self.seen.clear_range(self.highest + 1, seq);
            self.window.expected += seq - self.highest;
            self.highest = seq;
            Arrival::InOrder
        } else if self.highest - seq < SEQ_WINDOW {
            if self.seen.get(seq) {
                self.duplicates += 1;
                return Arrival::Duplicate;
            }
            Arrival::Reordered
        } else {
            // Too old to tell a duplicate from a late frame: count it late.
            Arrival::Reordered
        };
        self.seen.set(seq);
        if arrival == Arrival::Reordered {
            self.reordered += 1;
            if seq < self.first_seq {
                // Earlier than the first frame seen: the stream started
                // sooner than we thought, so those frames were expected too.
                self.window.expected += self.first_seq - seq;
                self.first_seq = seq;
            }
        }
        self.received += 1;
        self.window.received += 1;
        self.bytes += bytes as u64;
        self.jitter.update(arrival_us, send_us);
        arrival
    }

    /// Frames this receiver should have had: from the first it got to the
    /// last the sender sent before the receiver stopped (`last_sent`; when
    /// unknown, the highest seen).
    pub fn expected(&self, last_sent: Option<u64>) -> u64 {
        let last = last_sent.map_or(self.highest, |l| l.max(self.highest));
        last - self.first_seq + 1
    }

    /// Distinct frames received.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Frames received more than once.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Frames that arrived after a later one.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// Plaintext bytes of the distinct frames received.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Interarrival jitter, µs.
    pub fn jitter_us(&self) -> f64 {
        self.jitter.us()
    }

    /// Of the frames with sequence numbers in `from..to` that this receiver
    /// should have had (those from its first frame on), how many it should
    /// have had and how many arrived. `None` if the range reaches further
    /// back than duplicate detection remembers.
    pub fn received_in(&self, from: u64, to: u64) -> Option<WindowCounts> {
        let from = from.max(self.first_seq);
        if to <= from {
            return Some(WindowCounts::default());
        }
        if self.highest.saturating_sub(from) >= SEQ_WINDOW {
            return None;
        }
        let received = (from..to.min(self.highest + 1))
            .filter(|s| self.seen.get(*s))
            .count() as u64;
        Some(WindowCounts {
            expected: to - from,
            received,
        })
    }

    /// The counts since the previous call.
    pub fn take_window(&mut self) -> WindowCounts {
        std::mem::take(&mut self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(seqs: &[u64]) -> StreamTracker {
        let mut t = StreamTracker::new(seqs[0], 0, 0, 10);
        for &s in &seqs[1..] {
            t.on_frame(s, 0, 0, 10);
        }
        t
    }

    #[test]
    fn in_order_stream_has_no_loss() {
        let t = feed(&[5, 6, 7, 8]);
        assert_eq!((t.expected(None), t.received()), (4, 4));
        assert_eq!(t.expected(Some(8)), 4);
        assert_eq!((t.duplicates(), t.reordered()), (0, 0));
        assert_eq!(t.bytes(), 40);
    }

    #[test]
    fn counts_a_range_of_sequence_numbers() {
        let t = feed(&[3, 4, 6, 7, 9]);
        let c = |expected, received| Some(WindowCounts { expected, received });
        assert_eq!(t.received_in(4, 8), c(4, 3), "5 is missing");
        // Before the first frame: not expected; after the highest: lost.
        assert_eq!(t.received_in(0, 5), c(2, 2));
        assert_eq!(t.received_in(8, 12), c(4, 1));
        assert_eq!(t.received_in(7, 7), c(0, 0));
        let far = feed(&[0, SEQ_WINDOW + 10]);
        assert_eq!(far.received_in(1, 5), None, "forgotten");
    }

    #[test]
    fn gaps_are_loss_until_filled() {
        let mut t = feed(&[0, 1, 4]);
        assert_eq!((t.expected(None), t.received()), (5, 3));
        assert_eq!(t.on_frame(2, 0, 0, 10), Arrival::Reordered);
        assert_eq!((t.expected(None), t.received(), t.reordered()), (5, 4, 1));
        // Frames the sender sent after the last one received are lost too.
        assert_eq!(t.expected(Some(9)), 10);
        // A stale "last sent" never shrinks what was seen.
        assert_eq!(t.expected(Some(1)), 5);
    }

    #[test]
    fn duplicates_are_counted_once() {
        let mut t = feed(&[0, 1, 2]);
        assert_eq!(t.on_frame(1, 0, 0, 10), Arrival::Duplicate);
        assert_eq!(t.on_frame(2, 0, 0, 10), Arrival::Duplicate);
        assert_eq!(t.on_frame(0, 0, 0, 10), Arrival::Duplicate);
        assert_eq!((t.received(), t.duplicates(), t.bytes()), (3, 3, 30));
    }

    #[test]
    fn window_slots_are_reused_without_false_duplicates() {
        let mut t = StreamTracker::new(0, 0, 0, 1);
        for s in 1..(3 * SEQ_WINDOW) {
            assert_eq!(t.on_frame(s, 0, 0, 1), Arrival::InOrder);
        }
        // A jump larger than the window clears it all.
        let far = 10 * SEQ_WINDOW;
        assert_eq!(t.on_frame(far, 0, 0, 1), Arrival::InOrder);
        assert_eq!(t.on_frame(far - 1, 0, 0, 1), Arrival::Reordered);
        assert_eq!(t.on_frame(far - 1, 0, 0, 1), Arrival::Duplicate);
        // Beyond the window: late, not a duplicate.
        assert_eq!(t.on_frame(5, 0, 0, 1), Arrival::Reordered);
        assert_eq!(t.duplicates(), 1);
    }

    #[test]
    fn frame_before_the_first_extends_the_stream() {
        let mut t = feed(&[10, 11]);
        assert_eq!(t.on_frame(8, 0, 0, 10), Arrival::Reordered);
        assert_eq!((t.expected(None), t.received()), (4, 3));
    }

    #[test]
    fn window_counts_reset_on_take() {
        let mut t = feed(&[0, 1, 3]);
        assert_eq!(
            t.take_window(),
            WindowCounts {
                expected: 4,
                received: 3
            }
        );
        t.on_frame(2, 0, 0, 1);
        t.on_frame(4, 0, 0, 1);
        assert_eq!(
            t.take_window(),
            WindowCounts {
                expected: 1,
                received: 2
            }
        );
        assert_eq!(t.take_window(), WindowCounts::default());
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let mut j = Jitter::default();
        // Constant transit: no jitter.
        for i in 0..10 {
            j.update(1_000 + i * 20_000, i * 20_000);
        }
        assert_eq!(j.us(), 0.0);
        // One frame 16 ms late: J = 16000/16 = 1000, then it decays.
        j.update(1_000 + 10 * 20_000 + 16_000, 10 * 20_000);
        assert!((j.us() - 1000.0).abs() < 1e-9);
        j.update(1_000 + 11 * 20_000, 11 * 20_000);
        // |D| = 16000 again (back to normal): J += (16000 - 1000)/16.
        assert!((j.us() - (1000.0 + 15000.0 / 16.0)).abs() < 1e-9);
        // Alternating transit of 0 and 2 ms converges towards 2 ms.
        let mut k = Jitter::default();
        for i in 0..400u64 {
            k.update(i * 10_000 + (i % 2) * 2_000, i * 10_000);
        }
        assert!((k.us() - 2000.0).abs() < 1.0, "{}", k.us());
    }
}
