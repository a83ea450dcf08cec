//! The pass/fail gates of `--max-p99-ms` and `--max-loss`. Pure.

use crate::report::{Percentiles, Thresholds};

/// Checks the run's numbers against the gates given. A run that did not
/// complete never passes.
pub fn evaluate(
    max_p99_ms: Option<f64>,
    max_loss: Option<f64>,
    latency: &Percentiles,
    loss_ratio: f64,
    completed: bool,
) -> Thresholds {
    let mut failures = Vec::new();
    if let Some(max) = max_p99_ms {
        if latency.count == 0 {
            failures.push(format!("--max-p99-ms {max}: no frame latency was measured"));
        } else if latency.p99 > max {
            failures.push(format!(
                "--max-p99-ms {max}: p99 latency was {:.2} ms",
                latency.p99
            ));
        }
    }
    if let Some(max) = max_loss
        && loss_ratio > max
    {
        failures.push(format!("--max-loss {max}: loss was {loss_ratio:.4}"));
    }
    if !completed {
        failures.push("the run did not complete".to_owned());
    }
    Thresholds {
        max_p99_ms,
        max_loss,
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

    #[test]
    fn no_gates_pass_when_complete() {
        let t = evaluate(None, None, &Percentiles::default(), 0.5, true);
        assert!(t.passed && t.failures.is_empty());
    }

    #[test]
    fn each_gate_names_what_failed() {
        let t = evaluate(Some(0.0), Some(0.01), &lat(12.0), 0.02, true);
        assert!(!t.passed);
        assert_eq!(t.failures.len(), 2);
        assert!(t.failures[0].contains("--max-p99-ms") && t.failures[0].contains("12.00"));
        assert!(t.failures[1].contains("--max-loss"));
        let ok = evaluate(Some(12.0), Some(0.02), &lat(12.0), 0.02, true);
        assert!(ok.passed, "{:?}", ok.failures);
        assert_eq!((ok.max_p99_ms, ok.max_loss), (Some(12.0), Some(0.02)));
    }

    #[test]
    fn missing_samples_and_incomplete_runs_fail() {
        let t = evaluate(Some(100.0), None, &Percentiles::default(), 0.0, true);
        assert!(!t.passed && t.failures[0].contains("no frame latency"));
        let t = evaluate(None, None, &lat(1.0), 0.0, false);
        assert!(!t.passed && t.failures[0].contains("did not complete"));
    }
}
