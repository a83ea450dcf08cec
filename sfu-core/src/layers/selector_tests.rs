//! The selector against synthetic layered streams whose frames carry their
//! real dependencies, so every test can check the one property that
//! matters: the subscriber never gets a frame it cannot decode.

use super::*;
use std::collections::HashSet;

/// Temporal id of frame `i` in the usual three-layer pattern T0 T2 T1 T2.
fn temporal_of(i: u32) -> u8 {
    [0, 2, 1, 2][(i % 4) as usize]
}

/// A frame of a synthetic stream, with what it depends on.
#[derive(Debug, Clone)]
struct Frame {
    encoding: u8,
    number: u16,
    spatial: u8,
    temporal: u8,
    keyframe: bool,
    /// (encoding, frame number) of the frames it needs.
    deps: Vec<(u8, u16)>,
    layering: Layering,
}

/// One packet of a frame.
#[derive(Debug, Clone)]
struct Packet<'a> {
    frame: &'a Frame,
    first: bool,
}

impl FrameLayers for Packet<'_> {
    fn encoding(&self) -> u8 {
        self.frame.encoding
    }
    fn frame_number(&self) -> u16 {
        self.frame.number
    }
    fn spatial(&self) -> u8 {
        match self.frame.layering {
            Layering::Simulcast => self.frame.encoding,
            Layering::Svc => self.frame.spatial,
        }
    }
    fn keyframe_start(&self) -> bool {
        self.first && self.frame.keyframe
    }
    fn indication(&self, l: Layer) -> Indication {
        let f = self.frame;
        let (s, t) = match f.layering {
            Layering::Simulcast if l.spatial != f.encoding => return Indication::NotPresent,
            Layering::Simulcast => (0, l.temporal),
            Layering::Svc => (l.spatial, l.temporal),
        };
        if f.spatial > s || f.temporal > t {
            return Indication::NotPresent;
        }
        if f.keyframe {
            return Indication::Switch;
        }
        match (f.temporal, t) {
            // A T0 frame depends only on earlier T0 frames.
            (0, _) => Indication::Switch,
            // A T1 frame depends only on a T0 frame, and the T2 frame after
            // it depends on it: starting the 3-layer target here works.
            (1, 2) => Indication::Switch,
            (1, _) if f.spatial == s => Indication::Discardable,
            (1, _) => Indication::Required,
            _ if f.spatial == s => Indication::Discardable,
            _ => Indication::Required,
        }
    }
}

/// `units` frames of each of three simulcast encodings, interleaved as a
/// publisher sends them, a keyframe every `key_every` frames.
fn simulcast(units: u32, key_every: u32) -> Vec<Frame> {
    let mut out = Vec::new();
    for i in 0..units {
        for enc in 0..3u8 {
            let number = (1000 * u32::from(enc) + i) as u16;
            let keyframe = i % key_every == 0;
            let t = temporal_of(i);
            let deps = if keyframe {
                vec![]
            } else {
                let back = match i % 4 {
                    0 => 4,
                    1 | 2 => i % 4,
                    _ => 1,
                };
                vec![(enc, number - back as u16)]
            };
            out.push(Frame {
                encoding: enc,
                number,
                spatial: 0,
                temporal: t,
                keyframe,
                deps,
                layering: Layering::Simulcast,
            });
        }
    }
    out
}

/// `units` temporal units of an L3T3 stream (three spatial layers, each
/// predicting from the one below in the same unit), a keyframe every
/// `key_every` units.
fn svc(units: u32, key_every: u32) -> Vec<Frame> {
    let mut out = Vec::new();
    let number = |u: u32, s: u8| (u * 3 + u32::from(s)) as u16;
    for u in 0..units {
        let keyframe = u % key_every == 0;
        for s in 0..3u8 {
            let mut deps = Vec::new();
            if s > 0 {
                deps.push((0, number(u, s - 1)));
            }
            if !keyframe {
                let back = match u % 4 {
                    0 => 4,
                    1 | 2 => u % 4,
                    _ => 1,
                };
                deps.push((0, number(u - back, s)));
            }
            out.push(Frame {
                encoding: 0,
                number: number(u, s),
                spatial: s,
                temporal: temporal_of(u),
                keyframe: keyframe && s == 0,
                deps,
                layering: Layering::Svc,
            });
        }
    }
    out
}

