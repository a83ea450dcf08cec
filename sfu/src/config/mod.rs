//! The server's settings: one struct, filled once from flags, `SFU_*`
//! environment variables and an optional TOML file.
//!
//! Each setting is declared once, as a field of one of [`Config`]'s groups:
//! its doc comment is the `--help` text, its `#[arg]` names the flag and the
//! environment variable and gives the built-in default, and serde reads it
//! from the file under the field's name. [`Default`] is the defaults clap
//! declares, so the two cannot drift.
//!
//! Precedence, highest first: command-line flag, environment variable, the
//! file named by `--config`, built-in default (see [`crate::cli::load_from`]).
//!
//! Durations are `Duration`s, written "500ms", "5s" or "2m". Settings that
//! used to be counted in seconds or milliseconds keep their older names as
//! aliases (`--ping-interval-secs`, `SFU_RTX_CACHE_MS`, `rtx_cache_ms = ..`),
//! and a bare number is read in that unit.
//!
//! ```
//! use sfu::config::Config;
//! let config = Config::default();
//! assert_eq!(config.network.http_bind.to_string(), "127.0.0.1:7880");
//! assert_eq!(config.network.media_public_ip(), config.network.media_bind.ip());
//! ```

mod duration;
mod http;
mod limits;
mod secrets;
mod tls;
mod validate;

pub use http::{Http, RESERVED_FDS};
pub use limits::Rate;
pub use secrets::{EXAMPLE_SECRETS, WeakSecret};
pub use tls::Tls;
pub use validate::KeySource;

use clap::{Args, FromArgMatches, ValueEnum};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// Default HTTP and WebSocket address.
pub const DEFAULT_HTTP_BIND: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7880));
/// Default UDP media address.
pub const DEFAULT_MEDIA_BIND: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7882));
/// Default size asked for the media socket's kernel buffers: 4 MiB.
pub const DEFAULT_MEDIA_SOCKET_BUFFER: usize = 4 << 20;
/// Most datagrams per recvmmsg/sendmmsg call (`media_io_batch`).
pub const MAX_MEDIA_IO_BATCH: usize = 128;
/// Most outgoing datagrams queued before a write (`media_send_queue`).
pub const MAX_MEDIA_SEND_QUEUE: usize = 4096;
/// Most media shards (`shards`).
pub const MAX_SHARDS: usize = 256;
/// Longest age bound of the retransmission cache (`rtx_cache_age`): a NACK
/// for a packet older than a minute cannot help a live stream.
pub const MAX_RTX_CACHE_AGE: Duration = Duration::from_secs(60);
/// Shortest API secret accepted: HS256 wants a key at least as long as its
/// 32-byte output.
pub const MIN_SECRET_BYTES: usize = 32;

/// Every server setting, in groups. Settable by flag, by `SFU_*`
/// environment variable, and in the TOML file given by `--config`, whose
/// keys are the field names of the groups, without the group (the file is
/// flat: `shards = 4`, not `[media]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Args, Serialize)]
#[non_exhaustive]
pub struct Config {
    /// Addresses.
    #[command(flatten)]
    #[serde(flatten)]
    pub network: Network,
    /// Token keys.
    #[command(flatten)]
    #[serde(flatten)]
    pub auth: Auth,
    /// Logs.
    #[command(flatten)]
    #[serde(flatten)]
    pub logging: Logging,
    /// Timeouts and per-room limits.
    #[command(flatten)]
    #[serde(flatten)]
    pub limits: Limits,
    /// HTTP timeouts and connection caps.
    #[command(flatten)]
    #[serde(flatten)]
    pub http: Http,
    /// The HTTP listener's certificate and key.
    #[command(flatten)]
    #[serde(flatten)]
    pub tls: Tls,
    /// The media shards.
    #[command(flatten)]
    #[serde(flatten)]
    pub media: Media,
}

/// Where the server listens and what address it gives clients for media.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Network")]
#[serde(default)]
#[non_exhaustive]
pub struct Network {
    /// HTTP and WebSocket address: signaling (/rtc), /healthz, /metrics and
    /// the admin API. Port 0 picks a free port.
    #[arg(long, env = "SFU_HTTP_BIND", value_name = "ADDR")]
    #[arg(default_value_t = DEFAULT_HTTP_BIND)]
    pub http_bind: SocketAddr,

