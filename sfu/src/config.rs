//! The server's settings: one struct, filled once from flags, `SFU_*`
//! environment variables and an optional TOML file.
//!
//! Precedence, highest first: command-line flag, environment variable, the
//! file named by `--config`, built-in default. The doc comments on
//! [`Config`]'s fields are the `--help` text.
//!
//! ```
//! use sfu::config::Config;
//! let config = Config::default();
//! assert_eq!(config.http_bind.to_string(), "127.0.0.1:7880");
//! assert_eq!(config.media_public_ip(), config.media_bind.ip());
//! ```

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, ValueEnum};
use serde::{Deserialize, Serialize};
use signaling::token::{DEV_API_KEY, DEV_API_SECRET, TokenKeys};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
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
/// Default age bound of the retransmission cache (`rtx_cache_ms`): the
/// media plane's own default, 3 s.
pub const DEFAULT_RTX_CACHE_MS: u64 = 3000;
/// Longest age bound of the retransmission cache (`rtx_cache_ms`): a NACK
/// for a packet older than a minute cannot help a live stream.
pub const MAX_RTX_CACHE_MS: u64 = 60_000;
/// Shortest API secret accepted: HS256 wants a key at least as long as its
/// 32-byte output.
pub const MIN_SECRET_BYTES: usize = 32;

/// Every server setting. Settable by flag, by `SFU_*` environment variable,
/// and in the TOML file given by `--config` (keys are the field names).
#[derive(Clone, PartialEq, Eq, Args, Serialize)]
#[non_exhaustive]
pub struct Config {
    /// HTTP and WebSocket address: signaling (/rtc), /healthz, /metrics and
    /// the admin API. Port 0 picks a free port.
    #[arg(long, env = "SFU_HTTP_BIND", value_name = "ADDR", default_value_t = DEFAULT_HTTP_BIND)]
    pub http_bind: SocketAddr,

    /// UDP address for media. Each media shard has its own port: shard i
    /// binds this port + i, so open the range port .. port + shards - 1.
    /// Port 0 gives every shard a free port of its own.
    #[arg(long, env = "SFU_MEDIA_BIND", value_name = "ADDR", default_value_t = DEFAULT_MEDIA_BIND)]
    pub media_bind: SocketAddr,

    /// IP address put in the ICE candidates the server offers, the one
    /// clients send media to. [default: the IP of --media-bind; required if
    /// that is 0.0.0.0 or ::]
    #[arg(long, env = "SFU_MEDIA_PUBLIC_IP", value_name = "IP")]
    pub media_public_ip: Option<IpAddr>,

    /// API key: the issuer of access tokens. Give it together with
    /// --api-secret. With neither, the public development pair is used, and
    /// the server refuses to start on any non-loopback address.
    #[arg(long, env = "SFU_API_KEY", value_name = "KEY", global = true)]
    pub api_key: Option<String>,

