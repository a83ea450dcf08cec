//! Puts the run's numbers into a [`Report`], and decides the exit status.

use crate::report::{
    DecryptFailureReasons, Report, SCHEMA_VERSION, SfuUsage, TesterUsage, Thresholds, TimelinePoint,
};
use crate::settings::Settings;
use crate::stats::Measured;
use crate::thresholds::{self, Observed};
use std::time::{SystemTime, UNIX_EPOCH};

/// The run completed and every threshold passed.
pub const EXIT_OK: u8 = 0;
/// The run completed but a threshold failed.
pub const EXIT_THRESHOLD: u8 = 1;
/// The run could not be carried out.
pub const EXIT_RUN_FAILED: u8 = 2;

/// `loadtest <version>`.
pub fn tool() -> String {
    format!("loadtest {}", env!("CARGO_PKG_VERSION"))
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// What the orchestrator counted, besides the receivers' measurements.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Participants meant to connect.
    pub target: u64,
    /// Participants that counted as connected.
    pub connected: u64,
    /// Sessions that closed on their own.
    pub lost: u64,
    /// SDK drops by reason.
    pub failure_reasons: DecryptFailureReasons,
    /// E2EE epoch changes seen.
    pub epoch_switches: u64,
    /// Frames sent.
    pub frames_sent: u64,
    /// Frames that could not be sent.
    pub send_errors: u64,
}

/// Frames the SDK dropped, over all reasons (`while_joining` is a subset,
/// not a reason).
pub fn total_failures(r: &DecryptFailureReasons) -> u64 {
    r.malformed
        + r.auth_failed
        + r.replay
        + r.unknown_kid
        + r.wrong_epoch
        + r.wrong_sender
        + r.unknown_sender
        + r.incomplete
}

/// The report of a run of `settings`.
#[allow(clippy::too_many_arguments)]
pub fn assemble(
    settings: &Settings,
    started_at_unix_ms: u64,
    duration_s: f64,
    m: Measured,
    timeline: Vec<TimelinePoint>,
    counts: Counts,
    sfu: Option<SfuUsage>,
    tester: Option<TesterUsage>,
    errors: Vec<String>,
    completed: bool,
) -> Report {
    let r = counts.failure_reasons;
    let decrypt_failures = total_failures(&r);
    let decrypt_failures_after_join = decrypt_failures.saturating_sub(r.while_joining);
    Report {
        schema_version: SCHEMA_VERSION,
        tool: tool(),
        started_at_unix_ms,
        duration_s,
        url: settings.target.url.clone(),
        scenario: settings.scenario.clone(),
        config: settings.run_config(),
        participants_target: counts.target,
        participants_connected: counts.connected,
        participants_failed: counts.target.saturating_sub(counts.connected),
        thresholds: thresholds::evaluate(
            &settings.gates,
            &Observed {
                latency: Some(&m.latency_ms),
                loss_ratio: m.loss_ratio,
                connected: counts.connected,
                target: counts.target,
                decrypt_failures_after_join,
                completed,
            },
        ),
        join_ms: m.join_ms,
        latency_ms: m.latency_ms,
        loss_ratio: m.loss_ratio,
        jitter_ms: m.jitter_ms,
        bitrate_kbps: m.bitrate_kbps,
        decrypt_failures,
        epoch_switches: counts.epoch_switches,
        frames_sent: counts.frames_sent,
        frames_received: m.frames_received,
        frames_expected: m.frames_expected,
        duplicates: m.duplicates,
        reordered: m.reordered,
        sfu,
        errors,
        timeline,
        latency_cdf: m.latency_cdf,
        decrypt_failure_reasons: r,
        malformed_frames: m.malformed,
        participants_lost: counts.lost,
        send_errors: counts.send_errors,
        decrypt_failures_after_join,
        tester,
        // Gathered from the participants by the orchestrator.
        epoch_change_loss: None,
        roster_check: None,
        light_listeners: None,
        layers: m.layers,
    }
}

/// The report of a run that could not start (bad options): what was
/// asked and why nothing ran.
pub fn not_started(url: &str, scenario: &str, error: String) -> Report {
    Report {
        schema_version: SCHEMA_VERSION,
        tool: tool(),
        started_at_unix_ms: unix_ms_now(),
        url: url.to_owned(),
        scenario: scenario.to_owned(),
        thresholds: Thresholds {
            passed: false,
            failures: vec!["the run did not complete".to_owned()],
            ..Thresholds::default()
        },
        errors: vec![error],
        ..Report::default()
    }
}

/// The exit status for `report` of a run that `completed` (went to its
/// planned end) or not.
pub fn exit_code(report: &Report, completed: bool) -> u8 {
    if !completed {
        EXIT_RUN_FAILED
    } else if !report.thresholds.passed {
        EXIT_THRESHOLD
    } else {
        EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Args;
    use clap::Parser;

    fn settings(extra: &[&str]) -> Settings {
        let mut argv = vec!["loadtest", "--url", "ws://127.0.0.1:1"];
        argv.extend_from_slice(extra);
        let mut a = Args::try_parse_from(argv).expect("parses");
        a.api_key = None;
        a.api_secret = None;
        Settings::resolve(&a).expect("valid")
    }

    /// A report of a run with `extra` options, `counts` and no measurements.
    fn report(extra: &[&str], counts: &Counts, errors: Vec<String>, completed: bool) -> Report {
        assemble(
            &settings(extra),
            1,
            2.0,
            Measured::default(),
            vec![],
            counts.clone(),
            None,
            None,
            errors,
            completed,
        )
    }

    #[test]
    fn exit_status_follows_completion_then_thresholds() {
        let counts = Counts {
            target: 4,
            connected: 3,
            ..Counts::default()
        };
        let ok = report(&["--min-connected", "0.75"], &counts, vec![], true);
        assert_eq!(exit_code(&ok, true), EXIT_OK);
        assert_eq!(ok.participants_failed, 1);
        assert_eq!(ok.schema_version, SCHEMA_VERSION);
        let missing = report(&[], &counts, vec![], true);
        assert_eq!(exit_code(&missing, true), EXIT_THRESHOLD);
        let gated = report(&["--max-p99-ms", "0"], &counts, vec![], true);
        assert_eq!(exit_code(&gated, true), EXIT_THRESHOLD);
        let broken = report(&[], &counts, vec!["x".into()], false);
        assert_eq!(exit_code(&broken, false), EXIT_RUN_FAILED);
        let none = not_started("ws://x", "custom", "bad".into());
        assert_eq!(exit_code(&none, false), EXIT_RUN_FAILED);
        assert_eq!(none.errors, vec!["bad".to_owned()]);
    }

    #[test]
    fn decrypt_failures_sum_the_reasons() {
        let counts = Counts {
            failure_reasons: DecryptFailureReasons {
                auth_failed: 2,
                incomplete: 3,
                while_joining: 1,
                ..DecryptFailureReasons::default()
            },
            ..Counts::default()
        };
        let r = report(&[], &counts, vec![], true);
        assert_eq!(r.decrypt_failures, 5);
        assert_eq!(r.decrypt_failures_after_join, 4);
    }
}
