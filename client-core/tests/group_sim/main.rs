//! The group-key coordinator on virtual time: real MLS clients and the
//! server's real delivery service, driven through commit races, a silent
//! committer, a dishonest server, a log gap, a commit one member cannot
//! process, self-updates and a long chat across a reconnect. Each test covers minutes of room life in well under
//! a second; nothing sleeps.

mod big_room;
mod media;
mod world;

use signaling::proto::{LeaveReason, MlsEntry, ServerMessage};
use signaling::server::delivery_log::LogLimits;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use world::{LATENCY, Link, World, config};

const LIMIT: Duration = Duration::from_secs(120);

/// `names` join one after the other, each once the group holds everyone
/// before it; returns their nodes.
fn group(w: &mut World, names: &[&str]) -> Vec<usize> {
    let mut nodes = Vec::new();
    for (k, name) in names.iter().enumerate() {
        nodes.push(w.join(name));
        let all = nodes.clone();
        w.run_until("the group", LIMIT, |w| w.agree(&all, &names[..=k]));
    }
    nodes
}

/// The crate's whole job in the smallest room: the first member founds the
/// group, the second sends a KeyPackage through the server's delivery log,
/// the founder commits its add, and both end in one epoch with one key and
/// one verification code, then read each other's chat.
#[test]
fn a_founder_and_a_joiner_share_one_epoch_key_and_code() {
    let mut w = World::new();
    let alice = w.join("alice");
    w.run_until("alice founds the group", LIMIT, |w| {
        w.nodes[alice].epoch().is_some()
    });
    assert_eq!(w.nodes[alice].epoch().map(|e| e.epoch), Some(0));
    let bob = w.join("bob");
    w.run_until("bob is added", LIMIT, |w| {
        w.agree(&[alice, bob], &["alice", "bob"])
    });

    let (a, b) = (&w.nodes[alice], &w.nodes[bob]);
    let (ea, eb) = (a.epoch().expect("alice"), b.epoch().expect("bob"));
    assert_eq!(ea.epoch, 1, "one commit: the add");
    assert_eq!(ea, eb, "same epoch, members, base key and code");
    assert!(!ea.code.is_empty());
    assert_eq!(ea.base_key.len(), config().sframe_nk);
    assert_eq!(b.epochs.len(), 1, "bob entered through the Welcome only");
    let accepted: Vec<_> = w.commits.iter().filter(|c| c.accepted).collect();
    assert_eq!(accepted.len(), 1, "{:?}", w.commits);
    assert_eq!(
        (accepted[0].from.as_str(), accepted[0].epoch),
        (a.pid.as_str(), 0)
    );
    assert_eq!(accepted[0].added, vec![b.pid.clone()]);
    assert!(w.refused.is_empty(), "{:?}", w.refused);

    w.chat(bob, "hi alice".into());
    w.chat(alice, "hi bob".into());
    w.run_until("both messages at both", LIMIT, |w| {
        [alice, bob].iter().all(|&i| w.nodes[i].chat.len() == 2)
    });
    assert_eq!(w.nodes[alice].chat, w.nodes[bob].chat, "one order");
}

