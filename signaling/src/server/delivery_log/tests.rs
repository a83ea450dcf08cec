//! The delivery service with real MLS clients (the `e2ee` group code):
//! what it accepts, what it refuses, and that a refusal changes nothing.

use super::*;
use e2ee::group::{Commit, MlsClient, MlsConfig, Processed};

const BIG: LogLimits = LogLimits {
    max_entries: 1000,
    max_bytes: 1 << 24,
};

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn client(identity: &str) -> MlsClient {
    MlsClient::new(identity, MlsConfig::default()).unwrap()
}

fn entry(l: &Logged) -> (u64, MlsEntry) {
    match serde_json::from_str(&l.text).unwrap() {
        ServerMessage::Mls { seq, entry } => (seq, entry),
        other => panic!("unexpected {other:?}"),
    }
}

fn msg(epoch: u64, c: &Commit) -> CommitMsg {
    CommitMsg {
        epoch,
        commit: b64(&c.commit),
        welcome: c.welcome.as_deref().map(b64),
    }
}

/// A room whose participants are named by their identity ("alice" has
/// participant id "p-alice"); the first founds the group and sends its
/// GroupInfo.
struct Room {
    log: DeliveryLog,
    clients: HashMap<String, MlsClient>,
}

fn pid(name: &str) -> String {
    format!("p-{name}")
}

impl Room {
    fn new(founder: &str) -> Self {
        let mut room = Self {
            log: DeliveryLog::new(BIG),
            clients: HashMap::new(),
        };
        let info = room.log.join(&pid(founder), founder);
        assert!(info.founder);
        let mut c = client(founder);
        c.create_group(&hex::decode(&info.group_id).unwrap())
            .unwrap();
        let gi = b64(&c.group_info().unwrap());
        assert_eq!(room.log.group_info(&pid(founder), &gi), Ok(true));
        room.clients.insert(founder.to_string(), c);
        room
    }

    /// `name` joins the room and sends a KeyPackage.
    fn join(&mut self, name: &str) -> String {
        let info = self.log.join(&pid(name), name);
        assert!(!info.founder);
        let mut c = client(name);
        let kp = b64(&c.key_package().unwrap());
        self.log.key_package(&pid(name), kp.clone()).unwrap();
        self.clients.insert(name.to_string(), c);
        kp
    }

    fn c(&mut self, name: &str) -> &mut MlsClient {
        self.clients.get_mut(name).unwrap()
    }

    /// `by` commits adding `adds` (base64 KeyPackages) and removing
    /// `removes` (leaves); the commit is not yet sent.
    fn make(&mut self, by: &str, adds: &[&str], removes: &[u32]) -> CommitMsg {
        let kps: Vec<Vec<u8>> = adds.iter().map(|k| B64.decode(k).unwrap()).collect();
        let refs: Vec<&[u8]> = kps.iter().map(Vec::as_slice).collect();
        let c = self.c(by);
        let epoch = c.epoch().unwrap();
        let commit = if refs.is_empty() && removes.is_empty() {
            c.self_update().unwrap()
        } else {
            c.commit(&refs, removes).unwrap()
        };
        msg(epoch, &commit)
    }

    /// Sends `m` from `by`; if accepted, every client catches up (the
    /// committer merges, members process, added ones join).
    fn send(&mut self, by: &str, m: CommitMsg) -> Result<MlsEntry, CommitRefusal> {
        let logged = self.log.commit(&pid(by), m.clone());
        let Ok(logged) = logged else {
            self.c(by).clear_pending_commit();
            return Err(logged.unwrap_err());
        };
        let (_, e) = entry(&logged);
        let MlsEntry::Commit { added, .. } = &e else {
            panic!("{e:?}")
        };
        let commit = B64.decode(&m.commit).unwrap();
        for (name, c) in &mut self.clients {
            // Each gets its own form of the entry: only the added ones
            // get the Welcome.
            let MlsEntry::Commit { welcome, .. } = entry(&logged.for_member(&pid(name))).1 else {
                unreachable!()
            };
            assert_eq!(welcome.is_some(), added.contains(&pid(name)), "{name}");
            if name == by {
                c.merge_pending_commit().unwrap();
            } else if added.contains(&pid(name)) {
                let w = B64.decode(welcome.unwrap()).unwrap();
                c.leave_group();
                assert!(c.join(&w).unwrap());
            } else if c.in_group() {
                assert!(matches!(c.process(&commit), Ok(Processed::Commit { .. })));
            }
        }
        Ok(e)
    }

