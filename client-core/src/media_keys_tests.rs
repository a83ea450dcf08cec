//! Attribution: who sent a frame, and whether that is its track's publisher.

use super::*;
use std::time::Duration;

struct Ctx(&'static str);

impl FrameOrigin for Ctx {
    fn publisher(&self) -> &str {
        self.0
    }
}

fn members() -> Vec<Member> {
    ["alice", "bob"]
        .iter()
        .zip(0..)
        .map(|(id, leaf)| Member {
            leaf,
            identity: (*id).to_owned(),
            signature_key: Vec::new(),
        })
        .collect()
}

fn sealed_by_bob(key: &[u8], frame: &[u8]) -> Vec<u8> {
    sealed(1, 0, key, frame)
}

/// `frame` sealed by leaf `leaf` under `epoch`'s base key `key`.
fn sealed(leaf: u32, epoch: u64, key: &[u8], frame: &[u8]) -> Vec<u8> {
    let mut sender = FrameEncryptor::new(Suite::default(), leaf);
    sender.set_epoch(epoch, key).unwrap();
    let mut sealed = Vec::new();
    sender
        .encrypt_media(MediaCodec::Opus, frame, &mut sealed)
        .unwrap();
    sealed
}

/// `n` frames (each its index as 4 bytes) sealed in turn by one sender.
fn sealed_in_turn(leaf: u32, epoch: u64, key: &[u8], n: u32) -> Vec<Vec<u8>> {
    let mut sender = FrameEncryptor::new(Suite::default(), leaf);
    sender.set_epoch(epoch, key).unwrap();
    (0..n)
        .map(|i| {
            let mut sealed = Vec::new();
            sender
                .encrypt_media(MediaCodec::Opus, &i.to_be_bytes(), &mut sealed)
                .unwrap();
            sealed
        })
        .collect()
}

fn epoch_key(epoch: u64) -> [u8; 16] {
    [epoch as u8 + 1; 16]
}

/// Keys in epoch 0 (alice and bob), with no participant named yet; and
/// the epoch's base key.
fn in_epoch_0_naming_nobody(now: Instant) -> (MediaKeys<Ctx>, [u8; 16]) {
    let mut keys = MediaKeys::new(Suite::default(), DecryptConfig::default());
    let key = epoch_key(0);
    keys.install_epoch(now, 0, &key, 0, &members());
    (keys, key)
}

/// Keys as [`in_epoch_0_naming_nobody`] leaves them, after one frame of
/// bob's on `publisher`'s track.
fn one_frame_from_bob_on(now: Instant, publisher: &'static str) -> MediaKeys<Ctx> {
    let (mut keys, key) = in_epoch_0_naming_nobody(now);
    let frame = sealed(1, 0, &key, b"x");
    keys.decrypt(now, MediaCodec::Opus, &frame, Ctx(publisher));
    keys
}

/// Keys that went through epochs `0..=last` at `now`, naming alice and bob.
fn keys_through(now: Instant, last: u64) -> MediaKeys<Ctx> {
    let mut keys = MediaKeys::new(Suite::default(), DecryptConfig::default());
    keys.learn_identity("p-alice", "alice");
    keys.learn_identity("p-bob", "bob");
    for epoch in 0..=last {
        keys.install_epoch(now, epoch, &epoch_key(epoch), 0, &members());
    }
    keys
}

#[test]
fn a_new_group_after_a_long_one_still_names_its_senders() {
    let now = Instant::now();
    let mut keys = MediaKeys::new(Suite::default(), DecryptConfig::default());
    keys.learn_identity("p-bob", "bob");
    for epoch in 0..6 {
        keys.install_epoch(now, epoch, &[epoch as u8; 16], 0, &members());
    }
    // Rejoined after a server restart: a new group, from epoch 0 again.
    keys.forget();
    let key = [0xa5; 16];
    keys.install_epoch(now, 0, &key, 0, &members());

    keys.decrypt(
        now,
        MediaCodec::Opus,
        &sealed_by_bob(&key, b"frame"),
        Ctx("p-bob"),
    );

    assert_eq!(keys.failures().wrong_sender, 0);
    let frame = keys.poll_frame().expect("bob's frame delivered");
    assert_eq!(
        (&*frame.identity, frame.plaintext.as_slice()),
        ("bob", &b"frame"[..])
    );
}

#[test]
fn a_frame_on_another_publishers_track_is_not_delivered() {
    let now = Instant::now();
    let mut keys = MediaKeys::new(Suite::default(), DecryptConfig::default());
    keys.learn_identity("p-bob", "bob");
    keys.learn_identity("p-alice", "alice");
    let key = [0x11; 16];
    keys.install_epoch(now, 0, &key, 0, &members());

    keys.decrypt(
        now,
        MediaCodec::Opus,
        &sealed_by_bob(&key, b"frame"),
        Ctx("p-alice"),
    );

    assert!(keys.poll_frame().is_none());
    assert_eq!(keys.failures().wrong_sender, 1);
}

#[test]
fn nothing_is_sent_without_a_key() {
    let mut keys = MediaKeys::<Ctx>::new(Suite::default(), DecryptConfig::default());
    assert!(matches!(
        keys.encrypt(MediaCodec::Opus, b"x"),
        Err(EncryptError::NoKey)
    ));
    keys.install_epoch(Instant::now(), 0, &[1; 16], 0, &members());
    assert!(keys.encrypt(MediaCodec::Opus, b"x").is_ok());
    keys.forget();
    assert!(!keys.can_send());
}

/// Twenty commits a second: a sender still on the oldest epoch whose keys
/// are kept is named like any other, not taken for a spoof.
#[test]
fn a_frame_of_the_oldest_epoch_with_keys_is_still_named() {
    let now = Instant::now();
    let last = e2ee::frame::MAX_PREVIOUS as u64;
    let mut keys = keys_through(now, last);
    for epoch in 0..=last {
        let frame = sealed(1, epoch, &epoch_key(epoch), b"late");
        keys.decrypt(now, MediaCodec::Opus, &frame, Ctx("p-bob"));
        let opened = keys.poll_frame().expect("delivered");
        assert_eq!((&*opened.identity, opened.epoch), ("bob", epoch));
    }
    assert_eq!(keys.failures(), FailureCounts::default());
}

/// When an epoch's keys go, its frames are dropped for that reason, and
/// its member list goes with them.
#[test]
fn member_lists_go_with_their_keys() {
    let now = Instant::now();
    let mut keys = keys_through(now, 3);
    keys.tick(now + Duration::from_secs(3));
    assert_eq!(keys.members.keys().copied().collect::<Vec<_>>(), [3]);
    let frame = sealed(1, 2, &epoch_key(2), b"too late");
    keys.decrypt(now, MediaCodec::Opus, &frame, Ctx("p-bob"));
    assert!(keys.poll_frame().is_none());
    let f = keys.failures();
    assert_eq!((f.wrong_epoch, f.wrong_sender, f.total()), (1, 0, 1));
}

/// The media path can be ahead of the roster: a frame on the track of a
/// participant not named yet waits, and is delivered once it is.
#[test]
fn a_frame_waits_for_its_publishers_identity() {
    let now = Instant::now();
    let (mut keys, key) = in_epoch_0_naming_nobody(now);
    for frame in sealed_in_turn(1, 0, &key, 3) {
        keys.decrypt(now, MediaCodec::Opus, &frame, Ctx("p-bob"));
    }
    assert!(keys.poll_frame().is_none());
    assert_eq!(keys.waiting(), 3);
    assert_eq!(keys.next_timeout(), Some(now + crate::unattributed::HOLD));
    keys.tick(now + Duration::from_millis(500));
    keys.learn_identity("p-bob", "bob");
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| keys.poll_frame())
        .map(|f| f.plaintext)
        .collect();
    let want: Vec<Vec<u8>> = (0..3u32).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(got, want, "all three, in order");
    assert_eq!((keys.waiting(), keys.failures().total()), (0, 0));
}

