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
//! - **When a join is committed.** A leave (or a rejoin, which replaces a
//!   leaf) is committed at once: forward secrecy does not wait. Joins alone
//!   are paced: in a quiet room the first one is committed at once, but a
//!   commit that only adds comes no sooner than `add_interval` after the
//!   current epoch began, so a burst of joins becomes a few epochs (at most
//!   one per `add_interval` from joins) instead of one per join, and a
//!   commit adds at most `max_adds` KeyPackages, oldest first (a full batch
//!   goes at once). A join never waits more than `add_interval` from when
//!   it became pending, even if epochs keep beginning for other reasons
//!   (self-updates, leaves). So a joiner waits at most `add_interval` for
//!   the commit that adds it, plus its delivery, when no more than
//!   `max_adds` others are ahead of it.
//! - **What the delivery service allows.** It refuses a commit that leaves
//!   a departed member in the group, removes a present one, or adds a
//!   KeyPackage that is not a present participant's latest; it answers
//!   with `mls_commit_rejected` and the committer tries again after a
//!   takeover delay with the rosters as they are then. The rules above
//!   produce only commits it allows, unless the two rosters disagree for a
//!   moment (a departure still on its way to us).

use e2ee::group::Member;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use web_time::Instant;

/// A KeyPackage whose credential matches its sender, waiting to be added.
#[derive(Debug, Clone)]
pub(crate) struct WaitingKeyPackage {
    pub(crate) bytes: Vec<u8>,
    pub(crate) identity: String,
    pub(crate) signature_key: Vec<u8>,
    /// Its position in the log: joiners are added in arrival order.
    pub(crate) arrival: u64,
    /// When it reached us: a join waits for pacing from then on.
    pub(crate) received: Instant,
    /// Whether its signatures were verified (only a committer needs to,
    /// before it commits: what it claims decides nothing until then).
    pub(crate) verified: bool,
}

/// The commit the rosters call for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    /// KeyPackages to add, with their participant ids, in arrival order.
    pub(crate) adds: Vec<(String, Vec<u8>)>,
    /// Leaves to remove, ascending.
    pub(crate) removes: Vec<u32>,
    /// When the longest-waiting of `adds` reached us.
    pub(crate) first_received: Option<Instant>,
}

/// What the two rosters say about the MLS members.
///
/// Kept until either roster changes, and then updated in place: in a big
/// room's ramp a member sees a roster change with nearly every log entry,
/// and rebuilding this from scratch (a hash set of every signature key, a
/// set of every present identity) was a quarter of the load tester's MLS
/// time at 300 members.
#[derive(Debug, Default)]
struct Index {
    /// The MLS roster this was built from (held, so the comparison by
    /// pointer cannot be fooled by a new roster at a reused address).
    members: Option<Arc<[Member]>>,
    roster_version: u64,
    /// Positions in `members`, ordered by signature key.
    by_key: Vec<u32>,
    /// Members whose identity is gone from the signaling roster.
    departed: Vec<u32>,
    /// Members whose identity is present, ascending: the committers' line.
    present_leaves: Vec<u32>,
}

impl Index {
    /// Brings the index up to `members` and the signaling roster at
    /// `version`, whose identities are the keys of `present`.
    fn refresh(&mut self, members: &Arc<[Member]>, present: &HashMap<String, u32>, version: u64) {
        let same_members = self
            .members
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(m, members));
        if same_members && self.roster_version == version {
            return;
        }
        if !same_members {
            self.by_key.clear();
            self.by_key
                .extend(0..u32::try_from(members.len()).unwrap_or(u32::MAX));
            self.by_key.sort_unstable_by(|a, b| {
                members[*a as usize]
                    .signature_key
                    .cmp(&members[*b as usize].signature_key)
            });
            self.members = Some(Arc::clone(members));
        }
        self.roster_version = version;
        self.departed.clear();
        self.present_leaves.clear();
        for m in members.iter() {
            if present.contains_key(m.identity.as_str()) {
                self.present_leaves.push(m.leaf);
            } else {
                self.departed.push(m.leaf);
            }
        }
        self.present_leaves.sort_unstable();
    }

    fn members(&self) -> &[Member] {
        self.members.as_deref().unwrap_or_default()
    }

    /// Whether a member holds this signature key.
    fn has_key(&self, key: &[u8]) -> bool {
        let members = self.members();
        self.by_key
            .binary_search_by(|i| members[*i as usize].signature_key.as_slice().cmp(key))
            .is_ok()
    }
}