    /// A group of `names`, the first having added the others in one commit.
    fn group(names: &[&str]) -> Self {
        let mut room = Self::new(names[0]);
        let kps: Vec<String> = names[1..].iter().map(|n| room.join(n)).collect();
        let refs: Vec<&str> = kps.iter().map(String::as_str).collect();
        let m = room.make(names[0], &refs, &[]);
        room.send(names[0], m).unwrap();
        room
    }

    /// The observable state a refusal must not change.
    fn state(&self) -> (u64, u64, Vec<(u32, String)>, usize) {
        (
            self.log.epoch(),
            self.log.last_seq(),
            self.log.leaf_owners(),
            self.log.pending_key_packages(),
        )
    }
}

#[test]
fn the_founders_group_info_is_checked() {
    let mut log = DeliveryLog::new(BIG);
    let info = log.join("p-alice", "alice");
    log.join("p-bob", "bob");
    let gid = hex::decode(&info.group_id).unwrap();
    let gi = |c: &MlsClient| b64(&c.group_info().unwrap());
    let mut alice = client("alice");
    alice.create_group(&gid).unwrap();
    // Another group id, another identity, garbage, not base64, not the
    // founder, a later epoch: all refused, nothing tracked.
    let mut other = client("alice");
    other.create_group(b"another group").unwrap();
    assert!(log.group_info("p-alice", &gi(&other)).is_err());
    let mut mallory = client("mallory");
    mallory.create_group(&gid).unwrap();
    assert!(log.group_info("p-alice", &gi(&mallory)).is_err());
    assert!(log.group_info("p-alice", "Z2FyYmFnZQ==").is_err());
    assert!(log.group_info("p-alice", "%%%").is_err());
    assert!(log.group_info("p-bob", &gi(&alice)).is_err());
    let mut later = client("alice");
    later.create_group(&gid).unwrap();
    later.self_update().unwrap();
    later.merge_pending_commit().unwrap();
    assert!(log.group_info("p-alice", &gi(&later)).is_err());
    // A KeyPackage is not a GroupInfo either.
    assert!(
        log.group_info("p-alice", &b64(&alice.key_package().unwrap()))
            .is_err()
    );
    assert!(!log.group_created());
    assert_eq!(log.group_info("p-alice", &gi(&alice)), Ok(true));
    assert!(log.group_created());
    assert_eq!(log.leaf_owners(), [(0, "p-alice".to_string())]);
    // A repeat is ignored.
    assert_eq!(log.group_info("p-alice", &gi(&alice)), Ok(false));
}

#[test]
fn key_packages_are_checked_and_the_latest_wins() {
    let mut room = Room::new("alice");
    room.log.join("p-bob", "bob");
    let mut bob = client("bob");
    let mut mallory = client("mallory");
    for bad in [
        "%%%".to_string(),
        b64(b"garbage"),
        b64(&mallory.key_package().unwrap()),
    ] {
        assert!(room.log.key_package("p-bob", bad).is_err());
    }
    assert_eq!(room.log.pending_key_packages(), 0);
    assert_eq!(room.log.last_seq(), 0);
    let first = b64(&bob.key_package().unwrap());
    let second = b64(&bob.key_package().unwrap());
    let logged = room.log.key_package("p-bob", first.clone()).unwrap();
    assert_eq!(logged.len(), 1);
    room.log.key_package("p-bob", second.clone()).unwrap();
    assert_eq!(room.log.pending_key_packages(), 1);
    room.clients.insert("bob".into(), bob);
    // Only the latest may be added.
    let stale = room.make("alice", &[&first], &[]);
    let before = room.state();
    assert!(matches!(
        room.send("alice", stale),
        Err(CommitRefusal::Roster { current: 0, .. })
    ));
    assert_eq!(room.state(), before);
    let m = room.make("alice", &[&second], &[]);
    let MlsEntry::Commit { added, removed, .. } = room.send("alice", m).unwrap() else {
        unreachable!()
    };
    assert_eq!((added, removed), (vec!["p-bob".to_string()], vec![]));
    assert_eq!(room.log.pending_key_packages(), 0);
    assert!(room.log.is_member("p-bob"));
}