#[test]
fn a_publisher_never_named_is_an_unknown_sender_not_a_wrong_one() {
    let now = Instant::now();
    let mut keys = one_frame_from_bob_on(now, "p-bob");
    keys.tick(now + crate::unattributed::HOLD);
    let f = keys.failures();
    assert_eq!((f.unknown_sender, f.wrong_sender, f.total()), (1, 0, 1));
    assert_eq!((keys.waiting(), keys.next_timeout()), (0, None));
    // Learning it afterwards brings nothing back.
    keys.learn_identity("p-bob", "bob");
    assert!(keys.poll_frame().is_none());
}

/// Waiting does not let a spoof through: bob's frame on alice's track is
/// caught once alice is named.
#[test]
fn a_spoofed_frame_that_waited_is_still_a_wrong_sender() {
    let now = Instant::now();
    let mut keys = one_frame_from_bob_on(now, "p-alice");
    keys.learn_identity("p-alice", "alice");
    assert!(keys.poll_frame().is_none());
    let f = keys.failures();
    assert_eq!((f.wrong_sender, f.total()), (1, 1));
}

/// A KID naming a leaf no member holds, under the epoch's key: only a
/// member could have made it, posing as someone else.
#[test]
fn a_frame_from_a_leaf_no_member_holds_is_a_wrong_sender() {
    let now = Instant::now();
    let mut keys = keys_through(now, 0);
    keys.decrypt(
        now,
        MediaCodec::Opus,
        &sealed(7, 0, &epoch_key(0), b"x"),
        Ctx("p-bob"),
    );
    assert!(keys.poll_frame().is_none());
    assert_eq!(keys.failures().wrong_sender, 1);
}

#[test]
fn waiting_frames_are_bounded() {
    let now = Instant::now();
    let (mut keys, key) = in_epoch_0_naming_nobody(now);
    let max = crate::unattributed::MAX_HELD;
    for frame in sealed_in_turn(1, 0, &key, max as u32 + 1) {
        keys.decrypt(now, MediaCodec::Opus, &frame, Ctx("p-bob"));
    }
    assert_eq!(keys.waiting(), max);
    assert_eq!(keys.failures().unknown_sender, 1, "the oldest went");
    keys.learn_identity("p-bob", "bob");
    let first = keys.poll_frame().expect("delivered").plaintext;
    assert_eq!(first, 1u32.to_be_bytes());
}
