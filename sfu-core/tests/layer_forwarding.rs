//! Layered tracks through the forwarding core: a publisher sending three
//! simulcast encodings (each with three temporal layers) or one L3T3 SVC
//! stream, with real dependency descriptors; subscribers whose targets the
//! allocator sets from their budgets. Checks what each subscriber receives
//! and that its stream has no sequence gap.

use sfu_core::TrackKind;
use sfu_core::forwarder::{DdSignal, Forwarder, Notice, PacketMeta, ParticipantKey};
use sfu_core::layers::Layer;
use std::time::{Duration, Instant};
use str0m::media::Mid;

mod common;
use common::layered::*;

#[test]
fn without_a_limit_every_subscriber_gets_the_top_encoding() {
    let packets = simulcast(120, 30);
    let mut r = room(&RIDS, 2);
    let got = r.run(&packets, &RIDS, |_| None);
    for g in &got {
        assert!(!g.is_empty());
        assert!(g.iter().all(|(e, ..)| *e == 2), "only the top encoding");
        let frames: std::collections::BTreeSet<u16> = g.iter().map(|x| x.1).collect();
        assert_eq!(frames.len(), 120, "every frame from the first keyframe");
        assert_contiguous(g);
    }
}

#[test]
fn budgets_pick_an_encoding_and_temporal_layers_and_the_stream_stays_gapless() {
    let packets = simulcast(240, 60);
    let mut r = room(&RIDS, 3);
    let subs = r.subs.clone();
    // Encoding rates: 2 packets × 30 fps × (1000 << e) bytes × 8 bits:
    // 480, 960, 1,920 kbit/s with all temporal layers.
    let budgets = [None, Some(1_000_000), Some(300_000)];
    let got = r.run(&packets, &RIDS, |p| {
        subs.iter().position(|s| *s == p).and_then(|i| budgets[i])
    });
    let after = |g: &Got| -> Vec<(u8, u8)> {
        g.iter()
            .filter(|x| x.1 >= 120)
            .map(|x| (x.0, x.2))
            .collect()
    };
    // Unlimited: the top. 1 Mbit/s: encoding 2 at half its frame rate
    // (960 k, the same as encoding 1 in full; resolution wins at equal
    // cost once the frame rate is at least half). 300 kbit/s: encoding 0
    // without its top temporal layer (T0+T1 of 480 k is 240 k).
    assert!(after(&got[0]).iter().all(|(e, _)| *e == 2));
    assert!(after(&got[0]).iter().any(|(_, t)| *t == 2));
    assert!(after(&got[1]).iter().all(|(e, t)| *e == 2 && *t <= 1));
    assert!(
        after(&got[2]).iter().all(|(e, t)| *e == 0 && *t <= 1),
        "{:?}",
        after(&got[2])
    );
    for g in &got {
        assert_contiguous(g);
    }
    // Each switch happened at a keyframe of the new encoding.
    for g in &got {
        for w in g.windows(2) {
            if w[0].0 != w[1].0 {
                assert_eq!(w[1].1 % 60, 0, "switched to {:?} off a keyframe", w[1]);
            }
        }
    }
    assert_eq!(
        r.fwd.layer(subs[2], r.track).and_then(|l| l.current),
        Some(Layer::new(0, 1))
    );
}

#[test]
fn a_pending_switch_asks_for_the_new_encodings_keyframe() {
    let packets = simulcast(40, 1000);
    let mut r = room(&RIDS, 1);
    // Starts on the top encoding (its only keyframe is frame 0), then the
    // budget drops: encoding 0 is wanted, and has no keyframe coming.
    let limited = std::cell::Cell::new(false);
    let got = r.run(&packets[..3 * 2 * 20], &RIDS, |_| {
        limited.get().then_some(300_000)
    });
    assert!(got[0].iter().all(|(e, ..)| *e == 2));
    limited.set(true);
    let got = r.run(&packets[3 * 2 * 20..], &RIDS, |_| {
        limited.get().then_some(300_000)
    });
    assert_eq!(
        r.fwd.awaited_rids(r.track),
        ["q"],
        "the lowest encoding's rid"
    );
    // Meanwhile encoding 2 goes on at its base frame rate only.
    assert!(got[0].iter().all(|(e, _, t, _)| *e == 2 && *t == 0));
}

