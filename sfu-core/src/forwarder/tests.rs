//! Unit tests of the forwarding core.

use super::*;

fn mid(s: &str) -> Mid {
    Mid::from(s)
}

fn meta(seq: u64) -> PacketMeta<'static> {
    PacketMeta {
        ssrc: 1,
        seq,
        ts: seq as u32 * 960,
        clock_rate: 48_000,
        rid: None,
        dd: DdSignal::Absent,
        descriptor: None,
        bytes: 100,
        audio_level: None,
        voice: None,
    }
}

#[test]
fn fanout_reaches_every_negotiated_subscriber_but_not_the_publisher() {
    let now = Instant::now();
    let mut r = Forwarder::default();
    let a = r.add_participant("room", true);
    let b = r.add_participant("room", true);
    let c = r.add_participant("room", true);
    let other = r.add_participant("elsewhere", true);
    let (t, auto) = r.add_track(a, TrackKind::Audio, vec![]).unwrap();
    assert_eq!(auto, vec![b, c]);
    for s in &auto {
        assert!(r.subscribe(*s, t));
    }
    assert!(!r.subscribe(a, t), "publisher cannot subscribe to itself");
    assert!(!r.subscribe(other, t), "other rooms cannot subscribe");
    assert!(!r.subscribe(b, t), "no double subscription");
    r.set_out_mid(b, t, mid("0"));
    let mut got = Vec::new();
    r.forward(t, meta(5), now, |f| got.push(f.subscriber));
    assert_eq!(got, vec![b], "c is not negotiated yet");
    r.set_out_mid(c, t, mid("3"));
    got.clear();
    r.forward(t, meta(6), now, |f| got.push(f.subscriber));
    assert_eq!(got, vec![b, c]);
}

#[test]
fn leaving_frees_everything() {
    let mut r = Forwarder::default();
    let a = r.add_participant("room", true);
    let b = r.add_participant("room", true);
    let (t, _) = r.add_track(a, TrackKind::Video, vec![]).unwrap();
    r.subscribe(b, t);
    r.set_out_mid(b, t, mid("1"));
    let (tb, _) = r.add_track(b, TrackKind::Audio, vec![]).unwrap();
    r.subscribe(a, tb);
    let ended = r.remove_participant(a);
    assert_eq!(
        ended,
        vec![Unsubscribed {
            track: t,
            subscriber: b,
            mid: Some(mid("1")),
            rewriter: Rewriter::default(),
        }]
    );
    assert_eq!(r.track_count(), 1);
    assert_eq!(r.subscription_count(), 0);
    r.remove_participant(b);
    assert_eq!(r.room_count(), 0);
    assert_eq!(r.participant_count(), 0);
    assert_eq!(r.track_count(), 0);
    assert!(r.room_ids.is_empty());
}

#[test]
fn late_joiner_gets_existing_tracks() {
    let mut r = Forwarder::default();
    let a = r.add_participant("room", true);
    let (t, auto) = r.add_track(a, TrackKind::Video, vec![]).unwrap();
    assert!(auto.is_empty());
    let b = r.add_participant("room", true);
    let c = r.add_participant("room", false);
    assert_eq!(r.auto_subscriptions(b), vec![t]);
    assert!(r.auto_subscriptions(c).is_empty());
    r.subscribe(b, t);
    assert!(r.auto_subscriptions(b).is_empty());
}

#[test]
fn only_the_forwarded_simulcast_layer_passes() {
    let now = Instant::now();
    let mut r = Forwarder::default();
    let a = r.add_participant("room", true);
    let b = r.add_participant("room", true);
    let (t, _) = r.add_track(a, TrackKind::Video, vec!["h".into()]).unwrap();
    r.subscribe(b, t);
    r.set_out_mid(b, t, mid("0"));
    let mut n = 0;
    let mut m = meta(1);
    m.rid = Some("l");
    r.forward(t, m, now, |_| n += 1);
    assert_eq!(n, 0);
    m.rid = Some("h");
    r.forward(t, m, now, |_| n += 1);
    assert_eq!(n, 1);
}

/// Subscriber b is live from the start, c joins mid-stream.
fn gated_room() -> (Forwarder, TrackKey, ParticipantKey, ParticipantKey) {
    let mut r = Forwarder::default();
    let a = r.add_participant("room", true);
    let b = r.add_participant("room", true);
    let c = r.add_participant("room", true);
    let (t, _) = r.add_track(a, TrackKind::Video, vec![]).unwrap();
    r.subscribe(b, t);
    r.subscribe(c, t);
    r.set_out_mid(b, t, mid("0"));
    (r, t, b, c)
}

fn dd(seq: u64, dd: DdSignal) -> PacketMeta<'static> {
    PacketMeta { dd, ..meta(seq) }
}

