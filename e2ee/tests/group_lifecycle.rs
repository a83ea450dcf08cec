//! Group creation, joining, removal and ghost members.

use e2ee::group::{GroupError, Processed};
use testkit::mls::*;

#[test]
fn three_members_agree_on_everything() {
    let mut a = client("alice");
    let mut b = client("bob");
    let mut c = client("carol");
    a.create_group(b"room-42").unwrap();
    assert_eq!(a.epoch(), Some(0));
    assert_eq!(a.own_leaf(), Some(0));
    let code0 = a.verification_code().unwrap();

    let kb = b.key_package().unwrap();
    let kc = c.key_package().unwrap();
    assert_eq!(wire_format(&kb), WIRE_KEY_PACKAGE);
    let id = a.key_package_identity(&kb).unwrap();
    assert_eq!(id.identity, "bob");
    assert_eq!(id.signature_key, b.signature_key());
    assert_eq!(id.leaf, u32::MAX);
    assert_eq!(a.key_package_identity(&kc).unwrap().identity, "carol");

    let commit = a.commit(&[&kb, &kc], &[]).unwrap();
    assert_eq!(commit.added, vec![0, 1]);
    assert!(commit.removed.is_empty());
    assert!(a.has_pending_commit());
    // Handshakes are PublicMessages (the delivery service checks them);
    // the Welcome carries the ratchet tree.
    assert_eq!(wire_format(&commit.commit), WIRE_PUBLIC);
    let welcome = commit.welcome.unwrap();
    assert_eq!(wire_format(&welcome), WIRE_WELCOME);
    a.merge_pending_commit().unwrap();
    assert!(!a.has_pending_commit());
    assert!(b.join(&welcome).unwrap());
    assert!(c.join(&welcome).unwrap());

    let all = [&a, &b, &c];
    for (leaf, m) in all.iter().enumerate() {
        assert!(m.in_group());
        assert_eq!(m.epoch(), Some(1));
        assert_eq!(m.own_leaf(), Some(leaf as u32));
        assert_eq!(m.group_id().as_deref(), Some(&b"room-42"[..]));
        assert_eq!(identities(m), ["alice", "bob", "carol"]);
        assert_eq!(m.members(), a.members());
    }
    assert_eq!(a.members()[1].signature_key, b.signature_key());
    let key1 = a.sframe_base_key(16).unwrap();
    assert_eq!(key1.len(), 16);
    let code1 = a.verification_code().unwrap();
    assert_ne!(code0, code1);
    for m in all {
        assert_eq!(m.sframe_base_key(16).unwrap(), key1);
        assert_eq!(m.verification_code().unwrap(), code1);
        assert_eq!(m.epoch_authenticator(), a.epoch_authenticator());
        assert_eq!(
            m.export_secret("SFrame 1.0 Base Key", b"", 16).unwrap(),
            key1
        );
    }
    assert_eq!(code1.len(), 35);
    assert!(code1.split(' ').all(|g| g.len() == 5));

    // Next epoch: bob self-updates; everyone moves on together.
    let update = b.self_update().unwrap();
    assert!(update.welcome.is_none());
    b.merge_pending_commit().unwrap();
    for m in [&mut a, &mut c] {
        match m.process(&update.commit).unwrap() {
            Processed::Commit {
                epoch,
                added,
                removed,
            } => {
                assert_eq!(epoch, 2);
                assert!(added.is_empty() && removed.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
    let key2 = a.sframe_base_key(16).unwrap();
    let code2 = a.verification_code().unwrap();
    assert_ne!(key1, key2);
    assert_ne!(code1, code2);
    for m in [&a, &b, &c] {
        assert_eq!(m.epoch(), Some(2));
        assert_eq!(m.sframe_base_key(16).unwrap(), key2);
        assert_eq!(m.verification_code().unwrap(), code2);
    }
    assert_eq!(a.stats().commits_merged, 1 + 1);
    // Debug is a short summary, not a dump of the key store.
    let debug = format!("{a:?}");
    assert!(debug.contains("alice") && debug.len() < 200, "{debug}");
}

#[test]
fn removed_member_is_locked_out() {
    let mut g = group(&["alice", "bob", "carol"]);
    let carol_key = g[2].sframe_base_key(16).unwrap();
    let carol_leaf = g[2].own_leaf().unwrap();

    let remove = g[0].commit(&[], &[carol_leaf]).unwrap();
    assert_eq!(remove.removed, vec![carol_leaf]);
    assert!(remove.welcome.is_none());
    g[0].merge_pending_commit().unwrap();
    match g[1].process(&remove.commit).unwrap() {
        Processed::Commit { epoch, removed, .. } => {
            assert_eq!(epoch, 2);
            assert_eq!(removed.len(), 1);
            assert_eq!(removed[0].identity, "carol");
            assert_eq!(removed[0].leaf, carol_leaf);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(identities(&g[0]), ["alice", "bob"]);
    assert_eq!(identities(&g[1]), ["alice", "bob"]);
    let new_key = g[0].sframe_base_key(16).unwrap();
    assert_eq!(g[1].sframe_base_key(16).unwrap(), new_key);
    assert_ne!(new_key, carol_key);

    // Carol learns of her removal and drops the group.
    match g[2].process(&remove.commit).unwrap() {
        Processed::Commit { removed, .. } => assert_eq!(removed[0].identity, "carol"),
        other => panic!("{other:?}"),
    }
    assert!(!g[2].in_group());
    assert_eq!(g[2].epoch(), None);
    assert!(matches!(
        g[2].sframe_base_key(16),
        Err(GroupError::NotInGroup)
    ));

    // The next commit means nothing to her.
    let next = g[0].self_update().unwrap();
    g[0].merge_pending_commit().unwrap();
    g[1].process(&next.commit).unwrap();
    assert!(matches!(
        g[2].process(&next.commit),
        Err(GroupError::NotInGroup)
    ));
    let app = g[0].encrypt_application(b"after carol").unwrap();
    assert!(matches!(g[2].process(&app), Err(GroupError::NotInGroup)));
    g[2].leave_group(); // idempotent
}

#[test]
fn removed_member_that_missed_its_removal_cannot_follow() {
    let mut g = group(&["alice", "bob", "carol"]);
    let carol_leaf = g[2].own_leaf().unwrap();
    let remove = g[0].commit(&[], &[carol_leaf]).unwrap();
    g[0].merge_pending_commit().unwrap();
    g[1].process(&remove.commit).unwrap();
    let next = g[1].self_update().unwrap();
    g[1].merge_pending_commit().unwrap();
    g[0].process(&next.commit).unwrap();
    // Carol is still in epoch 1: the epoch-3 commit is not for her.
    assert!(matches!(
        g[2].process(&next.commit),
        Err(GroupError::WrongEpoch)
    ));
    assert_ne!(
        g[2].sframe_base_key(16).unwrap(),
        g[0].sframe_base_key(16).unwrap()
    );
    assert_ne!(g[2].verification_code(), g[0].verification_code());
}

#[test]
fn rejoin_after_removal_with_new_key_package() {
    let mut g = group(&["alice", "bob"]);
    let bob_leaf = g[1].own_leaf().unwrap();
    let remove = g[0].commit(&[], &[bob_leaf]).unwrap();
    g[0].merge_pending_commit().unwrap();
    g[1].process(&remove.commit).unwrap();
    assert!(!g[1].in_group());
    let kp = g[1].key_package().unwrap();
    let add = g[0].commit(&[&kp], &[]).unwrap();
    g[0].merge_pending_commit().unwrap();
    assert!(g[1].join(&add.welcome.unwrap()).unwrap());
    assert_eq!(g[1].epoch(), g[0].epoch());
    assert_eq!(g[1].verification_code(), g[0].verification_code());
}

#[test]
fn ghost_member_is_visible_and_splits_the_code() {
    let mut g = group(&["alice", "bob", "carol"]);
    // An outsider's KeyPackage (e.g. injected by a malicious server) gets
    // committed by alice.
    let mut ghost = client("ghost");
    let kp = ghost.key_package().unwrap();
    let add = g[0].commit(&[&kp], &[]).unwrap();
    g[0].merge_pending_commit().unwrap();
    match g[1].process(&add.commit).unwrap() {
        Processed::Commit { added, .. } => {
            assert_eq!(added.len(), 1);
            assert_eq!(added[0].identity, "ghost");
            assert_eq!(added[0].signature_key, ghost.signature_key());
            assert_eq!(added[0].leaf, 3);
        }
        other => panic!("{other:?}"),
    }
    assert!(ghost.join(&add.welcome.unwrap()).unwrap());
    for m in [&g[0], &g[1], &ghost] {
        assert_eq!(identities(m), ["alice", "bob", "carol", "ghost"]);
    }
    assert_eq!(g[0].verification_code(), g[1].verification_code());
    assert_eq!(g[0].verification_code(), ghost.verification_code());
    // Carol never saw the commit: her code differs, and she does not list
    // the ghost.
    assert_ne!(g[2].verification_code(), g[0].verification_code());
    assert!(!identities(&g[2]).contains(&"ghost".to_owned()));
}

#[test]
fn create_and_join_guard_against_double_membership() {
    let mut g = group(&["alice", "bob"]);
    assert!(matches!(
        g[0].create_group(b"other"),
        Err(GroupError::AlreadyInGroup)
    ));
    let mut c = client("carol");
    let kp = c.key_package().unwrap();
    let add = g[0].commit(&[&kp], &[]).unwrap();
    g[0].merge_pending_commit().unwrap();
    let welcome = add.welcome.unwrap();
    assert!(matches!(
        g[1].join(&welcome),
        Err(GroupError::AlreadyInGroup)
    ));
    // A Welcome for someone else.
    let mut d = client("dave");
    let _ = d.key_package().unwrap();
    assert!(!d.join(&welcome).unwrap());
    assert!(c.join(&welcome).unwrap());
    // The KeyPackage was single-use.
    c.leave_group();
    assert!(!c.join(&welcome).unwrap());
}

#[test]
fn empty_identity_is_rejected() {
    assert!(matches!(
        e2ee::group::MlsClient::new("", Default::default()),
        Err(GroupError::InvalidArgument)
    ));
}
