//! The SFrame keys a member uses come from its MLS epoch exactly as RFC 9605
//! §5.2 says, checked against an independent computation: the base key is
//! `MLS-Exporter("SFrame 1.0 Base Key", "", Nk)` (the same bytes every
//! member exports, and different every epoch), and the per-sender key and
//! salt derived by hand with `hkdf` + `sha2` from that base key and
//! `KID = (leaf << 8) | (epoch mod 256)` are the ones our decryptor holds
//! and that open our encryptor's frames with plain `aes-gcm`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use e2ee::frame::{DecryptConfig, FrameDecryptor, FrameEncryptor, Suite, base_key_len, kid};
use hkdf::Hkdf;
use sha2::Sha256;
use std::time::Instant;

fn by_hand(base_key: &[u8], kid: u64) -> (Vec<u8>, Vec<u8>) {
    let suite = 0x0004u16.to_be_bytes();
    let label = |what: &str| {
        let mut l = format!("SFrame 1.0 Secret {what} ").into_bytes();
        l.extend_from_slice(&kid.to_be_bytes());
        l.extend_from_slice(&suite);
        l
    };
    let hk = Hkdf::<Sha256>::new(Some(b""), base_key);
    let (mut key, mut salt) = (vec![0; 16], vec![0; 12]);
    hk.expand(&label("key"), &mut key).expect("key");
    hk.expand(&label("salt"), &mut salt).expect("salt");
    (key, salt)
}

#[test]
fn sframe_keys_follow_rfc_9605_section_5_2_from_the_mls_exporter() {
    let mut members = testkit::mls::group(&["alice", "bob", "carol"]);
    let nk = base_key_len(Suite::default());
    assert_eq!(nk, 16);
    let epoch = members[0].epoch().expect("epoch");
    let base: Vec<Vec<u8>> = members
        .iter()
        .map(|m| m.sframe_base_key(nk).expect("export"))
        .collect();
    assert!(
        base.iter().all(|b| *b == base[0] && b.len() == nk),
        "every member exports the same base key"
    );
    assert_eq!(
        base[0],
        members[1]
            .export_secret("SFrame 1.0 Base Key", b"", nk)
            .expect("exporter"),
        "the base key is the MLS exporter with the RFC's label and empty context"
    );
    assert_ne!(
        base[0],
        members[0]
            .export_secret("SFrame 1.0 Base Key", b"x", nk)
            .expect("exporter")
    );

    let alice_leaf = members[0].own_leaf().expect("leaf");
    let mut enc = FrameEncryptor::new(Suite::default(), alice_leaf);
    enc.set_epoch(epoch, &base[0]).expect("epoch");
    let plaintext = b"an encoded frame".to_vec();
    let mut frame = Vec::new();
    enc.encrypt(&plaintext, &[1], &mut frame).expect("encrypt");

    let mut dec: FrameDecryptor<()> =
        FrameDecryptor::new(Suite::default(), DecryptConfig::default());
    dec.add_epoch(Instant::now(), epoch, &base[1])
        .expect("epoch");
    let got = dec
        .decrypt(Instant::now(), &frame, &[1], ())
        .expect("no drop")
        .expect("decrypted");
    assert_eq!(got.plaintext, plaintext);
    assert_eq!(got.sender_leaf, alice_leaf);

    let alice_kid = kid(alice_leaf, epoch);
    assert_eq!(alice_kid, (u64::from(alice_leaf) << 8) | (epoch & 0xff));
    let (key, salt) = by_hand(&base[0], alice_kid);
    assert_eq!(
        dec.held_keys(),
        vec![(alice_kid, key.clone(), salt.clone())],
        "our derivation equals the hand one"
    );

    // Open alice's frame by hand: header is config byte, KID, CTR 0.
    let header_len = frame.len() - plaintext.len() - 16;
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&salt); // CTR 0: salt XOR 0
    let mut aad = frame[..header_len].to_vec();
    aad.push(1);
    let opened = Aes128Gcm::new_from_slice(&key)
        .expect("key")
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: &frame[header_len..],
                aad: &aad,
            },
        )
        .expect("opens by hand");
    assert_eq!(opened, plaintext);

    // A new epoch gives a new base key, and so new keys for the same leaf.
    let commit = members[1].self_update().expect("update");
    members[1].merge_pending_commit().expect("merge");
    members[0].process(&commit.commit).expect("process");
    let next = members[0].sframe_base_key(nk).expect("export");
    assert_eq!(next, members[1].sframe_base_key(nk).expect("export"));
    assert_ne!(next, base[0]);
    assert_ne!(by_hand(&next, kid(alice_leaf, epoch + 1)).0, key);
}
