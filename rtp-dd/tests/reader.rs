//! The reader's state (structure, active decode targets) across packets,
//! custom fields overriding the template, and the typed refusals of both
//! reader and writer.

use rtp_dd::{DdError, Dti, FrameSpec, Reader, Structure, write_frame};

fn spec(frame_number: u16, template_id: u8) -> FrameSpec {
    FrameSpec {
        start_of_frame: true,
        end_of_frame: true,
        frame_number,
        template_id,
    }
}

fn write(f: &FrameSpec, s: &Structure, attach: bool, mask: Option<u32>) -> Vec<u8> {
    let mut buf = [0u8; 255];
    let n = write_frame(f, s, attach, mask, &mut buf).expect("writes");
    buf[..n].to_vec()
}

/// Builds descriptors bit by bit, for what the writer does not produce.
#[derive(Default)]
struct Bits(Vec<bool>);

impl Bits {
    fn put(mut self, v: u32, n: u32) -> Self {
        self.0.extend((0..n).rev().map(|i| v >> i & 1 == 1));
        self
    }
    fn bytes(&self) -> Vec<u8> {
        self.0
            .chunks(8)
            .map(|c| {
                c.iter()
                    .enumerate()
                    .fold(0u8, |b, (i, &x)| b | u8::from(x) << (7 - i))
            })
            .collect()
    }
}

/// The extended descriptor fields' flags, in their order on the wire.
const STRUCTURE: u32 = 1 << 4;
const CUSTOM_DTIS: u32 = 1 << 2;
const CUSTOM_FDIFFS: u32 = 1 << 1;
const CUSTOM_CHAINS: u32 = 1;

/// Mandatory fields plus the five extended flags.
fn head(template_id: u8, frame_number: u16, flags: u32) -> Bits {
    Bits::default()
        .put(0b11, 2)
        .put(u32::from(template_id), 6)
        .put(u32::from(frame_number), 16)
        .put(flags, 5)
}

#[test]
fn active_decode_targets_persist_until_the_next_update_or_structure() {
    let s = Structure::l3t3();
    let mut r = Reader::new();
    assert_eq!(r.active_decode_targets(), 0);
    let key = write(&spec(1, 0), &s, true, None);
    assert_eq!(r.read(&key).unwrap().active_decode_targets, 0x1FF);

    // The top spatial layer goes: the update rides on one packet...
    let n = write(&spec(2, s.template_id(5)), &s, false, Some(0x3F));
    assert!(n.len() > 3);
    assert_eq!(r.read(&n).unwrap().active_decode_targets, 0x3F);
    // ...and holds for the packets after it, which carry none.
    for (i, index) in [10, 1, 6, 3].into_iter().enumerate() {
        let p = write(&spec(3 + i as u16, s.template_id(index)), &s, false, None);
        assert_eq!(p.len(), 3);
        assert_eq!(r.read(&p).unwrap().active_decode_targets, 0x3F);
        assert_eq!(r.active_decode_targets(), 0x3F);
    }
    // A refused packet changes nothing.
    assert_eq!(r.read(&[0x3F, 0, 9]), Err(DdError::UnknownTemplate(63)));
    assert_eq!(r.active_decode_targets(), 0x3F);
    // The next update replaces it.
    let p = write(&spec(9, s.template_id(1)), &s, false, Some(0b1));
    assert_eq!(r.read(&p).unwrap().active_decode_targets, 0b1);
    let p = write(&spec(10, s.template_id(3)), &s, false, None);
    assert_eq!(r.read(&p).unwrap().active_decode_targets, 0b1);

    // A new structure makes every decode target active again...
    let l1t3 = Structure {
        template_id_offset: 20,
        ..Structure::l1t3()
    };
    let key = write(&spec(11, 20), &l1t3, true, None);
    let info = r.read(&key).unwrap();
    assert_eq!(info.active_decode_targets, 0b111);
    assert_eq!(r.structure(), Some(&l1t3));
    let p = write(&spec(12, 22), &l1t3, false, None);
    assert_eq!(r.read(&p).unwrap().active_decode_targets, 0b111);
    // ...unless the keyframe carries its own bitmask.
    let key = write(&spec(13, 0), &s, true, Some(0b000_001_011));
    assert_eq!(r.read(&key).unwrap().active_decode_targets, 0b000_001_011);
    let p = write(&spec(14, s.template_id(2)), &s, false, None);
    let info = r.read(&p).unwrap();
    assert_eq!(info.active_decode_targets, 0b000_001_011);
    assert!(info.is_active(0) && info.is_active(1) && !info.is_active(2) && info.is_active(3));
}

