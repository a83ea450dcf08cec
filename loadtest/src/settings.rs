//! The run's settings: command-line options over a scenario preset over
//! built-in defaults, checked once. Pure.

use crate::cli::{Args, Listeners, Scenario};
use crate::report::RunConfig;
use crate::target::{Endpoint, Target, UrlError, parse_http};
use crate::thresholds::Gates;
use std::path::PathBuf;
use std::time::Duration;

/// Why the options cannot make a run.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The signaling or metrics URL.
    #[error("{0}")]
    Url(#[from] UrlError),
    /// A value out of range.
    #[error("--{option}: {why}")]
    Invalid {
        /// The option, without dashes.
        option: &'static str,
        /// What is wrong.
        why: String,
    },
    /// No usable credentials.
    #[error("{0}")]
    Credentials(String),
}

/// How tokens are obtained.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Minted per participant with this key pair.
    Keys {
        /// API key.
        api_key: String,
        /// API secret; never printed.
        api_secret: String,
        /// Whether this is the public development pair.
        development: bool,
    },
    /// Read from a file, one per line.
    TokenFile(PathBuf),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Keys {
                api_key,
                development,
                ..
            } => f
                .debug_struct("Keys")
                .field("api_key", api_key)
                .field("development", development)
                .finish_non_exhaustive(),
            Self::TokenFile(p) => f.debug_tuple("TokenFile").field(p).finish(),
        }
    }
}

/// Sizes and rates; each `None` falls through to the next layer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Layer {
    rooms: Option<u32>,
    participants_per_room: Option<u32>,
    video_publishers: Option<u32>,
    audio_publishers: Option<u32>,
    video_kbps: Option<u32>,
    video_fps: Option<u32>,
    keyframe_interval_s: Option<f64>,
    audio_pps: Option<u32>,
    duration: Option<Duration>,
    ramp_per_sec: Option<f64>,
    churn_per_min: Option<f64>,
    seed: Option<u64>,
}

const BASE: Layer = Layer {
    rooms: Some(2),
    participants_per_room: Some(5),
    video_publishers: Some(1),
    audio_publishers: Some(2),
    video_kbps: Some(500),
    video_fps: Some(30),
    keyframe_interval_s: Some(2.0),
    audio_pps: Some(50),
    duration: Some(Duration::from_secs(30)),
    ramp_per_sec: Some(10.0),
    churn_per_min: Some(0.0),
    seed: Some(1),
};

fn preset(s: Scenario) -> Layer {
    let sizes = |rooms, ppr, video, audio| Layer {
        rooms: Some(rooms),
        participants_per_room: Some(ppr),
        video_publishers: Some(video),
        audio_publishers: Some(audio),
        ..Layer::default()
    };
    match s {
        Scenario::SmallRooms => sizes(10, 5, 2, 5),
        Scenario::LargeMeeting => sizes(1, 50, 2, 2),
        Scenario::Churn => Layer {
            churn_per_min: Some(30.0),
            duration: Some(Duration::from_secs(60)),
            ..sizes(4, 6, 1, 2)
        },
        Scenario::AudioOnly => sizes(10, 8, 0, 8),
    }
}

impl Layer {
    fn from_args(a: &Args) -> Self {
        Self {
            rooms: a.rooms,
            participants_per_room: a.participants_per_room,
            video_publishers: a.video_publishers,
            audio_publishers: a.audio_publishers,
            video_kbps: a.video_kbps,
            video_fps: a.video_fps,
            keyframe_interval_s: a.keyframe_interval,
            audio_pps: a.audio_pps,
            duration: a.duration,
            ramp_per_sec: a.ramp_per_sec,
            churn_per_min: a.churn_per_min,
            seed: a.seed,
        }
    }

    fn or(self, under: Self) -> Self {
        Self {
            rooms: self.rooms.or(under.rooms),
            participants_per_room: self.participants_per_room.or(under.participants_per_room),
            video_publishers: self.video_publishers.or(under.video_publishers),
            audio_publishers: self.audio_publishers.or(under.audio_publishers),
            video_kbps: self.video_kbps.or(under.video_kbps),
            video_fps: self.video_fps.or(under.video_fps),
            keyframe_interval_s: self.keyframe_interval_s.or(under.keyframe_interval_s),
            audio_pps: self.audio_pps.or(under.audio_pps),
            duration: self.duration.or(under.duration),
            ramp_per_sec: self.ramp_per_sec.or(under.ramp_per_sec),
            churn_per_min: self.churn_per_min.or(under.churn_per_min),
            seed: self.seed.or(under.seed),
        }
    }
}