/// What a subscriber received, frame by frame.
#[derive(Default)]
struct Received {
    frames: Vec<(u8, u16)>,
    got: HashSet<(u8, u16)>,
    /// Frames whose packets were split: some forwarded, some not.
    torn: usize,
    switches: usize,
}

/// Feeds `frames` (three packets each) to `sel`, calling `before(i, sel)`
/// before frame `i`, and checks that every forwarded frame is decodable.
fn run(
    sel: &mut LayerSelector,
    frames: &[Frame],
    mut before: impl FnMut(usize, &mut LayerSelector),
) -> Received {
    let mut r = Received::default();
    for (i, f) in frames.iter().enumerate() {
        before(i, sel);
        let mut sent = Vec::new();
        for p in 0..3 {
            let d = sel.decide(&Packet {
                frame: f,
                first: p == 0,
            });
            sent.push(d.forward);
            r.switches += usize::from(d.switched);
        }
        if sent.iter().any(|s| *s) != sent.iter().all(|s| *s) {
            r.torn += 1;
        }
        if sent[0] {
            for dep in &f.deps {
                assert!(
                    r.got.contains(dep),
                    "frame {:?} forwarded without its dependency {dep:?}",
                    (f.encoding, f.number)
                );
            }
            r.frames.push((f.encoding, f.number));
            r.got.insert((f.encoding, f.number));
        }
    }
    r
}

fn frame_at(frames: &[Frame], key: (u8, u16)) -> &Frame {
    frames
        .iter()
        .find(|f| (f.encoding, f.number) == key)
        .unwrap()
}

#[test]
fn a_new_subscriber_starts_at_a_keyframe_of_its_encoding() {
    let frames = simulcast(40, 16);
    let mut sel = LayerSelector::new(Layering::Simulcast);
    assert_eq!(sel.awaiting_keyframe(), None, "no target, nothing to ask");
    // The subscription begins after the first keyframes went by.
    let r = run(&mut sel, &frames, |i, sel| {
        if i == 3 * 5 {
            sel.set_target(Some(Layer::new(1, 2)));
            assert_eq!(sel.awaiting_keyframe(), Some(1));
        }
    });
    let first = frame_at(&frames, r.frames[0]);
    assert!(first.keyframe && first.encoding == 1, "{first:?}");
    assert_eq!(first.number, 1016, "the next keyframe of encoding 1");
    assert!(r.frames.iter().all(|(e, _)| *e == 1));
    assert_eq!(r.frames.len(), 40 - 16, "every frame of it from then on");
    assert_eq!(sel.awaiting_keyframe(), None);
    assert_eq!(r.torn, 0);
}

#[test]
fn temporal_layers_drop_at_once_and_return_at_a_switch_point() {
    let frames = simulcast(64, 32);
    let mut sel = LayerSelector::new(Layering::Simulcast);
    sel.set_target(Some(Layer::new(2, 2)));
    let lower_at = 3 * 10;
    let raise_at = 3 * 21;
    let r = run(&mut sel, &frames, |i, sel| {
        if i == lower_at {
            sel.set_target(Some(Layer::new(2, 0)));
        }
        if i == raise_at {
            sel.set_target(Some(Layer::new(2, 2)));
            assert_eq!(sel.awaiting_keyframe(), None, "no keyframe needed");
        }
    });
    let temporal = |(e, n): (u8, u16)| frame_at(&frames, (e, n)).temporal;
    let during: Vec<u8> = r
        .frames
        .iter()
        .filter(|(_, n)| (2010..2021).contains(n))
        .map(|k| temporal(*k))
        .collect();
    assert!(
        during.iter().all(|t| *t == 0),
        "only T0 while lowered: {during:?}"
    );
    assert_eq!(during.len(), 3, "frames 2012, 2016, 2020");
    // Back up at the first switch point for all three layers: frame 2022
    // (T1) follows the raise at 2021 (T2, not a switch point).
    assert!(!r.got.contains(&(2, 2021)));
    assert!(r.got.contains(&(2, 2022)) && r.got.contains(&(2, 2023)));
    assert_eq!(r.switches, 3, "start, down, up");
    assert_eq!(r.torn, 0);
}

