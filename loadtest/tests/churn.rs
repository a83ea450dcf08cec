//! Churn at CI size: participants leave and join all
//! through the run, so every room's E2EE keys rotate under load, and no
//! member who stays sees a frame it cannot decrypt. The run gates itself
//! with `--max-decrypt-failures 0`; the test checks the gate held and that
//! the churn really happened. `docs/loadtest.md` has the 60 s run.

mod support;

use std::time::Duration;
use support::{Shape, f, schema_errors, show, u};

/// As in the smoke test: a frame in flight when a churn victim leaves, a
/// packet dropped by a busy 2-core box.
const LOSS_ALLOWANCE: f64 = 0.03;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_under_churn_without_decrypt_failures() {
    let shape = Shape {
        rooms: 2,
        per_room: 5,
        video: 1,
        audio: 2,
        duration: "20s",
    };
    // Full participants: the SDK's key rotation under churn (light
    // listeners churn in their own test).
    let extra = [
        "--churn-per-min",
        "40",
        "--max-decrypt-failures",
        "0",
        "--listeners",
        "full",
    ];
    let (out, took, reports) = support::run(shape, &extra, Duration::from_secs(80)).await;
    let log = show(&out);
    let r = reports.read_json();
    println!(
        "target {}, connected {}, epoch switches {}, decrypt failures {} ({} while joining), loss {}, took {took:?}",
        r["participants_target"],
        r["participants_connected"],
        r["epoch_switches"],
        r["decrypt_failures"],
        r["decrypt_failure_reasons"]["while_joining"],
        r["loss_ratio"]
    );
    assert_eq!(out.status.code(), Some(0), "{log}");
    let errors = schema_errors(&r);
    assert!(errors.is_empty(), "{errors:#?}\n{r:#}");

    // 40 a minute over the 15 s before the quiet end: about 10 leaves,
    // each followed by a join.
    let replacements = u(&r, "participants_target") - 10;
    assert!(
        replacements >= 5,
        "only {replacements} replacements: the churn did not happen\n{log}"
    );
    assert_eq!(
        u(&r, "participants_connected"),
        u(&r, "participants_target"),
        "{log}"
    );
    // Each leave and each join is a new epoch for everyone in the room
    // (a leave and a join may share one commit).
    assert!(
        u(&r, "epoch_switches") >= 10 + 4 * replacements,
        "{} epoch switches for {replacements} replacements\n{log}",
        u(&r, "epoch_switches")
    );
    assert_eq!(u(&r, "decrypt_failures_after_join"), 0, "{log}");
    assert_eq!(r["thresholds"]["max_decrypt_failures"], 0);
    assert!(f(&r, "loss_ratio") <= LOSS_ALLOWANCE, "{log}");
    assert_eq!(u(&r, "malformed_frames"), 0, "{log}");
}
