//! Incoming messages from the group log, and outgoing application messages.

use std::fmt;

use openmls::prelude::{
    CreateMessageError, MlsMessageBodyIn, MlsMessageIn, ProcessedMessageContent, ProtocolMessage,
    Sender, StagedCommit, tls_codec::Deserialize as _,
};

use super::{
    Member, MlsClient,
    error::{GroupError, from_process, from_state, logged},
    history::{added_keys, added_members, leaves_changed, note_added},
    member::identity_bytes,
};

/// What [`MlsClient::process`] made of a message.
#[non_exhaustive]
pub enum Processed {
    /// Another member's commit, already merged: the group is now at `epoch`.
    /// `removed` may contain ourselves, in which case the group state has
    /// been dropped (`in_group()` is false).
    Commit {
        /// The new epoch.
        epoch: u64,
        /// Members this commit added, with their new leaves.
        added: Vec<Member>,
        /// Members this commit removed, with their former leaves.
        removed: Vec<Member>,
    },
    /// A decrypted application message (chat), authenticated as `sender`'s
    /// in the epoch it was sent in.
    Application {
        /// The sending member.
        sender: Member,
        /// The plaintext.
        data: Vec<u8>,
    },
    /// A message that needs no action: a standalone proposal (we only
    /// accept proposals inside commits), our own message echoed back, or a
    /// Welcome, KeyPackage or GroupInfo that is not group traffic.
    Ignored,
}

impl fmt::Debug for Processed {
    // By hand: never print plaintext.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Commit {
                epoch,
                added,
                removed,
            } => f
                .debug_struct("Commit")
                .field("epoch", epoch)
                .field("added", added)
                .field("removed", removed)
                .finish(),
            Self::Application { sender, data } => f
                .debug_struct("Application")
                .field("sender", sender)
                .field("len", &data.len())
                .finish(),
            Self::Ignored => f.write_str("Ignored"),
        }
    }
}

impl MlsClient {
    /// Processes one handshake or application message from the group log.
    ///
    /// Another member's commit is validated and merged at once (superseding
    /// any pending commit of ours, which lost the epoch). Errors leave the
    /// group state unchanged: `WrongEpoch` for a stale or future commit or
    /// an application message older than `max_past_epochs`, `WrongGroup`,
    /// `InvalidMessage` for anything unparsable or unauthentic (including a
    /// handshake message sent as a `PrivateMessage`, and a commit from
    /// outside the group), `NotInGroup` without a group. Do not pass our own messages echoed back.
    pub fn process(&mut self, message: &[u8]) -> Result<Processed, GroupError> {
        let result = self.process_inner(message);
        let stats = &mut self.stats;
        match &result {
            Ok(Processed::Commit { .. }) => stats.commits_merged += 1,
            Ok(Processed::Application { .. }) => stats.application_received += 1,
            Ok(Processed::Ignored) => stats.ignored += 1,
            Err(GroupError::WrongEpoch) => stats.rejected_wrong_epoch += 1,
            Err(GroupError::WrongGroup) => stats.rejected_wrong_group += 1,
            Err(GroupError::InvalidMessage) => stats.rejected_invalid += 1,
            Err(_) => {}
        }
        result
    }