#[test]
fn descriptor_tracks_start_subscribers_on_keyframes() {
    let now = Instant::now();
    let (mut r, t, b, c) = gated_room();
    let mut got = Vec::new();
    let g = r.forward(t, dd(1, DdSignal::Other), now, |f| got.push(f.subscriber));
    assert!(got.is_empty(), "b starts on a keyframe");
    assert_eq!(
        g,
        Some(Gate {
            awaiting_keyframe: 1,
            request_keyframe: true,
            ..Gate::default()
        })
    );
    r.forward(t, dd(2, DdSignal::KeyframeStart), now, |f| {
        got.push(f.subscriber)
    });
    r.forward(t, dd(3, DdSignal::Other), now, |f| got.push(f.subscriber));
    assert_eq!(got, vec![b, b]);
    // c goes live mid-stream: only b gets delta packets until the next
    // keyframe, and the keyframe's first packet is c's first.
    r.set_out_mid(c, t, mid("1"));
    let mut fwd = Vec::new();
    let g = r.forward(t, dd(4, DdSignal::Other), now, |f| fwd.push(f));
    assert_eq!(g.map(|g| g.awaiting_keyframe), Some(1));
    assert_eq!(
        fwd.iter().map(|f| f.subscriber).collect::<Vec<_>>(),
        vec![b]
    );
    fwd.clear();
    r.forward(t, dd(5, DdSignal::KeyframeStart), now, |f| fwd.push(f));
    let to_c: Vec<_> = fwd.iter().filter(|f| f.subscriber == c).collect();
    assert_eq!(to_c.len(), 1);
    // Its output starts at the first sequence number, with no gap for
    // the packets it skipped.
    assert_eq!(to_c[0].rewritten.seq, 1000);
}

#[test]
fn reused_line_waits_even_if_the_ssrc_is_the_same() {
    let now = Instant::now();
    let (mut r, t, _, c) = gated_room();
    // The line's last source happens to have the new track's SSRC.
    let mut line = Rewriter::default();
    line.rewrite(1, 7, 0, 90_000, now);
    r.set_out_line(c, t, mid("1"), line);
    let mut to_c = 0;
    let g = r.forward(t, dd(8, DdSignal::Other), now, |f| {
        to_c += usize::from(f.subscriber == c);
    });
    assert_eq!(to_c, 0);
    assert_eq!(g.map(|g| g.awaiting_keyframe), Some(2), "b and c wait");
}

#[test]
fn tracks_without_descriptor_are_not_gated() {
    let now = Instant::now();
    let (mut r, t, b, _) = gated_room();
    let mut got = Vec::new();
    let g = r.forward(t, meta(1), now, |f| got.push(f.subscriber));
    assert_eq!(got, vec![b]);
    assert_eq!(g, Some(Gate::default()));
    assert_eq!(r.forward(TrackKey(999), meta(2), now, |_| {}), None);
}

#[test]
fn new_source_on_a_gated_track_switches_at_a_keyframe() {
    let now = Instant::now();
    let (mut r, t, b, _) = gated_room();
    let mut seqs = Vec::new();
    r.forward(t, dd(10, DdSignal::KeyframeStart), now, |f| {
        seqs.push(f.rewritten.seq)
    });
    r.forward(t, dd(11, DdSignal::Other), now, |f| {
        seqs.push(f.rewritten.seq)
    });
    // The publisher restarts with SSRC 2: its delta packets wait, while
    // a late packet of the old source still passes.
    let new = |seq, dd| PacketMeta {
        ssrc: 2,
        ..self::dd(seq, dd)
    };
    let g = r.forward(t, new(500, DdSignal::Other), now, |f| {
        seqs.push(f.rewritten.seq)
    });
    assert_eq!(g.map(|g| g.awaiting_keyframe), Some(1));
    r.forward(t, dd(12, DdSignal::Other), now, |f| {
        seqs.push(f.rewritten.seq)
    });
    r.forward(t, new(501, DdSignal::KeyframeStart), now, |f| {
        assert_eq!(f.subscriber, b);
        seqs.push(f.rewritten.seq);
    });
    r.forward(t, new(502, DdSignal::Other), now, |f| {
        seqs.push(f.rewritten.seq)
    });
    assert_eq!(seqs, vec![1000, 1001, 1002, 1003, 1004]);
}

#[test]
fn keyframe_requests_repeat_while_a_subscriber_waits() {
    let t0 = Instant::now();
    let min = Duration::from_millis(500);
    let (mut r, t, _, _) = gated_room();
    let asks = |r: &mut Forwarder, seq, at| {
        r.forward(t, dd(seq, DdSignal::Other), at, |_| {})
            .map(|g| g.request_keyframe)
    };
    // The go-live request, then only delta packets.
    assert!(r.keyframe_request(t, t0, min));
    assert_eq!(asks(&mut r, 1, t0), Some(false), "one is out");
    let almost = t0 + Duration::from_millis(999);
    assert_eq!(asks(&mut r, 2, almost), Some(false));
    let t1 = t0 + DEFAULT_KEYFRAME_RETRY;
    assert_eq!(asks(&mut r, 3, t1), Some(true), "ignored: ask again");
    assert!(r.keyframe_request(t, t1, min), "past the throttle window");
    assert_eq!(asks(&mut r, 4, t1), Some(false));
    // A keyframe arrives: nobody waits, so nothing asks.
    r.forward(t, dd(5, DdSignal::KeyframeStart), t1, |_| {});
    let later = t1 + DEFAULT_KEYFRAME_RETRY * 3;
    assert_eq!(asks(&mut r, 6, later), Some(false));
}

