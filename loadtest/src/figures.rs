//! Report figures gathered from every participant's slot at the end of a
//! run: frame loss around epoch changes, the MLS roster check, and what
//! the light listeners received.

use crate::report::{CountDistribution, EpochChangeLoss, ListenerFigures, RosterCheck};
use crate::state::{Phase, Slot, lock};
use crate::stats::ChangeLoss;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Sums the settled epoch changes of every member.
pub fn epoch_change_loss(changes: impl IntoIterator<Item = ChangeLoss>) -> EpochChangeLoss {
    let mut out = EpochChangeLoss::default();
    let mut per_change = Vec::new();
    for c in changes {
        out.changes += 1;
        out.frames_expected += c.expected;
        out.frames_lost += c.lost;
        out.undelivered += c.lost.saturating_sub(c.failures.total());
        per_change.push(c.lost);
        let f = &mut out.failures;
        f.malformed += c.failures.malformed;
        f.auth_failed += c.failures.auth_failed;
        f.replay += c.failures.replay;
        f.unknown_kid += c.failures.unknown_kid;
        f.wrong_epoch += c.failures.wrong_epoch;
        f.wrong_sender += c.failures.wrong_sender;
        f.unknown_sender += c.failures.unknown_sender;
        f.incomplete += c.failures.incomplete;
    }
    out.lost_per_change = CountDistribution::of(per_change);
    out
}

/// Checks, for the members in session now, that each one's MLS group at
/// its latest epoch holds every other member of its room in session.
pub fn roster_check(slots: &[Arc<Slot>]) -> RosterCheck {
    let live: Vec<&Arc<Slot>> = slots.iter().filter(|s| s.phase() == Phase::Live).collect();
    let mut rooms: HashMap<u32, Vec<&str>> = HashMap::new();
    for s in &live {
        rooms.entry(s.room).or_default().push(&s.identity);
    }
    let mut out = RosterCheck {
        members: live.len() as u64,
        mismatches: slots.iter().map(|s| s.roster_mismatches()).sum(),
        ..RosterCheck::default()
    };
    for s in &live {
        let roster = s.roster();
        let held: HashSet<&str> = roster.iter().map(String::as_str).collect();
        let room = rooms.get(&s.room).map(Vec::as_slice).unwrap_or_default();
        out.missing += room.iter().filter(|id| !held.contains(*id)).count() as u64;
    }
    out
}

/// What the light listeners among `slots` received; `tracks` is how many
/// tracks each room publishes. `in_session` are the indices of the slots
/// that were in session when the media stopped (only they must have every
/// track).
pub fn light_listeners(
    slots: &[Arc<Slot>],
    tracks: u64,
    in_session: &HashSet<u32>,
) -> Option<ListenerFigures> {
    let light: Vec<&Arc<Slot>> = slots.iter().filter(|s| !s.publishes()).collect();
    if light.is_empty() {
        return None;
    }
    let mut out = ListenerFigures {
        participants: light.len() as u64,
        publisher_tracks: tracks,
        tracks_received_min: u64::MAX,
        ..ListenerFigures::default()
    };
    for s in light {
        out.connected += u64::from(s.connected());
        let failures = s.failures().total();
        out.decrypt_failures_after_join += failures.saturating_sub(s.failures_while_joining());
        let stats = lock(&s.stats);
        out.frames_received += stats.frames_received();
        if in_session.contains(&s.index) {
            out.tracks_received_min = out.tracks_received_min.min(stats.streams_seen() as u64);
        }
    }
    if out.tracks_received_min == u64::MAX {
        out.tracks_received_min = 0;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use client_sdk::DecryptFailures;

    fn change(expected: u64, lost: u64, wrong_epoch: u64) -> ChangeLoss {
        let mut failures = DecryptFailures::default();
        failures.wrong_epoch = wrong_epoch;
        ChangeLoss {
            expected,
            lost,
            failures,
        }
    }

    #[test]
    fn epoch_change_loss_sums_and_distributes() {
        assert_eq!(epoch_change_loss(Vec::new()), EpochChangeLoss::default());
        let changes = (0..20).map(|i| change(100, if i == 19 { 7 } else { 0 }, 0));
        let mut all: Vec<ChangeLoss> = changes.collect();
        all.push(change(50, 2, 5));
        let e = epoch_change_loss(all);
        assert_eq!((e.changes, e.frames_expected, e.frames_lost), (21, 2050, 9));
        assert_eq!(e.failures.wrong_epoch, 5);
        // 7 lost with no failure counted; 2 lost with 5 failures: 0.
        assert_eq!(e.undelivered, 7);
        let d = e.lost_per_change;
        assert_eq!((d.count, d.p50, d.p95, d.max), (21, 0, 2, 7));
    }

    #[test]
    fn the_roster_check_finds_who_is_missing() {
        let slot = |i: u32, room: u32| {
            let s = Arc::new(Slot::new(
                i,
                room,
                format!("p{room}-{i}"),
                false,
                false,
                true,
                0,
            ));
            s.set_phase(Phase::Live);
            s
        };
        let (a, b, c, d) = (slot(0, 0), slot(1, 0), slot(2, 0), slot(3, 1));
        a.set_roster(vec!["p0-0".into(), "p0-1".into(), "p0-2".into()]);
        b.set_roster(vec!["p0-0".into(), "p0-1".into()]);
        c.set_roster(vec![
            "p0-0".into(),
            "p0-1".into(),
            "p0-2".into(),
            "p0-9".into(),
        ]);
        d.set_roster(vec!["p1-3".into()]);
        c.note_roster_mismatch();
        let gone = slot(4, 0);
        gone.set_phase(Phase::Left);
        let r = roster_check(&[a, b, c, d, gone]);
        assert_eq!(
            r,
            RosterCheck {
                members: 4,
                missing: 1,
                mismatches: 1
            }
        );
    }
}
