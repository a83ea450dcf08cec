//! An independent computation of RFC 9605 against our frames: key and salt by
//! hand with `hkdf` + `sha2` (§4.4.2), the header by hand (§4.3), nonce =
//! salt XOR CTR and AAD = header || metadata (§4.4.3), AEAD with `aes-gcm`.
//! None of this goes through the `sframe` crate, which our code uses.

use std::time::Instant;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use e2ee::frame::{
    DecryptConfig, DropReason, FrameDecryptor, FrameEncryptor, MediaCodec, Suite, base_key_len, kid,
};
use hkdf::Hkdf;
use sha2::{Sha256, Sha512};

fn derive(suite: Suite, base_key: &[u8], kid: u64) -> (Vec<u8>, Vec<u8>) {
    let mut key_label = b"SFrame 1.0 Secret key ".to_vec();
    key_label.extend_from_slice(&kid.to_be_bytes());
    key_label.extend_from_slice(&suite.id().to_be_bytes());
    let mut salt_label = b"SFrame 1.0 Secret salt ".to_vec();
    salt_label.extend_from_slice(&kid.to_be_bytes());
    salt_label.extend_from_slice(&suite.id().to_be_bytes());
    let (nk, nn) = match suite {
        Suite::AesGcm128Sha256 => (16, 12),
        Suite::AesGcm256Sha512 => (32, 12),
        _ => unreachable!("suite added without a test"),
    };
    let mut key = vec![0; nk];
    let mut salt = vec![0; nn];
    match suite {
        Suite::AesGcm128Sha256 => {
            let hk = Hkdf::<Sha256>::new(Some(b""), base_key);
            hk.expand(&key_label, &mut key).expect("key");
            hk.expand(&salt_label, &mut salt).expect("salt");
        }
        _ => {
            let hk = Hkdf::<Sha512>::new(Some(b""), base_key);
            hk.expand(&key_label, &mut key).expect("key");
            hk.expand(&salt_label, &mut salt).expect("salt");
        }
    }
    (key, salt)
}

fn min_be(v: u64) -> Vec<u8> {
    let b = v.to_be_bytes();
    let skip = b.iter().take_while(|&&x| x == 0).count().min(7);
    b[skip..].to_vec()
}

/// RFC 9605 §4.3: `X|KKK|Y|CCC`, then the long KID, then the long CTR.
fn header(kid: u64, ctr: u64) -> Vec<u8> {
    let mut config = 0u8;
    let mut tail = Vec::new();
    if kid < 8 {
        config |= (kid as u8) << 4;
    } else {
        let b = min_be(kid);
        config |= 0x80 | (((b.len() - 1) as u8) << 4);
        tail.extend(b);
    }
    if ctr < 8 {
        config |= ctr as u8;
    } else {
        let b = min_be(ctr);
        config |= 0x08 | ((b.len() - 1) as u8);
        tail.extend(b);
    }
    let mut h = vec![config];
    h.extend(tail);
    h
}

/// `salt XOR encode_big_endian(CTR, Nn)`; Nn is 12 for every listed suite.
fn nonce(salt: &[u8], ctr: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&ctr.to_be_bytes());
    for (a, b) in n.iter_mut().zip(salt) {
        *a ^= b;
    }
    n
}

fn aead_seal(suite: Suite, key: &[u8], nonce: [u8; 12], aad: &[u8], pt: &[u8]) -> Vec<u8> {
    let payload = Payload { msg: pt, aad };
    let nonce = &Nonce::from(nonce);
    match suite {
        Suite::AesGcm128Sha256 => Aes128Gcm::new_from_slice(key)
            .expect("key")
            .encrypt(nonce, payload),
        _ => Aes256Gcm::new_from_slice(key)
            .expect("key")
            .encrypt(nonce, payload),
    }
    .expect("seal")
}

fn aead_open(suite: Suite, key: &[u8], nonce: [u8; 12], aad: &[u8], ct: &[u8]) -> Option<Vec<u8>> {
    let payload = Payload { msg: ct, aad };
    let nonce = &Nonce::from(nonce);
    match suite {
        Suite::AesGcm128Sha256 => Aes128Gcm::new_from_slice(key)
            .expect("key")
            .decrypt(nonce, payload),
        _ => Aes256Gcm::new_from_slice(key)
            .expect("key")
            .decrypt(nonce, payload),
    }
    .ok()
}

