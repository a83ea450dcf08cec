//! Application (chat) messages: roundtrip, late arrival across commits,
//! reordering, replay.

use e2ee::group::{GroupError, Processed};
use testkit::mls::*;

fn expect_app(p: Result<Processed, GroupError>) -> (String, u32, Vec<u8>, Vec<u8>) {
    match p {
        Ok(Processed::Application { sender, data }) => {
            (sender.identity, sender.leaf, sender.signature_key, data)
        }
        other => panic!("expected an application message, got {other:?}"),
    }
}

#[test]
fn roundtrip_names_the_sender() {
    let mut g = group(&["alice", "bob", "carol"]);
    let ct = g[2].encrypt_application(b"hello").unwrap();
    assert_eq!(wire_format(&ct), WIRE_PRIVATE);
    for i in [0, 1] {
        let (id, leaf, key, data) = expect_app(g[i].process(&ct));
        assert_eq!(
            (id.as_str(), leaf, data.as_slice()),
            ("carol", 2, &b"hello"[..])
        );
        assert_eq!(key, g[2].signature_key());
    }
    assert_eq!(g[0].stats().application_received, 1);
    assert_eq!(g[2].stats().application_sent, 1);
    // Debug output never shows the plaintext.
    let ct = g[1].encrypt_application(b"secret words").unwrap();
    let p = g[0].process(&ct);
    assert!(!format!("{p:?}").contains("secret"));
}

#[test]
fn message_from_previous_epoch_decrypts_after_the_commit() {
    let mut g = group(&["alice", "bob", "carol"]);
    // Alice writes in epoch N, carol commits N -> N+1, bob processes the
    // commit first and the chat message after it.
    let late = g[0].encrypt_application(b"sent in epoch 1").unwrap();
    let update = g[2].self_update().unwrap();
    g[2].merge_pending_commit().unwrap();
    g[1].process(&update.commit).unwrap();
    assert_eq!(g[1].epoch(), Some(2));
    let (id, _, key, data) = expect_app(g[1].process(&late));
    assert_eq!(
        (id.as_str(), data.as_slice()),
        ("alice", &b"sent in epoch 1"[..])
    );
    assert_eq!(key, g[0].signature_key());
    // Carol (the committer) too.
    expect_app(g[2].process(&late));
}

#[test]
fn message_from_a_member_removed_since_keeps_its_sender() {
    let mut g = group(&["alice", "bob", "carol"]);
    let last_words = g[2].encrypt_application(b"bye").unwrap();
    let remove = g[0].commit(&[], &[2]).unwrap();
    g[0].merge_pending_commit().unwrap();
    g[1].process(&remove.commit).unwrap();
    // Leaf 2 is empty now; the sender is named from the epoch-1 roster.
    let (id, leaf, key, _) = expect_app(g[1].process(&last_words));
    assert_eq!((id.as_str(), leaf), ("carol", 2));
    assert_eq!(key, g[2].signature_key());
}

#[test]
fn message_older_than_max_past_epochs_is_wrong_epoch() {
    let mut g = group(&["alice", "bob"]);
    let old = g[0].encrypt_application(b"ancient").unwrap();
    let max = g[1].config().max_past_epochs;
    assert_eq!(max, 4);
    for _ in 0..=max {
        let c = g[0].self_update().unwrap();
        g[0].merge_pending_commit().unwrap();
        g[1].process(&c.commit).unwrap();
    }
    let r = g[1].process(&old);
    assert!(matches!(r, Err(GroupError::WrongEpoch)), "{r:?}");

    // Exactly max epochs back still works.
    let recent = g[0].encrypt_application(b"recent").unwrap();
    for _ in 0..max {
        let c = g[0].self_update().unwrap();
        g[0].merge_pending_commit().unwrap();
        g[1].process(&c.commit).unwrap();
    }
    expect_app(g[1].process(&recent));
}

