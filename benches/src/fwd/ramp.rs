//! Measurement windows and the search for the highest sustainable load.
//!
//! A window sets nothing; it reads the generator's counters and the
//! forwarder's CPU time at its start and end. The ramp raises the offered
//! rate step by step (fast while the forwarder's hot thread is mostly idle,
//! then by a fixed factor) until a step loses more than allowed, the
//! generator cannot keep up, or the hot thread saturates its core.

use crate::fwd::cpu::{CpuReading, Pinning};
use crate::fwd::generator::{Counters, Shared};
use std::time::{Duration, Instant};
use testkit::procfs::{self, Cpu};

/// What one window measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Window {
    /// Length, seconds.
    pub wall_s: f64,
    /// Offered input rate asked of the generator, packets/s.
    pub target_in_pps: f64,
    /// Input rate the publishers achieved, packets/s.
    pub in_pps: f64,
    /// RTP packets/s the sinks received.
    pub out_pps: f64,
    /// Share of expected copies that did not arrive.
    pub loss: f64,
    /// Forwarder CPU seconds in the window (whole process or thread).
    pub cpu_s: f64,
    /// Hot-thread CPU seconds in the window.
    pub hot_cpu_s: f64,
    /// Hot-thread busy share of one core.
    pub hot_util: f64,
    /// Packets the generator could not send on time.
    pub behind: u64,
    /// Generator thread busy share of one core.
    pub gen_util: f64,
    /// Busy share of the forwarder's core, all processes (pinned runs).
    pub forwarder_core_busy: Option<f64>,
    /// Busy share of the generator's core, all processes (pinned runs).
    pub generator_core_busy: Option<f64>,
    /// Datagrams the host dropped for full socket receive buffers.
    pub udp_rcvbuf_errors: Option<u64>,
    /// Raw counter deltas.
    #[serde(skip)]
    pub counters: Counters,
}

impl Window {
    /// Copies out per forwarder CPU second.
    pub fn out_per_cpu_s(&self) -> f64 {
        if self.cpu_s > 0.0 {
            self.counters.received as f64 / self.cpu_s
        } else {
            0.0
        }
    }
}

/// What a window reads about the host besides the forwarder.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HostSample {
    forwarder_core: Option<f64>,
    generator_core: Option<f64>,
    rcvbuf_errors: Option<u64>,
}

impl HostSample {
    fn read(pinning: Option<Pinning>) -> Self {
        Self {
            forwarder_core: pinning.and_then(|p| procfs::read_busy_s(Cpu::Core(p.forwarder_cpu))),
            generator_core: pinning.and_then(|p| procfs::read_busy_s(Cpu::Core(p.generator_cpu))),
            rcvbuf_errors: procfs::read_udp_rcvbuf_errors(),
        }
    }
}

/// Measures one window of `dur` at the current rate. `pinning` names the
/// cores whose total load is reported (to show other processes' share).
pub fn measure(
    shared: &Shared,
    cpu: &dyn Fn() -> Option<CpuReading>,
    pinning: Option<Pinning>,
    target_in_pps: f64,
    dur: Duration,
) -> Window {
    let (c0, r0, h0, t0) = (
        shared.counters(),
        cpu(),
        HostSample::read(pinning),
        Instant::now(),
    );
    std::thread::sleep(dur);
    let (c1, r1, h1, t1) = (
        shared.counters(),
        cpu(),
        HostSample::read(pinning),
        Instant::now(),
    );
    let wall_s = t1.saturating_duration_since(t0).as_secs_f64().max(1e-9);
    let c = c1.since(&c0);
    let (cpu_s, hot_cpu_s) = match (r0, r1) {
        (Some(a), Some(b)) => (
            (b.total_s - a.total_s).max(0.0),
            (b.hot_s - a.hot_s).max(0.0),
        ),
        _ => (0.0, 0.0),
    };
    let loss = if c.expected > 0 {
        (1.0 - c.received as f64 / c.expected as f64).max(0.0)
    } else {
        0.0
    };
    Window {
        wall_s,
        target_in_pps,
        in_pps: c.sent as f64 / wall_s,
        out_pps: c.received as f64 / wall_s,
        loss,
        cpu_s,
        hot_cpu_s,
        hot_util: hot_cpu_s / wall_s,
        behind: c.behind,
        gen_util: c.gen_cpu_ns as f64 / 1e9 / wall_s,
        forwarder_core_busy: h0
            .forwarder_core
            .zip(h1.forwarder_core)
            .map(|(a, b)| (b - a).max(0.0) / wall_s),
        generator_core_busy: h0
            .generator_core
            .zip(h1.generator_core)
            .map(|(a, b)| (b - a).max(0.0) / wall_s),
        udp_rcvbuf_errors: h0
            .rcvbuf_errors
            .zip(h1.rcvbuf_errors)
            .map(|(a, b)| b.saturating_sub(a)),
        counters: c,
    }
}

