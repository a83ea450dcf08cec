//! Shared by the tests that run the real `loadtest` binary against the
//! real SFU in this process, on loopback.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The SFU, in this process, on ephemeral loopback ports; it stops
/// within 2 s when told to.
pub async fn server() -> sfu::RunningServer {
    testkit::server::sfu_with(|c| c.limits.shutdown_timeout = std::time::Duration::from_secs(2))
        .await
}

/// Its signaling URL, without the `/rtc` path (the tool adds it).
pub fn url(s: &sfu::RunningServer) -> String {
    format!("ws://{}", s.http_addr())
}

/// A run's size: rooms, members per room, video and audio publishers per
/// room, and how long it lasts; everyone joins at once (100 a second).
pub struct Shape {
    pub rooms: u32,
    pub per_room: u32,
    pub video: u32,
    pub audio: u32,
    pub duration: &'static str,
}

impl Shape {
    fn args(&self) -> Vec<String> {
        [
            ("--rooms", self.rooms.to_string()),
            ("--participants-per-room", self.per_room.to_string()),
            ("--video-publishers", self.video.to_string()),
            ("--audio-publishers", self.audio.to_string()),
            ("--duration", self.duration.to_string()),
            ("--ramp-per-sec", "100".to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_string(), value])
        .collect()
    }
}

/// Runs the tool against a fresh in-process SFU with `shape` and `extra`
/// flags; fails if it runs longer than `limit`. Returns its output, how
/// long it ran, and its reports.
pub async fn run(shape: Shape, extra: &[&str], limit: Duration) -> (Output, Duration, Reports) {
    let server = server().await;
    let reports = Reports::new();
    let child = spawn_shaped(&url(&server), &reports, &shape, extra);
    let (out, took) = testkit::wait::child(child, limit).await;
    (out, took, reports)
}

/// Starts the tool against `url` with `shape` and `extra` flags.
pub fn spawn_shaped(url: &str, reports: &Reports, shape: &Shape, extra: &[&str]) -> Child {
    let mut args = shape.args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn(url, reports, &args)
}

/// Where a run's reports go.
pub struct Reports {
    pub dir: tempfile::TempDir,
}

impl Reports {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn json(&self) -> PathBuf {
        self.dir.path().join("report.json")
    }

    pub fn html(&self) -> PathBuf {
        self.dir.path().join("report.html")
    }

    /// The JSON report, parsed.
    pub fn read_json(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.json()).expect("JSON report written");
        serde_json::from_str(&text).expect("JSON report parses")
    }
}

/// Starts the real binary with `args` plus `--no-progress` and the report
/// paths.
pub fn spawn(url: &str, reports: &Reports, args: &[&str]) -> Child {
    let json = reports.json();
    let html = reports.html();
    let mut all: Vec<&str> = vec!["--url", url, "--no-progress"];
    all.extend_from_slice(args);
    Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(&all)
        .arg("--report-json")
        .arg(&json)
        .arg("--report-html")
        .arg(&html)
        // Credentials from the environment must not change the run.
        .env_remove("SFU_API_KEY")
        .env_remove("SFU_API_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadtest")
}

pub use testkit::wait::output_text as show;

/// Validates `report` against `docs/loadtest.schema.json`; returns the
/// errors.
pub fn schema_errors(report: &serde_json::Value) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/loadtest.schema.json");
    let text = std::fs::read_to_string(&path).expect("schema exists");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("schema parses");
    let validator = jsonschema::draft202012::new(&schema).expect("schema is valid draft 2020-12");
    validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

pub fn u(v: &serde_json::Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not an integer: {}", v[key]))
}

pub fn f(v: &serde_json::Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {}", v[key]))
}
