//! Folds every receiver's samples and summaries into the run's numbers:
//! per-second timeline points, rolling values for the live display, and
//! the final distributions. Pure: the caller says what time it is.

use super::histogram::DurationHistogram;
use super::layers::{LAYERS, LayerSummary};
use super::receiver::{ReceiverSummary, WindowSample};
use crate::report::{Bitrate, LayerFigures, LayerGroup, Percentiles, TimelinePoint};
use std::collections::VecDeque;

/// Windows the rolling values span (one per second: the last few seconds).
pub const ROLLING_WINDOWS: usize = 5;
/// Receivers subscribed for less than this are left out of the bitrate
/// statistics when any receiver was subscribed longer: a few frames over
/// a few milliseconds say nothing about a rate.
pub const MIN_SUBSCRIBED_US: u64 = 1_000_000;
/// A window shorter than this adds samples but no timeline point.
const MIN_POINT_SPAN_S: f64 = 0.5;

/// One window's aggregate.
#[derive(Debug, Clone, Default)]
struct Window {
    span_s: f64,
    bytes: u64,
    expected: u64,
    received: u64,
    latency: DurationHistogram,
    layer_frames: [u64; LAYERS],
}

/// The live display's numbers over the last [`ROLLING_WINDOWS`] windows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rolling {
    /// Aggregate received payload bitrate of the latest window, kbit/s.
    pub kbps: f64,
    /// 99th percentile latency, ms, if any frame arrived.
    pub p99_ms: Option<f64>,
    /// Lost over expected, if anything was expected.
    pub loss: Option<f64>,
}

/// The run's final numbers, as the report names them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    /// From the join start to the first decrypted frame.
    pub join_ms: Percentiles,
    /// End-to-end latency.
    pub latency_ms: Percentiles,
    /// Latency CDF points.
    pub latency_cdf: Vec<[f64; 2]>,
    /// Lost over expected.
    pub loss_ratio: f64,
    /// Mean interarrival jitter over receivers, ms.
    pub jitter_ms: f64,
    /// Payload bitrate per subscriber.
    pub bitrate_kbps: Bitrate,
    /// Distinct frames received.
    pub frames_received: u64,
    /// Frames the subscriptions implied.
    pub frames_expected: u64,
    /// Frames received more than once.
    pub duplicates: u64,
    /// Frames received after a later one.
    pub reordered: u64,
    /// Decrypted frames without a valid header.
    pub malformed: u64,
    /// Video layers, switches and freezes, limited and unlimited
    /// receivers apart; `None` if no video frame arrived.
    pub layers: Option<LayerFigures>,
}

/// The run's accumulator.
#[derive(Debug, Default)]
pub struct Collector {
    latency: DurationHistogram,
    join: DurationHistogram,
    recent: VecDeque<Window>,
    timeline: Vec<TimelinePoint>,
    expected: u64,
    received: u64,
    duplicates: u64,
    reordered: u64,
    malformed: u64,
    jitter_sum_us: f64,
    jitter_n: u64,
    bitrates: Vec<(u64, f64)>,
    /// Layer figures and receivers with video, unlimited then limited.
    layers: [(u64, LayerSummary); 2],
}

impl Collector {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes every receiver's sample of the window that ended at `t_s`
    /// (seconds since the start) and lasted `span_s`; `connected` and
    /// `joins` are the participant counts at that time. Returns the
    /// timeline point it added, if the window was long enough for one.
    pub fn record_window(
        &mut self,
        t_s: f64,
        span_s: f64,
        connected: u64,
        joins: u64,
        samples: impl IntoIterator<Item = WindowSample>,
    ) -> Option<TimelinePoint> {
        let mut w = Window {
            span_s,
            ..Window::default()
        };
        for s in samples {
            w.bytes += s.bytes;
            w.expected += s.counts.expected;
            w.received += s.counts.received;
            for (a, b) in w.layer_frames.iter_mut().zip(s.layer_frames) {
                *a += b;
            }
            for l in s.latencies_us {
                w.latency.record_us(l);
            }
        }
        self.latency.merge(&w.latency);
        let point = (span_s >= MIN_POINT_SPAN_S).then(|| TimelinePoint {
            t_s,
            connected,
            joins,
            bitrate_kbps: kbps(w.bytes, span_s),
            latency_p50_ms: w.latency.quantile_ms(0.50),
            latency_p99_ms: w.latency.quantile_ms(0.99),
            loss_ratio: loss(w.expected, w.received),
            layer_frames: w.layer_frames,
        });
        if let Some(p) = point {
            self.timeline.push(p);
            if self.recent.len() == ROLLING_WINDOWS {
                self.recent.pop_front();
            }
            self.recent.push_back(w);
        }
        point
    }

