//! The built-in structures: their tables checked against the spec's
//! definitions on a simulated stream, their coding (round trip and a
//! hand-derived byte vector), and a structure captured from Chrome.

use std::collections::{BTreeMap, BTreeSet};

use rtp_dd::{Dti, FrameInfo, FrameSpec, Reader, Structure, Template, write_frame};

fn spec(sof: bool, eof: bool, frame_number: u16, template_id: u8) -> FrameSpec {
    FrameSpec {
        start_of_frame: sof,
        end_of_frame: eof,
        frame_number,
        template_id,
    }
}

fn write(f: &FrameSpec, s: &Structure, attach: bool, mask: Option<u32>) -> Vec<u8> {
    let mut buf = [0u8; 255];
    let n = write_frame(f, s, attach, mask, &mut buf).expect("writes");
    buf[..n].to_vec()
}

/// The frame follows template `t` exactly.
fn assert_follows(info: &FrameInfo, t: &Template, what: &str) {
    assert_eq!(
        (info.spatial_id, info.temporal_id),
        (t.spatial_id, t.temporal_id),
        "{what}"
    );
    assert_eq!(info.dtis(), &t.dtis[..], "{what}");
    assert_eq!(info.fdiffs(), &t.fdiffs[..], "{what}");
    assert_eq!(info.chain_fdiffs(), &t.chain_fdiffs[..], "{what}");
}