#[test]
fn simultaneous_commits_first_wins_and_the_others_recover() {
    let mut w = World::new();
    let mut cfg = config();
    cfg.self_update = Some(Duration::from_secs(30));
    let mut nodes = Vec::new();
    for name in ["alice", "bob", "carol"] {
        nodes.push(w.join_with(name, cfg.clone()));
        let all = nodes.clone();
        w.run_until("the group", LIMIT, |w| {
            all.iter().all(|&i| w.nodes[i].epoch().is_some())
        });
    }
    w.run_until("three members", LIMIT, |w| {
        w.agree(&nodes, &["alice", "bob", "carol"])
    });
    let before = w.nodes[0].epoch().expect("in the group").epoch;
    // All three entered the epoch at the same instant, so all three
    // self-update at the same instant; dave joins just then, too.
    let race_at = w.now + Duration::from_secs(30);
    w.run_for(race_at - w.now - LATENCY);
    let dave = w.join_with("dave", cfg.clone());
    nodes.push(dave);
    w.run_until("four members", LIMIT, |w| {
        w.agree(&nodes, &["alice", "bob", "carol", "dave"])
    });

    let race: Vec<_> = w.commits.iter().filter(|c| c.epoch == before).collect();
    assert_eq!(
        race.len(),
        3,
        "everyone committed for epoch {before}: {race:?}"
    );
    assert_eq!(race.iter().filter(|c| c.accepted).count(), 1, "one winner");
    assert!(
        race.iter().all(|c| c.at == race[0].at),
        "at the same instant"
    );
    // The losers processed the winner's commit, then dave was added.
    let mut per_epoch: BTreeMap<u64, usize> = BTreeMap::new();
    for c in w.commits.iter().filter(|c| c.accepted) {
        *per_epoch.entry(c.epoch).or_default() += 1;
    }
    assert!(per_epoch.values().all(|n| *n == 1), "{per_epoch:?}");
    for &i in &nodes[..3] {
        let epochs: Vec<u64> = w.nodes[i].epochs.iter().map(|e| e.epoch).collect();
        assert!(
            epochs.contains(&(before + 1)),
            "{}: {epochs:?}",
            w.nodes[i].identity
        );
        assert_eq!(w.nodes[i].desyncs, 0);
    }
}

#[test]
fn the_next_in_line_takes_over_when_the_committer_goes_silent() {
    let mut w = World::new();
    let names = ["alice", "bob", "carol"];
    let nodes = group(&mut w, &names);
    let takeover = config().takeover_delay;
    // Alice (leaf 0, the committer) freezes; the server still counts her.
    w.freeze(nodes[0]);
    let joined_at = w.now;
    let dave = w.join("dave");
    let live = [nodes[1], nodes[2], dave];
    w.run_until("dave added", LIMIT, |w| {
        w.agree(&live, &["alice", "bob", "carol", "dave"])
    });
    let add = w.commits.iter().rfind(|c| c.accepted).expect("a commit");
    assert_eq!(
        add.from, w.nodes[nodes[1]].pid,
        "bob, second in line, took over"
    );
    assert!(
        add.at >= joined_at + takeover && add.at < joined_at + 2 * takeover,
        "after one takeover delay: {:?}",
        add.at - joined_at
    );
    assert_eq!(
        w.commits
            .iter()
            .filter(|c| c.added == [w.nodes[dave].pid.clone()])
            .count(),
        1
    );

    // The server times alice out: bob is first in line now, and removes
    // her at once.
    let left_at = w.now;
    w.leave(nodes[0], LeaveReason::Disconnected);
    w.run_until("alice removed", LIMIT, |w| {
        w.agree(&live, &["bob", "carol", "dave"])
    });
    let remove = w.commits.iter().rfind(|c| c.accepted).expect("a commit");
    assert_eq!(remove.from, w.nodes[nodes[1]].pid);
    assert!(
        remove.at - left_at <= 2 * LATENCY,
        "{:?}",
        remove.at - left_at
    );
    for &i in &live {
        assert!(
            w.nodes[i].mismatches.is_empty(),
            "{:?}",
            w.nodes[i].mismatches
        );
    }
}

/// Shifts the sequence numbers of log entries by `delta`.
fn renumber(msg: ServerMessage, delta: i64) -> ServerMessage {
    match msg {
        ServerMessage::Mls { seq, entry } => ServerMessage::Mls {
            seq: seq.checked_add_signed(delta).expect("in range"),
            entry,
        },
        other => other,
    }
}

