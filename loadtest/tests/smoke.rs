//! A CI-sized run of the real `loadtest` binary
//! against the real SFU on loopback. Every participant connects, the
//! frames received match what the subscriptions imply within the loss
//! allowance, nothing fails to decrypt, and the JSON report validates
//! against the documented schema.

mod support;

use std::time::Duration;
use support::{Shape, f, schema_errors, show, u};

/// Lost frames tolerated on loopback (a frame in flight across an epoch
/// switch, a packet dropped by a busy 2-core box).
const LOSS_ALLOWANCE: f64 = 0.03;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rooms_of_five_for_ten_seconds() {
    let shape = Shape {
        rooms: 2,
        per_room: 5,
        video: 1,
        audio: 2,
        duration: "10s",
    };
    // Full participants throughout: the SDK as an app runs it (the light
    // listeners have their own test).
    let (out, took, reports) =
        support::run(shape, &["--listeners", "full"], Duration::from_secs(50)).await;
    let log = show(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("latency ms p50/p95/p99/max"), "{log}");

    let r = reports.read_json();
    println!(
        "connected {} of {}, frames {} of {} expected, latency {}, join {}, decrypt failures {} ({} while joining), took {took:?}",
        r["participants_connected"],
        r["participants_target"],
        r["frames_received"],
        r["frames_expected"],
        r["latency_ms"],
        r["join_ms"],
        r["decrypt_failures"],
        r["decrypt_failure_reasons"]["while_joining"]
    );
    let errors = schema_errors(&r);
    assert!(
        errors.is_empty(),
        "report does not match the schema: {errors:#?}\n{r:#}"
    );
    assert_eq!(u(&r, "participants_target"), 10, "{log}");
    assert_eq!(u(&r, "participants_connected"), 10, "{log}");
    assert_eq!(u(&r, "participants_failed"), 0, "{log}");
    assert_eq!(
        u(&r, "decrypt_failures"),
        0,
        "{} of them while joining\n{log}",
        r["decrypt_failure_reasons"]["while_joining"]
    );
    assert_eq!(r["errors"].as_array().map(Vec::len), Some(0), "{log}");
    let expected = u(&r, "frames_expected");
    let received = u(&r, "frames_received");
    // Each room: 1 video (30 fps) and 2 audio (50 pps) publishers, 5
    // members; every member gets every track but its own.
    let per_second_per_room = 4 * 30 + 2 * 4 * 50;
    assert!(
        expected as f64 >= 0.7 * 2.0 * 10.0 * f64::from(per_second_per_room),
        "expected {expected} frames: far fewer than the subscriptions imply\n{log}"
    );
    assert!(
        received as f64 >= (1.0 - LOSS_ALLOWANCE) * expected as f64,
        "received {received} of {expected} expected frames\n{log}"
    );
    assert!(f(&r, "loss_ratio") <= LOSS_ALLOWANCE, "{log}");
    let latency = &r["latency_ms"];
    assert!(f(latency, "p50") > 0.0, "{log}");
    assert!(f(latency, "p99") >= f(latency, "p50"));
    assert_eq!(u(latency, "count"), received);
    assert_eq!(u(&r["join_ms"], "count"), 10);
    assert!(u(&r, "frames_sent") > 0);
    assert!(
        u(&r, "epoch_switches") >= 10,
        "every member sees at least its own first epoch"
    );
    assert!(f(&r["bitrate_kbps"], "mean") > 0.0);
    assert!(!r["timeline"].as_array().expect("timeline").is_empty());
    assert!(!r["latency_cdf"].as_array().expect("cdf").is_empty());
    // The SFU's /metrics is on the signaling port: CPU and memory known.
    assert!(
        r["sfu"]["peak_rss_bytes"].as_u64().is_some_and(|b| b > 0),
        "{r:#}"
    );
    assert!(r["sfu"]["cpu_seconds"].as_f64().is_some(), "{r:#}");
    // The tester measured itself.
    let tester = &r["tester"];
    assert!(f(tester, "cpu_seconds") > 0.0, "{r:#}");
    assert!(u(tester, "host_cores") >= 1, "{r:#}");
    assert!(u(&tester["runtime_lag_ms"], "count") > 0, "{r:#}");
    assert_eq!(u(&r, "decrypt_failures_after_join"), 0, "{log}");
    let html = std::fs::read_to_string(reports.html()).expect("HTML report written");
    assert!(html.contains("<html") || html.contains("<!doctype") || html.contains("<!DOCTYPE"));
    assert!(took < Duration::from_secs(40), "took {took:?}");
}