/// Why the ramp stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// A step lost more than allowed.
    Loss,
    /// The forwarder's hot thread saturated its core.
    ForwarderCpu,
    /// The generator could not offer the rate.
    Generator,
    /// The step limit was reached first.
    MaxSteps,
    /// A fixed rate was given; no ramp.
    Fixed,
}

/// How to ramp.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RampConfig {
    /// First step's output rate (copies/s).
    pub start_out_pps: f64,
    /// Length of a step's measurement.
    pub step: Duration,
    /// Wait after a rate change before measuring.
    pub settle: Duration,
    /// Loss beyond which a step fails.
    pub max_loss: f64,
    /// Hot-thread share of a core at which the forwarder is saturated.
    pub max_cpu: f64,
    /// Steps at most.
    pub max_steps: usize,
    /// Factor per step once the forwarder is at least half busy.
    pub growth: f64,
    /// Cores to report the total load of.
    pub pinning: Option<Pinning>,
}

/// What to do after a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Try this input rate next.
    Next(f64),
    /// Stop. `keep` says whether this step's rate is sustainable.
    Stop {
        /// Whether this step counts as sustainable.
        keep: bool,
        /// Why.
        limit: Limit,
    },
}

/// Judges one step run at input `rate`.
pub fn decide(rate: f64, w: &Window, cfg: &RampConfig) -> Decision {
    let offered =
        w.in_pps >= 0.95 * rate && w.behind as f64 <= 0.01 * (w.counters.sent.max(1) as f64);
    if w.loss > cfg.max_loss {
        return Decision::Stop {
            keep: false,
            limit: Limit::Loss,
        };
    }
    if !offered {
        return Decision::Stop {
            keep: false,
            limit: Limit::Generator,
        };
    }
    if w.hot_util >= cfg.max_cpu {
        return Decision::Stop {
            keep: true,
            limit: Limit::ForwarderCpu,
        };
    }
    let factor = if w.hot_util < 0.5 {
        // Far from saturation: jump towards ~80% busy, at most doubling.
        (0.8 / w.hot_util.max(1e-3)).clamp(cfg.growth, 2.0)
    } else {
        cfg.growth
    };
    Decision::Next(rate * factor)
}

/// One step of a ramp, for the report.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Step {
    /// Offered input rate.
    pub in_pps: f64,
    /// Received output rate.
    pub out_pps: f64,
    /// Loss.
    pub loss: f64,
    /// Hot-thread busy share.
    pub hot_util: f64,
    /// Generator busy share.
    pub gen_util: f64,
}

/// The outcome of a ramp.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RampOutcome {
    /// The highest sustainable input rate found.
    pub in_pps: f64,
    /// Why the ramp stopped there.
    pub limited_by: Limit,
    /// Every step.
    pub steps: Vec<Step>,
}

