//! The HTML report is one self-contained, well-formed page that escapes
//! everything it takes from the report and survives empty or broken data.
//!
//! Set `LOADTEST_WRITE_EXAMPLE=1` to also write the realistic example to
//! `target/loadtest-example.html` for a look in a browser.

use loadtest::cli::Listeners;
use loadtest::report::html::render;
use loadtest::report::{
    Bitrate, CountDistribution, DecryptFailureReasons, EpochChangeLoss, LayerFigures, LayerGroup,
    ListenerFigures, Percentiles, Report, RosterCheck, RunConfig, SfuUsage, TesterUsage,
    Thresholds, TimelinePoint,
};

const XSS: &str = "<script>alert(1)</script>";
const XSS_ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";
const URL: &str = "ws://staging.example:8443/ws?room=a&token=<x>";

fn config() -> RunConfig {
    RunConfig {
        rooms: 20,
        participants_per_room: 10,
        video_publishers: 2,
        audio_publishers: 4,
        video_kbps: 800,
        video_fps: 30,
        keyframe_interval_s: 2.0,
        audio_pps: 50,
        duration_s: 30.0,
        ramp_per_s: 20.0,
        churn_per_min: 6.0,
        seed: 42,
        listeners: Listeners::Light,
        simulcast: true,
        limit_share: 1.0 / 3.0,
        limit_kbps: 500,
    }
}

/// A 30-second run of 200 participants with a 100-point latency CDF.
fn realistic() -> Report {
    let timeline = (0..30u64)
        .map(|t| {
            let connected = (t * 20).min(200);
            let wave = ((t as f64) / 3.0).sin();
            TimelinePoint {
                t_s: t as f64,
                connected,
                joins: connected + t / 10,
                bitrate_kbps: connected as f64 * 1_650.0 * (1.0 + 0.05 * wave),
                latency_p50_ms: 18.0 + 3.0 * wave,
                latency_p99_ms: 55.0 + 20.0 * wave.abs(),
                loss_ratio: 0.002 * (1.0 + wave),
                layer_frames: [connected * 10, 0, connected * 20, 0],
            }
        })
        .collect();
    let latency_cdf = (1..=100)
        .map(|i| {
            let f = i as f64 / 100.0;
            // Exponential-ish tail above a 10 ms floor.
            [10.0 - 15.0 * (1.0 - f + 1e-3).ln(), f]
        })
        .collect();
    Report {
        schema_version: 1,
        tool: "loadtest 0.1.0".to_owned(),
        started_at_unix_ms: 1_700_000_000_123,
        duration_s: 30.0,
        url: URL.to_owned(),
        scenario: format!("small-rooms {XSS}"),
        config: config(),
        participants_target: 206,
        participants_connected: 200,
        participants_failed: 6,
        join_ms: Percentiles {
            count: 200,
            p50: 412.0,
            p95: 780.5,
            p99: 1_203.0,
            max: 1_810.0,
        },
        latency_ms: Percentiles {
            count: 1_234_567,
            p50: 18.2,
            p95: 41.0,
            p99: 64.3,
            max: 210.9,
        },
        loss_ratio: 0.0021,
        jitter_ms: 2.35,
        bitrate_kbps: Bitrate {
            mean: 1_640.2,
            min: 1_210.0,
            max: 1_702.4,
        },
        decrypt_failures: 3,
        epoch_switches: 412,
        frames_sent: 360_000,
        frames_expected: 3_240_000,
        frames_received: 3_233_196,
        duplicates: 12,
        reordered: 85,
        sfu: Some(SfuUsage {
            cpu_seconds: Some(41.7),
            cpu_cores: Some(1.39),
            peak_rss_bytes: Some(187 * 1024 * 1024),
        }),
        thresholds: Thresholds {
            max_p99_ms: Some(50.0),
            max_loss: Some(0.01),
            min_connected: Some(1.0),
            max_decrypt_failures: Some(0),
            passed: false,
            failures: vec![format!("p99 latency 64.3 ms > 50.0 ms {XSS}")],
        },
        errors: vec![XSS.to_owned(), "6 participants never connected".to_owned()],
        timeline,
        latency_cdf,
        decrypt_failure_reasons: DecryptFailureReasons {
            auth_failed: 1,
            unknown_kid: 2,
            ..DecryptFailureReasons::default()
        },
        malformed_frames: 0,
        participants_lost: 1,
        send_errors: 4,
        decrypt_failures_after_join: 2,
        tester: Some(TesterUsage {
            cpu_seconds: Some(55.5),
            cpu_cores: Some(1.61),
            host_cores: 2,
            host_busy_cores: Some(1.97),
            runtime_lag_ms: Percentiles {
                count: 1500,
                p50: 0.4,
                p95: 9.0,
                p99: 31.5,
                max: 120.0,
            },
            overloaded: true,
            overload_reasons: vec!["the host was busy 1.97 of 2 cores".to_owned()],
        }),
        epoch_change_loss: Some(EpochChangeLoss {
            changes: 4321,
            frames_expected: 987_654,
            frames_lost: 77,
            lost_per_change: CountDistribution {
                count: 4321,
                p50: 0,
                p95: 3,
                max: 41,
            },
            failures: DecryptFailureReasons {
                wrong_epoch: 12,
                ..DecryptFailureReasons::default()
            },
            undelivered: 65,
        }),
        roster_check: Some(RosterCheck {
            members: 199,
            missing: 0,
            mismatches: 0,
        }),
        light_listeners: Some(ListenerFigures {
            participants: 180,
            connected: 180,
            frames_received: 1_111_222,
            decrypt_failures_after_join: 0,
            publisher_tracks: 6,
            tracks_received_min: 6,
        }),
        layers: Some(LayerFigures {
            unlimited: LayerGroup {
                receivers: 120,
                time_share: [0.02, 0.0, 0.98, 0.0],
                switches: 130,
                switches_per_minute: 0.4,
                freezes: 0,
                freeze_share: 0.0,
                longest_freeze_ms: 0.0,
            },
            limited: LayerGroup {
                receivers: 60,
                time_share: [0.91, 0.06, 0.03, 0.0],
                switches: 240,
                switches_per_minute: 2.1,
                freezes: 7,
                freeze_share: 0.004,
                longest_freeze_ms: 1_250.0,
            },
        }),
    }
}

