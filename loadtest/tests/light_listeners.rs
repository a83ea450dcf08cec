//! A CI-sized run of the real `loadtest` binary with light listeners
//! (`--listeners light`) against the real SFU on loopback, with churn so
//! that listeners leave and join (and epochs change) during the run. The
//! light listeners receive and decrypt every publisher's tracks, have no
//! decrypt failure after joining, are in every member's MLS group (and
//! every member in theirs), and the report carries the new figures.

mod support;

use std::time::Duration;
use support::{Shape, schema_errors, show, u};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_room_of_six_with_light_listeners_and_churn() {
    let shape = Shape {
        rooms: 1,
        per_room: 6,
        video: 1,
        audio: 2,
        duration: "8s",
    };
    let extra = ["--listeners", "light", "--churn-per-min", "40"];
    let (out, took, reports) = support::run(shape, &extra, Duration::from_secs(50)).await;
    let log = show(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("lost around epoch changes"), "{log}");
    assert!(stdout.contains("light listeners"), "{log}");

    let r = reports.read_json();
    println!(
        "light {}, rosters {}, epoch changes {}, join {}, failures {}, took {took:?}",
        r["light_listeners"],
        r["roster_check"],
        r["epoch_change_loss"],
        r["join_ms"],
        r["decrypt_failure_reasons"]
    );
    let errors = schema_errors(&r);
    assert!(
        errors.is_empty(),
        "report does not match the schema: {errors:#?}\n{r:#}"
    );
    assert_eq!(r["config"]["listeners"], "light", "{log}");
    let target = u(&r, "participants_target");
    assert!(target >= 6, "{log}");
    assert_eq!(u(&r, "participants_connected"), target, "{log}");
    assert_eq!(r["errors"].as_array().map(Vec::len), Some(0), "{log}");
    assert_eq!(u(&r, "decrypt_failures_after_join"), 0, "{log}");

    // Every light listener decrypted frames of every publisher's track.
    let light = &r["light_listeners"];
    assert_eq!(u(light, "participants"), target - 2, "{log}");
    assert_eq!(u(light, "connected"), u(light, "participants"), "{log}");
    assert_eq!(u(light, "publisher_tracks"), 3);
    assert_eq!(u(light, "tracks_received_min"), 3, "{log}");
    assert!(u(light, "frames_received") > 0, "{log}");
    assert_eq!(u(light, "decrypt_failures_after_join"), 0, "{log}");

    // Light and full members are all in each other's MLS groups.
    let rosters = &r["roster_check"];
    assert_eq!(u(rosters, "members"), 6, "{log}");
    assert_eq!(u(rosters, "missing"), 0, "{log}");
    assert_eq!(u(rosters, "mismatches"), 0, "{log}");

    // The new figures: join to first decrypted frame for everyone who
    // connected, and the loss around epoch changes.
    assert_eq!(u(&r["join_ms"], "count"), target, "{log}");
    let epoch = &r["epoch_change_loss"];
    assert!(
        u(epoch, "frames_lost") <= u(epoch, "frames_expected"),
        "{r:#}"
    );
    assert_eq!(u(epoch, "changes"), u(&epoch["lost_per_change"], "count"));
    let html = std::fs::read_to_string(reports.html()).expect("HTML report written");
    assert!(html.contains("Frames lost around epoch changes"));
    assert!(html.contains("Light listeners connected"));
}
