//! Bytes queued to a room's members, and the size of what is queued.
//!
//! A room's [`RoomBudget`] counts the memory its outboxes hold: each
//! member's own messages at their size, and each shared MLS log entry once
//! (it is one allocation, however many outboxes hold it) until the last
//! outbox lets go of it. A server-wide total sums every room's.

use super::delivery_log::Logged;
use crate::proto::ServerMessage;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What one queued item costs beyond its payload (queue slot, enum,
/// allocation headers): a round number, so that floods of tiny messages
/// count too.
pub(crate) const ITEM_OVERHEAD: usize = 64;

/// Bytes a room has queued to its members, against its limit.
#[derive(Debug)]
pub(crate) struct RoomBudget {
    used: AtomicUsize,
    limit: usize,
    /// Every room's `used`, summed.
    total: Arc<AtomicUsize>,
}

impl RoomBudget {
    pub(crate) fn new(limit: usize, total: Arc<AtomicUsize>) -> Arc<Self> {
        Arc::new(Self {
            used: AtomicUsize::new(0),
            limit,
            total,
        })
    }

    /// Whether `bytes` more would stay within the limit. Checked before a
    /// client's message is appended; concurrent senders may each overshoot
    /// by one message.
    pub(crate) fn fits(&self, bytes: usize) -> bool {
        self.used.load(Ordering::Acquire).saturating_add(bytes) <= self.limit
    }

    /// Counts `bytes` as queued.
    pub(crate) fn charge(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
        self.total.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Counts `bytes` as no longer queued.
    pub(crate) fn release(&self, bytes: usize) {
        // Every release follows its charge, so neither goes below zero.
        self.used.fetch_sub(bytes, Ordering::AcqRel);
        self.total.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Bytes queued now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

/// An MLS log entry on its way to a room's members: charged to the room
/// once, released when the last outbox drops it.
#[derive(Debug)]
pub(crate) struct SharedEntry {
    entry: Arc<Logged>,
    room: Arc<RoomBudget>,
    bytes: usize,
}

impl SharedEntry {
    pub(crate) fn new(entry: Arc<Logged>, room: &Arc<RoomBudget>) -> Arc<Self> {
        let bytes = entry.bytes() + ITEM_OVERHEAD;
        room.charge(bytes);
        Arc::new(Self {
            entry,
            room: room.clone(),
            bytes,
        })
    }

    /// The log entry.
    pub(crate) fn entry(&self) -> &Arc<Logged> {
        &self.entry
    }
}

impl std::ops::Deref for SharedEntry {
    type Target = Logged;
    fn deref(&self) -> &Logged {
        &self.entry
    }
}

impl Drop for SharedEntry {
    fn drop(&mut self) {
        self.room.release(self.bytes);
    }
}

/// Counts bytes written, without storing them.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The length of `msg` as written to the socket.
pub(crate) fn message_bytes(msg: &ServerMessage) -> usize {
    let mut c = Counter(0);
    // Serializing strings and integers cannot fail; a failure would only
    // undercount by the part not written.
    let _ = serde_json::to_writer(&mut c, msg);
    c.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::MlsEntry;

    #[test]
    fn a_shared_entry_is_charged_once_and_released_by_the_last_holder() {
        let total = Arc::new(AtomicUsize::new(0));
        let room = RoomBudget::new(10_000, total.clone());
        let logged = Arc::new(Logged::new(
            1,
            MlsEntry::KeyPackage {
                participant_id: "p".into(),
                key_package: "A".repeat(1000),
            },
        ));
        let want = logged.bytes() + ITEM_OVERHEAD;
        let shared = SharedEntry::new(logged, &room);
        let held: Vec<_> = (0..50).map(|_| shared.clone()).collect();
        drop(shared);
        assert_eq!(room.used(), want, "fifty holders, one charge");
        assert_eq!(total.load(Ordering::Acquire), want);
        assert!(room.fits(10_000 - want) && !room.fits(10_001 - want));
        drop(held);
        assert_eq!(room.used(), 0);
        assert_eq!(total.load(Ordering::Acquire), 0);
    }

    #[test]
    fn message_bytes_is_the_serialized_length() {
        let m = ServerMessage::Pong { ts: 12345 };
        assert_eq!(
            message_bytes(&m),
            serde_json::to_string(&m).map(|s| s.len()).unwrap_or(0)
        );
    }
}
