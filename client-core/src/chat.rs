//! The plaintext of a chat message inside an MLS application message, and
//! the duplicate filter that makes resending after a reconnect safe.
//!
//! Layout: `0x01 | id (u64, big-endian) | UTF-8 text`. The id counts up per
//! sender, so a member delivers a sender's message only if its id is above
//! the last one delivered from that sender. Every member reads the same log,
//! so every member drops the same duplicates and the order stays identical.

use std::collections::HashMap;

const TAG: u8 = 1;

/// The largest chat text, in bytes; well under the signaling frame limit
/// after MLS and base64 overhead.
pub const MAX_CHAT_BYTES: usize = 16 * 1024;

/// One chat message as encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChatPayload {
    pub(crate) id: u64,
    pub(crate) text: String,
}

impl ChatPayload {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.text.len());
        out.push(TAG);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    pub(crate) fn decode(data: &[u8]) -> Option<Self> {
        let (&tag, rest) = data.split_first()?;
        if tag != TAG || rest.len() < 8 || rest.len() - 8 > MAX_CHAT_BYTES {
            return None;
        }
        let (id, text) = rest.split_at(8);
        Some(Self {
            id: u64::from_be_bytes(id.try_into().ok()?),
            text: String::from_utf8(text.to_vec()).ok()?,
        })
    }
}

/// The last chat id delivered per sender (keyed by signature key, which is
/// unique per MLS client: a rejoined client starts a new sequence).
#[derive(Debug, Default)]
pub(crate) struct ChatDedup {
    last: HashMap<Vec<u8>, u64>,
}

impl ChatDedup {
    /// `true` the first time `id` (or anything above the last) is seen.
    pub(crate) fn first(&mut self, sender: &[u8], id: u64) -> bool {
        let last = self.last.entry(sender.to_vec()).or_insert(0);
        if id > *last {
            *last = id;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let chat = ChatPayload {
            id: 7,
            text: "héllo".into(),
        };
        assert_eq!(ChatPayload::decode(&chat.encode()), Some(chat));
        assert_eq!(ChatPayload::decode(&[]), None);
        assert_eq!(ChatPayload::decode(&[2, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(ChatPayload::decode(&[1, 0, 0]), None);
        assert_eq!(
            ChatPayload::decode(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff]),
            None
        );
    }

    #[test]
    fn duplicates_are_dropped_per_sender() {
        let mut d = ChatDedup::default();
        assert!(d.first(b"a", 1));
        assert!(!d.first(b"a", 1));
        assert!(d.first(b"b", 1));
        assert!(d.first(b"a", 2));
        assert!(!d.first(b"a", 1));
    }
}
