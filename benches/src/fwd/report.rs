//! The JSON object per scenario and the table printed on stdout.
//!
//! Release checks read `scenario`, `out_pps_per_core`,
//! `baseline_out_pps_per_core`, `ratio`, `latency_us_p50` and
//! `latency_us_p99`; keep those names.

use crate::fwd::ramp::{Limit, Step};
use serde::Serialize;
use std::fmt::Write as _;

/// One scenario's results.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    /// Scenario name, e.g. `fanout-50`.
    pub scenario: String,
    /// SFU: RTP packets out per second per core of SFU process CPU time,
    /// at the highest sustainable load.
    pub out_pps_per_core: f64,
    /// Baseline forwarder: the same, per core of its thread's CPU time.
    pub baseline_out_pps_per_core: f64,
    /// `out_pps_per_core / baseline_out_pps_per_core`.
    pub ratio: f64,
    /// Added latency (publisher send to sink kernel receive) at half the
    /// SFU's highest sustainable load, median, µs.
    pub latency_us_p50: f64,
    /// The same, 99th percentile, µs.
    pub latency_us_p99: f64,
    /// The same, 90th percentile, µs.
    pub latency_us_p90: f64,
    /// The same, maximum, µs.
    pub latency_us_max: f64,
    /// Latency samples.
    pub latency_samples: u64,
    /// Output rate during the latency window, packets/s.
    pub latency_out_pps: f64,
    /// Where the latency clock stops: `kernel_rx_timestamp` or `user`.
    pub latency_source: String,
    /// Participants (all rooms).
    pub participants: usize,
    /// Rooms.
    pub rooms: usize,
    /// Publishers (one video track each).
    pub publishers: usize,
    /// Forwarded copies per input packet, summed over publishers.
    pub subscriptions: usize,
    /// RTP payload bytes per packet.
    pub payload_bytes: usize,
    /// Whether publishers sent the dependency descriptor.
    pub dependency_descriptor: bool,
    /// Offered input rate at the highest sustainable load, packets/s.
    pub offered_in_pps: f64,
    /// Input rate achieved, packets/s.
    pub in_pps: f64,
    /// Output rate received by the sinks, packets/s.
    pub out_pps: f64,
    /// Share of expected copies lost in the throughput window.
    pub loss: f64,
    /// Throughput window length, s.
    pub window_s: f64,
    /// SFU process CPU seconds in the throughput window.
    pub sfu_cpu_s: f64,
    /// SFU process busy share of one core.
    pub sfu_cpu_util: f64,
    /// SFU shard (media) threads' CPU seconds in the window.
    pub shard_cpu_s: f64,
    /// Shard threads' busy share of one core.
    pub shard_cpu_util: f64,
    /// Output per core of shard-thread CPU time only.
    pub out_pps_per_shard_core: f64,
    /// Why the ramp stopped.
    pub limited_by: Limit,
    /// The ramp's steps.
    pub ramp: Vec<Step>,
    /// Generator thread busy share of one core in the throughput window.
    pub generator_cpu_util: f64,
    /// UDP datagrams the SFU reported sent in the window (its /metrics,
    /// which it refreshes every 250 ms: a cross-check, not a measurement).
    pub sfu_datagrams_out: Option<f64>,
    /// RTP packets the SFU reported forwarded in the window.
    pub sfu_rtp_forwarded: Option<f64>,
    /// RTP packets the SFU reported received from publishers in the window.
    pub sfu_rtp_in: Option<f64>,
    /// SFU resident memory with no participant, bytes.
    pub rss_idle_bytes: Option<u64>,
    /// SFU resident memory after the throughput window, bytes.
    pub rss_bytes: Option<u64>,
    /// `(rss_bytes - rss_idle_bytes) / participants`.
    pub rss_bytes_per_participant: Option<f64>,
    /// Idle window length, s (0: not measured). Publishers are silent in
    /// it; every peer stays connected (ICE consent, RTCP).
    pub idle_window_s: f64,
    /// SFU process busy share of one core in the idle window.
    pub idle_cpu_util: f64,
    /// SFU CPU per connected silent participant, µs per second.
    pub idle_cpu_us_per_participant_s: f64,
    /// `(RSS in the idle window - rss_idle_bytes) / participants`: what a
    /// connected participant costs before media flows at load (setup
    /// media, 30 packets/s per publisher, is what its stores hold).
    pub idle_rss_bytes_per_participant: Option<f64>,
    /// Memory per participant counted without the executable's code
    /// pages: `(RssAnon after the throughput window - RssAnon with no
    /// participant) / participants`. `VmRSS` also counts the SFU binary's
    /// code as it is first run (DTLS, SRTP, forwarding: about 10 MB once
    /// the first peers connect), which `rss_bytes_per_participant` charges
    /// to the participants.
    pub anon_bytes_per_participant: Option<f64>,
    /// The same in the idle window.
    pub idle_anon_bytes_per_participant: Option<f64>,
    /// The SRTP profile the DTLS handshake chose, when visible.
    pub srtp_profile: String,
    /// Bytes after the payload of a decrypted packet (the auth tag).
    pub srtp_overhead_bytes: u64,
    /// Packets the probe subscriber decrypted.
    pub probe_packets: u64,
    /// Whether the probe saw every RTP timestamp equal to the payload's
    /// send stamp (the header latency method holds).
    pub ts_passthrough_verified: bool,
    /// The SFU's RTX cache size, if set by flag.
    pub rtx_cache_packets: Option<usize>,
    /// Baseline: output rate at its highest sustainable load, packets/s.
    pub baseline_out_pps: f64,
    /// Baseline: its thread's busy share of one core there.
    pub baseline_cpu_util: f64,
    /// Baseline: loss in its throughput window(s).
    pub baseline_loss: f64,
    /// Baseline: why its ramp stopped.
    pub baseline_limited_by: Limit,
    /// Baseline: per-core figure of each window (before and after the SFU).
    pub baseline_windows_out_pps_per_core: Vec<f64>,
    /// Baseline: latency at half its highest load, median, µs.
    pub baseline_latency_us_p50: f64,
    /// Baseline: latency 99th percentile, µs.
    pub baseline_latency_us_p99: f64,
    /// The baseline's AEAD (`null` if the baseline was skipped).
    pub baseline_cipher: Option<crate::fwd::baseline::Cipher>,
    /// Cores used, or `null` if nothing was pinned.
    pub pinning: Option<crate::fwd::cpu::Pinning>,
    /// Busy share of the SFU's core in the throughput window, all
    /// processes: above `sfu_cpu_util`, other processes shared the core.
    pub forwarder_core_busy: Option<f64>,
    /// Busy share of the generator's core, all processes.
    pub generator_core_busy: Option<f64>,
    /// Datagrams the host dropped for full socket buffers in the window
    /// (host-wide; the SFU's input socket and the sinks).
    pub udp_rcvbuf_errors: Option<u64>,
    /// Packets the generator could not send on time in the throughput
    /// window (non-zero: the generator, not the SFU, limited the load).
    pub generator_behind: u64,
}