#[test]
fn moving_to_another_encoding_waits_for_its_keyframe_and_sheds_bitrate_meanwhile() {
    let frames = simulcast(80, 32);
    let mut sel = LayerSelector::new(Layering::Simulcast);
    sel.set_target(Some(Layer::new(2, 2)));
    let r = run(&mut sel, &frames, |i, sel| {
        if i == 3 * 10 {
            sel.set_target(Some(Layer::new(0, 2)));
            assert_eq!(sel.awaiting_keyframe(), Some(0));
        }
        if i == 3 * 40 {
            sel.set_target(Some(Layer::new(1, 1)));
        }
    });
    // Until encoding 0's keyframe at 32, encoding 2 at T0 only.
    let high: Vec<u16> = r
        .frames
        .iter()
        .filter(|(e, _)| *e == 2)
        .map(|(_, n)| *n)
        .collect();
    assert!(high.iter().all(|n| *n < 2010 || (n - 2000) % 4 == 0));
    assert_eq!(*high.last().unwrap(), 2028);
    assert_eq!(
        r.frames.iter().find(|(e, _)| *e == 0),
        Some(&(0, 32)),
        "switched at encoding 0's keyframe"
    );
    assert!(r.frames.contains(&(1, 1064)), "then to 1 at 64");
    // Encoding 0 flows until the unit where encoding 1 switches in.
    assert!(!r.frames.iter().any(|(e, n)| *e == 0 && *n > 64));
    assert!(
        r.frames
            .iter()
            .filter(|(e, _)| *e == 1)
            .all(|k| frame_at(&frames, *k).temporal <= 1)
    );
    assert_eq!(r.torn, 0);
}

#[test]
fn a_frame_keeps_its_decision_for_all_its_packets() {
    let frames = simulcast(8, 4);
    let mut sel = LayerSelector::new(Layering::Simulcast);
    sel.set_target(Some(Layer::new(0, 2)));
    let f = &frames[3]; // encoding 0, frame 1 (T2)
    assert!(
        sel.decide(&Packet {
            frame: &frames[0],
            first: true
        })
        .forward
    );
    assert!(
        sel.decide(&Packet {
            frame: f,
            first: true
        })
        .forward
    );
    // The target drops T2 mid-frame: the frame's last packets still go.
    sel.set_target(Some(Layer::new(0, 0)));
    assert!(
        sel.decide(&Packet {
            frame: f,
            first: false
        })
        .forward
    );
    let next_t2 = &frames[9]; // frame 3, T2
    assert!(
        !sel.decide(&Packet {
            frame: next_t2,
            first: true
        })
        .forward
    );
}

#[test]
fn a_paused_track_forwards_nothing_and_resumes_at_a_keyframe() {
    let frames = simulcast(48, 16);
    let mut sel = LayerSelector::new(Layering::Simulcast);
    sel.set_target(Some(Layer::new(0, 2)));
    let r = run(&mut sel, &frames, |i, sel| {
        if i == 3 * 5 {
            sel.set_target(None);
        }
        if i == 3 * 20 {
            sel.set_target(Some(Layer::new(0, 2)));
            assert_eq!(sel.awaiting_keyframe(), Some(0));
        }
    });
    let numbers: Vec<u16> = r.frames.iter().map(|(_, n)| *n).collect();
    assert_eq!(&numbers[..5], &[0, 1, 2, 3, 4]);
    assert_eq!(numbers[5], 32, "nothing until the keyframe after resuming");
    assert_eq!(sel.current(), Some(Layer::new(0, 2)));
}

