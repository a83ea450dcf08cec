//! The accept loop: every connection is admitted under the caps, served
//! by hyper's HTTP/1 connection with upgrades (WebSocket) under the header,
//! handshake and idle timeouts, and told its peer's address
//! ([`ConnectInfo`]). With TLS, the TLS handshake comes first, and it and
//! the first request head must both be done within the header timeout. A
//! graceful shutdown stops accepting, lets each connection finish its
//! request, and returns once all have.

use super::admission::{Admission, Closed, Refusal};
use super::tracked_io::{Activity, TrackedIo};
use crate::tls::Tls;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

/// How long the accept loop pauses after an error that is not about one
/// connection (out of file descriptors): long enough not to spin, short
/// enough to take the next connection soon after one closes.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Least time between two log lines about refused connections or accept
/// errors; what happened in between is counted in the next one.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The timeouts of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For a complete request head.
    pub header: Duration,
    /// From an upgrade request's head to the upgraded connection.
    pub handshake: Duration,
    /// With no byte moving either way.
    pub idle: Duration,
}

/// Serves `app` on `listener` until `shutdown` is cancelled, then waits
/// for the open HTTP connections to finish (upgraded ones are not waited
/// for: their owner closes them). With `tls`, every connection is HTTPS
/// (or WSS once upgraded).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    admission: Arc<Admission>,
    timeouts: Timeouts,
    tls: Option<Arc<Tls>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // Every connection task holds a sender; when all are gone, all are done.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut log = RateLimitedLog::default();
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                admission.stats().accept_error();
                log.accept_error(&e);
                if !is_per_connection(&e) {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = sleep(ACCEPT_ERROR_PAUSE) => {}
                    }
                }
                continue;
            }
        };
        let slot = match admission.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                admission.stats().refused(why);
                log.refused(why, peer);
                drop(stream);
                continue;
            }
        };
        admission.stats().accepted();
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let io = TrackedIo::new(stream, slot, activity.clone());
        let conn = Connection {
            app: app.clone(),
            peer,
            activity,
            admission: admission.clone(),
            timeouts,
            shutdown: shutdown.clone(),
            _done: done_tx.clone(),
        };
        tokio::spawn(conn.start(io, tls.clone()));
    }
    drop(listener);
    drop(done_tx);
    let _ = done_rx.recv().await;
    Ok(())
}

/// Errors of `accept` that concern one connection only (it was reset
/// before we took it): the next accept may succeed at once.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionRefused | K::ConnectionAborted | K::ConnectionReset
    )
}

struct Connection {
    app: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
    admission: Arc<Admission>,
    timeouts: Timeouts,
    shutdown: CancellationToken,
    _done: mpsc::Sender<()>,
}

/// When the connection's upgrade request arrived, while it is pending.
type UpgradeClock = Arc<Mutex<Option<Instant>>>;

impl Connection {
    /// Serves plain HTTP on `io`, or HTTPS after a TLS handshake.
    async fn start(self, io: TrackedIo, tls: Option<Arc<Tls>>) {
        let Some(tls) = tls else {
            return self.run(io, None).await;
        };
        // One budget for the TLS handshake and the request head after it:
        // a client that opens connections and never finishes either must
        // not hold them longer than a plain HTTP client could.
        let head_by = Instant::now() + self.timeouts.header;
        let handshake = tokio::select! {
            r = tls.acceptor().accept(io) => r,
            () = sleep_until(head_by) => {
                self.admission.stats().closed(Closed::HeaderTimeout);
                tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                return;
            }
            () = self.shutdown.cancelled() => return,
        };
        match handshake {
            Ok(stream) => self.run(stream, Some(head_by)).await,
            Err(e) => {
                tls.handshake_failed();
                tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed");
            }
        }
    }

