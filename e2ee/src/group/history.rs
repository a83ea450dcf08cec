//! Who held each leaf in the last few epochs, to name the sender of a late
//! application message, kept as what each commit changed rather than as a
//! full roster per epoch: a commit changes a handful of leaves, and copying
//! a roster of hundreds of members on every epoch was a cost every member
//! paid on every commit.

use std::collections::VecDeque;

use openmls::{
    prelude::{LeafNodeIndex, MlsGroup, Proposal, Sender, StagedCommit},
    treesync::LeafNode,
};

use super::{Member, member::identity_bytes};

/// The leaves one commit changed, each with its member in the epoch before
/// the commit (`None`: the leaf was blank).
pub(super) type LeafChanges = Vec<(u32, Option<Member>)>;

/// Leaf changes of the last few epochs, oldest first, for consecutive
/// epochs.
///
/// An application message from a past epoch may come from a member the
/// newer epoch removed, or whose leaf was since reused; its sender must be
/// named as of the epoch it was sent in.
#[derive(Debug, Default)]
pub(super) struct RosterHistory {
    epochs: VecDeque<(u64, LeafChanges)>,
}

impl RosterHistory {
    /// Remembers what the commit ending `epoch` changed, keeping at most
    /// `keep` epochs. A gap (an epoch not following the last one) forgets
    /// the older ones, whose later changes would be missing.
    pub(super) fn record(&mut self, epoch: u64, changes: LeafChanges, keep: usize) {
        if self
            .epochs
            .back()
            .is_some_and(|(last, _)| last.checked_add(1) != Some(epoch))
        {
            self.epochs.clear();
        }
        self.epochs.push_back((epoch, changes));
        while self.epochs.len() > keep {
            self.epochs.pop_front();
        }
    }

    /// The member at `leaf` in past epoch `epoch`, if that epoch is
    /// remembered: as the first later commit that changed the leaf found
    /// it, or else as it is now (`current`, asked only then).
    pub(super) fn lookup(
        &self,
        epoch: u64,
        leaf: u32,
        current: impl FnOnce(u32) -> Option<Member>,
    ) -> Option<Member> {
        let start = self.epochs.iter().position(|(e, _)| *e == epoch)?;
        let changed = self
            .epochs
            .range(start..)
            .find_map(|(_, changes)| changes.iter().find(|(l, _)| *l == leaf));
        match changed {
            Some((_, member)) => member.clone(),
            None => current(leaf),
        }
    }

    pub(super) fn clear(&mut self) {
        self.epochs.clear();
    }
}

/// The leaves `staged` changes, except the ones it adds (known only after
/// the merge, [`added_members`]), with their members in the current epoch:
/// the committer's (a path replaces its leaf node), each proposal sender's
/// (an Update replaces it) and each removed one.
pub(super) fn leaves_changed(
    group: &MlsGroup,
    staged: &StagedCommit,
    committer: u32,
) -> LeafChanges {
    let mut leaves = vec![committer];
    for queued in staged.queued_proposals() {
        if let Sender::Member(leaf) = queued.sender() {
            leaves.push(leaf.u32());
        }
        if let Proposal::Remove(remove) = queued.proposal() {
            leaves.push(remove.removed().u32());
        }
    }
    leaves.sort_unstable();
    leaves.dedup();
    leaves
        .into_iter()
        .map(|leaf| {
            (
                leaf,
                group
                    .member_at(LeafNodeIndex::new(leaf))
                    .map(|m| Member::from(&m)),
            )
        })
        .collect()
}

/// The signature keys of the members `staged` adds, in proposal order.
pub(super) fn added_keys(staged: &StagedCommit) -> Vec<Vec<u8>> {
    staged
        .add_proposals()
        .map(|add| {
            let leaf = add.add_proposal().key_package().leaf_node();
            leaf.signature_key().as_slice().to_vec()
        })
        .collect()
}