    /// UDP address for media. Each media shard has its own port: shard i
    /// binds this port + i, so open the range port .. port + shards - 1.
    /// Port 0 gives every shard a free port of its own.
    #[arg(long, env = "SFU_MEDIA_BIND", value_name = "ADDR")]
    #[arg(default_value_t = DEFAULT_MEDIA_BIND)]
    pub media_bind: SocketAddr,

    /// IP address put in the ICE candidates the server offers, the one
    /// clients send media to. [default: the IP of --media-bind; required if
    /// that is 0.0.0.0 or ::]
    #[arg(long, env = "SFU_MEDIA_PUBLIC_IP", value_name = "IP")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_public_ip: Option<IpAddr>,
}

/// The key pair that signs and verifies access tokens.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Access tokens")]
#[serde(default)]
#[non_exhaustive]
pub struct Auth {
    /// API key: the issuer of access tokens. Give it together with
    /// --api-secret. With neither, the public development pair is used, and
    /// the server refuses to start on any non-loopback address.
    #[arg(long, env = "SFU_API_KEY", value_name = "KEY", global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,

    /// API secret that signs access tokens (HS256, at least 32 bytes). Prefer
    /// the environment variable or the file: a flag shows in the process
    /// list.
    #[arg(long, env = "SFU_API_SECRET", value_name = "SECRET")]
    #[arg(hide_env_values = true, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_secret: Option<Secret>,

    /// Longest lifetime an access token may have: a token whose expiry is
    /// further than this from now is refused, and `sfu token` mints none
    /// longer.
    #[arg(long, env = "SFU_TOKEN_MAX_LIFETIME", value_name = "DURATION")]
    #[arg(default_value = "24h", value_parser = duration::parse_secs, global = true)]
    #[serde(with = "duration::secs")]
    pub token_max_lifetime: Duration,
}

/// What is logged, and how.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Logging")]
#[serde(default)]
#[non_exhaustive]
pub struct Logging {
    /// Log format: human-readable text, or one JSON object per line.
    #[arg(long, env = "SFU_LOG_FORMAT", value_enum)]
    #[arg(default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter in tracing's EnvFilter syntax, e.g. "info" or
    /// "info,signaling=debug". Logs go to stderr.
    #[arg(long, env = "SFU_LOG", value_name = "FILTER", default_value = "info")]
    pub log: String,
}

/// How long connections and participants are kept, and how many fit in a
/// room.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Timeouts and limits")]
#[serde(default)]
#[non_exhaustive]
pub struct Limits {
    /// Interval between WebSocket pings the server sends to each client
    /// (a bare number is seconds).
    #[arg(long, env = "SFU_PING_INTERVAL", alias = "ping-interval-secs")]
    #[arg(value_name = "DURATION", default_value = "5s")]
    #[arg(value_parser = duration::parse_secs)]
    #[serde(with = "duration::secs", alias = "ping_interval_secs")]
    pub ping_interval: Duration,

    /// How long a client may stay silent (pongs included) before its
    /// connection is closed and it leaves its room; longer than
    /// --ping-interval (a bare number is seconds).
    #[arg(long, env = "SFU_PING_TIMEOUT", alias = "ping-timeout-secs")]
    #[arg(value_name = "DURATION", default_value = "15s")]
    #[arg(value_parser = duration::parse_secs)]
    #[serde(with = "duration::secs", alias = "ping_timeout_secs")]
    pub ping_timeout: Duration,

    /// How long a participant whose signaling connection dropped (without a
    /// `leave`) is kept, media flowing, so that it can reconnect and resume
    /// its session and MLS log position; 0 removes it at once (a bare
    /// number is seconds).
    #[arg(long, env = "SFU_RESUME_GRACE", alias = "resume-grace-secs")]
    #[arg(value_name = "DURATION", default_value = "15s")]
    #[arg(value_parser = duration::parse_secs)]
    #[serde(with = "duration::secs", alias = "resume_grace_secs")]
    pub resume_grace: Duration,

    /// How long the first participant of a room (or of a new group
    /// incarnation) has to create the MLS group; after it the next
    /// participant becomes founder, so one that never creates the group
    /// cannot keep the room without keys.
    #[arg(long, env = "SFU_MLS_FOUNDER_TIMEOUT", value_name = "DURATION")]
    #[arg(default_value = "10s", value_parser = duration::parse_secs)]
    #[serde(with = "duration::secs")]
    pub mls_founder_timeout: Duration,

