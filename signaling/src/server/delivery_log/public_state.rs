//! The group's public state, tracked with openmls' public-group API: the
//! ratchet tree's leaves (credentials and public keys), the group context
//! and transcript hashes. No secret: the delivery service can verify what
//! members sign, never decrypt what they encrypt.
//!
//! Everything here parses hostile bytes. Errors carry a fixed,
//! client-safe reason; openmls' own error detail goes to a `debug` line.

use super::Invalid;
use super::leaf_cap;
use mls_store::MlsStore;
use openmls::prelude::{
    BasicCredential, Ciphersuite, ContentType, KeyPackage, KeyPackageRef, LeafNodeIndex,
    MlsMessageBodyIn, MlsMessageIn, ProcessedMessageContent, Proposal, ProposalStore,
    ProtocolVersion, PublicGroup, Sender, StagedCommit, tls_codec::Deserialize as _,
    tls_codec::Size as _,
};
use openmls_rust_crypto::RustCrypto;
use std::collections::BTreeSet;

/// The one ciphersuite rooms use (the clients' fixed choice):
/// `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`.
const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

fn detail(reason: Invalid, e: &dyn std::fmt::Display) -> Invalid {
    tracing::debug!(error = %e, reason = reason.0, "MLS message refused");
    reason
}

/// The identity a basic credential names, if it is UTF-8.
fn identity(credential: &openmls::prelude::Credential) -> Option<String> {
    let basic = BasicCredential::try_from(credential.clone()).ok()?;
    String::from_utf8(basic.identity().to_vec()).ok()
}

/// A KeyPackage that passed [`key_package`].
#[derive(Debug, Clone)]
pub(super) struct ValidKeyPackage {
    /// Its reference (RFC 9420 §5.2): what a commit's Add and a Welcome's
    /// secrets name it by.
    pub(super) hash_ref: KeyPackageRef,
    /// The signature key of the leaf it becomes.
    pub(super) signature_key: Vec<u8>,
}

/// Checks a KeyPackage `participant` (whose identity is `identity`) sent:
/// it parses, its signatures and lifetime verify, it is for the rooms'
/// ciphersuite, its basic credential names `identity` and its leaf is
/// within [`leaf_cap::MAX_LEAF_NODE_BYTES`] (a commit adding it would be
/// refused otherwise).
pub(super) fn key_package(
    crypto: &RustCrypto,
    bytes: &[u8],
    identity_: &str,
) -> Result<ValidKeyPackage, Invalid> {
    const BAD: Invalid = Invalid("not a valid KeyPackage");
    let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| detail(BAD, &e))?;
    let MlsMessageBodyIn::KeyPackage(kp) = message.extract() else {
        return Err(BAD);
    };
    let kp: KeyPackage = kp
        .validate(crypto, ProtocolVersion::Mls10)
        .map_err(|e| detail(BAD, &e))?;
    if kp.ciphersuite() != CIPHERSUITE {
        return Err(Invalid("KeyPackage for another ciphersuite"));
    }
    if identity(kp.leaf_node().credential()).as_deref() != Some(identity_) {
        return Err(Invalid(
            "KeyPackage credential does not name the participant's identity",
        ));
    }
    leaf_cap::check_leaf(kp.leaf_node().tls_serialized_len())?;
    let hash_ref = kp.hash_ref(crypto).map_err(|e| detail(BAD, &e))?;
    Ok(ValidKeyPackage {
        hash_ref,
        signature_key: kp.leaf_node().signature_key().as_slice().to_vec(),
    })
}

/// A commit that processed cleanly against the public state, not yet
/// merged.
pub(super) struct Staged {
    /// The committer's leaf.
    pub(super) sender: u32,
    /// The KeyPackages it adds, in order.
    pub(super) adds: Vec<KeyPackageRef>,
    /// The leaves it removes, in order.
    pub(super) removes: Vec<u32>,
    staged: StagedCommit,
}

/// Why a commit did not stage.
pub(super) enum StageError {
    /// It is for another epoch.
    WrongEpoch,
    /// It is malformed, forged or not allowed.
    Invalid(Invalid),
}

/// One group incarnation's public state.
pub(super) struct PublicState {
    group: PublicGroup,
    /// openmls persists the public group on every merge; this in-memory
    /// store (a compact binary encoding: the whole tree is rewritten on
    /// every commit) is the incarnation's own and dies with it.
    storage: MlsStore,
}

impl std::fmt::Debug for PublicState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicState")
            .field("epoch", &self.epoch())
            .field("members", &self.group.members().count())
            .finish_non_exhaustive()
    }
}