    /// API secret that signs access tokens (HS256, at least 32 bytes). Prefer
    /// the environment variable or the file: a flag shows in the process
    /// list.
    #[arg(
        long,
        env = "SFU_API_SECRET",
        value_name = "SECRET",
        hide_env_values = true,
        global = true
    )]
    pub api_secret: Option<Secret>,

    /// Log format: human-readable text, or one JSON object per line.
    #[arg(long, env = "SFU_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log filter in tracing's EnvFilter syntax, e.g. "info" or
    /// "info,signaling=debug". Logs go to stderr.
    #[arg(long, env = "SFU_LOG", value_name = "FILTER", default_value = "info")]
    pub log: String,

    /// Seconds between WebSocket pings the server sends to each client.
    #[arg(
        long,
        env = "SFU_PING_INTERVAL_SECS",
        value_name = "SECS",
        default_value_t = 5
    )]
    pub ping_interval_secs: u64,

    /// Seconds a client may stay silent (pongs included) before its
    /// connection is closed and it leaves its room.
    #[arg(
        long,
        env = "SFU_PING_TIMEOUT_SECS",
        value_name = "SECS",
        default_value_t = 15
    )]
    pub ping_timeout_secs: u64,

    /// Seconds a participant whose signaling connection dropped (without a
    /// `leave`) is kept, media flowing, so that it can reconnect and resume
    /// its session and MLS log position. 0 removes it at once.
    #[arg(
        long,
        env = "SFU_RESUME_GRACE_SECS",
        value_name = "SECS",
        default_value_t = 15
    )]
    pub resume_grace_secs: u64,

    /// Media worker threads (shards), each with its own UDP port and its own
    /// rooms; 0 means one per available CPU core. At most 256.
    #[arg(long, env = "SFU_SHARDS", value_name = "N", default_value_t = 0)]
    pub shards: usize,

    /// Pin media shard i to CPU i (counted among the CPUs the process may
    /// use, wrapping around). A failure to pin is logged, never fatal.
    #[arg(
        long,
        env = "SFU_PIN_SHARDS",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = false,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub pin_shards: bool,

    /// Most participants one room may hold; further joins are refused.
    #[arg(
        long,
        env = "SFU_MAX_PARTICIPANTS_PER_ROOM",
        value_name = "N",
        default_value_t = 1000
    )]
    pub max_participants_per_room: usize,

    /// RTP packets each outgoing (subscriber) stream keeps for answering
    /// NACKs with retransmissions.
    #[arg(
        long,
        env = "SFU_RTX_CACHE_PACKETS",
        value_name = "N",
        default_value_t = 1024
    )]
    pub rtx_cache_packets: usize,

    /// Milliseconds each outgoing (subscriber) stream keeps a packet for
    /// answering NACKs; a packet leaves the cache at this age or when
    /// --rtx-cache-packets newer ones have been sent, whichever comes first
    /// (1 to 60000).
    #[arg(
        long,
        env = "SFU_RTX_CACHE_MS",
        value_name = "MS",
        default_value_t = DEFAULT_RTX_CACHE_MS
    )]
    pub rtx_cache_ms: u64,

    /// Least time in milliseconds between two keyframe requests (PLI/FIR)
    /// sent to one publisher's stream; subscriber requests in between are
    /// merged.
    #[arg(
        long,
        env = "SFU_KEYFRAME_MIN_INTERVAL_MS",
        value_name = "MS",
        default_value_t = 500
    )]
    pub keyframe_min_interval_ms: u64,

    /// Seconds without ICE connectivity (or consent) after which a
    /// participant's media times out and it is removed.
    #[arg(
        long,
        env = "SFU_ICE_TIMEOUT_SECS",
        value_name = "SECS",
        default_value_t = 10
    )]
    pub ice_timeout_secs: u64,

    /// Seconds to wait on SIGINT/SIGTERM for open requests and connections to
    /// finish before the server exits anyway.
    #[arg(
        long,
        env = "SFU_SHUTDOWN_TIMEOUT_SECS",
        value_name = "SECS",
        default_value_t = 10
    )]
    pub shutdown_timeout_secs: u64,

    /// UDP generic segmentation offload on the media socket: `auto` sends runs
    /// of same-size datagrams to one address as one system call where the
    /// kernel supports it (and falls back to plain sends where it does not);
    /// `off` never uses it.
    #[arg(long, env = "SFU_MEDIA_GSO", value_enum, default_value_t = GsoMode::Auto)]
    pub media_gso: GsoMode,

    /// Datagrams read per recvmmsg call and messages written per sendmmsg
    /// call on the media socket (1 to 128).
    #[arg(
        long,
        env = "SFU_MEDIA_IO_BATCH",
        value_name = "N",
        default_value_t = 32
    )]
    pub media_io_batch: usize,

    /// Outgoing datagrams the media shard queues before it writes them out;
    /// bounds the delay batching adds (at least --media-io-batch, at most
    /// 4096).
    #[arg(
        long,
        env = "SFU_MEDIA_SEND_QUEUE",
        value_name = "N",
        default_value_t = 256
    )]
    pub media_send_queue: usize,

    /// Size asked for the media socket's kernel receive and send buffers
    /// (SO_RCVBUF/SO_SNDBUF), in bytes; the kernel caps it at
    /// net.core.rmem_max/wmem_max. 0 keeps the system default.
    #[arg(
        long,
        env = "SFU_MEDIA_SOCKET_BUFFER_BYTES",
        value_name = "BYTES",
        default_value_t = DEFAULT_MEDIA_SOCKET_BUFFER
    )]
    pub media_socket_buffer_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_bind: DEFAULT_HTTP_BIND,
            media_bind: DEFAULT_MEDIA_BIND,
            media_public_ip: None,
            api_key: None,
            api_secret: None,
            log_format: LogFormat::Text,
            log: "info".into(),
            ping_interval_secs: 5,
            ping_timeout_secs: 15,
            resume_grace_secs: 15,
            shards: 0,
            pin_shards: false,
            max_participants_per_room: 1000,
            rtx_cache_packets: 1024,
            rtx_cache_ms: DEFAULT_RTX_CACHE_MS,
            keyframe_min_interval_ms: 500,
            ice_timeout_secs: 10,
            shutdown_timeout_secs: 10,
            media_gso: GsoMode::Auto,
            media_io_batch: 32,
            media_send_queue: 256,
            media_socket_buffer_bytes: DEFAULT_MEDIA_SOCKET_BUFFER,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same fields as the TOML form; the secret is redacted by `Secret`.
        let mut d = f.debug_struct("Config");
        d.field("http_bind", &self.http_bind)
            .field("media_bind", &self.media_bind)
            .field("media_public_ip", &self.media_public_ip)
            .field("api_key", &self.api_key)
            .field("api_secret", &self.api_secret)
            .field("log_format", &self.log_format)
            .field("log", &self.log)
            .field("ping_interval_secs", &self.ping_interval_secs)
            .field("ping_timeout_secs", &self.ping_timeout_secs)
            .field("resume_grace_secs", &self.resume_grace_secs)
            .field("shards", &self.shards)
            .field("pin_shards", &self.pin_shards)
            .field("max_participants_per_room", &self.max_participants_per_room)
            .field("rtx_cache_packets", &self.rtx_cache_packets)
            .field("rtx_cache_ms", &self.rtx_cache_ms)
            .field("keyframe_min_interval_ms", &self.keyframe_min_interval_ms)
            .field("ice_timeout_secs", &self.ice_timeout_secs)
            .field("shutdown_timeout_secs", &self.shutdown_timeout_secs)
            .field("media_gso", &self.media_gso)
            .field("media_io_batch", &self.media_io_batch)
            .field("media_send_queue", &self.media_send_queue)
            .field("media_socket_buffer_bytes", &self.media_socket_buffer_bytes)
            .finish()
    }
}

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

