//! The commit policy: which roster change this member commits, and when.
//!
//! Every member runs the same policy on the same inputs (its MLS roster and
//! the signaling roster), so they agree without talking:
//!
//! - **What a commit holds.** Adds for every KeyPackage from a present
//!   participant whose credential names that participant's identity and is
//!   not yet a member; removes for every member whose identity is gone, or
//!   whose identity rejoined with a new signature key.
//! - **Who commits.** The member with the lowest leaf index whose identity
//!   is still present in the signaling roster commits first; the one ranked
//!   `r` steps in after `r × takeover_delay` if the change is still pending,
//!   so a vanished committer cannot stall the group. The delivery service
//!   accepts one commit per epoch; the losers process the winner's.
//! - **What the delivery service allows.** It refuses a commit that leaves
//!   a departed member in the group, removes a present one, or adds a
//!   KeyPackage that is not a present participant's latest; it answers
//!   with `mls_commit_rejected` and the committer tries again after a
//!   takeover delay with the rosters as they are then. The rules above
//!   produce only commits it allows, unless the two rosters disagree for a
//!   moment (a departure still on its way to us).

use e2ee::group::Member;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use web_time::Instant;

/// A KeyPackage whose credential matches its sender, waiting to be added.
#[derive(Debug, Clone)]
pub(crate) struct WaitingKeyPackage {
    pub(crate) bytes: Vec<u8>,
    pub(crate) identity: String,
    pub(crate) signature_key: Vec<u8>,
}

/// The commit the rosters call for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// KeyPackages to add, with their participant ids, by participant id.
    pub(crate) adds: Vec<(String, Vec<u8>)>,
    /// Leaves to remove, ascending.
    pub(crate) removes: Vec<u32>,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.adds.is_empty() && self.removes.is_empty()
    }
}

/// The signaling roster, the KeyPackages waiting, and how long a change has
/// been pending.
#[derive(Debug)]
pub(crate) struct CommitPolicy {
    takeover_delay: Duration,
    /// Participant id → identity.
    roster: BTreeMap<String, String>,
    key_packages: HashMap<String, WaitingKeyPackage>,
    /// Since when the current change has been waiting for a commit.
    pending_since: Option<Instant>,
    /// When this member's turn to commit the pending change comes.
    turn_at: Option<Instant>,
    /// No commit before this: ours was refused while we had not seen the
    /// winner, so the log is ahead of us (or a commit is withheld from us).
    not_before: Option<Instant>,
}

impl CommitPolicy {
    pub(crate) fn new(takeover_delay: Duration) -> Self {
        Self {
            takeover_delay,
            roster: BTreeMap::new(),
            key_packages: HashMap::new(),
            pending_since: None,
            turn_at: None,
            not_before: None,
        }
    }

    /// A participant appeared in the signaling roster.
    pub(crate) fn joined(&mut self, pid: &str, identity: &str) {
        self.roster.insert(pid.to_owned(), identity.to_owned());
    }

    /// A participant left the signaling roster.
    pub(crate) fn left(&mut self, pid: &str) {
        self.roster.remove(pid);
        self.key_packages.remove(pid);
    }

    /// The identity a present participant joined with.
    pub(crate) fn identity_of(&self, pid: &str) -> Option<&str> {
        self.roster.get(pid).map(String::as_str)
    }

    /// The identities in the signaling roster.
    pub(crate) fn present_identities(&self) -> BTreeSet<String> {
        self.roster.values().cloned().collect()
    }

    /// A present participant with this identity.
    pub(crate) fn pid_of_identity(&self, identity: &str) -> Option<String> {
        self.roster
            .iter()
            .find(|(_, id)| *id == identity)
            .map(|(pid, _)| pid.clone())
    }

    /// `pid`'s latest valid KeyPackage (it replaces any earlier one).
    pub(crate) fn key_package(&mut self, pid: String, kp: WaitingKeyPackage) {
        self.key_packages.insert(pid, kp);
    }

    /// A commit added or removed `pid`, or the MLS client refused its
    /// KeyPackage: it is not offered again.
    pub(crate) fn settled(&mut self, pid: &str) {
        self.key_packages.remove(pid);
    }

    /// A new group (or none): earlier KeyPackages are void.
    pub(crate) fn forget_key_packages(&mut self) {
        self.key_packages.clear();
    }

    /// A new epoch: whatever was pending is judged afresh.
    pub(crate) fn entered_epoch(&mut self) {
        self.pending_since = None;
        self.turn_at = None;
        self.not_before = None;
    }

    /// Our commit was refused before the winning one reached us: wait for
    /// it a while instead of committing again for an epoch that is gone.
    pub(crate) fn lost(&mut self, now: Instant) {
        self.not_before = Some(now + self.takeover_delay);
    }

