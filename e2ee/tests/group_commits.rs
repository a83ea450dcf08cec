//! Commit races under a first-wins delivery service, stale commits, and
//! commit input filtering.

use e2ee::group::{GroupError, Processed};
use testkit::mls::*;

#[test]
fn competing_commits_loser_clears_and_retries() {
    let mut g = group(&["alice", "bob", "carol"]);
    let epoch = g[0].epoch().unwrap();
    let mut dave = client("dave");
    let kp = dave.key_package().unwrap();

    // Both commit in epoch N; the server accepts alice's (first wins).
    let winner = g[0].commit(&[&kp], &[]).unwrap();
    let loser = g[1].self_update().unwrap();
    assert!(matches!(g[1].self_update(), Err(GroupError::PendingCommit)));
    assert!(matches!(
        g[1].commit(&[], &[0]),
        Err(GroupError::PendingCommit)
    ));
    g[0].merge_pending_commit().unwrap();

    g[1].clear_pending_commit();
    assert!(!g[1].has_pending_commit());
    assert!(matches!(
        g[1].merge_pending_commit(),
        Err(GroupError::NoPendingCommit)
    ));
    deliver_commit(&mut g, 0, &[], &winner.commit);
    assert!(dave.join(&winner.welcome.unwrap()).unwrap());
    g.push(dave);
    for m in &g {
        assert_eq!(m.epoch(), Some(epoch + 1));
        assert_eq!(m.verification_code(), g[0].verification_code());
    }

    // The loser's commit is stale now: a typed error, no state change.
    for i in [0, 2, 3] {
        assert!(matches!(
            g[i].process(&loser.commit),
            Err(GroupError::WrongEpoch)
        ));
        assert_eq!(g[i].epoch(), Some(epoch + 1));
    }
    // Replaying the winner is stale too.
    assert!(matches!(
        g[2].process(&winner.commit),
        Err(GroupError::WrongEpoch)
    ));
    assert_eq!(g[2].stats().rejected_wrong_epoch, 2);

    // Bob commits again and everyone follows.
    let retry = g[1].self_update().unwrap();
    g[1].merge_pending_commit().unwrap();
    deliver_commit(&mut g, 1, &[], &retry.commit);
    let key = g[0].sframe_base_key(16).unwrap();
    for m in &g {
        assert_eq!(m.epoch(), Some(epoch + 2));
        assert_eq!(m.sframe_base_key(16).unwrap(), key);
    }
}

#[test]
fn processing_the_winner_supersedes_a_pending_commit() {
    let mut g = group(&["alice", "bob"]);
    let winner = g[0].self_update().unwrap();
    let _loser = g[1].self_update().unwrap();
    g[0].merge_pending_commit().unwrap();
    // Bob skips clear_pending_commit: processing the winner drops his.
    match g[1].process(&winner.commit).unwrap() {
        Processed::Commit { epoch, .. } => assert_eq!(epoch, 2),
        other => panic!("{other:?}"),
    }
    assert!(!g[1].has_pending_commit());
    assert_eq!(g[1].verification_code(), g[0].verification_code());
    let again = g[1].self_update().unwrap();
    g[1].merge_pending_commit().unwrap();
    g[0].process(&again.commit).unwrap();
    assert_eq!(g[1].verification_code(), g[0].verification_code());
}

