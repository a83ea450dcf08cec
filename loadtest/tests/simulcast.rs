//! A CI-sized run of the real `loadtest` binary with simulcast publishers
//! against the real SFU on loopback, with per-subscriber bandwidth
//! estimation on and half the light listeners behind an emulated 250 kbit/s
//! downlink. The report splits the layers received by limited and full
//! downlinks: the limited ones spend most of their time below the top
//! encoding, the full ones reach it, and nobody fails to decrypt.

mod support;

use std::time::Duration;
use support::{Reports, Shape, f, schema_errors, show, u};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limited_listeners_get_lower_encodings_and_the_report_says_so() {
    let server = testkit::server::sfu_with(|c| {
        c.limits.shutdown_timeout = Duration::from_secs(2);
        c.media.bandwidth_estimation_kbps = 300;
    })
    .await;
    let shape = Shape {
        rooms: 1,
        per_room: 6,
        video: 1,
        audio: 1,
        duration: "12s",
    };
    let extra = [
        "--listeners",
        "light",
        "--simulcast",
        "--video-kbps",
        "1200",
        "--limit-share",
        "0.5",
        "--limit-kbps",
        "250",
    ];
    let reports = Reports::new();
    let child = support::spawn_shaped(&support::url(&server), &reports, &shape, &extra);
    let (out, took) = testkit::wait::child(child, Duration::from_secs(60)).await;
    let log = show(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let r = reports.read_json();
    println!("layers {}, took {took:?}", r["layers"]);
    let errors = schema_errors(&r);
    assert!(errors.is_empty(), "{errors:#?}\n{r:#}");
    assert_eq!(r["config"]["simulcast"], true, "{log}");
    assert_eq!(u(&r, "decrypt_failures_after_join"), 0, "{log}");

    let (full, limited) = (&r["layers"]["unlimited"], &r["layers"]["limited"]);
    // 5 light listeners besides the publisher; half of them, rounded up,
    // limited.
    assert!(u(limited, "receivers") >= 1, "{log}");
    assert!(u(full, "receivers") >= 2, "{log}");
    let share = |g: &serde_json::Value, layer: usize| g["time_share"][layer].as_f64().unwrap();
    // 1.2 Mbit/s does not go through 250 kbit/s: mostly the lowest two
    // encodings (75 and 300 kbit/s).
    assert!(share(limited, 2) < 0.5, "{}", r["layers"]);
    assert!(
        share(limited, 0) + share(limited, 1) > 0.5,
        "{}",
        r["layers"]
    );
    // The full downlinks climb (to the top within seconds; any climb at
    // all is what can be asserted without depending on the host's speed).
    assert!(share(full, 1) + share(full, 2) > 0.0, "{}", r["layers"]);
    // The limited ones keep a picture: their lowest encoding fits, and a
    // new subscription's estimate no longer sinks below it for good (it
    // did, and they were frozen for three quarters of such a run).
    assert!(f(limited, "freeze_share") < 0.5, "{}", r["layers"]);
}
