//! The registry's MLS delivery operations. Each appends to the room's log
//! and broadcasts the entry to every member (the sender included) under the
//! room's lock, so every member receives the log in one order. The founder
//! timers live here too.

use super::{Room, Rooms, broadcast_mls, delivered};
use crate::proto::ServerMessage;
use crate::server::delivery_log::{
    CommitMsg, CommitRefusal, FounderCheck, Invalid, Logged, NotMember, Refused,
};
use std::sync::Arc;

/// Why an MLS message was not appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MlsError {
    /// The participant is no longer in the room (it is being removed).
    Gone,
    /// Commits and application messages need group membership.
    NotMember,
    /// Malformed, forged or misplaced; the reason is safe to send.
    Invalid(Invalid),
}

impl Rooms {
    /// Checks `pid`'s KeyPackage, stores it (the latest wins) and logs it.
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
        let entries = r.mls.key_package(pid, key_package).map_err(|e| {
            self.metrics
                .mls_refused(Refused::of(e, Refused::InvalidKeyPackage));
            tracing::debug!(participant = %pid, reason = e.0, "KeyPackage refused");
            MlsError::Invalid(e)
        })?;
        for entry in &entries {
            self.broadcast_entry(room, r, entry);
        }
        Ok(())
    }

    /// The founder's epoch-0 GroupInfo: from now on the room tracks the
    /// group's public state.
    pub(crate) fn mls_group_info(
        &self,
        room: &str,
        pid: &str,
        group_info: &str,
    ) -> Result<(), MlsError> {
        let mut r = self.map.get_mut(room).ok_or(MlsError::Gone)?;
        if !r.members.contains_key(pid) {
            return Err(MlsError::Gone);
        }
        match r.mls.group_info(pid, group_info) {
            Ok(created) => {
                if created {
                    tracing::debug!(participant = %pid, "MLS group created");
                }
                Ok(())
            }
            Err(e) => {
                self.metrics
                    .mls_refused(Refused::of(e, Refused::InvalidGroupInfo));
                tracing::debug!(participant = %pid, reason = e.0, "GroupInfo refused");
                Err(MlsError::Invalid(e))
            }
        }
    }

    /// A commit. Returns whether it won its epoch. A commit for another
    /// epoch, or one that does not match the roster, gets
    /// `mls_commit_rejected` through the sender's outbox, so it arrives
    /// after the log entry that made the commit stale; a malformed or
    /// forged one is an error. Every refusal is counted and changes
    /// nothing.
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
        match r.mls.commit(pid, msg) {
            Ok(entry) => {
                tracing::debug!(participant = %pid, epoch, "MLS commit accepted");
                broadcast_mls(&self.metrics, r, &entry);
                Ok(true)
            }
            Err(refusal) => {
                self.metrics.mls_commit_rejected();
                self.metrics.mls_refused(refusal.reason());
                let current = match refusal {
                    CommitRefusal::NotMember => return Err(MlsError::NotMember),
                    CommitRefusal::Invalid(e) => {
                        tracing::info!(participant = %pid, reason = e.0, "MLS commit refused");
                        return Err(MlsError::Invalid(e));
                    }
                    CommitRefusal::WrongEpoch { current } => current,
                    CommitRefusal::Roster { reason, current } => {
                        tracing::info!(participant = %pid, reason = reason.0, "MLS commit refused");
                        current
                    }
                };
                tracing::debug!(participant = %pid, epoch, current, "MLS commit rejected");
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
            .map_err(|NotMember| {
                self.metrics.mls_refused(Refused::NotMember);
                MlsError::NotMember
            })?;
        broadcast_mls(&self.metrics, r, &entry);
        Ok(())
    }

    /// Broadcasts an entry; a `Reset` also starts the new founder's timer.
    fn broadcast_entry(&self, room_name: &str, room: &Room, entry: &Arc<Logged>) {
        if entry.kind == crate::server::delivery_log::EntryKind::Reset {
            self.reset_broadcast(room_name, room, entry);
        } else {
            broadcast_mls(&self.metrics, room, entry);
        }
    }

    /// Broadcasts a `Reset` entry and starts the new founder's timer.
    pub(super) fn reset_broadcast(&self, room_name: &str, room: &Room, reset: &Arc<Logged>) {
        broadcast_mls(&self.metrics, room, reset);
        self.arm_founder_timer(room_name, room.mls.group_id().to_string());
    }

    /// Starts the founder timeout of incarnation `group_id` of `room`. The
    /// timer holds no reference to the registry, and ends once the group
    /// exists or the incarnation is gone. Outside a runtime (some unit
    /// tests) there is no timer.
    pub(super) fn arm_founder_timer(&self, room: &str, group_id: String) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (me, room, period) = (self.me.clone(), room.to_string(), self.founder_timeout);
        rt.spawn(async move {
            let mut group_id = group_id;
            loop {
                tokio::time::sleep(period).await;
                let Some(rooms) = me.upgrade() else { return };
                match rooms.founder_overdue(&room, &group_id) {
                    Some(next) => group_id = next,
                    None => return,
                }
            }
        });
    }

    /// The founder timeout of `group_id` expired: hands the founding over
    /// if the group still does not exist. Returns the incarnation to keep
    /// timing, if any.
    fn founder_overdue(&self, room: &str, group_id: &str) -> Option<String> {
        let mut r = self.map.get_mut(room)?;
        let r = &mut *r;
        match r.mls.founder_overdue(group_id) {
            FounderCheck::Done => None,
            FounderCheck::Wait => Some(group_id.to_string()),
            FounderCheck::Replaced(reset) => {
                self.metrics.mls_founder_replaced();
                broadcast_mls(&self.metrics, r, &reset);
                Some(r.mls.group_id().to_string())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::{Joiner, drain, join_with, setup, setup_with};
    use crate::proto::{LeaveReason, MlsEntry, ServerMessage};
    use crate::server::delivery_log::CommitMsg;
    use crate::server::outbox::Queued;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;
    use e2ee::group::{MlsClient, MlsConfig};
    use std::time::Duration;

    /// `j` (token identity `identity`) founds its room's group and sends
    /// the GroupInfo.
    fn found(rooms: &super::Rooms, j: &Joiner, identity: &str, group_id: &str) -> MlsClient {
        let mut c = MlsClient::new(identity, MlsConfig::default()).unwrap();
        c.create_group(&hex::decode(group_id).unwrap()).unwrap();
        let gi = B64.encode(c.group_info().unwrap());
        rooms.mls_group_info("r", &j.pid, &gi).unwrap();
        c
    }

    fn commit(c: &mut MlsClient, adds: &[&[u8]]) -> CommitMsg {
        let epoch = c.epoch().unwrap();
        let commit = if adds.is_empty() {
            c.self_update().unwrap()
        } else {
            c.commit(adds, &[]).unwrap()
        };
        CommitMsg {
            epoch,
            commit: B64.encode(&commit.commit),
            welcome: commit.welcome.map(|w| B64.encode(w)),
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
        let mut ca = found(&rooms, &a, "a", &a.joined.mls.group_id);
        let mut cb = MlsClient::new("b", MlsConfig::default()).unwrap();
        let kp = cb.key_package().unwrap();
        rooms.mls_key_package("r", &b.pid, B64.encode(&kp)).unwrap();
        // Bob is not a member yet.
        let mut stranger = MlsClient::new("b", MlsConfig::default()).unwrap();
        stranger.create_group(b"x").unwrap();
        assert_eq!(
            rooms.mls_commit("r", &b.pid, commit(&mut stranger, &[])),
            Err(super::MlsError::NotMember)
        );
        assert_eq!(
            rooms.mls_application("r", &b.pid, 0, "eA==".into()),
            Err(super::MlsError::NotMember)
        );
        let add = commit(&mut ca, &[&kp]);
        assert_eq!(rooms.mls_commit("r", &a.pid, add.clone()), Ok(true));
        ca.merge_pending_commit().unwrap();
        assert!(cb.join(&B64.decode(add.welcome.unwrap()).unwrap()).unwrap());
        // Both commit in epoch 1: Alice first; Bob's loses.
        let first = commit(&mut ca, &[]);
        let second = commit(&mut cb, &[]);
        assert_eq!(rooms.mls_commit("r", &a.pid, first), Ok(true));
        assert_eq!(rooms.mls_commit("r", &b.pid, second), Ok(false));
        rooms
            .mls_application("r", &b.pid, 1, "eA==".into())
            .unwrap();

        for j in [&a, &b] {
            let (entries, rejected) = mls(drain(j).await);
            let seqs: Vec<u64> = entries.iter().map(|(s, _)| *s).collect();
            assert_eq!(seqs, [1, 2, 3, 4]);
            assert!(matches!(entries[0].1, MlsEntry::KeyPackage { .. }));
            assert!(
                matches!(&entries[1].1, MlsEntry::Commit { added, .. } if *added == [b.pid.clone()])
            );
            assert!(matches!(entries[3].1, MlsEntry::Application { .. }));
            let want: &[(u64, u64)] = if j.pid == b.pid { &[(1, 2)] } else { &[] };
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
        // Bob may send the GroupInfo now; Carol may not.
        let mut cc = MlsClient::new("c", MlsConfig::default()).unwrap();
        cc.create_group(&hex::decode(group_id).unwrap()).unwrap();
        let gi = B64.encode(cc.group_info().unwrap());
        assert!(matches!(
            rooms.mls_group_info("r", &c.pid, &gi),
            Err(super::MlsError::Invalid(_))
        ));
        found(&rooms, &b, "b", group_id);
        // A non-member leaving resets nothing.
        let d = join_with(&rooms, "d", 64);
        assert!(rooms.leave("r", &d.pid, d.sig.id(), LeaveReason::Left));
        let (entries, _) = mls(drain(&c).await);
        assert!(entries.is_empty(), "{entries:?}");
        assert_eq!(rooms.counts().mls_log_entries, 1);
    }

    /// The first joiner never creates the group: once the founder timeout
    /// expires, the next participant is named founder of a new group.
    #[tokio::test]
    async fn a_squatting_founder_is_replaced_after_the_timeout() {
        let (rooms, _, metrics) = setup_with(Duration::from_millis(20));
        let squatter = join_with(&rooms, "s", 64);
        let b = join_with(&rooms, "b", 64);
        let (seq, entry) = loop {
            let got = tokio::time::timeout(Duration::from_secs(10), b.outbox.recv(&b.sig))
                .await
                .expect("a reset within the bound");
            if let Queued::Mls(l) = got {
                match serde_json::from_str(&l.text).unwrap() {
                    ServerMessage::Mls { seq, entry } => break (seq, entry),
                    other => panic!("{other:?}"),
                }
            }
        };
        let MlsEntry::Reset { group_id, founder } = entry else {
            panic!("expected a reset, got {entry:?}")
        };
        assert_eq!((seq, founder.as_str()), (1, b.pid.as_str()));
        assert_ne!(group_id, squatter.joined.mls.group_id);
        found(&rooms, &b, "b", &group_id);
        let mut text = String::new();
        metrics.render(Default::default(), &mut text);
        assert!(
            text.contains("sfu_signaling_mls_founders_replaced_total 1"),
            "{text}"
        );
    }
}
