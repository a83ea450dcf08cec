//! One room's MLS delivery service (RFC 9420 §3.2 "DS"): an ordered,
//! bounded log of opaque handshake and application messages, and the one
//! rule it enforces, one commit per epoch.
//!
//! Pure state: no IO, no clock, no lock. The room registry calls it under
//! the room's lock and broadcasts what it returns, so the log order is the
//! delivery order at every member. It never decodes a message: it sees
//! opaque base64 strings plus the metadata the clients declare (epochs, and
//! the participant ids a commit adds and removes).
//!
//! Public so that tests elsewhere in the workspace can drive clients against
//! the real delivery rules without a server.

use super::ids;
use crate::proto::{MlsEntry, MlsInfo, ServerMessage};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// How much log a room keeps for resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Entries kept at most.
    pub max_entries: usize,
    /// Bytes (of the serialized entries) kept at most.
    pub max_bytes: usize,
}

/// The kinds of log entry, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A participant's KeyPackage.
    KeyPackage,
    /// A commit that won its epoch.
    Commit,
    /// An application message (chat).
    Application,
    /// A new group incarnation.
    Reset,
}

impl EntryKind {
    /// Every kind with its label, in a stable order.
    pub(crate) const ALL: [(EntryKind, &'static str); 4] = [
        (EntryKind::KeyPackage, "key_package"),
        (EntryKind::Commit, "commit"),
        (EntryKind::Application, "application"),
        (EntryKind::Reset, "reset"),
    ];

    /// Its slot in [`EntryKind::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            EntryKind::KeyPackage => 0,
            EntryKind::Commit => 1,
            EntryKind::Application => 2,
            EntryKind::Reset => 3,
        }
    }

    fn of(entry: &MlsEntry) -> Self {
        match entry {
            MlsEntry::KeyPackage { .. } => Self::KeyPackage,
            MlsEntry::Commit { .. } => Self::Commit,
            MlsEntry::Application { .. } => Self::Application,
            MlsEntry::Reset { .. } => Self::Reset,
        }
    }
}

/// One log entry, serialized once as the `mls` message every member gets.
#[derive(Debug)]
pub struct Logged {
    /// Its place in the log.
    pub seq: u64,
    /// What it holds.
    pub kind: EntryKind,
    /// The JSON text of `ServerMessage::Mls { seq, entry }`.
    pub text: String,
}

impl Logged {
    pub(crate) fn new(seq: u64, entry: MlsEntry) -> Self {
        let kind = EntryKind::of(&entry);
        // Strings and integers only: serializing cannot fail.
        let text = serde_json::to_string(&ServerMessage::Mls { seq, entry }).unwrap_or_default();
        Self { seq, kind, text }
    }

    /// Its size as the log counts it.
    pub fn bytes(&self) -> usize {
        self.text.len()
    }
}

/// Why a commit was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitRefusal {
    /// The sender is not a member of the group (as the commits declared).
    NotMember,
    /// Another commit already took that epoch, or it was never current.
    WrongEpoch {
        /// The epoch a commit must claim now.
        current: u64,
    },
}

/// The sender is not a member of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotMember;

/// A resume asked for entries the log no longer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap;

/// A commit as the sender declared it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitMsg {
    /// The epoch it commits from.
    pub epoch: u64,
    /// The commit (base64, opaque).
    pub commit: String,
    /// The Welcome for the added members (base64, opaque), if any.
    pub welcome: Option<String>,
    /// Participant ids it adds.
    pub added: Vec<String>,
    /// Participant ids it removes.
    pub removed: Vec<String>,
}

/// One room's group as the delivery service tracks it.
#[derive(Debug)]
pub struct DeliveryLog {
    group_id: String,
    /// The epoch the next commit must claim.
    epoch: u64,
    /// Members as the commits declared them (founder + added − removed),
    /// limited to participants in the room: departures are pruned, so the
    /// set is empty exactly when no member is left.
    claimed: HashSet<String>,
    /// The latest KeyPackage of each participant not yet added.
    key_packages: HashMap<String, String>,
    last_seq: u64,
    log: VecDeque<Arc<Logged>>,
    log_bytes: usize,
    limits: LogLimits,
}