impl PublicState {
    /// The founder's epoch-0 GroupInfo with its ratchet tree: for
    /// `group_id`, at epoch 0, the founder alone at leaf 0 under
    /// `founder_identity`, signed by it.
    pub(super) fn from_group_info(
        crypto: &RustCrypto,
        bytes: &[u8],
        group_id: &[u8],
        founder_identity: &str,
    ) -> Result<Self, Invalid> {
        const BAD: Invalid = Invalid("not a valid GroupInfo");
        let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| detail(BAD, &e))?;
        let MlsMessageBodyIn::GroupInfo(info) = message.extract() else {
            return Err(BAD);
        };
        if info.ciphersuite() != CIPHERSUITE {
            return Err(Invalid("GroupInfo for another ciphersuite"));
        }
        if info.group_id().as_slice() != group_id {
            return Err(Invalid("GroupInfo for another group id"));
        }
        if info.epoch().as_u64() != 0 {
            return Err(Invalid("GroupInfo not of epoch 0"));
        }
        // A one-member GroupInfo is its founder's leaf and a few hundred
        // bytes more: refuse a far larger one before verifying its tree.
        if bytes.len() > 2 * leaf_cap::MAX_LEAF_NODE_BYTES {
            return Err(leaf_cap::LEAF_TOO_LARGE);
        }
        let tree = info
            .extensions()
            .ratchet_tree()
            .map(|ext| ext.ratchet_tree().clone())
            .ok_or(Invalid("GroupInfo without its ratchet tree"))?;
        let storage = MlsStore::new();
        // Verifies the tree (leaf signatures, parent hashes, tree hash
        // against the group context) and the GroupInfo's signature by the
        // leaf it names.
        let (group, _) =
            PublicGroup::from_external(crypto, &storage, tree, info, ProposalStore::new())
                .map_err(|e| detail(BAD, &e))?;
        let members: Vec<_> = group.members().collect();
        let [founder] = members.as_slice() else {
            return Err(Invalid("GroupInfo must hold the founder alone"));
        };
        if founder.index.u32() != 0
            || identity(&founder.credential).as_deref() != Some(founder_identity)
        {
            return Err(Invalid(
                "GroupInfo member is not the founder's identity at leaf 0",
            ));
        }
        let state = Self { group, storage };
        leaf_cap::check_leaf(state.leaf_size(0).unwrap_or(0))?;
        Ok(state)
    }

    /// The current epoch.
    pub(super) fn epoch(&self) -> u64 {
        self.group.group_context().epoch().as_u64()
    }

    /// The encoded size of leaf `leaf`'s node, if the leaf is occupied.
    pub(super) fn leaf_size(&self, leaf: u32) -> Option<usize> {
        self.group
            .leaf(LeafNodeIndex::new(leaf))
            .map(|l| l.tls_serialized_len())
    }

    /// The leaf whose signature key is `key`.
    pub(super) fn leaf_with_key(&self, key: &[u8]) -> Option<u32> {
        self.group
            .members()
            .find(|m| m.signature_key == key)
            .map(|m| m.index.u32())
    }

    /// Parses and processes a commit: a `PublicMessage` commit for this
    /// group's current epoch, from a member, whose signature, proposals and
    /// update path check out, holding only Add and Remove proposals, and
    /// putting no leaf over [`leaf_cap::MAX_LEAF_NODE_BYTES`] in the tree
    /// (checked before processing, which is the costly part).
    pub(super) fn stage(&self, crypto: &RustCrypto, bytes: &[u8]) -> Result<Staged, StageError> {
        const BAD: Invalid = Invalid("not a valid commit");
        let invalid = |reason| StageError::Invalid(reason);
        let message =
            MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| invalid(detail(BAD, &e)))?;
        let MlsMessageBodyIn::PublicMessage(public) = message.extract() else {
            return Err(invalid(Invalid("a commit must be a PublicMessage")));
        };
        if public.content_type() != ContentType::Commit {
            return Err(invalid(Invalid("not a commit")));
        }
        if public.group_id() != self.group.group_id() {
            return Err(invalid(Invalid("commit for another group")));
        }
        if public.epoch().as_u64() != self.epoch() {
            return Err(StageError::WrongEpoch);
        }
        let Sender::Member(sender) = *public.sender() else {
            return Err(invalid(Invalid("commit not sent by a member")));
        };
        leaf_cap::check_commit(bytes).map_err(invalid)?;
        let processed = self
            .group
            .process_message(crypto, public)
            .map_err(|e| invalid(detail(BAD, &e)))?;
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
            return Err(invalid(BAD));
        };
        if staged
            .queued_proposals()
            .any(|q| !matches!(q.proposal(), Proposal::Add(_) | Proposal::Remove(_)))
        {
            return Err(invalid(Invalid("a commit may only add and remove members")));
        }
        let mut adds = Vec::new();
        for add in staged.add_proposals() {
            let r = add
                .add_proposal()
                .key_package()
                .hash_ref(crypto)
                .map_err(|e| invalid(detail(BAD, &e)))?;
            adds.push(r);
        }
        let removes = staged
            .remove_proposals()
            .map(|r| r.remove_proposal().removed().u32())
            .collect();
        Ok(Staged {
            sender: sender.u32(),
            adds,
            removes,
            staged: *staged,
        })
    }

    /// Applies a staged commit: the group moves to the next epoch.
    pub(super) fn merge(&mut self, staged: Staged) -> Result<(), Invalid> {
        self.group
            .merge_commit(&self.storage, staged.staged)
            .map_err(|e| detail(Invalid("commit could not be applied"), &e))
    }
}

/// Checks a Welcome against the KeyPackages a commit adds: it parses, is
/// for the rooms' ciphersuite and holds secrets for exactly those
/// KeyPackages. (Its contents are encrypted to them; nothing else can be
/// checked here.)
pub(super) fn check_welcome(bytes: &[u8], adds: &[KeyPackageRef]) -> Result<(), Invalid> {
    const BAD: Invalid = Invalid("the Welcome does not match the commit's adds");
    let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| detail(BAD, &e))?;
    let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
        return Err(BAD);
    };
    if welcome.ciphersuite() != CIPHERSUITE {
        return Err(BAD);
    }
    let named: BTreeSet<KeyPackageRef> = welcome.secrets().iter().map(|s| s.new_member()).collect();
    let added: BTreeSet<KeyPackageRef> = adds.iter().cloned().collect();
    if named != added || welcome.secrets().len() != adds.len() {
        return Err(BAD);
    }
    Ok(())
}