/// `units` temporal units of an L3T3 stream (frame numbers 3u + s), a
/// keyframe every `key_every` units, one packet per frame of
/// 200 << s bytes.
fn svc(units: u16, key_every: u16) -> Vec<Sent> {
    let structure = rtp_dd::Structure::l3t3();
    let mut out = Vec::new();
    for u in 0..units {
        let keyframe = u % key_every == 0;
        for s in 0..3u8 {
            // Template index: 5 per spatial layer; within one, keyframe,
            // T0, T1, T2 after T0, T2 after T1 (the structure's order).
            let (within, temporal) = if keyframe {
                (0, 0)
            } else {
                [(1, 0), (3, 2), (2, 1), (4, 2)][usize::from(u % key_every % 4)]
            };
            let index = 5 * usize::from(s) + within;
            let spec = rtp_dd::FrameSpec {
                start_of_frame: true,
                end_of_frame: true,
                frame_number: u * 3 + u16::from(s),
                template_id: structure.template_id(index),
            };
            let mut buf = [0u8; 255];
            let attach = keyframe && s == 0;
            let n = rtp_dd::write_frame(&spec, &structure, attach, None, &mut buf).expect("dd");
            out.push(Sent {
                encoding: 0,
                ssrc: 500,
                seq: out.len() as u64,
                ts: u32::from(u) * 3000,
                dd: buf[..n].to_vec(),
                keyframe_start: attach,
                bytes: 200 << s,
                frame: u,
                temporal,
                spatial: s,
            });
        }
    }
    out
}

/// SVC through the forwarder with budgets that fall and rise: every frame
/// the subscriber gets is decodable by the descriptor's own references
/// (read back with a receiver's reader from the forwarded bytes), temporal
/// and spatial layers drop at once without a keyframe, and the stream has
/// no sequence gap.
#[test]
fn svc_layers_follow_the_budget_and_every_frame_stays_decodable() {
    let packets = svc(300, 150);
    let mut r = room(&[], 1);
    let track = r.track;
    let budget = std::cell::Cell::new(None::<u64>);
    // Layer rates: S0 48 kbit/s per 30 fps, S1 96, S2 192; T0 a quarter
    // of the frames, T1 a quarter, T2 half.
    let mut forwarded: Vec<&Sent> = Vec::new();
    let mut next_alloc = r.t0;
    let mut phases = Vec::new();
    for p in &packets {
        let now = r.t0 + Duration::from_millis(u64::from(p.frame) * 1000 / 30);
        // 0-3 s unlimited, 3-4 s 100 kbit/s, then unlimited again (a
        // raise waits for two allocation runs, so it is due by the
        // keyframe at 5 s).
        budget.set(match p.frame {
            90..120 => Some(100_000),
            _ => None,
        });
        if now >= next_alloc {
            r.fwd.allocate(now, |_| budget.get(), |_, _| {});
            next_alloc = now + Duration::from_millis(500);
            phases.push((
                p.frame,
                r.fwd.layer(r.subs[0], track).and_then(|l| l.current),
            ));
        }
        let meta = p.meta(None);
        let mut out_seq = Vec::new();
        r.fwd
            .forward(track, meta, now, |f| out_seq.push(f.rewritten.seq));
        if !out_seq.is_empty() {
            forwarded.push(p);
        }
    }
    // The receiver's view: every frame's references were received.
    let mut reader = rtp_dd::Reader::new();
    let mut have = std::collections::HashSet::new();
    for p in &forwarded {
        let info = reader.read(&p.dd).expect("forwarded descriptors read");
        for referred in info.referred_frames() {
            assert!(
                have.contains(&referred),
                "frame {} (S{} T{}) refers to {referred}, never sent",
                info.frame_number,
                p.spatial,
                p.temporal
            );
        }
        have.insert(info.frame_number);
    }
    let in_window = |lo: u16, hi: u16| -> Vec<(u8, u8)> {
        forwarded
            .iter()
            .filter(|p| (lo..hi).contains(&p.frame))
            .map(|p| (p.spatial, p.temporal))
            .collect()
    };
    assert!(
        in_window(30, 90).iter().any(|(s, t)| *s == 2 && *t == 2),
        "all at first"
    );
    // Squeezed: lower layers only, at once (no keyframe until unit 150).
    let squeezed = in_window(100, 120);
    assert!(!squeezed.is_empty());
    assert!(
        squeezed.iter().all(|(s, t)| *s < 2 || *t < 2),
        "{squeezed:?}"
    );
    // Room again: all layers back, the spatial ones from the keyframe at
    // 150, not before.
    assert!(in_window(120, 150).iter().all(|(s, _)| *s < 2));
    assert!(in_window(150, 300).iter().any(|(s, t)| *s == 2 && *t == 2));
    assert!(
        phases
            .iter()
            .any(|(_, l)| l.is_some_and(|l| l < Layer::new(2, 2))),
        "{phases:?}"
    );
}