/// Members only parse a joiner's KeyPackage when it arrives; the committer
/// verifies it before committing. A compromised server that slips the
/// committer a forged KeyPackage naming a present member (as if that member
/// rejoined with a new key) gets no commit out of it: neither the forged
/// add nor the removal of the real member's leaf that a rejoin would bring.
#[test]
fn a_forged_key_package_is_verified_before_it_can_change_the_group() {
    let mut w = World::new();
    let names = ["alice", "bob", "carol"];
    let nodes = group(&mut w, &names);
    let alice = nodes[0];
    let bob_pid = w.nodes[nodes[1]].pid.clone();
    let mut impostor = e2ee::group::MlsClient::new("bob", Default::default()).expect("client");
    let mut forged = impostor.key_package().expect("kp");
    // The KeyPackage's own signature is its last bytes.
    *forged.last_mut().expect("bytes") ^= 1;
    assert!(impostor.key_package_identity(&forged).is_err(), "forged");
    assert_eq!(
        impostor
            .key_package_claim(&forged)
            .expect("parses")
            .identity,
        "bob"
    );
    let epochs_before: Vec<_> = nodes.iter().map(|&i| w.nodes[i].epoch().cloned()).collect();
    let commits_before = w.commits.len();
    let seq = w.seen_seq(alice);
    w.inject(
        alice,
        ServerMessage::Mls {
            seq: seq + 1,
            entry: MlsEntry::KeyPackage {
                participant_id: bob_pid,
                key_package: base64_encode(&forged),
            },
        },
    );
    w.tamper(alice, Box::new(|m| vec![renumber(m, 1)]));
    w.run_for(Duration::from_secs(10));
    assert_eq!(w.commits.len(), commits_before, "no commit was made");
    let epochs_after: Vec<_> = nodes.iter().map(|&i| w.nodes[i].epoch().cloned()).collect();
    assert_eq!(epochs_after, epochs_before);
    assert!(w.agree(&nodes, &names));
}

#[test]
fn a_ghost_added_through_the_server_is_flagged_by_the_others() {
    let mut w = World::new();
    let names = ["alice", "bob", "carol"];
    let nodes = group(&mut w, &names);
    // A compromised server (its own delivery service lies too: the ghost
    // is in its roster) tells only alice (the committer) that a ghost
    // joined, with a KeyPackage the attacker made, and hides the extra log
    // entry from the others' numbering.
    let mut ghost = e2ee::group::MlsClient::new("ghost", Default::default()).expect("client");
    let kp = base64_encode(&ghost.key_package().expect("kp"));
    let alice = nodes[0];
    let seq = w.seen_seq(alice);
    w.server_adds_ghost("PA_ghost", "ghost", kp.clone());
    w.inject(
        alice,
        ServerMessage::ParticipantJoined {
            participant: world::participant("PA_ghost", "ghost"),
        },
    );
    w.inject(
        alice,
        ServerMessage::Mls {
            seq: seq + 1,
            entry: MlsEntry::KeyPackage {
                participant_id: "PA_ghost".into(),
                key_package: kp,
            },
        },
    );
    for &other in &nodes[1..] {
        w.tamper(other, Box::new(|m| vec![renumber(m, -1)]));
    }
    w.run_until("the ghost in every MLS roster", LIMIT, |w| {
        nodes.iter().all(|&i| {
            w.nodes[i]
                .epoch()
                .is_some_and(|e| e.members.contains(&"ghost".to_owned()))
        })
    });
    let flagged_at = w.now;
    // The ghost did its work; the server drops it from its roster (still
    // telling nobody), so that removing it is allowed.
    w.server_forgets("PA_ghost");
    for &i in &nodes[1..] {
        let n = &w.nodes[i];
        assert_eq!(
            n.mismatches,
            [(vec!["ghost".to_owned()], Vec::new())],
            "{} flags the ghost at once",
            n.identity
        );
    }
    assert!(w.nodes[alice].mismatches.is_empty(), "alice was told of it");
    // To bob and carol the ghost is a member nobody announced, so the
    // first of them in line (bob) removes it; alice, who was told it is
    // present, then flags it missing from the group after the grace period.
    w.run_for(Duration::from_secs(60));
    assert_eq!(w.now - flagged_at, Duration::from_secs(60));
    assert!(w.agree(&nodes, &names), "the ghost is removed");
    let removal = w.commits.iter().rfind(|c| c.accepted).expect("a commit");
    assert_eq!(removal.from, w.nodes[nodes[1]].pid);
    assert!(nodes[1..].iter().all(|&i| w.nodes[i].mismatches.len() == 1));
    assert_eq!(
        w.nodes[alice].mismatches,
        [(Vec::new(), vec!["ghost".to_owned()])]
    );
}

