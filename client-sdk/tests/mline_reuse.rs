//! The real SFU reuses subscriber m-lines: `unsubscribed{T1}` with the
//! m-line going `inactive`, then `subscribed{T2, same mid}` with it
//! `sendonly` again and T2's media on the same SSRC, its sequence numbers
//! continuing. T1 must end and get none of T2's packets; T2 must get every
//! packet sent on it, byte for byte.

mod common;

use client_sdk::config::ConnectOptions;
use client_sdk::proto::Target;
use client_sdk::transport::{Event, Participant};
use client_sdk::{Codec, TrackSpec};
use common::{LIMIT, collect_and_check, drain, next_event, payload, warm_up};
use std::time::Duration;
use testkit::token::dev_token;

const PACKETS: u32 = 100;

/// Events a test does not look at.
fn ignore(event: Event) {
    match event {
        Event::ConnectionStateChanged { .. }
        | Event::ParticipantJoined(_)
        | Event::TrackPublished(_)
        | Event::KeyframeRequested { .. } => {}
        other => panic!("unexpected {other:?}"),
    }
}

async fn send(track: &client_sdk::transport::LocalTrack, cid: &str, range: std::ops::Range<u32>) {
    for i in range {
        track
            .write_rtp(payload(cid, i), i * 3000, true)
            .await
            .expect("write video");
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_mline_ends_the_old_track_and_feeds_the_new_one() {
    common::init_tracing();
    let server = testkit::server::sfu().await;
    let url = testkit::server::url(&server);
    let (me, mut events) = Participant::connect(
        &url,
        &dev_token("room", "alice"),
        ConnectOptions::loopback(),
    )
    .await
    .expect("connect");
    let (bob, mut bob_events) =
        Participant::connect(&url, &dev_token("room", "bob"), ConnectOptions::loopback())
            .await
            .expect("bob connects");
    let cam = bob
        .publish_track(TrackSpec::new("cam", Codec::vp8()))
        .await
        .expect("publish");
    bob.wait_connected(Target::Publisher, LIMIT)
        .await
        .expect("publisher connected");

    // T1 on mid M, first-time pairing.
    let (mut t1, _) = warm_up(&cam, "cam", &mut events, ignore).await;
    assert_eq!(t1.info().track_id, cam.track_id());
    let mid = t1.info().mid.clone();
    send(&cam, "cam", 0..PACKETS).await;
    let first = collect_and_check("cam", PACKETS, &mut t1).await;
    let ssrc = first[0].ssrc;

    // Unsubscribed, m-line inactive: T1 drains and ends.
    assert!(me.unsubscribe(cam.track_id()));
    loop {
        match next_event(&mut events).await {
            Event::TrackUnsubscribed { track_id } => {
                assert_eq!(track_id, cam.track_id());
                break;
            }
            other => ignore(other),
        }
    }
    let ended = tokio::time::timeout(LIMIT, async {
        while let Some(packet) = t1.recv().await {
            let i = &packet.payload[..8.min(packet.payload.len())];
            assert!(i.starts_with(b"cam/"), "T1 got a foreign packet");
        }
    })
    .await;
    assert!(ended.is_ok(), "T1 never ended");
    let t1_received = t1.received();

    // Bob goes on sending T1, which Alice no longer takes.
    send(&cam, "gap", 0..20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // T2 takes the freed m-line: sendonly again, same SSRC.
    let cam2 = bob
        .publish_track(TrackSpec::new("cam2", Codec::vp8()))
        .await
        .expect("publish");
    let (mut t2, warm) = warm_up(&cam2, "cam2", &mut events, ignore).await;
    assert_eq!(t2.info().track_id, cam2.track_id());
    assert_eq!(t2.info().mid, mid, "same m-line");
    assert_eq!(t2.info().participant_id, bob.participant_id());
    assert_eq!(t2.info().kind, client_sdk::proto::TrackKind::Video);
    assert_eq!(t2.info().codec, "VP8");
    send(&cam2, "cam2", 0..PACKETS).await;
    let second = collect_and_check("cam2", PACKETS, &mut t2).await;
    assert_eq!(second[0].ssrc, ssrc, "same SSRC on the reused m-line");
    // Only T2's warm-up went out on the m-line in between.
    let gap = second[0]
        .sequence_number
        .wrapping_sub(first[PACKETS as usize - 1].sequence_number);
    assert!(
        (1..=warm as u16 + 1).contains(&gap),
        "sequence numbers continue across the reuse (gap {gap}, {warm} warm-up packets)"
    );

    // T1 stayed ended and got none of it.
    assert!(t1.try_recv().is_none());
    assert!(t1.recv().await.is_none());
    assert_eq!(t1.received(), t1_received);

    // Keyframe requests on the new track still reach the publisher. The
    // server asks for one itself when a subscription starts; once those
    // have come, only Alice's request can bring another.
    drain(&mut bob_events, Duration::from_millis(800), ignore).await;
    t2.request_keyframe().await.expect("PLI");
    loop {
        match next_event(&mut bob_events).await {
            Event::KeyframeRequested { cid } => {
                assert_eq!(cid, "cam2");
                break;
            }
            other => ignore(other),
        }
    }
    me.leave().await;
    bob.leave().await;
}
