//! What subscribers say about how they display a track, through the
//! forwarding core: the size limit caps the layer whatever the budget, a
//! hidden track gets nothing and comes back at once, pauses for bandwidth
//! are announced, and the publisher hears which encodings anyone wants
//! (dynacast).

mod common;

use common::layered::*;
use sfu_core::LayerSize;
use sfu_core::forwarder::{Notice, Preferences};
use std::time::Duration;

fn declared() -> Vec<LayerSize> {
    [(320, 180), (640, 360), (1280, 720)]
        .map(|(width, height)| LayerSize { width, height })
        .to_vec()
}

fn at_most(max_width: u16, max_height: u16) -> Preferences {
    Preferences {
        max_width: Some(max_width),
        max_height: Some(max_height),
        ..Preferences::default()
    }
}

/// The packets of frames `lo..hi`.
fn frames_between(packets: &[Sent], lo: u16, hi: u16) -> Vec<Sent> {
    packets
        .iter()
        .filter(|p| (lo..hi).contains(&p.frame))
        .map(|p| Sent {
            dd: p.dd.clone(),
            ..*p
        })
        .collect()
}

const HIDDEN: Preferences = Preferences {
    visible: false,
    max_width: None,
    max_height: None,
};

#[test]
fn a_small_tile_gets_the_small_encoding_whatever_the_budget() {
    let packets = simulcast(240, 60);
    let mut r = room(&RIDS, 2);
    r.fwd.set_layer_sizes(r.track, declared());
    assert_eq!(
        r.fwd.set_preferences(r.subs[0], r.track, at_most(320, 180)),
        Some(false)
    );
    let got = r.run(&packets, &RIDS, |_| None);
    let encodings_after = |g: &Got| -> std::collections::BTreeSet<u8> {
        g.iter().filter(|x| x.1 >= 120).map(|x| x.0).collect()
    };
    assert_eq!(encodings_after(&got[0]), [0].into());
    assert_eq!(encodings_after(&got[1]), [2].into());
    // The small one still gets every frame of its encoding: the limit is
    // on size, not on frame rate.
    let frames = got[0].iter().filter(|x| x.1 >= 120).count();
    assert_eq!(frames, 2 * 120);
    for g in &got {
        assert_contiguous(g);
    }
}

/// A client says how small it shows a track right after it is subscribed,
/// before media flows: the first frame it gets is already of the small
/// encoding, and a tile made smaller later lowers the target at once,
/// without waiting for an allocation run.
#[test]
fn a_size_limit_holds_from_the_first_frame_and_a_smaller_one_applies_at_once() {
    let packets = simulcast(240, 60);
    let mut r = room(&RIDS, 2);
    r.fwd.set_layer_sizes(r.track, declared());
    let (small, shrunk, track) = (r.subs[0], r.subs[1], r.track);
    r.fwd.set_preferences(small, track, at_most(320, 180));
    let first = r.run(&packets[..packets.len() / 2], &RIDS, |_| None);
    assert!(!first[0].is_empty());
    assert!(first[0].iter().all(|x| x.0 == 0), "{:?}", first[0]);
    assert!(first[1].iter().all(|x| x.0 == 2), "unlimited: the top");
    r.fwd.set_preferences(shrunk, track, at_most(640, 360));
    let target = r.fwd.layer(shrunk, track).and_then(|l| l.target);
    assert_eq!(target.map(|l| l.spatial), Some(1), "before any run");
    let second = r.run(&packets[packets.len() / 2..], &RIDS, |_| None);
    assert!(second[1].iter().any(|x| x.0 == 1));
    assert!(second[1].iter().skip_while(|x| x.0 == 2).all(|x| x.0 == 1));
}

#[test]
fn a_width_limit_alone_picks_the_tallest_layer_that_fits() {
    let packets = simulcast(180, 60);
    let mut r = room(&RIDS, 1);
    r.fwd.set_layer_sizes(r.track, declared());
    let prefs = Preferences {
        max_width: Some(700),
        ..Preferences::default()
    };
    r.fwd.set_preferences(r.subs[0], r.track, prefs);
    let got = r.run(&packets, &RIDS, |_| None);
    assert!(got[0].iter().filter(|x| x.1 >= 120).all(|x| x.0 == 1));
}