fn all() -> [(&'static str, Structure); 3] {
    [
        ("L1T1", Structure::l1t1()),
        ("L1T3", Structure::l1t3()),
        ("L3T3", Structure::l3t3()),
    ]
}

#[test]
fn built_in_structures_are_valid_with_the_expected_decode_targets() {
    for (name, s) in all() {
        assert_eq!(s.validate(), Ok(()), "{name}");
    }
    assert_eq!(Structure::l1t1().decode_target_layers(), [(0, 0)]);
    assert_eq!(
        Structure::l1t3().decode_target_layers(),
        [(0, 0), (0, 1), (0, 2)]
    );
    let l3t3: Vec<(u8, u8)> = (0..3).flat_map(|s| (0..3).map(move |t| (s, t))).collect();
    assert_eq!(Structure::l3t3().decode_target_layers(), l3t3);
    assert_eq!(Structure::l3t3().protected_by, [0, 0, 0, 1, 1, 1, 2, 2, 2]);
    assert_eq!(Structure::l3t3().max_spatial_id(), 2);
}

#[test]
fn template_ids_count_from_the_offset_modulo_64() {
    let mut s = Structure::l1t3();
    s.template_id_offset = 62;
    assert_eq!(
        (0..5).map(|i| s.template_id(i)).collect::<Vec<_>>(),
        [62, 63, 0, 1, 2]
    );
    assert_eq!(s.template(62), Some(&s.templates[0]));
    assert_eq!(s.template(0), Some(&s.templates[2]));
    assert_eq!(s.template(2), Some(&s.templates[4]));
    assert_eq!(s.template(3), None);
    assert_eq!(s.template(61), None);
    s.template_id_offset = 0;
    assert_eq!(s.template(4), Some(&s.templates[4]));
    assert_eq!(s.template(5), None);
    assert_eq!(s.template(63), None);
}

/// Which template each frame of a stream uses, as a sender of these
/// structures picks them: temporal cycle T0 T2 T1 T2, S0 first in a unit.
fn pattern(name: &str, units: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for u in 0..units {
        let key = u == 0;
        let pos = u % 4;
        match name {
            "L1T1" => out.push(usize::from(!key)),
            "L1T3" => out.push(if key { 0 } else { [1, 3, 2, 4][pos] }),
            "L3T3" => {
                out.push(if key { 0 } else { [1, 3, 2, 4][pos] });
                out.push(if key { 5 } else { [6, 8, 7, 9][pos] });
                out.push(if key { 10 } else { [11, 13, 12, 14][pos] });
            }
            _ => unreachable!(),
        }
    }
    out
}

/// Writes a stream of `units` temporal units, the structure attached to
/// the keyframe, every frame in two packets; reads it back with one
/// reader. Returns the frames (from their first packets) in order.
fn stream(name: &str, s: &Structure, first: u16, units: usize) -> Vec<FrameInfo> {
    let mut reader = Reader::new();
    let mut frames = Vec::new();
    for (i, &index) in pattern(name, units).iter().enumerate() {
        let n = first.wrapping_add(i as u16);
        let id = s.template_id(index);
        let head = reader
            .read(&write(&spec(true, false, n, id), s, i == 0, None))
            .expect("first packet");
        let tail = reader
            .read(&write(&spec(false, true, n, id), s, false, None))
            .expect("last packet");
        assert_eq!(head.structure_attached, i == 0);
        assert!(!tail.structure_attached);
        assert_follows(
            &head,
            &s.templates[index],
            &format!("{name} frame {i} head"),
        );
        assert_follows(
            &tail,
            &s.templates[index],
            &format!("{name} frame {i} tail"),
        );
        assert_eq!(head.active_decode_targets, s.all_decode_targets());
        frames.push(head);
    }
    frames
}

/// Checks the built-in tables against the definitions of the spec, on a
/// simulated stream of 3 cycles:
/// - a frame only refers to earlier frames of its own or lower layers,
///   and every frame it refers to is part of each decode target it is;
/// - `D`: no later frame of the decode target refers to it;
/// - `S`: with this frame and what it depends on decoded, every later
///   frame of the decode target can be decoded in order (and a later frame
///   refers to it: otherwise it is marked `D`);
/// - `R`: referred to by a later frame of the decode target (otherwise it
///   should be `D`), and not a switch point for it... unless it is one,
///   which the table would then undersell: both are checked;
/// - chains: chain `c` holds the T0 frames of spatial layers `0..=c`, and
///   each chain diff points at the latest such frame before the frame
///   (0 on the keyframe).
#[test]
fn built_in_tables_match_the_definitions_on_a_stream() {
    for (name, s) in all() {
        // Start near the wrap to cover modular frame diffs.
        let frames = stream(name, &s, 65_530, 13);
        let first = frames[0].frame_number;
        let idx = |f: &FrameInfo| usize::from(f.frame_number.wrapping_sub(first));
        let refs: Vec<Vec<usize>> = frames
            .iter()
            .map(|f| {
                f.referred_frames()
                    .map(|r| usize::from(r.wrapping_sub(first)))
                    .collect()
            })
            .collect();
        let deps = |i: usize| -> BTreeSet<usize> {
            let mut set = BTreeSet::from([i]);
            let mut todo = vec![i];
            while let Some(j) = todo.pop() {
                for &r in &refs[j] {
                    if set.insert(r) {
                        todo.push(r);
                    }
                }
            }
            set
        };
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(idx(f), i);
            for &r in &refs[i] {
                let g = &frames[r];
                assert!(r < i, "{name} frame {i} refers forward");
                assert!(
                    g.spatial_id <= f.spatial_id && g.temporal_id <= f.temporal_id,
                    "{name} frame {i} refers up to frame {r}"
                );
                for dt in 0..usize::from(s.decode_targets) {
                    if f.dti(dt).is_present() {
                        assert!(
                            g.dti(dt).is_present(),
                            "{name} frame {i} dt {dt}: ref {r} absent"
                        );
                    }
                }
            }
        }
        let cycle_end = frames.len() - pattern(name, 4).len();
        for dt in 0..usize::from(s.decode_targets) {
            for (i, f) in frames.iter().enumerate() {
                let later: Vec<usize> = (i + 1..frames.len())
                    .filter(|&j| frames[j].dti(dt).is_present())
                    .collect();
                let referred = later.iter().any(|&j| refs[j].contains(&i));
                let switch = {
                    let mut decoded = deps(i);
                    later.iter().all(|&j| {
                        let ok = refs[j].iter().all(|r| decoded.contains(r));
                        decoded.insert(j);
                        ok
                    })
                };
                let what = format!("{name} frame {i} dt {dt}: {:?}", f.dti(dt));
                match f.dti(dt) {
                    Dti::NotPresent => {}
                    Dti::Discardable => assert!(!referred, "{what} is referred to"),
                    Dti::Switch => {
                        assert!(switch, "{what} is no switch point");
                        // By the convention of the spec's examples a switch
                        // point nothing refers to is marked D instead.
                        assert!(referred || i >= cycle_end, "{what}: should be D");
                    }
                    // Only judged where a whole cycle follows: at the end
                    // of the stream nothing refers to anything.
                    Dti::Required if i < cycle_end => {
                        assert!(referred, "{what}: nothing refers to it");
                        assert!(!switch, "{what}: is a switch point");
                    }
                    Dti::Required => {}
                }
            }
        }
        for (i, f) in frames.iter().enumerate() {
            for c in 0..usize::from(s.chains) {
                let in_chain = |g: &FrameInfo| g.temporal_id == 0 && usize::from(g.spatial_id) <= c;
                let want = (0..i)
                    .rev()
                    .find(|&j| in_chain(&frames[j]))
                    .map_or(0, |j| i - j);
                assert_eq!(
                    usize::from(f.chain_fdiffs()[c]),
                    want,
                    "{name} frame {i} chain {c}"
                );
            }
        }
        // Each decode target is protected by the chain of its spatial layer.
        for (dt, &c) in s.protected_by.iter().enumerate() {
            assert_eq!(c, s.decode_target_layer(dt).0, "{name} dt {dt}");
        }
    }
}