/// Everything a run needs to know, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The SFU's signaling URL.
    pub target: Target,
    /// Its `/metrics`, if known.
    pub metrics: Option<Endpoint>,
    /// The preset's name, or `custom`.
    pub scenario: String,
    /// Rooms.
    pub rooms: u32,
    /// Participants per room at any time.
    pub participants_per_room: u32,
    /// Video publishers per room.
    pub video_publishers: u32,
    /// Audio publishers per room.
    pub audio_publishers: u32,
    /// How non-publishers are simulated.
    pub listeners: Listeners,
    /// Threads for the light listeners' MLS work.
    pub mls_threads: usize,
    /// Their Linux nice value.
    pub mls_nice: i32,
    /// Video publishers send three simulcast encodings.
    pub simulcast: bool,
    /// Which light listeners have a limited downlink.
    pub downlink_limit: DownlinkLimit,
    /// Video bitrate per publisher, kbit/s.
    pub video_kbps: u32,
    /// Video frames per second.
    pub video_fps: u32,
    /// Seconds between keyframes.
    pub keyframe_interval_s: f64,
    /// Audio frames per second.
    pub audio_pps: u32,
    /// Measurement time after the ramp.
    pub duration: Duration,
    /// Joins started per second.
    pub ramp_per_sec: f64,
    /// Leaves-and-joins per minute.
    pub churn_per_min: f64,
    /// Seed.
    pub seed: u64,
    /// `--max-p99-ms`, `--max-loss`, `--min-connected`,
    /// `--max-decrypt-failures`.
    pub gates: Gates,
    /// Where tokens come from.
    pub credentials: Credentials,
    /// `--report-json`.
    pub report_json: Option<PathBuf>,
    /// `--report-html`.
    pub report_html: Option<PathBuf>,
    /// Show the live progress bar (when stderr is a terminal).
    pub progress: bool,
    /// Adjustments made to the options, to tell the user.
    pub notes: Vec<String>,
}

fn invalid(option: &'static str, why: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        option,
        why: why.into(),
    }
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    option: &'static str,
    v: T,
    lo: T,
    hi: T,
) -> Result<T, SettingsError> {
    if v >= lo && v <= hi {
        Ok(v)
    } else {
        Err(invalid(option, format!("{v} is outside {lo}..={hi}")))
    }
}

fn finite_in(option: &'static str, v: f64, lo: f64, hi: f64) -> Result<f64, SettingsError> {
    if v.is_finite() {
        in_range(option, v, lo, hi)
    } else {
        Err(invalid(option, "must be a finite number"))
    }
}

