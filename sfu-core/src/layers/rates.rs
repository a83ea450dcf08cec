//! What each layer of a track costs, measured from what the publisher
//! sends: the allocator's prices.
//!
//! Bytes are counted per (spatial or encoding, temporal) cell in buckets of
//! [`BUCKET`], and a rate is the sum of the last [`WINDOW_BUCKETS`] full
//! buckets: long enough to smooth a keyframe (several times a delta frame's
//! size, every few seconds), short enough to follow a publisher whose
//! encoder adapts its rate. Counting is a few additions into fixed arrays:
//! nothing is allocated per packet.

use super::{Layer, LayerRate, Layering};
use std::time::{Duration, Instant};

/// Spatial layers (or encodings) and temporal layers counted; the
/// dependency descriptor allows at most 4 and 8, browsers use 3 and 3.
pub const MAX_SPATIAL: usize = 4;
/// See [`MAX_SPATIAL`].
pub const MAX_TEMPORAL: usize = 4;
/// One bucket's length.
pub const BUCKET: Duration = Duration::from_millis(500);
/// Full buckets a rate is measured over.
pub const WINDOW_BUCKETS: usize = 4;

type Cells = [[u64; MAX_TEMPORAL]; MAX_SPATIAL];

/// Byte counts of one track's layers.
#[derive(Debug, Clone)]
pub struct LayerRates {
    layering: Layering,
    /// Ring of full buckets, and the one filling.
    full: [Cells; WINDOW_BUCKETS],
    filled: usize,
    next: usize,
    current: Cells,
    current_since: Option<Instant>,
    /// Picture height per spatial layer or encoding, when the descriptor
    /// said (0 when unknown).
    heights: [u16; MAX_SPATIAL],
}

impl LayerRates {
    /// Nothing counted yet.
    pub fn new(layering: Layering) -> Self {
        Self {
            layering,
            full: [[[0; MAX_TEMPORAL]; MAX_SPATIAL]; WINDOW_BUCKETS],
            filled: 0,
            next: 0,
            current: [[0; MAX_TEMPORAL]; MAX_SPATIAL],
            current_since: None,
            heights: [0; MAX_SPATIAL],
        }
    }

    /// Counts `bytes` of `layer` received at `now`. Layers past the
    /// counted range are ignored.
    pub fn count(&mut self, now: Instant, layer: Layer, bytes: usize) {
        self.roll(now);
        if let Some(cell) = self
            .current
            .get_mut(usize::from(layer.spatial))
            .and_then(|s| s.get_mut(usize::from(layer.temporal)))
        {
            *cell += bytes as u64;
        }
    }

    /// The picture height of a spatial layer or encoding, from the
    /// descriptor's render resolutions.
    pub fn set_height(&mut self, spatial: u8, height: u16) {
        if let Some(h) = self.heights.get_mut(usize::from(spatial)) {
            *h = height;
        }
    }

    /// The highest spatial layer (or encoding) not taller than
    /// `max_height`; a layer of unknown height counts as fitting, and the
    /// lowest is always admitted.
    pub fn highest_within(&self, max_height: u16) -> u8 {
        self.heights
            .iter()
            .take_while(|h| **h <= max_height)
            .count()
            .saturating_sub(1) as u8
    }

    fn roll(&mut self, now: Instant) {
        let since = *self.current_since.get_or_insert(now);
        let elapsed = now.saturating_duration_since(since);
        if elapsed < BUCKET {
            return;
        }
        // Buckets that passed with nothing in them count as empty.
        let passed = (elapsed.as_millis() / BUCKET.as_millis()) as usize;
        for i in 0..passed.min(WINDOW_BUCKETS) {
            self.full[self.next] = if i == 0 {
                self.current
            } else {
                [[0; MAX_TEMPORAL]; MAX_SPATIAL]
            };
            self.next = (self.next + 1) % WINDOW_BUCKETS;
            self.filled = (self.filled + 1).min(WINDOW_BUCKETS);
        }
        self.current = [[0; MAX_TEMPORAL]; MAX_SPATIAL];
        self.current_since = Some(since + BUCKET * passed as u32);
    }

    /// Whether a full bucket has been counted: before, nothing is known
    /// about which layers flow.
    pub fn measured(&self) -> bool {
        self.filled > 0
    }

