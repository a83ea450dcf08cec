//! The dependency descriptor through the media plane: its bytes pass
//! unchanged, and it gates subscribers onto keyframes. Real str0m peers on a
//! seeded virtual-time network.

use sfu_core::DropReason;
use std::time::Duration;
use testkit::peer::Received;
use testkit::plane_world::{DdVideo, SFU, World};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Video packets client `c` received from client `src`, in arrival order.
fn video_from(w: &World, c: usize, src: usize) -> Vec<&Received> {
    w.video_from(c, src).collect()
}

/// An L3T3 keyframe descriptor captured from Chrome (95 bytes, so it needs
/// the two-byte extension form), from LiveKit's dependency descriptor tests,
/// followed by descriptors of the same capture without a structure.
const CAPTURE: [&str; 5] = [
    "c1017280081485214eafffaaaa863cf0430c10c302afc0aaa0063c00430010c002a000a80006000040001d954926e082b04a0941b820ac1282503157f974000ca864330e222222eca8655304224230eca877530077004200ef008601df010d",
    "86017340fc",
    "46017340fc",
    "c30175",
    "0b0174",
];

#[test]
fn descriptor_bytes_arrive_unchanged_at_every_subscriber() {
    let mut w = World::new(21);
    for _ in 0..3 {
        w.join("room");
    }
    w.publish_av(0);
    w.advance(Duration::from_secs(2));
    let mid = w.video_mid(0);
    let mut dds: Vec<Vec<u8>> = CAPTURE.iter().map(|h| hex(h)).collect();
    // Then our own single-layer writer's keyframe and delta descriptors.
    for (n, keyframe) in [(1u16, true), (2, false)] {
        let mark = rtp_dd::FrameMark {
            start_of_frame: true,
            end_of_frame: true,
            frame_number: n,
            keyframe,
        };
        let mut buf = [0u8; rtp_dd::MAX_LEN];
        let len = rtp_dd::write(&mark, &mut buf);
        dds.push(buf[..len].to_vec());
    }
    let mut sent = Vec::new();
    for (n, dd) in dds.iter().enumerate() {
        let payload = vec![0, 1, n as u8, 0xAB];
        let now = w.now;
        assert!(w.clients[0].publisher.send_rtp_dd(
            now,
            mid,
            n as u32 * 3000,
            true,
            &payload,
            Some(dd)
        ));
        w.clients[0].publisher.poll(now);
        w.flush();
        w.advance(Duration::from_millis(30));
        sent.push((dd.clone(), payload));
    }
    w.advance(Duration::from_millis(200));
    for c in 1..3 {
        let got: Vec<(Vec<u8>, Vec<u8>)> = video_from(&w, c, 0)
            .iter()
            .map(|r| (r.dd.clone().expect("descriptor present"), r.payload.clone()))
            .collect();
        assert_eq!(got, sent, "client {c}");
    }
    let s = w.plane.stats();
    assert_eq!(s.dropped(DropReason::AwaitingKeyframe), 0);
    assert_eq!(s.dropped(DropReason::BadDependencyDescriptor), 0);
}

#[test]
fn malformed_descriptor_is_dropped_and_counted() {
    let mut w = World::new(25);
    w.join("room");
    w.join("room");
    w.publish_av(0);
    w.advance(Duration::from_secs(2));
    let mid = w.video_mid(0);
    // Two bytes: shorter than the mandatory fields. Then a structure that
    // claims more template layers than it carries.
    for dd in [&[0x80u8, 0x01][..], &[0x80, 0, 1, 0x80, 0x00, 0x00][..]] {
        let now = w.now;
        assert!(
            w.clients[0]
                .publisher
                .send_rtp_dd(now, mid, 0, true, &[0, 1, 9, 9], Some(dd))
        );
        w.clients[0].publisher.poll(now);
        w.flush();
        w.advance(Duration::from_millis(30));
    }
    w.advance(Duration::from_millis(100));
    assert!(video_from(&w, 1, 0).is_empty());
    assert_eq!(
        w.plane.stats().dropped(DropReason::BadDependencyDescriptor),
        2
    );
}

