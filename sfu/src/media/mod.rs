//! The UDP media shell: the thin IO layer around [`sfu_core::MediaPlane`].
//!
//! The media plane is split into shards, one thread each (`sfu-shard-<i>`).
//! Each shard owns its own UDP socket on its own port, its own sans-IO
//! plane and its own rooms, so nothing is shared between shards per packet
//! and the plane needs no lock. A shard reads datagrams in recvmmsg
//! batches, takes signaling commands and the plane's timer, feeds them in,
//! and carries out what the plane asks: send datagrams (sendmmsg batches,
//! UDP GSO trains where the kernel can) and pass events back to each
//! participant's signaling session. See `shard` for the loop.
//!
//! Why a port per shard rather than one `SO_REUSEPORT` port: the kernel
//! spreads a shared port's traffic by a hash of the 4-tuple, so a room's
//! participants would land on arbitrary shards and every forwarded packet
//! would have to cross between threads. With a port each, the ICE
//! candidates a room's participants get name their shard's port, and all
//! of a room's packets arrive where the room lives. Signaling reaches a
//! room's shard through the [`shard_placement`] (rooms are placed on the least
//! loaded shard when they start).
//!
//! Linux only: it relies on recvmmsg, sendmmsg and UDP_SEGMENT.

mod budget;
mod heartbeat;
mod io_stats;
mod recv;
mod send;
#[cfg(test)]
mod send_cost;
mod shard;
mod shard_placement;
mod socket;
mod train;

pub use budget::NegotiationBudget;
pub use heartbeat::Heartbeat;
pub use io_stats::{IoCounters, IoStats};

use crate::config::Config;
use crate::metrics::{SharedStats, shared_stats};
use crate::shutdown::CancellationToken;
use anyhow::Context;
use sfu_core::{MediaConfig, MediaPlane, SdpLimits};
use signaling::media::MediaRequest;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Commands queued towards each shard before signaling is told to back off.
const COMMAND_QUEUE: usize = 4096;

/// A running media plane: every shard, in shard order.
pub struct MediaHandle {
    /// Where signaling sends media commands; it routes each to its shard.
    pub sink: Arc<dyn signaling::media::MediaSink>,
    /// Shard 0's bound UDP address (the real port when the config asked
    /// for 0).
    pub local_addr: SocketAddr,
    /// Every shard's bound UDP address, shard i at index i.
    pub local_addrs: Vec<SocketAddr>,
    /// Every shard's media plane counters, for `/metrics`.
    pub stats: Vec<SharedStats>,
    /// Every shard's socket counters, for `/metrics`
    /// ([`IoStats::render_sum`]).
    pub io_stats: Vec<IoStats>,
    /// Every shard's loop heartbeat, for the readiness check.
    pub heartbeats: Vec<Heartbeat>,
}

/// The UDP port shard `index` binds for `config.network.media_bind`: the
/// configured port + index, or 0 (a free port of its own) when that is 0.
fn shard_bind(config: &Config, index: usize) -> anyhow::Result<SocketAddr> {
    let media_bind = config.network.media_bind;
    let base = media_bind.port();
    if base == 0 {
        return Ok(media_bind);
    }
    let port = u16::try_from(usize::from(base) + index)
        .ok()
        .with_context(|| {
            format!(
                "media shard {index} would bind port {base} + {index}, past 65535; lower \
                 media_bind's port or shards"
            )
        })?;
    Ok(SocketAddr::new(media_bind.ip(), port))
}

/// One shard's socket and settings, bound before any shard starts so a
/// port that is taken fails the start cleanly.
struct Prepared {
    index: usize,
    socket: std::net::UdpSocket,
    candidate: SocketAddr,
    media: MediaConfig,
    io: shard::ShardIo,
}

