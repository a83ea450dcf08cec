//! Durations in µs, summarised as percentiles and a CDF in milliseconds.

use crate::report::Percentiles;
use hdrhistogram::Histogram;

/// Largest duration kept apart (10 minutes); larger ones count as this.
const MAX_US: u64 = 600_000_000;
/// Relative precision of 0.1 %.
const SIGFIG: u8 = 3;
/// Smallest step in fraction between two CDF points below the tail.
pub const CDF_STEP: f64 = 0.005;
/// The same in the last 1 %.
pub const CDF_TAIL_STEP: f64 = 0.0002;

/// A histogram of durations.
#[derive(Debug, Clone)]
pub struct DurationHistogram {
    h: Histogram<u64>,
}

impl Default for DurationHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl DurationHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        // Constant, valid bounds: creation cannot fail.
        let h = Histogram::new_with_bounds(1, MAX_US, SIGFIG)
            .expect("constant histogram bounds are valid");
        Self { h }
    }

    /// Adds one sample.
    pub fn record_us(&mut self, us: u64) {
        self.h.saturating_record(us);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &Self) {
        // Same bounds on both sides: addition cannot fail.
        let _ = self.h.add(&other.h);
    }

    /// Samples held.
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// The value at quantile `q` (0..=1), ms; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.h.is_empty() {
            return 0.0;
        }
        self.h.value_at_quantile(q) as f64 / 1000.0
    }

    /// p50, p95, p99 and max, ms.
    pub fn percentiles(&self) -> Percentiles {
        if self.h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: self.h.len(),
            p50: self.quantile_ms(0.50),
            p95: self.quantile_ms(0.95),
            p99: self.quantile_ms(0.99),
            max: self.h.max() as f64 / 1000.0,
        }
    }

    /// The CDF as `[ms, fraction at or below]` points, ascending in both,
    /// ending at `[max, 1.0]`: one point per recorded value, thinned to
    /// steps of at least [`CDF_STEP`] in fraction, finer in the tail (the
    /// last 1 %, where the interesting latencies are). Empty when no
    /// samples.
    pub fn cdf_ms(&self) -> Vec<[f64; 2]> {
        let total = self.h.len();
        if total == 0 {
            return Vec::new();
        }
        let mut out: Vec<[f64; 2]> = Vec::new();
        let mut seen = 0u64;
        let mut last_kept = 0.0;
        for v in self.h.iter_recorded() {
            seen += v.count_since_last_iteration();
            let fraction = seen as f64 / total as f64;
            let ms = v.value_iterated_to() as f64 / 1000.0;
            let step = if fraction > 0.99 {
                CDF_TAIL_STEP
            } else {
                CDF_STEP
            };
            if fraction - last_kept >= step || seen == total {
                out.push([ms, fraction]);
                last_kept = fraction;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_uniform_distribution() {
        let mut h = DurationHistogram::new();
        for ms in 1..=1000u64 {
            h.record_us(ms * 1000);
        }
        let p = h.percentiles();
        assert_eq!(p.count, 1000);
        let near = |a: f64, b: f64| (a - b).abs() <= b * 0.002 + 0.001;
        assert!(near(p.p50, 500.0), "{p:?}");
        assert!(near(p.p95, 950.0), "{p:?}");
        assert!(near(p.p99, 990.0), "{p:?}");
        assert!(near(p.max, 1000.0), "{p:?}");
    }

    #[test]
    fn empty_is_zero_and_huge_values_saturate() {
        let h = DurationHistogram::new();
        assert_eq!(h.percentiles(), Percentiles::default());
        assert!(h.cdf_ms().is_empty());
        let mut s = DurationHistogram::new();
        s.record_us(u64::MAX);
        s.record_us(0);
        assert_eq!(s.count(), 2);
        assert!(s.percentiles().max >= 599_000.0);
    }

    #[test]
    fn merge_adds_samples() {
        let mut a = DurationHistogram::new();
        let mut b = DurationHistogram::new();
        a.record_us(1000);
        b.record_us(3000);
        b.record_us(3000);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!((a.quantile_ms(0.5) - 3.0).abs() < 0.01);
    }

    #[test]
    fn cdf_is_ascending_and_ends_at_one() {
        let mut h = DurationHistogram::new();
        for i in 0..10_000u64 {
            h.record_us(1000 + (i * 7919) % 50_000);
        }
        let cdf = h.cdf_ms();
        assert!(cdf.len() > 50 && cdf.len() < 400, "{}", cdf.len());
        for w in cdf.windows(2) {
            assert!(w[0][0] < w[1][0] && w[0][1] < w[1][1], "{w:?}");
        }
        assert_eq!(cdf.last().map(|p| p[1]), Some(1.0));
        let single = {
            let mut s = DurationHistogram::new();
            s.record_us(5000);
            s.cdf_ms()
        };
        assert_eq!(single.len(), 1);
        assert_eq!(single[0][1], 1.0);
        assert!((single[0][0] - 5.0).abs() < 0.01);
    }
}