/// All zeros, empty vectors, no SFU metrics.
fn empty() -> Report {
    Report::default()
}

/// Writes `html` to `loadtest-example.html` in the target directory: the
/// workspace's `target/` unless `CARGO_TARGET_DIR` moves it.
fn write_example(html: &str) {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    std::fs::create_dir_all(&dir).expect("create target dir");
    let path = dir.join("loadtest-example.html");
    std::fs::write(&path, html).expect("write example");
    eprintln!("wrote {}", path.display());
}

/// The `<svg>…</svg>` fragments of a page.
fn svgs(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<svg") {
        let Some(len) = rest[start..].find("</svg>") else {
            panic!("unclosed <svg>");
        };
        let end = start + len + "</svg>".len();
        out.push(&rest[start..end]);
        rest = &rest[end..];
    }
    out
}

/// Panics unless every tag in `fragment` is closed in order (`<x/>`
/// closes itself). Enough to catch broken SVG markup; not an XML parser.
fn assert_balanced(fragment: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = fragment;
    while let Some(lt) = rest.find('<') {
        let Some(gt) = rest[lt..].find('>') else {
            panic!("unterminated tag in {fragment}");
        };
        let tag = &rest[lt + 1..lt + gt];
        rest = &rest[lt + gt + 1..];
        assert!(!tag.contains('<'), "'<' inside tag {tag:?}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name), "mismatched </{name}>");
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap_or_default();
            open.push(name);
        }
    }
    assert!(open.is_empty(), "unclosed tags {open:?}");
}

/// Panics if an SVG holds a non-number where a number belongs.
fn assert_numbers_finite(html: &str) {
    for svg in svgs(html) {
        for bad in ["NaN", "inf", "Inf"] {
            assert!(!svg.contains(bad), "{bad} in SVG: {svg}");
        }
        assert_balanced(svg);
    }
}

#[test]
fn realistic_report_is_a_self_contained_page_with_five_charts() {
    let html = render(&realistic());
    if std::env::var_os("LOADTEST_WRITE_EXAMPLE").is_some() {
        write_example(&html);
    }

    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert_eq!(html.matches("<svg").count(), 5, "five charts");
    assert_eq!(svgs(&html).len(), 5);
    for forbidden in [
        "http://",
        "https://",
        "src=",
        "<script src",
        "<link",
        "url(",
        "@import",
    ] {
        assert!(!html.contains(forbidden), "page holds {forbidden:?}");
    }
    assert!(!html.contains("<script"), "no script at all");
    // Every chart draws lines, and the two-series charts have legends.
    assert_eq!(html.matches("<polyline").count(), 7);
    assert_eq!(html.matches("class=\"legend\"").count(), 2);
    for label in [
        "latency (ms)",
        "fraction of frames",
        "bitrate (Mbit/s)",
        "participants",
        "loss (%)",
        "time (s)",
    ] {
        assert!(html.contains(label), "axis label {label:?}");
    }
    assert_numbers_finite(&html);
}

