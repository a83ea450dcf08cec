//! A sliding window over a counter: the highest value seen plus a bitmap of
//! the ones just below it (RFC 3711 §3.3.2, adapted to SFrame's CTR by RFC
//! 9605 §9.3). Also used by the assembler for RTP sequence numbers.

/// Widest window a caller can ask for: 64 Kibit = 8 KiB per key.
pub(crate) const MAX_WIDTH: u64 = 1 << 16;

#[derive(Debug, Clone)]
pub(crate) struct ReplayWindow {
    top: Option<u64>,
    /// Values `top - width < v <= top` are tracked; older ones are rejected.
    width: u64,
    /// Ring bitmap indexed by `value % (bits.len() * 64)`; at least `width` bits.
    bits: Vec<u64>,
}

impl ReplayWindow {
    /// A window of `width` values below the highest (clamped to
    /// [`MAX_WIDTH`]); with `width = 0` only increasing values pass.
    pub(crate) fn new(width: u64) -> Self {
        let width = width.min(MAX_WIDTH);
        let words = width.div_ceil(64).max(1) as usize;
        Self {
            top: None,
            width,
            bits: vec![0; words],
        }
    }

    fn ring(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    fn slot(&self, v: u64) -> (usize, u64) {
        let i = v % self.ring();
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// Whether `v` is new: above the highest, or inside the window and unseen.
    /// Changes nothing.
    pub(crate) fn check(&self, v: u64) -> bool {
        let Some(top) = self.top else { return true };
        if v > top {
            return true;
        }
        if top - v >= self.width {
            return false;
        }
        let (w, m) = self.slot(v);
        self.bits[w] & m == 0
    }

    /// Records `v` as seen. Call only after `check(v)` passed and the value
    /// was authenticated; a value older than the window is ignored.
    pub(crate) fn accept(&mut self, v: u64) {
        match self.top {
            Some(top) if v <= top => {
                if top - v >= self.width {
                    return;
                }
            }
            Some(top) => {
                let advance = v - top;
                if advance >= self.ring() {
                    self.bits.fill(0);
                } else {
                    // Slots of the values now sliding in held values a whole
                    // ring older; forget them.
                    for x in top + 1..=v {
                        let (w, m) = self.slot(x);
                        self.bits[w] &= !m;
                    }
                }
                self.top = Some(v);
            }
            None => {
                self.bits.fill(0);
                self.top = Some(v);
            }
        }
        let (w, m) = self.slot(v);
        self.bits[w] |= m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(w: &mut ReplayWindow, v: u64) -> bool {
        let fresh = w.check(v);
        if fresh {
            w.accept(v);
        }
        fresh
    }

    #[test]
    fn in_order_reordered_repeated_and_old() {
        let mut w = ReplayWindow::new(128);
        assert!(take(&mut w, 5));
        assert!(!take(&mut w, 5));
        assert!(take(&mut w, 3), "reordered inside the window");
        assert!(!take(&mut w, 3));
        assert!(take(&mut w, 200));
        assert!(take(&mut w, 73), "200 - 73 = 127 < 128");
        assert!(!take(&mut w, 72), "200 - 72 = 128 is outside");
        assert!(!take(&mut w, 5));
        assert!(take(&mut w, 199));
        assert!(!take(&mut w, 199));
    }

    #[test]
    fn long_jump_forgets_everything() {
        let mut w = ReplayWindow::new(64);
        for v in 0..64 {
            assert!(take(&mut w, v));
        }
        assert!(take(&mut w, 10_000));
        for v in 10_000 - 63..10_000 {
            assert!(w.check(v), "{v} was never seen");
        }
        assert!(!w.check(10_000 - 64));
    }

    #[test]
    fn ring_reuse_does_not_leak_old_bits() {
        // Width 100 gives a 128-bit ring: value v and v + 128 share a slot.
        let mut w = ReplayWindow::new(100);
        assert!(take(&mut w, 0));
        assert!(take(&mut w, 1));
        assert!(take(&mut w, 127));
        assert!(take(&mut w, 129), "slot of 1 must have been cleared");
        assert!(take(&mut w, 128), "slot of 0 must have been cleared");
    }

    #[test]
    fn zero_width_and_clamp() {
        let mut w = ReplayWindow::new(0);
        assert!(take(&mut w, 10));
        assert!(!take(&mut w, 10));
        assert!(!take(&mut w, 9));
        assert!(take(&mut w, 11));
        let w = ReplayWindow::new(u64::MAX);
        assert_eq!(w.width, MAX_WIDTH);
        assert_eq!(w.bits.len() as u64 * 64, MAX_WIDTH);
    }

    #[test]
    fn extremes_do_not_overflow() {
        let mut w = ReplayWindow::new(128);
        assert!(take(&mut w, u64::MAX));
        assert!(!take(&mut w, u64::MAX));
        assert!(take(&mut w, u64::MAX - 1));
        assert!(!take(&mut w, 0));
    }
}
