//! State shared by every connection and the admin API.

use super::allowances::Allowances;
use super::config::SignalingConfig;
use super::delivery_log::LogLimits;
use super::metrics::{Cap, Gauges, Metrics};
use super::quota::{AddrKey, Quota, Refusal, Slot};
use super::rooms::{RoomCaps, Rooms};
use crate::media::MediaSink;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::watch;

/// Config, registry, counters and lifecycle signals.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SignalingConfig,
    pub(crate) rooms: Arc<Rooms>,
    pub(crate) metrics: Arc<Metrics>,
    /// Rate allowances kept across connections.
    pub(crate) allowances: Allowances,
    /// Open WebSocket connections, server-wide and per address.
    sockets: Arc<Quota>,
    /// Bytes queued to clients, over all rooms.
    queued: Arc<AtomicUsize>,
    shutdown: watch::Sender<bool>,
    connections: watch::Sender<usize>,
    /// Connection tasks, including those holding a suspended participant
    /// after their socket is gone.
    tasks: watch::Sender<usize>,
}

impl Shared {
    pub(crate) fn new(config: SignalingConfig, media: Arc<dyn MediaSink>) -> Self {
        let metrics = Arc::new(Metrics::default());
        let limits = LogLimits {
            max_entries: config.mls_log_max_entries,
            max_bytes: config.mls_log_max_bytes,
        };
        let cap = &config.capacity;
        let queued = Arc::new(AtomicUsize::new(0));
        let caps = RoomCaps {
            participants: Quota::new(cap.participants, cap.participants_per_address),
            rooms: Quota::new(cap.rooms, cap.rooms_per_address),
            room_bytes: config.room_outbound_bytes,
            queued_total: queued.clone(),
        };
        Self {
            rooms: Rooms::new(
                media,
                metrics.clone(),
                limits,
                config.mls_founder_timeout,
                caps,
            ),
            metrics,
            allowances: Allowances::new(cap.tracked_allowances),
            sockets: Quota::new(cap.connections, cap.connections_per_address),
            queued,
            config,
            shutdown: watch::Sender::new(false),
            connections: watch::Sender::new(0),
            tasks: watch::Sender::new(0),
        }
    }

    /// Asks every session to close.
    pub(crate) fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// A receiver whose value turns `true` on shutdown.
    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Admits a new WebSocket connection from `addr`: a connection slot,
    /// and a token from the address's connection bucket. The slot is held
    /// until the connection closes.
    pub(crate) fn admit(&self, addr: Option<AddrKey>) -> Result<Slot, Cap> {
        let slot = self.sockets.acquire(addr).map_err(|r| match r {
            Refusal::Total => Cap::Connections,
            Refusal::PerAddress => Cap::ConnectionsPerAddress,
        })?;
        if let Some(a) = addr {
            let now = std::time::Instant::now();
            match self.allowances.connect(a, &self.config, now) {
                Ok(true) => {}
                Ok(false) => return Err(Cap::ConnectRate),
                Err(_) => return Err(Cap::Allowances),
            }
        }
        Ok(slot)
    }

    /// Counts one open connection until the guard drops.
    pub(crate) fn connection(self: &Arc<Self>) -> ConnectionGuard {
        self.connections.send_modify(|n| *n += 1);
        ConnectionGuard(self.clone())
    }

    /// Counts one connection task (open, or holding a suspended
    /// participant) until the guard drops.
    pub(crate) fn task(self: &Arc<Self>) -> TaskGuard {
        self.tasks.send_modify(|n| *n += 1);
        TaskGuard(self.clone())
    }

    pub(crate) fn connections(&self) -> usize {
        *self.connections.borrow()
    }

    /// Resolves when no connection is open and no suspended participant
    /// waits for a resume.
    pub(crate) async fn idle(&self) {
        let mut rx = self.tasks.subscribe();
        // The sender lives in `self`, so this cannot fail.
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    pub(crate) fn gauges(&self) -> Gauges {
        let c = self.rooms.counts();
        Gauges {
            rooms: c.rooms,
            participants: c.participants,
            tracks: c.tracks,
            connections: self.connections(),
            suspended: c.suspended,
            mls_log_entries: c.mls_log_entries,
            mls_log_bytes: c.mls_log_bytes,
            mls_key_packages: c.mls_key_packages,
            outbound_bytes: self.queued.load(Ordering::Acquire),
            rate_allowances: self.allowances.len(),
        }
    }
}

/// One open connection; see [`Shared::connection`].
#[derive(Debug)]
pub(crate) struct ConnectionGuard(Arc<Shared>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// One connection task; see [`Shared::task`].
#[derive(Debug)]
pub(crate) struct TaskGuard(Arc<Shared>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.tasks.send_modify(|n| *n = n.saturating_sub(1));
    }
}