#[test]
fn svc_drops_spatial_and_temporal_layers_without_a_keyframe() {
    let frames = svc(48, 48);
    let mut sel = LayerSelector::new(Layering::Svc);
    sel.set_target(Some(Layer::new(2, 2)));
    let r = run(&mut sel, &frames, |i, sel| {
        if i == 3 * 8 {
            sel.set_target(Some(Layer::new(2, 0)));
            assert_eq!(sel.awaiting_keyframe(), None);
        }
        if i == 3 * 16 {
            sel.set_target(Some(Layer::new(0, 0)));
            assert_eq!(sel.awaiting_keyframe(), None);
        }
        if i == 3 * 24 + 1 {
            // Mid-unit, after S0: in time, S0 of the next switch point.
            sel.set_target(Some(Layer::new(0, 2)));
        }
    });
    let in_units = |lo: u32, hi: u32| {
        r.frames
            .iter()
            .map(|k| frame_at(&frames, *k))
            .filter(move |f| (lo * 3..hi * 3).contains(&u32::from(f.number)))
            .map(|f| (f.spatial, f.temporal))
            .collect::<Vec<_>>()
    };
    assert_eq!(in_units(0, 8).len(), 24, "everything at first");
    assert!(in_units(8, 16).iter().all(|(_, t)| *t == 0));
    assert_eq!(in_units(8, 16).len(), 2 * 3, "units 8 and 12, all of S0-S2");
    assert_eq!(in_units(16, 24), vec![(0, 0), (0, 0)], "S0 T0 only");
    // Up in time from unit 26 (the first T1 after the change).
    assert_eq!(in_units(24, 28), vec![(0, 0), (0, 1), (0, 2)]);
    assert_eq!(r.torn, 0);
    // Going back up in space needs a keyframe.
    sel.set_target(Some(Layer::new(2, 2)));
    assert_eq!(sel.awaiting_keyframe(), Some(0));
}

#[test]
fn svc_climbs_in_space_at_a_keyframe() {
    let frames = svc(40, 16);
    let mut sel = LayerSelector::new(Layering::Svc);
    sel.set_target(Some(Layer::new(0, 2)));
    let r = run(&mut sel, &frames, |i, sel| {
        if i == 3 * 5 {
            sel.set_target(Some(Layer::new(2, 2)));
        }
    });
    let spatial: Vec<(u32, u8)> = r
        .frames
        .iter()
        .map(|k| frame_at(&frames, *k))
        .map(|f| (u32::from(f.number) / 3, f.spatial))
        .filter(|(_, s)| *s > 0)
        .collect();
    assert_eq!(
        spatial.first(),
        Some(&(16, 1)),
        "from the keyframe at unit 16"
    );
}

/// A long run with the target changing at random: whatever the changes,
/// every forwarded frame is decodable (checked inside `run`), no frame is
/// torn, and the subscriber ends up on its target.
#[test]
fn random_target_changes_never_forward_an_undecodable_frame() {
    let layers: Vec<Layer> = (0..3)
        .flat_map(|s| (0..3).map(move |t| Layer::new(s, t)))
        .collect();
    for (layering, frames) in [
        (Layering::Simulcast, simulcast(3000, 60)),
        (Layering::Svc, svc(3000, 60)),
    ] {
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut sel = LayerSelector::new(layering);
        sel.set_target(Some(layers[0]));
        let last_change = frames.len() - 3 * 200;
        let r = run(&mut sel, &frames, |i, sel| {
            if i < last_change && next() % 40 == 0 {
                let pick = (next() % (layers.len() as u64 + 1)) as usize;
                sel.set_target(layers.get(pick).copied());
            }
        });
        assert_eq!(r.torn, 0, "{layering:?}");
        assert!(r.switches > 20, "{layering:?}: {} switches", r.switches);
        if sel.target().is_some() {
            assert_eq!(sel.current(), sel.target(), "{layering:?}");
        }
    }
}