    /// How long a participant may go without ICE connectivity (or consent)
    /// before its media times out and it is removed (a bare number is
    /// seconds).
    #[arg(long, env = "SFU_ICE_TIMEOUT", alias = "ice-timeout-secs")]
    #[arg(value_name = "DURATION", default_value = "10s")]
    #[arg(value_parser = duration::parse_secs)]
    #[serde(with = "duration::secs", alias = "ice_timeout_secs")]
    pub ice_timeout: Duration,

    /// How long to wait on SIGINT/SIGTERM for open requests and connections
    /// to finish before the server exits anyway (a bare number is seconds).
    #[arg(long, env = "SFU_SHUTDOWN_TIMEOUT", alias = "shutdown-timeout-secs")]
    #[arg(value_name = "DURATION", default_value = "10s")]
    #[arg(value_parser = duration::parse_secs)]
    #[serde(with = "duration::secs", alias = "shutdown_timeout_secs")]
    pub shutdown_timeout: Duration,

    /// Most participants one room may hold; further joins are refused.
    #[arg(long, env = "SFU_MAX_PARTICIPANTS_PER_ROOM", value_name = "N")]
    #[arg(default_value_t = 1000)]
    pub max_participants_per_room: usize,

    // Signaling limits against abuse (see "Limits" in docs/operations.md).
    // An address is an IPv4 address or an IPv6 /64.
    /// Most open signaling WebSocket connections; more get HTTP 503.
    #[arg(
        long,
        env = "SFU_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub max_connections: usize,
    /// Most open signaling connections from one address; more get HTTP 429.
    #[arg(long, env = "SFU_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    #[arg(default_value_t = 1000)]
    pub max_connections_per_address: usize,
    /// Most participants in all rooms; further joins are refused.
    #[arg(
        long,
        env = "SFU_MAX_PARTICIPANTS",
        value_name = "N",
        default_value_t = 10_000
    )]
    pub max_participants: usize,
    /// Most participants joined from one address.
    #[arg(long, env = "SFU_MAX_PARTICIPANTS_PER_ADDRESS", value_name = "N")]
    #[arg(default_value_t = 1000)]
    pub max_participants_per_address: usize,
    /// Most rooms; a join that would open another is refused.
    #[arg(long, env = "SFU_MAX_ROOMS", value_name = "N", default_value_t = 5000)]
    pub max_rooms: usize,
    /// Most rooms opened (first joined) from one address that still exist.
    #[arg(
        long,
        env = "SFU_MAX_ROOMS_PER_ADDRESS",
        value_name = "N",
        default_value_t = 250
    )]
    pub max_rooms_per_address: usize,
    /// Bytes queued to one client at most; over it the client is closed as
    /// a slow consumer.
    #[arg(long, env = "SFU_OUTBOUND_QUEUE_BYTES", value_name = "BYTES")]
    #[arg(default_value_t = 8 << 20)]
    pub outbound_queue_bytes: usize,
    /// Bytes a room may have queued to its members (each MLS entry counted
    /// once); a message that would exceed it is refused as rate_limited.
    #[arg(long, env = "SFU_ROOM_OUTBOUND_BYTES", value_name = "BYTES")]
    #[arg(default_value_t = 32 << 20)]
    pub room_outbound_bytes: usize,
    /// Largest SDP offer or answer, in bytes.
    #[arg(long, env = "SFU_MAX_SDP_BYTES", value_name = "BYTES", default_value_t = 256 << 10)]
    pub max_sdp_bytes: usize,
    /// Largest MLS KeyPackage (base64), in bytes.
    #[arg(long, env = "SFU_MAX_KEY_PACKAGE_BYTES", value_name = "BYTES")]
    #[arg(default_value_t = 16 << 10)]
    pub max_key_package_bytes: usize,
    /// Largest MLS commit (base64), in bytes.
    #[arg(long, env = "SFU_MAX_COMMIT_BYTES", value_name = "BYTES", default_value_t = 256 << 10)]
    pub max_commit_bytes: usize,
    /// Largest MLS Welcome (base64), in bytes.
    #[arg(long, env = "SFU_MAX_WELCOME_BYTES", value_name = "BYTES")]
    #[arg(default_value_t = 448 << 10)]
    pub max_welcome_bytes: usize,
    /// Largest MLS application (chat) message (base64), in bytes.
    #[arg(long, env = "SFU_MAX_CHAT_BYTES", value_name = "BYTES", default_value_t = 64 << 10)]
    pub max_chat_bytes: usize,
    /// KeyPackages per identity, as BURST/INTERVAL (kept across reconnects).
    #[arg(
        long,
        env = "SFU_KEY_PACKAGE_RATE",
        value_name = "RATE",
        default_value = "5/10s"
    )]
    pub key_package_rate: Rate,
    /// MLS commits per identity, as BURST/INTERVAL.
    #[arg(
        long,
        env = "SFU_COMMIT_RATE",
        value_name = "RATE",
        default_value = "20/500ms"
    )]
    pub commit_rate: Rate,
    /// Chat messages per identity, as BURST/INTERVAL.
    #[arg(
        long,
        env = "SFU_CHAT_RATE",
        value_name = "RATE",
        default_value = "30/50ms"
    )]
    pub chat_rate: Rate,
    /// SDP offers and answers per identity, as BURST/INTERVAL.
    #[arg(
        long,
        env = "SFU_SDP_RATE",
        value_name = "RATE",
        default_value = "20/500ms"
    )]
    pub sdp_rate: Rate,
}