    /// The highest spatial layer (or encoding) that carried anything over
    /// the window.
    /// (Read as counted: a track that stopped altogether still shows its
    /// last layers until its next packet or [`Self::layers`] rolls them.)
    pub fn highest_flowing(&self) -> Option<u8> {
        let any = |cells: &Cells, s: usize| cells[s].iter().any(|v| *v > 0);
        (0..MAX_SPATIAL)
            .rev()
            .find(|s| any(&self.current, *s) || self.full[..self.filled].iter().any(|b| any(b, *s)))
            .map(|s| s as u8)
    }

    /// The layers that carried anything over the window, lowest quality
    /// first, each priced with what it needs (lower temporal layers; for
    /// SVC lower spatial layers too). Appends to `out`.
    pub fn layers(&mut self, now: Instant, out: &mut Vec<LayerRate>) {
        self.roll(now);
        if self.filled == 0 {
            return;
        }
        let mut sum: Cells = [[0; MAX_TEMPORAL]; MAX_SPATIAL];
        for b in &self.full[..self.filled] {
            for (s, row) in b.iter().enumerate() {
                for (t, v) in row.iter().enumerate() {
                    sum[s][t] += v;
                }
            }
        }
        let window_s = (BUCKET * self.filled as u32).as_secs_f64();
        let mut below = 0u64;
        for (s, row) in sum.iter().enumerate() {
            let mut cumulative = match self.layering {
                Layering::Simulcast => 0,
                Layering::Svc => below,
            };
            let mut offered = false;
            for (t, v) in row.iter().enumerate() {
                if *v == 0 {
                    continue;
                }
                cumulative += v;
                offered = true;
                out.push(LayerRate {
                    layer: Layer::new(s as u8, t as u8),
                    bps: (cumulative as f64 * 8.0 / window_s) as u64,
                    height: self.heights[s],
                });
            }
            if offered {
                below = cumulative;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 30 frames a second for `secs`: T0 T2 T1 T2, a T0 frame 3000 bytes,
    /// T1 2000, T2 1000, on each of `spatial` layers (each twice the one
    /// below).
    fn feed(r: &mut LayerRates, t0: Instant, secs: u64, spatial: u8) {
        for i in 0..secs * 30 {
            let at = t0 + Duration::from_millis(i * 1000 / 30);
            let t = [0u8, 2, 1, 2][(i % 4) as usize];
            for s in 0..spatial {
                let bytes = [3000, 2000, 1000][usize::from(t)] << s;
                r.count(at, Layer::new(s, t), bytes);
            }
        }
    }

    #[test]
    fn simulcast_prices_each_encoding_on_its_own() {
        let t0 = Instant::now();
        let mut r = LayerRates::new(Layering::Simulcast);
        r.set_height(1, 360);
        feed(&mut r, t0, 4, 2);
        let mut out = Vec::new();
        r.layers(t0 + Duration::from_secs(4), &mut out);
        let bps: Vec<(Layer, u64)> = out.iter().map(|l| (l.layer, l.bps / 1000)).collect();
        // Per second: 7.5 T0 frames (180 kbit/s), 7.5 T1 (120), 15 T2 (120).
        assert_eq!(
            bps,
            [
                (Layer::new(0, 0), 180),
                (Layer::new(0, 1), 300),
                (Layer::new(0, 2), 420),
                (Layer::new(1, 0), 360),
                (Layer::new(1, 1), 600),
                (Layer::new(1, 2), 840),
            ]
        );
        assert_eq!(out[3].height, 360);
    }

    #[test]
    fn svc_prices_a_spatial_layer_with_the_ones_below() {
        let t0 = Instant::now();
        let mut r = LayerRates::new(Layering::Svc);
        feed(&mut r, t0, 4, 2);
        let mut out = Vec::new();
        r.layers(t0 + Duration::from_secs(4), &mut out);
        let kbps: Vec<u64> = out.iter().map(|l| l.bps / 1000).collect();
        assert_eq!(kbps, [180, 300, 420, 420 + 360, 420 + 600, 420 + 840]);
    }

    #[test]
    fn a_layer_that_stops_is_no_longer_offered() {
        let t0 = Instant::now();
        let mut r = LayerRates::new(Layering::Simulcast);
        feed(&mut r, t0, 4, 2);
        // Only encoding 0 from now on (the publisher turned 1 off).
        let t1 = t0 + Duration::from_secs(4);
        feed(&mut r, t1, 3, 1);
        let mut out = Vec::new();
        r.layers(t1 + Duration::from_secs(3), &mut out);
        assert!(out.iter().all(|l| l.layer.spatial == 0), "{out:?}");
        // A silent track offers nothing once its window has passed.
        out.clear();
        r.layers(t1 + Duration::from_secs(60), &mut out);
        assert!(out.is_empty());
    }
}
