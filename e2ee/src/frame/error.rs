//! Errors of the caller's own making ([`FrameError`]) and reasons a received
//! frame was dropped ([`DropReason`], counted in [`DropCounts`]).

use std::fmt;

/// An operation the local side asked for could not be done.
///
/// Received frames never produce this: they are dropped with a [`DropReason`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The base key does not have the suite's length
    /// ([`crate::frame::base_key_len`]).
    #[error("base key is {got} bytes, the suite needs {expected}")]
    InvalidKeyLength {
        /// `Nk` of the suite.
        expected: usize,
        /// What was passed.
        got: usize,
    },
    /// `encrypt` was called before any `set_epoch`.
    #[error("no sending key: set_epoch was not called")]
    NoKey,
    /// Every counter value of the current key has been used; only a new epoch
    /// (a new key) can send again.
    #[error("frame counter exhausted for this key")]
    CounterExhausted,
    /// The epoch is older than the decryptor's current epoch; a new group
    /// (after a rejoin) needs `clear` first.
    #[error("epoch {epoch} is older than the current epoch {current}")]
    EpochRegressed {
        /// The epoch passed.
        epoch: u64,
        /// The current epoch.
        current: u64,
    },
    /// The epoch is the current one but the base key differs.
    #[error("epoch {epoch} is already installed with a different base key")]
    EpochConflict {
        /// The epoch passed.
        epoch: u64,
    },
    /// The crypto backend failed (key derivation or sealing).
    #[error("sframe crypto failed: {0}")]
    Crypto(#[source] sframe::error::SframeError),
}

/// Why a received frame was dropped. Every drop is counted in [`DropCounts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The SFrame header does not parse, is not minimally encoded, or the
    /// ciphertext is shorter than the tag.
    Malformed,
    /// AEAD authentication failed: tampered header, metadata, ciphertext or
    /// tag, or a KID of the right epoch whose sender does not hold the key.
    AuthFailed,
    /// The counter was already seen under this KID, or is older than the
    /// replay window.
    Replay,
    /// No key for the KID turned up: its epoch never arrived within the
    /// pending timeout, the pending buffer overflowed, the keys were cleared,
    /// or the KID is outside the `leaf << E | epoch` space.
    UnknownKid,
    /// The KID is for an epoch this decryptor no longer holds (older than the
    /// previous epoch, or the previous one after its grace period), or too far
    /// ahead to be a plausible next epoch.
    WrongEpoch,
    /// The KID is for an epoch before the first one this decryptor was given:
    /// the frame was encrypted before this member was in the group, so by
    /// design it cannot read it. Not a failure; usually a frame in flight
    /// (or retransmitted) around the join.
    BeforeJoin,
}

impl DropReason {
    /// Every reason, in a stable order.
    pub const ALL: [DropReason; 6] = [
        DropReason::Malformed,
        DropReason::AuthFailed,
        DropReason::Replay,
        DropReason::UnknownKid,
        DropReason::WrongEpoch,
        DropReason::BeforeJoin,
    ];

    /// A stable snake_case name, for metrics labels and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::AuthFailed => "auth_failed",
            DropReason::Replay => "replay",
            DropReason::UnknownKid => "unknown_kid",
            DropReason::WrongEpoch => "wrong_epoch",
            DropReason::BeforeJoin => "before_join",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for DropReason {}

/// How many received frames were dropped, per [`DropReason`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DropCounts {
    /// [`DropReason::Malformed`].
    pub malformed: u64,
    /// [`DropReason::AuthFailed`].
    pub auth_failed: u64,
    /// [`DropReason::Replay`].
    pub replay: u64,
    /// [`DropReason::UnknownKid`].
    pub unknown_kid: u64,
    /// [`DropReason::WrongEpoch`].
    pub wrong_epoch: u64,
    /// [`DropReason::BeforeJoin`].
    pub before_join: u64,
}

impl DropCounts {
    /// All drops, [`DropReason::BeforeJoin`] included.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.auth_failed
            + self.replay
            + self.unknown_kid
            + self.wrong_epoch
            + self.before_join
    }

    /// The count of one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::Malformed => self.malformed,
            DropReason::AuthFailed => self.auth_failed,
            DropReason::Replay => self.replay,
            DropReason::UnknownKid => self.unknown_kid,
            DropReason::WrongEpoch => self.wrong_epoch,
            DropReason::BeforeJoin => self.before_join,
        }
    }

    pub(crate) fn add(&mut self, reason: DropReason, n: u64) {
        let slot = match reason {
            DropReason::Malformed => &mut self.malformed,
            DropReason::AuthFailed => &mut self.auth_failed,
            DropReason::Replay => &mut self.replay,
            DropReason::UnknownKid => &mut self.unknown_kid,
            DropReason::WrongEpoch => &mut self.wrong_epoch,
            DropReason::BeforeJoin => &mut self.before_join,
        };
        *slot = slot.saturating_add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_names() {
        let mut c = DropCounts::default();
        for (i, r) in DropReason::ALL.into_iter().enumerate() {
            c.add(r, i as u64 + 1);
        }
        assert_eq!(c.total(), 21);
        assert_eq!(c.get(DropReason::WrongEpoch), 5);
        let names: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "malformed",
                "auth_failed",
                "replay",
                "unknown_kid",
                "wrong_epoch",
                "before_join"
            ]
        );
    }
}