#[test]
fn a_hidden_track_gets_nothing_and_comes_back_without_waiting_two_runs() {
    let packets = simulcast(300, 60);
    let frames = |lo, hi| frames_between(&packets, lo, hi);
    let mut r = room(&RIDS, 1);
    let (sub, track) = (r.subs[0], r.track);
    let before = r.run(&frames(0, 60), &RIDS, |_| None);
    assert!(!before[0].is_empty());
    assert_eq!(r.fwd.set_preferences(sub, track, HIDDEN), Some(false));
    let hidden = r.run(&frames(60, 150), &RIDS, |_| None);
    // Nothing from the first allocation run after hiding.
    assert!(hidden[0].is_empty(), "{:?}", hidden[0].first());
    assert_eq!(r.fwd.layer(sub, track).map(|l| l.target), Some(None));
    // Shown again: the first run sets the target (a raise from nothing
    // otherwise waits for a second run), and the subscriber starts at the
    // next keyframe start of that encoding.
    assert_eq!(
        r.fwd.set_preferences(sub, track, Preferences::default()),
        Some(false)
    );
    let shown = r.run(&frames(150, 151), &RIDS, |_| None);
    assert!(shown[0].is_empty());
    assert!(r.fwd.layer(sub, track).is_some_and(|l| l.target.is_some()));
    assert_eq!(r.fwd.awaited_rids(track), vec!["f"]);
    let after = r.run(&frames(151, 300), &RIDS, |_| None);
    assert_eq!(
        after[0].first().map(|x| x.1),
        Some(180),
        "from the next keyframe"
    );
    let mut all = before[0].clone();
    all.extend(after[0].iter().copied());
    assert_contiguous(&all);
}

#[test]
fn a_pause_for_bandwidth_is_announced_and_so_is_the_resume() {
    let packets = simulcast(180, 60);
    let mut r = room(&RIDS, 1);
    let (sub, track) = (r.subs[0], r.track);
    let budget = std::cell::Cell::new(None);
    let paused = |fwd: &mut sfu_core::forwarder::Forwarder| -> Vec<bool> {
        let mut notices = Vec::new();
        fwd.take_notices(&mut notices);
        notices
            .into_iter()
            .filter_map(|n| match n {
                Notice::Paused {
                    subscriber,
                    track: t,
                    paused,
                } if subscriber == sub && t == track => Some(paused),
                _ => None,
            })
            .collect()
    };
    r.run(&packets[..packets.len() / 3], &RIDS, |_| budget.get());
    assert_eq!(paused(&mut r.fwd), Vec::<bool>::new());
    // Less than even the lowest temporal layer of the lowest encoding.
    budget.set(Some(20_000));
    r.run(&packets[packets.len() / 3..], &RIDS, |_| budget.get());
    assert_eq!(paused(&mut r.fwd), [true]);
    budget.set(None);
    r.run(&packets, &RIDS, |_| budget.get());
    assert_eq!(paused(&mut r.fwd), [false]);
}

/// An estimate that dips below even the lowest layer for a few allocation
/// runs (a delay spike, a burst of loss) keeps the lowest layer flowing at
/// its lowest frame rate while the link is probed; only the fourth run in
/// a row (2 s) pauses the track.
#[test]
fn a_short_dip_below_the_lowest_layer_does_not_pause() {
    let packets = simulcast(240, 60);
    let frames = |lo, hi| frames_between(&packets, lo, hi);
    let mut r = room(&RIDS, 1);
    let (sub, track) = (r.subs[0], r.track);
    let paused = |fwd: &mut sfu_core::forwarder::Forwarder| {
        let mut notices = Vec::new();
        fwd.take_notices(&mut notices);
        notices
            .iter()
            .filter(|n| matches!(n, Notice::Paused { subscriber, .. } if *subscriber == sub))
            .count()
    };
    r.run(&frames(0, 90), &RIDS, |_| None);
    // Each call runs the allocator at its first frame, then every 15.
    let dip = r.run(&frames(90, 135), &RIDS, |_| Some(20_000));
    assert_eq!(paused(&mut r.fwd), 0, "three runs");
    // Until the lowest encoding's next keyframe the current one goes on,
    // shed to its base frame rate: video never stops.
    assert!(!dip[0].is_empty(), "video still flows");
    assert!(dip[0].iter().all(|x| x.2 == 0), "{:?}", dip[0]);
    let target = r.fwd.layer(sub, track).and_then(|l| l.target);
    assert_eq!(target.map(|l| (l.spatial, l.temporal)), Some((0, 0)));
    let mut spends = Vec::new();
    let t = r.t0 + std::time::Duration::from_millis(135 * 1000 / 30);
    r.fwd
        .allocate(t, |_| Some(20_000), |p, s| spends.push((p, s)));
    assert_eq!(paused(&mut r.fwd), 1, "paused at the fourth run");
    assert_eq!(r.fwd.layer(sub, track).and_then(|l| l.target), None);
    // The caller hears what the lowest layer needs, to probe for it.
    let spend = spends.iter().find(|(p, _)| *p == sub).map(|(_, s)| *s);
    assert!(spend.is_some_and(|s| s.starved_below > 20_000), "{spend:?}");
}

/// The encodings the publisher was told are wanted, by allocation run.
fn dynacast(r: &mut Room, runs: u32) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for i in 0..runs {
        let now = r.t0 + Duration::from_millis(500) * i;
        r.fwd.allocate(now, |_| None, |_, _| {});
        let mut notices = Vec::new();
        r.fwd.take_notices(&mut notices);
        for n in notices {
            if let Notice::PublisherLayers { track, active, .. } = n {
                assert_eq!(track, r.track);
                out.push(active);
            }
        }
    }
    out
}