    /// Serves HTTP on `io`; with `head_by`, the first request head must
    /// have arrived by then.
    async fn run<I>(self, io: I, head_by: Option<Instant>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let upgrade: UpgradeClock = Arc::default();
        let got_request = Arc::new(AtomicBool::new(false));
        let service = {
            let (app, peer, upgrade) = (self.app.clone(), self.peer, upgrade.clone());
            let got_request = got_request.clone();
            hyper::service::service_fn(move |mut req: Request<Incoming>| {
                got_request.store(true, Ordering::Relaxed);
                req.extensions_mut().insert(ConnectInfo(peer));
                let asks_upgrade = req.headers().contains_key(header::UPGRADE);
                if asks_upgrade {
                    set(&upgrade, Some(Instant::now()));
                }
                let (app, upgrade) = (app.clone(), upgrade.clone());
                async move {
                    let res = app.oneshot(req).await;
                    if let Ok(r) = &res
                        && asks_upgrade
                        && r.status() != StatusCode::SWITCHING_PROTOCOLS
                    {
                        // Answered without upgrading: a plain request now.
                        set(&upgrade, None);
                    }
                    res
                }
            })
        };
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.timeouts.header);
        let conn = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let mut shutting_down = false;
        loop {
            let idle_at = self.activity.last() + self.timeouts.idle;
            let handshake_at = get(&upgrade).map(|t| t + self.timeouts.handshake);
            let head_at = head_by.filter(|_| !got_request.load(Ordering::Relaxed));
            let deadline = [handshake_at, head_at]
                .into_iter()
                .flatten()
                .fold(idle_at, Instant::min);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r
                        && e.is_timeout()
                    {
                        self.admission.stats().closed(Closed::HeaderTimeout);
                    }
                    return;
                }
                () = self.shutdown.cancelled(), if !shutting_down => {
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = sleep_until(deadline) => {
                    let now = Instant::now();
                    let why = if handshake_at.is_some_and(|h| h <= now) {
                        Closed::HandshakeTimeout
                    } else if head_at.is_some_and(|h| h <= now)
                        && !got_request.load(Ordering::Relaxed)
                    {
                        Closed::HeaderTimeout
                    } else if self.activity.last() + self.timeouts.idle <= now {
                        Closed::IdleTimeout
                    } else {
                        // Bytes moved since the deadline was set.
                        continue;
                    };
                    self.admission.stats().closed(why);
                    tracing::debug!(peer = %self.peer, ?why, "HTTP connection closed");
                    return;
                }
            }
        }
    }
}

fn set(clock: &UpgradeClock, value: Option<Instant>) {
    *clock.lock().unwrap_or_else(|p| p.into_inner()) = value;
}

fn get(clock: &UpgradeClock) -> Option<Instant> {
    *clock.lock().unwrap_or_else(|p| p.into_inner())
}

/// Logs refusals and accept errors at most once per [`LOG_INTERVAL`]
/// each, with how many there were since the last line: a flood of them
/// must not become a flood of log lines.
#[derive(Default)]
struct RateLimitedLog {
    refused: Pending,
    errors: Pending,
}

#[derive(Default)]
struct Pending {
    last: Option<Instant>,
    count: u64,
}

impl Pending {
    /// Counts one; true (and resets the count) when a line is due.
    fn due(&mut self) -> Option<u64> {
        self.count += 1;
        let now = Instant::now();
        if self.last.is_some_and(|t| now < t + LOG_INTERVAL) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

impl RateLimitedLog {
    fn refused(&mut self, why: Refusal, peer: SocketAddr) {
        if let Some(count) = self.refused.due() {
            let cap = match why {
                Refusal::ServerFull => "http_max_connections",
                Refusal::AddressFull => "http_max_connections_per_address",
            };
            tracing::warn!(
                count,
                cap,
                peer = %peer.ip(),
                "HTTP connections refused at accept (count since the last such line)"
            );
        }
    }

    fn accept_error(&mut self, e: &std::io::Error) {
        if let Some(count) = self.errors.due() {
            tracing::warn!(error = %e, count, "cannot accept HTTP connections");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Handlers see the peer's address as `ConnectInfo<SocketAddr>`, and a
    /// shutdown ends the loop once the connections are done.
    #[tokio::test]
    async fn handlers_get_the_peer_address_and_shutdown_ends_the_loop() {
        let app = Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let timeouts = Timeouts {
            header: Duration::from_secs(5),
            handshake: Duration::from_secs(5),
            idle: Duration::from_secs(5),
        };
        let admission = Admission::new(8, 8);
        let server = tokio::spawn(serve(
            listener,
            app,
            admission.clone(),
            timeouts,
            None,
            shutdown.clone(),
        ));
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let local = tcp.local_addr().expect("local");
        tcp.write_all(b"GET /peer HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = String::new();
        tcp.read_to_string(&mut out).await.expect("read");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with(&local.to_string()), "{out}");

        shutdown.cancel();
        let stopped = tokio::time::timeout(Duration::from_secs(10), server).await;
        assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
        assert_eq!(admission.open(), 0, "every slot given back");
    }
}