#[test]
fn every_structure_round_trips_attached_to_a_keyframe() {
    for (name, mut s) in all() {
        for offset in [0u8, 61] {
            s.template_id_offset = offset;
            s.resolutions = (offset != 0).then(|| {
                (0..=s.max_spatial_id())
                    .map(|sid| (320u32 << sid, 180u32 << sid))
                    .collect()
            });
            let mut reader = Reader::new();
            let key = write(&spec(true, false, 7, s.template_id(0)), &s, true, None);
            let info = reader.read(&key).expect(name);
            assert!(
                info.is_keyframe_start() && info.structure_attached,
                "{name}"
            );
            assert_eq!(reader.structure(), Some(&s), "{name}");
            assert_eq!(info.frame_number, 7);
            assert_eq!(info.template_id, s.template_id(0));
            assert_follows(&info, &s.templates[0], name);
            assert_eq!(info.active_decode_targets, s.all_decode_targets());
            // Then a delta packet of every template, in any order.
            for (i, t) in s.templates.iter().enumerate().rev() {
                let f = spec(i % 2 == 0, i % 3 == 0, 8 + i as u16, s.template_id(i));
                let bytes = write(&f, &s, false, None);
                assert_eq!(bytes.len(), 3, "{name} template {i}: mandatory fields only");
                let info = reader.read(&bytes).expect(name);
                assert_eq!(
                    (
                        info.start_of_frame,
                        info.end_of_frame,
                        info.frame_number,
                        info.template_id
                    ),
                    (
                        f.start_of_frame,
                        f.end_of_frame,
                        f.frame_number,
                        f.template_id
                    )
                );
                assert!(!info.structure_attached);
                assert_follows(&info, t, &format!("{name} template {i}"));
            }
        }
    }
}

/// An L1T3 keyframe's first packet (frame 1, one packet), derived bit by
/// bit from the syntax tables of AV1 RTP spec §A.8.2 for
/// [`Structure::l1t3`]:
///
/// ```text
/// byte 0     1 1 000000        start_of_frame, end_of_frame, template id 0
/// bytes 1-2  0x00 0x01         frame_number 1
/// -- extended_descriptor_fields()
/// byte 3     1 0 0 0 0 | 000   structure present; no bitmask, no custom
///                              dtis/fdiffs/chains | template_id_offset...
/// byte 4     000 | 00010       ...offset 0 | dt_cnt_minus_one 2 (3 DTs)
/// -- template_layers(): templates S0T0 S0T0 S0T1 S0T2 S0T2
/// byte 5     00 01 01 00       next_layer_idc after index 0: same layer,
///                              1: next temporal, 2: next temporal, 3: same
/// byte 6     11 | 10 10 10     after 4: no more templates | template_dtis
///                              index 0: S S S
/// byte 7     10 10 10 | 00     index 1: S S S | index 2: -
/// byte 8     01 10 | 00 00     ... D S | index 3: - -
/// byte 9     01 | 00 00 01     ... D | index 4: - - D
/// -- template_fdiffs(): fdiff_follows_flag, fdiff_minus_one (4 bits)
/// byte 10    0 | 1 0011 0 | 1  index 0: none | index 1: 4, end | index 2:
/// byte 11    0001 0 | 1 00     2, end | index 3: 1 (0000...
/// byte 12    00 0 | 1 0000     ...), end | index 4: 1
/// byte 13    0 | 01 | 0000 0   end | chain_cnt = ns(4) of 1: w = 3, m = 4,
///                              1 < m so 2 bits "01"; decode_target_
///                              protected_by is ns(1), no bits | chain
///                              fdiffs (4 bits) index 0: 0 | index 1:
/// byte 14    100 | 0010 | 0    4 | index 2: 2 | index 3:
/// byte 15    001 | 0011 | 0    1 | index 4: 3 | resolutions_present_flag 0
/// ```
///
/// 104 bits after the mandatory fields: 13 bytes, no padding.
const L1T3_KEYFRAME: [u8; 16] = [
    0xC0, 0x00, 0x01, 0x80, 0x02, 0x14, 0xEA, 0xA8, 0x60, 0x41, 0x4D, 0x14, 0x10, 0x20, 0x84, 0x26,
];