    fn process_inner(&mut self, message: &[u8]) -> Result<Processed, GroupError> {
        let group = self.group.as_mut().ok_or(GroupError::NotInGroup)?;
        let parsed = MlsMessageIn::tls_deserialize_exact(message)
            .map_err(|e| logged(GroupError::InvalidMessage, "message parse failed", &e))?;
        let protocol: ProtocolMessage = match parsed.extract() {
            MlsMessageBodyIn::PrivateMessage(m) => m.into(),
            MlsMessageBodyIn::PublicMessage(m) => m.into(),
            _ => return Ok(Processed::Ignored),
        };
        if protocol.group_id() != group.group_id() {
            return Err(GroupError::WrongGroup);
        }
        let from_past_epoch = protocol.epoch() < group.epoch();
        let processed = group
            .process_message(&self.provider, protocol)
            .map_err(|e| from_process(e, from_past_epoch))?;
        let epoch = processed.epoch().as_u64();
        let sender = processed.sender().clone();
        let credential = processed.credential().clone();
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => {
                let Sender::Member(leaf) = sender else {
                    // openmls only accepts application messages from members.
                    return Err(GroupError::InvalidMessage);
                };
                let leaf = leaf.u32();
                let identity = String::from_utf8_lossy(&identity_bytes(&credential)).into_owned();
                let sender = self
                    .sender_at(epoch, leaf)
                    .filter(|m| m.identity == identity)
                    .unwrap_or_else(|| {
                        tracing::debug!(epoch, leaf, "sender not in remembered rosters");
                        Member {
                            leaf,
                            identity,
                            signature_key: Vec::new(),
                        }
                    });
                Ok(Processed::Application {
                    sender,
                    data: app.into_bytes(),
                })
            }
            ProcessedMessageContent::StagedCommitMessage(staged) => {
                // Only members commit in our rooms: an external commit
                // would let whoever holds a GroupInfo (the delivery service
                // does) join by itself.
                let Sender::Member(committer) = sender else {
                    tracing::debug!("commit from outside the group refused");
                    return Err(GroupError::InvalidMessage);
                };
                self.merge_incoming(*staged, committer.u32())
            }
            _ => Ok(Processed::Ignored),
        }
    }

    /// The member at `leaf` in `epoch` (current or remembered past).
    fn sender_at(&self, epoch: u64, leaf: u32) -> Option<Member> {
        let group = self.group.as_ref()?;
        if group.epoch().as_u64() == epoch {
            group
                .member_at(openmls::prelude::LeafNodeIndex::new(leaf))
                .map(|m| Member::from(&m))
        } else {
            let current = |leaf| {
                group
                    .member_at(openmls::prelude::LeafNodeIndex::new(leaf))
                    .map(|m| Member::from(&m))
            };
            self.history.lookup(epoch, leaf, current)
        }
    }

    fn merge_incoming(
        &mut self,
        staged: StagedCommit,
        committer: u32,
    ) -> Result<Processed, GroupError> {
        let group = self.group.as_mut().ok_or(GroupError::NotInGroup)?;
        let old_epoch = group.epoch().as_u64();
        let mut changes = leaves_changed(group, &staged, committer);
        let removed: Vec<Member> = staged
            .remove_proposals()
            .filter_map(|r| {
                let leaf = r.remove_proposal().removed().u32();
                changes
                    .iter()
                    .find(|(l, _)| *l == leaf)
                    .and_then(|(_, m)| m.clone())
            })
            .collect();
        let added_keys = added_keys(&staged);
        let self_removed = staged.self_removed();
        if group.pending_commit().is_some() {
            tracing::debug!(epoch = old_epoch, "own pending commit superseded");
        }
        group
            .merge_staged_commit(&self.provider, staged)
            .map_err(|e| logged(GroupError::Internal, "merging commit failed", &e))?;
        let epoch = group.epoch().as_u64();
        let added = added_members(group, &added_keys);
        note_added(&mut changes, &added);
        self.history
            .record(old_epoch, changes, self.cfg.max_past_epochs);
        tracing::debug!(
            epoch,
            added = added.len(),
            removed = removed.len(),
            removed_self = self_removed,
            "commit merged"
        );
        if self_removed {
            self.leave_group();
        }
        Ok(Processed::Commit {
            epoch,
            added,
            removed,
        })
    }

    /// Encrypts an application message (chat) for the current epoch. Allowed
    /// while a commit of ours is pending.
    pub fn encrypt_application(&mut self, data: &[u8]) -> Result<Vec<u8>, GroupError> {
        let group = self.group.as_mut().ok_or(GroupError::NotInGroup)?;
        let message = group
            .create_message(&self.provider, &self.signer, data)
            .map_err(|e| {
                let kind = match &e {
                    CreateMessageError::GroupStateError(s) => from_state(s),
                    _ => GroupError::Internal,
                };
                logged(kind, "encrypting application message failed", &e)
            })?;
        let bytes = message
            .to_bytes()
            .map_err(|e| logged(GroupError::Internal, "encoding message failed", &e))?;
        self.stats.application_sent += 1;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::MlsConfig;
    use openmls::prelude::{
        MlsGroupJoinConfig, OpenMlsProvider as _, PURE_CIPHERTEXT_WIRE_FORMAT_POLICY,
    };

    fn pair() -> (MlsClient, MlsClient) {
        let mut a = MlsClient::new("alice", MlsConfig::default()).unwrap();
        let mut b = MlsClient::new("bob", MlsConfig::default()).unwrap();
        a.create_group(b"room").unwrap();
        let kp = b.key_package().unwrap();
        let commit = a.commit(&[&kp], &[]).unwrap();
        a.merge_pending_commit().unwrap();
        assert!(b.join(&commit.welcome.unwrap()).unwrap());
        (a, b)
    }

    /// A commit sent as a PrivateMessage would hide from the delivery
    /// service what it changes: members refuse it and stay where they are.
    #[test]
    fn a_commit_sent_as_a_private_message_is_refused() {
        let (mut a, mut b) = pair();
        let ciphertext = MlsGroupJoinConfig::builder()
            .wire_format_policy(PURE_CIPHERTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .build();
        let group = a.group.as_mut().unwrap();
        group
            .set_configuration(a.provider.storage(), &ciphertext)
            .unwrap();
        let commit = a.self_update().unwrap();
        // wire_format 2: PrivateMessage.
        assert_eq!(&commit.commit[2..4], &[0, 2]);
        assert!(matches!(
            b.process(&commit.commit),
            Err(GroupError::InvalidMessage)
        ));
        assert_eq!(b.epoch(), Some(1));
        // The same change as a PublicMessage goes through.
        a.clear_pending_commit();
        let public = MlsConfig::default().join_config();
        let group = a.group.as_mut().unwrap();
        group
            .set_configuration(a.provider.storage(), &public)
            .unwrap();
        let commit = a.self_update().unwrap();
        assert_eq!(&commit.commit[2..4], &[0, 1]);
        assert!(matches!(
            b.process(&commit.commit),
            Ok(Processed::Commit { epoch: 2, .. })
        ));
    }
}
