//! State shared by every connection and the admin API.

use super::config::SignalingConfig;
use super::delivery_log::LogLimits;
use super::metrics::{Gauges, Metrics};
use super::rooms::Rooms;
use crate::media::MediaSink;
use std::sync::Arc;
use tokio::sync::watch;

/// Config, registry, counters and lifecycle signals.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: SignalingConfig,
    pub(crate) rooms: Arc<Rooms>,
    pub(crate) metrics: Arc<Metrics>,
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
        Self {
            rooms: Rooms::new(media, metrics.clone(), limits, config.mls_founder_timeout),
            metrics,
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