#[test]
fn late_subscriber_starts_on_a_keyframe() {
    let mut w = World::new(22);
    w.join("room");
    w.publish_av(0);
    w.advance(Duration::from_secs(1));
    let mut v = DdVideo::new(0, true);
    w.send_dd_video(&mut v, Duration::from_secs(1));
    assert_eq!(w.clients[0].publisher.keyframe_requests, 0, "nobody asked");
    let sent_before_join = v.sent.len();
    let sub = w.join("room");
    w.send_dd_video(&mut v, Duration::from_secs(2));
    w.advance(Duration::from_millis(100));

    assert!(
        w.clients[0].publisher.keyframe_requests >= 1,
        "the SFU asked the publisher for a keyframe"
    );
    let got = video_from(&w, sub, 0);
    assert!(!got.is_empty(), "the subscriber receives video");
    let first = rtp_dd::parse(got[0].dd.as_deref().expect("descriptor")).expect("parses");
    assert!(first.is_keyframe_start(), "first packet starts a keyframe");
    assert_eq!(got[0].payload[4..6], [0, 1], "first packet of a keyframe");
    // The keyframe was produced for the subscriber, after it joined, and
    // everything from it on arrives in order, byte for byte.
    let start = v
        .sent
        .iter()
        .position(|(_, p)| *p == got[0].payload)
        .expect("sent");
    assert!(start > sent_before_join);
    let want = &v.sent[start..];
    assert_eq!(got.len(), want.len());
    for (r, (dd, payload)) in got.iter().zip(want) {
        assert_eq!((r.dd.as_ref(), &r.payload), (Some(dd), payload));
    }
    // The skipped packets left no gap: the stream starts at the rewriter's
    // first sequence number and counts up by one.
    for (k, r) in got.iter().enumerate() {
        assert_eq!(r.seq, 1000 + k as u16);
    }
    // At least the two delta frames the encoder sent before reacting.
    let skipped = w.plane.stats().dropped(DropReason::AwaitingKeyframe);
    assert!(skipped >= 4, "skipped {skipped}");
}

#[test]
fn ignored_keyframe_request_is_repeated_after_keyframe_retry() {
    let mut w = World::new(23);
    w.join("room");
    w.publish_av(0);
    w.advance(Duration::from_secs(1));
    // This publisher sends one keyframe at the start and ignores requests.
    let mut v = DdVideo::new(0, false);
    w.send_dd_video(&mut v, Duration::from_millis(500));
    let sub = w.join("room");
    let requests = |w: &World| w.clients[0].publisher.keyframe_requests;
    w.send_dd_video(&mut v, Duration::from_millis(900));
    assert_eq!(requests(&w), 1, "the request when the subscriber started");
    w.send_dd_video(&mut v, Duration::from_millis(200));
    assert_eq!(requests(&w), 2, "repeated after keyframe_retry (1 s)");
    w.send_dd_video(&mut v, Duration::from_secs(1));
    assert_eq!(requests(&w), 3, "and again");
    assert!(video_from(&w, sub, 0).is_empty(), "no keyframe, no video");
    // A keyframe at last: the subscriber starts and the requests stop.
    v.keyframe_next();
    w.send_dd_video(&mut v, Duration::from_secs(3));
    assert_eq!(requests(&w), 3);
    let got = video_from(&w, sub, 0);
    assert!(!got.is_empty());
    assert_eq!(got[0].payload[4..6], [0, 1]);
    assert_eq!(w.plane.stats().keyframe_requests_out, 3);
}

#[test]
fn repeated_requests_stay_throttled() {
    // Retrying faster than the throttle allows: requests still go out at
    // most once per keyframe_min_interval (500 ms).
    let mut w = World::with_config(24, |c| c.keyframe_retry = Duration::from_millis(200));
    w.join("room");
    w.publish_av(0);
    w.advance(Duration::from_secs(1));
    let mut v = DdVideo::new(0, false);
    w.send_dd_video(&mut v, Duration::from_millis(500));
    w.join("room");
    w.send_dd_video(&mut v, Duration::from_millis(2050));
    // At 0, 0.5, 1.0, 1.5 and 2.0 s after the subscriber started.
    assert_eq!(w.clients[0].publisher.keyframe_requests, 5);
}