#[test]
fn an_attached_structure_replaces_the_old_one_and_ids_follow_the_offset() {
    let mut r = Reader::new();
    let a = Structure::l1t3();
    r.read(&write(&spec(1, 0), &a, true, None)).unwrap();
    // Template id 4 exists in L1T3 (offset 0) but not in L1T1 at offset 5
    // (ids 5 and 6).
    let b = Structure {
        template_id_offset: 5,
        ..Structure::l1t1()
    };
    assert_eq!(r.read(&[0x04, 0, 2]).unwrap().temporal_id, 2);
    r.read(&write(&spec(3, 5), &b, true, None)).unwrap();
    assert_eq!(r.structure(), Some(&b));
    assert_eq!(r.read(&[0x04, 0, 4]), Err(DdError::UnknownTemplate(4)));
    let info = r.read(&[0x06, 0, 4]).unwrap();
    assert_eq!(
        (info.dtis(), info.fdiffs()),
        (&[Dti::Switch][..], &[1u16][..])
    );
}

#[test]
fn without_a_structure_every_descriptor_is_no_structure() {
    let s = Structure::l1t3();
    let mut r = Reader::new();
    for bytes in [
        vec![0x80, 0, 1],
        write(&spec(1, 1), &s, false, None),
        write(&spec(1, 1), &s, false, Some(0b11)),
        head(0, 1, CUSTOM_DTIS | CUSTOM_FDIFFS | CUSTOM_CHAINS)
            .put(0, 16)
            .bytes(),
    ] {
        assert_eq!(r.read(&bytes), Err(DdError::NoStructure), "{bytes:02x?}");
    }
    assert_eq!(r.read(&[0x80, 0]), Err(DdError::TooShort(2)));
    assert!(r.structure().is_none());
}

#[test]
fn a_keyframe_naming_a_template_its_structure_lacks_is_refused_whole() {
    let s = Structure::l1t3();
    let mut key = write(&spec(1, 0), &s, true, None);
    // Five templates from offset 0: id 5 does not exist.
    key[0] = (key[0] & 0xC0) | 5;
    let mut r = Reader::new();
    assert_eq!(r.read(&key), Err(DdError::UnknownTemplate(5)));
    // The structure of a refused packet is not kept.
    assert!(r.structure().is_none());
    assert_eq!(r.read(&[0x80, 0, 1]), Err(DdError::NoStructure));
    // The writer refuses the same.
    let mut buf = [0u8; 64];
    assert_eq!(
        write_frame(&spec(1, 5), &s, true, None, &mut buf),
        Err(DdError::UnknownTemplate(5))
    );
    assert_eq!(
        write_frame(&spec(1, 5), &s, false, None, &mut buf),
        Err(DdError::UnknownTemplate(5))
    );
}

#[test]
fn custom_fields_override_the_template() {
    let s = Structure::l3t3();
    let mut r = Reader::new();
    r.read(&write(&spec(100, 0), &s, true, None)).unwrap();
    // Template 7 (S1T1) with custom DTIs, frame diffs and chain diffs.
    let dtis = [3u32, 2, 1, 0, 3, 2, 1, 0, 3];
    let mut b = head(7, 200, CUSTOM_DTIS | CUSTOM_FDIFFS | CUSTOM_CHAINS);
    for d in dtis {
        b = b.put(d, 2);
    }
    // frame_fdiffs(): 5 in 4 bits, 300 in 12 bits, 17 in 8 bits, end.
    b = b
        .put(1, 2)
        .put(4, 4)
        .put(3, 2)
        .put(299, 12)
        .put(2, 2)
        .put(16, 8)
        .put(0, 2);
    // frame_chains(): 8 bits each.
    b = b.put(200, 8).put(0, 8).put(17, 8);
    let info = r.read(&b.bytes()).unwrap();
    assert_eq!((info.spatial_id, info.temporal_id), (1, 1));
    assert_eq!(
        info.dtis()
            .iter()
            .map(|d| u32::from(d.code()))
            .collect::<Vec<_>>(),
        dtis
    );
    assert_eq!(info.fdiffs(), [5, 300, 17]);
    assert_eq!(
        info.referred_frames().collect::<Vec<_>>(),
        [195, 65_436, 183]
    );
    assert_eq!(info.chain_fdiffs(), [200, 0, 17]);

    // Only custom chains: DTIs and frame diffs stay the template's.
    let b = head(7, 201, CUSTOM_CHAINS).put(1, 8).put(2, 8).put(3, 8);
    let info = r.read(&b.bytes()).unwrap();
    assert_eq!(info.dtis(), &s.templates[7].dtis[..]);
    assert_eq!(info.fdiffs(), &s.templates[7].fdiffs[..]);
    assert_eq!(info.chain_fdiffs(), [1, 2, 3]);

    // Custom frame diffs may be none at all.
    let b = head(7, 202, CUSTOM_FDIFFS).put(0, 2);
    assert!(r.read(&b.bytes()).unwrap().fdiffs().is_empty());
}