fn base_key(suite: Suite, seed: u8) -> Vec<u8> {
    (0..base_key_len(suite))
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

#[test]
fn our_encryptor_output_opens_with_hand_derived_keys() {
    for suite in Suite::ALL {
        let (leaf, epoch) = (5u32, 300u64);
        let base = base_key(suite, 1);
        let kid = kid(leaf, epoch);
        assert_eq!(kid, (5 << 8) | 44);
        let (key, salt) = derive(suite, &base, kid);

        let mut enc = FrameEncryptor::new(suite, leaf);
        enc.set_epoch(epoch, &base).expect("epoch");
        let mut out = Vec::new();
        for ctr in 0..20u64 {
            let metadata = [u8::from(ctr % 10 == 0)];
            let plaintext: Vec<u8> = (0..(ctr * 37) as usize).map(|i| i as u8).collect();
            enc.encrypt(&plaintext, &metadata, &mut out)
                .expect("encrypt");

            let h = header(kid, ctr);
            assert_eq!(&out[..h.len()], &h[..], "{suite} ctr {ctr}");
            let aad = [&h[..], &metadata[..]].concat();
            let opened = aead_open(suite, &key, nonce(&salt, ctr), &aad, &out[h.len()..]);
            assert_eq!(opened.as_deref(), Some(&plaintext[..]), "{suite} ctr {ctr}");
            // The metadata is authenticated: the other value does not open.
            let other = [&h[..], &[metadata[0] ^ 1][..]].concat();
            assert!(aead_open(suite, &key, nonce(&salt, ctr), &other, &out[h.len()..]).is_none());
        }
    }
}

#[test]
fn hand_sealed_frames_open_with_our_decryptor() {
    let now = Instant::now();
    for suite in Suite::ALL {
        let (leaf, epoch) = (1234u32, 7u64);
        let base = base_key(suite, 2);
        let kid = kid(leaf, epoch);
        let (key, salt) = derive(suite, &base, kid);
        let mut dec = FrameDecryptor::new(suite, DecryptConfig::default());
        dec.add_epoch(now, epoch, &base).expect("epoch");

        for ctr in [0u64, 1, 7, 8, 255, 256, 70_000, 1 << 40] {
            let metadata = [1u8];
            let plaintext = format!("frame {ctr}").into_bytes();
            let h = header(kid, ctr);
            let aad = [&h[..], &metadata[..]].concat();
            let frame = [
                h.clone(),
                aead_seal(suite, &key, nonce(&salt, ctr), &aad, &plaintext),
            ]
            .concat();

            assert_eq!(
                dec.decrypt(now, &frame, &[0], ()).err(),
                Some(DropReason::AuthFailed),
                "wrong metadata must not open"
            );
            let d = dec
                .decrypt(now, &frame, &metadata, ())
                .expect("decrypt")
                .expect("current epoch");
            assert_eq!(d.plaintext, plaintext);
            assert_eq!((d.sender_leaf, d.epoch, d.counter), (leaf, epoch, ctr));
        }
        assert_eq!(dec.held_keys(), vec![(kid, key, salt)]);
        assert_eq!(dec.drops().auth_failed, 8);
        assert_eq!(dec.drops().total(), 8);
    }
}

/// A VP8 keyframe (frame tag with P = 0, start code, 640x360) and a delta
/// frame (P = 1), each followed by `body`.
fn vp8(keyframe: bool, body: &[u8]) -> Vec<u8> {
    let head: &[u8] = if keyframe {
        &[0x50, 0x2d, 0x01, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01]
    } else {
        &[0x31, 0x07, 0x00]
    };
    [head, body].concat()
}

/// The media format by hand: `prefix || header || AEAD(rest)` with
/// AAD = `header || prefix`, the prefix being 10 bytes of a VP8 keyframe, 3
/// of a VP8 delta frame and none of an Opus frame.
#[test]
fn media_frames_match_a_hand_computation_both_ways() {
    let now = Instant::now();
    let suite = Suite::default();
    let (leaf, epoch) = (3u32, 9u64);
    let base = base_key(suite, 3);
    let kid = kid(leaf, epoch);
    let (key, salt) = derive(suite, &base, kid);
    let mut enc = FrameEncryptor::new(suite, leaf);
    enc.set_epoch(epoch, &base).expect("epoch");
    let mut dec = FrameDecryptor::new(suite, DecryptConfig::default());
    dec.add_epoch(now, epoch, &base).expect("epoch");

    let body: Vec<u8> = (0..500).map(|i| i as u8).collect();
    let cases = [
        (MediaCodec::Vp8, vp8(true, &body), 10),
        (MediaCodec::Vp8, vp8(false, &body), 3),
        (MediaCodec::Opus, body.clone(), 0),
        (MediaCodec::Vp9, body.clone(), 0),
    ];
    let mut wire = Vec::new();
    for (ctr, (codec, frame, clear)) in (0u64..).zip(cases) {
        enc.encrypt_media(codec, &frame, &mut wire)
            .expect("encrypt");
        let (prefix, rest) = frame.split_at(clear);
        let h = header(kid, ctr);
        let aad = [&h[..], prefix].concat();
        let expected = [
            prefix,
            &h[..],
            &aead_seal(suite, &key, nonce(&salt, ctr), &aad, rest),
        ]
        .concat();
        assert_eq!(wire, expected, "{codec:?} frame {ctr}");

        let opened = dec
            .decrypt_media(now, codec, &wire, ())
            .expect("decrypt")
            .expect("current epoch");
        assert_eq!(
            opened.plaintext, frame,
            "{codec:?}: the whole frame comes back"
        );
        assert_eq!((opened.sender_leaf, opened.counter), (leaf, ctr));
    }
}

#[test]
fn a_changed_clear_prefix_fails_authentication() {
    let now = Instant::now();
    let suite = Suite::default();
    let base = base_key(suite, 4);
    let mut enc = FrameEncryptor::new(suite, 1);
    enc.set_epoch(2, &base).expect("epoch");
    let mut dec = FrameDecryptor::new(suite, DecryptConfig::default());
    dec.add_epoch(now, 2, &base).expect("epoch");
    let mut wire = Vec::new();
    let mut drops = 0;
    for keyframe in [true, false] {
        let frame = vp8(keyframe, b"picture data");
        enc.encrypt_media(MediaCodec::Vp8, &frame, &mut wire)
            .expect("encrypt");
        let clear = MediaCodec::Vp8.clear_prefix_len(&frame);
        // Every bit of the clear prefix, including the keyframe bit that
        // decides how long the prefix is.
        for bit in 0..clear * 8 {
            let mut tampered = wire.clone();
            tampered[bit / 8] ^= 1 << (bit % 8);
            // A tampered prefix fails authentication; one whose flipped
            // keyframe bit moves the split makes the header unreadable or
            // names an unknown epoch, and is held until it expires.
            let result = dec.decrypt_media(now, MediaCodec::Vp8, &tampered, ());
            assert!(
                matches!(result, Err(_) | Ok(None)),
                "keyframe {keyframe}, bit {bit}: {result:?}"
            );
            drops += 1;
        }
        // Read as another codec, the split moves and nothing opens.
        let result = dec.decrypt_media(now, MediaCodec::Opus, &wire, ());
        assert!(matches!(result, Err(_) | Ok(None)), "{result:?}");
        drops += 1;
        let opened = dec
            .decrypt_media(now, MediaCodec::Vp8, &wire, ())
            .expect("untouched frame opens")
            .expect("current epoch");
        assert_eq!(opened.plaintext, frame);
    }
    dec.handle_timeout(now + DecryptConfig::default().pending_timeout);
    assert_eq!(dec.drops().total(), drops, "every tampered frame counted");
    assert!(dec.drops().auth_failed >= 8 * 10, "{:?}", dec.drops());
}

#[test]
fn a_media_frame_held_for_its_epoch_comes_back_whole() {
    let now = Instant::now();
    let suite = Suite::default();
    let (old, new) = (base_key(suite, 5), base_key(suite, 6));
    let mut enc = FrameEncryptor::new(suite, 2);
    enc.set_epoch(11, &new).expect("epoch");
    let mut dec = FrameDecryptor::new(suite, DecryptConfig::default());
    dec.add_epoch(now, 10, &old).expect("epoch");

    let frame = vp8(true, b"first picture under the new key");
    let mut wire = Vec::new();
    enc.encrypt_media(MediaCodec::Vp8, &frame, &mut wire)
        .expect("encrypt");
    assert!(
        dec.decrypt_media(now, MediaCodec::Vp8, &wire, "cam")
            .expect("held")
            .is_none()
    );
    dec.add_epoch(now, 11, &new).expect("epoch");
    let ready = dec.poll_ready().expect("released by the new epoch");
    assert_eq!(
        (ready.plaintext, ready.epoch, ready.ctx),
        (frame, 11, "cam")
    );
}
