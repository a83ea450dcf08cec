//! The kinds of records openmls stores.

use std::fmt;

/// The kind of a stored record: one per kind of value the openmls storage
/// trait reads and writes. Errors name it; nothing else about a record is
/// ever shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Record {
    /// A group's `MlsGroupJoinConfig`.
    JoinConfig,
    /// A group's own leaf nodes (a list).
    OwnLeafNodes,
    /// A queued proposal, by group and proposal reference.
    QueuedProposal,
    /// A group's queue of proposal references (a list).
    ProposalQueue,
    /// A group's ratchet tree (`TreeSync`).
    Tree,
    /// A group's interim transcript hash.
    InterimTranscriptHash,
    /// A group's context.
    GroupContext,
    /// A group's confirmation tag.
    ConfirmationTag,
    /// A group's `MlsGroupState`.
    GroupState,
    /// A group's message secrets of the current and past epochs.
    MessageSecrets,
    /// A group's resumption PSK store.
    ResumptionPskStore,
    /// Our own leaf index in a group.
    OwnLeafIndex,
    /// A group's epoch secrets.
    EpochSecrets,
    /// A signature key pair, by public key.
    SignatureKeyPair,
    /// An HPKE key pair of an update leaf node, by public key.
    EncryptionKeyPair,
    /// The HPKE key pairs of one epoch, by group, epoch and leaf.
    EpochKeyPairs,
    /// A KeyPackage bundle (with its private init key), by hash reference.
    KeyPackage,
    /// A PSK bundle, by PSK id.
    Psk,
}

impl Record {
    /// Whether records of this kind can hold private keys or secrets, so
    /// their buffers are wiped when overwritten, deleted or dropped.
    pub(crate) fn holds_secrets(self) -> bool {
        matches!(
            self,
            Self::MessageSecrets
                | Self::ResumptionPskStore
                | Self::EpochSecrets
                | Self::SignatureKeyPair
                | Self::EncryptionKeyPair
                | Self::EpochKeyPairs
                | Self::KeyPackage
                | Self::Psk
        )
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
