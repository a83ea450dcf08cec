//! TLS on the HTTP port: HTTPS and WSS with the certificate chain and key
//! of `tls_cert` and `tls_key`, replaced without a restart.
//!
//! [`Tls`] holds the pair in use. Every TLS handshake asks it for the
//! current pair, so a [`Tls::reload`] that succeeds is what the next
//! handshake sees, while connections already open keep the session they
//! negotiated. A reload that fails keeps the pair in use, logs a warning
//! and counts it. [`watch`] reloads on SIGHUP and when either file
//! changes.
//!
//! The crypto is rustls with the aws-lc-rs provider, the one the media
//! plane's DTLS already links.
//!
//! ```no_run
//! # fn main() -> Result<(), sfu::tls::TlsError> {
//! let tls = sfu::tls::Tls::load("cert.pem".as_ref(), "key.pem".as_ref())?;
//! // ... serve with tls.acceptor(); later, after renewing the files:
//! tls.reload()?;
//! # Ok(()) }
//! ```

mod load;
mod watch;

pub use load::{MAX_PEM_FILE_BYTES, TlsError};
pub use watch::{POLL_INTERVAL, ignore_hangup, watch};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;

/// The HTTP listener's TLS: the files, the pair loaded from them, and the
/// counters on `/metrics`.
#[derive(Debug)]
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
    config: Arc<ServerConfig>,
    stats: TlsStats,
}

/// The pair new handshakes get. A lock rather than a lock-free cell: it
/// is read once per handshake and written once per reload.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

#[derive(Debug, Default)]
struct TlsStats {
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    handshake_errors: AtomicU64,
}

impl Tls {
    /// Loads the chain in `cert` and the key in `key`, checking that they
    /// are a pair. The error names the file and what is wrong with it.
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let pair = load::certified_key(cert, key, &provider)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(pair))));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Library)?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // HTTP/1.1 only: the server speaks nothing else, and WebSocket
        // upgrades need it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        tracing::info!(cert = %cert.display(), key = %key.display(), "TLS certificate loaded");
        Ok(Arc::new(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current,
            config: Arc::new(config),
            stats: TlsStats::default(),
        }))
    }

    /// Reads the files again. If they hold a valid pair, new handshakes use
    /// it; if not, the pair in use stays, with a warning in the log. Either
    /// way it is counted. Open connections are not touched.
    pub fn reload(&self) -> Result<(), TlsError> {
        match load::certified_key(&self.cert, &self.key, &self.provider) {
            Ok(pair) => {
                *self.current.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
                self.stats.reloads_ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                Ok(())
            }
            Err(e) => {
                self.stats.reloads_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    error = %e,
                    "TLS certificate reload failed; still serving the previous certificate"
                );
                Err(e)
            }
        }
    }

    /// The certificate and key files.
    pub fn files(&self) -> (&Path, &Path) {
        (&self.cert, &self.key)
    }

    /// Runs the server side of a handshake with the current pair.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }

    /// Counts a handshake that failed (not a timeout: those are the HTTP
    /// header timeout's).
    pub fn handshake_failed(&self) {
        self.stats.handshake_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Appends the TLS metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let s = &self.stats;
        let _ = write!(
            out,
            "# HELP sfu_tls_reloads_total Reloads of the TLS certificate and key (SIGHUP or a file change).\n\
             # TYPE sfu_tls_reloads_total counter\n\
             sfu_tls_reloads_total{{result=\"ok\"}} {}\n\
             sfu_tls_reloads_total{{result=\"failed\"}} {}\n\
             # HELP sfu_tls_handshake_errors_total TLS handshakes that failed (not TLS, no common cipher, certificate refused by the client).\n\
             # TYPE sfu_tls_handshake_errors_total counter\n\
             sfu_tls_handshake_errors_total {}\n",
            load(&s.reloads_ok),
            load(&s.reloads_failed),
            load(&s.handshake_errors),
        );
    }
}
