//! The machine-readable report (`--report-json`) and its parts.
//!
//! The JSON layout is a stable interface: release pipelines read it. Its
//! schema is `docs/loadtest.schema.json`; add fields, never rename or
//! remove them, and bump [`SCHEMA_VERSION`] on any change in meaning.

use crate::cli::Listeners;
use serde::{Deserialize, Serialize};

pub mod html;

/// Version of the report layout.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `loadtest <version>`.
    pub tool: String,
    /// Start of the run, milliseconds since the Unix epoch.
    pub started_at_unix_ms: u64,
    /// Wall-clock length of the run, seconds.
    pub duration_s: f64,
    /// The signaling URL tested.
    pub url: String,
    /// The scenario preset, or `custom`.
    pub scenario: String,
    /// The settings the run used.
    pub config: RunConfig,
    /// Simulated participants the run meant to connect (churn replacements
    /// included).
    pub participants_target: u64,
    /// Participants that connected and received at least one decrypted
    /// frame or were in a room with no publishers.
    pub participants_connected: u64,
    /// Participants that never connected.
    pub participants_failed: u64,
    /// From token to first decrypted frame, milliseconds.
    pub join_ms: Percentiles,
    /// End-to-end frame latency (sender's send time to receiver's decrypt
    /// time, one host, one clock), milliseconds.
    pub latency_ms: Percentiles,
    /// Frames expected by subscriptions but never received, over expected.
    pub loss_ratio: f64,
    /// RFC 3550-style interarrival jitter of frames, mean over receivers,
    /// milliseconds.
    pub jitter_ms: f64,
    /// Received bitrate per subscriber, kbit/s.
    pub bitrate_kbps: Bitrate,
    /// Frames dropped by the SDK instead of being delivered (all reasons).
    pub decrypt_failures: u64,
    /// E2EE epoch changes seen, summed over participants.
    pub epoch_switches: u64,
    /// Frames the publishers sent.
    pub frames_sent: u64,
    /// Frames the subscribers received and decrypted (duplicates excluded).
    pub frames_received: u64,
    /// Frames the subscriptions imply the subscribers should receive.
    pub frames_expected: u64,
    /// Frames received more than once.
    pub duplicates: u64,
    /// Frames received after a later frame of the same sender and track.
    pub reordered: u64,
    /// What the SFU's `/metrics` said, if it was reachable.
    pub sfu: Option<SfuUsage>,
    /// The pass/fail gates given on the command line.
    pub thresholds: Thresholds,
    /// Problems that affected the run (e.g. the SFU stopped answering).
    pub errors: Vec<String>,
    /// One point per second of the run.
    pub timeline: Vec<TimelinePoint>,
    /// Latency CDF: `[latency_ms, fraction of frames at or below]`, ascending.
    pub latency_cdf: Vec<[f64; 2]>,
    /// [`Report::decrypt_failures`] by reason.
    #[serde(default)]
    pub decrypt_failure_reasons: DecryptFailureReasons,
    /// Frames that decrypted but did not carry a load-test header.
    #[serde(default)]
    pub malformed_frames: u64,
    /// Participants whose session closed on its own during the run.
    #[serde(default)]
    pub participants_lost: u64,
    /// Frames the publishers failed to send (no key yet, transport refused).
    #[serde(default)]
    pub send_errors: u64,
    /// [`Report::decrypt_failures`] outside joining (minus
    /// [`DecryptFailureReasons::while_joining`]): drops a member of the
    /// group should never see beyond frames in flight at a key change.
    #[serde(default)]
    pub decrypt_failures_after_join: u64,
    /// The load tester's own CPU and whether it kept up.
    #[serde(default)]
    pub tester: Option<TesterUsage>,
    /// Frames lost around E2EE epoch changes.
    #[serde(default)]
    pub epoch_change_loss: Option<EpochChangeLoss>,
    /// Whether every member was in every other member's MLS group.
    #[serde(default)]
    pub roster_check: Option<RosterCheck>,
    /// What the light listeners (`--listeners light`) received.
    #[serde(default)]
    pub light_listeners: Option<ListenerFigures>,
    /// Which simulcast layers the receivers got, how often they switched
    /// and froze, receivers with a limited downlink apart.
    #[serde(default)]
    pub layers: Option<LayerFigures>,
}