#[test]
fn realistic_report_shows_its_numbers() {
    let html = render(&realistic());
    for needle in [
        "2023-11-14 22:13:20.123 UTC",
        "30.0 s",
        "FAIL",
        "6 participants never connected",
        "1,234,567",
        "3,233,196",
        "0.210 %",
        "2.35 ms",
        "1640.2 kbit/s",
        "41.7 s",
        "1.39",
        "187.0 MiB",
        "64.3",
        "1203.0",
        "800 kbit/s",
        "1.97 of 2",
        "31.5 ms",
        "The load tester was overloaded",
        "the host was busy 1.97 of 2 cores",
        "Decrypt failures after joining",
        "Frames lost around epoch changes",
        "4,321",
        "987,654",
        "Light listeners",
        "1,111,222",
        "Missing from a member&#39;s MLS group",
        "Video layers",
        "Limited downlink",
        "91.000 %",
        "1250 ms",
    ] {
        assert!(html.contains(needle), "page lacks {needle:?}");
    }
}

#[test]
fn strings_from_the_report_are_escaped() {
    let html = render(&realistic());
    assert!(!html.contains(XSS));
    // Title, heading, failure and error.
    assert!(html.matches(XSS_ESCAPED).count() >= 4);
    assert!(html.contains("ws://staging.example:8443/ws?room=a&amp;token=&lt;x&gt;"));
    assert!(!html.contains(URL));
}

#[test]
fn passing_run_says_pass() {
    let mut report = realistic();
    report.thresholds.passed = true;
    report.thresholds.failures.clear();
    report.errors.clear();
    let html = render(&report);
    assert!(html.contains("class=\"banner pass\""));
    assert!(!html.contains("FAIL"));
}

#[test]
fn empty_report_renders_without_nan() {
    let html = render(&empty());
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(svgs(&html).len(), 5);
    assert_eq!(html.matches("no data").count(), 5);
    assert!(html.contains("1970-01-01 00:00:00.000 UTC"));
    assert!(html.contains("not reachable"));
    assert!(html.contains("class=\"banner fail\""));
    assert_numbers_finite(&html);
}

#[test]
fn single_points_zeros_and_non_finite_values_stay_valid() {
    let mut report = realistic();
    report.duration_s = f64::NAN;
    report.loss_ratio = f64::INFINITY;
    report.jitter_ms = f64::NEG_INFINITY;
    report.latency_cdf = vec![[f64::NAN, 0.5], [12.0, 1.0], [f64::INFINITY, f64::NAN]];
    report.timeline = vec![
        TimelinePoint {
            t_s: 0.0,
            ..TimelinePoint::default()
        },
        TimelinePoint {
            t_s: f64::NAN,
            latency_p50_ms: f64::INFINITY,
            latency_p99_ms: f64::MAX,
            bitrate_kbps: -f64::MAX,
            loss_ratio: f64::NAN,
            ..TimelinePoint::default()
        },
    ];
    report.sfu = Some(SfuUsage {
        cpu_seconds: Some(f64::NAN),
        cpu_cores: None,
        peak_rss_bytes: None,
    });
    let html = render(&report);
    assert_eq!(svgs(&html).len(), 5);
    // The CDF has one usable point and so draws a dot.
    assert!(html.contains("<circle"));
    assert_numbers_finite(&html);
    assert!(html.contains("n/a"));
}

#[test]
fn huge_and_tiny_values_stay_valid() {
    let mut report = realistic();
    for (i, p) in report.timeline.iter_mut().enumerate() {
        p.bitrate_kbps = f64::MAX / (i as f64 + 1.0);
        p.latency_p50_ms = f64::MIN_POSITIVE * i as f64;
        p.latency_p99_ms = 1e-300;
        p.t_s = 1e18 + i as f64;
    }
    report.started_at_unix_ms = u64::MAX;
    report.duration_s = 1e300;
    let html = render(&report);
    assert_eq!(svgs(&html).len(), 5);
    assert_numbers_finite(&html);
}
