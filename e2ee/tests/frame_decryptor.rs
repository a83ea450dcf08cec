//! FrameDecryptor against hostile and untimely input: tampering, replays,
//! forged KIDs, epoch switches with grace and pending frames, and random
//! bytes. Time is virtual: every `now` is `t0 + offset`.

use std::time::{Duration, Instant};

use e2ee::frame::{
    DecryptConfig, Decrypted, DropReason, FrameDecryptor, FrameEncryptor, FrameError, MAX_PREVIOUS,
    Suite, base_key_len, kid, seal,
};

const SUITE: Suite = Suite::AesGcm128Sha256;

/// A distinct base key per epoch (the group module would export it).
fn key(epoch: u64) -> Vec<u8> {
    let e = epoch.to_le_bytes();
    (0..base_key_len(SUITE))
        .map(|i| e[i % 8] ^ (0xa5 + i as u8))
        .collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A sender at `leaf` with the keys of `epoch`.
fn sender(leaf: u32, epoch: u64) -> FrameEncryptor {
    let mut e = FrameEncryptor::new(SUITE, leaf);
    e.set_epoch(epoch, &key(epoch)).expect("epoch");
    e
}

fn receiver(t0: Instant, epoch: u64) -> FrameDecryptor<u32> {
    let mut d = FrameDecryptor::new(SUITE, DecryptConfig::default());
    d.add_epoch(t0, epoch, &key(epoch)).expect("epoch");
    d
}

fn frame(e: &mut FrameEncryptor, plaintext: &[u8], metadata: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    e.encrypt(plaintext, metadata, &mut out).expect("encrypt");
    out
}

fn ok(r: Result<Option<Decrypted<u32>>, DropReason>) -> Decrypted<u32> {
    r.expect("decrypts").expect("not held back")
}

#[test]
fn every_single_bit_flip_is_dropped_and_counted() {
    let t0 = Instant::now();
    let mut alice = sender(3, 1);
    let mut bob = receiver(t0, 1);
    let _warm_up = ok(bob.decrypt(t0, &frame(&mut alice, b"first", &[1]), &[1], 0));
    let good = frame(&mut alice, b"a keyframe, say", &[1]);

    let mut flips = 0u64;
    for bit in 0..good.len() * 8 {
        let mut bad = good.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let r = bob.decrypt(t0, &bad, &[1], 0);
        assert!(
            !matches!(r, Ok(Some(_))),
            "bit {bit} flipped still decrypted"
        );
        if bit >= 8 * 3 {
            // Past the 3-byte header (KID 0x301 in 2 bytes, CTR 1 in the
            // config byte): ciphertext and tag.
            assert_eq!(r.err(), Some(DropReason::AuthFailed), "bit {bit}");
        }
        flips += 1;
    }
    // Header flips may look like a coming epoch and wait: give them up.
    bob.handle_timeout(t0 + ms(1000));
    assert_eq!(bob.drops().total(), flips);

    // Metadata is authenticated too.
    assert_eq!(
        bob.decrypt(t0, &good, &[0], 0).err(),
        Some(DropReason::AuthFailed)
    );
    assert_eq!(
        bob.decrypt(t0, &good, &[], 0).err(),
        Some(DropReason::AuthFailed)
    );

    // None of the forgeries touched the replay window: the original opens.
    let d = ok(bob.decrypt(t0, &good, &[1], 7));
    assert_eq!(
        (d.plaintext.as_slice(), d.sender_leaf, d.counter, d.ctx),
        (&b"a keyframe, say"[..], 3, 1, 7)
    );
}

#[test]
fn replays_and_counters_older_than_the_window() {
    let t0 = Instant::now();
    let mut alice = sender(2, 4);
    let mut bob = receiver(t0, 4);
    let frames: Vec<Vec<u8>> = (0..200)
        .map(|i| frame(&mut alice, &[i as u8], &[0]))
        .collect();

    let f0 = ok(bob.decrypt(t0, &frames[0], &[0], 0));
    assert_eq!(f0.counter, 0);
    assert_eq!(
        bob.decrypt(t0, &frames[0], &[0], 0).err(),
        Some(DropReason::Replay)
    );

    for (i, f) in frames.iter().enumerate().skip(1) {
        if ![50, 71, 72].contains(&i) {
            assert_eq!(ok(bob.decrypt(t0, f, &[0], 0)).counter, i as u64);
        }
    }
    // Highest is 199 and the window is 128: 72 is inside, 71 and 50 are not.
    assert_eq!(ok(bob.decrypt(t0, &frames[72], &[0], 0)).counter, 72);
    assert_eq!(
        bob.decrypt(t0, &frames[72], &[0], 0).err(),
        Some(DropReason::Replay)
    );
    assert_eq!(
        bob.decrypt(t0, &frames[71], &[0], 0).err(),
        Some(DropReason::Replay)
    );
    assert_eq!(
        bob.decrypt(t0, &frames[50], &[0], 0).err(),
        Some(DropReason::Replay)
    );
    assert_eq!(
        bob.decrypt(t0, &frames[199], &[0], 0).err(),
        Some(DropReason::Replay)
    );
    assert_eq!(bob.drops().replay, 5);
    assert_eq!(bob.drops().total(), 5);
}

#[test]
fn forged_high_counter_does_not_move_the_window() {
    let t0 = Instant::now();
    let mut alice = sender(1, 9);
    let mut bob = receiver(t0, 9);
    let frames: Vec<Vec<u8>> = (0..10).map(|i| frame(&mut alice, &[i], &[0])).collect();
    let _ = ok(bob.decrypt(t0, &frames[0], &[0], 0));

    // Alice's KID with a huge counter, sealed under a key nobody has.
    let mut forged = Vec::new();
    seal(
        SUITE,
        &[0xee; 16],
        kid(1, 9),
        1 << 40,
        &[0],
        b"evil",
        &mut forged,
    )
    .expect("seal");
    assert_eq!(
        bob.decrypt(t0, &forged, &[0], 0).err(),
        Some(DropReason::AuthFailed)
    );

    for (i, f) in frames.iter().enumerate().skip(1) {
        assert_eq!(ok(bob.decrypt(t0, f, &[0], 0)).counter, i as u64);
    }
    assert_eq!(bob.drops().total(), 1);
}

#[test]
fn forged_kids() {
    let t0 = Instant::now();
    let mut bob = receiver(t0, 10);
    let forge = |kid: u64| {
        let mut out = Vec::new();
        seal(SUITE, &[0x11; 16], kid, 0, &[], b"evil", &mut out).expect("seal");
        out
    };

    // A leaf of the current epoch without its key: authentication fails and
    // no key is kept for it.
    assert_eq!(
        bob.decrypt(t0, &forge(kid(77, 10)), &[], 0).err(),
        Some(DropReason::AuthFailed)
    );
    assert!(bob.held_keys().is_empty());

    // Outside the `leaf << 8 | epoch` space.
    assert_eq!(
        bob.decrypt(t0, &forge((1 << 40) | 10), &[], 0).err(),
        Some(DropReason::UnknownKid)
    );

    // Far ahead or behind: dropped at once (bob's first epoch is 10, so
    // epoch 9 is from before he joined).
    assert_eq!(
        bob.decrypt(t0, &forge(kid(1, 10 + 129)), &[], 0).err(),
        Some(DropReason::WrongEpoch)
    );
    assert_eq!(
        bob.decrypt(t0, &forge(kid(1, 9)), &[], 0).err(),
        Some(DropReason::BeforeJoin)
    );

    // A coming epoch waits, then is given up at the pending timeout.
    assert_eq!(bob.decrypt(t0, &forge(kid(1, 11)), &[], 0), Ok(None));
    assert_eq!(
        bob.decrypt(t0 + ms(200), &forge(kid(1, 10 + 128)), &[], 0),
        Ok(None)
    );
    assert_eq!(bob.poll_timeout(), Some(t0 + ms(1000)));
    assert_eq!(bob.handle_timeout(t0 + ms(999)), 0);
    assert_eq!(bob.handle_timeout(t0 + ms(1000)), 1);
    assert_eq!(bob.poll_timeout(), Some(t0 + ms(1200)));
    assert_eq!(bob.handle_timeout(t0 + ms(1200)), 1);
    assert_eq!(bob.poll_timeout(), None);

    // Even when the forged epoch arrives, the forgery does not open.
    assert_eq!(bob.decrypt(t0, &forge(kid(1, 11)), &[], 0), Ok(None));
    bob.add_epoch(t0 + ms(10), 11, &key(11)).expect("epoch");
    assert!(bob.poll_ready().is_none());

    let d = bob.drops();
    assert_eq!(
        (d.auth_failed, d.unknown_kid, d.wrong_epoch, d.before_join),
        (2, 3, 1, 1)
    );
    assert_eq!(d.total(), 7);
    assert!(bob.held_keys().is_empty());
}

#[test]
fn malformed_input() {
    let t0 = Instant::now();
    let mut bob = receiver(t0, 1);
    let good = frame(&mut sender(0, 1), b"", &[]);
    assert_eq!(
        good.len(),
        1 + 16,
        "KID 1 and CTR 0 both fit the config byte"
    );
    for bad in [&[][..], &[0x80], &[0x08], &[0x81, 0x05], &good[..16]] {
        assert_eq!(
            bob.decrypt(t0, bad, &[], 0).err(),
            Some(DropReason::Malformed),
            "{bad:02x?}"
        );
    }
    assert_eq!(ok(bob.decrypt(t0, &good, &[], 0)).plaintext, b"");
    assert_eq!(bob.drops().malformed, 5);
}

#[test]
fn epoch_switch_with_pending_frames_and_grace() {
    let t0 = Instant::now();
    let mut alice = sender(4, 1);
    let mut bob = receiver(t0, 1);
    let old: Vec<Vec<u8>> = (0..4).map(|i| frame(&mut alice, &[1, i], &[0])).collect();
    let _ = ok(bob.decrypt(t0, &old[0], &[0], 100));

    // Alice merges the commit of epoch 2 first; her new frames reach Bob
    // before his own commit does.
    alice.set_epoch(2, &key(2)).expect("epoch");
    let new: Vec<Vec<u8>> = (0..3).map(|i| frame(&mut alice, &[2, i], &[1])).collect();
    for (i, f) in new.iter().enumerate() {
        assert_eq!(bob.decrypt(t0 + ms(10), f, &[1], 200 + i as u32), Ok(None));
    }
    assert!(bob.poll_ready().is_none());
    assert_eq!(bob.pending_len(), 3);

    bob.add_epoch(t0 + ms(50), 2, &key(2)).expect("epoch");
    let ready: Vec<(Vec<u8>, u64, u64, u32)> = std::iter::from_fn(|| bob.poll_ready())
        .map(|d| (d.plaintext, d.epoch, d.counter, d.ctx))
        .collect();
    assert_eq!(
        ready,
        [
            (vec![2, 0], 2, 0, 200),
            (vec![2, 1], 2, 1, 201),
            (vec![2, 2], 2, 2, 202)
        ]
    );

    // Epoch 1 frames still in flight decrypt within the grace (2 s)...
    assert_eq!(bob.previous_epoch(), Some(1));
    assert_eq!(bob.poll_timeout(), Some(t0 + ms(2050)));
    let d = ok(bob.decrypt(t0 + ms(2049), &old[1], &[0], 101));
    assert_eq!((d.epoch, d.counter, d.sender_leaf), (1, 1, 4));
    // ...and not after it, whether or not handle_timeout ran.
    assert_eq!(
        bob.decrypt(t0 + ms(2050), &old[2], &[0], 102).err(),
        Some(DropReason::WrongEpoch)
    );
    assert_eq!(bob.previous_epoch(), None);
    assert_eq!(
        bob.decrypt(t0 + ms(2051), &old[3], &[0], 103).err(),
        Some(DropReason::WrongEpoch)
    );

    // Only epoch 2 keys are held now.
    let held: Vec<u64> = bob.held_keys().into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(held, [kid(4, 2)]);
    assert_eq!(bob.drops().total(), 2);
}

#[test]
fn every_superseded_epoch_keeps_its_own_grace() {
    let t0 = Instant::now();
    let mut bob = receiver(t0, 5);
    let f5: Vec<Vec<u8>> = {
        let mut carol = sender(1, 5);
        (0..3).map(|i| frame(&mut carol, &[5, i], &[])).collect()
    };
    let f6 = frame(&mut sender(1, 6), b"6", &[]);
    let _ = ok(bob.decrypt(t0, &f5[0], &[], 0));
    bob.add_epoch(t0, 6, &key(6)).expect("epoch");
    let _ = ok(bob.decrypt(t0, &f6, &[], 0));
    assert_eq!(bob.held_keys().len(), 2);

    // A leave and a join 100 ms apart: epoch 7 comes while 5 is still in
    // its grace. A sender two commits behind is still read.
    bob.add_epoch(t0 + ms(100), 7, &key(7)).expect("epoch");
    assert_eq!(bob.previous_epochs(), [5, 6]);
    assert_eq!(bob.previous_epoch(), Some(6));
    assert_eq!(ok(bob.decrypt(t0 + ms(100), &f5[1], &[], 0)).epoch, 5);

    // Epoch 5's grace runs from when 6 replaced it, 6's from when 7 did.
    assert_eq!(bob.poll_timeout(), Some(t0 + ms(2000)));
    assert_eq!(
        bob.handle_timeout(t0 + ms(2000)),
        0,
        "no frames were waiting"
    );
    assert_eq!(bob.previous_epochs(), [6]);
    assert_eq!(
        bob.decrypt(t0 + ms(2000), &f5[2], &[], 0).err(),
        Some(DropReason::WrongEpoch)
    );
    let held: Vec<u64> = bob.held_keys().into_iter().map(|(k, _, _)| k).collect();
    assert_eq!(held, [kid(1, 6)]);

    assert_eq!(bob.poll_timeout(), Some(t0 + ms(2100)));
    bob.handle_timeout(t0 + ms(2100));
    assert_eq!(bob.previous_epoch(), None);
    assert!(bob.held_keys().is_empty());
    assert_eq!(bob.poll_timeout(), None);
}

#[test]
fn a_burst_of_commits_holds_at_most_max_previous_epochs() {
    let t0 = Instant::now();
    let mut bob = receiver(t0, 1);
    let first = frame(&mut sender(2, 1), b"1", &[]);
    for epoch in 2..=12 {
        bob.add_epoch(t0 + ms(epoch), epoch, &key(epoch))
            .expect("epoch");
    }
    let held = bob.previous_epochs();
    assert_eq!(held.len(), MAX_PREVIOUS);
    assert_eq!(held, (12 - MAX_PREVIOUS as u64..12).collect::<Vec<_>>());
    assert_eq!(
        bob.decrypt(t0 + ms(20), &first, &[], 0).err(),
        Some(DropReason::WrongEpoch),
        "the oldest went first"
    );
}

#[test]
fn epoch_with_the_same_kid_bits_replaces_the_previous_at_once() {
    let t0 = Instant::now();
    let mut bob = receiver(t0, 1);
    bob.add_epoch(t0, 257, &key(257)).expect("epoch");
    assert_eq!(
        bob.previous_epoch(),
        None,
        "1 and 257 share their low 8 bits"
    );
    let f1 = frame(&mut sender(0, 1), b"x", &[]);
    assert_eq!(
        bob.decrypt(t0, &f1, &[], 0).err(),
        Some(DropReason::AuthFailed)
    );
    let f257 = frame(&mut sender(0, 257), b"y", &[]);
    assert_eq!(ok(bob.decrypt(t0, &f257, &[], 0)).epoch, 257);
}

#[test]
fn frames_before_the_first_epoch_wait_and_older_ones_are_dropped_then() {
    let t0 = Instant::now();
    let mut bob: FrameDecryptor<u32> = FrameDecryptor::new(SUITE, DecryptConfig::default());
    let f2 = frame(&mut sender(1, 2), b"too early", &[]);
    let f3 = frame(&mut sender(1, 3), b"joined", &[]);
    let f4 = frame(&mut sender(1, 4), b"next", &[]);
    for (i, f) in [&f2, &f3, &f4].into_iter().enumerate() {
        assert_eq!(bob.decrypt(t0, f, &[], i as u32), Ok(None));
    }
    bob.add_epoch(t0, 3, &key(3)).expect("epoch");
    assert_eq!(
        bob.poll_ready().map(|d| d.plaintext),
        Some(b"joined".to_vec())
    );
    assert!(bob.poll_ready().is_none());
    assert_eq!(
        bob.drops().before_join,
        1,
        "a joiner cannot read the epoch before it"
    );
    assert_eq!(bob.pending_len(), 1, "epoch 4 still waits");

    bob.clear();
    assert_eq!(bob.pending_len(), 0);
    assert_eq!(bob.drops().unknown_kid, 1);
    assert!(bob.held_keys().is_empty());
    assert_eq!(bob.epoch(), None);
    assert_eq!(
        bob.decrypt(t0, &f3, &[], 9),
        Ok(None),
        "no keys: waits again"
    );
}

#[test]
fn pending_is_bounded() {
    let t0 = Instant::now();
    let mut cfg = DecryptConfig::default();
    cfg.max_pending = 4;
    let mut bob: FrameDecryptor<u32> = FrameDecryptor::new(SUITE, cfg);
    bob.add_epoch(t0, 1, &key(1)).expect("epoch");
    let mut alice = sender(1, 2);
    for i in 0..10 {
        assert_eq!(
            bob.decrypt(t0, &frame(&mut alice, &[i], &[]), &[], u32::from(i)),
            Ok(None)
        );
    }
    assert_eq!(bob.pending_len(), 4);
    assert_eq!(bob.drops().unknown_kid, 6, "the oldest were evicted");
    bob.add_epoch(t0, 2, &key(2)).expect("epoch");
    let ctx: Vec<u32> = std::iter::from_fn(|| bob.poll_ready())
        .map(|d| d.ctx)
        .collect();
    assert_eq!(ctx, [6, 7, 8, 9]);
}

#[test]
fn add_epoch_errors() {
    let t0 = Instant::now();
    let mut bob = receiver(t0, 5);
    assert!(matches!(
        bob.add_epoch(t0, 6, &[0; 15]),
        Err(FrameError::InvalidKeyLength {
            expected: 16,
            got: 15
        })
    ));
    assert!(matches!(
        bob.add_epoch(t0, 4, &key(4)),
        Err(FrameError::EpochRegressed {
            epoch: 4,
            current: 5
        })
    ));
    assert!(matches!(
        bob.add_epoch(t0, 5, &key(6)),
        Err(FrameError::EpochConflict { epoch: 5 })
    ));
    bob.add_epoch(t0, 5, &key(5))
        .expect("same epoch and key again is a no-op");
    assert_eq!((bob.epoch(), bob.previous_epoch()), (Some(5), None));
}

#[test]
fn random_and_truncated_bytes_never_panic_and_every_drop_is_counted() {
    let t0 = Instant::now();
    let mut rng = testkit::rng::Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut bob: FrameDecryptor<u32> = FrameDecryptor::new(SUITE, DecryptConfig::default());
    let mut alice = sender(2, 1);
    let (mut decrypted, mut held) = (0u64, 0u64);
    let mut dropped_by_timeout = 0u64;
    let mut now = t0;
    for i in 0..20_000u32 {
        now += ms(rng.below(3) as u64);
        let input: Vec<u8> = match rng.below(4) {
            0 => (0..rng.below(48)).map(|_| rng.next_u64() as u8).collect(),
            1 => {
                let f = frame(&mut alice, &[7; 40], &[1]);
                let cut = rng.below(f.len() + 1);
                f[..cut].to_vec()
            }
            2 => {
                let mut f = frame(&mut alice, &[7; 40], &[1]);
                let at = rng.below(f.len());
                f[at] = rng.next_u64() as u8;
                f
            }
            _ => frame(&mut alice, &[7; 40], &[1]),
        };
        match bob.decrypt(now, &input, &[1], i) {
            Ok(Some(d)) => {
                assert_eq!(d.plaintext, [7; 40]);
                decrypted += 1;
            }
            Ok(None) => held += 1,
            Err(_) => {}
        }
        if i % 1000 == 0 {
            let e = bob.epoch().map_or(1, |e| e + 1);
            bob.add_epoch(now, e, &key(e)).expect("epoch");
            alice.set_epoch(e, &key(e)).expect("epoch");
            decrypted += std::iter::from_fn(|| bob.poll_ready()).count() as u64;
        }
        if rng.below(50) == 0 {
            dropped_by_timeout += bob.handle_timeout(now);
        }
    }
    dropped_by_timeout += bob.handle_timeout(now + ms(10_000));
    bob.clear();
    assert!(decrypted > 4_000, "valid frames got through: {decrypted}");
    assert!(dropped_by_timeout <= held);
    assert_eq!(
        decrypted + bob.drops().total(),
        20_000,
        "every frame decrypted or counted"
    );
}

#[test]
fn a_waiting_frame_too_big_to_hold_is_dropped_at_once() {
    let t0 = Instant::now();
    let mut cfg = DecryptConfig::default();
    cfg.max_pending_bytes = 1000;
    let mut bob: FrameDecryptor<u32> = FrameDecryptor::new(SUITE, cfg);
    bob.add_epoch(t0, 1, &key(1)).expect("epoch");
    let mut alice = sender(1, 2);
    let small = frame(&mut alice, &[0; 500], &[]);
    let big = frame(&mut alice, &[0; 1000], &[]);
    assert_eq!(bob.decrypt(t0, &small, &[], 0), Ok(None));
    assert_eq!(
        bob.decrypt(t0, &big, &[], 1).err(),
        Some(DropReason::UnknownKid)
    );
    assert_eq!(bob.pending_len(), 1, "the small one still waits");
    assert_eq!(bob.drops().total(), 1);
}

/// A member that joined in epoch 5 never held epoch 4: a frame of it was
/// sent before the join and is `before_join`, not a failure of keys it
/// once had; a frame of its own epoch 5 after that epoch's grace is
/// `wrong_epoch`.
#[test]
fn frames_from_before_the_first_epoch_are_before_join() {
    let t0 = Instant::now();
    let mut cfg = DecryptConfig::default();
    cfg.grace = ms(100);
    let mut d: FrameDecryptor<u32> = FrameDecryptor::new(SUITE, cfg);
    d.add_epoch(t0, 5, &key(5)).expect("epoch");
    let early = frame(&mut sender(1, 4), b"sent before the join", &[]);
    assert_eq!(
        d.decrypt(t0, &early, &[], 0).err(),
        Some(DropReason::BeforeJoin)
    );

    let own = frame(&mut sender(1, 5), b"our first epoch", &[]);
    d.add_epoch(t0, 6, &key(6)).expect("epoch");
    let later = t0 + ms(200);
    assert_eq!(
        d.decrypt(later, &own, &[], 0).err(),
        Some(DropReason::WrongEpoch)
    );
    assert_eq!(
        d.decrypt(later, &early, &[], 0).err(),
        Some(DropReason::BeforeJoin)
    );
    // More than half the epoch space ahead is "too far ahead", not a join.
    let far = frame(&mut sender(1, 6 + 129), b"far", &[]);
    assert_eq!(
        d.decrypt(later, &far, &[], 0).err(),
        Some(DropReason::WrongEpoch)
    );

    let drops = d.drops();
    assert_eq!((drops.before_join, drops.wrong_epoch), (2, 2));
    // A new group after a rejoin has its own first epoch.
    d.clear();
    d.add_epoch(later, 2, &key(2)).expect("new group");
    let before_rejoin = frame(&mut sender(1, 1), b"x", &[]);
    assert_eq!(
        d.decrypt(later, &before_rejoin, &[], 0).err(),
        Some(DropReason::BeforeJoin)
    );
}
