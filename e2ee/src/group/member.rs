//! Group members as the application sees them, and the rosters of recent
//! epochs (to name the sender of a late application message).

use std::collections::VecDeque;

use openmls::prelude::{BasicCredential, Credential};

/// One member of the MLS group (one leaf of the ratchet tree).
///
/// `identity` is the member's BasicCredential content read as UTF-8 (invalid
/// bytes become U+FFFD; our own KeyPackage validation rejects such
/// identities). `signature_key` is the raw Ed25519 public key of the leaf.
/// The application compares both with the signaling roster to spot ghosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Leaf index in the ratchet tree (`u32::MAX` for a KeyPackage not yet in
    /// a group).
    pub leaf: u32,
    /// Credential identity.
    pub identity: String,
    /// Ed25519 signature public key (32 bytes).
    pub signature_key: Vec<u8>,
}

/// The identity bytes of a credential: the BasicCredential identity, or the
/// raw credential content for any other credential type.
pub(super) fn identity_bytes(credential: &Credential) -> Vec<u8> {
    match BasicCredential::try_from(credential.clone()) {
        Ok(basic) => basic.identity().to_vec(),
        Err(_) => credential.serialized_content().to_vec(),
    }
}

impl From<&openmls::prelude::Member> for Member {
    fn from(m: &openmls::prelude::Member) -> Self {
        Self {
            leaf: m.index.u32(),
            identity: String::from_utf8_lossy(&identity_bytes(&m.credential)).into_owned(),
            signature_key: m.signature_key.clone(),
        }
    }
}

/// Rosters of the last few epochs, oldest first.
///
/// An application message from a past epoch may come from a member the
/// newer epoch removed, or whose leaf was since reused; its sender must be
/// named from the roster of the epoch it was sent in.
#[derive(Debug, Default)]
pub(super) struct RosterHistory {
    epochs: VecDeque<(u64, Vec<Member>)>,
}

impl RosterHistory {
    /// Remembers `members` as the roster of `epoch`, keeping at most `keep`
    /// epochs.
    pub(super) fn record(&mut self, epoch: u64, members: Vec<Member>, keep: usize) {
        self.epochs.retain(|(e, _)| *e != epoch);
        self.epochs.push_back((epoch, members));
        while self.epochs.len() > keep {
            self.epochs.pop_front();
        }
    }

    /// The member at `leaf` in past epoch `epoch`, if remembered.
    pub(super) fn lookup(&self, epoch: u64, leaf: u32) -> Option<&Member> {
        self.epochs
            .iter()
            .find(|(e, _)| *e == epoch)
            .and_then(|(_, members)| members.iter().find(|m| m.leaf == leaf))
    }

    pub(super) fn clear(&mut self) {
        self.epochs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(leaf: u32, name: &str) -> Member {
        Member {
            leaf,
            identity: name.into(),
            signature_key: vec![leaf as u8],
        }
    }

    #[test]
    fn history_keeps_last_epochs() {
        let mut h = RosterHistory::default();
        for epoch in 0..6 {
            h.record(epoch, vec![member(0, &format!("e{epoch}"))], 3);
        }
        assert!(h.lookup(2, 0).is_none());
        assert_eq!(h.lookup(3, 0).map(|m| m.identity.as_str()), Some("e3"));
        assert_eq!(h.lookup(5, 0).map(|m| m.identity.as_str()), Some("e5"));
        assert!(h.lookup(5, 1).is_none());
        h.clear();
        assert!(h.lookup(5, 0).is_none());
    }
}