/// Video layers as received, by receiver group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerFigures {
    /// Receivers with the full downlink.
    pub unlimited: LayerGroup,
    /// Receivers whose downlink was limited (`--limit-share`).
    pub limited: LayerGroup,
}

/// One group of receivers' video layers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerGroup {
    /// Receivers that got video.
    pub receivers: u64,
    /// Share of their video time on each layer (0 the lowest): from each
    /// frame to the next, to that frame's layer.
    pub time_share: [f64; 4],
    /// Layer changes, summed.
    pub switches: u64,
    /// Layer changes per minute of video, per stream.
    pub switches_per_minute: f64,
    /// Gaps of more than 500 ms between decoded frames, summed.
    pub freezes: u64,
    /// Share of their video time spent frozen.
    pub freeze_share: f64,
    /// The longest freeze, ms.
    pub longest_freeze_ms: f64,
}

/// Frames lost around E2EE epoch changes: for each change a member saw
/// after joining, the frames its room's publishers sent in the second after
/// it that the member had not delivered one more second later (see
/// `docs/loadtest.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochChangeLoss {
    /// Changes settled (member × change).
    pub changes: u64,
    /// Frames of those changes the members should have delivered.
    pub frames_expected: u64,
    /// Of those, frames not delivered.
    pub frames_lost: u64,
    /// Frames lost per change.
    pub lost_per_change: CountDistribution,
    /// Decrypt failures members counted from each change to its settling,
    /// by reason (`while_joining` is always 0: only changes after joining
    /// count).
    pub failures: DecryptFailureReasons,
    /// Lost frames the decrypt failures do not account for (never handed
    /// to the decryptor whole: network loss, or still missing), summed per
    /// change.
    pub undelivered: u64,
}

/// Summary of a distribution of counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CountDistribution {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// Largest.
    pub max: u64,
}

impl CountDistribution {
    /// The distribution of `values` (nearest rank).
    pub fn of(mut values: Vec<u64>) -> Self {
        values.sort_unstable();
        let rank = |q: f64| {
            let i = ((q * values.len() as f64).ceil() as usize).saturating_sub(1);
            values.get(i).copied().unwrap_or(0)
        };
        Self {
            count: values.len() as u64,
            p50: rank(0.5),
            p95: rank(0.95),
            max: values.last().copied().unwrap_or(0),
        }
    }
}

/// The MLS rosters of the members in session when the media stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterCheck {
    /// Members whose roster was checked.
    pub members: u64,
    /// (member, other member of its room) pairs where the other was missing
    /// from the member's MLS group at its latest epoch.
    pub missing: u64,
    /// Roster mismatches (MLS group and signaling roster apart beyond the
    /// grace) the members' group-key state machines reported.
    pub mismatches: u64,
}

/// What the light listeners received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerFigures {
    /// Light listeners started.
    pub participants: u64,
    /// Of those, connected (a decrypted frame).
    pub connected: u64,
    /// Frames they decrypted and counted.
    pub frames_received: u64,
    /// Their decrypt failures outside joining.
    pub decrypt_failures_after_join: u64,
    /// Tracks published in each listener's room.
    pub publisher_tracks: u64,
    /// The fewest of those tracks any light listener in session decrypted
    /// frames of.
    pub tracks_received_min: u64,
}

/// The load tester's own resource use: when it is overloaded, the latency
/// and loss it reports include its own delay and say less about the SFU.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TesterUsage {
    /// CPU seconds the load-test process used.
    pub cpu_seconds: Option<f64>,
    /// The same over the run's wall-clock length (1.0 = one core).
    pub cpu_cores: Option<f64>,
    /// Cores available to the load tester.
    pub host_cores: u32,
    /// Cores the whole host kept busy (an SFU on the same host included).
    pub host_busy_cores: Option<f64>,
    /// How late the async runtime woke a 20 ms timer, ms.
    pub runtime_lag_ms: Percentiles,
    /// Whether the tester could not keep up (see `overload_reasons`).
    pub overloaded: bool,
    /// Why it counts as overloaded, in words.
    pub overload_reasons: Vec<String>,
}

