//! The `sfu` server: signaling on HTTP/WebSocket and media on UDP, one port
//! per media shard, in one process.
//!
//! [`run`] is what the binary does: [`start`] everything, then wait for
//! SIGINT/SIGTERM and shut down gracefully. Tests call [`start`] with
//! [`config::Config::loopback_ephemeral`] (one shard) and talk to
//! [`RunningServer::http_addr`] and [`RunningServer::media_addr`].
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> anyhow::Result<()> {
//! let server = sfu::start(sfu::config::Config::loopback_ephemeral()).await?;
//! println!("signaling on ws://{}/rtc", server.http_addr());
//! server.shutdown();
//! server.join().await
//! # }
//! ```
#![deny(missing_docs)]

pub mod app_api;
pub mod cert_cmd;
pub mod cli;
pub mod config;
pub mod fd_limit;
pub mod http;
pub mod logging;
pub mod media;
pub mod metrics;
pub mod ready;
pub mod shutdown;
pub mod tls;
pub mod token_cmd;
pub mod webapp;

use anyhow::Context as _;
use config::{Config, KeySource};
use media::MediaHandle;
use metrics::Metrics;
use shutdown::CancellationToken;
use signaling::server::{AllowedOrigins, Signaling, SignalingConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinHandle;

/// A server started by [`start`]. Dropping it without [`RunningServer::join`]
/// cancels everything without waiting.
#[derive(Debug)]
pub struct RunningServer {
    http_addr: SocketAddr,
    /// Every media shard's UDP address, shard 0 first; never empty.
    media_addrs: Vec<SocketAddr>,
    /// Cancelled to begin shutdown (signal or [`RunningServer::shutdown`]).
    shutdown: CancellationToken,
    /// Given to the media shell; cancelled once signaling has drained, so
    /// the `Leave`s of closing sessions still reach the media plane.
    media_shutdown: CancellationToken,
    signaling: Signaling,
    http: Option<JoinHandle<std::io::Result<()>>>,
    grace: Duration,
}

impl RunningServer {
    /// The bound HTTP/WebSocket address (the real port if 0 was asked).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Media shard 0's bound UDP address (the real port if 0 was asked).
    /// With one shard, the only media address.
    pub fn media_addr(&self) -> SocketAddr {
        self.media_addrs[0]
    }

    /// Every media shard's bound UDP address, shard i at index i. A room's
    /// participants send to its shard's address only.
    pub fn media_addrs(&self) -> &[SocketAddr] {
        &self.media_addrs
    }

    /// The token that, when cancelled, shuts the server down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Begins a graceful shutdown; [`RunningServer::join`] waits for it.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the server has stopped: after a shutdown began, for open
    /// requests and WebSocket sessions to close (at most the configured
    /// `shutdown_timeout`), then stops the media plane. Returns early
    /// with the error if the HTTP server fails on its own.
    pub async fn join(mut self) -> anyhow::Result<()> {
        let Some(mut http) = self.http.take() else {
            return Ok(());
        };
        let result = tokio::select! {
            // Shutdown first: once it is cancelled the HTTP task finishes at
            // once too, and an unbiased pick could mistake that for a crash.
            biased;
            () = self.shutdown.cancelled() => {
                let drain = async {
                    let r = flatten((&mut http).await);
                    self.signaling.wait_idle().await;
                    r
                };
                match tokio::time::timeout(self.grace, drain).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::warn!(
                            connections = self.signaling.connections(),
                            grace_secs = self.grace.as_secs(),
                            "connections still open after the shutdown timeout; closing them"
                        );
                        http.abort();
                        Ok(())
                    }
                }
            }
            r = &mut http => {
                // The server stopped without being asked: an error.
                self.shutdown.cancel();
                flatten(r).and_then(|()| Err(anyhow::anyhow!("HTTP server stopped unexpectedly")))
            }
        };
        self.media_shutdown.cancel();
        tracing::info!("stopped");
        result
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.media_shutdown.cancel();
        if let Some(http) = self.http.take() {
            http.abort();
        }
    }
}

fn flatten(r: Result<std::io::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    r.context("HTTP server task failed")?
        .context("HTTP server failed")
}

/// Validates `config`, binds the HTTP listener and the media socket, and
/// starts serving. Returns once both are bound. Logging is the caller's
/// business ([`logging::init`]).
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    start_with(config, media::spawn).await
}

