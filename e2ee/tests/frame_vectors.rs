//! RFC 9605 Appendix C test vectors through our own encrypt and decrypt paths.
//!
//! The values are the RFC's published ones (Appendix C.3 `SFrame
//! Encryption/Decryption`), also shipped as `test-vectors.json` by the
//! `sframe` crate. The AES-CTR/HMAC suites (0x0001-0x0003) are left out: the
//! crate's `ring` backend, which we build with, does not implement them.

use std::time::Instant;

use e2ee::frame::{
    DecryptConfig, FrameDecryptor, FrameEncryptor, Suite, kid, open, seal, split_kid,
};

struct Vector {
    suite: Suite,
    kid: u64,
    ctr: u64,
    base_key: &'static str,
    sframe_key: &'static str,
    sframe_salt: &'static str,
    metadata: &'static str,
    plaintext: &'static str,
    ciphertext: &'static str,
}

const VECTORS: [Vector; 2] = [
    Vector {
        suite: Suite::AesGcm128Sha256,
        kid: 0x123,
        ctr: 0x4567,
        base_key: "000102030405060708090a0b0c0d0e0f",
        sframe_key: "d34f547f4ca4f9a7447006fe7fcbf768",
        sframe_salt: "75234edefe07819026751816",
        metadata: "4945544620534672616d65205747",
        plaintext: "64726166742d696574662d736672616d652d656e63",
        ciphertext: "9901234567b7412c2513a1b66dbb48841bbaf17f598751176ad847681a69c6d0b091c07018ce4adb34eb",
    },
    Vector {
        suite: Suite::AesGcm256Sha512,
        kid: 0x123,
        ctr: 0x4567,
        base_key: "000102030405060708090a0b0c0d0e0f",
        sframe_key: "d3e27b0d4a5ae9e55df01a70e6d4d28d969b246e2936f4b7a5d9b494da6b9633",
        sframe_salt: "84991c167b8cd23c93708ec7",
        metadata: "4945544620534672616d65205747",
        plaintext: "64726166742d696574662d736672616d652d656e63",
        ciphertext: "990123456794f509d36e9beacb0e261d99c7d1e972f1fed787d4049f17ca21353c1cc24d56ceabced279",
    },
];

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex")
}

#[test]
fn seal_matches_and_open_recovers_every_suite() {
    for v in &VECTORS {
        let mut out = Vec::new();
        seal(
            v.suite,
            &h(v.base_key),
            v.kid,
            v.ctr,
            &h(v.metadata),
            &h(v.plaintext),
            &mut out,
        )
        .expect("seal");
        assert_eq!(hex::encode(&out), v.ciphertext, "{}", v.suite);

        let opened = open(v.suite, &h(v.base_key), &h(v.ciphertext), &h(v.metadata)).expect("open");
        assert_eq!((opened.kid, opened.ctr), (v.kid, v.ctr));
        assert_eq!(opened.plaintext, h(v.plaintext), "{}", v.suite);
    }
}

/// The vector's KID 0x123 is leaf 1 in an epoch whose low bits are 0x23, so
/// the full encryptor and decryptor can reproduce it: the encryptor once its
/// counter reaches 0x4567.
#[test]
fn frame_encryptor_and_decryptor_reproduce_the_default_suite_vector() {
    let v = &VECTORS[0];
    let (leaf, epoch_bits) = split_kid(v.kid);
    assert_eq!((leaf, epoch_bits), (1, 0x23));
    let epoch = 0x23;
    assert_eq!(kid(leaf, epoch), v.kid);

    let mut enc = FrameEncryptor::new(v.suite, leaf);
    enc.set_epoch(epoch, &h(v.base_key)).expect("epoch");
    let mut out = Vec::new();
    for _ in 0..v.ctr {
        enc.encrypt(&h(v.plaintext), &h(v.metadata), &mut out)
            .expect("encrypt");
    }
    enc.encrypt(&h(v.plaintext), &h(v.metadata), &mut out)
        .expect("encrypt");
    assert_eq!(hex::encode(&out), v.ciphertext);

    let now = Instant::now();
    let mut dec = FrameDecryptor::new(v.suite, DecryptConfig::default());
    dec.add_epoch(now, epoch, &h(v.base_key)).expect("epoch");
    let d = dec
        .decrypt(now, &h(v.ciphertext), &h(v.metadata), "ctx")
        .expect("decrypt")
        .expect("not held back");
    assert_eq!(d.plaintext, h(v.plaintext));
    assert_eq!(
        (d.sender_leaf, d.epoch, d.counter, d.ctx),
        (1, epoch, v.ctr, "ctx")
    );

    // The keys it now holds are the vector's sframe_key and sframe_salt.
    assert_eq!(
        dec.held_keys(),
        vec![(v.kid, h(v.sframe_key), h(v.sframe_salt))]
    );
}

/// Header encodings from RFC 9605 Appendix C.1, through the encryptor: the
/// header is the first bytes of a sealed frame.
#[test]
fn header_encodings() {
    let all_ff = "ff".repeat(17);
    let cases: [(u64, u64, &str); 8] = [
        (0, 0, "00"),
        (0, 7, "07"),
        (0, 8, "0808"),
        (0, 256, "090100"),
        (7, 0, "70"),
        (8, 0, "8008"),
        (0x123, 0x4567, "9901234567"),
        (u64::MAX, u64::MAX, &all_ff),
    ];
    for (kid, ctr, header) in cases {
        let mut out = Vec::new();
        seal(Suite::default(), &[0; 16], kid, ctr, &[], b"x", &mut out).expect("seal");
        assert_eq!(
            hex::encode(&out[..header.len() / 2]),
            header,
            "kid {kid} ctr {ctr}"
        );
        assert_eq!(out.len(), header.len() / 2 + 1 + 16);
    }
}