/// The members with signature keys `keys` (in that order) in `group`, just
/// after the commit adding them merged; keys not found are skipped.
pub(super) fn added_members(group: &MlsGroup, keys: &[Vec<u8>]) -> Vec<Member> {
    let mut found: Vec<Option<Member>> = vec![None; keys.len()];
    let mut missing = keys.len();
    // An add fills the leftmost blank leaf (RFC 9420 §12.1.1, after the
    // commit's removals), so no blank leaf precedes an added one and the
    // scan can end at the first blank, without copying every member.
    let tree = group.public_group();
    let mut index = 0u32;
    while missing > 0 {
        let Some(leaf) = tree.leaf(LeafNodeIndex::new(index)) else {
            break;
        };
        if let Some(slot) = slot_of(keys, &found, leaf.signature_key().as_slice()) {
            found[slot] = Some(from_leaf(index, leaf));
            missing -= 1;
        }
        index += 1;
    }
    if missing > 0 {
        tracing::debug!(missing, "added member not where adds go; searching all");
        for m in group.members() {
            if let Some(slot) = slot_of(keys, &found, &m.signature_key) {
                found[slot] = Some(Member::from(&m));
            }
        }
    }
    found.into_iter().flatten().collect()
}

/// Adds the leaves of `added` (blank before the commit) to `changes`,
/// unless the commit emptied them first (already there, with their former
/// member).
pub(super) fn note_added(changes: &mut LeafChanges, added: &[Member]) {
    for m in added {
        if !changes.iter().any(|(leaf, _)| *leaf == m.leaf) {
            changes.push((m.leaf, None));
        }
    }
}

/// The first key equal to `key` not found yet.
fn slot_of(keys: &[Vec<u8>], found: &[Option<Member>], key: &[u8]) -> Option<usize> {
    (0..keys.len()).find(|&i| found[i].is_none() && keys[i] == key)
}

fn from_leaf(index: u32, leaf: &LeafNode) -> Member {
    Member {
        leaf: index,
        identity: String::from_utf8_lossy(&identity_bytes(leaf.credential())).into_owned(),
        signature_key: leaf.signature_key().as_slice().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(leaf: u32, name: &str) -> Option<Member> {
        Some(Member {
            leaf,
            identity: name.into(),
            signature_key: vec![leaf as u8],
        })
    }

    #[test]
    fn lookups_go_through_later_changes_then_the_current_roster() {
        let mut h = RosterHistory::default();
        let now = |leaf| member(leaf, "now");
        // Epoch 3 -> 4 removed leaf 1 (was "a"); 4 -> 5 added "b" at leaf 1;
        // 5 -> 6 changed only leaf 0.
        h.record(3, vec![(0, member(0, "c")), (1, member(1, "a"))], 4);
        h.record(4, vec![(0, member(0, "c")), (1, None)], 4);
        h.record(5, vec![(0, member(0, "c2"))], 4);
        let name = |h: &RosterHistory, epoch, leaf| h.lookup(epoch, leaf, now).map(|m| m.identity);
        assert_eq!(name(&h, 3, 1).as_deref(), Some("a"));
        assert_eq!(name(&h, 4, 1), None, "blank in epoch 4");
        assert_eq!(name(&h, 5, 1).as_deref(), Some("now"));
        assert_eq!(name(&h, 3, 0).as_deref(), Some("c"));
        assert_eq!(name(&h, 5, 0).as_deref(), Some("c2"));
        assert_eq!(name(&h, 4, 7).as_deref(), Some("now"), "unchanged since");
        assert_eq!(name(&h, 2, 0), None, "not remembered");

        // Only `keep` epochs stay; a gap forgets what came before it.
        for e in 6..10 {
            h.record(e, Vec::new(), 4);
        }
        assert_eq!(name(&h, 5, 0), None);
        assert_eq!(name(&h, 6, 0).as_deref(), Some("now"));
        h.record(12, Vec::new(), 4);
        assert_eq!(name(&h, 9, 0), None);
        assert_eq!(name(&h, 12, 0).as_deref(), Some("now"));
        h.clear();
        assert_eq!(name(&h, 12, 0), None);
    }
}