/// Ramps the offered input rate from `cfg.start_out_pps / mean_fanout`.
pub fn ramp(
    shared: &Shared,
    cpu: &dyn Fn() -> Option<CpuReading>,
    mean_fanout: f64,
    cfg: &RampConfig,
) -> RampOutcome {
    let mut rate = cfg.start_out_pps / mean_fanout.max(1.0);
    let mut best = None;
    let mut steps = Vec::new();
    let mut limited_by = Limit::MaxSteps;
    let mut retried = false;
    for _ in 0..cfg.max_steps {
        shared.set_rate(rate);
        std::thread::sleep(cfg.settle);
        let w = measure(shared, cpu, cfg.pinning, rate, cfg.step);
        steps.push(Step {
            in_pps: rate,
            out_pps: w.out_pps,
            loss: w.loss,
            hot_util: w.hot_util,
            gen_util: w.gen_util,
        });
        tracing::info!(
            in_pps = rate as u64,
            out_pps = w.out_pps as u64,
            loss = format!("{:.4}", w.loss),
            hot_util = format!("{:.2}", w.hot_util),
            gen_util = format!("{:.2}", w.gen_util),
            "ramp step"
        );
        match decide(rate, &w, cfg) {
            Decision::Next(next) => {
                best = Some(rate);
                rate = next;
                retried = false;
            }
            // A failed step is measured once more before it counts: on a
            // shared machine one burst of other work can fail a step.
            Decision::Stop { keep: false, .. } if !retried => retried = true,
            Decision::Stop { keep, limit } => {
                if keep {
                    best = Some(rate);
                }
                limited_by = limit;
                break;
            }
        }
    }
    RampOutcome {
        // Nothing held even at the start: report the start rate, flagged
        // by `limited_by`.
        in_pps: best.unwrap_or(cfg.start_out_pps / mean_fanout.max(1.0)),
        limited_by,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RampConfig {
        RampConfig {
            start_out_pps: 1000.0,
            step: Duration::from_secs(1),
            settle: Duration::ZERO,
            max_loss: 0.01,
            max_cpu: 0.95,
            max_steps: 10,
            growth: 1.15,
            pinning: None,
        }
    }

    fn window(in_pps: f64, loss: f64, hot_util: f64) -> Window {
        Window {
            in_pps,
            loss,
            hot_util,
            counters: Counters {
                sent: in_pps as u64,
                ..Counters::default()
            },
            ..Window::default()
        }
    }

    #[test]
    fn jumps_while_idle_then_creeps() {
        let c = cfg();
        assert_eq!(
            decide(100.0, &window(100.0, 0.0, 0.1), &c),
            Decision::Next(200.0)
        );
        assert_eq!(
            decide(100.0, &window(100.0, 0.0, 0.4), &c),
            Decision::Next(200.0)
        );
        let Decision::Next(n) = decide(100.0, &window(100.0, 0.0, 0.45), &c) else {
            panic!("continues")
        };
        assert!((n - 100.0 * 0.8 / 0.45).abs() < 1e-9);
        let Decision::Next(n) = decide(100.0, &window(100.0, 0.0, 0.7), &c) else {
            panic!("continues")
        };
        assert!((n - 115.0).abs() < 1e-9);
    }

    #[test]
    fn stops_on_loss_generator_or_saturation() {
        let c = cfg();
        assert_eq!(
            decide(100.0, &window(100.0, 0.02, 0.5), &c),
            Decision::Stop {
                keep: false,
                limit: Limit::Loss
            }
        );
        assert_eq!(
            decide(100.0, &window(90.0, 0.0, 0.5), &c),
            Decision::Stop {
                keep: false,
                limit: Limit::Generator
            }
        );
        assert_eq!(
            decide(100.0, &window(100.0, 0.005, 0.97), &c),
            Decision::Stop {
                keep: true,
                limit: Limit::ForwarderCpu
            }
        );
    }

    #[test]
    fn a_window_reads_counter_deltas() {
        let shared = Shared::default();
        let cpu = || {
            Some(CpuReading {
                total_s: 1.0,
                hot_s: 0.5,
            })
        };
        let w = measure(&shared, &cpu, None, 10.0, Duration::from_millis(5));
        assert_eq!((w.loss, w.out_pps, w.cpu_s), (0.0, 0.0, 0.0));
        assert_eq!(w.out_per_cpu_s(), 0.0);
    }
}
