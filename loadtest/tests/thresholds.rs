//! An impossible threshold fails the run on purpose
//! (exit 1, the failed gate named), and the reports are still written.

mod support;

use std::time::Duration;
use support::{Reports, Shape, show};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_p99_exits_one_and_still_reports() {
    let shape = Shape {
        rooms: 1,
        per_room: 3,
        video: 0,
        audio: 1,
        duration: "3s",
    };
    let extra = ["--max-p99-ms", "0", "--max-loss", "1"];
    let (out, _, reports) = support::run(shape, &extra, Duration::from_secs(40)).await;
    let log = show(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("FAILED") && stdout.contains("--max-p99-ms"),
        "{log}"
    );
    let r = reports.read_json();
    let t = &r["thresholds"];
    assert_eq!(t["passed"], false, "{r:#}");
    assert_eq!(t["max_p99_ms"], 0.0);
    let failures = t["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "only the p99 gate fails: {failures:?}");
    assert!(
        failures[0]
            .as_str()
            .is_some_and(|s| s.contains("--max-p99-ms")),
        "{failures:?}"
    );
    assert!(r["errors"].as_array().is_some_and(Vec::is_empty), "{r:#}");
    assert!(std::fs::metadata(reports.html()).is_ok_and(|m| m.len() > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_arguments_exit_two_with_a_report() {
    let reports = Reports::new();
    // Not loopback, and no credentials: refused before anything runs.
    let child = support::spawn("ws://sfu.invalid:7880", &reports, &["--duration", "1s"]);
    let (out, took) = testkit::wait::child(child, Duration::from_secs(20)).await;
    let log = show(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(took < Duration::from_secs(10), "{log}");
    let r = reports.read_json();
    let errors = r["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().is_some_and(|s| s.contains("--api-key"))),
        "{r:#}"
    );
    assert!(support::schema_errors(&r).is_empty(), "{r:#}");
}
