//! The registry's MLS delivery operations. Each appends to the room's log
//! and broadcasts the entry to every member (the sender included) under the
//! room's lock, so every member receives the log in one order.

use super::{Rooms, broadcast_mls, delivered};
use crate::proto::ServerMessage;
use crate::server::delivery_log::{CommitMsg, CommitRefusal, NotMember};

/// Why an MLS message was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MlsError {
    /// The participant is no longer in the room (it is being removed).
    Gone,
    /// Commits and application messages need group membership.
    NotMember,
}

impl Rooms {
    /// Stores `pid`'s KeyPackage (the latest wins) and logs it.
    pub(crate) fn mls_key_package(
        &self,
        room: &str,
        pid: &str,
        key_package: String,
    ) -> Result<(), MlsError> {
        let mut r = self.map.get_mut(room).ok_or(MlsError::Gone)?;
        let r = &mut *r;
        if !r.members.contains_key(pid) {
            return Err(MlsError::Gone);
        }
        let entry = r.mls.key_package(pid, key_package);
        broadcast_mls(&self.metrics, r, &entry);
        Ok(())
    }

    /// A commit. Returns whether it won its epoch. A losing sender gets
    /// `mls_commit_rejected` through its outbox, so it arrives after the
    /// log entry that made the commit stale.
    pub(crate) fn mls_commit(
        &self,
        room: &str,
        pid: &str,
        msg: CommitMsg,
    ) -> Result<bool, MlsError> {
        let mut r = self.map.get_mut(room).ok_or(MlsError::Gone)?;
        let r = &mut *r;
        let Some(sender) = r.members.get(pid) else {
            return Err(MlsError::Gone);
        };
        let epoch = msg.epoch;
        let members = &r.members;
        match r.mls.commit(pid, msg, |p| members.contains_key(p)) {
            Ok(entry) => {
                tracing::debug!(participant = %pid, epoch, "MLS commit accepted");
                broadcast_mls(&self.metrics, r, &entry);
                Ok(true)
            }
            Err(CommitRefusal::NotMember) => Err(MlsError::NotMember),
            Err(CommitRefusal::WrongEpoch { current }) => {
                tracing::debug!(participant = %pid, epoch, current, "MLS commit rejected");
                self.metrics.mls_commit_rejected();
                let d = sender.outbox.send_msg(ServerMessage::MlsCommitRejected {
                    epoch,
                    current_epoch: current,
                });
                delivered(&self.metrics, pid, d);
                Ok(false)
            }
        }
    }