/// Where the token keys came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `api_key` and `api_secret` were configured.
    Configured,
    /// Neither was: the public development pair is in use.
    Development,
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
    /// Some other setting is out of range or inconsistent.
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// Why.
        reason: String,
    },
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

/// The config file: the same keys as [`Config`], all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    http_bind: Option<SocketAddr>,
    media_bind: Option<SocketAddr>,
    media_public_ip: Option<IpAddr>,
    api_key: Option<String>,
    api_secret: Option<Secret>,
    log_format: Option<LogFormat>,
    log: Option<String>,
    ping_interval_secs: Option<u64>,
    ping_timeout_secs: Option<u64>,
    resume_grace_secs: Option<u64>,
    shards: Option<usize>,
    pin_shards: Option<bool>,
    max_participants_per_room: Option<usize>,
    rtx_cache_packets: Option<usize>,
    rtx_cache_ms: Option<u64>,
    keyframe_min_interval_ms: Option<u64>,
    ice_timeout_secs: Option<u64>,
    shutdown_timeout_secs: Option<u64>,
    media_gso: Option<GsoMode>,
    media_io_batch: Option<usize>,
    media_send_queue: Option<usize>,
    media_socket_buffer_bytes: Option<usize>,
}

/// True if the user set `id` by flag or environment variable, which beat
/// the file.
fn set_explicitly(matches: &ArgMatches, id: &str) -> bool {
    matches!(
        matches.value_source(id),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

impl Config {
    /// Both addresses on 127.0.0.1 port 0 (the OS picks free ports) and one
    /// media shard; every other setting at its default. For tests.
    pub fn loopback_ephemeral() -> Self {
        let any = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
        Self {
            http_bind: any,
            media_bind: any,
            shards: 1,
            ..Self::default()
        }
    }

    /// Reads the TOML file at `path` and takes from it every setting the
    /// user did not give by flag or environment variable (per `matches`,
    /// the matches `self` was parsed from).
    pub(crate) fn apply_file(
        &mut self,
        path: &Path,
        matches: &ArgMatches,
    ) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file: FileConfig = toml::from_str(&text).map_err(|source| ConfigError::Toml {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        self.merge_file(file, matches);
        Ok(())
    }

    fn merge_file(&mut self, file: FileConfig, matches: &ArgMatches) {
        // Destructured so a new field fails to compile until it is merged.
        let FileConfig {
            http_bind,
            media_bind,
            media_public_ip,
            api_key,
            api_secret,
            log_format,
            log,
            ping_interval_secs,
            ping_timeout_secs,
            resume_grace_secs,
            shards,
            pin_shards,
            max_participants_per_room,
            rtx_cache_packets,
            rtx_cache_ms,
            keyframe_min_interval_ms,
            ice_timeout_secs,
            shutdown_timeout_secs,
            media_gso,
            media_io_batch,
            media_send_queue,
            media_socket_buffer_bytes,
        } = file;
        macro_rules! take {
            ($($field:ident),+ $(,)?) => {$(
                if let Some(v) = $field {
                    if !set_explicitly(matches, stringify!($field)) {
                        self.$field = v;
                    }
                }
            )+};
        }
        macro_rules! take_opt {
            ($($field:ident),+ $(,)?) => {$(
                if let Some(v) = $field {
                    if !set_explicitly(matches, stringify!($field)) {
                        self.$field = Some(v);
                    }
                }
            )+};
        }
        take!(
            http_bind,
            media_bind,
            log_format,
            log,
            ping_interval_secs,
            ping_timeout_secs,
            resume_grace_secs,
            shards,
            pin_shards,
            max_participants_per_room,
            rtx_cache_packets,
            rtx_cache_ms,
            keyframe_min_interval_ms,
            ice_timeout_secs,
            shutdown_timeout_secs,
            media_gso,
            media_io_batch,
            media_send_queue,
            media_socket_buffer_bytes,
        );
        take_opt!(media_public_ip, api_key, api_secret);
    }

    /// How many media shards to run: `shards`, or one per CPU core the
    /// process may use when it is 0 (capped at [`MAX_SHARDS`]).
    ///
    /// ```
    /// use sfu::config::Config;
    /// let mut config = Config::default();
    /// config.shards = 3;
    /// assert_eq!(config.effective_shards(), 3);
    /// config.shards = 0;
    /// assert!(config.effective_shards() >= 1);
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

    /// The IP address put in ICE candidates: `media_public_ip`, or else the
    /// IP of `media_bind`.
    pub fn media_public_ip(&self) -> IpAddr {
        self.media_public_ip.unwrap_or(self.media_bind.ip())
    }

    /// Interval between WebSocket pings.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.ping_interval_secs)
    }

    /// Silence after which a WebSocket connection is closed.
    pub fn ping_timeout(&self) -> Duration {
        Duration::from_secs(self.ping_timeout_secs)
    }

    /// [`Self::resume_grace_secs`] as a duration.
    pub fn resume_grace(&self) -> Duration {
        Duration::from_secs(self.resume_grace_secs)
    }

    /// Least time between keyframe requests to one publisher stream.
    pub fn keyframe_min_interval(&self) -> Duration {
        Duration::from_millis(self.keyframe_min_interval_ms)
    }

    /// How long a sent packet stays answerable to NACKs
    /// ([`Self::rtx_cache_ms`]).
    pub fn rtx_cache_age(&self) -> Duration {
        Duration::from_millis(self.rtx_cache_ms)
    }

    /// ICE connectivity timeout.
    pub fn ice_timeout(&self) -> Duration {
        Duration::from_secs(self.ice_timeout_secs)
    }

    /// How long shutdown waits for connections to drain.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// The keys that mint and verify tokens: the configured pair, or the
    /// public development pair when neither half is set. Giving only one
    /// half, or a secret shorter than [`MIN_SECRET_BYTES`], is an error.
    pub fn token_keys(&self) -> Result<(TokenKeys, KeySource), ConfigError> {
        match (&self.api_key, &self.api_secret) {
            (None, None) => Ok((
                TokenKeys::new(DEV_API_KEY, DEV_API_SECRET),
                KeySource::Development,
            )),
            (Some(key), Some(secret)) => {
                if key.is_empty() {
                    return Err(invalid("api_key", "must not be empty"));
                }
                if secret.expose().len() < MIN_SECRET_BYTES {
                    return Err(invalid(
                        "api_secret",
                        format!("must be at least {MIN_SECRET_BYTES} bytes long"),
                    ));
                }
                Ok((TokenKeys::new(key, secret.expose()), KeySource::Configured))
            }
            (Some(_), None) => Err(invalid(
                "api_secret",
                "api_key is set but api_secret is not; set both or neither",
            )),
            (None, Some(_)) => Err(invalid(
                "api_key",
                "api_secret is set but api_key is not; set both or neither",
            )),
        }
    }

    /// Checks every setting, including the development-key rule: with the
    /// public development pair, `http_bind`, `media_bind` and
    /// `media_public_ip` must all be loopback addresses. Returns the token
    /// keys to use.
    ///
    /// ```
    /// use sfu::config::{Config, ConfigError, KeySource};
    /// let mut config = Config::default();
    /// assert_eq!(config.validate().unwrap().1, KeySource::Development);
    /// config.http_bind = "0.0.0.0:7880".parse().unwrap();
    /// assert!(matches!(config.validate(), Err(ConfigError::DevKeyOnNonLoopback { .. })));
    /// ```
    pub fn validate(&self) -> Result<(TokenKeys, KeySource), ConfigError> {
        let (keys, source) = self.token_keys()?;
        if source == KeySource::Development {
            let addrs = [
                ("http_bind", self.http_bind.ip()),
                ("media_bind", self.media_bind.ip()),
                ("media_public_ip", self.media_public_ip()),
            ];
            if let Some((setting, addr)) = addrs.into_iter().find(|(_, ip)| !ip.is_loopback()) {
                return Err(ConfigError::DevKeyOnNonLoopback { setting, addr });
            }
        }
        if self.media_public_ip().is_unspecified() {
            return Err(invalid(
                "media_public_ip",
                format!(
                    "media_bind is {}, which clients cannot send to; set the address they \
                     should use",
                    self.media_bind
                ),
            ));
        }
        if self.shards > MAX_SHARDS {
            return Err(invalid(
                "shards",
                format!("must be at most {MAX_SHARDS} (0 means one per CPU core)"),
            ));
        }
        let port = self.media_bind.port();
        let last = usize::from(port) + self.effective_shards() - 1;
        if port != 0 && last > usize::from(u16::MAX) {
            return Err(invalid(
                "media_bind",
                format!(
                    "shard i binds port {port} + i, and {} shards need ports up to {last}, \
                     past 65535; lower the port or the shards",
                    self.effective_shards()
                ),
            ));
        }
        if self.max_participants_per_room == 0 {
            return Err(invalid("max_participants_per_room", "must be at least 1"));
        }
        if self.rtx_cache_packets == 0 {
            return Err(invalid("rtx_cache_packets", "must be at least 1"));
        }
        if !(1..=MAX_RTX_CACHE_MS).contains(&self.rtx_cache_ms) {
            return Err(invalid(
                "rtx_cache_ms",
                format!("must be between 1 and {MAX_RTX_CACHE_MS} milliseconds"),
            ));
        }
        if self.ice_timeout_secs == 0 {
            return Err(invalid("ice_timeout_secs", "must be at least 1"));
        }
        if !(1..=MAX_MEDIA_IO_BATCH).contains(&self.media_io_batch) {
            return Err(invalid(
                "media_io_batch",
                format!("must be between 1 and {MAX_MEDIA_IO_BATCH}"),
            ));
        }
        if !(self.media_io_batch..=MAX_MEDIA_SEND_QUEUE).contains(&self.media_send_queue) {
            return Err(invalid(
                "media_send_queue",
                format!(
                    "must be between media_io_batch ({}) and {MAX_MEDIA_SEND_QUEUE}",
                    self.media_io_batch
                ),
            ));
        }
        if self.ping_interval_secs == 0 {
            return Err(invalid("ping_interval_secs", "must be at least 1"));
        }
        if self.ping_timeout_secs <= self.ping_interval_secs {
            return Err(invalid(
                "ping_timeout_secs",
                format!(
                    "must be longer than ping_interval_secs ({})",
                    self.ping_interval_secs
                ),
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log)
            .map_err(|e| invalid("log", format!("{:?} is not a valid filter: {e}", self.log)))?;
        Ok((keys, source))
    }

    /// The effective configuration as TOML, with the secret redacted. The
    /// output is a valid config file.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, load_from};
    use clap::CommandFactory;
    use std::io::Write;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    type Edit = fn(&mut Config);

    fn with_keys() -> Config {
        Config {
            api_key: Some("k".into()),
            api_secret: Some(SECRET.into()),
            ..Config::default()
        }
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    fn load(args: &[&str]) -> Config {
        let mut argv = vec!["sfu"];
        argv.extend_from_slice(args);
        load_from(argv).expect("config loads").0
    }

    #[test]
    fn defaults_match_the_parsed_defaults() {
        assert_eq!(load(&[]), Config::default());
        let c = Config::default();
        assert_eq!(c.http_bind.to_string(), "127.0.0.1:7880");
        assert_eq!(c.media_bind.to_string(), "127.0.0.1:7882");
        assert_eq!(c.media_public_ip(), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.rtx_cache_packets, 1024);
        assert_eq!(c.rtx_cache_ms, 3000);
        assert_eq!(c.keyframe_min_interval_ms, 500);
        assert_eq!(c.ice_timeout_secs, 10);
        assert_eq!(c.shards, 0, "one per core");
        assert!(!c.pin_shards);
        assert_eq!(Config::loopback_ephemeral().shards, 1);
        assert_eq!(c.log, "info");
        assert_eq!(c.media_gso, GsoMode::Auto);
        assert_eq!(c.media_io_batch, 32);
        assert_eq!(c.media_send_queue, 256);
        assert_eq!(c.media_socket_buffer_bytes, 4 * 1024 * 1024);
    }

    #[test]
    fn file_beats_default_and_flag_beats_file() {
        let f = file("shards = 3\nrtx_cache_packets = 77\nrtx_cache_ms = 1500\nlog = \"debug\"\n");
        let path = f.path().to_str().expect("utf-8 path");
        let c = load(&["--config", path, "--shards", "5"]);
        assert_eq!(c.shards, 5, "flag beats file");
        assert_eq!(c.rtx_cache_packets, 77, "file beats default");
        assert_eq!(c.rtx_cache_ms, 1500, "file beats default");
        assert_eq!(c.rtx_cache_age(), Duration::from_millis(1500));
        assert_eq!(c.log, "debug");
        assert_eq!(c.ice_timeout_secs, 10, "default stays");
        // --config after the flags, and `--flag=value` form.
        let c = load(&["--shards=6", "--config", path]);
        assert_eq!(c.shards, 6);
    }

    /// Every setting in the file, each with a non-default value, gives the
    /// same config as the same settings by flag. Guards the field lists.
    #[test]
    fn every_setting_is_read_from_the_file() {
        let settings: &[(&str, &str)] = &[
            ("http_bind", "\"127.0.0.2:1000\""),
            ("media_bind", "\"127.0.0.3:1001\""),
            ("media_public_ip", "\"127.0.0.4\""),
            ("api_key", "\"k1\""),
            ("api_secret", "\"0123456789abcdef0123456789abcdef\""),
            ("log_format", "\"json\""),
            ("log", "\"warn\""),
            ("ping_interval_secs", "7"),
            ("ping_timeout_secs", "21"),
            ("resume_grace_secs", "5"),
            ("shards", "2"),
            ("pin_shards", "true"),
            ("max_participants_per_room", "9"),
            ("rtx_cache_packets", "99"),
            ("rtx_cache_ms", "750"),
            ("keyframe_min_interval_ms", "250"),
            ("ice_timeout_secs", "4"),
            ("shutdown_timeout_secs", "3"),
            ("media_gso", "\"off\""),
            ("media_io_batch", "16"),
            ("media_send_queue", "64"),
            ("media_socket_buffer_bytes", "1048576"),
        ];
        // Every config argument appears in the list above.
        let cmd = Cli::command();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "config" | "check_config" | "help" | "version") {
                continue;
            }
            assert!(
                settings.iter().any(|(k, _)| *k == id),
                "setting {id} missing from this test"
            );
        }
        let toml: String = settings
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        let f = file(&toml);
        let from_file = load(&["--config", f.path().to_str().expect("utf-8 path")]);

        let flags: Vec<String> = settings
            .iter()
            .map(|(k, v)| format!("--{}={}", k.replace('_', "-"), v.trim_matches('"')))
            .collect();
        let mut argv = vec!["sfu".to_string()];
        argv.extend(flags);
        let from_flags = load_from(argv).expect("flags parse").0;
        assert_eq!(from_file, from_flags);
        assert_ne!(from_file, Config::default());
        assert_eq!(
            from_file.api_secret.as_ref().map(Secret::expose),
            Some(SECRET)
        );
    }

    #[test]
    fn toml_errors_name_the_file_and_the_problem() {
        let f = file("shards = \"many\"\n");
        let err = load_from(["sfu", "--config", f.path().to_str().expect("utf-8")])
            .expect_err("bad type");
        let msg = err.to_string();
        assert!(msg.contains("invalid config file"), "{msg}");
        assert!(msg.contains(&f.path().display().to_string()), "{msg}");
        assert!(msg.contains("shards"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");

        let f = file("http_bnd = \"127.0.0.1:1\"\n");
        let msg = load_from(["sfu", "--config", f.path().to_str().expect("utf-8")])
            .expect_err("unknown key")
            .to_string();
        assert!(msg.contains("http_bnd"), "{msg}");

        let f = file("shards = \n");
        let msg = load_from(["sfu", "--config", f.path().to_str().expect("utf-8")])
            .expect_err("syntax")
            .to_string();
        assert!(msg.contains("invalid config file"), "{msg}");

        let msg = load_from(["sfu", "--config", "/nonexistent/sfu.toml"])
            .expect_err("missing file")
            .to_string();
        assert!(
            msg.contains("cannot read config file /nonexistent/sfu.toml"),
            "{msg}"
        );
    }

    #[test]
    fn dev_key_is_refused_off_loopback() {
        let mut c = Config::default();
        assert_eq!(c.validate().expect("loopback ok").1, KeySource::Development);

        for (setting, edit) in [
            (
                "http_bind",
                (|c: &mut Config| c.http_bind = "0.0.0.0:7880".parse().expect("addr")) as Edit,
            ),
            ("media_bind", |c| {
                c.media_bind = "192.0.2.1:7882".parse().expect("addr");
                c.media_public_ip = Some(IpAddr::from([127, 0, 0, 1]));
            }),
            ("media_public_ip", |c| {
                c.media_public_ip = Some(IpAddr::from([203, 0, 113, 5]))
            }),
            ("http_bind", |c| {
                c.http_bind = "[::]:7880".parse().expect("addr")
            }),
        ] {
            let mut c = Config::default();
            edit(&mut c);
            match c.validate() {
                Err(ConfigError::DevKeyOnNonLoopback { setting: s, .. }) => assert_eq!(s, setting),
                other => panic!("{setting}: expected refusal, got {other:?}"),
            }
            let msg = c.validate().expect_err("refused").to_string();
            assert!(msg.contains("not a loopback address"), "{msg}");

            // With real keys the same addresses are fine.
            c.api_key = Some("prod".into());
            c.api_secret = Some(SECRET.into());
            if c.media_public_ip().is_unspecified() {
                c.media_public_ip = Some(IpAddr::from([203, 0, 113, 5]));
            }
            assert_eq!(c.validate().expect("keys set").1, KeySource::Configured);
        }

        // IPv6 loopback is loopback.
        c.http_bind = "[::1]:7880".parse().expect("addr");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn key_pair_must_be_complete_and_strong() {
        let mut c = Config {
            api_key: Some("k".into()),
            ..Config::default()
        };
        assert!(matches!(
            c.token_keys(),
            Err(ConfigError::Invalid {
                setting: "api_secret",
                ..
            })
        ));
        c.api_secret = Some("short".into());
        assert!(matches!(
            c.token_keys(),
            Err(ConfigError::Invalid {
                setting: "api_secret",
                ..
            })
        ));
        c.api_key = None;
        assert!(matches!(
            c.token_keys(),
            Err(ConfigError::Invalid {
                setting: "api_key",
                ..
            })
        ));
    }

    #[test]
    fn other_settings_are_range_checked() {
        let cases: [(&str, Edit); 13] = [
            ("shards", |c| c.shards = MAX_SHARDS + 1),
            ("media_bind", |c| {
                c.media_bind = "127.0.0.1:65535".parse().expect("addr");
                c.shards = 2;
            }),
            ("media_io_batch", |c| c.media_io_batch = 0),
            ("media_io_batch", |c| {
                c.media_io_batch = MAX_MEDIA_IO_BATCH + 1
            }),
            ("media_send_queue", |c| {
                c.media_send_queue = c.media_io_batch - 1
            }),
            ("media_send_queue", |c| {
                c.media_send_queue = MAX_MEDIA_SEND_QUEUE + 1
            }),
            ("rtx_cache_packets", |c| c.rtx_cache_packets = 0),
            ("rtx_cache_ms", |c| c.rtx_cache_ms = 0),
            ("rtx_cache_ms", |c| c.rtx_cache_ms = MAX_RTX_CACHE_MS + 1),
            ("ice_timeout_secs", |c| c.ice_timeout_secs = 0),
            ("ping_timeout_secs", |c| {
                c.ping_timeout_secs = c.ping_interval_secs
            }),
            ("max_participants_per_room", |c| {
                c.max_participants_per_room = 0
            }),
            ("log", |c| c.log = "info,=[".into()),
        ];
        for (setting, edit) in cases {
            let mut c = Config::default();
            edit(&mut c);
            match c.validate() {
                Err(ConfigError::Invalid { setting: s, .. }) => assert_eq!(s, setting),
                other => panic!("{setting}: expected invalid, got {other:?}"),
            }
        }
        let mut c = with_keys();
        c.media_bind = "0.0.0.0:7882".parse().expect("addr");
        assert!(matches!(
            c.validate(),
            Err(ConfigError::Invalid {
                setting: "media_public_ip",
                ..
            })
        ));
    }

    #[test]
    fn rtx_cache_ms_defaults_to_the_media_plane_default_and_is_bounded() {
        // The default must not change what the media plane did before the
        // setting existed.
        let media = sfu_core::MediaConfig::new(DEFAULT_MEDIA_BIND);
        assert_eq!(Config::default().rtx_cache_age(), media.rtx_cache_age);

        for ok in [1, DEFAULT_RTX_CACHE_MS, MAX_RTX_CACHE_MS] {
            let c = Config {
                rtx_cache_ms: ok,
                ..Config::default()
            };
            assert!(c.validate().is_ok(), "{ok} ms");
        }
        let c = Config {
            rtx_cache_ms: 0,
            ..Config::default()
        };
        let msg = c.validate().expect_err("0 ms").to_string();
        assert!(msg.contains("rtx_cache_ms"), "{msg}");
        assert!(msg.contains("between 1 and 60000"), "{msg}");

        // Flag beats file (the environment is covered by tests/cli.rs,
        // which runs the binary).
        let f = file("rtx_cache_ms = 1200\n");
        let path = f.path().to_str().expect("utf-8 path");
        assert_eq!(load(&["--config", path]).rtx_cache_ms, 1200);
        assert_eq!(
            load(&["--config", path, "--rtx-cache-ms", "900"]).rtx_cache_ms,
            900
        );
        assert_eq!(
            load(&["--config", path, "--rtx-cache-ms=800"]).rtx_cache_age(),
            Duration::from_millis(800)
        );
        // A negative or non-numeric value is a parse error, not a wrap.
        assert!(load_from(["sfu", "--rtx-cache-ms", "-1"]).is_err());
        assert!(load_from(["sfu", "--rtx-cache-ms", "3s"]).is_err());
    }

    #[test]
    fn shards_default_to_one_per_core_and_their_ports_must_fit() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(Config::default().effective_shards(), cores.min(MAX_SHARDS));
        let c = Config {
            shards: 4,
            ..Config::default()
        };
        assert_eq!(c.effective_shards(), 4);

        // Shard i binds port + i: 65534 leaves room for two shards, not
        // three; port 0 (one free port each) always fits.
        let mut c = Config {
            media_bind: "127.0.0.1:65534".parse().expect("addr"),
            shards: 2,
            ..Config::default()
        };
        assert!(c.validate().is_ok());
        c.shards = 3;
        let msg = c.validate().expect_err("past 65535").to_string();
        assert!(msg.contains("media_bind") && msg.contains("65536"), "{msg}");
        c.media_bind = "127.0.0.1:0".parse().expect("addr");
        c.shards = MAX_SHARDS;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn pin_shards_is_a_flag_with_an_optional_value() {
        assert!(load(&["--pin-shards"]).pin_shards);
        assert!(load(&["--pin-shards=true"]).pin_shards);
        assert!(!load(&["--pin-shards=false"]).pin_shards);
        assert!(!load(&[]).pin_shards);
        // The value must be attached, so a following subcommand is not
        // taken for it.
        let (c, action) = load_from(["sfu", "--pin-shards", "token", "--admin", "--identity", "i"])
            .expect("parses");
        assert!(c.pin_shards);
        assert!(matches!(action, crate::cli::Action::Run(_)));
        let f = file("pin_shards = true\n");
        assert!(load(&["--config", f.path().to_str().expect("utf-8")]).pin_shards);
    }

    #[test]
    fn secrets_never_print() {
        let c = with_keys();
        assert!(!format!("{c:?}").contains(SECRET));
        let toml = c.to_toml();
        assert!(!toml.contains(SECRET), "{toml}");
        assert!(toml.contains("api_secret = \"<redacted>\""), "{toml}");
        // The printed form (without the secret) is itself a valid file.
        let f = file(&toml.replace("<redacted>", SECRET));
        let back = load(&["--config", f.path().to_str().expect("utf-8")]);
        assert_eq!(back, c);
    }

    #[test]
    fn help_mentions_every_setting_and_the_precedence() {
        let help = Cli::command().render_long_help().to_string();
        for arg in Cli::command().get_arguments() {
            if let Some(long) = arg.get_long() {
                assert!(help.contains(&format!("--{long}")), "--{long} missing");
            }
            if let Some(env) = arg.get_env() {
                let env = env.to_str().expect("ascii");
                assert!(help.contains(env), "{env} missing");
            }
        }
        for id in [
            "http_bind",
            "media_bind",
            "media_public_ip",
            "api_key",
            "api_secret",
        ] {
            let flag = format!("--{}", id.replace('_', "-"));
            assert!(help.contains(&flag), "{flag} missing");
        }
        assert!(help.contains("Precedence"), "{help}");
    }
}