/// The media shards: threads, sockets, caches.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Media")]
#[serde(default)]
#[non_exhaustive]
pub struct Media {
    /// Media worker threads (shards), each with its own UDP port and its own
    /// rooms; 0 means one per available CPU core. At most 256.
    #[arg(long, env = "SFU_SHARDS", value_name = "N", default_value_t = 0)]
    pub shards: usize,

    /// Pin media shard i to CPU i (counted among the CPUs the process may
    /// use, wrapping around). A failure to pin is logged, never fatal.
    #[arg(long, env = "SFU_PIN_SHARDS", value_name = "BOOL", num_args = 0..=1)]
    #[arg(require_equals = true, default_value_t = false)]
    #[arg(default_missing_value = "true", action = clap::ArgAction::Set)]
    #[arg(value_parser = clap::builder::BoolishValueParser::new())]
    pub pin_shards: bool,

    /// RTP packets each outgoing (subscriber) stream keeps for answering
    /// NACKs with retransmissions.
    #[arg(long, env = "SFU_RTX_CACHE_PACKETS", value_name = "N")]
    #[arg(default_value_t = 1024)]
    pub rtx_cache_packets: usize,

    /// How long each outgoing (subscriber) stream keeps a packet for
    /// answering NACKs; a packet leaves the cache at this age or when
    /// --rtx-cache-packets newer ones have been sent, whichever comes first
    /// (1ms to 60s; a bare number is milliseconds).
    #[arg(long, env = "SFU_RTX_CACHE_AGE", alias = "rtx-cache-ms")]
    #[arg(value_name = "DURATION", default_value = "3s")]
    #[arg(value_parser = duration::parse_millis)]
    #[serde(with = "duration::millis", alias = "rtx_cache_ms")]
    pub rtx_cache_age: Duration,

    /// Least time between two keyframe requests (PLI/FIR) sent to one
    /// publisher's stream; subscriber requests in between are merged (a
    /// bare number is milliseconds).
    #[arg(long, env = "SFU_KEYFRAME_MIN_INTERVAL")]
    #[arg(alias = "keyframe-min-interval-ms", value_name = "DURATION")]
    #[arg(default_value = "500ms", value_parser = duration::parse_millis)]
    #[serde(with = "duration::millis", alias = "keyframe_min_interval_ms")]
    pub keyframe_min_interval: Duration,

    /// The longest a subscriber that keeps asking for keyframes must wait
    /// between requests that reach the publisher: each forwarded request
    /// doubles its wait, from --keyframe-min-interval up to this, and a
    /// quiet spell resets it. Equal to --keyframe-min-interval turns the
    /// backoff off (a bare number is milliseconds).
    #[arg(long, env = "SFU_KEYFRAME_BACKOFF_MAX", value_name = "DURATION")]
    #[arg(default_value = "16s", value_parser = duration::parse_millis)]
    #[serde(with = "duration::millis")]
    pub keyframe_backoff_max: Duration,

    /// Estimate each subscriber's downlink (transport-wide congestion
    /// control) starting from this many kbit/s, and choose the simulcast
    /// and SVC layers it receives to fit; 0 (the default) sends every
    /// subscriber the best layers with no bandwidth limit. Experimental:
    /// measured on simulated links and in one browser test, not yet on
    /// real networks. While on, resends are capped at 30 % of a stream.
    #[arg(long, env = "SFU_BANDWIDTH_ESTIMATION_KBPS", value_name = "KBPS")]
    #[arg(default_value_t = 0)]
    pub bandwidth_estimation_kbps: u64,