    /// An application message from a group member.
    pub(crate) fn mls_application(
        &self,
        room: &str,
        pid: &str,
        epoch: u64,
        message: String,
    ) -> Result<(), MlsError> {
        let mut r = self.map.get_mut(room).ok_or(MlsError::Gone)?;
        let r = &mut *r;
        if !r.members.contains_key(pid) {
            return Err(MlsError::Gone);
        }
        let entry = r
            .mls
            .application(pid, epoch, message)
            .map_err(|NotMember| MlsError::NotMember)?;
        broadcast_mls(&self.metrics, r, &entry);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::{drain, join_with, setup};
    use crate::proto::{LeaveReason, MlsEntry, ServerMessage};
    use crate::server::delivery_log::CommitMsg;
    use crate::server::outbox::Queued;

    fn commit(epoch: u64, added: Vec<String>) -> CommitMsg {
        CommitMsg {
            epoch,
            commit: "Yw==".into(),
            welcome: None,
            added,
            removed: Vec::new(),
        }
    }

    /// (seq, entry) pairs, and (epoch, current_epoch) rejections.
    type Seen = (Vec<(u64, MlsEntry)>, Vec<(u64, u64)>);

    /// The MLS entries and rejections among queued items.
    fn mls(items: Vec<Queued>) -> Seen {
        let (mut entries, mut rejected) = (Vec::new(), Vec::new());
        for q in items {
            match q {
                Queued::Mls(l) => match serde_json::from_str(&l.text).unwrap() {
                    ServerMessage::Mls { seq, entry } => entries.push((seq, entry)),
                    other => panic!("{other:?}"),
                },
                Queued::Msg(ServerMessage::MlsCommitRejected {
                    epoch,
                    current_epoch,
                }) => rejected.push((epoch, current_epoch)),
                _ => {}
            }
        }
        (entries, rejected)
    }

    #[tokio::test]
    async fn founder_commits_then_a_stale_commit_is_rejected_after_the_winner() {
        let (rooms, _, _) = setup();
        let a = join_with(&rooms, "a", 64);
        assert!(a.joined.mls.founder);
        assert_eq!(a.joined.mls.seq, 0);
        let b = join_with(&rooms, "b", 64);
        assert!(!b.joined.mls.founder);
        assert_eq!(b.joined.mls.group_id, a.joined.mls.group_id);

        rooms.mls_key_package("r", &b.pid, "a3A=".into()).unwrap();
        // Bob is not a member yet.
        assert_eq!(
            rooms.mls_commit("r", &b.pid, commit(0, vec![])),
            Err(super::MlsError::NotMember)
        );
        assert_eq!(
            rooms.mls_application("r", &b.pid, 0, "eA==".into()),
            Err(super::MlsError::NotMember)
        );
        assert_eq!(
            rooms.mls_commit("r", &a.pid, commit(0, vec![b.pid.clone()])),
            Ok(true)
        );
        // Now Bob is, and his commit for the spent epoch loses.
        assert_eq!(rooms.mls_commit("r", &b.pid, commit(0, vec![])), Ok(false));
        rooms
            .mls_application("r", &b.pid, 1, "eA==".into())
            .unwrap();

        for j in [&a, &b] {
            let (entries, rejected) = mls(drain(j).await);
            let seqs: Vec<u64> = entries.iter().map(|(s, _)| *s).collect();
            assert_eq!(seqs, [1, 2, 3]);
            assert!(matches!(entries[0].1, MlsEntry::KeyPackage { .. }));
            assert!(
                matches!(&entries[1].1, MlsEntry::Commit { added, .. } if *added == [b.pid.clone()])
            );
            assert!(matches!(entries[2].1, MlsEntry::Application { .. }));
            let want: &[(u64, u64)] = if j.pid == b.pid { &[(0, 1)] } else { &[] };
            assert_eq!(rejected, want);
        }
    }

    #[tokio::test]
    async fn the_last_member_leaving_resets_the_group() {
        let (rooms, _, _) = setup();
        let a = join_with(&rooms, "a", 64);
        let b = join_with(&rooms, "b", 64);
        let c = join_with(&rooms, "c", 64);
        assert!(rooms.leave("r", &a.pid, a.sig.id(), LeaveReason::Left));
        let (entries, _) = mls(drain(&c).await);
        let [(1, MlsEntry::Reset { group_id, founder })] = entries.as_slice() else {
            panic!("expected one reset, got {entries:?}")
        };
        assert_eq!(*founder, b.pid, "the earliest-joined remaining founds");
        assert_ne!(*group_id, a.joined.mls.group_id);
        // Bob may commit now; Carol may not.
        assert_eq!(
            rooms.mls_commit("r", &c.pid, commit(0, vec![])),
            Err(super::MlsError::NotMember)
        );
        assert_eq!(
            rooms.mls_commit("r", &b.pid, commit(0, vec![c.pid.clone()])),
            Ok(true)
        );
        // A non-member leaving resets nothing.
        let d = join_with(&rooms, "d", 64);
        assert!(rooms.leave("r", &d.pid, d.sig.id(), LeaveReason::Left));
        let (entries, _) = mls(drain(&c).await);
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert_eq!(rooms.counts().mls_log_entries, 2);
    }
}
