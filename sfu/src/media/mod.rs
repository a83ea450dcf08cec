//! The UDP media shell: the thin IO layer around [`sfu_core::MediaPlane`].
//!
//! One shard thread owns the media socket and the sans-IO plane. It reads
//! datagrams in recvmmsg batches, takes signaling commands and the plane's
//! timer, feeds them in, and carries out what the plane asks: send
//! datagrams (sendmmsg batches, UDP GSO trains where the kernel can) and
//! pass events back to each participant's signaling session. Nothing else
//! touches the plane, so it needs no lock. See `shard` for the loop.
//!
//! Linux only: it relies on recvmmsg, sendmmsg and UDP_SEGMENT.

mod convert;
mod io_stats;
mod recv;
mod send;
#[cfg(test)]
mod send_cost;
mod shard;
mod socket;
mod train;

pub use io_stats::{IoCounters, IoStats};

use crate::config::Config;
use crate::metrics::SharedStats;
use crate::shutdown::CancellationToken;
use anyhow::Context;
use sfu_core::{MediaConfig, MediaPlane};
use signaling::media::MediaCommand;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Commands queued towards the shard before signaling is told to back off.
const COMMAND_QUEUE: usize = 4096;

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
    spawn_with_io_stats(config, stats, shutdown).map(|(handle, _)| handle)
}

/// [`spawn`], also returning the shard's socket counters ([`IoStats`]), for
/// `/metrics` ([`IoStats::render`]).
pub fn spawn_with_io_stats(
    config: &Config,
    stats: SharedStats,
    shutdown: CancellationToken,
) -> anyhow::Result<(MediaHandle, IoStats)> {
    if config.shards > 1 {
        tracing::warn!(
            requested = config.shards,
            "only one media shard is implemented; running one"
        );
    }
    let std_socket = std::net::UdpSocket::bind(config.media_bind)
        .with_context(|| format!("cannot bind media port {}", config.media_bind))?;
    std_socket.set_nonblocking(true)?;
    let setup = socket::configure(
        &std_socket,
        config.media_socket_buffer_bytes,
        config.media_gso,
    );
    let local_addr = std_socket.local_addr()?;
    let candidate = SocketAddr::new(config.media_public_ip(), local_addr.port());
    let mut media = MediaConfig::new(candidate);
    media.rtx_cache_packets = config.rtx_cache_packets;
    media.keyframe_min_interval = config.keyframe_min_interval();
    media.ice_timeout = config.ice_timeout();
    let io = shard::ShardIo {
        batch: config.media_io_batch,
        send_queue: config.media_send_queue,
        max_datagram: media.max_datagram,
        setup,
    };
    let io_stats = IoStats::new();

    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let shard_io_stats = io_stats.clone();
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
                let now = Instant::now();
                let plane = MediaPlane::new(media, now);
                shard::Shard::new(socket, candidate, plane, rx, stats, shard_io_stats, io, now)
                    .run(shutdown)
                    .await;
            });
        })
        .context("cannot start media shard thread")?;
    tracing::info!(
        %local_addr,
        %candidate,
        gso = setup.gso,
        recv_buffer = setup.recv_buffer,
        send_buffer = setup.send_buffer,
        batch = config.media_io_batch,
        "media plane listening"
    );
    Ok((
        MediaHandle {
            plane: Arc::new(ShardSender { tx }),
            local_addr,
        },
        io_stats,
    ))
}