/// [`start`] with the media shell's `spawn` as a parameter, so tests can put
/// a fake media plane behind the real HTTP side.
pub(crate) async fn start_with(
    config: Config,
    spawn_media: impl FnOnce(&Config, CancellationToken) -> anyhow::Result<MediaHandle>,
) -> anyhow::Result<RunningServer> {
    let (keys, key_source) = config.validate()?;
    match key_source {
        KeySource::Development => tracing::warn!(
            api_key = signaling::token::DEV_API_KEY,
            "NO API KEY/SECRET CONFIGURED: USING THE PUBLIC DEVELOPMENT KEY. Anyone can mint \
             tokens for this server. It is allowed on loopback only; set SFU_API_KEY and \
             SFU_API_SECRET for anything else."
        ),
        KeySource::Weak(why) => tracing::warn!(
            %why,
            "THE API SECRET IS GUESSABLE. Anyone who guesses it can mint tokens for this \
             server. It is allowed on loopback only; set SFU_API_SECRET to random bytes."
        ),
        KeySource::Configured => {}
    }
    let tls = match config.tls.files()? {
        Some((cert, key)) => Some(tls::Tls::load(cert, key)?),
        None => None,
    };
    let admission = http_admission(&config.http);

    let listener = tokio::net::TcpListener::bind(config.network.http_bind)
        .await
        .with_context(|| format!("cannot bind http_bind {}", config.network.http_bind))?;
    let http_addr = listener.local_addr()?;

    let shutdown = CancellationToken::new();
    let media_shutdown = CancellationToken::new();
    let media =
        spawn_media(&config, media_shutdown.clone()).context("cannot start the media plane")?;
    let MediaHandle {
        sink,
        local_addr,
        mut local_addrs,
        stats,
        io_stats,
        heartbeats,
    } = media;
    // `media_addrs()` promises at least one address.
    if local_addrs.is_empty() {
        local_addrs.push(local_addr);
    }

    let demo_keys = keys.clone();
    let sig_config = SignalingConfig::default()
        .with_keys(keys)
        .with_ping_interval(config.limits.ping_interval)
        .with_ping_timeout(config.limits.ping_timeout)
        .with_resume_grace(config.limits.resume_grace)
        .with_allowed_origins(
            AllowedOrigins::new(&config.http.allowed_origins).context("allowed_origins")?,
        );
    let sig_config = config.limits.apply_to(sig_config);
    let signaling = Signaling::new(sig_config, sink);

    let mut metrics = Metrics::new_sharded(stats);
    // The media sockets' syscall, batch and GSO counters, summed.
    metrics.add_source(move |out| media::IoStats::render_sum(&io_stats, out));
    // Signaling's own counters and gauges, rendered after the media ones.
    let sig = signaling.clone();
    metrics.add_source(move |out| sig.render_metrics(out));
    let adm = admission.clone();
    metrics.add_source(move |out| adm.render(out));
    match &tls {
        Some(tls) => {
            let shown = tls.clone();
            metrics.add_source(move |out| shown.render(out));
            tls::watch(tls.clone(), tls::POLL_INTERVAL, shutdown.clone())
        }
        None => tls::ignore_hangup(shutdown.clone()),
    }
    .context("cannot install the SIGHUP handler")?;
    let readiness = ready::Readiness::new(heartbeats, config.media.shard_stall_timeout);
    // Demo tokens only on the development key, which is loopback-only.
    let demo = matches!(key_source, KeySource::Development).then(|| demo_keys.clone());
    let app_api = app_api::AppApi::new(demo, config.http.app_token_endpoint.clone())
        .context("app_token_endpoint")?;
    let routes = signaling::server::app(signaling.clone())
        .merge(ready::router(readiness))
        .merge(app_api::router(app_api))
        .merge(webapp::router(config.http.app_token_endpoint.as_deref()));
    let app = http::app(metrics, routes);

    // Sessions are upgraded connections that axum's graceful shutdown does
    // not track: tell signaling to close them.
    tokio::spawn({
        let shutdown = shutdown.clone();
        let signaling = signaling.clone();
        async move {
            shutdown.cancelled().await;
            signaling.shutdown();
        }
    });
    let timeouts = http::Timeouts {
        header: config.http.http_header_timeout,
        handshake: config.http.http_handshake_timeout,
        idle: config.http.http_idle_timeout,
    };
    let http = tokio::spawn(http::serve(
        listener,
        app,
        admission,
        timeouts,
        tls.clone(),
        shutdown.clone(),
    ));

    tracing::info!(
        http = %http_addr,
        scheme = if tls.is_some() { "https" } else { "http" },
        media = %local_addrs[0],
        media_ports = ?local_addrs.iter().map(SocketAddr::port).collect::<Vec<_>>(),
        media_public_ip = %config.network.media_public_ip(),
        shards = local_addrs.len(),
        "sfu listening"
    );
    // What a newcomer who just ran the server wants to know first.
    tracing::info!(
        "web app: open {}://{http_addr}/ in two browser tabs to be in an end-to-end encrypted call",
        if tls.is_some() { "https" } else { "http" },
    );
    Ok(RunningServer {
        http_addr,
        media_addrs: local_addrs,
        shutdown,
        media_shutdown,
        signaling,
        http: Some(http),
        grace: config.limits.shutdown_timeout,
    })
}