fn fmt_k(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// The table printed after a run.
pub fn table(reports: &[ScenarioReport]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<12} {:>5} {:>9} {:>9} {:>7} {:>9} {:>10} {:>6} {:>8} {:>8} {:>7} {:>9} {:>13}",
        "scenario",
        "parts",
        "out pps",
        "pps/core",
        "sfu cpu",
        "base/core",
        "ratio",
        "loss%",
        "p50 us",
        "p99 us",
        "base p50",
        "anon/part",
        "limited by"
    );
    for r in reports {
        let _ = writeln!(
            s,
            "{:<12} {:>5} {:>9} {:>9} {:>7.2} {:>9} {:>10.3} {:>6.2} {:>8.0} {:>8.0} {:>7.0} {:>9} {:>13}",
            r.scenario,
            r.participants,
            fmt_k(r.out_pps),
            fmt_k(r.out_pps_per_core),
            r.sfu_cpu_util,
            fmt_k(r.baseline_out_pps_per_core),
            r.ratio,
            r.loss * 100.0,
            r.latency_us_p50,
            r.latency_us_p99,
            r.baseline_latency_us_p50,
            r.anon_bytes_per_participant
                .map_or_else(|| "-".into(), |b| format!("{:.0}k", b / 1024.0)),
            format!("{:?}", r.limited_by),
        );
    }
    for r in reports {
        let other_fwd = r.forwarder_core_busy.map(|b| b - r.sfu_cpu_util);
        let other_gen = r.generator_core_busy.map(|b| b - r.generator_cpu_util);
        if other_fwd.is_some_and(|x| x > 0.1) || other_gen.is_some_and(|x| x > 0.3) {
            let _ = writeln!(
                s,
                "note: {}: other work used about {:.0}% of the SFU's core and the generator's core was \
                 {:.0}% busy (generator thread {:.0}%); absolute figures are noisy, ratios less so",
                r.scenario,
                other_fwd.unwrap_or(0.0) * 100.0,
                r.generator_core_busy.unwrap_or(0.0) * 100.0,
                r.generator_cpu_util * 100.0,
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_short() {
        assert_eq!(fmt_k(950.0), "950");
        assert_eq!(fmt_k(12_345.0), "12.3k");
        assert_eq!(fmt_k(2_500_000.0), "2.50M");
    }
}
