//! The way into one participant from the rest of the server.
//!
//! An [`Outbox`] belongs to a participant, not to a connection: room
//! events, MLS log entries and media events queue in it. One connection at a
//! time reads it, identified by its [`Signal`], which also carries the kick
//! that stops that connection. When the connection is lost the participant
//! is *suspended*: the outbox keeps queueing (up to a larger bound) with no
//! reader, and a resuming connection [`attach`](Outbox::attach)es to it.
//!
//! An outbox is bounded twice: by items and by bytes (the messages as they
//! will be written). It also charges its room's [`RoomBudget`] for what it
//! holds of its own; shared MLS entries charge the room once, themselves.

use super::budget::{ITEM_OVERHEAD, RoomBudget, SharedEntry, message_bytes};
use super::metrics::Metrics;
use crate::proto::{LeaveReason, ServerMessage};
use sfu_core::MediaEvent;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{Notify, mpsc, watch};

/// Why a connection is told to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kick {
    /// The registry already removed the participant (admin removal, room
    /// closed, identity replaced). The session only says `closed{reason}`.
    Removed(LeaveReason),
    /// The session must remove its participant with this reason (slow
    /// consumer).
    Leave(LeaveReason),
    /// Another connection resumed this participant: this one closes without
    /// a word and without leaving.
    Detached,
}

/// One connection's signals: "your outbox has something" and "stop".
#[derive(Debug)]
pub(crate) struct Signal {
    id: u64,
    kick: Mutex<Option<Kick>>,
    kicked: Notify,
    ready: Notify,
}

impl Signal {
    /// A signal with a process-unique id.
    pub(crate) fn new() -> Arc<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Arc::new(Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            kick: Mutex::new(None),
            kicked: Notify::new(),
            ready: Notify::new(),
        })
    }

    /// The connection's id.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Sets the kick (if none is set yet) and wakes the connection.
    pub(crate) fn kick(&self, k: Kick) {
        {
            let mut g = self.kick.lock().unwrap_or_else(|e| e.into_inner());
            if g.is_none() {
                *g = Some(k);
            }
        }
        self.kicked.notify_one();
    }

    fn get(&self) -> Option<Kick> {
        *self.kick.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once kicked; level-triggered, the first kick wins.
    /// Cancel-safe.
    pub(crate) async fn kicked(&self) -> Kick {
        loop {
            if let Some(k) = self.get() {
                return k;
            }
            self.kicked.notified().await;
        }
    }
}

/// What waits in an outbox.
#[derive(Debug, Clone)]
pub(crate) enum Queued {
    /// A message to write as is.
    Msg(ServerMessage),
    /// An MLS log entry, serialized once for the whole room.
    Mls(Arc<SharedEntry>),
    /// An event from the media plane, for the session to handle.
    Media(MediaEvent),
    /// The media plane dropped this participant's event queue.
    MediaGone,
}

/// Outcome of handing one item to an outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendOutcome {
    /// Queued (or, for an MLS entry while suspended, covered by the log).
    Queued,
    /// The outbox just overflowed: its reader was kicked to leave. Reported
    /// once per outbox; later items are dropped as [`SendOutcome::Gone`].
    SlowConsumer,
    /// The participant is gone or being removed; the item was dropped.
    Gone,
}

impl Queued {
    /// What it costs to hold: (bytes for this client, bytes charged to the
    /// room by this outbox). A shared MLS entry charges the room itself.
    fn cost(&self) -> (usize, usize) {
        let own = |payload: usize| {
            let b = payload.saturating_add(ITEM_OVERHEAD);
            (b, b)
        };
        match self {
            Queued::Msg(m) => own(message_bytes(m)),
            Queued::Mls(e) => (e.bytes().saturating_add(ITEM_OVERHEAD), 0),
            Queued::Media(ev) => own(match ev {
                MediaEvent::PublisherAnswer { sdp } | MediaEvent::SubscriberOffer { sdp } => {
                    sdp.len()
                }
                MediaEvent::Subscribed { track_id, mid } => track_id.len() + mid.len(),
                MediaEvent::Unsubscribed { track_id }
                | MediaEvent::TrackPaused { track_id, .. } => track_id.len(),
                MediaEvent::ActiveSpeaker { participant_id } => {
                    participant_id.as_ref().map_or(0, String::len)
                }
                MediaEvent::PublisherLayers { track_id, active } => {
                    track_id.len() + active.iter().map(String::len).sum::<usize>()
                }
                MediaEvent::Error { message } => message.len(),
                _ => 0,
            }),
            Queued::MediaGone => own(0),
        }
    }
}

