//! The way into one session from the rest of the server: a bounded queue of
//! room events and a kick signal that bypasses the queue.

use crate::proto::{LeaveReason, ServerMessage};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc};

/// Why a session is told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kick {
    /// The registry already removed the participant (admin removal, room
    /// closed, identity replaced). The session only says `closed{reason}`.
    Removed(LeaveReason),
    /// The session must remove itself with this reason (slow consumer).
    Leave(LeaveReason),
}

/// A one-shot, level-triggered stop signal. The first kick wins.
#[derive(Debug, Default)]
pub(crate) struct KickSignal {
    kick: Mutex<Option<Kick>>,
    notify: Notify,
}

impl KickSignal {
    /// Sets the kick (if none is set yet) and wakes the session.
    pub(crate) fn kick(&self, k: Kick) {
        {
            let mut g = self.kick.lock().unwrap_or_else(|e| e.into_inner());
            if g.is_none() {
                *g = Some(k);
            }
        }
        self.notify.notify_one();
    }

    fn get(&self) -> Option<Kick> {
        *self.kick.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once kicked. Cancel-safe.
    pub(crate) async fn kicked(&self) -> Kick {
        loop {
            if let Some(k) = self.get() {
                return k;
            }
            self.notify.notified().await;
        }
    }
}

/// Outcome of handing one message to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Queued.
    Queued,
    /// The queue was full: the session was kicked as a slow consumer.
    SlowConsumer,
    /// The session is gone already.
    Gone,
}

/// A cloneable handle to one session.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<ServerMessage>,
    kick: Arc<KickSignal>,
}

impl Outbox {
    /// A handle plus the session's ends: the queue receiver and the kick.
    pub(crate) fn new(depth: usize) -> (Self, mpsc::Receiver<ServerMessage>, Arc<KickSignal>) {
        let (tx, rx) = mpsc::channel(depth.max(1));
        let kick = Arc::new(KickSignal::default());
        (
            Self {
                tx,
                kick: kick.clone(),
            },
            rx,
            kick,
        )
    }

    /// Queues a message without waiting. A full queue kicks the session
    /// (it will leave with reason `disconnected`); nothing ever grows
    /// without bound.
    pub(crate) fn send(&self, msg: ServerMessage) -> Delivery {
        match self.tx.try_send(msg) {
            Ok(()) => Delivery::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kick(Kick::Leave(LeaveReason::Disconnected));
                Delivery::SlowConsumer
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Gone,
        }
    }

    /// Kicks the session.
    pub(crate) fn kick(&self, k: Kick) {
        self.kick.kick(k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overflow_kicks_instead_of_growing() {
        let (ob, mut rx, kick) = Outbox::new(2);
        let m = ServerMessage::Pong { ts: 1 };
        assert_eq!(ob.send(m.clone()), Delivery::Queued);
        assert_eq!(ob.send(m.clone()), Delivery::Queued);
        assert_eq!(ob.send(m.clone()), Delivery::SlowConsumer);
        assert_eq!(kick.kicked().await, Kick::Leave(LeaveReason::Disconnected));
        // The first kick wins.
        ob.kick(Kick::Removed(LeaveReason::Removed));
        assert_eq!(kick.kicked().await, Kick::Leave(LeaveReason::Disconnected));
        assert_eq!(rx.recv().await, Some(m.clone()));
        drop(rx);
        assert_eq!(ob.send(m), Delivery::Gone);
    }
}