#[test]
fn a_withheld_commit_is_flagged_by_the_member_it_was_withheld_from() {
    let mut w = World::new();
    let names = ["alice", "bob", "carol"];
    let nodes = group(&mut w, &names);
    let before = w.nodes[nodes[2]].epoch().expect("in the group").clone();
    // From now on carol gets no commits, and no gap in the numbering that
    // would give the trick away.
    let mut dropped = 0i64;
    w.tamper(
        nodes[2],
        Box::new(move |m| match &m {
            ServerMessage::Mls {
                entry: MlsEntry::Commit { .. },
                ..
            } => {
                dropped += 1;
                Vec::new()
            }
            _ => vec![renumber(m, -dropped)],
        }),
    );
    let dave = w.join("dave");
    let honest = [nodes[0], nodes[1], dave];
    w.run_until("dave added for the honest members", LIMIT, |w| {
        w.agree(&honest, &["alice", "bob", "carol", "dave"])
    });
    let grace = config().mismatch_grace;
    w.run_until("carol flags dave", LIMIT, |w| {
        !w.nodes[nodes[2]].mismatches.is_empty()
    });
    let carol = &w.nodes[nodes[2]];
    assert_eq!(carol.mismatches, [(Vec::new(), vec!["dave".to_owned()])]);
    assert!(w.elapsed() >= grace, "only after the grace period");
    assert_eq!(
        carol.epoch(),
        Some(&before),
        "carol is stuck in the old epoch"
    );
    let honest_code = &w.nodes[dave].epoch().expect("dave in").code;
    assert_ne!(
        &before.code, honest_code,
        "her code differs from everyone else's"
    );
    for &i in &honest {
        assert!(w.nodes[i].mismatches.is_empty());
    }
    // Carol, seeing dave's KeyPackage but no commit, takes her turn to add
    // him; refused for an epoch that is gone, she waits a takeover delay
    // before trying again instead of retrying every round trip.
    let carol_pid = &w.nodes[nodes[2]].pid;
    let refused: Vec<_> = w
        .commits
        .iter()
        .filter(|c| c.from == *carol_pid && !c.accepted)
        .map(|c| c.at)
        .collect();
    assert!(!refused.is_empty());
    for pair in refused.windows(2) {
        assert!(pair[1] - pair[0] >= config().takeover_delay, "{refused:?}");
    }
}

#[test]
fn a_member_resuming_past_the_log_rejoins_the_group() {
    let mut w = World::with_log(LogLimits {
        max_entries: 16,
        max_bytes: 1 << 20,
    });
    let names = ["alice", "bob", "carol"];
    let nodes = group(&mut w, &names);
    let carol = nodes[2];
    w.disconnect(carol);
    for i in 0..30 {
        w.chat(nodes[0], format!("while carol is away #{i}"));
    }
    w.run_until("the chat is through", LIMIT, |w| {
        w.nodes[nodes[1]].chat.len() == 30
    });
    w.resume(carol);
    w.run_until("carol back in the group", LIMIT, |w| {
        w.nodes[carol].desyncs > 0 && w.agree(&nodes, &names)
    });
    assert_eq!(w.nodes[carol].desyncs, 1, "one rejoin");
    assert!(w.nodes[carol].chat.is_empty(), "what she missed is gone");
    // Her old leaf was replaced, not kept: three members, not four.
    assert_eq!(w.nodes[carol].epoch().expect("in").members.len(), 3);
    w.chat(carol, "back".into());
    w.run_until("everyone reads carol again", LIMIT, |w| {
        nodes
            .iter()
            .all(|&i| w.nodes[i].chat.last() == Some(&("carol".into(), "back".into())))
    });
}

