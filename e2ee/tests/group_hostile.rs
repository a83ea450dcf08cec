//! Hostile input: garbage, truncation and bit flips must give typed errors,
//! never a panic, and never disturb the group.

use e2ee::group::{GroupError, Processed};
use testkit::mls::*;
use testkit::rng::Rng;

#[test]
fn key_package_with_bad_signature_is_invalid() {
    let mut bob = client("bob");
    let alice = client("alice");
    let kp = bob.key_package().unwrap();
    assert!(alice.key_package_identity(&kp).is_ok());
    // Every single-bit flip anywhere (header, keys, credential, lifetime,
    // signatures) is caught.
    for i in 0..kp.len() {
        let mut bad = kp.clone();
        bad[i] ^= 0x01;
        assert!(
            matches!(
                alice.key_package_identity(&bad),
                Err(GroupError::InvalidKeyPackage)
            ),
            "flip at byte {i} of {}",
            kp.len()
        );
    }
}

#[test]
fn key_package_garbage_and_truncation_are_invalid() {
    let mut bob = client("bob");
    let alice = client("alice");
    let kp = bob.key_package().unwrap();
    for len in 0..kp.len() {
        assert!(matches!(
            alice.key_package_identity(&kp[..len]),
            Err(GroupError::InvalidKeyPackage)
        ));
    }
    let mut trailing = kp.clone();
    trailing.push(0);
    assert!(matches!(
        alice.key_package_identity(&trailing),
        Err(GroupError::InvalidKeyPackage)
    ));
    let mut rng = Rng::new(7);
    for _ in 0..2000 {
        let len = rng.below(600);
        let garbage = rng.bytes(len);
        assert!(matches!(
            alice.key_package_identity(&garbage),
            Err(GroupError::InvalidKeyPackage)
        ));
    }
    // Other MLS message types are not KeyPackages.
    let mut g = group(&["alice", "bob"]);
    let app = g[0].encrypt_application(b"x").unwrap();
    assert!(matches!(
        g[0].key_package_identity(&app),
        Err(GroupError::InvalidKeyPackage)
    ));
}

/// Feeds `base` truncated, bit-flipped and with random tails to `target`,
/// then checks the group still accepts a legitimate message.
fn mutate_into_process(g: &mut [e2ee::group::MlsClient], target: usize, base: &[u8], seed: u64) {
    let mut rng = Rng::new(seed);
    let epoch = g[target].epoch();
    for len in 0..base.len() {
        let r = g[target].process(&base[..len]);
        assert!(r.is_err(), "truncated to {len}: {r:?}");
    }
    for _ in 0..300 {
        let mut bad = base.to_vec();
        let flips = 1 + rng.below(3);
        for _ in 0..flips {
            let i = rng.below(bad.len());
            bad[i] ^= 1 << rng.below(8);
        }
        // An application message's header is AEAD associated data and the
        // rest ciphertext; a commit (a PublicMessage) is signed and carries
        // a membership tag over everything: every flip must be rejected.
        let r = g[target].process(&bad);
        assert!(r.is_err(), "mutation accepted: {r:?}");
        assert_eq!(g[target].epoch(), epoch);
    }
    for _ in 0..300 {
        let len = rng.below(400);
        let garbage = rng.bytes(len);
        assert!(g[target].process(&garbage).is_err());
    }
}

#[test]
fn process_survives_garbage_and_mutated_messages() {
    let mut g = group(&["alice", "bob", "carol"]);
    // Mutated application messages.
    let app = g[0].encrypt_application(b"hello hostile world").unwrap();
    mutate_into_process(&mut g, 1, &app, 1);
    // The untouched original still decrypts (no ratchet state was burnt).
    assert!(matches!(
        g[1].process(&app),
        Ok(Processed::Application { .. })
    ));

    // Mutated commits.
    let commit = g[2].self_update().unwrap();
    g[2].merge_pending_commit().unwrap();
    mutate_into_process(&mut g, 0, &commit.commit, 2);
    assert!(matches!(
        g[0].process(&commit.commit),
        Ok(Processed::Commit { .. })
    ));
    g[1].process(&commit.commit).unwrap();
    assert_eq!(g[0].verification_code(), g[2].verification_code());
    assert_eq!(g[1].verification_code(), g[2].verification_code());
    let s = g[0].stats();
    assert!(s.rejected_invalid > 0);
    assert_eq!(s.commits_merged, 2);
}

#[test]
fn join_survives_garbage_and_keeps_the_key_package() {
    let mut g = group(&["alice"]);
    let mut bob = client("bob");
    let kp = bob.key_package().unwrap();
    let add = g[0].commit(&[&kp], &[]).unwrap();
    g[0].merge_pending_commit().unwrap();
    let welcome = add.welcome.unwrap();

    let mut rng = Rng::new(3);
    for len in 0..welcome.len() {
        let r = bob.join(&welcome[..len]);
        assert!(
            matches!(r, Err(GroupError::InvalidMessage)),
            "len {len}: {r:?}"
        );
    }
    for _ in 0..300 {
        let len = rng.below(800);
        assert!(matches!(
            bob.join(&rng.bytes(len)),
            Err(GroupError::InvalidMessage)
        ));
    }
    // Bit flips anywhere: a typed error or "not for us", never a join.
    for i in (0..welcome.len()).step_by(7) {
        let mut bad = welcome.clone();
        bad[i] ^= 0x80;
        match bob.join(&bad) {
            Ok(false) | Err(_) => {}
            Ok(true) => panic!("joined with a Welcome flipped at {i}"),
        }
        assert!(!bob.in_group());
    }
    // A commit or app message is not a Welcome.
    assert!(matches!(
        bob.join(&add.commit),
        Err(GroupError::InvalidMessage)
    ));
    // The failed attempts did not burn bob's KeyPackage.
    assert!(bob.join(&welcome).unwrap());
    assert_eq!(bob.verification_code(), g[0].verification_code());
}

#[test]
fn garbage_outside_a_group_is_not_in_group() {
    let mut a = client("alice");
    let mut rng = Rng::new(11);
    for _ in 0..100 {
        let len = rng.below(100);
        assert!(matches!(
            a.process(&rng.bytes(len)),
            Err(GroupError::NotInGroup)
        ));
    }
}

#[test]
fn exporter_rejects_oversized_lengths() {
    let g = group(&["alice"]);
    assert!(matches!(
        g[0].export_secret("x", b"", 70_000),
        Err(GroupError::InvalidArgument)
    ));
    assert!(matches!(
        g[0].export_secret("x", b"", 0),
        Err(GroupError::InvalidArgument)
    ));
    assert!(matches!(
        g[0].export_secret("x", b"", 8161),
        Err(GroupError::InvalidArgument)
    ));
    assert_eq!(g[0].export_secret("x", b"", 8160).unwrap().len(), 8160);
    assert_ne!(
        g[0].export_secret("a", b"", 32).unwrap(),
        g[0].export_secret("b", b"", 32).unwrap()
    );
    assert_ne!(
        g[0].export_secret("a", b"1", 32).unwrap(),
        g[0].export_secret("a", b"2", 32).unwrap()
    );
}