/// [`Changes`] as borrowed from the policy's own state.
struct Plan<'a> {
    adds: Vec<(&'a String, &'a WaitingKeyPackage)>,
    removes: Vec<u32>,
    first_received: Option<Instant>,
}

impl Plan<'_> {
    fn is_empty(&self) -> bool {
        self.adds.is_empty() && self.removes.is_empty()
    }

    fn into_changes(self) -> Changes {
        Changes {
            adds: self
                .adds
                .into_iter()
                .map(|(pid, kp)| (pid.clone(), kp.bytes.clone()))
                .collect(),
            removes: self.removes,
            first_received: self.first_received,
        }
    }
}

/// The signaling roster, the KeyPackages waiting, and how long a change has
/// been pending.
#[derive(Debug)]
pub(crate) struct CommitPolicy {
    takeover_delay: Duration,
    pacing: Pacing,
    /// When the current epoch began, if we are in a group.
    epoch_began: Option<Instant>,
    /// Participant id → identity.
    roster: BTreeMap<String, String>,
    /// Identity → how many present participants joined with it.
    present: HashMap<String, u32>,
    /// Bumped on every change to `roster`, so `index` knows it is stale.
    roster_version: u64,
    /// What the rosters say about the MLS members, kept until either
    /// changes: a member of a big room consults the policy on every log
    /// entry, and rebuilding this each time was most of that work.
    index: Index,
    key_packages: HashMap<String, WaitingKeyPackage>,
    /// Since when the current change has been waiting for a commit.
    pending_since: Option<Instant>,
    /// When this member's turn to commit the pending change comes.
    turn_at: Option<Instant>,
    /// No commit before this: ours was refused while we had not seen the
    /// winner, so the log is ahead of us (or a commit is withheld from us).
    not_before: Option<Instant>,
}

/// How joins are gathered into commits (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// A commit that only adds comes no sooner than this after the current
    /// epoch began. Zero commits every join at once.
    pub add_interval: Duration,
    /// At most this many KeyPackages in one commit (at least 1).
    pub max_adds: usize,
}

impl Default for Pacing {
    /// 500 ms and 50: at most two epochs a second from joins, which keeps
    /// the epochs a receiver must still decrypt within the few it keeps,
    /// and commits whose processing stays small in big rooms.
    fn default() -> Self {
        Self {
            add_interval: Duration::from_millis(500),
            max_adds: 50,
        }
    }
}

impl CommitPolicy {
    pub(crate) fn new(takeover_delay: Duration, pacing: Pacing) -> Self {
        Self {
            takeover_delay,
            pacing: Pacing {
                max_adds: pacing.max_adds.max(1),
                ..pacing
            },
            epoch_began: None,
            roster: BTreeMap::new(),
            present: HashMap::new(),
            roster_version: 0,
            index: Index::default(),
            key_packages: HashMap::new(),
            pending_since: None,
            turn_at: None,
            not_before: None,
        }
    }

    /// A participant appeared in the signaling roster.
    pub(crate) fn joined(&mut self, pid: &str, identity: &str) {
        if let Some(old) = self.roster.insert(pid.to_owned(), identity.to_owned()) {
            self.forget_presence(&old);
        }
        *self.present.entry(identity.to_owned()).or_default() += 1;
        self.roster_version += 1;
    }