/// Two publishers, each with audio and an SVC video; one subscriber whose
/// budget holds one video at the top and the other lower. The one who
/// speaks (by the audio level extension) gets the top; when the other
/// takes over the conversation, the video follows.
#[test]
fn the_active_speakers_video_gets_the_bandwidth_first() {
    let mut fwd = Forwarder::default();
    let (a, b) = (
        fwd.add_participant("room", true),
        fwd.add_participant("room", true),
    );
    let sub = fwd.add_participant("room", true);
    let mut video = Vec::new();
    let mut audio = Vec::new();
    for p in [a, b] {
        let (v, _) = fwd.add_track(p, TrackKind::Video, vec![]).unwrap();
        let (au, _) = fwd.add_track(p, TrackKind::Audio, vec![]).unwrap();
        for (t, mid) in [
            (v, format!("v{}", video.len())),
            (au, format!("a{}", audio.len())),
        ] {
            assert!(fwd.subscribe(sub, t));
            fwd.set_out_mid(sub, t, Mid::from(mid.as_str()));
        }
        video.push(v);
        audio.push(au);
    }
    let packets = svc(600, 150);
    let t0 = Instant::now();
    let mut next_alloc = t0;
    let mut speaking = 0usize;
    let mut top_by_phase = Vec::new();
    for p in &packets {
        let now = t0 + Duration::from_millis(u64::from(p.frame) * 1000 / 30);
        if p.frame == 300 {
            speaking = 1;
        }
        if now >= next_alloc {
            // Room for one video at the top, the other well below it.
            fwd.allocate(now, |q| (q == sub).then_some(450_000), |_, _| {});
            next_alloc = now + Duration::from_millis(500);
            let layer = |i: usize| fwd.layer(sub, video[i]).and_then(|l| l.target);
            top_by_phase.push((p.frame, layer(0), layer(1)));
        }
        for (i, v) in video.iter().enumerate() {
            let meta = PacketMeta {
                ssrc: 500 + i as u32,
                seq: p.seq,
                ts: p.ts,
                clock_rate: 90_000,
                rid: None,
                dd: if p.keyframe_start {
                    DdSignal::KeyframeStart
                } else {
                    DdSignal::Other
                },
                descriptor: Some(&p.dd),
                bytes: p.bytes,
                audio_level: None,
                voice: None,
            };
            fwd.forward(*v, meta, now, |_| {});
        }
        // Audio: a packet per 20 ms (here per video frame, close enough),
        // loud speech from the speaker, quiet room noise from the other.
        if p.spatial == 0 {
            for (i, au) in audio.iter().enumerate() {
                let loud = i == speaking;
                let meta = PacketMeta {
                    ssrc: 900 + i as u32,
                    seq: u64::from(p.frame),
                    ts: u32::from(p.frame) * 960,
                    clock_rate: 48_000,
                    rid: None,
                    dd: DdSignal::Absent,
                    descriptor: None,
                    bytes: 100,
                    audio_level: Some(if loud { -25 } else { -80 }),
                    voice: Some(loud),
                };
                fwd.forward(*au, meta, now, |_| {});
            }
        }
    }
    assert_eq!(fwd.dominant_speaker(sub), Some(b));
    // Everyone in the room was told of each change: a first, then b.
    let mut notices = Vec::new();
    fwd.take_notices(&mut notices);
    let speakers: Vec<Option<ParticipantKey>> = notices
        .iter()
        .filter_map(|n| match n {
            Notice::Speaker {
                participants,
                speaker,
            } => {
                assert_eq!(participants, &[a, b, sub]);
                Some(*speaker)
            }
            _ => None,
        })
        .collect();
    assert_eq!(speakers, [Some(a), Some(b)]);
    // Spatial layer of each video's target, by allocation run.
    let phase = |lo: u16, hi: u16| {
        top_by_phase
            .iter()
            .filter(move |(f, ..)| (lo..hi).contains(f))
            .map(|(_, x, y)| (x.map(|l| l.spatial), y.map(|l| l.spatial)))
            .collect::<Vec<_>>()
    };
    // The budget (after audio) buys the speaker's video the top spatial
    // layer and the other's the lowest: a's while a speaks; b's from about
    // 2 s after b starts (smoothing, two intervals to take over, two to
    // raise a target).
    let (top, low) = (Some(2), Some(0));
    assert!(
        phase(150, 300).iter().all(|xy| *xy == (top, low)),
        "{top_by_phase:?}"
    );
    assert!(
        phase(400, 600).iter().all(|xy| *xy == (low, top)),
        "{top_by_phase:?}"
    );
}