    /// Adds a receiver that stopped; `limited` if its downlink was.
    pub fn add_receiver(&mut self, s: &ReceiverSummary, limited: bool) {
        if s.layers.time_us.iter().any(|t| *t > 0) {
            let (n, l) = &mut self.layers[usize::from(limited)];
            *n += 1;
            l.add(&s.layers);
        }
        self.expected += s.expected;
        self.received += s.received;
        self.duplicates += s.duplicates;
        self.reordered += s.reordered;
        self.malformed += s.malformed;
        if let Some(j) = s.join_us {
            self.join.record_us(j);
        }
        if let Some(j) = s.jitter_us {
            self.jitter_sum_us += j;
            self.jitter_n += 1;
        }
        if let Some(k) = s.kbps() {
            self.bitrates.push((s.subscribed_us, k));
        }
    }

    /// Joins recorded so far (receivers that stopped after a first frame).
    pub fn joins_recorded(&self) -> u64 {
        self.join.count()
    }

    /// The live display's numbers.
    pub fn rolling(&self) -> Rolling {
        let mut latency = DurationHistogram::new();
        let (mut expected, mut received) = (0, 0);
        for w in &self.recent {
            latency.merge(&w.latency);
            expected += w.expected;
            received += w.received;
        }
        Rolling {
            kbps: self.recent.back().map_or(0.0, |w| kbps(w.bytes, w.span_s)),
            p99_ms: (latency.count() > 0).then(|| latency.quantile_ms(0.99)),
            loss: (expected > 0).then(|| loss(expected, received)),
        }
    }

    /// One point per window so far.
    pub fn timeline(&self) -> &[TimelinePoint] {
        &self.timeline
    }

    /// The final numbers over every window and receiver added.
    pub fn measured(&self) -> Measured {
        let long: Vec<f64> = self
            .bitrates
            .iter()
            .filter(|(us, _)| *us >= MIN_SUBSCRIBED_US)
            .map(|(_, k)| *k)
            .collect();
        let rates = if long.is_empty() {
            self.bitrates.iter().map(|(_, k)| *k).collect()
        } else {
            long
        };
        let bitrate_kbps = if rates.is_empty() {
            Bitrate::default()
        } else {
            Bitrate {
                mean: rates.iter().sum::<f64>() / rates.len() as f64,
                min: rates.iter().copied().fold(f64::INFINITY, f64::min),
                max: rates.iter().copied().fold(0.0, f64::max),
            }
        };
        Measured {
            join_ms: self.join.percentiles(),
            latency_ms: self.latency.percentiles(),
            latency_cdf: self.latency.cdf_ms(),
            loss_ratio: loss(self.expected, self.received),
            jitter_ms: if self.jitter_n == 0 {
                0.0
            } else {
                self.jitter_sum_us / self.jitter_n as f64 / 1000.0
            },
            bitrate_kbps,
            frames_received: self.received,
            frames_expected: self.expected,
            duplicates: self.duplicates,
            reordered: self.reordered,
            malformed: self.malformed,
            layers: (self.layers.iter().any(|(n, _)| *n > 0)).then(|| LayerFigures {
                unlimited: layer_group(self.layers[0]),
                limited: layer_group(self.layers[1]),
            }),
        }
    }
}

fn layer_group((receivers, l): (u64, LayerSummary)) -> LayerGroup {
    let total: u64 = l.time_us.iter().sum();
    let minutes = total as f64 / 60e6;
    LayerGroup {
        receivers,
        time_share: l.time_us.map(|t| {
            if total == 0 {
                0.0
            } else {
                t as f64 / total as f64
            }
        }),
        switches: l.switches,
        switches_per_minute: if minutes > 0.0 {
            l.switches as f64 / minutes
        } else {
            0.0
        },
        freezes: l.freezes,
        freeze_share: if total == 0 {
            0.0
        } else {
            l.freeze_us as f64 / total as f64
        },
        longest_freeze_ms: l.longest_freeze_us as f64 / 1000.0,
    }
}

fn kbps(bytes: u64, span_s: f64) -> f64 {
    if span_s <= 0.0 {
        0.0
    } else {
        bytes as f64 * 8.0 / 1000.0 / span_s
    }
}

