//! A subscriber that keeps asking for keyframes (one that cannot decrypt,
//! say) must not make its publisher encode one every throttle window. Real
//! str0m peers on a seeded virtual-time network; the publisher answers every
//! request with a keyframe, as an encoder does.

use std::time::Duration;
use str0m::media::Mid;
use testkit::plane_world::{DdVideo, World};

/// Runs `v` for `dur`; client `sub` sends a PLI on `line` (if any) every
/// `every`, starting now.
fn flood(
    w: &mut World,
    v: &mut DdVideo,
    sub: usize,
    line: Option<Mid>,
    every: Duration,
    dur: Duration,
) {
    let end = w.now + dur;
    while w.now < end {
        if let Some(line) = line {
            let now = w.now;
            w.clients[sub].subscriber.request_keyframe(line);
            w.clients[sub].subscriber.poll(now);
            w.flush();
        }
        w.send_dd_video(v, every.min(end - w.now));
    }
}

/// A publisher with one subscriber that receives its video; returns the
/// world, the running video and the subscriber's line.
fn room() -> (World, DdVideo, Mid) {
    let mut w = World::new(41);
    w.join("room");
    w.publish_av(0);
    w.advance(Duration::from_secs(1));
    let mut v = DdVideo::new(0, true);
    w.send_dd_video(&mut v, Duration::from_millis(300));
    w.join("room");
    w.send_dd_video(&mut v, Duration::from_secs(1));
    assert!(
        w.video_from(1, 0).count() > 0,
        "the subscriber receives video"
    );
    let line = w.video_line(1, 0).expect("subscribed to the video");
    (w, v, line)
}

/// A receiver that cannot decrypt asks about every 360 ms (≈ 96 PLIs in
/// 35 s, as Chromium did with a wrong key). Its first request passes, then
/// its interval doubles from 0.5 s up to 16 s: the first PLI after each
/// interval passes, at 0, 0.72, 1.8, 3.96, 8.28, 16.56 and 32.76 s, so 7.
/// Without the backoff, the track's 500 ms throttle let 71 of 98 through.
#[test]
fn a_flooding_subscriber_costs_its_publisher_few_keyframes() {
    let (mut w, mut v, line) = room();
    let before = w.clients[0].publisher.keyframe_requests;
    let keyframes_before = v
        .sent
        .iter()
        .filter(|(_, p)| p[4] == 0 && p[5] == 1)
        .count();
    flood(
        &mut w,
        &mut v,
        1,
        Some(line),
        Duration::from_millis(360),
        Duration::from_secs(35),
    );
    w.advance(Duration::from_millis(200));
    let forwarded = w.clients[0].publisher.keyframe_requests - before;
    let keyframes = v
        .sent
        .iter()
        .filter(|(_, p)| p[4] == 0 && p[5] == 1)
        .count()
        - keyframes_before;
    let s = w.plane.stats();
    println!(
        "PLIs received by the SFU {}, sent to the publisher {forwarded}, keyframes encoded {keyframes}, refused {}",
        s.keyframe_requests_in, s.keyframe_requests_throttled
    );
    assert!(s.keyframe_requests_in >= 90, "the flood reached the SFU");
    assert!(
        forwarded <= 7,
        "{forwarded} keyframe requests reached the publisher"
    );
    assert!(keyframes <= 7, "{keyframes} keyframes encoded");
    assert_eq!(
        s.keyframe_requests_throttled + forwarded,
        s.keyframe_requests_in,
        "every request is forwarded or counted as refused"
    );
}

/// How long after joining a newcomer gets its first video packet, when it
/// joins `after` into client 1's flood (or the same time without one).
fn newcomer_start(flooding: bool, after: Duration) -> Duration {
    let (mut w, mut v, line) = room();
    let every = Duration::from_millis(360);
    let line = flooding.then_some(line);
    flood(&mut w, &mut v, 1, line, every, after);
    let joined = w.now;
    let c = w.join("room");
    flood(&mut w, &mut v, 1, line, every, Duration::from_secs(3));
    let first = w
        .video_from(c, 0)
        .next()
        .expect("the newcomer receives video");
    assert_eq!(first.payload[4..6], [0, 1], "starting on a keyframe");
    first.at - joined
}

/// The flooder's spent budget is its own: a newcomer's keyframe is at most
/// one track throttle window (500 ms) later than without the flood. Joining
/// just after one of the flooder's requests passed (at 16.56 s) is that
/// worst case: the newcomer's request waits for the track's window.
#[test]
fn a_newcomer_starts_promptly_while_another_subscriber_floods() {
    for after_ms in [16_300, 16_500, 16_560, 16_700, 20_000] {
        let after = Duration::from_millis(after_ms);
        let quiet = newcomer_start(false, after);
        let flooded = newcomer_start(true, after);
        println!(
            "joined at {after:?}: first video after {quiet:?} alone, {flooded:?} during the flood"
        );
        assert!(flooded <= quiet + Duration::from_millis(500));
        assert!(flooded < Duration::from_secs(1));
    }
}

/// After 32 s of silence (twice its 16 s interval) the subscriber that
/// flooded is treated as new: its requests pass at 0, 0.72 and 1.8 s
/// again. A little less silence, and only the first passes (16 s are up).
#[test]
fn a_flooder_that_went_quiet_is_heard_again() {
    for (silence_ms, passed) in [(31_500, 1), (32_100, 3)] {
        let (mut w, mut v, line) = room();
        let every = Duration::from_millis(360);
        flood(
            &mut w,
            &mut v,
            1,
            Some(line),
            every,
            Duration::from_secs(35),
        );
        let requests = |w: &World| w.clients[0].publisher.keyframe_requests;
        // Its last PLI went at 34.92 s.
        let rest = Duration::from_millis(silence_ms - 80);
        flood(&mut w, &mut v, 1, None, every, rest);
        let before = requests(&w);
        flood(&mut w, &mut v, 1, Some(line), every, Duration::from_secs(2));
        w.advance(Duration::from_millis(200));
        assert_eq!(requests(&w) - before, passed, "after {silence_ms} ms");
    }
}