#[test]
fn application_messages_flow_while_a_commit_is_pending() {
    let mut g = group(&["alice", "bob"]);
    let _pending = g[0].self_update().unwrap();
    let msg = g[0].encrypt_application(b"still epoch 1").unwrap();
    match g[1].process(&msg).unwrap() {
        Processed::Application { data, .. } => assert_eq!(data, b"still epoch 1"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn commit_filters_invalid_inputs() {
    let mut g = group(&["alice", "bob", "carol"]);
    let mut dave = client("dave");
    let mut erin = client("erin");
    let kd = dave.key_package().unwrap();
    let ke = erin.key_package().unwrap();
    let kd2 = dave.key_package().unwrap(); // same signature key as kd
    let bob_again = g[1].key_package().unwrap(); // bob is a member
    let garbage = vec![0u8; 40];
    let mut bad_sig = ke.clone();
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 1;

    let own = g[0].own_leaf().unwrap();
    let commit = g[0]
        .commit(
            &[&garbage, &kd, &bad_sig, &kd2, &bob_again, &ke],
            &[own, 99, 2, 2],
        )
        .unwrap();
    assert_eq!(commit.added, vec![1, 5]);
    assert_eq!(commit.removed, vec![2]);
    assert_eq!(g[0].stats().rejected_key_packages, 4);
    g[0].merge_pending_commit().unwrap();
    g[1].process(&commit.commit).unwrap();
    let welcome = commit.welcome.unwrap();
    assert!(dave.join(&welcome).unwrap());
    assert!(erin.join(&welcome).unwrap());
    let ids = identities(&g[0]);
    // Adds fill the leftmost free leaves in order: dave takes carol's
    // freed leaf 2, erin leaf 3.
    assert_eq!(ids, ["alice", "bob", "dave", "erin"]);
    assert_eq!(identities(&dave), ids);
    assert_eq!(dave.verification_code(), g[1].verification_code());

    // Nothing valid left.
    assert!(matches!(
        g[0].commit(&[&garbage], &[own, 42]),
        Err(GroupError::NothingToCommit)
    ));
    assert!(!g[0].has_pending_commit());
}

#[test]
fn reconnecting_member_replaces_its_stale_leaf_in_one_commit() {
    let mut g = group(&["alice", "bob"]);
    // Bob lost his state and comes back as a new client (new signature
    // key): the stale leaf goes and the new KeyPackage comes in.
    let mut bob2 = client("bob");
    let kp = bob2.key_package().unwrap();
    let commit = g[0].commit(&[&kp], &[1]).unwrap();
    assert_eq!(
        (commit.added.clone(), commit.removed.clone()),
        (vec![0], vec![1])
    );
    g[0].merge_pending_commit().unwrap();
    assert!(bob2.join(&commit.welcome.unwrap()).unwrap());
    assert_eq!(identities(&bob2), ["alice", "bob"]);
    assert_eq!(bob2.own_leaf(), Some(1));
    assert_eq!(bob2.verification_code(), g[0].verification_code());
}

#[test]
fn commit_outside_a_group_is_not_in_group() {
    let mut a = client("alice");
    assert!(matches!(a.self_update(), Err(GroupError::NotInGroup)));
    assert!(matches!(a.commit(&[], &[1]), Err(GroupError::NotInGroup)));
    assert!(matches!(
        a.merge_pending_commit(),
        Err(GroupError::NotInGroup)
    ));
    a.clear_pending_commit();
    assert!(!a.has_pending_commit());
    assert!(matches!(
        a.encrypt_application(b"x"),
        Err(GroupError::NotInGroup)
    ));
    assert!(matches!(
        a.process(&[0, 1, 0, 2]),
        Err(GroupError::NotInGroup)
    ));
    assert_eq!(a.epoch_authenticator(), None);
    assert_eq!(a.verification_code(), None);
    assert!(a.members().is_empty());
}

#[test]
fn own_messages_echoed_back_are_ignored() {
    let mut g = group(&["alice", "bob"]);
    let commit = g[0].self_update().unwrap();
    assert!(matches!(
        g[0].process(&commit.commit),
        Ok(Processed::Ignored)
    ));
    assert!(g[0].has_pending_commit());
    g[0].merge_pending_commit().unwrap();
    g[1].process(&commit.commit).unwrap();
    let app = g[0].encrypt_application(b"echo").unwrap();
    assert!(matches!(g[0].process(&app), Ok(Processed::Ignored)));
    assert!(matches!(
        g[1].process(&app),
        Ok(Processed::Application { .. })
    ));
}