impl DeliveryLog {
    /// An empty log; [`DeliveryLog::found`] starts the first group.
    pub fn new(limits: LogLimits) -> Self {
        Self {
            group_id: ids::random_hex128(),
            epoch: 0,
            claimed: HashSet::new(),
            key_packages: HashMap::new(),
            last_seq: 0,
            log: VecDeque::new(),
            log_bytes: 0,
            limits,
        }
    }

    /// The room has nobody else: `founder` creates a new group. The old
    /// log is of no use to anyone and is dropped; sequence numbers go on.
    pub fn found(&mut self, founder: &str) {
        self.new_incarnation(founder);
        self.log.clear();
        self.log_bytes = 0;
    }

    fn new_incarnation(&mut self, founder: &str) {
        self.group_id = ids::random_hex128();
        self.epoch = 0;
        self.claimed.clear();
        self.claimed.insert(founder.to_string());
        self.key_packages.clear();
    }

    /// The group as a participant joining or resuming now sees it.
    pub fn info(&self, founder: bool) -> MlsInfo {
        MlsInfo {
            group_id: self.group_id.clone(),
            epoch: self.epoch,
            seq: self.last_seq,
            founder,
        }
    }

    /// Whether `pid` is a member, as the commits declared.
    pub fn is_member(&self, pid: &str) -> bool {
        self.claimed.contains(pid)
    }

    /// The sequence number of the last entry appended.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// (entries, bytes) held in the log.
    pub fn log_size(&self) -> (usize, usize) {
        (self.log.len(), self.log_bytes)
    }

    /// Pending KeyPackages (participants waiting to be added).
    pub fn pending_key_packages(&self) -> usize {
        self.key_packages.len()
    }

    /// A participant's KeyPackage: the latest one replaces any earlier.
    pub fn key_package(&mut self, pid: &str, key_package: String) -> Arc<Logged> {
        self.key_packages
            .insert(pid.to_string(), key_package.clone());
        self.append(MlsEntry::KeyPackage {
            participant_id: pid.to_string(),
            key_package,
        })
    }

    /// A commit: the first one from a member for the current epoch wins.
    /// `present` says whether a participant id is in the room; only those
    /// become members.
    pub fn commit(
        &mut self,
        sender: &str,
        msg: CommitMsg,
        present: impl Fn(&str) -> bool,
    ) -> Result<Arc<Logged>, CommitRefusal> {
        if !self.is_member(sender) {
            return Err(CommitRefusal::NotMember);
        }
        if msg.epoch != self.epoch {
            return Err(CommitRefusal::WrongEpoch {
                current: self.epoch,
            });
        }
        self.epoch += 1;
        // Removals first: a member that lost its group state is re-added by
        // one commit that removes its old leaf and adds its new one.
        for pid in &msg.removed {
            self.claimed.remove(pid);
        }
        for pid in &msg.added {
            if present(pid) {
                self.claimed.insert(pid.clone());
            }
            self.key_packages.remove(pid);
        }
        Ok(self.append(MlsEntry::Commit {
            participant_id: sender.to_string(),
            epoch: msg.epoch,
            commit: msg.commit,
            welcome: msg.welcome,
            added: msg.added,
            removed: msg.removed,
        }))
    }

    /// An application message from a member. Its epoch is not checked:
    /// members keep past epochs' secrets for a while.
    pub fn application(
        &mut self,
        sender: &str,
        epoch: u64,
        message: String,
    ) -> Result<Arc<Logged>, NotMember> {
        if !self.is_member(sender) {
            return Err(NotMember);
        }
        Ok(self.append(MlsEntry::Application {
            participant_id: sender.to_string(),
            epoch,
            message,
        }))
    }

