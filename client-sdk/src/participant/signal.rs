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

/// The sending half of one WebSocket connection.
pub(super) type Sink = SplitSink<Ws, Message>;

/// The sending side of the session.
pub(super) struct Signal {
    tx: mpsc::UnboundedSender<Outgoing>,
    /// Hands the writer the connection after a reconnect.
    sinks: mpsc::UnboundedSender<Sink>,
    gates: Mutex<Gates>,
}

impl Signal {
    pub(super) fn new(
        tx: mpsc::UnboundedSender<Outgoing>,
        sinks: mpsc::UnboundedSender<Sink>,
    ) -> Self {
        Self {
            tx,
            sinks,
            gates: Mutex::new(Gates::default()),
        }
    }

    /// Switches the writer to a new connection; what is queued goes there.
    pub(super) fn reconnected(&self, sink: Sink) {
        let _ = self.sinks.send(sink);
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
/// closes the WebSocket. If a write fails, the message is kept and the
/// writer waits for the next connection (see [`Signal::reconnected`]); a
/// newer connection always replaces the current one.
pub(super) async fn writer(
    first: Sink,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    mut sinks: mpsc::UnboundedReceiver<Sink>,
) {
    let mut sink = Some(first);
    let mut held: Option<ClientMessage> = None;
    loop {
        let Some(current) = sink.as_mut() else {
            match sinks.recv().await {
                Some(next) => sink = Some(next),
                None => return,
            }
            continue;
        };
        let message = match held.take() {
            Some(message) => message,
            None => tokio::select! {
                biased;
                Some(next) = sinks.recv() => {
                    sink = Some(next);
                    continue;
                }
                outgoing = rx.recv() => match outgoing {
                    Some(Outgoing::Message(message)) => message,
                    _ => break,
                },
            },
        };
        if let Err(error) = current.send(text(&message)).await {
            debug!(%error, "signaling write failed; waiting for a reconnect");
            held = Some(message);
            sink = None;
        }
    }
    if let Some(mut sink) = sink {
        let _ = sink.send(Message::Close(None)).await;
        let _ = sink.close().await;
    }
}