#[test]
fn l1t3_keyframe_matches_the_hand_derived_bytes() {
    let s = Structure::l1t3();
    let mut buf = [0xFFu8; 32];
    let n = write_frame(&spec(true, true, 1, 0), &s, true, None, &mut buf).expect("writes");
    assert_eq!(&buf[..n], &L1T3_KEYFRAME);

    let mut reader = Reader::new();
    let info = reader.read(&L1T3_KEYFRAME).expect("reads");
    assert_eq!(reader.structure(), Some(&s));
    assert!(info.start_of_frame && info.end_of_frame && info.structure_attached);
    assert_eq!((info.frame_number, info.template_id), (1, 0));
    assert_eq!(info.dtis(), [Dti::Switch; 3]);
    assert_eq!(info.fdiffs(), [] as [u16; 0]);
    assert_eq!(info.chain_fdiffs(), [0]);
    assert_eq!(info.active_decode_targets, 0b111);
    // The stateless parser agrees.
    let d = rtp_dd::parse(&L1T3_KEYFRAME).expect("parses");
    assert!(d.is_keyframe_start());

    // One byte short: refused by the writer, nothing written.
    let mut short = [0xAAu8; 15];
    assert_eq!(
        write_frame(&spec(true, true, 1, 0), &s, true, None, &mut short),
        Err(rtp_dd::DdError::BufferTooSmall(16))
    );
    assert_eq!(short, [0xAA; 15]);
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// An L3T3 keyframe captured from Chrome and packets that followed it,
/// from LiveKit's `pkg/sfu/dependencydescriptor` tests. Chrome's
/// structure is its own (other template order and ids), but it describes
/// the same scalability mode: reading it must give nine decode targets on
/// 3 × 3 layers, three chains, and every later packet must resolve.
#[test]
fn chrome_l3t3_capture_reads_as_full_svc() {
    let key = hex(
        "c1017280081485214eafffaaaa863cf0430c10c302afc0aaa0063c00430010c002a000a80006000040001d954926e082b04a0941b820ac1282503157f974000ca864330e222222eca8655304224230eca877530077004200ef008601df010d",
    );
    let mut reader = Reader::new();
    let info = reader.read(&key).expect("keyframe");
    assert!(info.is_keyframe_start());
    assert_eq!((info.frame_number, info.template_id), (370, 1));
    let s = reader.structure().expect("structure").clone();
    assert_eq!(s.validate(), Ok(()));
    assert_eq!(s.decode_targets, 9);
    assert_eq!(s.chains, 3);
    let layers: BTreeSet<(u8, u8)> = s.decode_target_layers().into_iter().collect();
    let want: BTreeSet<(u8, u8)> = (0..3).flat_map(|a| (0..3).map(move |b| (a, b))).collect();
    assert_eq!(layers, want);
    // Chrome's keyframe is S0T0 with no references, a switch point for all.
    assert_eq!((info.spatial_id, info.temporal_id), (0, 0));
    assert!(info.fdiffs().is_empty());
    assert!(info.dtis().iter().all(|&d| d == Dti::Switch));
    assert!(s.resolutions.is_some());

    // Same-layer chains: like ours, decode targets of one spatial layer
    // share a chain.
    let mut by_layer: BTreeMap<u8, BTreeSet<u8>> = BTreeMap::new();
    for (dt, &c) in s.protected_by.iter().enumerate() {
        by_layer
            .entry(s.decode_target_layer(dt).0)
            .or_default()
            .insert(c);
    }
    assert!(by_layer.values().all(|c| c.len() == 1), "{by_layer:?}");

    for (h, sof, eof, tid, n) in [
        ("86017340fc", true, false, 6, 371),
        ("46017340fc", false, true, 6, 371),
        ("c30175", true, true, 3, 373),
        ("0b0174", false, false, 11, 372),
    ] {
        let f = reader.read(&hex(h)).expect(h);
        assert_eq!(
            (
                f.start_of_frame,
                f.end_of_frame,
                f.template_id,
                f.frame_number
            ),
            (sof, eof, tid, n),
            "{h}"
        );
        let t = s.template(tid).expect("template");
        assert_follows(&f, t, h);
        // The first two carry a bitmask: 0b000111111, the top spatial layer
        // off; it persists to the packets after them.
        assert_eq!(f.active_decode_targets, 0b0_0011_1111, "{h}");
    }
}