#[test]
fn dynacast_announces_fewer_encodings_after_a_while_and_more_at_once() {
    let mut r = room(&RIDS, 2);
    r.fwd.set_layer_sizes(r.track, declared());
    let (a, b, track) = (r.subs[0], r.subs[1], r.track);
    // Both want everything: what the publisher sends anyway, no news.
    assert_eq!(dynacast(&mut r, 10), Vec::<Vec<String>>::new());
    r.fwd.set_preferences(a, track, at_most(320, 180));
    r.fwd.set_preferences(b, track, at_most(640, 360));
    // Fewer only once six runs in a row want fewer.
    let v = |rids: &[&str]| rids.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>();
    assert_eq!(dynacast(&mut r, 5), Vec::<Vec<String>>::new());
    assert_eq!(dynacast(&mut r, 1), [v(&["h", "q"])]);
    // A tile hidden and shown again within that time costs nothing.
    r.fwd.set_preferences(b, track, HIDDEN);
    assert_eq!(dynacast(&mut r, 3), Vec::<Vec<String>>::new());
    r.fwd.set_preferences(b, track, at_most(640, 360));
    assert_eq!(dynacast(&mut r, 10), Vec::<Vec<String>>::new());
    // More at the next run.
    r.fwd.set_preferences(a, track, Preferences::default());
    assert_eq!(dynacast(&mut r, 1), [v(&["f", "h", "q"])]);
    // Nobody shows it: nothing is wanted.
    r.fwd.set_preferences(a, track, HIDDEN);
    r.fwd.set_preferences(b, track, HIDDEN);
    assert_eq!(dynacast(&mut r, 6), [Vec::<String>::new()]);
    // A subscriber that leaves wants nothing either; a new one everything.
    assert!(r.fwd.unsubscribe(a, track).is_some());
    assert!(r.fwd.subscribe(a, track));
    assert_eq!(dynacast(&mut r, 1), [v(&["f", "h", "q"])]);
}

/// The plane turns the forwarder's notices into events for the right
/// participants: a publisher hears which encodings are wanted once its
/// only subscriber hides the track, and again when it shows it.
#[test]
fn the_media_plane_tells_the_publisher_what_is_wanted() {
    use sfu_core::{Input, MediaCommand, MediaConfig, MediaEvent, MediaPlane, Output, TrackKind};
    let t0 = std::time::Instant::now();
    let mut plane = MediaPlane::new(MediaConfig::new("127.0.0.1:7882".parse().unwrap()), t0);
    let mut now = t0;
    let mut events: Vec<(String, MediaEvent)> = Vec::new();
    let mut step =
        |plane: &mut MediaPlane, now: std::time::Instant, input: Option<MediaCommand>| {
            plane.handle_input(now, input.map_or(Input::Timeout, Input::Command));
            loop {
                match plane.poll_output(now) {
                    Output::Event { participant, event } => events.push((participant, event)),
                    Output::Timeout(_) => break,
                    Output::Transmit(_) => {}
                }
            }
        };
    for who in ["PA_a", "PA_b"] {
        let join = MediaCommand::Join {
            participant: who.into(),
            room: "r".into(),
            can_publish: true,
            auto_subscribe: true,
        };
        step(&mut plane, now, Some(join));
    }
    let publish = MediaCommand::Publish {
        participant: "PA_a".into(),
        track_id: "TR_cam".into(),
        mid: "0".into(),
        kind: TrackKind::Video,
        simulcast: RIDS.iter().map(|r| (*r).to_owned()).collect(),
        layer_sizes: declared(),
    };
    step(&mut plane, now, Some(publish));
    let settings = |visible| MediaCommand::TrackSettings {
        participant: "PA_b".into(),
        track_id: "TR_cam".into(),
        visible,
        max_width: None,
        max_height: None,
    };
    step(&mut plane, now, Some(settings(false)));
    for _ in 0..8 {
        now += Duration::from_millis(500);
        step(&mut plane, now, None);
    }
    step(&mut plane, now, Some(settings(true)));
    now += Duration::from_millis(500);
    step(&mut plane, now, None);
    let layers: Vec<(String, String, Vec<String>)> = events
        .into_iter()
        .filter_map(|(p, e)| match e {
            MediaEvent::PublisherLayers { track_id, active } => Some((p, track_id, active)),
            _ => None,
        })
        .collect();
    let all: Vec<String> = RIDS.iter().map(|r| (*r).to_owned()).collect();
    assert_eq!(
        layers,
        [
            ("PA_a".to_owned(), "TR_cam".to_owned(), Vec::new()),
            ("PA_a".to_owned(), "TR_cam".to_owned(), all)
        ]
    );
    assert_eq!(plane.stats().dynacast_updates, 2);
}
