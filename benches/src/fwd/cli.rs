//! `fwdbench`'s flags.

use std::path::PathBuf;
use std::time::Duration;

/// Forwarding benchmark: the real SFU against a minimal batched forwarder,
/// in the same run, over loopback UDP.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "fwdbench")]
pub struct Options {
    /// Write the JSON array of results here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Scenario to run (repeatable): fanout-N, meeting-N or rooms-RxM.
    /// Default: fanout-50, meeting-10 and rooms-20x5.
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,

    /// Seconds of each steady measurement window (throughput, latency,
    /// baseline).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub window: f64,

    /// Seconds of each ramp step's measurement.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub step: f64,

    /// Seconds of traffic after setup before anything is measured.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub warmup: f64,

    /// Short windows for a quick look: window 3 s, step 1 s, warm-up 1 s.
    #[arg(long)]
    pub quick: bool,

    /// Skip the ramp: offer this many output packets/s (copies, over all
    /// subscribers) to both forwarders.
    #[arg(long, value_name = "PPS")]
    pub rate: Option<f64>,

    /// Output packets/s of the first ramp step.
    #[arg(long, value_name = "PPS", default_value_t = 5000.0)]
    pub start_rate: f64,

    /// Loss beyond which a load is not sustainable.
    #[arg(long, default_value_t = 0.01)]
    pub max_loss: f64,

    /// Hot-thread share of one core at which a forwarder counts as
    /// saturated.
    #[arg(long, default_value_t = 0.95)]
    pub max_cpu: f64,

    /// Most ramp steps.
    #[arg(long, default_value_t = 14)]
    pub max_steps: usize,

    /// RTP payload bytes per packet.
    #[arg(long, default_value_t = 1200)]
    pub payload: usize,

    /// Publishers send no dependency descriptor (the SFU then forwards
    /// without keyframe gating).
    #[arg(long)]
    pub no_dd: bool,

    /// Milliseconds between keyframes (the SFU starts subscribers at one).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub keyframe_ms: u64,

    /// The SFU's rtx_cache_packets (default: the SFU's own default).
    #[arg(long)]
    pub rtx_cache_packets: Option<usize>,

    /// The SFU's media shards (default: the SFU's own default).
    #[arg(long)]
    pub sfu_shards: Option<usize>,

    /// Do not pin the forwarders and the generator to separate cores.
    #[arg(long)]
    pub no_pin: bool,

    /// The baseline forwarder's AEAD, AES-128-GCM by default;
    /// str0m peers negotiate AES-256-GCM (the report says which).
    #[arg(long, value_enum, default_value_t = crate::fwd::baseline::Cipher::Aes128Gcm)]
    pub baseline_cipher: crate::fwd::baseline::Cipher,

    /// Skip the baseline forwarder.
    #[arg(long)]
    pub skip_baseline: bool,

    /// Seconds to wait for every peer to connect and receive media.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub setup_timeout: f64,

    /// Seconds of the idle window: after setup, publishers stop and the
    /// SFU's CPU and memory with every peer connected but silent are
    /// measured (0 skips it).
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub idle_window: f64,

    /// Log filter of the SFU process.
    #[arg(long, default_value = "warn")]
    pub sfu_log: String,
}

impl Options {
    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s.clamp(0.0, 86_400.0))
    }

    /// The steady window length.
    pub fn window(&self) -> Duration {
        Self::secs(if self.quick { 3.0 } else { self.window })
    }

    /// The ramp step length.
    pub fn step(&self) -> Duration {
        Self::secs(if self.quick { 1.0 } else { self.step })
    }

    /// The warm-up.
    pub fn warmup(&self) -> Duration {
        Self::secs(if self.quick { 1.0 } else { self.warmup })
    }

    /// The idle window (2 s with `--quick`; zero skips it).
    pub fn idle_window(&self) -> Duration {
        if self.idle_window <= 0.0 {
            Duration::ZERO
        } else {
            Self::secs(if self.quick { 2.0 } else { self.idle_window })
        }
    }

    /// The setup timeout.
    pub fn setup_timeout(&self) -> Duration {
        Self::secs(self.setup_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_and_quick() {
        let o = Options::parse_from(["fwdbench", "--out", "x.json"]);
        assert_eq!(o.window(), Duration::from_secs(10));
        assert!(o.scenarios.is_empty());
        let q = Options::parse_from([
            "fwdbench",
            "--quick",
            "--scenario",
            "fanout-3",
            "--scenario",
            "meeting-3",
        ]);
        assert_eq!(
            (q.window(), q.step()),
            (Duration::from_secs(3), Duration::from_secs(1))
        );
        assert_eq!(q.scenarios, ["fanout-3", "meeting-3"]);
    }
}
