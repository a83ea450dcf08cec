//! Ghost detection: the MLS roster compared with the signaling roster.
//!
//! The server cannot read the group, but it could add a member of its own
//! (a ghost) or withhold a commit. Members catch both by comparing what the
//! group holds with whom the server announced:
//!
//! - a member the signaling roster never announced is flagged at once;
//! - a departed member not removed, or a present participant not added,
//!   within `grace` is flagged too (a change in progress takes a moment).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use web_time::Instant;

/// Identities on one side only, as reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Mismatch {
    /// In the MLS group but not in the signaling roster.
    pub(crate) mls_only: Vec<String>,
    /// In the signaling roster but not in the MLS group.
    pub(crate) signaling_only: Vec<String>,
}

impl Mismatch {
    fn is_empty(&self) -> bool {
        self.mls_only.is_empty() && self.signaling_only.is_empty()
    }
}

/// The comparison's memory: who was ever announced, and since when each
/// identity has been on one side only.
#[derive(Debug)]
pub(crate) struct RosterCheck {
    grace: Duration,
    /// Identities the signaling roster has ever named.
    announced: BTreeSet<String>,
    differing_since: BTreeMap<String, Instant>,
    reported: Mismatch,
}

impl RosterCheck {
    pub(crate) fn new(grace: Duration) -> Self {
        Self {
            grace,
            announced: BTreeSet::new(),
            differing_since: BTreeMap::new(),
            reported: Mismatch::default(),
        }
    }

    /// The signaling roster named `identity`.
    pub(crate) fn announced(&mut self, identity: &str) {
        self.announced.insert(identity.to_owned());
    }

    /// Compares the rosters now; returns a difference that is not
    /// explained by a change in progress, when it differs from the last
    /// one reported.
    pub(crate) fn check(
        &mut self,
        now: Instant,
        mls: &BTreeSet<&str>,
        signaling: &BTreeSet<&str>,
    ) -> Option<Mismatch> {
        let differing: BTreeSet<&str> = mls.symmetric_difference(signaling).copied().collect();
        self.differing_since
            .retain(|id, _| differing.contains(id.as_str()));
        for id in differing {
            if !self.differing_since.contains_key(id) {
                self.differing_since.insert(id.to_owned(), now);
            }
        }
        let mut report = Mismatch::default();
        for (id, since) in &self.differing_since {
            let in_mls = mls.contains(id.as_str());
            let never_announced = in_mls && !self.announced.contains(id);
            if never_announced || now.saturating_duration_since(*since) >= self.grace {
                if in_mls {
                    report.mls_only.push(id.clone());
                } else {
                    report.signaling_only.push(id.clone());
                }
            }
        }
        if report == self.reported {
            return None;
        }
        self.reported = report.clone();
        (!report.is_empty()).then_some(report)
    }

    /// When a difference seen so far becomes reportable.
    pub(crate) fn next_wakeup(&self) -> Option<Instant> {
        let reported = |id: &String| {
            self.reported.mls_only.contains(id) || self.reported.signaling_only.contains(id)
        };
        self.differing_since
            .iter()
            .filter(|(id, _)| !reported(id))
            .map(|(_, since)| *since + self.grace)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(10);

    fn set<'a>(ids: &[&'a str]) -> BTreeSet<&'a str> {
        ids.iter().copied().collect()
    }

    fn check_with(announced: &[&str]) -> RosterCheck {
        let mut c = RosterCheck::new(GRACE);
        for id in announced {
            c.announced(id);
        }
        c
    }

    #[test]
    fn a_member_never_announced_is_flagged_at_once() {
        let mut c = check_with(&["alice", "bob"]);
        let t0 = Instant::now();
        let got = c.check(
            t0,
            &set(&["alice", "bob", "ghost"]),
            &set(&["alice", "bob"]),
        );
        assert_eq!(got.map(|m| m.mls_only), Some(vec!["ghost".to_string()]));
        // Reported once, not again while it lasts; no timer for it either.
        assert_eq!(
            c.check(
                t0 + GRACE,
                &set(&["alice", "bob", "ghost"]),
                &set(&["alice", "bob"])
            ),
            None
        );
        assert_eq!(c.next_wakeup(), None);
    }

    #[test]
    fn a_difference_is_flagged_only_after_the_grace_period() {
        let mut c = check_with(&["alice", "bob", "carol"]);
        let t0 = Instant::now();
        // Carol joined (not yet added), bob left (not yet removed).
        let mls = set(&["alice", "bob"]);
        let signaling = set(&["alice", "carol"]);
        assert_eq!(c.check(t0, &mls, &signaling), None);
        assert_eq!(c.next_wakeup(), Some(t0 + GRACE));
        assert_eq!(c.check(t0 + GRACE / 2, &mls, &signaling), None);
        let got = c.check(t0 + GRACE, &mls, &signaling).expect("overdue");
        assert_eq!(got.mls_only, ["bob"]);
        assert_eq!(got.signaling_only, ["carol"]);
        assert_eq!(c.next_wakeup(), None, "nothing left to wait for");
        // Settled: nothing to report, and a later difference starts afresh.
        assert_eq!(c.check(t0 + GRACE, &signaling, &signaling), None);
        let later = t0 + 3 * GRACE;
        assert_eq!(c.check(later, &mls, &signaling), None);
        assert_eq!(c.next_wakeup(), Some(later + GRACE));
    }

    #[test]
    fn a_change_completed_within_the_grace_period_is_never_flagged() {
        let mut c = check_with(&["alice", "bob"]);
        let t0 = Instant::now();
        assert_eq!(c.check(t0, &set(&["alice"]), &set(&["alice", "bob"])), None);
        assert_eq!(
            c.check(
                t0 + GRACE / 10,
                &set(&["alice", "bob"]),
                &set(&["alice", "bob"])
            ),
            None
        );
        assert_eq!(c.next_wakeup(), None);
        assert_eq!(
            c.check(
                t0 + 2 * GRACE,
                &set(&["alice", "bob"]),
                &set(&["alice", "bob"])
            ),
            None
        );
    }
}
