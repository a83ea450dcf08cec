//! Creating our own commits and resolving them once the delivery service
//! has decided (merge if accepted, clear if another commit won the epoch).

use std::collections::HashSet;

use openmls::{
    prelude::{CreateCommitError, LeafNodeIndex, MlsGroup, MlsMessageOut, OpenMlsProvider as _},
    treesync::EncryptionKey,
};

use super::{
    MlsClient,
    error::{GroupError, logged},
    history::{added_keys, added_members, leaves_changed, note_added},
    key_package::{self, ValidKeyPackage},
};

/// A commit we created, pending until the delivery service accepts or
/// rejects it. Send `commit` to the group log and, once accepted, `welcome`
/// to the new members; then call
/// [`MlsClient::merge_pending_commit`]. If another commit wins the epoch,
/// call [`MlsClient::clear_pending_commit`] (or just `process` the winner).
#[derive(Debug, Clone)]
pub struct Commit {
    /// The Commit (`MLSMessage`, a signed `PublicMessage`).
    pub commit: Vec<u8>,
    /// The Welcome for the added members (with the ratchet tree), if any.
    pub welcome: Option<Vec<u8>>,
    /// Indices into the `add` slice of the KeyPackages that were valid and
    /// are added by this commit.
    pub added: Vec<usize>,
    /// Leaves this commit removes.
    pub removed: Vec<u32>,
}