#[test]
fn one_commit_per_epoch_and_membership_follows_the_commits() {
    let mut room = Room::group(&["alice", "bob"]);
    assert_eq!(room.log.epoch(), 1);
    assert!(room.log.is_member("p-alice") && room.log.is_member("p-bob"));
    // Both commit in epoch 1: the first wins, the second is stale.
    let a = room.make("alice", &[], &[]);
    let b = room.make("bob", &[], &[]);
    room.send("alice", a.clone()).unwrap();
    assert_eq!(
        room.send("bob", b),
        Err(CommitRefusal::WrongEpoch { current: 2 })
    );
    // The winner replayed: stale too.
    assert_eq!(
        room.log.commit("p-alice", a).err(),
        Some(CommitRefusal::WrongEpoch { current: 2 })
    );
    // A participant outside the group may neither commit nor chat.
    room.log.join("p-carol", "carol");
    let m = room.make("bob", &[], &[]);
    room.c("bob").clear_pending_commit();
    assert_eq!(
        room.log.commit("p-carol", m).err(),
        Some(CommitRefusal::NotMember)
    );
    assert_eq!(
        room.log
            .application("p-carol", 2, "aGk=".into())
            .unwrap_err(),
        NotMember
    );
    let chat = room.log.application("p-bob", 2, "aGk=".into()).unwrap();
    assert!(matches!(entry(&chat).1, MlsEntry::Application { .. }));
}

/// A member replays the epoch-0 commit (it claims the current epoch and,
/// on the old wire, "removed everyone"), sends garbage, an application
/// message as a commit, another member's commit, and a commit removing
/// present members. Each is refused and changes nothing; the others'
/// commits and chat go on.
#[test]
fn replayed_and_forged_commits_are_refused_and_change_nothing() {
    let mut room = Room::new("alice");
    let kb = room.join("bob");
    let kc = room.join("carol");
    let first = room.make("alice", &[&kb, &kc], &[]);
    room.send("alice", first.clone()).unwrap();
    let before = room.state();
    let replay = CommitMsg { epoch: 1, ..first };
    assert_eq!(
        room.log.commit("p-carol", replay).err(),
        Some(CommitRefusal::WrongEpoch { current: 1 })
    );
    let garbage = CommitMsg {
        epoch: 1,
        commit: b64(b"\0\x01\0\x01garbage"),
        welcome: None,
    };
    assert!(matches!(
        room.log.commit("p-carol", garbage),
        Err(CommitRefusal::Invalid(_))
    ));
    let app = CommitMsg {
        epoch: 1,
        commit: b64(&room.c("carol").encrypt_application(b"hi").unwrap()),
        welcome: None,
    };
    assert!(matches!(
        room.log.commit("p-carol", app),
        Err(CommitRefusal::Invalid(_))
    ));
    // Bob's valid commit, sent by Carol: not hers.
    let bobs = room.make("bob", &[], &[]);
    room.c("bob").clear_pending_commit();
    assert!(matches!(
        room.log.commit("p-carol", bobs),
        Err(CommitRefusal::Invalid(_))
    ));
    // Carol removes Alice and Bob, who are present.
    let purge = room.make("carol", &[], &[0, 1]);
    assert!(matches!(
        room.send("carol", purge),
        Err(CommitRefusal::Roster { current: 1, .. })
    ));
    // A ghost's KeyPackage, never sent through the server.
    let ghost = b64(&client("ghost").key_package().unwrap());
    let m = room.make("carol", &[&ghost], &[]);
    assert!(matches!(
        room.send("carol", m),
        Err(CommitRefusal::Roster { current: 1, .. })
    ));
    assert_eq!(room.state(), before);
    // Everyone carries on.
    let m = room.make("bob", &[], &[]);
    room.send("bob", m).unwrap();
    for who in ["alice", "bob", "carol"] {
        room.log.application(&pid(who), 2, "aGk=".into()).unwrap();
    }
    let m = room.make("carol", &[], &[]);
    room.send("carol", m).unwrap();
    assert_eq!(room.log.epoch(), 3);
}