impl Settings {
    /// Resolves `args`: explicit options, then the scenario, then defaults.
    pub fn resolve(args: &Args) -> Result<Self, SettingsError> {
        let target = Target::parse(&args.url)?;
        let layer = Layer::from_args(args)
            .or(args.scenario.map(preset).unwrap_or_default())
            .or(BASE);
        let get = |v: Option<u32>| v.unwrap_or(0);
        let rooms = in_range("rooms", get(layer.rooms), 1, 10_000)?;
        let ppr = in_range(
            "participants-per-room",
            get(layer.participants_per_room),
            1,
            1_000,
        )?;
        let mut notes = Vec::new();
        let mut publishers = |option: &'static str, n: u32| {
            if n > ppr {
                notes.push(format!(
                    "--{option} {n} is more than the {ppr} participants per room; using {ppr}"
                ));
                ppr
            } else {
                n
            }
        };
        let video_publishers = publishers("video-publishers", get(layer.video_publishers));
        let audio_publishers = publishers("audio-publishers", get(layer.audio_publishers));
        let duration = layer.duration.unwrap_or_default();
        if duration < Duration::from_secs(1) || duration > Duration::from_secs(86_400) {
            return Err(invalid("duration", "must be from 1s to 24h"));
        }
        let max_p99_ms = args
            .max_p99_ms
            .map(|v| finite_in("max-p99-ms", v, 0.0, 1e9))
            .transpose()?;
        let max_loss = args
            .max_loss
            .map(|v| finite_in("max-loss", v, 0.0, 1.0))
            .transpose()?;
        let min_connected = args
            .min_connected
            .map(|v| finite_in("min-connected", v, 0.0, 1.0))
            .transpose()?
            .unwrap_or(1.0);
        let gates = Gates {
            max_p99_ms,
            max_loss,
            min_connected,
            max_decrypt_failures: args.max_decrypt_failures,
        };
        let metrics = match &args.metrics_url {
            Some(u) => Some(parse_http(u)?),
            None => target.default_metrics(),
        };
        let credentials = credentials(args, &target)?;
        Ok(Self {
            scenario: args.scenario.map_or("custom", Scenario::name).to_owned(),
            rooms,
            participants_per_room: ppr,
            video_publishers,
            audio_publishers,
            video_kbps: in_range("video-kbps", get(layer.video_kbps), 1, 50_000)?,
            video_fps: in_range("video-fps", get(layer.video_fps), 1, 120)?,
            keyframe_interval_s: finite_in(
                "keyframe-interval",
                layer.keyframe_interval_s.unwrap_or(0.0),
                0.05,
                600.0,
            )?,
            audio_pps: in_range("audio-pps", get(layer.audio_pps), 1, 200)?,
            duration,
            ramp_per_sec: finite_in(
                "ramp-per-sec",
                layer.ramp_per_sec.unwrap_or(0.0),
                0.01,
                100_000.0,
            )?,
            churn_per_min: finite_in(
                "churn-per-min",
                layer.churn_per_min.unwrap_or(0.0),
                0.0,
                60_000.0,
            )?,
            seed: layer.seed.unwrap_or(0),
            gates,
            credentials,
            report_json: args.report_json.clone(),
            report_html: args.report_html.clone(),
            progress: !args.no_progress,
            listeners: args.listeners.unwrap_or_default(),
            mls_threads: args
                .mls_threads
                .unwrap_or(crate::mls_pool::DEFAULT_THREADS)
                .max(1),
            mls_nice: args.mls_nice.unwrap_or(0).clamp(-20, 19),
            simulcast: args.simulcast,
            downlink_limit: DownlinkLimit {
                share: args.limit_share.unwrap_or(0.0).clamp(0.0, 1.0),
                bps: u64::from(args.limit_kbps.unwrap_or(500).max(1)) * 1000,
            },
            notes,
            metrics,
            target,
        })
    }

    /// Participants that join at the start.
    pub fn initial_participants(&self) -> u64 {
        u64::from(self.rooms) * u64::from(self.participants_per_room)
    }

    /// How long starting every initial join takes.
    pub fn ramp_time(&self) -> Duration {
        Duration::from_secs_f64(self.initial_participants() as f64 / self.ramp_per_sec)
    }

    /// The room of index `room`.
    pub fn room_name(&self, room: u32) -> String {
        format!("lt-{}-{room}", self.seed)
    }

    /// The settings as the report records them.
    pub fn run_config(&self) -> RunConfig {
        RunConfig {
            rooms: self.rooms,
            participants_per_room: self.participants_per_room,
            video_publishers: self.video_publishers,
            audio_publishers: self.audio_publishers,
            video_kbps: self.video_kbps,
            video_fps: self.video_fps,
            keyframe_interval_s: self.keyframe_interval_s,
            audio_pps: self.audio_pps,
            duration_s: self.duration.as_secs_f64(),
            ramp_per_s: self.ramp_per_sec,
            churn_per_min: self.churn_per_min,
            seed: self.seed,
            listeners: self.listeners,
            simulcast: self.simulcast,
            limit_share: self.downlink_limit.share,
            limit_kbps: self.downlink_limit.bps / 1000,
        }
    }
}

/// A share of the participants whose downlink is limited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DownlinkLimit {
    /// The share, 0 to 1.
    pub share: f64,
    /// The limit, bits per second.
    pub bps: u64,
}

impl DownlinkLimit {
    /// The limit of the participant of run index `index`, if it is one of
    /// the share: spread evenly, every `1 / share`-th index.
    ///
    /// ```
    /// use loadtest::settings::DownlinkLimit;
    /// let third = DownlinkLimit { share: 1.0 / 3.0, bps: 500_000 };
    /// let limited: Vec<u32> = (0..9).filter(|i| third.limit_for(*i).is_some()).collect();
    /// assert_eq!(limited, [2, 5, 8]);
    /// ```
    pub fn limit_for(&self, index: u32) -> Option<u64> {
        let i = f64::from(index);
        // Computed with a little slack so that 3 × (1/3) counts as 1.
        let before = (i * self.share + 1e-9).floor();
        let after = ((i + 1.0) * self.share + 1e-9).floor();
        (after > before).then_some(self.bps)
    }
}

/// Identity of the `k`-th participant ever to join room `room`.
pub fn identity(room: u32, k: u32) -> String {
    format!("p{room}-{k}")
}

