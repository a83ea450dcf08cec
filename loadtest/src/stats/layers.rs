//! What a receiver saw of a video stream's layers: which simulcast
//! encoding it was on and for how long, how often that changed, and its
//! freezes (gaps between decoded frames of more than [`FREEZE_GAP_US`]).
//! Pure: the caller passes the frames' layers and arrival times.

/// A gap between two decoded frames longer than this is a freeze: the
/// picture visibly stops (a 30 fps stream normally has 33 ms gaps).
pub const FREEZE_GAP_US: u64 = 500_000;

/// Layers told apart; a frame on a higher one counts as the highest.
pub const LAYERS: usize = 4;

/// One video stream's layers at one receiver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerTrack {
    /// The layer of the last frame and when it came.
    last: Option<(u8, u64)>,
    /// Time spent on each layer: from a frame to the next, counted to the
    /// earlier frame's layer (a freeze included: the picture shown is
    /// that layer's).
    time_us: [u64; LAYERS],
    switches: u64,
    freezes: u64,
    freeze_us: u64,
    longest_freeze_us: u64,
}

/// A receiver's layer figures, summed over its video streams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerSummary {
    /// Time on each layer, µs.
    pub time_us: [u64; LAYERS],
    /// Changes of layer.
    pub switches: u64,
    /// Gaps between decoded frames over [`FREEZE_GAP_US`].
    pub freezes: u64,
    /// Their total length, µs.
    pub freeze_us: u64,
    /// The longest, µs.
    pub longest_freeze_us: u64,
}

impl LayerSummary {
    /// Adds `other`'s figures to these.
    pub fn add(&mut self, other: &LayerSummary) {
        for (a, b) in self.time_us.iter_mut().zip(other.time_us) {
            *a += b;
        }
        self.switches += other.switches;
        self.freezes += other.freezes;
        self.freeze_us += other.freeze_us;
        self.longest_freeze_us = self.longest_freeze_us.max(other.longest_freeze_us);
    }
}

impl LayerTrack {
    /// One decoded frame on `layer`, arrived at `now_us`. Frames that
    /// arrive out of order (an earlier time than the last) count for their
    /// layer but not for time.
    pub fn on_frame(&mut self, layer: u8, now_us: u64) {
        let layer = layer.min(LAYERS as u8 - 1);
        if let Some((last_layer, last_us)) = self.last {
            let gap = now_us.saturating_sub(last_us);
            self.time_us[usize::from(last_layer)] += gap;
            if gap > FREEZE_GAP_US {
                self.freezes += 1;
                self.freeze_us += gap;
                self.longest_freeze_us = self.longest_freeze_us.max(gap);
            }
            // A late frame shows nothing new: no switch.
            if now_us < last_us {
                return;
            }
            if layer != last_layer {
                self.switches += 1;
            }
        }
        self.last = Some((layer, now_us));
    }

    /// The layer of the last frame, if any came.
    pub fn current(&self) -> Option<u8> {
        self.last.map(|(l, _)| l)
    }

    /// Its figures so far.
    pub fn summary(&self) -> LayerSummary {
        LayerSummary {
            time_us: self.time_us,
            switches: self.switches,
            freezes: self.freezes,
            freeze_us: self.freeze_us,
            longest_freeze_us: self.longest_freeze_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: u64 = 33_333;

    #[test]
    fn time_goes_to_the_layer_shown_and_switches_are_counted() {
        let mut t = LayerTrack::default();
        let mut now = 0;
        for i in 0..90u64 {
            let layer = if i < 30 {
                2
            } else if i < 60 {
                0
            } else {
                2
            };
            t.on_frame(layer, now);
            now += FRAME;
        }
        let s = t.summary();
        assert_eq!(s.switches, 2);
        assert_eq!(s.time_us[2], 59 * FRAME);
        assert_eq!(s.time_us[0], 30 * FRAME);
        assert_eq!((s.freezes, s.freeze_us), (0, 0));
        assert_eq!(t.current(), Some(2));
    }

    #[test]
    fn a_gap_over_half_a_second_is_a_freeze() {
        let mut t = LayerTrack::default();
        t.on_frame(1, 0);
        t.on_frame(1, FREEZE_GAP_US); // exactly the limit: no freeze
        t.on_frame(1, FREEZE_GAP_US + 700_000);
        t.on_frame(0, FREEZE_GAP_US + 700_000 + 600_000);
        let s = t.summary();
        assert_eq!(s.freezes, 2);
        assert_eq!(s.freeze_us, 1_300_000);
        assert_eq!(s.longest_freeze_us, 700_000);
        assert_eq!(s.switches, 1);
        let mut total = LayerSummary::default();
        total.add(&s);
        total.add(&s);
        assert_eq!((total.freezes, total.longest_freeze_us), (4, 700_000));
    }

    #[test]
    fn high_layers_are_clamped_and_late_frames_do_not_move_time_back() {
        let mut t = LayerTrack::default();
        t.on_frame(9, 100);
        t.on_frame(3, 50);
        t.on_frame(0, 60);
        t.on_frame(3, 200);
        assert_eq!(t.summary().time_us[3], 100);
        assert_eq!(t.summary().switches, 0, "late frames switch nothing");
        assert_eq!(t.current(), Some(3));
    }
}