impl MlsClient {
    /// One commit adding the valid KeyPackages among `add` and removing the
    /// `remove` leaves. Invalid KeyPackages (see
    /// [`Self::key_package_identity`], plus signature or encryption keys that
    /// clash with remaining members or with each other) are skipped, as are
    /// our own leaf, unknown leaves and duplicates; [`Commit::added`] and
    /// [`Commit::removed`] say what is in it. `NothingToCommit` if nothing
    /// is left. The commit stays pending until
    /// [`Self::merge_pending_commit`] or [`Self::clear_pending_commit`];
    /// application messages can still be sent meanwhile (in the old epoch).
    pub fn commit(&mut self, add: &[&[u8]], remove: &[u32]) -> Result<Commit, GroupError> {
        let group = operational_group(&mut self.group)?;
        let own = group.own_leaf_index().u32();
        let mut removed: Vec<u32> = Vec::new();
        for &leaf in remove {
            let known = group.member_at(LeafNodeIndex::new(leaf)).is_some();
            if leaf != own && known && !removed.contains(&leaf) {
                removed.push(leaf);
            } else {
                tracing::debug!(
                    leaf,
                    "commit: skipping removal of own, unknown or repeated leaf"
                );
            }
        }

        // openmls rejects the whole commit if any key repeats (RFC 9420
        // §7.3, §12.2), so filter per KeyPackage first. Leaves being removed
        // free their keys, which lets a reconnecting client replace its stale
        // leaf in the same commit.
        let mut signature_keys = HashSet::new();
        let mut hpke_keys = HashSet::new();
        for m in group.members() {
            if !removed.contains(&m.index.u32()) {
                signature_keys.insert(m.signature_key);
                hpke_keys.insert(EncryptionKey::from(m.encryption_key));
            }
        }
        let mut added = Vec::new();
        let mut key_packages = Vec::new();
        for (i, bytes) in add.iter().enumerate() {
            let Ok(ValidKeyPackage { key_package, .. }) =
                key_package::validate(self.provider.crypto(), bytes)
            else {
                self.stats.rejected_key_packages += 1;
                continue;
            };
            let leaf = key_package.leaf_node();
            let signature_key = leaf.signature_key().as_slice().to_vec();
            let encryption_key = leaf.encryption_key().clone();
            let init_key = EncryptionKey::from(key_package.hpke_init_key().as_slice().to_vec());
            if signature_keys.contains(&signature_key)
                || hpke_keys.contains(&encryption_key)
                || hpke_keys.contains(&init_key)
            {
                tracing::debug!(index = i, "commit: skipping KeyPackage with clashing keys");
                self.stats.rejected_key_packages += 1;
                continue;
            }
            signature_keys.insert(signature_key);
            hpke_keys.insert(encryption_key);
            hpke_keys.insert(init_key);
            added.push(i);
            key_packages.push(key_package);
        }
        if added.is_empty() && removed.is_empty() {
            return Err(GroupError::NothingToCommit);
        }

        let has_adds = !key_packages.is_empty();
        let bundle = group
            .commit_builder()
            .propose_adds(key_packages)
            .propose_removals(removed.iter().map(|&l| LeafNodeIndex::new(l)))
            .load_psks(self.provider.storage())
            .map_err(|e| build_error(&e, has_adds))?
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true,
            )
            .map_err(|e| build_error(&e, has_adds))?
            .stage_commit(&self.provider)
            .map_err(|e| logged(GroupError::Internal, "staging commit failed", &e))?;
        let (commit, welcome, _group_info) = bundle.into_messages();
        tracing::debug!(
            epoch = group.epoch().as_u64(),
            added = added.len(),
            removed = removed.len(),
            "commit created"
        );
        Ok(Commit {
            commit: encode(&commit)?,
            welcome: welcome.as_ref().map(encode).transpose()?,
            added,
            removed,
        })
    }

    /// A commit that only refreshes our leaf and path keys (post-compromise
    /// security). Pending like [`Self::commit`].
    pub fn self_update(&mut self) -> Result<Commit, GroupError> {
        let group = operational_group(&mut self.group)?;
        let bundle = group
            .commit_builder()
            .force_self_update(true)
            .load_psks(self.provider.storage())
            .map_err(|e| build_error(&e, false))?
            .build(
                self.provider.rand(),
                self.provider.crypto(),
                &self.signer,
                |_| true,
            )
            .map_err(|e| build_error(&e, false))?
            .stage_commit(&self.provider)
            .map_err(|e| logged(GroupError::Internal, "staging self-update failed", &e))?;
        let commit = bundle.into_commit();
        tracing::debug!(epoch = group.epoch().as_u64(), "self-update created");
        Ok(Commit {
            commit: encode(&commit)?,
            welcome: None,
            added: Vec::new(),
            removed: Vec::new(),
        })
    }

    /// Whether a commit of ours awaits the delivery service's decision.
    pub fn has_pending_commit(&self) -> bool {
        self.group
            .as_ref()
            .is_some_and(|g| g.pending_commit().is_some())
    }

    /// Applies our pending commit (the delivery service accepted it): the
    /// group moves to the next epoch.
    pub fn merge_pending_commit(&mut self) -> Result<(), GroupError> {
        let group = self.group.as_mut().ok_or(GroupError::NotInGroup)?;
        let old_epoch = group.epoch().as_u64();
        let own = group.own_leaf_index().u32();
        let (mut changes, added_keys) = match group.pending_commit() {
            Some(pending) => (leaves_changed(group, pending, own), added_keys(pending)),
            None => return Err(GroupError::NoPendingCommit),
        };
        group
            .merge_pending_commit(&self.provider)
            .map_err(|e| logged(GroupError::Internal, "merging own commit failed", &e))?;
        note_added(&mut changes, &added_members(group, &added_keys));
        self.history
            .record(old_epoch, changes, self.cfg.max_past_epochs);
        self.stats.commits_merged += 1;
        tracing::debug!(epoch = group.epoch().as_u64(), "own commit merged");
        Ok(())
    }

    /// Discards our pending commit (another commit won the epoch). A no-op
    /// without one.
    pub fn clear_pending_commit(&mut self) {
        if let Some(group) = self.group.as_mut()
            && group.pending_commit().is_some()
        {
            if let Err(e) = group.clear_pending_commit(self.provider.storage()) {
                tracing::debug!(error = %e, "clearing pending commit failed");
            } else {
                tracing::debug!(epoch = group.epoch().as_u64(), "own commit discarded");
            }
        }
    }
}

/// The group, if it exists, is active and has no pending commit.
fn operational_group(group: &mut Option<MlsGroup>) -> Result<&mut MlsGroup, GroupError> {
    let group = group.as_mut().ok_or(GroupError::NotInGroup)?;
    if !group.is_active() {
        return Err(GroupError::NotInGroup);
    }
    if group.pending_commit().is_some() {
        return Err(GroupError::PendingCommit);
    }
    Ok(group)
}

fn build_error(e: &CreateCommitError, has_adds: bool) -> GroupError {
    let kind = match e {
        // Our filters should have caught this; blame the KeyPackages only
        // when there were some.
        CreateCommitError::ProposalValidationError(_) if has_adds => GroupError::InvalidKeyPackage,
        _ => GroupError::Internal,
    };
    logged(kind, "building commit failed", e)
}

fn encode(message: &MlsMessageOut) -> Result<Vec<u8>, GroupError> {
    message
        .to_bytes()
        .map_err(|e| logged(GroupError::Internal, "encoding message failed", &e))
}
