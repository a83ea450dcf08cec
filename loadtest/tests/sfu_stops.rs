//! The SFU stops mid-run. The load tester notices,
//! says why, still writes its reports, exits 2, and neither hangs nor
//! panics.

mod support;

use std::time::Duration;
use support::{Reports, Shape, show};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_shutdown_mid_run_exits_two_with_reports() {
    let server = support::server().await;
    let reports = Reports::new();
    let shape = Shape {
        rooms: 2,
        per_room: 3,
        video: 1,
        audio: 1,
        duration: "15s",
    };
    let child = support::spawn_shaped(&support::url(&server), &reports, &shape, &[]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), server.join()).await;

    // The run was planned for 15 s; stopping early must be well within it
    // plus the tool's own hard margin.
    let (out, took) = testkit::wait::child(child, Duration::from_secs(45)).await;
    let log = show(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{log}");
    assert!(stderr.contains("stopping early"), "{log}");
    let r = reports.read_json();
    let errors = r["errors"].as_array().expect("errors");
    assert!(!errors.is_empty(), "{r:#}");
    assert_eq!(r["thresholds"]["passed"], false);
    assert!(support::schema_errors(&r).is_empty(), "{r:#}");
    assert!(std::fs::metadata(reports.html()).is_ok_and(|m| m.len() > 0));
    println!("stopped after {took:?}; errors: {errors:?}");
}
