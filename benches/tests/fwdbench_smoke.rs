//! `fwdbench` end to end on a tiny scenario, so the harness cannot rot
//! silently: the real SFU process, real DTLS-SRTP peers through the real
//! signaling, the baseline forwarder, and the JSON the release checks read.
//! Loopback only; a fixed low rate (no ramp) and 1 s windows bound both
//! the time (the run is killed after [`LIMIT`]) and the packet count.

use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn fanout3_runs_end_to_end_and_writes_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("fwd.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fwdbench"))
        .args([
            "--scenario",
            "fanout-3",
            "--rate",
            "1500",
            "--window",
            "1",
            "--warmup",
            "0.5",
            "--setup-timeout",
            "30",
            "--out",
        ])
        .arg(&out)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("fwdbench starts");
    let end = Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fwdbench did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "fwdbench failed: {status}");

    let text = std::fs::read_to_string(&out).expect("report written");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let arr = v.as_array().expect("an array");
    assert_eq!(arr.len(), 1, "{text}");
    let r = &arr[0];
    assert_eq!(r["scenario"], "fanout-3");
    let num = |k: &str| {
        r[k].as_f64()
            .unwrap_or_else(|| panic!("{k} is not a number in {text}"))
    };
    for k in [
        "out_pps_per_core",
        "baseline_out_pps_per_core",
        "ratio",
        "latency_us_p50",
        "latency_us_p99",
        "out_pps",
        "baseline_out_pps",
        "sfu_cpu_s",
    ] {
        assert!(num(k) > 0.0, "{k} = {} in {text}", num(k));
    }
    assert!(num("latency_us_p99") >= num("latency_us_p50"));
    // Packets flowed through the SFU to every subscriber: about 1500/s
    // were offered; a loaded test machine may lose some, not most.
    assert!(num("out_pps") > 500.0, "{text}");
    assert!(num("loss") < 0.5, "{text}");
    assert_eq!(r["participants"], 4);
    assert_eq!(r["subscriptions"], 3);
    assert_eq!(r["limited_by"], "fixed");
    // The probe decrypted packets and the header latency method holds.
    assert!(num("probe_packets") > 0.0, "{text}");
    assert_eq!(r["ts_passthrough_verified"], true, "{text}");
    assert_eq!(num("srtp_overhead_bytes"), 16.0, "an AEAD tag: {text}");
}