/// On a layered track, a packet the SFU cannot place in a frame (one
/// without a descriptor, as padding; one naming a template its stream's
/// structure lacks) goes to nobody, leaves no gap in the subscriber's
/// numbering, and a bad descriptor is reported.
#[test]
fn packets_without_a_usable_descriptor_go_nowhere_and_leave_no_gap() {
    let mut stream = svc(60, 30);
    // After frame 20: a padding packet, then a descriptor naming template
    // 40 (the L3T3 structure has 15), renumbered into the stream.
    let at = stream.iter().position(|p| p.frame == 21).unwrap();
    let odd = |dd: Vec<u8>| Sent {
        encoding: 0,
        ssrc: 500,
        seq: 0,
        ts: 20 * 3000,
        dd,
        keyframe_start: false,
        bytes: 100,
        frame: 20,
        temporal: 0,
        spatial: 9,
    };
    stream.insert(at, odd(vec![]));
    stream.insert(at + 1, odd(vec![0xC0 | 40, 0x7F, 0xFF]));
    for (i, p) in stream.iter_mut().enumerate() {
        p.seq = i as u64;
    }
    let mut r = room(&[], 1);
    let mut out = Vec::new();
    let mut bad = 0;
    for p in &stream {
        let now = r.t0 + Duration::from_millis(u64::from(p.frame) * 1000 / 30);
        let meta = p.meta(None);
        let gate = r
            .fwd
            .forward(r.track, meta, now, |f| {
                out.push((p.spatial, f.rewritten.seq))
            })
            .unwrap();
        bad += usize::from(gate.bad_descriptor);
    }
    assert_eq!(bad, 1);
    assert!(
        out.iter().all(|(s, _)| *s < 3),
        "neither odd packet was sent"
    );
    assert_eq!(out.len(), 180, "every frame of the stream was");
    for w in out.windows(2) {
        assert_eq!(w[1].1, w[0].1 + 1, "gap after {:?}", w[0]);
    }
}