    /// UDP generic segmentation offload on the media socket: `auto` sends runs
    /// of same-size datagrams to one address as one system call where the
    /// kernel supports it (and falls back to plain sends where it does not);
    /// `off` never uses it.
    #[arg(long, env = "SFU_MEDIA_GSO", value_enum)]
    #[arg(default_value_t = GsoMode::Auto)]
    pub media_gso: GsoMode,

    /// Datagrams read per recvmmsg call and messages written per sendmmsg
    /// call on the media socket (1 to 128).
    #[arg(long, env = "SFU_MEDIA_IO_BATCH", value_name = "N")]
    #[arg(default_value_t = 32)]
    pub media_io_batch: usize,

    /// Outgoing datagrams the media shard queues before it writes them out;
    /// bounds the delay batching adds (at least --media-io-batch, at most
    /// 4096).
    #[arg(long, env = "SFU_MEDIA_SEND_QUEUE", value_name = "N")]
    #[arg(default_value_t = 256)]
    pub media_send_queue: usize,

    /// Size asked for the media socket's kernel receive and send buffers
    /// (SO_RCVBUF/SO_SNDBUF), in bytes; the kernel caps it at
    /// net.core.rmem_max/wmem_max. 0 keeps the system default.
    #[arg(long, env = "SFU_MEDIA_SOCKET_BUFFER_BYTES", value_name = "BYTES")]
    #[arg(default_value_t = DEFAULT_MEDIA_SOCKET_BUFFER)]
    pub media_socket_buffer_bytes: usize,

    // Negotiation limits and the readiness check (docs/operations.md,
    // "Negotiation limits" and "Health and readiness"). The SDP byte cap is
    // the limits group's `max_sdp_bytes`, one setting for signaling (which
    // refuses a larger offer before a shard sees it) and the media plane.
    /// Most m-lines in a client's SDP offer or answer; a subscription that
    /// would give a subscriber more is refused.
    #[arg(long, env = "SFU_SDP_MAX_MEDIA_LINES", value_name = "N")]
    #[arg(default_value_t = 128)]
    pub sdp_max_media_lines: usize,

    /// Media-shard time each participant earns per second for applying its
    /// SDP and candidates; past it (and the burst), its negotiation
    /// requests get `rate_limited` (a bare number is milliseconds).
    #[arg(long, env = "SFU_NEGOTIATION_TIME_PER_SECOND", value_name = "DURATION")]
    #[arg(default_value = "10ms", value_parser = duration::parse_millis)]
    #[serde(with = "duration::millis")]
    pub negotiation_time_per_second: Duration,

    /// Media-shard time a participant may spend on negotiation at once
    /// (a bare number is milliseconds).
    #[arg(long, env = "SFU_NEGOTIATION_TIME_BURST", value_name = "DURATION")]
    #[arg(default_value = "100ms", value_parser = duration::parse_millis)]
    #[serde(with = "duration::millis")]
    pub negotiation_time_burst: Duration,

    /// `/readyz` reports a media shard whose loop has not turned for this
    /// long as stalled (a bare number is milliseconds).
    #[arg(long, env = "SFU_SHARD_STALL_TIMEOUT", value_name = "DURATION")]
    #[arg(default_value = "2s", value_parser = duration::parse_millis)]
    #[serde(with = "duration::millis")]
    pub shard_stall_timeout: Duration,
}

/// The defaults of a group of settings: what clap fills in from its
/// `default_value`s with no flag given and no environment read.
fn builtin<T: Args + FromArgMatches>() -> T {
    let matches = T::augment_args(clap::Command::new("sfu"))
        .mut_args(|arg| arg.env(None))
        .try_get_matches_from(["sfu"]);
    // Every default is a constant, and a test parses them all.
    matches
        .and_then(|m| T::from_arg_matches(&m))
        .unwrap_or_else(|e| panic!("built-in defaults do not parse: {e}"))
}

macro_rules! defaults_from_clap {
    ($($group:ty),+) => {$(
        impl Default for $group {
            fn default() -> Self {
                builtin()
            }
        }
    )+};
}
defaults_from_clap!(Network, Auth, Logging, Limits, Http, Tls, Media);

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with span fields.
    Json,
}

/// Whether the media socket uses UDP generic segmentation offload (GSO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GsoMode {
    /// Use it if the kernel supports it; fall back to plain sends if a send
    /// with it fails.
    Auto,
    /// Never use it.
    Off,
}