#[test]
fn message_from_the_future_is_wrong_epoch() {
    let mut g = group(&["alice", "bob", "carol"]);
    let c = g[0].self_update().unwrap();
    g[0].merge_pending_commit().unwrap();
    g[1].process(&c.commit).unwrap();
    let ahead = g[1].encrypt_application(b"epoch 2").unwrap();
    // Carol has not processed the commit yet.
    assert!(matches!(g[2].process(&ahead), Err(GroupError::WrongEpoch)));
    g[2].process(&c.commit).unwrap();
    expect_app(g[2].process(&ahead));
}

#[test]
fn reordered_messages_decrypt_and_replays_are_rejected() {
    let mut g = group(&["alice", "bob"]);
    let msgs: Vec<Vec<u8>> = (0..6)
        .map(|i| {
            g[0].encrypt_application(format!("m{i}").as_bytes())
                .unwrap()
        })
        .collect();
    for i in [3, 0, 5, 1, 2, 4] {
        let (_, _, _, data) = expect_app(g[1].process(&msgs[i]));
        assert_eq!(data, format!("m{i}").as_bytes());
    }
    for m in &msgs {
        assert!(matches!(g[1].process(m), Err(GroupError::InvalidMessage)));
    }
    assert_eq!(g[1].stats().rejected_invalid, 6);
    // The group still works.
    let m = g[0].encrypt_application(b"after").unwrap();
    expect_app(g[1].process(&m));
}

#[test]
fn message_for_another_group_is_wrong_group() {
    let mut g = group(&["alice", "bob"]);
    let mut other = client("mallory");
    other.create_group(b"another-room").unwrap();
    let foreign = other.encrypt_application(b"hi").unwrap();
    assert!(matches!(
        g[1].process(&foreign),
        Err(GroupError::WrongGroup)
    ));
}

#[test]
fn non_group_messages_are_ignored() {
    let mut g = group(&["alice", "bob"]);
    let mut c = client("carol");
    let kp = c.key_package().unwrap();
    assert!(matches!(g[1].process(&kp), Ok(Processed::Ignored)));
    let add = g[0].commit(&[&kp], &[]).unwrap();
    assert!(matches!(
        g[1].process(add.welcome.as_ref().unwrap()),
        Ok(Processed::Ignored)
    ));
    assert_eq!(g[1].stats().ignored, 2);
}

/// A leaf emptied and refilled in one commit, then more commits: a message
/// its former holder sent before still names that member, for a member
/// that processed the commit and for its committer; the newcomer's own
/// messages name the newcomer, and untouched members stay named through
/// every remembered epoch.
#[test]
fn a_reused_leaf_keeps_each_epochs_sender() {
    let mut g = group(&["alice", "bob", "carol"]);
    let from_carol = g[2].encrypt_application(b"carol in epoch 1").unwrap();
    let from_bob = g[1].encrypt_application(b"bob in epoch 1").unwrap();
    let mut dave = client("dave");
    let kp = dave.key_package().unwrap();
    let swap = g[0].commit(&[&kp], &[2]).unwrap();
    g[0].merge_pending_commit().unwrap();
    g[1].process(&swap.commit).unwrap();
    assert!(dave.join(swap.welcome.as_deref().unwrap()).unwrap());
    assert_eq!(dave.own_leaf(), Some(2));
    for _ in 0..2 {
        let c = g[1].self_update().unwrap();
        g[1].merge_pending_commit().unwrap();
        g[0].process(&c.commit).unwrap();
        dave.process(&c.commit).unwrap();
    }
    let from_dave = dave.encrypt_application(b"dave in epoch 4").unwrap();
    for i in [0, 1] {
        if i == 0 {
            let (id, leaf, key, _) = expect_app(g[0].process(&from_bob));
            assert_eq!((id.as_str(), leaf), ("bob", 1));
            assert_eq!(key, g[1].signature_key());
        }
        let (id, leaf, key, _) = expect_app(g[i].process(&from_carol));
        assert_eq!((id.as_str(), leaf), ("carol", 2));
        assert_eq!(key, g[2].signature_key());
        let (id, leaf, key, _) = expect_app(g[i].process(&from_dave));
        assert_eq!((id.as_str(), leaf), ("dave", 2));
        assert_eq!(key, dave.signature_key());
    }
}