/// Raises the file-descriptor limit (logging it) and sizes the HTTP
/// connection caps: `http_max_connections`, lowered to what the limit
/// leaves after [`config::RESERVED_FDS`].
fn http_admission(settings: &config::Http) -> std::sync::Arc<http::Admission> {
    let mut max = settings.http_max_connections;
    match fd_limit::raise() {
        Ok(limit) => {
            let room = limit.soft.saturating_sub(config::RESERVED_FDS).max(1);
            let room = usize::try_from(room).unwrap_or(usize::MAX);
            if room < max {
                tracing::warn!(
                    configured = max,
                    effective = room,
                    fd_limit = limit.soft,
                    "http_max_connections lowered to fit the file-descriptor limit"
                );
                max = room;
            }
            tracing::info!(
                soft_before = limit.soft_before,
                soft = limit.soft,
                hard = limit.hard,
                http_max_connections = max,
                "file-descriptor limit"
            );
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the file-descriptor limit"),
    }
    http::Admission::new(max, settings.http_max_connections_per_address)
}

/// Runs the server until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Handlers go in before `start` logs that it is listening, so a signal
    // sent as soon as that line appears is not lost.
    let signalled = CancellationToken::new();
    shutdown::cancel_on_signal(signalled.clone()).context("cannot install signal handlers")?;
    let server = start(config).await?;
    let token = server.shutdown_token();
    tokio::spawn(async move {
        tokio::select! {
            () = signalled.cancelled() => token.cancel(),
            () = token.cancelled() => {}
        }
    });
    server.join().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaling::media::{MediaRequest, MediaSink};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    struct NoMedia;
    impl MediaSink for NoMedia {
        fn command(&self, _request: MediaRequest) -> bool {
            true
        }
    }

    /// A fake media shell: binds a UDP socket so the address is real, and
    /// records that it was told to stop.
    fn fake_media(
        stopped: CancellationToken,
    ) -> impl FnOnce(&Config, CancellationToken) -> anyhow::Result<MediaHandle> {
        move |config, shutdown| {
            let socket = std::net::UdpSocket::bind(config.network.media_bind)?;
            let local_addr = socket.local_addr()?;
            // Two shards' counters: /metrics shows their sum.
            let stats = vec![metrics::shared_stats(), metrics::shared_stats()];
            for (slot, n) in stats.iter().zip([4, 7]) {
                slot.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.rtp_in = n;
            }
            tokio::spawn(async move {
                shutdown.cancelled().await;
                drop(socket);
                stopped.cancel();
            });
            Ok(MediaHandle {
                sink: Arc::new(NoMedia),
                local_addr,
                local_addrs: vec![local_addr],
                stats,
                io_stats: vec![media::IoStats::new()],
                heartbeats: vec![media::Heartbeat::new(std::time::Instant::now())],
            })
        }
    }

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let req = format!("GET {path} HTTP/1.1\r\nHost: sfu\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn starts_on_ephemeral_ports_serves_and_shuts_down() {
        let stopped = CancellationToken::new();
        let server = start_with(Config::loopback_ephemeral(), fake_media(stopped.clone()))
            .await
            .expect("starts");
        assert!(server.http_addr().ip().is_loopback() && server.http_addr().port() != 0);
        assert!(server.media_addr().ip().is_loopback() && server.media_addr().port() != 0);

        let health = get(server.http_addr(), "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        // On the development key the web app may mint demo tokens.
        let app = get(server.http_addr(), "/api/app-config").await;
        assert!(
            app.ends_with(r#"{"demoTokens":true,"tokenEndpoint":null}"#),
            "{app}"
        );
        let metrics = get(server.http_addr(), "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(
            metrics.contains("\nsfu_media_rtp_packets_received_total 11\n"),
            "{metrics}"
        );
        assert!(metrics.contains("\nsfu_media_shards 2\n"), "{metrics}");
        assert!(metrics.contains("sfu_packets_dropped_total{reason=\"rejected\"} 0"));
        assert!(
            metrics.contains("sfu_rooms 0"),
            "signaling metrics included"
        );
        assert!(
            metrics.contains("sfu_media_io_"),
            "media socket counters included"
        );

        let addr = server.http_addr();
        server.shutdown();
        tokio::time::timeout(Duration::from_secs(5), server.join())
            .await
            .expect("joins promptly")
            .expect("clean stop");
        tokio::time::timeout(Duration::from_secs(5), stopped.cancelled())
            .await
            .expect("media told to stop");
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "listener closed"
        );
    }

    #[tokio::test]
    async fn refuses_dev_key_off_loopback_before_binding() {
        let mut config = Config::loopback_ephemeral();
        config.network.http_bind = "0.0.0.0:0".parse().expect("addr");
        let err = start_with(config, |_: &Config, _| -> anyhow::Result<MediaHandle> {
            panic!("must not start media")
        })
        .await
        .expect_err("refused");
        assert!(err.to_string().contains("not a loopback address"), "{err}");
    }

    #[tokio::test]
    async fn media_failure_is_reported() {
        let err = start_with(Config::loopback_ephemeral(), |_: &Config, _| {
            anyhow::bail!("no socket for you")
        })
        .await
        .expect_err("fails");
        assert!(format!("{err:#}").contains("no socket for you"), "{err:#}");
    }
}
