//! Latency histograms in microseconds.

use hdrhistogram::Histogram;

/// Largest latency recorded, µs; larger values are clamped to it.
const MAX_US: u64 = 10_000_000;

/// A histogram of latencies in microseconds.
#[derive(Debug, Clone)]
pub struct LatencyHist(Histogram<u64>);

impl Default for LatencyHist {
    fn default() -> Self {
        Self::new()
    }
}

/// Percentiles of a [`LatencyHist`].
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median, µs.
    pub p50: f64,
    /// 90th percentile, µs.
    pub p90: f64,
    /// 99th percentile, µs.
    pub p99: f64,
    /// Maximum, µs.
    pub max: f64,
}

impl LatencyHist {
    /// Empty; 3 significant digits from 1 µs to 10 s.
    pub fn new() -> Self {
        Self(Histogram::new_with_bounds(1, MAX_US, 3).expect("constant bounds are valid"))
    }

    /// Records one latency.
    pub fn record(&mut self, us: u64) {
        self.0.saturating_record(us.min(MAX_US));
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Self) {
        // Same bounds on both sides, so this cannot fail; a failure would
        // only lose samples.
        let _ = self.0.add(&other.0);
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        self.0.reset();
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The percentiles.
    pub fn percentiles(&self) -> Percentiles {
        if self.0.is_empty() {
            return Percentiles::default();
        }
        let q = |x: f64| self.0.value_at_quantile(x) as f64;
        Percentiles {
            count: self.0.len(),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            max: self.0.max() as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_spread() {
        let mut h = LatencyHist::new();
        for us in 1..=1000 {
            h.record(us);
        }
        let mut other = LatencyHist::new();
        other.record(50_000_000);
        h.merge(&other);
        let p = h.percentiles();
        assert_eq!(p.count, 1001);
        assert!((p.p50 - 500.0).abs() <= 1.0, "{p:?}");
        assert!((p.p99 - 990.0).abs() <= 2.0, "{p:?}");
        assert!(p.max >= 9_990_000.0, "clamped, {p:?}");
        h.clear();
        assert_eq!(h.percentiles(), Percentiles::default());
    }
}