    /// A participant left the signaling roster.
    pub(crate) fn left(&mut self, pid: &str) {
        if let Some(old) = self.roster.remove(pid) {
            self.forget_presence(&old);
        }
        self.roster_version += 1;
        self.key_packages.remove(pid);
    }

    fn forget_presence(&mut self, identity: &str) {
        if let Some(n) = self.present.get_mut(identity) {
            *n -= 1;
            if *n == 0 {
                self.present.remove(identity);
            }
        }
    }

    /// The identity a present participant joined with.
    pub(crate) fn identity_of(&self, pid: &str) -> Option<&str> {
        self.roster.get(pid).map(String::as_str)
    }

    /// The identities in the signaling roster.
    pub(crate) fn present_identities(&self) -> BTreeSet<&str> {
        self.present.keys().map(String::as_str).collect()
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

    /// `pid`'s waiting KeyPackage, to verify before committing it.
    pub(crate) fn key_package_mut(&mut self, pid: &str) -> Option<&mut WaitingKeyPackage> {
        self.key_packages.get_mut(pid)
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

    /// A new epoch began `now`: whatever was pending is judged afresh.
    pub(crate) fn entered_epoch(&mut self, now: Instant) {
        self.epoch_began = Some(now);
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
    pub(crate) fn changes(&mut self, members: &Arc<[Member]>, own_leaf: Option<u32>) -> Changes {
        self.refresh_index(members);
        self.plan(own_leaf).into_changes()
    }

    /// Rebuilds `index` if the MLS or the signaling roster changed.
    fn refresh_index(&mut self, members: &Arc<[Member]>) {
        self.index
            .refresh(members, &self.present, self.roster_version);
    }

    /// [`Self::changes`] without copying any KeyPackage: a member of a big
    /// room asks on every log entry, and usually only learns that it is not
    /// its turn yet. Needs a fresh `index`.
    fn plan(&self, own_leaf: Option<u32>) -> Plan<'_> {
        let index = &self.index;
        let mut removes: Vec<u32> = index
            .departed
            .iter()
            .copied()
            .filter(|leaf| Some(*leaf) != own_leaf)
            .collect();
        let mut adds: Vec<(&String, &WaitingKeyPackage)> = self
            .key_packages
            .iter()
            .filter(|(pid, kp)| self.roster.contains_key(*pid) && !index.has_key(&kp.signature_key))
            .collect();
        adds.sort_by(|a, b| (a.1.arrival, a.0).cmp(&(b.1.arrival, b.0)));
        adds.truncate(self.pacing.max_adds);
        if !adds.is_empty() {
            // The same identity with an old key: the participant rejoined.
            let rejoining: HashSet<&str> =
                adds.iter().map(|(_, kp)| kp.identity.as_str()).collect();
            removes.extend(
                index
                    .members()
                    .iter()
                    .filter(|m| rejoining.contains(m.identity.as_str()))
                    .map(|m| m.leaf),
            );
        }
        removes.sort_unstable();
        removes.dedup();
        Plan {
            first_received: adds.iter().map(|(_, kp)| kp.received).min(),
            adds,
            removes,
        }
    }

    /// Our place in the line of committers: 0 commits at once. Members
    /// whose identity left the signaling roster are out of the line.
    pub(crate) fn rank(&mut self, members: &Arc<[Member]>, own_leaf: u32) -> Option<usize> {
        self.refresh_index(members);
        let index = &self.index;
        if !index.members().iter().any(|m| m.leaf == own_leaf) {
            return None;
        }
        Some(index.present_leaves.partition_point(|l| *l < own_leaf))
    }

    /// The commit to make now, if a change is pending and it is our turn.
    pub(crate) fn due(
        &mut self,
        now: Instant,
        members: &Arc<[Member]>,
        own_leaf: Option<u32>,
    ) -> Option<Changes> {
        self.turn_at = None;
        self.refresh_index(members);
        let (empty, paced, first_received) = {
            let plan = self.plan(own_leaf);
            // Joins alone wait to go together; a leave never waits, nor
            // does a full batch. Nor does a join wait longer than the
            // interval from when it reached us: epochs that come faster for
            // other reasons (self-updates) must not starve it.
            let paced = plan.removes.is_empty() && plan.adds.len() < self.pacing.max_adds;
            (plan.is_empty(), paced, plan.first_received)
        };
        if empty {
            self.pending_since = None;
            return None;
        }
        let since = *self.pending_since.get_or_insert(now);
        let rank = self.rank(members, own_leaf?)?;
        let ready = match (self.epoch_began, first_received) {
            (Some(began), Some(first)) if paced => since
                .max(began + self.pacing.add_interval)
                .min(first + self.pacing.add_interval),
            _ => since,
        };
        let turn = ready + self.takeover_delay * u32::try_from(rank).unwrap_or(u32::MAX);
        let turn = self.not_before.map_or(turn, |at| turn.max(at));
        if now < turn {
            self.turn_at = Some(turn);
            return None;
        }
        Some(self.changes(members, own_leaf))
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
            arrival: 0,
            received: Instant::now(),
            verified: true,
        }
    }

    /// A policy whose signaling roster holds `present` as (pid, identity).
    fn policy(present: &[(&str, &str)]) -> CommitPolicy {
        let mut p = CommitPolicy::new(DELAY, Pacing::default());
        for (pid, id) in present {
            p.joined(pid, id);
        }
        p
    }

    #[test]
    fn a_commit_adds_present_newcomers_and_removes_the_departed() {
        let members: Arc<[Member]> =
            Arc::new([member(0, "alice"), member(1, "bob"), member(2, "carol")]);
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
        assert_eq!(added, ["pd", "pe"], "same arrival: by participant id");
        assert_eq!(c.removes, [2], "carol left the signaling roster");
        // Our own leaf is never removed, even if the roster lacks us.
        let c = policy(&[("pb", "bob")]).changes(&members, Some(0));
        assert_eq!(c.removes, [2]);
        // An added KeyPackage (its key is a member's) is not offered again.
        let mut p = policy(&[("pa", "alice"), ("pb", "bob")]);
        p.key_package("pb".into(), kp("bob", "bob-1"));
        assert_eq!(
            p.changes(&Arc::from(&members[..2]), Some(0)),
            Changes::default()
        );
        p.key_package("pb".into(), kp("bob", "bob-new"));
        p.settled("pb");
        assert_eq!(
            p.changes(&Arc::from(&members[..2]), Some(0)),
            Changes::default()
        );
    }

    #[test]
    fn an_identity_stays_present_while_any_of_its_participants_is() {
        let members: Arc<[Member]> = Arc::new([member(0, "alice"), member(1, "bob")]);
        // Bob reconnected: his new session joined before the old one left.
        let mut p = policy(&[("pa", "alice"), ("pb", "bob"), ("pb2", "bob")]);
        assert_eq!(p.changes(&members, Some(0)), Changes::default());
        p.left("pb");
        assert_eq!(p.changes(&members, Some(0)), Changes::default());
        assert_eq!(p.rank(&members, 1), Some(1));
        p.left("pb2");
        assert_eq!(p.changes(&members, Some(0)).removes, [1]);
        assert_eq!(p.rank(&members, 0), Some(0));
        // A participant id announced again with another identity moves it.
        p.joined("pb2", "bob");
        p.joined("pb2", "carol");
        assert_eq!(p.changes(&members, Some(0)).removes, [1]);
        assert_eq!(p.present_identities(), BTreeSet::from(["alice", "carol"]));
        // Each key a member holds is known, whatever order the roster has.
        let many: Arc<[Member]> = (0..40).rev().map(|i| member(i, &format!("m{i}"))).collect();
        let mut p = policy(&[("p7", "m7"), ("p9", "m9")]);
        p.key_package("p7".into(), kp("m7", "m7-7"));
        p.key_package("p9".into(), kp("m9", "m9-new"));
        let c = p.changes(&many, Some(7));
        let added: Vec<&str> = c.adds.iter().map(|(pid, _)| pid.as_str()).collect();
        assert_eq!(added, ["p9"], "m7's key is a member's; m9's new one is not");
        assert_eq!(c.removes.len(), 39, "everyone absent, and m9's old leaf");
    }

    #[test]
    fn a_rejoined_identity_replaces_its_old_leaf_in_one_commit() {
        let members: Arc<[Member]> = Arc::new([member(0, "alice"), member(1, "bob")]);
        let mut p = policy(&[("pa", "alice"), ("pb2", "bob")]);
        p.key_package("pb2".into(), kp("bob", "bob-new-key"));
        let c = p.changes(&members, Some(0));
        assert_eq!(c.adds.len(), 1);
        assert_eq!(c.removes, [1]);
    }

    #[test]
    fn the_lowest_present_leaf_commits_and_the_next_takes_over_in_turn() {
        let members: Arc<[Member]> =
            Arc::new([member(0, "alice"), member(1, "bob"), member(2, "carol")]);
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
        let members: Arc<[Member]> = Arc::new([member(0, "alice"), member(1, "bob")]);
        let t0 = Instant::now();
        let mut p = policy(&[("pa", "alice")]);
        assert!(p.due(t0, &members, Some(0)).is_some());
        p.lost(t0);
        assert!(p.due(t0, &members, Some(0)).is_none());
        assert_eq!(p.next_wakeup(), Some(t0 + DELAY));
        assert!(p.due(t0 + DELAY, &members, Some(0)).is_some());
        // The winner arriving ends the wait.
        p.lost(t0 + DELAY);
        p.entered_epoch(t0 + DELAY);
        assert!(p.due(t0 + DELAY, &members, Some(0)).is_some());
    }

    #[test]
    fn nothing_pending_means_no_wakeup_and_a_new_epoch_restarts_the_clock() {
        let members: Arc<[Member]> = Arc::new([member(0, "alice"), member(1, "bob")]);
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
        p.entered_epoch(t1);
        assert_eq!(p.next_wakeup(), None);
        // Not in a group: nothing is due, whatever is pending.
        assert!(p.due(t1, &members, None).is_none());
    }

    /// Joins at 20 a second for 3 s against a committer whose commits
    /// take effect 50 ms after it makes them: every joiner is added within
    /// `add_interval` plus that delay, in no more than two epochs a second.
    #[test]
    fn a_burst_of_joins_is_committed_in_few_epochs_with_a_bounded_wait() {
        let pacing = Pacing::default();
        let apply = Duration::from_millis(50);
        let t0 = Instant::now();
        let mut p = CommitPolicy::new(DELAY, pacing);
        p.joined("p000", "alice");
        p.entered_epoch(t0);
        let mut members = vec![member(0, "alice")];
        let mut arrived_at = HashMap::new();
        let mut epochs = Vec::new();
        let mut waits = Vec::new();
        let mut in_flight: Option<(Instant, Changes)> = None;
        let step = Duration::from_millis(10);
        for tick in 0..600u32 {
            let now = t0 + step * tick;
            // A join every 50 ms for the first 3 s.
            if tick % 5 == 0 && tick < 300 {
                let n = tick / 5 + 1;
                let (pid, id) = (format!("p{n:03}"), format!("m{n}"));
                p.joined(&pid, &id);
                let mut w = kp(&id, &format!("key-{n}"));
                w.arrival = u64::from(n);
                w.received = now;
                p.key_package(pid.clone(), w);
                arrived_at.insert(pid, now);
            }
            if let Some((at, changes)) = in_flight.take_if(|(at, _)| *at <= now) {
                for (pid, _) in &changes.adds {
                    let n: u32 = pid[1..].parse().unwrap();
                    members.push(member(n, &format!("m{n}")));
                    waits.push(at - arrived_at[pid]);
                    p.settled(pid);
                }
                p.entered_epoch(at);
                epochs.push(at);
            }
            if in_flight.is_none() {
                if let Some(c) = p.due(now, &Arc::from(members.as_slice()), Some(0)) {
                    assert!(c.adds.len() <= pacing.max_adds);
                    in_flight = Some((now + apply, c));
                }
            } else {
                p.pause();
            }
        }
        assert_eq!(members.len(), 61, "everyone was added");
        let worst = waits.iter().max().copied().unwrap();
        assert!(
            worst <= pacing.add_interval + apply + step,
            "a joiner waited {worst:?}"
        );
        // 60 joins in 3 s: without pacing, 60 epochs.
        assert!(epochs.len() <= 8, "{} epochs", epochs.len());
        for pair in epochs.windows(2) {
            assert!(pair[1] - pair[0] >= pacing.add_interval, "{epochs:?}");
        }
    }

    #[test]
    fn leaves_and_full_batches_are_not_held_back() {
        let pacing = Pacing {
            add_interval: Duration::from_secs(1),
            max_adds: 2,
        };
        let t0 = Instant::now();
        let members: Arc<[Member]> = Arc::new([member(0, "alice"), member(1, "bob")]);
        let mut p = CommitPolicy::new(DELAY, pacing);
        p.joined("pa", "alice");
        p.joined("pb", "bob");
        p.entered_epoch(t0);
        // One join right after an epoch began waits for the interval.
        p.joined("pc", "carol");
        let mut c = kp("carol", "c");
        c.arrival = 5;
        p.key_package("pc".into(), c);
        assert!(p.due(t0, &members, Some(0)).is_none());
        assert_eq!(p.next_wakeup(), Some(t0 + pacing.add_interval));
        // A second fills the batch: both go at once.
        p.joined("pd", "dave");
        let mut d = kp("dave", "d");
        d.arrival = 4;
        p.key_package("pd".into(), d);
        let due = p.due(t0, &members, Some(0)).expect("a full batch goes");
        let order: Vec<&str> = due.adds.iter().map(|(pid, _)| pid.as_str()).collect();
        assert_eq!(order, ["pd", "pc"], "oldest first");
        // A third waits for the next commit; a leave takes everyone along
        // at once.
        p.joined("pe", "erin");
        let mut e = kp("erin", "e");
        e.arrival = 6;
        p.key_package("pe".into(), e);
        let due = p.due(t0, &members, Some(0)).expect("full");
        assert_eq!(due.adds.len(), 2);
        p.left("pc");
        p.left("pd");
        assert!(p.due(t0, &members, Some(0)).is_none(), "erin alone waits");
        p.left("pb");
        let due = p.due(t0, &members, Some(0)).expect("a leave goes at once");
        assert_eq!(due.removes, [1]);
        assert_eq!(due.adds.len(), 1);
    }

    /// Epochs that begin more often than the interval (a self-update every
    /// 300 ms) do not hold a join back beyond the interval.
    #[test]
    fn frequent_epochs_do_not_starve_a_join() {
        let pacing = Pacing::default();
        let t0 = Instant::now();
        let members: Arc<[Member]> = Arc::new([member(0, "alice")]);
        let mut p = CommitPolicy::new(DELAY, pacing);
        p.joined("pa", "alice");
        p.joined("pb", "bob");
        let mut b = kp("bob", "b");
        b.received = t0;
        p.key_package("pb".into(), b);
        p.entered_epoch(t0);
        assert!(p.due(t0, &members, Some(0)).is_none());
        let step = Duration::from_millis(300);
        p.entered_epoch(t0 + step);
        assert!(p.due(t0 + step, &members, Some(0)).is_none());
        assert_eq!(p.next_wakeup(), Some(t0 + pacing.add_interval));
        assert!(p.due(t0 + pacing.add_interval, &members, Some(0)).is_some());
    }
}