/// Lost over expected, in 0..=1 (late frames can make a window's
/// received exceed its expected; that is no negative loss).
fn loss(expected: u64, received: u64) -> f64 {
    if expected == 0 {
        0.0
    } else {
        expected.saturating_sub(received) as f64 / expected as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::stream::WindowCounts;

    fn sample(bytes: u64, expected: u64, received: u64, lat_ms: &[u64]) -> WindowSample {
        WindowSample {
            bytes,
            counts: WindowCounts { expected, received },
            latencies_us: lat_ms.iter().map(|m| m * 1000).collect(),
            layer_frames: [0; LAYERS],
        }
    }

    #[test]
    fn windows_become_timeline_points_and_rolling_values() {
        let mut c = Collector::new();
        let p = c
            .record_window(
                1.0,
                1.0,
                3,
                2,
                [sample(125_000, 100, 99, &[10, 20]), sample(0, 0, 0, &[30])],
            )
            .expect("a point");
        assert_eq!((p.connected, p.joins), (3, 2));
        assert!((p.bitrate_kbps - 1000.0).abs() < 1e-9);
        assert!((p.loss_ratio - 0.01).abs() < 1e-12);
        assert!((p.latency_p50_ms - 20.0).abs() < 0.05);
        assert!((p.latency_p99_ms - 30.0).abs() < 0.05);
        // Late frames: more received than expected is no loss.
        let q = c
            .record_window(2.0, 1.0, 3, 3, [sample(0, 10, 12, &[])])
            .expect("point");
        assert_eq!(q.loss_ratio, 0.0);
        let r = c.rolling();
        assert_eq!(r.kbps, 0.0);
        assert!((r.loss.expect("expected some") - 0.0).abs() < 1e-12);
        assert!((r.p99_ms.expect("samples") - 30.0).abs() < 0.05);
        // A short final window adds samples but no point.
        assert!(
            c.record_window(2.2, 0.2, 0, 3, [sample(0, 0, 0, &[40])])
                .is_none()
        );
        assert_eq!(c.timeline().len(), 2);
        assert_eq!(c.measured().latency_ms.count, 4);
    }

    #[test]
    fn rolling_keeps_only_recent_windows() {
        let mut c = Collector::new();
        c.record_window(1.0, 1.0, 1, 1, [sample(0, 10, 0, &[500])]);
        for t in 2..=(ROLLING_WINDOWS as u64 + 1) {
            c.record_window(t as f64, 1.0, 1, 1, [sample(0, 10, 10, &[5])]);
        }
        let r = c.rolling();
        assert_eq!(r.loss, Some(0.0));
        assert!(r.p99_ms.expect("samples") < 10.0);
    }

    #[test]
    fn receivers_add_up() {
        let mut c = Collector::new();
        c.add_receiver(
            &ReceiverSummary {
                expected: 100,
                received: 90,
                duplicates: 2,
                reordered: 3,
                malformed: 1,
                bytes: 125_000,
                subscribed_us: 2_000_000,
                join_us: Some(400_000),
                jitter_us: Some(1000.0),
                streams: 2,
                layers: LayerSummary {
                    time_us: [3_000_000, 0, 1_000_000, 0],
                    switches: 2,
                    freezes: 1,
                    freeze_us: 600_000,
                    longest_freeze_us: 600_000,
                },
            },
            true,
        );
        c.add_receiver(
            &ReceiverSummary {
                expected: 100,
                received: 100,
                bytes: 250_000,
                subscribed_us: 2_000_000,
                join_us: Some(600_000),
                jitter_us: Some(3000.0),
                layers: LayerSummary {
                    time_us: [0, 0, 2_000_000, 0],
                    ..LayerSummary::default()
                },
                ..ReceiverSummary::default()
            },
            false,
        );
        // Too short to say anything about a rate.
        c.add_receiver(
            &ReceiverSummary {
                bytes: 100,
                subscribed_us: 1_000,
                ..ReceiverSummary::default()
            },
            false,
        );
        // Never got anything.
        c.add_receiver(&ReceiverSummary::default(), true);
        let m = c.measured();
        assert_eq!((m.frames_expected, m.frames_received), (200, 190));
        assert!((m.loss_ratio - 0.05).abs() < 1e-12);
        assert_eq!((m.duplicates, m.reordered, m.malformed), (2, 3, 1));
        assert!((m.jitter_ms - 2.0).abs() < 1e-12);
        assert!((m.bitrate_kbps.mean - 750.0).abs() < 1e-9);
        assert!((m.bitrate_kbps.min - 500.0).abs() < 1e-9);
        assert!((m.bitrate_kbps.max - 1000.0).abs() < 1e-9);
        assert_eq!(m.join_ms.count, 2);
        assert!((m.join_ms.max - 600.0).abs() < 1.0);
        assert_eq!(c.joins_recorded(), 2);
        let layers = m.layers.expect("video arrived");
        assert_eq!(layers.limited.receivers, 1);
        assert_eq!(layers.limited.time_share, [0.75, 0.0, 0.25, 0.0]);
        assert_eq!(layers.limited.freezes, 1);
        assert!((layers.limited.freeze_share - 0.15).abs() < 1e-12);
        assert!((layers.limited.switches_per_minute - 30.0).abs() < 1e-9);
        assert_eq!(layers.unlimited.receivers, 1);
        assert_eq!(layers.unlimited.time_share, [0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn empty_run_measures_zero() {
        let m = Collector::new().measured();
        assert_eq!(m, Measured::default());
    }
}
