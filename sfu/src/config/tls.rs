//! The HTTP listener's TLS certificate and key: with both set it serves
//! HTTPS and WSS instead of HTTP and WS, on the same port.

use super::ConfigError;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The certificate chain and private key of the HTTP listener.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[command(next_help_heading = "TLS")]
#[serde(default)]
#[non_exhaustive]
pub struct Tls {
    /// PEM file with the server's certificate chain, the server's own
    /// certificate first. Given together with --tls-key, the HTTP port
    /// serves HTTPS and WSS only. Reloaded on SIGHUP and when the file
    /// changes.
    #[arg(long, env = "SFU_TLS_CERT", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the private key of --tls-cert (PKCS#8, RSA or SEC1).
    /// Reloaded with it.
    #[arg(long, env = "SFU_TLS_KEY", value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

impl Tls {
    /// The certificate and key files when both are set, `None` when
    /// neither is; one without the other is an error. The files are read
    /// by [`crate::tls::Tls::load`], not here.
    ///
    /// ```
    /// use sfu::config::Config;
    /// let mut config = Config::default();
    /// assert_eq!(config.tls.files().unwrap(), None);
    /// config.tls.tls_cert = Some("cert.pem".into());
    /// assert!(config.tls.files().unwrap_err().to_string().contains("tls_key"));
    /// ```
    pub fn files(&self) -> Result<Option<(&Path, &Path)>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (Some(_), None) => Err(ConfigError::Invalid {
                setting: "tls_key",
                reason: "tls_cert is set but tls_key is not; set both or neither".into(),
            }),
            (None, Some(_)) => Err(ConfigError::Invalid {
                setting: "tls_cert",
                reason: "tls_key is set but tls_cert is not; set both or neither".into(),
            }),
        }
    }
}