    /// Nothing can be committed for now (we are not in the group, or our
    /// own commit is in flight): no turn to wait for.
    pub(crate) fn pause(&mut self) {
        self.turn_at = None;
    }

    /// The changes the rosters call for, given the MLS `members` and our
    /// own leaf.
    pub(crate) fn changes(&self, members: &[Member], own_leaf: Option<u32>) -> Changes {
        let present: BTreeSet<&str> = self.roster.values().map(String::as_str).collect();
        let mut adds = Vec::new();
        let mut removes = Vec::new();
        for (pid, kp) in &self.key_packages {
            if !self.roster.contains_key(pid)
                || members.iter().any(|m| m.signature_key == kp.signature_key)
            {
                continue;
            }
            // The same identity with an old key: the participant rejoined.
            removes.extend(
                members
                    .iter()
                    .filter(|m| m.identity == kp.identity)
                    .map(|m| m.leaf),
            );
            adds.push((pid.clone(), kp.bytes.clone()));
        }
        removes.extend(
            members
                .iter()
                .filter(|m| Some(m.leaf) != own_leaf && !present.contains(m.identity.as_str()))
                .map(|m| m.leaf),
        );
        removes.sort_unstable();
        removes.dedup();
        adds.sort_by(|a, b| a.0.cmp(&b.0));
        Changes { adds, removes }
    }

    /// Our place in the line of committers: 0 commits at once. Members
    /// whose identity left the signaling roster are out of the line.
    pub(crate) fn rank(&self, members: &[Member], own_leaf: u32) -> Option<usize> {
        let present: BTreeSet<&str> = self.roster.values().map(String::as_str).collect();
        let mut line: Vec<u32> = members
            .iter()
            .filter(|m| m.leaf == own_leaf || present.contains(m.identity.as_str()))
            .map(|m| m.leaf)
            .collect();
        line.sort_unstable();
        line.iter().position(|l| *l == own_leaf)
    }

    /// The commit to make now, if a change is pending and it is our turn.
    pub(crate) fn due(
        &mut self,
        now: Instant,
        members: &[Member],
        own_leaf: Option<u32>,
    ) -> Option<Changes> {
        self.turn_at = None;
        let changes = self.changes(members, own_leaf);
        if changes.is_empty() {
            self.pending_since = None;
            return None;
        }
        let since = *self.pending_since.get_or_insert(now);
        let rank = self.rank(members, own_leaf?)?;
        let turn = since + self.takeover_delay * u32::try_from(rank).unwrap_or(u32::MAX);
        let turn = self.not_before.map_or(turn, |at| turn.max(at));
        if now < turn {
            self.turn_at = Some(turn);
            return None;
        }
        Some(changes)
    }

