//! The command line. The doc comments here are the `--help` text.

use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// What the exit status means (also shown by `--help`).
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  the run completed and every threshold given passed
  1  the run completed but a threshold failed (--max-p99-ms, --max-loss)
  2  the run could not be carried out: bad arguments or credentials, nobody
     could connect, or the SFU went away mid-run (the reason is printed and
     recorded in the report's `errors`)
Reports asked for with --report-json/--report-html are written in every case
where the arguments could be read.";

/// A secret from the command line or the environment; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// A preset of sizes and rates; explicit options override its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Many small rooms: 10 rooms of 5, 2 video and 5 audio publishers each.
    SmallRooms,
    /// One large meeting, few speakers, many listeners: 1 room of 50, 2
    /// video and 2 audio publishers.
    LargeMeeting,
    /// Joins and leaves during the run (key rotation under load): 4 rooms of
    /// 6, 1 video and 2 audio publishers, 30 leaves-and-joins a minute, 60 s.
    Churn,
    /// Audio only: 10 rooms of 8, everyone publishes audio, no video.
    AudioOnly,
}

impl Scenario {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::SmallRooms => "small-rooms",
            Self::LargeMeeting => "large-meeting",
            Self::Churn => "churn",
            Self::AudioOnly => "audio-only",
        }
    }
}

/// How participants that publish nothing are simulated.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Listeners {
    /// Receive-only members on str0m: real signaling, MLS and WebRTC, every
    /// counted frame decrypted, at a fraction of a full member's CPU, so
    /// the tester is not what limits a big room.
    #[default]
    Light,
    /// Full `client_sdk` members (webrtc-rs), exactly as an app runs them.
    Full,
}

impl Listeners {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Full => "full",
        }
    }

    /// What reports written before `--listeners` existed ran.
    pub fn before_the_option() -> Self {
        Self::Full
    }
}

/// Load tester for the SFU: simulated end-to-end encrypted participants
/// (the real client SDK, MLS and SFrame included), many per process,
/// sending synthetic frames that carry their sender, sequence number and
/// send time, so receivers measure true end-to-end latency, loss,
/// reordering and duplicates after decryption.
#[derive(Debug, Clone, Parser)]
#[command(name = "loadtest", version, after_help = EXIT_STATUS_HELP)]
pub struct Args {
    /// Signaling URL of the SFU, e.g. ws://127.0.0.1:7880 (the /rtc path is
    /// added when the URL has none).
    #[arg(long)]
    pub url: String,

    /// Preset sizes and rates; options given explicitly override it.
    #[arg(long, value_enum)]
    pub scenario: Option<Scenario>,

    /// Rooms. [default: 2, or the scenario's]
    #[arg(long)]
    pub rooms: Option<u32>,

    /// Participants per room. [default: 5, or the scenario's]
    #[arg(long)]
    pub participants_per_room: Option<u32>,

    /// Video publishers per room: the first N participants of each room
    /// publish VP8 video. [default: 1, or the scenario's]
    #[arg(long)]
    pub video_publishers: Option<u32>,

    /// Audio publishers per room: the first N participants of each room
    /// publish Opus audio. [default: 2, or the scenario's]
    #[arg(long)]
    pub audio_publishers: Option<u32>,

    /// How participants that publish nothing are simulated: `light`
    /// (receive-only members on str0m, cheap enough for big rooms) or
    /// `full` (the client SDK, as an app runs it). Publishers are always
    /// full. [default: light]
    #[arg(long, value_enum)]
    pub listeners: Option<Listeners>,

    /// Threads that run the light listeners' MLS work, off the async
    /// runtime. [default: 8]
    #[arg(long)]
    pub mls_threads: Option<usize>,

    /// Linux nice value of those threads (0: normal priority; higher runs
    /// MLS after media, and at saturation starves it). [default: 0]
    #[arg(long, allow_hyphen_values = true)]
    pub mls_nice: Option<i32>,

    /// Video publishers send simulcast: three encodings (a sixteenth, a
    /// quarter and all of `--video-kbps`, as 320×180, 640×360 and
    /// 1280×720 would be), each with its own frames on its own RTP stream.
    #[arg(long)]
    pub simulcast: bool,

    /// Share (0 to 1) of the light listeners whose downlink goes through
    /// an emulated bottleneck of `--limit-kbps` (every n-th participant).
    /// [default: 0]
    #[arg(long)]
    pub limit_share: Option<f64>,

    /// The limited listeners' downlink, kbit/s: a rate-limited queue of at
    /// most 300 ms in front of the socket, dropping beyond it. [default: 500]
    #[arg(long)]
    pub limit_kbps: Option<u32>,

    /// Video bitrate per publisher, kbit/s. [default: 500]
    #[arg(long)]
    pub video_kbps: Option<u32>,