fn prepare(config: &Config, index: usize) -> anyhow::Result<Prepared> {
    let bind = shard_bind(config, index)?;
    let socket = std::net::UdpSocket::bind(bind)
        .with_context(|| format!("media shard {index} cannot bind UDP {bind}"))?;
    socket.set_nonblocking(true)?;
    let settings = &config.media;
    let setup = socket::configure(
        &socket,
        settings.media_socket_buffer_bytes,
        settings.media_gso,
    );
    let local = socket.local_addr()?;
    // Each shard advertises its own port: the candidates of a room on this
    // shard must bring its packets here.
    let candidate = SocketAddr::new(config.network.media_public_ip(), local.port());
    let mut media = MediaConfig::new(candidate);
    media.rtx_cache_packets = settings.rtx_cache_packets;
    media.rtx_cache_age = settings.rtx_cache_age;
    media.keyframe_min_interval = settings.keyframe_min_interval;
    media.keyframe_backoff_max = settings.keyframe_backoff_max;
    media.bandwidth_estimation = (settings.bandwidth_estimation_kbps > 0)
        .then(|| settings.bandwidth_estimation_kbps.saturating_mul(1000));
    media.ice_timeout = config.limits.ice_timeout;
    media.sdp = sdp_limits(config);
    let io = shard::ShardIo {
        batch: settings.media_io_batch,
        send_queue: settings.media_send_queue,
        max_datagram: media.max_datagram,
        setup,
        negotiation: NegotiationBudget {
            per_second: settings.negotiation_time_per_second,
            burst: settings.negotiation_time_burst,
        },
    };
    Ok(Prepared {
        index,
        socket,
        candidate,
        media,
        io,
    })
}

/// The limits on clients' SDP. A publisher offer may send on as many
/// m-lines as signaling lets a participant publish tracks.
fn sdp_limits(config: &Config) -> SdpLimits {
    let mut limits = SdpLimits::default();
    limits.max_bytes = config.limits.max_sdp_bytes;
    limits.max_media_lines = config.media.sdp_max_media_lines;
    limits.max_sending_lines =
        signaling::server::SignalingConfig::default().max_tracks_per_participant;
    limits
}

/// The CPUs this process may run on, in order; empty if unknown.
fn allowed_cpus() -> Vec<usize> {
    use nix::sched::{CpuSet, sched_getaffinity};
    match sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|cpu| set.is_set(*cpu).unwrap_or(false))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the CPU affinity; shards not pinned");
            Vec::new()
        }
    }
}

/// Pins the calling thread to `cpu`; a failure only costs the pinning.
fn pin_current_thread(index: usize, cpu: usize) {
    use nix::sched::{CpuSet, sched_setaffinity};
    let mut set = CpuSet::new();
    let result = set
        .set(cpu)
        .and_then(|()| sched_setaffinity(nix::unistd::Pid::from_raw(0), &set));
    match result {
        Ok(()) => tracing::debug!(shard = index, cpu, "media shard pinned"),
        Err(e) => tracing::warn!(shard = index, cpu, error = %e, "cannot pin media shard"),
    }
}

/// Starts one shard's thread.
fn start_shard(
    p: Prepared,
    commands: mpsc::Receiver<MediaRequest>,
    stats: SharedStats,
    io_stats: IoStats,
    heartbeat: Heartbeat,
    pin: Option<usize>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let index = p.index;
    std::thread::Builder::new()
        .name(format!("sfu-shard-{index}"))
        .spawn(move || {
            if let Some(cpu) = pin {
                pin_current_thread(index, cpu);
            }
            let _span = tracing::info_span!("media_shard", shard = index).entered();
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
                let socket = match UdpSocket::from_std(p.socket) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot register media socket");
                        return;
                    }
                };
                let now = Instant::now();
                let plane = MediaPlane::new(p.media, now);
                shard::Shard::new(
                    socket,
                    p.candidate,
                    plane,
                    commands,
                    stats,
                    io_stats,
                    p.io,
                    heartbeat,
                    now,
                )
                .run(shutdown)
                .await;
            });
        })
        .with_context(|| format!("cannot start media shard thread {index}"))?;
    Ok(())
}