#[test]
fn a_commit_must_remove_every_departed_member() {
    let mut room = Room::group(&["alice", "bob", "carol"]);
    assert!(room.log.departed("p-carol").is_none());
    let m = room.make("alice", &[], &[]);
    assert!(matches!(
        room.send("alice", m),
        Err(CommitRefusal::Roster { .. })
    ));
    let m = room.make("alice", &[], &[2]);
    let MlsEntry::Commit { removed, .. } = room.send("alice", m).unwrap() else {
        unreachable!()
    };
    assert_eq!(removed, ["p-carol"]);
    assert!(!room.log.is_member("p-carol"));
    // A member whose identity came back under a new participant id may be
    // replaced; until its KeyPackage arrives it need not be removed.
    room.log.departed("p-bob");
    room.log.join("p-bob-2", "bob");
    let m = room.make("alice", &[], &[]);
    room.send("alice", m).unwrap();
    let mut bob2 = client("bob");
    let kp = b64(&bob2.key_package().unwrap());
    room.log.key_package("p-bob-2", kp.clone()).unwrap();
    room.clients.insert("bob".into(), bob2);
    let m = room.make("alice", &[&kp], &[1]);
    let MlsEntry::Commit { added, removed, .. } = room.send("alice", m).unwrap() else {
        unreachable!()
    };
    assert_eq!(
        (added, removed),
        (vec!["p-bob-2".into()], vec!["p-bob".into()])
    );
}

#[test]
fn a_member_that_lost_its_state_reports_it_and_is_re_added() {
    let mut room = Room::group(&["alice", "bob", "carol"]);
    // Bob may not be removed while he is a healthy member...
    let m = room.make("alice", &[], &[1]);
    assert!(room.send("alice", m).is_err());
    // ... but once he reports (a KeyPackage from a member), he is replaced.
    room.c("bob").leave_group();
    let mut fresh = client("bob");
    let kp = b64(&fresh.key_package().unwrap());
    room.clients.insert("bob".into(), fresh);
    room.log.key_package("p-bob", kp.clone()).unwrap();
    // A rejoining member cannot commit.
    let m = room.make("carol", &[], &[]);
    room.c("carol").clear_pending_commit();
    assert_eq!(
        room.log.commit("p-bob", m).err(),
        Some(CommitRefusal::NotMember)
    );
    // Adding him without removing the old leaf is refused.
    let m = room.make("alice", &[&kp], &[]);
    assert!(room.send("alice", m).is_err());
    let m = room.make("alice", &[&kp], &[1]);
    let MlsEntry::Commit { added, removed, .. } = room.send("alice", m).unwrap() else {
        unreachable!()
    };
    assert_eq!(
        (added, removed),
        (vec!["p-bob".into()], vec!["p-bob".into()])
    );
    assert!(room.c("bob").in_group());
    let m = room.make("bob", &[], &[]);
    room.send("bob", m).unwrap();
}