/// Frames the SDK dropped, by reason (summed over participants).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecryptFailureReasons {
    /// The SFrame header could not be parsed.
    pub malformed: u64,
    /// Authentication failed.
    pub auth_failed: u64,
    /// A counter already seen, or older than the replay window.
    pub replay: u64,
    /// A key id that never became known before the buffering timeout.
    pub unknown_kid: u64,
    /// A key id for an epoch whose keys were already gone.
    pub wrong_epoch: u64,
    /// Decrypted, but not from the participant whose track it came on.
    pub wrong_sender: u64,
    /// Decrypted, but the track's publisher was still not named by the
    /// roster when the frame's wait ran out.
    #[serde(default)]
    pub unknown_sender: u64,
    /// Packets that never formed a whole frame.
    pub incomplete: u64,
    /// Of all the drops above, those a participant had while joining: before
    /// its first E2EE epoch and in the 2 s after it. A joiner is sent
    /// frames of the epochs before its own until the senders switch keys,
    /// and cannot (and must not) read them.
    #[serde(default)]
    pub while_joining: u64,
}

/// The run's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Rooms.
    pub rooms: u32,
    /// Participants per room.
    pub participants_per_room: u32,
    /// Video publishers per room.
    pub video_publishers: u32,
    /// Audio publishers per room.
    pub audio_publishers: u32,
    /// Video bitrate per publisher, kbit/s.
    pub video_kbps: u32,
    /// Video frames per second.
    pub video_fps: u32,
    /// Seconds between video keyframes.
    pub keyframe_interval_s: f64,
    /// Audio packets (frames) per second.
    pub audio_pps: u32,
    /// Planned run length, seconds.
    pub duration_s: f64,
    /// Joins per second while ramping up.
    pub ramp_per_s: f64,
    /// Leaves-and-rejoins per minute during the run.
    pub churn_per_min: f64,
    /// Seed of the run's randomness.
    pub seed: u64,
    /// How non-publishers were simulated: `light` or `full` (`--listeners`).
    #[serde(default = "Listeners::before_the_option")]
    pub listeners: Listeners,
    /// Video publishers sent three simulcast encodings (`--simulcast`).
    #[serde(default)]
    pub simulcast: bool,
    /// Share of light listeners with a limited downlink (`--limit-share`).
    #[serde(default)]
    pub limit_share: f64,
    /// Their downlink, kbit/s (`--limit-kbps`).
    #[serde(default)]
    pub limit_kbps: u64,
}

/// Distribution summary, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Bitrate per subscriber, kbit/s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Bitrate {
    /// Mean over subscribers.
    pub mean: f64,
    /// The lowest subscriber.
    pub min: f64,
    /// The highest subscriber.
    pub max: f64,
}

/// Server resource use, from its `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SfuUsage {
    /// CPU seconds the SFU process used during the run.
    pub cpu_seconds: Option<f64>,
    /// CPU used during the run over its wall-clock length (1.0 = one core).
    pub cpu_cores: Option<f64>,
    /// Largest resident memory seen, bytes.
    pub peak_rss_bytes: Option<u64>,
}

/// Pass/fail gates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// `--max-p99-ms`, if given.
    pub max_p99_ms: Option<f64>,
    /// `--max-loss`, if given (a ratio).
    pub max_loss: Option<f64>,
    /// `--min-connected`: share of participants that must connect.
    #[serde(default)]
    pub min_connected: Option<f64>,
    /// `--max-decrypt-failures`, if given (after joining).
    #[serde(default)]
    pub max_decrypt_failures: Option<u64>,
    /// Whether every gate passed and the run completed.
    pub passed: bool,
    /// What failed, in words.
    pub failures: Vec<String>,
}

/// One second of the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TimelinePoint {
    /// Seconds since the start.
    pub t_s: f64,
    /// Participants connected at that time.
    pub connected: u64,
    /// Joins completed so far (cumulative).
    pub joins: u64,
    /// Aggregate received bitrate in that second, kbit/s.
    pub bitrate_kbps: f64,
    /// Median latency of frames received in that second, ms.
    pub latency_p50_ms: f64,
    /// 99th percentile latency of frames received in that second, ms.
    pub latency_p99_ms: f64,
    /// Frames lost over frames expected in that second.
    pub loss_ratio: f64,
    /// Video frames received in that second on each simulcast layer (0
    /// the lowest), all receivers.
    #[serde(default)]
    pub layer_frames: [u64; 4],
}
