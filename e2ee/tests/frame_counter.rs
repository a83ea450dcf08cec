//! A (key, nonce) pair is never used twice: the counter never repeats under
//! one KID and base key, and restarts only with a new key.

use std::collections::HashSet;
use std::time::Instant;

use e2ee::frame::{
    DecryptConfig, FrameDecryptor, FrameEncryptor, Suite, base_key_len, kid, split_kid,
};

fn key(epoch: u64, generation: u8) -> Vec<u8> {
    let e = epoch.to_le_bytes();
    (0..base_key_len(Suite::default()))
        .map(|i| e[i % 8] ^ generation ^ i as u8)
        .collect()
}

/// (KID, CTR) of a sealed frame, read back through a decryptor that holds
/// the key, so the pair is the authenticated one.
fn kid_ctr(dec: &mut FrameDecryptor<()>, frame: &[u8]) -> (u64, u64) {
    let d = dec
        .decrypt(Instant::now(), frame, &[], ())
        .expect("decrypts")
        .expect("not held back");
    (kid(d.sender_leaf, d.epoch), d.counter)
}

#[test]
fn counters_never_repeat_and_restart_per_key() {
    let suite = Suite::default();
    let now = Instant::now();
    let mut enc = FrameEncryptor::new(suite, 6);
    let mut seen: HashSet<(Vec<u8>, u64, u64)> = HashSet::new();
    let mut out = Vec::new();
    let mut total = 0;

    // (epoch, base key generation, leaf change before it, frames)
    let plan: [(u64, u8, Option<u32>, u64); 6] = [
        (1, 0, None, 3000),
        (1, 0, None, 500), // the same key again: the counter goes on
        (2, 0, None, 2000),
        (2, 0, Some(9), 1000), // rejoined as leaf 9: new KID, new key
        (3, 0, None, 1000),
        (3, 1, None, 500), // same epoch, another base key: a new key
    ];
    let mut expect_next = 0;
    for (epoch, generation, leaf, frames) in plan {
        if let Some(leaf) = leaf {
            enc.set_leaf(leaf);
        }
        let base = key(epoch, generation);
        let before = enc.kid();
        enc.set_epoch(epoch, &base).expect("epoch");
        let restarted = before != enc.kid() || generation == 1;
        if restarted {
            expect_next = 0;
        }
        let mut dec = FrameDecryptor::new(suite, DecryptConfig::default());
        dec.add_epoch(now, epoch, &base).expect("epoch");
        for _ in 0..frames {
            enc.encrypt(b"f", &[], &mut out).expect("encrypt");
            let (k, ctr) = kid_ctr(&mut dec, &out);
            assert_eq!(Some(k), enc.kid());
            assert_eq!(split_kid(k).1, epoch as u8);
            assert_eq!(ctr, expect_next, "counters run 0, 1, 2, ... per key");
            expect_next += 1;
            assert!(
                seen.insert((base.clone(), k, ctr)),
                "repeat of {k:#x}/{ctr}"
            );
            total += 1;
        }
    }
    assert_eq!(seen.len(), total);
    assert_eq!(enc.kid(), Some(kid(9, 3)));
}

#[test]
fn the_leaf_changes_only_at_the_next_epoch() {
    let mut enc = FrameEncryptor::new(Suite::default(), 1);
    enc.set_epoch(4, &key(4, 0)).expect("epoch");
    enc.set_leaf(2);
    assert_eq!(enc.kid(), Some(kid(1, 4)), "still the old leaf");
    enc.set_epoch(5, &key(5, 0)).expect("epoch");
    assert_eq!(enc.kid(), Some(kid(2, 5)));
    assert_eq!(enc.epoch(), Some(5));
}
