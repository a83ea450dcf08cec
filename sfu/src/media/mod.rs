//! The UDP media shell: the thin IO layer around [`sfu_core::MediaPlane`].
//!
//! One shard thread owns the media socket and the sans-IO plane. It reads
//! datagrams, signaling commands and the plane's timer, feeds them in, and
//! carries out what the plane asks: send datagrams and pass events back to
//! each participant's signaling session. Nothing else touches the plane, so
//! it needs no lock.

mod convert;

use crate::config::Config;
use crate::metrics::SharedStats;
use crate::shutdown::CancellationToken;
use anyhow::Context;
use sfu_core::{Input, MediaConfig, MediaPlane, Output};
use signaling::media::{MediaCommand, MediaEvent};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Commands queued towards the shard before signaling is told to back off.
const COMMAND_QUEUE: usize = 4096;
/// How often the shard publishes its counters for `/metrics`.
const STATS_EVERY: Duration = Duration::from_millis(250);
/// Receive buffer; larger datagrams are truncated and then refused by size.
const RECV_BUF: usize = 4096;
/// Datagrams handled per wake-up before the shard sends and sleeps again;
/// bounds the work (and the queued output) of one loop iteration.
const RECV_BATCH: usize = 64;

/// A running media plane.
pub struct MediaHandle {
    /// Where signaling sends media commands.
    pub plane: Arc<dyn signaling::media::MediaPlane>,
    /// The bound UDP address (the real port when the config asked for 0).
    pub local_addr: SocketAddr,
}

/// The signaling side of the shard: enqueues commands.
struct ShardSender {
    tx: mpsc::Sender<MediaCommand>,
}

impl signaling::media::MediaPlane for ShardSender {
    fn command(&self, cmd: MediaCommand) -> bool {
        self.tx.try_send(cmd).is_ok()
    }
}

/// Binds the media socket and starts the shard; it stops when `shutdown`
/// is cancelled.
pub fn spawn(
    config: &Config,
    stats: SharedStats,
    shutdown: CancellationToken,
) -> anyhow::Result<MediaHandle> {
    if config.shards > 1 {
        tracing::warn!(
            requested = config.shards,
            "only one media shard is implemented; running one"
        );
    }
    let std_socket = std::net::UdpSocket::bind(config.media_bind)
        .with_context(|| format!("cannot bind media port {}", config.media_bind))?;
    std_socket.set_nonblocking(true)?;
    let local_addr = std_socket.local_addr()?;
    let candidate = SocketAddr::new(config.media_public_ip(), local_addr.port());
    let mut media = MediaConfig::new(candidate);
    media.rtx_cache_packets = config.rtx_cache_packets;
    media.keyframe_min_interval = config.keyframe_min_interval();
    media.ice_timeout = config.ice_timeout();

    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    std::thread::Builder::new()
        .name("sfu-shard-0".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start shard runtime");
                    return;
                }
            };
            rt.block_on(async move {
                let socket = match UdpSocket::from_std(std_socket) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot register media socket");
                        return;
                    }
                };
                Shard::new(socket, candidate, media, rx, stats)
                    .run(shutdown)
                    .await;
            });
        })
        .context("cannot start media shard thread")?;
    tracing::info!(%local_addr, %candidate, "media plane listening");
    Ok(MediaHandle {
        plane: Arc::new(ShardSender { tx }),
        local_addr,
    })
}

struct Shard {
    socket: UdpSocket,
    /// The advertised address. Datagrams are handed to the core as sent
    /// to it, not to the bound address: behind a 1:1 NAT (public IP set)
    /// the two differ, and ICE only accepts packets for its own candidate.
    candidate: SocketAddr,
    plane: MediaPlane,
    commands: mpsc::Receiver<MediaCommand>,
    sessions: HashMap<String, mpsc::Sender<MediaEvent>>,
    stats: SharedStats,
    last_stats: Instant,
}

impl Shard {
    fn new(
        socket: UdpSocket,
        candidate: SocketAddr,
        cfg: MediaConfig,
        commands: mpsc::Receiver<MediaCommand>,
        stats: SharedStats,
    ) -> Self {
        let now = Instant::now();
        Self {
            socket,
            candidate,
            plane: MediaPlane::new(cfg, now),
            commands,
            sessions: HashMap::new(),
            stats,
            last_stats: now,
        }
    }

    async fn run(mut self, shutdown: CancellationToken) {
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            // Wake at least every STATS_EVERY so /metrics stays fresh on an
            // idle shard.
            let deadline = self.flush().await.min(Instant::now() + STATS_EVERY);
            self.publish_stats(false);
            let sleep = tokio::time::sleep_until(deadline.into());
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, source)) => {
                        self.datagram(source, &buf[..n]);
                        // Take what else is already queued, up to a bound, so
                        // the plane's deadline is computed once per batch
                        // rather than once per datagram.
                        for _ in 1..RECV_BATCH {
                            match self.socket.try_recv_from(&mut buf) {
                                Ok((n, source)) => self.datagram(source, &buf[..n]),
                                Err(_) => break,
                            }
                        }
                    }
                    // ICMP errors from a gone peer surface here; nothing to do.
                    Err(e) => tracing::trace!(error = %e, "media recv error"),
                },
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                _ = sleep => self.plane.handle_input(Instant::now(), Input::Timeout),
            }
        }
        self.publish_stats(true);
        tracing::info!("media shard stopped");
    }

    fn datagram(&mut self, source: SocketAddr, contents: &[u8]) {
        self.plane.handle_input(
            Instant::now(),
            Input::Datagram {
                source,
                destination: self.candidate,
                contents,
            },
        );
    }

    /// Carries out everything the plane has queued; returns its next deadline.
    async fn flush(&mut self) -> Instant {
        loop {
            match self.plane.poll_output(Instant::now()) {
                Output::Transmit(t) => {
                    if let Err(e) = self.socket.send_to(&t.contents, t.destination).await {
                        tracing::trace!(error = %e, "media send error");
                    }
                }
                Output::Event { participant, event } => self.deliver(participant, event),
                Output::Timeout(at) => return at,
                _ => {}
            }
        }
    }

    fn deliver(&mut self, participant: String, event: sfu_core::Event) {
        let Some(tx) = self.sessions.get(&participant) else {
            return;
        };
        let Some(ev) = convert::event(event) else {
            return;
        };
        if tx.try_send(ev).is_err() {
            // The session is gone or cannot keep up: drop its queue, which
            // signaling sees as the media plane closing on it, and free its
            // media state.
            tracing::warn!(%participant, "participant event queue full or closed; removing");
            self.sessions.remove(&participant);
            self.plane.handle_input(
                Instant::now(),
                Input::Command(sfu_core::Command::Leave { participant }),
            );
        }
    }

    fn command(&mut self, cmd: MediaCommand) {
        match &cmd {
            MediaCommand::Join {
                participant_id,
                events,
                ..
            } => {
                self.sessions.insert(participant_id.clone(), events.clone());
            }
            MediaCommand::Leave { participant_id } => {
                self.sessions.remove(participant_id);
            }
            _ => {}
        }
        if let Some(c) = convert::command(cmd) {
            self.plane.handle_input(Instant::now(), Input::Command(c));
        }
    }

    fn publish_stats(&mut self, force: bool) {
        let now = Instant::now();
        if !force && now.saturating_duration_since(self.last_stats) < STATS_EVERY {
            return;
        }
        self.last_stats = now;
        let snapshot = self.plane.stats();
        if let Ok(mut s) = self.stats.lock() {
            *s = snapshot;
        }
    }
}