    /// `pid` left the room, or left the group (it resumed past the log and
    /// will rejoin). If that leaves no member while `successor` (the
    /// earliest-joined remaining participant) is there, a new group
    /// incarnation starts with it as founder; the returned `Reset` entry
    /// must be broadcast.
    pub fn departed(&mut self, pid: &str, successor: Option<&str>) -> Option<Arc<Logged>> {
        self.claimed.remove(pid);
        self.key_packages.remove(pid);
        let founder = successor?;
        if !self.claimed.is_empty() {
            return None;
        }
        self.new_incarnation(founder);
        Some(self.append(MlsEntry::Reset {
            group_id: self.group_id.clone(),
            founder: founder.to_string(),
        }))
    }

    /// Every entry after `seq`, or [`Gap`] if some of them were evicted (or
    /// `seq` is ahead of the log, which only a confused client claims).
    pub fn replay_after(&self, seq: u64) -> Result<Vec<Arc<Logged>>, Gap> {
        if seq > self.last_seq {
            return Err(Gap);
        }
        let first = self.log.front().map_or(self.last_seq + 1, |e| e.seq);
        if seq + 1 < first {
            return Err(Gap);
        }
        let skip = usize::try_from(seq + 1 - first).unwrap_or(usize::MAX);
        Ok(self.log.iter().skip(skip).cloned().collect())
    }