    /// Video frames per second. [default: 30]
    #[arg(long)]
    pub video_fps: Option<u32>,

    /// Seconds between video keyframes (keyframes are 5x a delta frame).
    /// [default: 2]
    #[arg(long)]
    pub keyframe_interval: Option<f64>,

    /// Audio packets (frames) per second; each carries ~32 kbit/s worth.
    /// [default: 50]
    #[arg(long)]
    pub audio_pps: Option<u32>,

    /// How long the run goes on once every join has started (the ramp-up
    /// comes first), e.g. 30s, 2m. [default: 30s, or the scenario's]
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Joins started per second while ramping up. [default: 10]
    #[arg(long)]
    pub ramp_per_sec: Option<f64>,

    /// Leaves-and-joins per minute after the ramp: a random (seeded)
    /// non-publisher leaves and a new participant joins its room, so the
    /// room's E2EE keys rotate under load. [default: 0, or the scenario's]
    #[arg(long)]
    pub churn_per_min: Option<f64>,

    /// Seed of the run's randomness (churn victims) and room names.
    /// [default: 1]
    #[arg(long)]
    pub seed: Option<u64>,

    /// Write the JSON report (schema: docs/loadtest.schema.json) here.
    #[arg(long, value_name = "FILE")]
    pub report_json: Option<PathBuf>,

    /// Write the self-contained HTML report here.
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,

    /// Fail (exit 1) if the p99 end-to-end latency exceeds this, ms.
    #[arg(long, value_name = "MS")]
    pub max_p99_ms: Option<f64>,

    /// Fail (exit 1) if the frame loss ratio exceeds this (0.01 = 1 %).
    #[arg(long, value_name = "RATIO")]
    pub max_loss: Option<f64>,

    /// Fail (exit 1) if fewer than this share of the participants
    /// connected (1 = all of them). [default: 1]
    #[arg(long, value_name = "RATIO")]
    pub min_connected: Option<f64>,

    /// Fail (exit 1) if more than this many frames failed to decrypt
    /// outside joining (a joiner cannot read the frames of the epochs
    /// before its own; those are not counted).
    #[arg(long, value_name = "N")]
    pub max_decrypt_failures: Option<u64>,

    /// API key to mint a token per participant. Without key and secret the
    /// public development pair is used, which only a loopback SFU accepts.
    #[arg(long, env = "SFU_API_KEY")]
    pub api_key: Option<String>,

    /// API secret to mint tokens with (see --api-key).
    #[arg(long, env = "SFU_API_SECRET", hide_env_values = true)]
    pub api_secret: Option<Secret>,

    /// Read tokens from this file, one per line, in join order, instead of
    /// minting them. Joins go round-robin over rooms: line i is participant
    /// i / ROOMS of room i % ROOMS, so the publishers' tokens come first.
    /// The tokens name the actual rooms; churn replacements take the next
    /// lines.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Where to read the SFU's CPU and memory. [default: http://HOST:PORT/metrics
    /// of the signaling URL]
    #[arg(long, value_name = "URL")]
    pub metrics_url: Option<String>,

    /// No live progress bar; a plain status line is printed to stderr
    /// every 5 s instead (also when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

/// Parses a human duration such as `30s`, `2m` or `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (try 30s, 2m or 1h)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_the_issue_options() {
        let a = Args::try_parse_from([
            "loadtest",
            "--url",
            "ws://127.0.0.1:7880",
            "--rooms",
            "3",
            "--participants-per-room",
            "4",
            "--video-publishers",
            "1",
            "--audio-publishers",
            "2",
            "--video-kbps",
            "800",
            "--video-fps",
            "24",
            "--keyframe-interval",
            "1.5",
            "--audio-pps",
            "25",
            "--duration",
            "45s",
            "--ramp-per-sec",
            "20",
            "--churn-per-min",
            "6",
            "--seed",
            "9",
            "--report-json",
            "r.json",
            "--report-html",
            "r.html",
            "--max-p99-ms",
            "150",
            "--max-loss",
            "0.01",
            "--scenario",
            "large-meeting",
            "--api-key",
            "k",
            "--api-secret",
            "s",
            "--metrics-url",
            "http://127.0.0.1:7880/metrics",
            "--no-progress",
            "--listeners",
            "full",
        ])
        .expect("parses");
        assert_eq!(a.listeners, Some(Listeners::Full));
        assert_eq!(a.duration, Some(Duration::from_secs(45)));
        assert_eq!(a.scenario, Some(Scenario::LargeMeeting));
        assert_eq!(a.keyframe_interval, Some(1.5));
        assert!(a.no_progress);
        assert!(!format!("{a:?}").contains("\"s\""), "secret printed");
        assert!(
            Args::try_parse_from(["loadtest", "--url", "ws://x", "--duration", "soon"]).is_err()
        );
    }
}
