//! The plain-text summary table printed on stdout at the end.

use crate::report::{Percentiles, Report, TesterUsage};
use std::fmt::Write as _;

fn pct(p: &Percentiles) -> String {
    if p.count == 0 {
        "-".to_owned()
    } else {
        format!(
            "{:.1} / {:.1} / {:.1} / {:.1}  (n={})",
            p.p50, p.p95, p.p99, p.max, p.count
        )
    }
}

fn tester_cpu(t: &TesterUsage) -> String {
    let mut out = match (t.cpu_seconds, t.cpu_cores) {
        (Some(s), Some(c)) => format!("{s:.1} s  ({c:.2} cores)"),
        _ => "-".to_owned(),
    };
    if let Some(busy) = t.host_busy_cores {
        let _ = write!(out, ", host busy {busy:.2} of {} cores", t.host_cores);
    }
    if t.runtime_lag_ms.count > 0 {
        let _ = write!(out, ", timer lag p99 {:.1} ms", t.runtime_lag_ms.p99);
    }
    out
}

/// The summary of `report`, one aligned row per figure.
pub fn render(report: &Report) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        (
            "participants connected",
            format!(
                "{} / {}  ({} not connected, {} sessions lost)",
                report.participants_connected,
                report.participants_target,
                report.participants_failed,
                report.participants_lost
            ),
        ),
        // From connect start to the first decrypted frame.
        ("join ms p50/p95/p99/max", pct(&report.join_ms)),
        ("latency ms p50/p95/p99/max", pct(&report.latency_ms)),
        (
            "loss ratio",
            format!(
                "{:.5}  ({} of {} expected frames received)",
                report.loss_ratio, report.frames_received, report.frames_expected
            ),
        ),
        (
            "jitter ms (RFC 3550, mean)",
            format!("{:.2}", report.jitter_ms),
        ),
        (
            "payload kbit/s per subscriber",
            format!(
                "mean {:.0}, min {:.0}, max {:.0}",
                report.bitrate_kbps.mean, report.bitrate_kbps.min, report.bitrate_kbps.max
            ),
        ),
        (
            "frames sent / received",
            format!(
                "{} / {}  ({} send errors)",
                report.frames_sent, report.frames_received, report.send_errors
            ),
        ),
        (
            "duplicates / reordered",
            format!("{} / {}", report.duplicates, report.reordered),
        ),
        ("malformed frames", report.malformed_frames.to_string()),
        ("decrypt failures", {
            let r = &report.decrypt_failure_reasons;
            format!(
                "{} after joining, {} in all  ({} while joining; auth {}, replay {}, unknown kid {}, wrong epoch {}, wrong sender {}, unknown sender {}, incomplete {}, malformed {})",
                report.decrypt_failures_after_join,
                report.decrypt_failures,
                r.while_joining,
                r.auth_failed,
                r.replay,
                r.unknown_kid,
                r.wrong_epoch,
                r.wrong_sender,
                r.unknown_sender,
                r.incomplete,
                r.malformed
            )
        }),
        ("epoch switches", report.epoch_switches.to_string()),
        (
            "lost around epoch changes",
            match &report.epoch_change_loss {
                Some(e) => format!(
                    "{} of {} frames over {} changes; per change p50/p95/max {} / {} / {}  (wrong epoch {}, unknown kid {}, wrong sender {}, unknown sender {}, incomplete {}, never decrypted {})",
                    e.frames_lost,
                    e.frames_expected,
                    e.changes,
                    e.lost_per_change.p50,
                    e.lost_per_change.p95,
                    e.lost_per_change.max,
                    e.failures.wrong_epoch,
                    e.failures.unknown_kid,
                    e.failures.wrong_sender,
                    e.failures.unknown_sender,
                    e.failures.incomplete,
                    e.undelivered
                ),
                None => "- (no epoch change settled after a join)".to_owned(),
            },
        ),
    ];
    if let Some(c) = &report.roster_check {
        rows.push((
            "MLS rosters",
            format!(
                "{} members checked, {} missing from someone's group, {} mismatches reported",
                c.members, c.missing, c.mismatches
            ),
        ));
    }
    rows.push(("listeners", report.config.listeners.name().to_owned()));
    if let Some(l) = &report.light_listeners {
        rows.push((
            "light listeners",
            format!(
                "{} / {} connected, {} frames, {} decrypt failures after joining, fewest tracks decrypted {} of {}",
                l.connected,
                l.participants,
                l.frames_received,
                l.decrypt_failures_after_join,
                l.tracks_received_min,
                l.publisher_tracks
            ),
        ));
    }
    if let Some(l) = &report.layers {
        for (name, g) in [
            ("layers, full downlink", &l.unlimited),
            ("layers, limited", &l.limited),
        ] {
            if g.receivers == 0 {
                continue;
            }
            rows.push((
                name,
                format!(
                    "{} receivers, time on layers 0/1/2: {:.0}/{:.0}/{:.0} %, {} switches, {} freezes (longest {:.0} ms)",
                    g.receivers,
                    g.time_share[0] * 100.0,
                    g.time_share[1] * 100.0,
                    g.time_share[2] * 100.0,
                    g.switches,
                    g.freezes,
                    g.longest_freeze_ms
                ),
            ));
        }
    }
    let sfu = report.sfu.unwrap_or_default();
    rows.push((
        "SFU CPU",
        match (sfu.cpu_seconds, sfu.cpu_cores) {
            (Some(s), Some(c)) => format!("{s:.1} s  ({c:.2} cores)"),
            (Some(s), None) => format!("{s:.1} s"),
            _ => "- (no /metrics)".to_owned(),
        },
    ));
    rows.push((
        "SFU peak memory",
        sfu.peak_rss_bytes
            .map_or("- (no /metrics)".to_owned(), |b| {
                format!("{:.1} MiB", b as f64 / 1_048_576.0)
            }),
    ));
    if let Some(t) = &report.tester {
        rows.push(("tester CPU", tester_cpu(t)));
        if t.overloaded {
            rows.push((
                "TESTER OVERLOADED",
                format!(
                    "{}: latency and loss include the tester's own delay, so they understate what the SFU carries",
                    t.overload_reasons.join("; ")
                ),
            ));
        }
    }
    rows.push((
        "thresholds",
        if report.thresholds.passed {
            "passed".to_owned()
        } else {
            format!("FAILED: {}", report.thresholds.failures.join("; "))
        },
    ));
    for e in &report.errors {
        rows.push(("error", e.clone()));
    }
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = format!(
        "{} | {} | scenario {} | {:.1} s\n",
        report.tool, report.url, report.scenario, report.duration_s
    );
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<width$}  {v}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{SfuUsage, Thresholds};

    #[test]
    fn rows_are_aligned_and_complete() {
        let r = Report {
            tool: "loadtest 0.1.0".into(),
            participants_target: 10,
            participants_connected: 10,
            latency_ms: Percentiles {
                count: 5,
                p50: 1.0,
                p95: 2.0,
                p99: 3.0,
                max: 4.0,
            },
            sfu: Some(SfuUsage {
                cpu_seconds: Some(3.0),
                cpu_cores: Some(0.25),
                peak_rss_bytes: Some(2 * 1_048_576),
            }),
            thresholds: Thresholds {
                passed: false,
                failures: vec!["--max-p99-ms 0: p99 latency was 3.00 ms".into()],
                ..Thresholds::default()
            },
            errors: vec!["the SFU stopped answering".into()],
            tester: Some(TesterUsage {
                cpu_seconds: Some(30.0),
                cpu_cores: Some(1.5),
                host_cores: 2,
                host_busy_cores: Some(1.95),
                overloaded: true,
                overload_reasons: vec!["the host was busy 1.95 of 2 cores".into()],
                ..TesterUsage::default()
            }),
            ..Report::default()
        };
        let text = render(&r);
        for part in [
            "10 / 10",
            "1.0 / 2.0 / 3.0 / 4.0",
            "0.25 cores",
            "2.0 MiB",
            "FAILED: --max-p99-ms 0",
            "error",
            "payload kbit/s per subscriber",
            "1.50 cores), host busy 1.95 of 2 cores",
            "TESTER OVERLOADED",
        ] {
            assert!(text.contains(part), "{text}\nlacks {part:?}");
        }
        let width = "payload kbit/s per subscriber".len();
        for line in text.lines().skip(1) {
            let (key, value) = line.split_at(2 + width + 2);
            assert!(key.ends_with("  ") && !value.starts_with(' '), "{line:?}");
        }
        let join_row = text.lines().find(|l| l.contains("join ms")).expect("row");
        assert!(join_row.ends_with('-'));
    }
}