const MIN: Duration = Duration::from_millis(500);
const MAX: Duration = crate::keyframe::DEFAULT_KEYFRAME_BACKOFF_MAX;

/// Runs `dur` of virtual time from `from` in 10 ms steps, polling deferred
/// requests as the plane's timer does, with `asks` saying at each step who
/// asks for a keyframe. Returns when requests reached the publisher, as
/// offsets from `from`.
fn run(
    r: &mut Forwarder,
    t: TrackKey,
    from: Instant,
    dur: Duration,
    mut asks: impl FnMut(Duration) -> Vec<ParticipantKey>,
) -> Vec<Duration> {
    let mut sent = Vec::new();
    let mut due = Vec::new();
    let mut at = Duration::ZERO;
    while at < dur {
        let now = from + at;
        r.due_keyframe_requests(now, MIN, &mut due);
        sent.extend(due.drain(..).map(|_| at));
        for s in asks(at) {
            if r.subscriber_keyframe_request(t, s, now, MIN, MAX) == KeyframeAsk::Send {
                sent.push(at);
            }
        }
        at += Duration::from_millis(10);
    }
    sent
}

/// `who` asks every `every`, starting at offset zero.
fn every(who: ParticipantKey, every: Duration) -> impl FnMut(Duration) -> Vec<ParticipantKey> {
    move |at| {
        if (at.as_millis() % every.as_millis()) == 0 {
            vec![who]
        } else {
            Vec::new()
        }
    }
}

#[test]
fn a_flooding_subscriber_gets_a_handful_of_keyframes() {
    let t0 = Instant::now();
    let (mut r, t, b, _) = gated_room();
    let ms = Duration::from_millis;
    let sent = run(&mut r, t, t0, ms(35_000), every(b, ms(100)));
    // 350 requests; the track's throttle alone would pass 70.
    assert_eq!(
        sent,
        [0, 500, 1500, 3500, 7500, 15_500, 31_500].map(ms).to_vec()
    );
}

#[test]
fn a_flooders_budget_does_not_delay_another_subscriber() {
    let t0 = Instant::now();
    let (mut r, t, b, c) = gated_room();
    let ms = Duration::from_millis;
    run(&mut r, t, t0, ms(20_000), every(b, ms(100)));
    // b is at its longest interval; c's first request passes at once.
    let now = t0 + ms(20_000);
    assert_eq!(
        r.subscriber_keyframe_request(t, b, now, MIN, MAX),
        KeyframeAsk::OverBudget
    );
    assert_eq!(
        r.subscriber_keyframe_request(t, c, now, MIN, MAX),
        KeyframeAsk::Send
    );
    // Right after one of b's requests passed, c's is merged into the
    // track's next request, due when the track's window ends.
    let (mut r, t, b, c) = gated_room();
    run(&mut r, t, t0, ms(15_500), every(b, ms(100)));
    let passed = t0 + ms(15_500);
    assert_eq!(
        r.subscriber_keyframe_request(t, b, passed, MIN, MAX),
        KeyframeAsk::Send
    );
    let asked = passed + ms(200);
    assert_eq!(
        r.subscriber_keyframe_request(t, c, asked, MIN, MAX),
        KeyframeAsk::Deferred
    );
    assert_eq!(r.next_keyframe_due(MIN), Some(passed + MIN));
}

#[test]
fn the_sfus_own_requests_charge_no_subscriber() {
    let t0 = Instant::now();
    let (mut r, t, b, _) = gated_room();
    // Go-live and retry requests, every second for a minute.
    for s in 0..60 {
        r.keyframe_request(t, t0 + Duration::from_secs(s), MIN);
    }
    let now = t0 + Duration::from_secs(60);
    assert_eq!(
        r.subscriber_keyframe_request(t, b, now, MIN, MAX),
        KeyframeAsk::Send
    );
    assert_eq!(
        r.subscriber_keyframe_request(t, b, now + MIN, MIN, MAX),
        KeyframeAsk::Send,
        "b's first interval"
    );
}

#[test]
fn a_flooder_that_goes_quiet_starts_over() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    // b's last request is at 34.9 s, with the 16 s interval in force since
    // 31.5 s: it must stay quiet for 32 s to start over.
    let last = t0 + ms(34_900);
    for (quiet, want) in [(ms(31_900), vec![0]), (ms(32_000), vec![0, 500, 1500])] {
        let (mut r, t, b, _) = gated_room();
        run(&mut r, t, t0, ms(35_000), every(b, ms(100)));
        let sent = run(&mut r, t, last + quiet, ms(3_000), every(b, ms(100)));
        let want: Vec<_> = want.into_iter().map(ms).collect();
        assert_eq!(sent, want, "back after {quiet:?}");
    }
}