/// One queued item and what it costs.
#[derive(Debug)]
struct Held {
    item: Queued,
    bytes: usize,
    room_bytes: usize,
}

/// An outbox's bounds: items and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bound {
    pub(crate) items: usize,
    pub(crate) bytes: usize,
}

impl Bound {
    /// This bound grown to fit `items` and `bytes` already held.
    fn plus(self, items: usize, bytes: usize) -> Self {
        Self {
            items: self.items.saturating_add(items),
            bytes: self.bytes.saturating_add(bytes),
        }
    }
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Held>,
    /// Bytes held (the sum of `Held::bytes`).
    bytes: usize,
    /// The room charged for what this outbox holds of its own, once joined.
    room: Option<Arc<RoomBudget>>,
    /// The bound while a connection reads.
    live_limit: Bound,
    /// The bound in force.
    limit: Bound,
    /// The connection that reads (or, while suspended, that waits out the
    /// grace period and takes kicks).
    reader: Arc<Signal>,
    suspended: bool,
    overflowed: bool,
    closed: bool,
}

impl State {
    fn pop(&mut self) -> Option<Queued> {
        let h = self.queue.pop_front()?;
        self.bytes -= h.bytes;
        if let Some(r) = &self.room {
            r.release(h.room_bytes);
        }
        Some(h.item)
    }

    /// Drops every item `keep` refuses, giving back what they cost.
    fn retain(&mut self, mut keep: impl FnMut(&Queued) -> bool) {
        let (mut bytes, mut room_bytes) = (0, 0);
        self.queue.retain(|h| {
            let k = keep(&h.item);
            if !k {
                bytes += h.bytes;
                room_bytes += h.room_bytes;
            }
            k
        });
        self.bytes -= bytes;
        if let Some(r) = &self.room {
            r.release(room_bytes);
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.retain(|_| false);
    }
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    closed: watch::Sender<bool>,
}

/// A cloneable handle to one participant's outbox.
#[derive(Debug, Clone)]
pub(crate) struct Outbox(Arc<Inner>);

impl Outbox {
    /// An empty outbox read by `reader`, bounded to `limit` items.
    #[cfg(test)]
    pub(crate) fn new(reader: Arc<Signal>, limit: usize) -> Self {
        Self::bounded(
            reader,
            Bound {
                items: limit,
                bytes: usize::MAX,
            },
        )
    }

