//! The walk finds the leaves openmls itself would put in the tree, and
//! refuses what it cannot follow without panicking.

use super::super::{CommitMsg, CommitRefusal, DeliveryLog, LogLimits, Refused};
use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use openmls::prelude::{
    KeyPackageIn, MlsMessageBodyIn, MlsMessageIn, ProtocolVersion, tls_codec::Deserialize as _,
    tls_codec::Size as _,
};
use openmls_rust_crypto::RustCrypto;
use testkit::mls::{RawMember, client};

/// The encoded size of a KeyPackage's leaf, as openmls measures it.
fn key_package_leaf(bytes: &[u8]) -> usize {
    let MlsMessageBodyIn::KeyPackage(kp) = MlsMessageIn::tls_deserialize_exact(bytes)
        .unwrap()
        .extract()
    else {
        panic!("not a KeyPackage")
    };
    let kp: KeyPackageIn = kp;
    kp.validate(&RustCrypto::default(), ProtocolVersion::Mls10)
        .unwrap()
        .leaf_node()
        .tls_serialized_len()
}

#[test]
fn the_refusal_names_the_cap() {
    assert!(LEAF_TOO_LARGE.0.contains(&MAX_LEAF_NODE_BYTES.to_string()));
}

#[test]
fn honest_commits_yield_the_added_leaves_and_the_path_leaf() {
    let mut alice = client("alice");
    alice.create_group(b"room").unwrap();
    let (kp_bob, kp_carol) = (
        client("bob").key_package().unwrap(),
        client("carol").key_package().unwrap(),
    );
    // Adds only: no update path.
    let commit = alice.commit(&[&kp_bob, &kp_carol], &[]).unwrap();
    let leaves = commit_leaves(&commit.commit).unwrap();
    assert_eq!(
        leaves,
        [key_package_leaf(&kp_bob), key_package_leaf(&kp_carol)]
    );
    assert_eq!(check_commit(&commit.commit), Ok(()));
    alice.merge_pending_commit().unwrap();
    let update = alice.self_update().unwrap();
    let [path] = commit_leaves(&update.commit).unwrap()[..] else {
        panic!("one path leaf")
    };
    // The client SDK's leaves, far under the cap (see the cap's rustdoc).
    println!(
        "client SDK leaves: key package {}, update path {path}",
        leaves[0]
    );
    assert!(leaves[0] * 8 < MAX_LEAF_NODE_BYTES);
    assert!(path * 8 < MAX_LEAF_NODE_BYTES);
}

#[test]
fn a_padded_update_path_leaf_is_measured_and_refused() {
    let mut m = RawMember::new("mallory");
    m.found(b"room", 0);
    let honest = m.self_update(0);
    m.settle(false);
    let [honest_leaf] = commit_leaves(&honest).unwrap()[..] else {
        panic!("one path leaf")
    };
    let padded = m.self_update(MAX_LEAF_NODE_BYTES);
    m.settle(false);
    let [padded_leaf] = commit_leaves(&padded).unwrap()[..] else {
        panic!("one path leaf")
    };
    // Padding of n bytes adds n, a length prefix and the extension header.
    assert!(padded_leaf > honest_leaf + MAX_LEAF_NODE_BYTES);
    assert!(padded_leaf < honest_leaf + MAX_LEAF_NODE_BYTES + 16);
    assert_eq!(check_commit(&honest), Ok(()));
    assert_eq!(check_commit(&padded), Err(LEAF_TOO_LARGE));
    // Just under the cap passes.
    let fits = m.self_update(MAX_LEAF_NODE_BYTES - honest_leaf - 16);
    m.settle(false);
    assert_eq!(check_commit(&fits), Ok(()));
}

#[test]
fn a_padded_key_package_in_an_add_is_refused() {
    let mut m = RawMember::new("mallory");
    m.found(b"room", 0);
    let kp = RawMember::new("bob").key_package(MAX_LEAF_NODE_BYTES);
    let (commit, _welcome) = m.add(&[&kp]);
    let leaves = commit_leaves(&commit).unwrap();
    assert_eq!(leaves[0], key_package_leaf(&kp));
    assert_eq!(check_commit(&commit), Err(LEAF_TOO_LARGE));
}