/// A commit that is valid to the delivery service but that one member
/// cannot process (here, a flipped bit in the membership tag of the copy
/// it receives: a MAC only members can check) does not wedge the room:
/// that member reports (a fresh KeyPackage), and the next commit replaces
/// its old leaf and adds it again.
#[test]
fn a_member_that_cannot_process_a_commit_reports_it_and_is_re_added() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut w = World::new();
    let names = ["alice", "bob", "carol"];
    let nodes = group(&mut w, &names);
    let carol = nodes[2];
    let mut spoiled = false;
    w.tamper(
        carol,
        Box::new(move |m| match m {
            ServerMessage::Mls {
                seq,
                entry:
                    MlsEntry::Commit {
                        participant_id,
                        epoch,
                        commit,
                        welcome,
                        added,
                        removed,
                    },
            } if !spoiled => {
                spoiled = true;
                let mut bytes = b64.decode(&commit).expect("base64");
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
                vec![ServerMessage::Mls {
                    seq,
                    entry: MlsEntry::Commit {
                        participant_id,
                        epoch,
                        commit: b64.encode(bytes),
                        welcome,
                        added,
                        removed,
                    },
                }]
            }
            other => vec![other],
        }),
    );
    let dave = w.join("dave");
    let all = [nodes[0], nodes[1], carol, dave];
    w.run_until("everyone in one group of four", LIMIT, |w| {
        w.agree(&all, &["alice", "bob", "carol", "dave"])
    });
    assert_eq!(w.nodes[carol].desyncs, 1, "carol reported once");
    let carol_pid = w.nodes[carol].pid.clone();
    assert!(
        w.commits
            .iter()
            .any(|c| c.accepted && c.added.contains(&carol_pid) && c.removed.contains(&carol_pid)),
        "one commit replaced carol's leaf: {:?}",
        w.commits
    );
    assert!(w.refused.is_empty(), "{:?}", w.refused);
    for &i in &all[..2] {
        assert_eq!(w.nodes[i].desyncs, 0);
    }
}

#[test]
fn self_updates_renew_the_keys_without_changing_the_members() {
    let mut w = World::new();
    let alice = w.join("alice");
    let mut cfg = config();
    cfg.self_update = Some(Duration::from_secs(10));
    let bob = w.join_with("bob", cfg);
    let both = [alice, bob];
    w.run_until("the group", LIMIT, |w| w.agree(&both, &["alice", "bob"]));
    let first = w.nodes[alice].epoch().expect("in").epoch;
    w.run_for(Duration::from_secs(35));
    assert!(w.agree(&both, &["alice", "bob"]));
    let last = w.nodes[alice].epoch().expect("in").epoch;
    assert_eq!(last, first + 3, "one self-update per 10 s");
    assert!(w.commits.iter().all(|c| c.accepted));
    // Every epoch has its own key, and both members derive the same one.
    let keys: HashSet<&Vec<u8>> = w.nodes[alice].epochs.iter().map(|e| &e.base_key).collect();
    assert_eq!(keys.len(), w.nodes[alice].epochs.len());
    for e in &w.nodes[bob].epochs {
        let a = w.nodes[alice]
            .epochs
            .iter()
            .find(|a| a.epoch == e.epoch)
            .expect("same epochs");
        assert_eq!((&a.base_key, &a.code), (&e.base_key, &e.code));
    }
}

#[test]
fn a_thousand_chat_messages_survive_a_reconnect_in_one_order() {
    const TOTAL: usize = 1000;
    let mut w = World::new();
    let names = ["alice", "bob", "carol"];
    let nodes = group(&mut w, &names);
    for (k, &node) in nodes.iter().enumerate() {
        let count = TOTAL / 3 + usize::from(k < TOTAL % 3);
        for i in 0..count {
            w.chat(node, format!("{}#{i}", names[k]));
        }
    }
    let bob = nodes[1];
    w.run_until("some chat", LIMIT, |w| w.nodes[bob].chat.len() >= TOTAL / 4);
    w.disconnect(bob);
    w.run_for(Duration::from_secs(3));
    assert_eq!(w.nodes[bob].link, Link::Down);
    w.resume(bob);
    w.run_until("every message everywhere", LIMIT, |w| {
        nodes.iter().all(|&i| w.nodes[i].chat.len() >= TOTAL)
    });
    w.run_for(Duration::from_secs(5));
    let logs: Vec<&Vec<(String, String)>> = nodes.iter().map(|&i| &w.nodes[i].chat).collect();
    for (k, log) in logs.iter().enumerate() {
        assert_eq!(log.len(), TOTAL, "{} got {}", names[k], log.len());
        assert_eq!(*log, logs[0], "{}'s order differs from alice's", names[k]);
    }
    testkit::chat::assert_each_sender_in_order(logs[0], &names, TOTAL);
    assert_eq!(w.nodes[bob].desyncs, 0, "resumed from the log, no rejoin");
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
