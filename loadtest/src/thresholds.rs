//! The pass/fail gates: `--max-p99-ms`, `--max-loss`, `--min-connected`
//! and `--max-decrypt-failures`. Pure.

use crate::report::{Percentiles, Thresholds};

/// The gates given on the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gates {
    /// Largest p99 end-to-end latency, ms.
    pub max_p99_ms: Option<f64>,
    /// Largest frame loss ratio.
    pub max_loss: Option<f64>,
    /// Smallest share of the participants that must connect (0..=1).
    pub min_connected: f64,
    /// Most frames the SDK may drop outside joining.
    pub max_decrypt_failures: Option<u64>,
}

impl Default for Gates {
    /// Only the connection gate, at 100 %: a run where someone could not
    /// join has failed whatever else it measured.
    fn default() -> Self {
        Self {
            max_p99_ms: None,
            max_loss: None,
            min_connected: 1.0,
            max_decrypt_failures: None,
        }
    }
}

/// What the gates are checked against.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observed<'a> {
    /// End-to-end latency.
    pub latency: Option<&'a Percentiles>,
    /// Frame loss ratio.
    pub loss_ratio: f64,
    /// Participants that connected.
    pub connected: u64,
    /// Participants meant to connect.
    pub target: u64,
    /// SDK drops outside joining.
    pub decrypt_failures_after_join: u64,
    /// Whether the run went to its planned end.
    pub completed: bool,
}

/// Checks the run's numbers against the gates. A run that did not
/// complete never passes.
pub fn evaluate(gates: &Gates, seen: &Observed<'_>) -> Thresholds {
    let mut failures = Vec::new();
    if let Some(max) = gates.max_p99_ms {
        match seen.latency {
            Some(l) if l.count > 0 => {
                if l.p99 > max {
                    failures.push(format!(
                        "--max-p99-ms {max}: p99 latency was {:.2} ms",
                        l.p99
                    ));
                }
            }
            _ => failures.push(format!("--max-p99-ms {max}: no frame latency was measured")),
        }
    }
    if let Some(max) = gates.max_loss
        && seen.loss_ratio > max
    {
        failures.push(format!("--max-loss {max}: loss was {:.4}", seen.loss_ratio));
    }
    if seen.target > 0 {
        let share = seen.connected as f64 / seen.target as f64;
        if share < gates.min_connected {
            failures.push(format!(
                "--min-connected {}: {} of {} participants connected",
                gates.min_connected, seen.connected, seen.target
            ));
        }
    }
    if let Some(max) = gates.max_decrypt_failures
        && seen.decrypt_failures_after_join > max
    {
        failures.push(format!(
            "--max-decrypt-failures {max}: {} frames failed to decrypt after joining",
            seen.decrypt_failures_after_join
        ));
    }
    if !seen.completed {
        failures.push("the run did not complete".to_owned());
    }
    Thresholds {
        max_p99_ms: gates.max_p99_ms,
        max_loss: gates.max_loss,
        min_connected: Some(gates.min_connected),
        max_decrypt_failures: gates.max_decrypt_failures,
        passed: failures.is_empty(),
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lat(p99: f64) -> Percentiles {
        Percentiles {
            count: 100,
            p50: p99 / 2.0,
            p95: p99,
            p99,
            max: p99,
        }
    }

    fn seen(latency: &Percentiles, loss_ratio: f64) -> Observed<'_> {
        Observed {
            latency: Some(latency),
            loss_ratio,
            connected: 10,
            target: 10,
            decrypt_failures_after_join: 0,
            completed: true,
        }
    }

    #[test]
    fn no_gates_pass_when_complete() {
        let t = evaluate(&Gates::default(), &seen(&Percentiles::default(), 0.5));
        assert!(t.passed && t.failures.is_empty());
        assert_eq!(t.min_connected, Some(1.0));
    }

    #[test]
    fn each_gate_names_what_failed() {
        let gates = Gates {
            max_p99_ms: Some(0.0),
            max_loss: Some(0.01),
            ..Gates::default()
        };
        let t = evaluate(&gates, &seen(&lat(12.0), 0.02));
        assert!(!t.passed);
        assert_eq!(t.failures.len(), 2);
        assert!(t.failures[0].contains("--max-p99-ms") && t.failures[0].contains("12.00"));
        assert!(t.failures[1].contains("--max-loss"));
        let gates = Gates {
            max_p99_ms: Some(12.0),
            max_loss: Some(0.02),
            ..Gates::default()
        };
        let ok = evaluate(&gates, &seen(&lat(12.0), 0.02));
        assert!(ok.passed, "{:?}", ok.failures);
        assert_eq!((ok.max_p99_ms, ok.max_loss), (Some(12.0), Some(0.02)));
    }

    #[test]
    fn participants_that_never_connect_fail_the_run_by_default() {
        let l = lat(1.0);
        let mut s = seen(&l, 0.0);
        s.connected = 9;
        let t = evaluate(&Gates::default(), &s);
        assert!(!t.passed);
        assert!(
            t.failures[0].contains("9 of 10 participants"),
            "{:?}",
            t.failures
        );
        let lenient = Gates {
            min_connected: 0.9,
            ..Gates::default()
        };
        assert!(evaluate(&lenient, &s).passed);
    }

    #[test]
    fn decrypt_failures_after_join_can_be_gated() {
        let l = lat(1.0);
        let mut s = seen(&l, 0.0);
        s.decrypt_failures_after_join = 3;
        assert!(evaluate(&Gates::default(), &s).passed);
        let strict = Gates {
            max_decrypt_failures: Some(2),
            ..Gates::default()
        };
        let t = evaluate(&strict, &s);
        assert!(!t.passed && t.failures[0].contains("--max-decrypt-failures 2"));
    }

    #[test]
    fn missing_samples_and_incomplete_runs_fail() {
        let gates = Gates {
            max_p99_ms: Some(100.0),
            ..Gates::default()
        };
        let t = evaluate(&gates, &seen(&Percentiles::default(), 0.0));
        assert!(!t.passed && t.failures[0].contains("no frame latency"));
        let l = lat(1.0);
        let mut s = seen(&l, 0.0);
        s.completed = false;
        let t = evaluate(&Gates::default(), &s);
        assert!(!t.passed && t.failures[0].contains("did not complete"));
    }
}
