//! Outgoing signaling: one writer task owns the WebSocket's sending half.
//!
//! Local candidates are held back per transport until the description they
//! belong to has been sent, so the server never sees a candidate for an
//! offer or answer it does not have yet.

use super::connect::{Ws, text};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use signaling::proto::{ClientMessage, IceCandidate, Target};
use std::sync::Mutex;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

pub(super) enum Outgoing {
    Message(ClientMessage),
    /// Send a close frame and stop.
    Close,
}

#[derive(Default)]
struct Gate {
    open: bool,
    queued: Vec<IceCandidate>,
}

#[derive(Default)]
struct Gates {
    publisher: Gate,
    subscriber: Gate,
}

impl Gates {
    fn get(&mut self, target: Target) -> &mut Gate {
        match target {
            Target::Publisher => &mut self.publisher,
            Target::Subscriber => &mut self.subscriber,
        }
    }
}

/// The sending side of the session.
pub(super) struct Signal {
    tx: mpsc::UnboundedSender<Outgoing>,
    gates: Mutex<Gates>,
}

impl Signal {
    pub(super) fn new(tx: mpsc::UnboundedSender<Outgoing>) -> Self {
        Self {
            tx,
            gates: Mutex::new(Gates::default()),
        }
    }

    /// Queues a message; `false` if the writer is gone.
    pub(super) fn send(&self, message: ClientMessage) -> bool {
        self.tx.send(Outgoing::Message(message)).is_ok()
    }

    /// Sends an offer or answer for `target`, then any candidates gathered
    /// for it so far, and lets later ones through directly.
    pub(super) fn send_description(&self, target: Target, message: ClientMessage) -> bool {
        let mut gates = self.lock();
        let sent = self.send(message);
        let gate = gates.get(target);
        gate.open = true;
        for candidate in gate.queued.drain(..) {
            let _ = self.send(ClientMessage::Candidate { target, candidate });
        }
        sent
    }

    /// Trickles a local candidate, or holds it until the description is out.
    pub(super) fn send_candidate(&self, target: Target, candidate: IceCandidate) {
        let mut gates = self.lock();
        let gate = gates.get(target);
        if gate.open {
            let _ = self.send(ClientMessage::Candidate { target, candidate });
        } else {
            gate.queued.push(candidate);
        }
    }

    /// Asks the writer to close the WebSocket after what is queued.
    pub(super) fn close(&self) {
        let _ = self.tx.send(Outgoing::Close);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gates> {
        self.gates.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Writes queued messages until told to close or every sender is gone, then
/// closes the WebSocket.
pub(super) async fn writer(
    mut sink: SplitSink<Ws, Message>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    while let Some(Outgoing::Message(message)) = rx.recv().await {
        if let Err(error) = sink.send(text(&message)).await {
            debug!(%error, "signaling write failed");
            return;
        }
    }
    let _ = sink.send(Message::Close(None)).await;
    let _ = sink.close().await;
}