#[test]
fn more_than_16_frame_diffs_are_refused() {
    let s = Structure::l1t1();
    let mut r = Reader::new();
    r.read(&write(&spec(1, 0), &s, true, None)).unwrap();
    let frame = |n: u32| {
        let mut b = head(1, 2, CUSTOM_FDIFFS);
        for i in 0..n {
            b = b.put(1, 2).put(i, 4);
        }
        b.put(0, 2).bytes()
    };
    assert_eq!(r.read(&frame(16)).unwrap().fdiffs().len(), 16);
    assert_eq!(r.read(&frame(17)), Err(DdError::TooManyFdiffs));

    // In a template too: one template with 17 frame diffs.
    let mut b = head(0, 1, STRUCTURE)
        .put(0, 6)
        .put(0, 5)
        .put(3, 2)
        .put(2, 2);
    for _ in 0..17 {
        b = b.put(1, 1).put(0, 4);
    }
    let bytes = b.put(0, 1).put(0, 1).put(0, 1).bytes();
    assert_eq!(Reader::new().read(&bytes), Err(DdError::TooManyFdiffs));
    // The stateless parser has no such limit.
    assert!(rtp_dd::parse(&bytes).is_ok());
}

#[test]
fn the_writer_refuses_what_cannot_be_coded() {
    let mut buf = [0u8; 255];
    let ok = Structure::l1t3();
    let k = spec(1, 0);
    let bad = |s: &Structure| write_frame(&k, s, true, None, &mut [0u8; 255]);
    let mut s = ok.clone();
    s.templates[2].temporal_id = 2;
    assert!(matches!(bad(&s), Err(DdError::InvalidStructure(_))));
    let mut s = ok.clone();
    s.templates[0].spatial_id = 1;
    assert!(matches!(bad(&s), Err(DdError::InvalidStructure(_))));
    let mut s = ok.clone();
    s.templates[1].dtis.pop();
    assert!(matches!(bad(&s), Err(DdError::InvalidStructure(_))));
    let mut s = ok.clone();
    s.templates[1].fdiffs = vec![17];
    assert!(matches!(bad(&s), Err(DdError::InvalidStructure(_))));
    let mut s = ok.clone();
    s.templates[1].fdiffs = vec![1; 17];
    assert_eq!(bad(&s), Err(DdError::TooManyFdiffs));
    let mut s = ok.clone();
    s.templates[1].chain_fdiffs = vec![16];
    assert!(matches!(bad(&s), Err(DdError::InvalidStructure(_))));
    let mut s = ok.clone();
    s.protected_by = vec![0, 1, 0];
    assert!(matches!(bad(&s), Err(DdError::InvalidStructure(_))));
    let mut s = ok.clone();
    s.resolutions = Some(vec![(640, 360), (1280, 720)]);
    assert!(matches!(bad(&s), Err(DdError::InvalidStructure(_))));
    let mut s = ok.clone();
    s.template_id_offset = 64;
    assert!(matches!(bad(&s), Err(DdError::InvalidStructure(_))));

    assert_eq!(
        write_frame(&k, &ok, false, Some(0b1000), &mut buf),
        Err(DdError::InvalidMask(0b1000))
    );
    // 32 decode targets: the whole u32 is a valid mask.
    let mut wide = Structure::l1t1();
    wide.decode_targets = 32;
    wide.chains = 0;
    wide.protected_by.clear();
    for t in &mut wide.templates {
        t.dtis = vec![Dti::Switch; 32];
        t.chain_fdiffs.clear();
    }
    let n = write_frame(&k, &wide, true, Some(u32::MAX - 1), &mut buf).unwrap();
    let mut r = Reader::new();
    let info = r.read(&buf[..n]).unwrap();
    assert_eq!(info.active_decode_targets, u32::MAX - 1);
    assert_eq!(info.dtis().len(), 32);
    assert!(info.chain_fdiffs().is_empty());
    assert_eq!(r.structure(), Some(&wide));
    assert_eq!(wide.all_decode_targets(), u32::MAX);
}

#[test]
fn chains_protecting_no_active_decode_target_can_be_told() {
    let s = Structure::l3t3();
    assert!(s.chain_has_active_decode_target(2, 0x1FF));
    assert!(!s.chain_has_active_decode_target(2, 0x3F));
    assert!(s.chain_has_active_decode_target(1, 0b1000));
    assert!(!s.chain_has_active_decode_target(3, 0x1FF));
}