    /// When our turn to commit the pending change comes, if we are waiting
    /// for it.
    pub(crate) fn next_wakeup(&self) -> Option<Instant> {
        self.turn_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Duration = Duration::from_secs(2);

    fn member(leaf: u32, identity: &str) -> Member {
        Member {
            leaf,
            identity: identity.into(),
            signature_key: format!("{identity}-{leaf}").into_bytes(),
        }
    }

    fn kp(identity: &str, key: &str) -> WaitingKeyPackage {
        WaitingKeyPackage {
            bytes: format!("kp-{key}").into_bytes(),
            identity: identity.into(),
            signature_key: key.as_bytes().to_vec(),
        }
    }

    /// A policy whose signaling roster holds `present` as (pid, identity).
    fn policy(present: &[(&str, &str)]) -> CommitPolicy {
        let mut p = CommitPolicy::new(DELAY);
        for (pid, id) in present {
            p.joined(pid, id);
        }
        p
    }

    #[test]
    fn a_commit_adds_present_newcomers_and_removes_the_departed() {
        let members = [member(0, "alice"), member(1, "bob"), member(2, "carol")];
        let mut p = policy(&[
            ("pa", "alice"),
            ("pb", "bob"),
            ("pd", "dave"),
            ("pe", "erin"),
        ]);
        p.key_package("pe".into(), kp("erin", "e"));
        p.key_package("pd".into(), kp("dave", "d"));
        // A KeyPackage from someone who left meanwhile is not added.
        p.key_package("px".into(), kp("xavier", "x"));
        let c = p.changes(&members, Some(0));
        let added: Vec<&str> = c.adds.iter().map(|(pid, _)| pid.as_str()).collect();
        assert_eq!(added, ["pd", "pe"], "sorted by participant id");
        assert_eq!(c.removes, [2], "carol left the signaling roster");
        // Our own leaf is never removed, even if the roster lacks us.
        let c = policy(&[("pb", "bob")]).changes(&members, Some(0));
        assert_eq!(c.removes, [2]);
        // An added KeyPackage (its key is a member's) is not offered again.
        let mut p = policy(&[("pa", "alice"), ("pb", "bob")]);
        p.key_package("pb".into(), kp("bob", "bob-1"));
        assert_eq!(p.changes(&members[..2], Some(0)), Changes::default());
        p.key_package("pb".into(), kp("bob", "bob-new"));
        p.settled("pb");
        assert_eq!(p.changes(&members[..2], Some(0)), Changes::default());
    }

    #[test]
    fn a_rejoined_identity_replaces_its_old_leaf_in_one_commit() {
        let members = [member(0, "alice"), member(1, "bob")];
        let mut p = policy(&[("pa", "alice"), ("pb2", "bob")]);
        p.key_package("pb2".into(), kp("bob", "bob-new-key"));
        let c = p.changes(&members, Some(0));
        assert_eq!(c.adds.len(), 1);
        assert_eq!(c.removes, [1]);
    }

    #[test]
    fn the_lowest_present_leaf_commits_and_the_next_takes_over_in_turn() {
        let members = [member(0, "alice"), member(1, "bob"), member(2, "carol")];
        let t0 = Instant::now();
        // Dave joins: alice (leaf 0) commits at once, bob after one delay,
        // carol after two.
        let roster = [
            ("pa", "alice"),
            ("pb", "bob"),
            ("pc", "carol"),
            ("pd", "dave"),
        ];
        let mut by_leaf: Vec<CommitPolicy> = (0..3).map(|_| policy(&roster)).collect();
        for p in &mut by_leaf {
            p.key_package("pd".into(), kp("dave", "d"));
        }
        assert!(by_leaf[0].due(t0, &members, Some(0)).is_some());
        assert!(by_leaf[1].due(t0, &members, Some(1)).is_none());
        assert_eq!(by_leaf[1].next_wakeup(), Some(t0 + DELAY));
        assert!(by_leaf[2].due(t0, &members, Some(2)).is_none());
        assert_eq!(by_leaf[2].next_wakeup(), Some(t0 + 2 * DELAY));
        // Alice went silent: bob's turn comes after one delay, carol's not yet.
        let t1 = t0 + DELAY;
        assert!(by_leaf[1].due(t1, &members, Some(1)).is_some());
        assert_eq!(by_leaf[1].next_wakeup(), None);
        assert!(by_leaf[2].due(t1, &members, Some(2)).is_none());
        // Once alice leaves the signaling roster, carol is second in line:
        // her turn is one delay after the change began, not two.
        by_leaf[2].left("pa");
        let c = by_leaf[2].due(t1, &members, Some(2)).expect("carol's turn");
        assert_eq!(c.removes, [0]);
        assert_eq!(by_leaf[2].rank(&members, 2), Some(1));
    }

    #[test]
    fn a_refused_commit_is_not_repeated_before_a_takeover_delay() {
        let members = [member(0, "alice"), member(1, "bob")];
        let t0 = Instant::now();
        let mut p = policy(&[("pa", "alice")]);
        assert!(p.due(t0, &members, Some(0)).is_some());
        p.lost(t0);
        assert!(p.due(t0, &members, Some(0)).is_none());
        assert_eq!(p.next_wakeup(), Some(t0 + DELAY));
        assert!(p.due(t0 + DELAY, &members, Some(0)).is_some());
        // The winner arriving ends the wait.
        p.lost(t0 + DELAY);
        p.entered_epoch();
        assert!(p.due(t0 + DELAY, &members, Some(0)).is_some());
    }

    #[test]
    fn nothing_pending_means_no_wakeup_and_a_new_epoch_restarts_the_clock() {
        let members = [member(0, "alice"), member(1, "bob")];
        let t0 = Instant::now();
        let mut p = policy(&[("pa", "alice")]);
        // Bob is not in the signaling roster: alice (leaf 0) removes him.
        assert_eq!(
            p.due(t0, &members, Some(0)).map(|c| c.removes),
            Some(vec![1])
        );
        p.joined("pb", "bob");
        assert!(p.due(t0, &members, Some(0)).is_none());
        assert_eq!(p.next_wakeup(), None);
        p.left("pb");
        let t1 = t0 + DELAY;
        assert!(p.due(t1, &members, Some(0)).is_some());
        p.entered_epoch();
        assert_eq!(p.next_wakeup(), None);
        // Not in a group: nothing is due, whatever is pending.
        assert!(p.due(t1, &members, None).is_none());
    }
}
