//! Shared by the tests that run the real `loadtest` binary against the
//! real SFU in this process, on loopback.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The SFU, in this process, on ephemeral loopback ports.
pub async fn server() -> sfu::RunningServer {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut cfg = sfu::config::Config::loopback_ephemeral();
    cfg.limits.ice_timeout = Duration::from_secs(5);
    cfg.limits.shutdown_timeout = Duration::from_secs(2);
    sfu::start(cfg).await.expect("server starts")
}

/// Its signaling URL, without the `/rtc` path (the tool adds it).
pub fn url(s: &sfu::RunningServer) -> String {
    format!("ws://{}", s.http_addr())
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

/// Waits for `child` (while this runtime keeps serving the SFU), killing
/// it and failing after `limit`. Returns its output and how long it ran.
pub async fn wait(mut child: Child, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    loop {
        match child.try_wait().expect("poll child") {
            Some(_) => {
                let out = child.wait_with_output().expect("child output");
                return (out, started.elapsed());
            }
            None if started.elapsed() > limit => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("child output");
                panic!(
                    "loadtest did not exit within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Stdout and stderr, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

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