#[test]
fn the_last_member_leaving_resets_the_group_for_the_earliest_remaining() {
    let mut room = Room::group(&["alice", "bob"]);
    let g = room.log.info(false).group_id;
    room.log.join("p-carol", "carol");
    room.log.join("p-dave", "dave");
    // A non-member leaving changes nothing; a member leaving while another
    // stays: no reset.
    assert!(room.log.departed("p-dave").is_none());
    assert!(room.log.departed("p-alice").is_none());
    assert_eq!(room.log.epoch(), 1);
    // The last member leaves with others present: reset.
    let reset = room.log.departed("p-bob").unwrap();
    let (seq, e) = entry(&reset);
    assert_eq!(seq, room.log.last_seq());
    let MlsEntry::Reset { group_id, founder } = e else {
        panic!("expected reset")
    };
    assert_ne!(group_id, g);
    assert_eq!(founder, "p-carol");
    assert_eq!(room.log.info(false).group_id, group_id);
    assert_eq!(room.log.epoch(), 0);
    assert!(room.log.is_member("p-carol"));
    assert!(!room.log.group_created());
    // The last participant leaving: nobody to reset for.
    assert!(room.log.departed("p-carol").is_none());
}

#[test]
fn a_founder_that_does_not_create_the_group_is_replaced() {
    let mut log = DeliveryLog::new(BIG);
    let first = log.join("p-squat", "squatter").group_id;
    // Alone: nobody to hand over to.
    assert!(matches!(log.founder_overdue(&first), FounderCheck::Wait));
    log.join("p-bob", "bob");
    log.join("p-carol", "carol");
    let FounderCheck::Replaced(reset) = log.founder_overdue(&first) else {
        panic!("expected a new founder")
    };
    let MlsEntry::Reset { group_id, founder } = entry(&reset).1 else {
        panic!("expected reset")
    };
    assert_eq!(founder, "p-bob");
    assert!(!log.is_member("p-squat"));
    // A timer for an old incarnation does nothing.
    assert!(matches!(log.founder_overdue(&first), FounderCheck::Done));
    // Bob squats too: Carol is next, not the first squatter.
    let FounderCheck::Replaced(reset) = log.founder_overdue(&group_id) else {
        panic!("expected a new founder")
    };
    let MlsEntry::Reset { group_id, founder } = entry(&reset).1 else {
        panic!("expected reset")
    };
    assert_eq!(founder, "p-carol");
    let mut carol = client("carol");
    carol
        .create_group(&hex::decode(&group_id).unwrap())
        .unwrap();
    // The old founder's GroupInfo no longer counts.
    let mut squat = client("squatter");
    squat
        .create_group(&hex::decode(&group_id).unwrap())
        .unwrap();
    assert!(
        log.group_info("p-squat", &b64(&squat.group_info().unwrap()))
            .is_err()
    );
    assert_eq!(
        log.group_info("p-carol", &b64(&carol.group_info().unwrap())),
        Ok(true)
    );
    assert!(matches!(log.founder_overdue(&group_id), FounderCheck::Done));
}

#[test]
fn the_log_is_bounded_and_replays_exactly_what_follows() {
    let mut m = DeliveryLog::new(LogLimits {
        max_entries: 4,
        max_bytes: 1 << 20,
    });
    m.join("a", "alice");
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
    m.join("a", "alice");
    for i in 0..5 {
        m.application("a", 0, format!("m{i}")).unwrap();
    }
    assert_eq!(m.log_size(), (2, one * 2));
    assert_eq!(seqs(m.replay_after(3).unwrap()), [4, 5]);

    // A new founder drops the log but not the numbering.
    m.departed("a");
    m.join("z", "zed");
    assert_eq!(m.log_size(), (0, 0));
    assert!(m.replay_after(5).unwrap().is_empty());
    assert_eq!(m.replay_after(4).unwrap_err(), Gap);
    m.join("y", "yan");
    let kp = b64(&client("yan").key_package().unwrap());
    assert_eq!(m.key_package("y", kp).unwrap()[0].seq, 6);
}

/// The log and the room budgets count an entry's text; it must not hold
/// more memory than that (serializing a 64 KiB message left up to twice
/// its size allocated, for as long as the log kept it).
#[test]
fn an_entry_holds_no_more_memory_than_its_counted_bytes() {
    for len in [1000, 65_536, 262_144] {
        let logged = Logged::new(
            1,
            MlsEntry::Application {
                participant_id: "p".into(),
                epoch: 0,
                message: "A".repeat(len),
            },
        );
        assert_eq!(logged.text.capacity(), logged.bytes(), "{len}");
    }
}
