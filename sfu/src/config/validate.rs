//! Checking the settings together: ranges, consistency, and the
//! development-key rule.

use super::{
    Auth, Config, ConfigError, MAX_MEDIA_IO_BATCH, MAX_MEDIA_SEND_QUEUE, MAX_RTX_CACHE_AGE,
    MAX_SHARDS, MIN_SECRET_BYTES, WeakSecret,
};
use signaling::token::{DEV_API_KEY, DEV_API_SECRET, TokenKeys};
use std::time::Duration;

/// Where the token keys came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// `api_key` and `api_secret` were configured.
    Configured,
    /// Neither was: the public development pair is in use.
    Development,
    /// Both were, but the secret is one anyone could guess.
    Weak(WeakSecret),
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

impl Config {
    /// Checks every setting, including the development-key rule: with the
    /// public development pair, or a configured secret that is weak or
    /// published ([`WeakSecret`]), `http_bind`, `media_bind` and
    /// `media_public_ip` must all be loopback addresses. Returns the token
    /// keys to use.
    ///
    /// ```
    /// use sfu::config::{Config, ConfigError, KeySource};
    /// let mut config = Config::default();
    /// assert_eq!(config.validate().unwrap().1, KeySource::Development);
    /// config.network.http_bind = "0.0.0.0:7880".parse().unwrap();
    /// assert!(matches!(config.validate(), Err(ConfigError::DevKeyOnNonLoopback { .. })));
    /// config.auth.api_key = Some("key".into());
    /// config.auth.api_secret = Some(" ".repeat(32).as_str().into());
    /// assert!(matches!(config.validate(), Err(ConfigError::WeakSecretOnNonLoopback { .. })));
    /// ```
    pub fn validate(&self) -> Result<(TokenKeys, KeySource), ConfigError> {
        let (keys, source) = self.auth.token_keys()?;
        let (net, media, limits) = (&self.network, &self.media, &self.limits);
        let addrs = [
            ("http_bind", net.http_bind.ip()),
            ("media_bind", net.media_bind.ip()),
            ("media_public_ip", net.media_public_ip()),
        ];
        let off_loopback = addrs.into_iter().find(|(_, ip)| !ip.is_loopback());
        match (source, off_loopback) {
            (KeySource::Development, Some((setting, addr))) => {
                return Err(ConfigError::DevKeyOnNonLoopback { setting, addr });
            }
            (KeySource::Weak(reason), Some((setting, addr))) => {
                return Err(ConfigError::WeakSecretOnNonLoopback {
                    reason,
                    setting,
                    addr,
                });
            }
            _ => {}
        }
        self.http.validate()?;
        self.tls.files()?;
        if net.media_public_ip().is_unspecified() {
            return Err(invalid(
                "media_public_ip",
                format!(
                    "media_bind is {}, which clients cannot send to; set the address they \
                     should use",
                    net.media_bind
                ),
            ));
        }
        if media.shards > MAX_SHARDS {
            return Err(invalid(
                "shards",
                format!("must be at most {MAX_SHARDS} (0 means one per CPU core)"),
            ));
        }
        let port = net.media_bind.port();
        let last = usize::from(port) + media.effective_shards() - 1;
        if port != 0 && last > usize::from(u16::MAX) {
            return Err(invalid(
                "media_bind",
                format!(
                    "shard i binds port {port} + i, and {} shards need ports up to {last}, \
                     past 65535; lower the port or the shards",
                    media.effective_shards()
                ),
            ));
        }
        if limits.max_participants_per_room == 0 {
            return Err(invalid("max_participants_per_room", "must be at least 1"));
        }
        if let Some(name) = limits.zero_cap() {
            return Err(invalid(name, "must be at least 1"));
        }
        if media.rtx_cache_packets == 0 {
            return Err(invalid("rtx_cache_packets", "must be at least 1"));
        }
        if !(Duration::from_millis(1)..=MAX_RTX_CACHE_AGE).contains(&media.rtx_cache_age) {
            return Err(invalid(
                "rtx_cache_age",
                format!(
                    "must be between 1ms and {}",
                    humantime::format_duration(MAX_RTX_CACHE_AGE)
                ),
            ));
        }
        if limits.ice_timeout.is_zero() {
            return Err(invalid("ice_timeout", "must not be zero"));
        }
        if !(1..=MAX_MEDIA_IO_BATCH).contains(&media.media_io_batch) {
            return Err(invalid(
                "media_io_batch",
                format!("must be between 1 and {MAX_MEDIA_IO_BATCH}"),
            ));
        }
        if !(media.media_io_batch..=MAX_MEDIA_SEND_QUEUE).contains(&media.media_send_queue) {
            return Err(invalid(
                "media_send_queue",
                format!(
                    "must be between media_io_batch ({}) and {MAX_MEDIA_SEND_QUEUE}",
                    media.media_io_batch
                ),
            ));
        }
        if limits.ping_interval.is_zero() {
            return Err(invalid("ping_interval", "must not be zero"));
        }
        if limits.ping_timeout <= limits.ping_interval {
            return Err(invalid(
                "ping_timeout",
                format!(
                    "must be longer than ping_interval ({})",
                    humantime::format_duration(limits.ping_interval)
                ),
            ));
        }
        let log = &self.logging.log;
        tracing_subscriber::EnvFilter::try_new(log)
            .map_err(|e| invalid("log", format!("{log:?} is not a valid filter: {e}")))?;
        Ok((keys, source))
    }
}

impl Auth {
    /// The keys that mint and verify tokens: the configured pair, or the
    /// public development pair when neither half is set, refusing tokens
    /// that live longer than `token_max_lifetime`. Giving only one half, a
    /// secret shorter than [`MIN_SECRET_BYTES`], or a zero lifetime is an
    /// error. A configured secret anyone could guess comes back as
    /// [`KeySource::Weak`].
    pub fn token_keys(&self) -> Result<(TokenKeys, KeySource), ConfigError> {
        if self.token_max_lifetime.as_secs() == 0 {
            return Err(invalid("token_max_lifetime", "must be at least 1s"));
        }
        let (keys, source) = self.key_pair()?;
        Ok((keys.with_max_lifetime(self.token_max_lifetime), source))
    }

    fn key_pair(&self) -> Result<(TokenKeys, KeySource), ConfigError> {
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
                let source = match WeakSecret::check(secret.expose()) {
                    Some(weak) => KeySource::Weak(weak),
                    None => KeySource::Configured,
                };
                Ok((TokenKeys::new(key, secret.expose()), source))
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
}

impl super::Http {
    /// Timeouts must not be zero, and each cap must admit a connection.
    fn validate(&self) -> Result<(), ConfigError> {
        let timeouts = [
            ("http_header_timeout", self.http_header_timeout),
            ("http_handshake_timeout", self.http_handshake_timeout),
            ("http_idle_timeout", self.http_idle_timeout),
        ];
        if let Some((setting, _)) = timeouts.into_iter().find(|(_, d)| d.is_zero()) {
            return Err(invalid(setting, "must not be zero"));
        }
        if let Err(e) = signaling::server::AllowedOrigins::new(&self.allowed_origins) {
            return Err(invalid("allowed_origins", e.to_string()));
        }
        if let Some(Err(e)) = self
            .app_token_endpoint
            .as_deref()
            .map(crate::app_api::check_endpoint)
        {
            return Err(invalid("app_token_endpoint", e.to_string()));
        }
        if self.http_max_connections == 0 {
            return Err(invalid("http_max_connections", "must be at least 1"));
        }
        if self.http_max_connections_per_address == 0 {
            return Err(invalid(
                "http_max_connections_per_address",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