#[test]
fn every_truncation_and_other_messages_are_refused_without_panic() {
    let mut alice = client("alice");
    alice.create_group(b"room").unwrap();
    let kp = client("bob").key_package().unwrap();
    alice.commit(&[&kp], &[]).unwrap();
    alice.merge_pending_commit().unwrap();
    let commit = alice.self_update().unwrap().commit;
    let full = commit_leaves(&commit).unwrap();
    // A truncated commit either fails to walk or, cut after the path's
    // leaf (the walk reads no further), yields the same leaves.
    for end in 0..commit.len() {
        if let Ok(leaves) = commit_leaves(&commit[..end]) {
            assert_eq!(leaves, full, "cut at {end}");
        }
    }
    // A KeyPackage and a Welcome are no commits.
    alice.clear_pending_commit();
    let welcome = alice
        .commit(&[&client("carol").key_package().unwrap()], &[])
        .unwrap()
        .welcome
        .unwrap();
    for other in [kp, welcome] {
        assert_eq!(commit_leaves(&other), Err(MALFORMED));
    }
    assert_eq!(commit_leaves(&[0xff; 64]), Err(MALFORMED));
}

/// The delivery service with a founder made with openmls directly (so its
/// leaf can be padded): `founded(pad)` returns the log and the founder, or
/// the GroupInfo's refusal.
fn founded(pad: usize) -> (DeliveryLog, RawMember, Result<bool, Invalid>) {
    let mut log = DeliveryLog::new(LogLimits {
        max_entries: 100,
        max_bytes: 1 << 24,
    });
    let info = log.join("p-alice", "alice");
    let mut alice = RawMember::new("alice");
    alice.found(&hex::decode(&info.group_id).unwrap(), pad);
    let gi = B64.encode(alice.group_info());
    let created = log.group_info("p-alice", &gi);
    (log, alice, created)
}

#[test]
fn a_founder_leaf_over_the_cap_is_refused_and_one_under_it_accepted() {
    let (_, _, created) = founded(MAX_LEAF_NODE_BYTES);
    assert_eq!(created, Err(LEAF_TOO_LARGE));
    // Far over the cap: refused on its size, before its tree is verified.
    let (_, _, created) = founded(MAX_LEAF_NODE_BYTES * 8);
    assert_eq!(created, Err(LEAF_TOO_LARGE));
    let (log, _, created) = founded(MAX_LEAF_NODE_BYTES - 256);
    assert_eq!(created, Ok(true));
    let leaf = log.group.as_ref().and_then(|g| g.leaf_size(0)).unwrap();
    assert!(leaf <= MAX_LEAF_NODE_BYTES && leaf > MAX_LEAF_NODE_BYTES - 256);
}

#[test]
fn a_key_package_whose_leaf_is_over_the_cap_is_refused() {
    let (mut log, _, created) = founded(0);
    assert_eq!(created, Ok(true));
    log.join("p-bob", "bob");
    let bob = RawMember::new("bob");
    let big = B64.encode(bob.key_package(MAX_LEAF_NODE_BYTES));
    // Well within the KeyPackage cap, yet its leaf is over the leaf cap.
    assert!(big.len() < crate::server::SizeCaps::default().key_package);
    assert_eq!(log.key_package("p-bob", big).err(), Some(LEAF_TOO_LARGE));
    assert_eq!(
        Refused::of(LEAF_TOO_LARGE, Refused::InvalidKeyPackage),
        Refused::LeafTooLarge
    );
    assert_eq!(log.pending_key_packages(), 0);
    let fits = B64.encode(bob.key_package(MAX_LEAF_NODE_BYTES - 256));
    assert!(log.key_package("p-bob", fits).is_ok());
    assert_eq!(log.pending_key_packages(), 1);
}

#[test]
fn a_self_update_with_an_oversized_leaf_is_refused_and_the_epoch_stays() {
    let (mut log, mut alice, created) = founded(0);
    assert_eq!(created, Ok(true));
    let send = |log: &mut DeliveryLog, commit: &[u8]| {
        log.commit(
            "p-alice",
            CommitMsg {
                epoch: 0,
                commit: B64.encode(commit),
                welcome: None,
            },
        )
    };
    let padded = alice.self_update(MAX_LEAF_NODE_BYTES);
    alice.settle(false);
    let refused = send(&mut log, &padded).unwrap_err();
    assert_eq!(refused, CommitRefusal::Invalid(LEAF_TOO_LARGE));
    assert_eq!(refused.reason(), Refused::LeafTooLarge);
    assert_eq!((log.epoch(), log.last_seq()), (0, 0));
    let honest = alice.self_update(0);
    assert!(send(&mut log, &honest).is_ok());
    alice.settle(true);
    assert_eq!(log.epoch(), 1);
}
