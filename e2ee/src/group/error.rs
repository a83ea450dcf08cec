//! The module's error type and the mapping from openmls' many error enums.
//!
//! openmls errors are generic over the storage error and very detailed. We
//! fold them into a few kinds a caller can act on; the detail goes to a
//! `debug` log line (error text only, never message bytes or keys).

use mls_store::StoreError;
use openmls::{
    framing::errors::{MessageDecryptionError, SecretTreeError},
    prelude::{
        KeyPackageVerifyError, MlsGroupStateError, ProcessMessageError, ValidationError,
        WelcomeError,
    },
};

/// Why an [`MlsClient`](super::MlsClient) operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// There is no group: never joined, left, or removed by a commit.
    #[error("not a member of any group")]
    NotInGroup,
    /// `create_group`/`join` while already in a group; call `leave_group`
    /// first.
    #[error("already a member of a group")]
    AlreadyInGroup,
    /// The message belongs to another epoch: a stale commit (its epoch has
    /// passed, e.g. the loser of a commit race), a message from the future, or
    /// an application message older than `max_past_epochs`.
    #[error("message is for another epoch")]
    WrongEpoch,
    /// The message belongs to another group.
    #[error("message is for another group")]
    WrongGroup,
    /// Not a well-formed, authentic MLS message for this group: parse,
    /// decryption, signature or commit validation failed.
    #[error("invalid MLS message")]
    InvalidMessage,
    /// Not a valid KeyPackage: garbage, bad signature, expired, wrong
    /// ciphersuite, not a basic credential, identity not UTF-8, or keys that
    /// clash with current members.
    #[error("invalid KeyPackage")]
    InvalidKeyPackage,
    /// The Welcome has no secrets for any of our KeyPackages. `join` reports
    /// this case as `Ok(false)` rather than as this error.
    #[error("the Welcome is not for us")]
    WelcomeNotForUs,
    /// A commit of ours is pending: merge or clear it first.
    #[error("a commit is pending")]
    PendingCommit,
    /// `merge_pending_commit` without a pending commit (it may have been
    /// superseded by another member's commit that `process` merged).
    #[error("no commit is pending")]
    NoPendingCommit,
    /// `commit` was given nothing valid: no valid new KeyPackage and no leaf
    /// to remove other than our own.
    #[error("nothing valid to commit")]
    NothingToCommit,
    /// A caller-supplied argument is out of range (e.g. an empty identity or
    /// an exporter length above 65535).
    #[error("invalid argument")]
    InvalidArgument,
    /// A cryptographic primitive failed (key generation, export).
    #[error("cryptographic operation failed")]
    Crypto,
    /// openmls reported an internal or storage error.
    #[error("internal MLS error")]
    Internal,
}

/// Logs the detailed openmls error at `debug` and returns `kind`.
pub(super) fn logged(kind: GroupError, what: &str, detail: &dyn std::fmt::Display) -> GroupError {
    tracing::debug!(error = %detail, kind = %kind, "{what}");
    kind
}

pub(super) fn from_state(e: &MlsGroupStateError) -> GroupError {
    match e {
        MlsGroupStateError::UseAfterEviction => GroupError::NotInGroup,
        MlsGroupStateError::PendingCommit => GroupError::PendingCommit,
        MlsGroupStateError::NoPendingCommit => GroupError::NoPendingCommit,
        _ => GroupError::Internal,
    }
}

/// `from_past_epoch`: the message claims an epoch before the group's, so a
/// missing secret tree means "epoch no longer (or never) held", not forgery.
pub(super) fn from_process(
    e: ProcessMessageError<StoreError>,
    from_past_epoch: bool,
) -> GroupError {
    let kind = match &e {
        ProcessMessageError::ValidationError(
            ValidationError::WrongEpoch | ValidationError::NoPastEpochData,
        ) => GroupError::WrongEpoch,
        ProcessMessageError::ValidationError(ValidationError::UnableToDecrypt(
            MessageDecryptionError::SecretTreeError(SecretTreeError::TooDistantInThePast),
        )) if from_past_epoch => GroupError::WrongEpoch,
        ProcessMessageError::ValidationError(ValidationError::WrongGroupId) => {
            GroupError::WrongGroup
        }
        ProcessMessageError::GroupStateError(s) => from_state(s),
        ProcessMessageError::LibraryError(_) | ProcessMessageError::StorageError(_) => {
            GroupError::Internal
        }
        _ => GroupError::InvalidMessage,
    };
    logged(kind, "process_message failed", &e)
}

pub(super) fn from_welcome(e: WelcomeError<StoreError>) -> GroupError {
    let kind = match &e {
        WelcomeError::NoMatchingKeyPackage | WelcomeError::JoinerSecretNotFound => {
            GroupError::WelcomeNotForUs
        }
        WelcomeError::LibraryError(_)
        | WelcomeError::StorageError(_)
        | WelcomeError::GroupAlreadyExists => GroupError::Internal,
        _ => GroupError::InvalidMessage,
    };
    logged(kind, "welcome rejected", &e)
}

pub(super) fn from_key_package(e: KeyPackageVerifyError) -> GroupError {
    let kind = match &e {
        KeyPackageVerifyError::LibraryError(_) => GroupError::Internal,
        _ => GroupError::InvalidKeyPackage,
    };
    logged(kind, "key package rejected", &e)
}