/// A secret string that never shows in `Debug` output or printed configs.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub struct Secret(String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// Why the configuration could not be loaded or is not usable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Bad flags or environment variables, or `--help`/`--version` (which
    /// the binary prints with [`clap::Error::exit`]).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has an unknown or mistyped key.
    #[error("invalid config file {path}: {source}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// What and where, with line and column.
        source: Box<toml::de::Error>,
    },
    /// The public development key would be used on a non-loopback address.
    #[error(
        "refusing to start: no api_key/api_secret is configured, so the public development \
         key would sign tokens, but {setting} is {addr}, which is not a loopback address. \
         Set SFU_API_KEY and SFU_API_SECRET (or --api-key/--api-secret, or api_key/api_secret \
         in the config file)"
    )]
    DevKeyOnNonLoopback {
        /// The setting holding the address.
        setting: &'static str,
        /// The address.
        addr: IpAddr,
    },
    /// A weak or publicly known API secret would sign tokens on a
    /// non-loopback address.
    #[error(
        "refusing to start: api_secret is {reason}, which anyone may guess, but {setting} is \
         {addr}, which is not a loopback address. Set SFU_API_SECRET to at least 32 random \
         bytes (e.g. the output of `openssl rand -base64 48`)"
    )]
    WeakSecretOnNonLoopback {
        /// What is wrong with the secret.
        reason: WeakSecret,
        /// The setting holding the address.
        setting: &'static str,
        /// The address.
        addr: IpAddr,
    },
    /// Some other setting is out of range or inconsistent.
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// Why.
        reason: String,
    },
}

/// Every key the file may hold: each setting's name and its older names
/// (the clap aliases, which serde accepts too), with '_' for '-'.
fn file_keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let cmd = Config::augment_args(clap::Command::new("sfu"));
        cmd.get_arguments()
            .flat_map(|arg| {
                let aliases = arg.get_all_aliases().unwrap_or_default();
                let aliases = aliases.into_iter().map(|a| a.replace('-', "_"));
                std::iter::once(arg.get_id().to_string()).chain(aliases)
            })
            .collect()
    })
}

/// A key of the config file that names a setting. Deserializing any other
/// key fails, and TOML reports where.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct FileKey;

impl<'de> Deserialize<'de> for FileKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        if file_keys().contains(&key) {
            Ok(Self)
        } else {
            Err(serde::de::Error::custom(format!(
                "unknown field `{key}`: the keys are the settings of `sfu --help` with '_' for '-'"
            )))
        }
    }
}

impl Config {
    /// Both addresses on 127.0.0.1 port 0 (the OS picks free ports) and one
    /// media shard; every other setting at its default. For tests.
    pub fn loopback_ephemeral() -> Self {
        let any = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
        let mut config = Self::default();
        config.network.http_bind = any;
        config.network.media_bind = any;
        config.media.shards = 1;
        config
    }

    /// The settings in the TOML file at `path`, each one it does not hold
    /// at its built-in default.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| ConfigError::Toml {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// Each group reads its own keys from the one flat table; deserializing
    /// them one by one (rather than through `serde(flatten)`) keeps the line
    /// and key in a mistyped value's error.
    fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str::<BTreeMap<FileKey, IgnoredAny>>(text)?;
        Ok(Self {
            network: toml::from_str(text)?,
            auth: toml::from_str(text)?,
            logging: toml::from_str(text)?,
            limits: toml::from_str(text)?,
            http: toml::from_str(text)?,
            tls: toml::from_str(text)?,
            media: toml::from_str(text)?,
        })
    }

    /// The effective configuration as TOML, with the secret redacted. The
    /// output is a valid config file.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

impl Network {
    /// The IP address put in ICE candidates: `media_public_ip`, or else the
    /// IP of `media_bind`.
    pub fn media_public_ip(&self) -> IpAddr {
        self.media_public_ip.unwrap_or(self.media_bind.ip())
    }
}

impl Media {
    /// How many media shards to run: `shards`, or one per CPU core the
    /// process may use when it is 0 (capped at [`MAX_SHARDS`]).
    ///
    /// ```
    /// use sfu::config::Config;
    /// let mut config = Config::default();
    /// config.media.shards = 3;
    /// assert_eq!(config.media.effective_shards(), 3);
    /// config.media.shards = 0;
    /// assert!(config.media.effective_shards() >= 1);
    /// ```
    pub fn effective_shards(&self) -> usize {
        if self.shards > 0 {
            return self.shards;
        }
        std::thread::available_parallelism()
            .map(std::num::NonZeroUsize::get)
            .unwrap_or(1)
            .min(MAX_SHARDS)
    }
}

#[cfg(test)]
mod tests;
