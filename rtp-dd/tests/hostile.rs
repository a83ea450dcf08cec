//! Hostile input: truncated and random descriptors give `Ok` or a typed
//! error, never a panic, and a refused packet never changes the reader.

use rtp_dd::{DdError, FrameSpec, Reader, Structure, write_frame};
use testkit::rng::Rng;

fn keyframe(s: &Structure, mask: Option<u32>) -> Vec<u8> {
    let f = FrameSpec {
        start_of_frame: true,
        end_of_frame: false,
        frame_number: 0xFFFE,
        template_id: s.template_id(0),
    };
    let mut buf = [0u8; 255];
    let n = write_frame(&f, s, true, mask, &mut buf).expect("writes");
    buf[..n].to_vec()
}

fn structures() -> Vec<Structure> {
    let mut with_res = Structure::l3t3();
    with_res.template_id_offset = 40;
    with_res.resolutions = Some(vec![(320, 180), (640, 360), (1280, 720)]);
    vec![
        Structure::l1t1(),
        Structure::l1t3(),
        Structure::l3t3(),
        with_res,
    ]
}

/// A reader that has read `s`'s keyframe.
fn primed(s: &Structure) -> Reader {
    let mut r = Reader::new();
    r.read(&keyframe(s, None)).expect("keyframe");
    r
}

#[test]
fn every_truncation_of_a_keyframe_is_a_typed_error() {
    for s in structures() {
        for mask in [None, Some(1)] {
            let key = keyframe(&s, mask);
            for n in 0..key.len() {
                let mut fresh = Reader::new();
                let got = fresh.read(&key[..n]);
                match got {
                    Err(DdError::TooShort(len)) => assert!(n < 3 && len == n),
                    // Three bytes are a complete mandatory-only descriptor,
                    // which needs a structure this reader lacks.
                    Err(DdError::NoStructure) => assert_eq!(n, 3),
                    Err(DdError::Truncated) => assert!(n > 3),
                    other => panic!("prefix {n} of {}: {other:?}", key.len()),
                }
                assert!(fresh.structure().is_none());
                // A reader with a structure already: the prefix is refused
                // (or, at 3 bytes, read against the kept structure) and the
                // kept state survives.
                let mut r = primed(&s);
                let before = (r.structure().cloned(), r.active_decode_targets());
                match r.read(&key[..n]) {
                    Ok(info) => assert!(n == 3 && !info.structure_attached),
                    Err(_) => {
                        assert_eq!((r.structure().cloned(), r.active_decode_targets()), before)
                    }
                }
            }
            assert!(Reader::new().read(&key).is_ok());
        }
    }
}

#[test]
fn truncated_extended_packets_are_typed_errors() {
    for s in structures() {
        let mut buf = [0u8; 255];
        let f = FrameSpec {
            start_of_frame: false,
            end_of_frame: true,
            frame_number: 3,
            template_id: s.template_id(1),
        };
        let n = write_frame(&f, &s, false, Some(s.all_decode_targets() >> 1), &mut buf).unwrap();
        let mut r = primed(&s);
        for k in 4..n {
            // A bitmask cut short (4 bytes of a longer descriptor) is
            // truncated; the 3-byte prefix is a valid packet on its own.
            assert_eq!(r.read(&buf[..k]), Err(DdError::Truncated), "{k}");
        }
        assert!(r.read(&buf[..n]).is_ok());
    }
}

#[test]
fn random_bytes_never_panic_on_fresh_or_primed_readers() {
    let mut rng = Rng::new(0xDD_5EED);
    let structures = structures();
    let mut primed: Vec<Reader> = structures.iter().map(primed).collect();
    let (mut ok, mut attached, mut errors) = (0u32, 0u32, 0u32);
    for i in 0..20_000u32 {
        let len = rng.below(64);
        let mut buf = rng.bytes(len);
        // Most inputs claim an attached structure, to reach deep into the
        // structure reader; a quarter claim none, for the primed readers.
        if len > 3 && i % 4 != 0 {
            buf[3] |= 0x80;
        } else if len > 3 {
            buf[3] &= 0x7F;
        }
        // Half of those name the structure's first template (id =
        // template_id_offset, the 6 bits after the 5 flags), which random
        // bytes rarely do.
        if len > 4 && i % 2 == 1 {
            let offset = (buf[3] & 0x07) << 3 | buf[4] >> 5;
            buf[0] = (buf[0] & 0xC0) | offset;
        }
        let mut fresh = Reader::new();
        match fresh.read(&buf) {
            Ok(info) => {
                ok += 1;
                attached += u32::from(info.structure_attached);
                let s = fresh
                    .structure()
                    .expect("an accepted packet leaves a structure");
                // Whatever the reader accepts, the writer can code again.
                assert_eq!(s.validate(), Ok(()));
                assert_eq!(info.dtis().len(), usize::from(s.decode_targets));
                assert_eq!(info.chain_fdiffs().len(), usize::from(s.chains));
                let t = s.template(info.template_id).expect("template");
                assert_eq!(
                    (info.spatial_id, info.temporal_id),
                    (t.spatial_id, t.temporal_id)
                );
                // The stateless parser accepts it too, with the same fields.
                let d = rtp_dd::parse(&buf).expect("parse agrees");
                assert_eq!(
                    (
                        d.start_of_frame,
                        d.end_of_frame,
                        d.template_id,
                        d.frame_number
                    ),
                    (
                        info.start_of_frame,
                        info.end_of_frame,
                        info.template_id,
                        info.frame_number
                    )
                );
                assert!(d.structure_attached);
            }
            Err(e) => {
                errors += 1;
                assert!(fresh.structure().is_none(), "{e}");
            }
        }
        for (r, s) in primed.iter_mut().zip(&structures) {
            let before = r.active_decode_targets();
            match r.read(&buf) {
                Ok(info) => {
                    let kept = r.structure().expect("structure");
                    assert_eq!(info.dtis().len(), usize::from(kept.decode_targets));
                    if !info.structure_attached {
                        assert_eq!(kept, s);
                    }
                }
                Err(_) => assert_eq!(r.active_decode_targets(), before),
            }
            // Put the reader back on its structure for the next input.
            if r.structure() != Some(s) {
                *r = self::primed(s);
            }
        }
    }
    // The generator reaches both outcomes, including accepted structures.
    assert!(
        ok > 500 && attached > 500 && errors > 5_000,
        "ok {ok}, attached {attached}, errors {errors}"
    );
}

#[test]
fn frames_naming_templates_the_structure_lacks_are_unknown_template() {
    for s in structures() {
        let mut r = primed(&s);
        let n = s.templates.len();
        for index in n..64 {
            let id = s.template_id(index);
            assert_eq!(
                r.read(&[0x80 | id, 0, 1]),
                Err(DdError::UnknownTemplate(id))
            );
        }
        for index in 0..n {
            assert!(r.read(&[s.template_id(index), 0, 1]).is_ok());
        }
    }
}