#[test]
fn reused_mline_waits_for_the_new_publishers_keyframe() {
    let mut w = World::new(27);
    let host = w.join("room");
    let first = w.join("room");
    w.publish_av(first);
    w.advance(Duration::from_secs(1));
    let mut v = DdVideo::new(first, true);
    w.send_dd_video(&mut v, Duration::from_millis(600));
    let from_first = video_from(&w, host, first).len();
    assert_eq!(from_first, v.sent.len());
    w.leave(first);
    w.advance(Duration::from_millis(100));
    // The next publisher's video takes over the host's idle video m-line,
    // and its stream is already running without a keyframe.
    let second = w.join("room");
    w.publish_av(second);
    let mut v2 = DdVideo::new(second, true).mid_stream();
    w.send_dd_video(&mut v2, Duration::from_secs(2));
    w.advance(Duration::from_millis(100));
    let got = video_from(&w, host, second);
    assert!(!got.is_empty(), "the host receives the second publisher");
    assert_eq!(got[0].payload[4..6], [0, 1], "starting on a keyframe");
    assert!(w.plane.stats().dropped(DropReason::AwaitingKeyframe) > 0);
    assert!(w.clients[second].publisher.keyframe_requests >= 1);
    // One m-line, one continuous sequence across both publishers.
    let line: Vec<u16> = w.clients[host]
        .subscriber
        .received
        .iter()
        .filter(|r| r.payload[1] == 1)
        .map(|r| r.seq)
        .collect();
    assert_eq!(line.len(), from_first + got.len());
    for pair in line.windows(2) {
        assert_eq!(pair[1], pair[0].wrapping_add(1));
    }
}

#[test]
fn stream_without_descriptor_is_forwarded_from_the_first_packet() {
    let mut w = World::new(26);
    w.join("room");
    w.publish_av(0);
    w.advance(Duration::from_secs(1));
    w.send_media(Duration::from_secs(1), &[]);
    let sub = w.join("room");
    let sent = w.send_media(Duration::from_secs(1), &[]);
    w.advance(Duration::from_millis(200));
    let got: Vec<&Vec<u8>> = video_from(&w, sub, 0).iter().map(|r| &r.payload).collect();
    let want: Vec<&Vec<u8>> = sent[&(0, 1)].iter().collect();
    assert!(
        got.iter().all(|r| r.len() > 4),
        "no descriptor, plain packets"
    );
    assert_eq!(got, want, "every packet since the subscriber joined");
    assert!(video_from(&w, sub, 0).iter().all(|r| r.dd.is_none()));
    assert_eq!(w.plane.stats().dropped(DropReason::AwaitingKeyframe), 0);
}

/// Packets repaired by NACK/RTX must still carry the descriptor: without it
/// an E2EE receiver cannot place them in a frame, and the repair is wasted.
#[test]
fn repaired_packets_keep_their_descriptor() {
    let mut w = World::new(22);
    for _ in 0..2 {
        w.join("room");
    }
    w.publish_av(0);
    w.advance(Duration::from_secs(2));
    let lossy = testkit::netem::Link {
        loss: 0.10,
        delay: Duration::from_millis(10),
        ..testkit::netem::Link::default()
    };
    let sub = w.clients[1].subscriber.addr();
    w.net.set_link(SFU, sub, lossy);
    let dropped_before = w.net.dropped;
    let mid = w.video_mid(0);
    let total = 300u16;
    for n in 0..total {
        let mark = rtp_dd::FrameMark {
            start_of_frame: true,
            end_of_frame: true,
            frame_number: n,
            keyframe: n == 0,
        };
        let mut buf = [0u8; rtp_dd::MAX_LEN];
        let len = rtp_dd::write(&mark, &mut buf);
        let payload = vec![0, 1, (n >> 8) as u8, n as u8];
        let now = w.now;
        assert!(w.clients[0].publisher.send_rtp_dd(
            now,
            mid,
            u32::from(n) * 3000,
            true,
            &payload,
            Some(&buf[..len])
        ));
        w.clients[0].publisher.poll(now);
        w.flush();
        w.advance(Duration::from_millis(20));
    }
    w.advance(Duration::from_secs(2));
    let lost_on_link = w.net.dropped - dropped_before;
    let got = video_from(&w, 1, 0);
    let without_dd = got.iter().filter(|r| r.dd.is_none()).count();
    let mut distinct: Vec<&Vec<u8>> = got.iter().map(|r| &r.payload).collect();
    distinct.sort();
    distinct.dedup();
    println!(
        "received {} video packets ({} distinct of {total}), {without_dd} without a descriptor; {lost_on_link} datagrams lost on the link",
        got.len(),
        distinct.len()
    );
    assert!(lost_on_link > 10, "the link lost packets");
    assert!(
        distinct.len() >= usize::from(total) * 99 / 100,
        "NACK repaired the losses"
    );
    assert_eq!(
        without_dd, 0,
        "every packet, repaired ones included, carries the descriptor"
    );
}