/// Binds every shard's socket and starts the shards
/// ([`crate::config::Media::effective_shards`] of them); they stop when `shutdown` is
/// cancelled. If any shard cannot start, none keeps running.
pub fn spawn(config: &Config, shutdown: CancellationToken) -> anyhow::Result<MediaHandle> {
    let count = config.media.effective_shards();
    let prepared = (0..count)
        .map(|i| prepare(config, i))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let cpus = if config.media.pin_shards {
        allowed_cpus()
    } else {
        Vec::new()
    };

    let mut senders = Vec::with_capacity(count);
    let mut local_addrs = Vec::with_capacity(count);
    let mut stats = Vec::with_capacity(count);
    let mut io_stats = Vec::with_capacity(count);
    let mut heartbeats = Vec::with_capacity(count);
    for p in prepared {
        let local = p.socket.local_addr()?;
        let setup = p.io.setup;
        tracing::info!(
            shard = p.index,
            %local,
            candidate = %p.candidate,
            gso = setup.gso,
            recv_buffer = setup.recv_buffer,
            send_buffer = setup.send_buffer,
            batch = config.media.media_io_batch,
            "media shard listening"
        );
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let slot = shared_stats();
        let io = IoStats::new();
        let heartbeat = Heartbeat::new(Instant::now());
        let pin = (!cpus.is_empty()).then(|| cpus[p.index % cpus.len()]);
        // On an error the senders of the shards already started drop with
        // this function's locals, which stops those shards.
        let beat = heartbeat.clone();
        start_shard(p, rx, slot.clone(), io.clone(), beat, pin, shutdown.clone())?;
        senders.push(tx);
        local_addrs.push(local);
        stats.push(slot);
        io_stats.push(io);
        heartbeats.push(heartbeat);
    }
    let sdp = sdp_limits(config);
    let local_addr = *local_addrs
        .first()
        .context("no media shard: shards resolved to 0")?;
    Ok(MediaHandle {
        sink: Arc::new(shard_placement::ShardPlacement::new(senders, sdp)),
        local_addr,
        local_addrs,
        stats,
        io_stats,
        heartbeats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ports_follow_the_base_port() {
        let mut c = Config::loopback_ephemeral();
        assert_eq!(shard_bind(&c, 3).expect("port 0"), c.network.media_bind);
        c.network.media_bind = "127.0.0.1:40000".parse().expect("addr");
        assert_eq!(shard_bind(&c, 0).expect("fits").port(), 40000);
        assert_eq!(shard_bind(&c, 2).expect("fits").port(), 40002);
        c.network.media_bind = "127.0.0.1:65535".parse().expect("addr");
        assert_eq!(shard_bind(&c, 0).expect("fits").port(), 65535);
        let err = shard_bind(&c, 1).expect_err("past 65535").to_string();
        assert!(err.contains("past 65535"), "{err}");
    }

    /// Every shard gets its own port and its own thread; a taken port fails
    /// the start and names the shard.
    #[tokio::test]
    async fn shards_bind_their_own_ports() {
        let mut c = Config::loopback_ephemeral();
        c.media.shards = 3;
        c.media.pin_shards = true;
        let token = CancellationToken::new();
        let h = spawn(&c, token.clone()).expect("starts");
        assert_eq!(h.local_addrs.len(), 3);
        assert_eq!((h.stats.len(), h.io_stats.len()), (3, 3));
        assert_eq!(h.local_addr, h.local_addrs[0]);
        let mut ports: Vec<u16> = h.local_addrs.iter().map(SocketAddr::port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 3, "distinct ports");
        token.cancel();

        // A free base port whose neighbour is taken: shard 1 cannot bind,
        // so the start fails before any shard runs.
        let (base, _neighbour) = (0..50)
            .find_map(|_| {
                let a = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
                let port = a.local_addr().ok()?.port();
                let b = std::net::UdpSocket::bind(("127.0.0.1", port.checked_add(1)?)).ok()?;
                Some((port, b))
            })
            .expect("two adjacent ports");
        c.network.media_bind = SocketAddr::from(([127, 0, 0, 1], base));
        c.media.shards = 2;
        match spawn(&c, CancellationToken::new()) {
            Err(e) => {
                let msg = format!("{e:#}");
                assert!(msg.contains("media shard 1 cannot bind"), "{msg}");
            }
            Ok(_) => panic!("shard 1's port is taken"),
        }
    }
}