    fn append(&mut self, entry: MlsEntry) -> Arc<Logged> {
        self.last_seq += 1;
        let logged = Arc::new(Logged::new(self.last_seq, entry));
        self.log_bytes += logged.bytes();
        self.log.push_back(logged.clone());
        while self.log.len() > self.limits.max_entries || self.log_bytes > self.limits.max_bytes {
            match self.log.pop_front() {
                Some(old) => self.log_bytes -= old.bytes(),
                None => break,
            }
        }
        logged
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const BIG: LogLimits = LogLimits {
        max_entries: 1000,
        max_bytes: 1 << 20,
    };

    fn commit(epoch: u64, added: &[&str], removed: &[&str]) -> CommitMsg {
        CommitMsg {
            epoch,
            commit: "Y29tbWl0".into(),
            welcome: (!added.is_empty()).then(|| "d2VsY29tZQ==".into()),
            added: added.iter().map(|s| s.to_string()).collect(),
            removed: removed.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn entry(l: &Logged) -> (u64, MlsEntry) {
        match serde_json::from_str(&l.text).unwrap() {
            ServerMessage::Mls { seq, entry } => (seq, entry),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn one_commit_per_epoch_and_membership_follows_the_commits() {
        let mut m = DeliveryLog::new(BIG);
        m.found("a");
        let g0 = m.info(true).group_id;
        assert_eq!(g0.len(), 32);
        assert!(m.is_member("a") && !m.is_member("b"));
        m.key_package("b", "a3A=".into());
        m.key_package("b", "a3Ay".into());
        assert_eq!(m.pending_key_packages(), 1);
        // A non-member may not commit, whatever the epoch.
        assert_eq!(
            m.commit("b", commit(0, &[], &[]), |_| true).unwrap_err(),
            CommitRefusal::NotMember
        );
        let present = |p: &str| p != "gone";
        let won = m
            .commit("a", commit(0, &["b", "gone"], &[]), present)
            .unwrap();
        assert_eq!(won.seq, 3);
        assert_eq!(won.kind, EntryKind::Commit);
        assert_eq!(m.pending_key_packages(), 0);
        assert!(m.is_member("b") && !m.is_member("gone"));
        // A second commit for epoch 0 loses; so does one from the future.
        for epoch in [0, 2] {
            assert_eq!(
                m.commit("b", commit(epoch, &[], &[]), present).unwrap_err(),
                CommitRefusal::WrongEpoch { current: 1 }
            );
        }
        m.commit("b", commit(1, &[], &["a"]), present).unwrap();
        assert!(!m.is_member("a"));
        // Re-adding a member (old leaf out, new leaf in) keeps it a member.
        m.commit("b", commit(2, &["b"], &["b"]), present).unwrap();
        assert!(m.is_member("b"));
        assert_eq!(m.info(false).epoch, 3);
        assert_eq!(m.info(false).group_id, g0);
        assert_eq!(m.application("a", 1, "aGk=".into()).unwrap_err(), NotMember);
        let chat = m.application("b", 1, "aGk=".into()).unwrap();
        assert_eq!(
            entry(&chat),
            (
                6,
                MlsEntry::Application {
                    participant_id: "b".into(),
                    epoch: 1,
                    message: "aGk=".into()
                }
            )
        );
    }

    #[test]
    fn the_last_member_leaving_resets_the_group_for_the_earliest_remaining() {
        let mut m = DeliveryLog::new(BIG);
        m.found("a");
        m.commit("a", commit(0, &["b"], &[]), |_| true).unwrap();
        let g = m.info(false).group_id;
        // A non-member leaving changes nothing.
        assert!(m.departed("x", Some("a")).is_none());
        // A member leaving while another stays: no reset.
        assert!(m.departed("a", Some("c")).is_none());
        assert_eq!(m.info(false).epoch, 1);
        // The last member leaves with others present: reset.
        m.key_package("c", "a3A=".into());
        let reset = m.departed("b", Some("c")).unwrap();
        let (seq, e) = entry(&reset);
        assert_eq!(seq, m.last_seq());
        let MlsEntry::Reset { group_id, founder } = e else {
            panic!("expected reset")
        };
        assert_ne!(group_id, g);
        assert_eq!(founder, "c");
        assert_eq!(m.info(false).group_id, group_id);
        assert_eq!(m.info(false).epoch, 0);
        assert!(m.is_member("c"));
        assert_eq!(m.pending_key_packages(), 0);
        // The last participant leaving: nobody to reset for.
        assert!(m.departed("c", None).is_none());
    }

    #[test]
    fn the_log_is_bounded_and_replays_exactly_what_follows() {
        let mut m = DeliveryLog::new(LogLimits {
            max_entries: 4,
            max_bytes: 1 << 20,
        });
        m.found("a");
        for i in 0..6 {
            m.application("a", 0, format!("m{i}")).unwrap();
        }
        assert_eq!(m.last_seq(), 6);
        assert_eq!(m.log_size().0, 4);
        let seqs = |v: Vec<Arc<Logged>>| v.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(m.replay_after(2).unwrap()), [3, 4, 5, 6]);
        assert_eq!(seqs(m.replay_after(4).unwrap()), [5, 6]);
        assert!(m.replay_after(6).unwrap().is_empty());
        assert_eq!(m.replay_after(1).unwrap_err(), Gap);
        assert_eq!(m.replay_after(0).unwrap_err(), Gap);
        assert_eq!(m.replay_after(7).unwrap_err(), Gap);

        // The byte bound too.
        let one = m.replay_after(5).unwrap()[0].bytes();
        let mut m = DeliveryLog::new(LogLimits {
            max_entries: 100,
            max_bytes: one * 2,
        });
        m.found("a");
        for i in 0..5 {
            m.application("a", 0, format!("m{i}")).unwrap();
        }
        assert_eq!(m.log_size(), (2, one * 2));
        assert_eq!(seqs(m.replay_after(3).unwrap()), [4, 5]);

        // A new founder drops the log but not the numbering.
        m.found("z");
        assert_eq!(m.log_size(), (0, 0));
        assert!(m.replay_after(5).unwrap().is_empty());
        assert_eq!(m.replay_after(4).unwrap_err(), Gap);
        assert_eq!(m.key_package("y", "a3A=".into()).seq, 6);
    }
}