fn credentials(args: &Args, target: &Target) -> Result<Credentials, SettingsError> {
    if let Some(path) = &args.token_file {
        return Ok(Credentials::TokenFile(path.clone()));
    }
    match (&args.api_key, &args.api_secret) {
        (Some(key), Some(secret)) if !key.is_empty() && !secret.0.is_empty() => {
            Ok(Credentials::Keys {
                api_key: key.clone(),
                api_secret: secret.0.clone(),
                development: false,
            })
        }
        (None, None) if target.endpoint.is_loopback() => Ok(Credentials::Keys {
            api_key: signaling::token::DEV_API_KEY.to_owned(),
            api_secret: signaling::token::DEV_API_SECRET.to_owned(),
            development: true,
        }),
        (None, None) => Err(SettingsError::Credentials(format!(
            "{} is not on loopback: give --api-key and --api-secret (or SFU_API_KEY and \
             SFU_API_SECRET), or --token-file; the public development pair only works on loopback",
            target.endpoint.host
        ))),
        _ => Err(SettingsError::Credentials(
            "give both --api-key and --api-secret (non-empty), or neither".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn resolve(extra: &[&str]) -> Result<Settings, SettingsError> {
        let mut argv = vec!["loadtest", "--url", "ws://127.0.0.1:7880"];
        argv.extend_from_slice(extra);
        let mut args = Args::try_parse_from(argv).expect("parses");
        // The environment must not leak into these tests.
        if !extra.contains(&"--api-key") {
            args.api_key = None;
            args.api_secret = None;
        }
        Settings::resolve(&args)
    }

    #[test]
    fn defaults_and_derived_values() {
        let s = resolve(&[]).expect("valid");
        assert_eq!(s.scenario, "custom");
        assert_eq!((s.rooms, s.participants_per_room), (2, 5));
        assert_eq!((s.video_publishers, s.audio_publishers), (1, 2));
        assert_eq!(s.target.url, "ws://127.0.0.1:7880/rtc");
        assert_eq!(s.metrics.as_ref().map(|m| m.port), Some(7880));
        assert!(matches!(
            s.credentials,
            Credentials::Keys {
                development: true,
                ..
            }
        ));
        assert_eq!(s.initial_participants(), 10);
        assert_eq!(s.ramp_time(), Duration::from_secs(1));
        assert_eq!(s.room_name(3), "lt-1-3");
        assert_eq!(identity(3, 7), "p3-7");
        assert_eq!(s.run_config().duration_s, 30.0);
        assert!(s.progress);
    }

    #[test]
    fn explicit_options_override_the_preset() {
        let s =
            resolve(&["--scenario", "large-meeting", "--audio-publishers", "5"]).expect("valid");
        assert_eq!(s.scenario, "large-meeting");
        assert_eq!((s.rooms, s.participants_per_room), (1, 50));
        assert_eq!((s.video_publishers, s.audio_publishers), (2, 5));
        let c = resolve(&["--scenario", "churn"]).expect("valid");
        assert_eq!(
            (c.churn_per_min, c.duration),
            (30.0, Duration::from_secs(60))
        );
        let a =
            resolve(&["--scenario", "audio-only", "--participants-per-room", "4"]).expect("valid");
        assert_eq!((a.video_publishers, a.audio_publishers), (0, 4));
        assert_eq!(a.notes.len(), 1, "{:?}", a.notes);
        let sr = resolve(&["--scenario", "small-rooms"]).expect("valid");
        assert_eq!((sr.rooms, sr.participants_per_room), (10, 5));
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for bad in [
            &["--rooms", "0"][..],
            &["--participants-per-room", "0"],
            &["--video-fps", "0"],
            &["--ramp-per-sec", "0"],
            &["--ramp-per-sec", "NaN"],
            &["--max-loss", "2"],
            &["--keyframe-interval", "0"],
            &["--duration", "10ms"],
            &["--churn-per-min=-1"],
            &["--metrics-url", "https://x/metrics"],
        ] {
            assert!(resolve(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn credentials_rules() {
        let mut args = Args::try_parse_from(["loadtest", "--url", "ws://sfu.example.com:7880"])
            .expect("parses");
        args.api_key = None;
        args.api_secret = None;
        let err = Settings::resolve(&args).expect_err("no dev keys off loopback");
        assert!(err.to_string().contains("--api-key"), "{err}");
        args.api_key = Some("k".into());
        assert!(Settings::resolve(&args).is_err(), "key without secret");
        args.api_secret = Some(crate::cli::Secret("s".into()));
        let s = Settings::resolve(&args).expect("valid");
        assert!(matches!(
            s.credentials,
            Credentials::Keys {
                development: false,
                ..
            }
        ));
        assert!(!format!("{:?}", s.credentials).contains("\"s\""));
        args.token_file = Some("t.txt".into());
        let s = Settings::resolve(&args).expect("valid");
        assert_eq!(s.credentials, Credentials::TokenFile("t.txt".into()));
    }
}