    /// An empty outbox read by `reader`, within `limit`.
    pub(crate) fn bounded(reader: Arc<Signal>, limit: Bound) -> Self {
        let limit = Bound {
            items: limit.items.max(1),
            bytes: limit.bytes.max(1),
        };
        Self(Arc::new(Inner {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                room: None,
                live_limit: limit,
                limit,
                reader,
                suspended: false,
                overflowed: false,
                closed: false,
            }),
            closed: watch::Sender::new(false),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Charges `room` for what this outbox holds of its own from now on
    /// (set once, when the participant joins it).
    pub(crate) fn set_room(&self, room: Arc<RoomBudget>) {
        let mut s = self.state();
        let held: usize = s.queue.iter().map(|h| h.room_bytes).sum();
        room.charge(held);
        if let Some(old) = s.room.replace(room) {
            old.release(held);
        }
    }

    /// Queues an item without waiting. An outbox that would go over its
    /// item or byte bound kicks its reader (the participant leaves with
    /// reason `disconnected`); nothing grows without bound. A suspended
    /// outbox skips MLS entries: the resume replays them from the room's
    /// log.
    pub(crate) fn send(&self, item: Queued) -> SendOutcome {
        let mut s = self.state();
        if s.closed || s.overflowed {
            return SendOutcome::Gone;
        }
        if s.suspended && matches!(item, Queued::Mls(_)) {
            return SendOutcome::Queued;
        }
        let (bytes, room_bytes) = item.cost();
        if s.queue.len() >= s.limit.items || s.bytes.saturating_add(bytes) > s.limit.bytes {
            s.overflowed = true;
            s.reader.kick(Kick::Leave(LeaveReason::Disconnected));
            return SendOutcome::SlowConsumer;
        }
        s.bytes += bytes;
        if let Some(r) = &s.room {
            r.charge(room_bytes);
        }
        s.queue.push_back(Held {
            item,
            bytes,
            room_bytes,
        });
        s.reader.ready.notify_one();
        SendOutcome::Queued
    }

    /// Bytes held for the client.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.state().bytes
    }

    /// Queues a protocol message.
    pub(crate) fn send_msg(&self, msg: ServerMessage) -> SendOutcome {
        self.send(Queued::Msg(msg))
    }

    /// The next item for the connection `me`. Never resolves for a
    /// connection that is not (or no longer) the reader, or while
    /// suspended. Cancel-safe.
    pub(crate) async fn recv(&self, me: &Signal) -> Queued {
        loop {
            {
                let mut s = self.state();
                if !s.suspended
                    && s.reader.id == me.id
                    && let Some(item) = s.pop()
                {
                    // A resume may have raised the bound to fit its backlog.
                    if s.queue.len() < s.live_limit.items && s.bytes < s.live_limit.bytes {
                        s.limit = s.live_limit;
                    }
                    return item;
                }
            }
            // A send between the check and here leaves a permit, so no
            // wake-up is lost.
            me.ready.notified().await;
        }
    }

    /// Kicks the current reader.
    pub(crate) fn kick(&self, k: Kick) {
        self.state().reader.kick(k);
    }

    /// Whether `conn` is the reader.
    pub(crate) fn is_reader(&self, conn: u64) -> bool {
        self.state().reader.id == conn
    }

    /// Whether no connection reads it (the participant is suspended).
    pub(crate) fn is_suspended(&self) -> bool {
        self.state().suspended
    }

    /// The reader `conn` lost its connection: hold up to `buffer` items
    /// (and no more bytes than while live) until a resume. Returns `false`
    /// (and changes nothing) if `conn` is not the reader or the outbox is
    /// closed or overflowed.
    pub(crate) fn suspend(&self, conn: u64, buffer: usize) -> bool {
        let mut s = self.state();
        if s.reader.id != conn || s.closed || s.overflowed {
            return false;
        }
        s.suspended = true;
        s.limit = Bound {
            items: buffer.max(1),
            bytes: s.live_limit.bytes,
        };
        true
    }

    /// Hands the outbox to a resuming connection: the previous reader is
    /// told it is [`Kick::Detached`], queued MLS entries are dropped (the
    /// resume replays them from the log), and the rest stays queued, in
    /// order, for the new reader. Fails if the outbox is closed or
    /// overflowed (messages were lost, so the session cannot resume).
    pub(crate) fn attach(&self, reader: Arc<Signal>) -> bool {
        let mut s = self.state();
        if s.closed || s.overflowed {
            return false;
        }
        let old = std::mem::replace(&mut s.reader, reader);
        if old.id != s.reader.id {
            old.kick(Kick::Detached);
        }
        s.suspended = false;
        s.retain(|q| !matches!(q, Queued::Mls(_)));
        // Room for the backlog plus a full live queue; it shrinks back
        // once the backlog drains.
        s.limit = s.live_limit.plus(s.queue.len(), s.bytes);
        if !s.queue.is_empty() {
            s.reader.ready.notify_one();
        }
        true
    }

    /// The participant was removed: drop everything and refuse more.
    pub(crate) fn close(&self) {
        {
            let mut s = self.state();
            s.closed = true;
            s.retain(|_| false);
        }
        self.0.closed.send_replace(true);
    }

    /// Resolves once [`Outbox::close`] was called.
    pub(crate) async fn closed(&self) {
        let mut rx = self.0.closed.subscribe();
        // The sender lives in `self`, so this cannot fail.
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Moves the media plane's events for this participant into the outbox
    /// until either side is gone. Runs as its own task, so that media events
    /// queue (and survive a suspension) like everything else.
    pub(crate) async fn forward_media(
        self,
        mut events: mpsc::Receiver<MediaEvent>,
        metrics: Arc<Metrics>,
    ) {
        loop {
            let item = tokio::select! {
                biased;
                () = self.closed() => return,
                ev = events.recv() => match ev {
                    Some(ev) => Queued::Media(ev),
                    None => Queued::MediaGone,
                },
            };
            let last = matches!(item, Queued::MediaGone);
            match self.send(item) {
                SendOutcome::Queued => {}
                SendOutcome::SlowConsumer => {
                    metrics.slow_consumer();
                    return;
                }
                SendOutcome::Gone => return,
            }
            if last {
                return;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::MlsEntry;
    use crate::server::delivery_log::Logged;
    use std::time::Duration;

    fn pong(ts: u64) -> Queued {
        Queued::Msg(ServerMessage::Pong { ts })
    }

    fn ts(q: Queued) -> u64 {
        match q {
            Queued::Msg(ServerMessage::Pong { ts }) => ts,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn mls(seq: u64) -> Queued {
        let entry = MlsEntry::Reset {
            group_id: "g".into(),
            founder: "f".into(),
        };
        let room = RoomBudget::new(usize::MAX, Arc::default());
        Queued::Mls(SharedEntry::new(Arc::new(Logged::new(seq, entry)), &room))
    }

    #[tokio::test]
    async fn overflow_kicks_once_instead_of_growing() {
        let sig = Signal::new();
        let ob = Outbox::new(sig.clone(), 2);
        assert_eq!(ob.send(pong(1)), SendOutcome::Queued);
        assert_eq!(ob.send(pong(2)), SendOutcome::Queued);
        assert_eq!(ob.send(pong(3)), SendOutcome::SlowConsumer);
        assert_eq!(ob.send(pong(4)), SendOutcome::Gone);
        assert_eq!(sig.kicked().await, Kick::Leave(LeaveReason::Disconnected));
        // The first kick wins.
        ob.kick(Kick::Removed(LeaveReason::Removed));
        assert_eq!(sig.kicked().await, Kick::Leave(LeaveReason::Disconnected));
        assert_eq!(ts(ob.recv(&sig).await), 1);
        // An overflowed outbox cannot be suspended or resumed.
        assert!(!ob.suspend(sig.id(), 10));
        assert!(!ob.attach(Signal::new()));
        ob.close();
        assert_eq!(ob.send(pong(5)), SendOutcome::Gone);
    }

    #[tokio::test]
    async fn suspension_buffers_more_skips_mls_and_a_resume_takes_over() {
        let old = Signal::new();
        let ob = Outbox::new(old.clone(), 2);
        assert_eq!(ob.send(mls(1)), SendOutcome::Queued);
        assert_eq!(ob.send(pong(1)), SendOutcome::Queued);
        assert!(!ob.suspend(old.id() + 1000, 8), "only the reader suspends");
        assert!(ob.suspend(old.id(), 8));
        assert!(ob.is_suspended());
        for t in 2..=5 {
            assert_eq!(ob.send(pong(t)), SendOutcome::Queued);
            assert_eq!(ob.send(mls(t)), SendOutcome::Queued);
        }
        // Suspended: nobody reads.
        let quiet = tokio::time::timeout(Duration::from_millis(20), ob.recv(&old)).await;
        assert!(quiet.is_err());

        let new = Signal::new();
        assert!(ob.attach(new.clone()));
        assert_eq!(old.kicked().await, Kick::Detached);
        assert!(ob.is_reader(new.id()) && !ob.is_reader(old.id()));
        // The backlog fits above the live bound, in order, without MLS.
        assert_eq!(ob.send(pong(6)), SendOutcome::Queued);
        for want in 1..=6 {
            assert_eq!(ts(ob.recv(&new).await), want);
        }
        // The old reader never gets anything again.
        ob.send(pong(7));
        let stolen = tokio::time::timeout(Duration::from_millis(20), ob.recv(&old)).await;
        assert!(stolen.is_err());
        assert_eq!(ts(ob.recv(&new).await), 7);
        // Back to the live bound.
        ob.send(pong(8));
        ob.send(pong(9));
        assert_eq!(ob.send(pong(10)), SendOutcome::SlowConsumer);
    }

    #[tokio::test]
    async fn a_suspended_outbox_overflows_at_its_buffer() {
        let sig = Signal::new();
        let ob = Outbox::new(sig.clone(), 1);
        assert!(ob.suspend(sig.id(), 3));
        for t in 0..3 {
            assert_eq!(ob.send(pong(t)), SendOutcome::Queued);
        }
        assert_eq!(ob.send(pong(3)), SendOutcome::SlowConsumer);
        assert_eq!(sig.kicked().await, Kick::Leave(LeaveReason::Disconnected));
    }

    #[tokio::test]
    async fn media_events_are_forwarded_until_the_outbox_closes() {
        let sig = Signal::new();
        let ob = Outbox::new(sig.clone(), 8);
        let (tx, rx) = mpsc::channel(4);
        let task = tokio::spawn(ob.clone().forward_media(rx, Arc::default()));
        tx.send(MediaEvent::Timeout).await.unwrap();
        assert!(matches!(
            ob.recv(&sig).await,
            Queued::Media(MediaEvent::Timeout)
        ));
        ob.close();
        assert!(task.await.is_ok());

        // The media plane dropping its sender is reported once.
        let ob = Outbox::new(sig.clone(), 8);
        let (tx, rx) = mpsc::channel(4);
        drop(tx);
        ob.clone().forward_media(rx, Arc::default()).await;
        assert!(matches!(ob.recv(&sig).await, Queued::MediaGone));
    }

    #[tokio::test]
    async fn bytes_are_bounded_and_charged_to_the_room() {
        let total = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let room = RoomBudget::new(usize::MAX, total.clone());
        let sig = Signal::new();
        let big = |n: usize| {
            Queued::Media(MediaEvent::Error {
                message: "x".repeat(n),
            })
        };
        let bound = Bound {
            items: 100,
            bytes: 3 * (1000 + ITEM_OVERHEAD),
        };
        let ob = Outbox::bounded(sig.clone(), bound);
        assert_eq!(ob.send(big(1000)), SendOutcome::Queued);
        ob.set_room(room.clone());
        assert_eq!(
            room.used(),
            1000 + ITEM_OVERHEAD,
            "held before the join counts"
        );
        assert_eq!(ob.send(big(1000)), SendOutcome::Queued);
        // A shared entry costs the client its size, but the room nothing
        // more than its one charge.
        let m = mls(1);
        let Queued::Mls(e) = &m else { unreachable!() };
        let entry_cost = e.bytes() + ITEM_OVERHEAD;
        assert_eq!(room.used(), 2 * (1000 + ITEM_OVERHEAD));
        assert_eq!(ob.send(m), SendOutcome::Queued);
        assert_eq!(ob.bytes(), 2 * (1000 + ITEM_OVERHEAD) + entry_cost);
        assert_eq!(room.used(), 2 * (1000 + ITEM_OVERHEAD));
        // Reading gives the bytes back.
        assert!(matches!(ob.recv(&sig).await, Queued::Media(_)));
        assert_eq!(ob.bytes(), 1000 + ITEM_OVERHEAD + entry_cost);
        assert_eq!(room.used(), 1000 + ITEM_OVERHEAD);
        // One over the byte bound is a slow consumer, far below 100 items.
        assert_eq!(ob.send(big(1000)), SendOutcome::Queued);
        assert_eq!(ob.send(big(1000)), SendOutcome::SlowConsumer);
        assert_eq!(sig.kicked().await, Kick::Leave(LeaveReason::Disconnected));
        // Closing frees everything it held.
        ob.close();
        assert_eq!(ob.bytes(), 0);
        assert_eq!(room.used(), 0);
        assert_eq!(total.load(std::sync::atomic::Ordering::Acquire), 0);
    }
}
