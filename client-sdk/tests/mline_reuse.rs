//! The SFU reuses subscriber m-lines: `unsubscribed{T1}` with the m-line
//! going `inactive`, then `subscribed{T2, same mid}` with it `sendonly`
//! again and T2's media on the same SSRC. T1 must end, T2 must get exactly
//! the packets sent after it was assigned.

mod common;

use client_sdk::config::ConnectOptions;
use client_sdk::proto::Target;
use client_sdk::transport::{Event, Events, Participant, RemoteTrack};
use client_sdk::{Codec, TrackSpec};
use common::{LIMIT, collect_and_check, mock_sfu, payload};
use std::time::Duration;

const PACKETS: u32 = 100;

async fn next_event(events: &mut Events) -> Event {
    tokio::time::timeout(LIMIT, events.recv())
        .await
        .expect("event within the limit")
        .expect("session still open")
}

/// Waits for the next `TrackSubscribed`, skipping state changes and
/// announcements.
async fn next_subscribed(events: &mut Events) -> RemoteTrack {
    loop {
        match next_event(events).await {
            Event::TrackSubscribed(track) => return track,
            Event::ConnectionStateChanged { .. } | Event::TrackPublished(_) => {}
            other => panic!("unexpected {other:?}"),
        }
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
    let (url, _log, sfu) = mock_sfu::start_controlled().await;
    let (me, mut events) = Participant::connect(&url, "t", ConnectOptions::loopback())
        .await
        .expect("connect");
    let cam = me
        .publish_track(TrackSpec::new("cam", Codec::vp8()))
        .await
        .expect("publish");
    me.wait_connected(Target::Publisher, LIMIT)
        .await
        .expect("publisher connected");

    // T1 on mid M, first-time pairing.
    send(&cam, "cam", 0..PACKETS).await;
    let mut t1 = next_subscribed(&mut events).await;
    assert_eq!(t1.info().track_id, mock_sfu::track_id("cam"));
    let mid = t1.info().mid.clone();
    let first = collect_and_check("cam", PACKETS, &mut t1).await;
    let ssrc = first[0].ssrc;

    // Unsubscribed, m-line inactive: T1 drains and ends.
    sfu.retire("cam");
    loop {
        match next_event(&mut events).await {
            Event::TrackUnsubscribed { track_id } => {
                assert_eq!(track_id, mock_sfu::track_id("cam"));
                break;
            }
            Event::ConnectionStateChanged { .. } => {}
            other => panic!("unexpected {other:?}"),
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

    // Media on the unassigned m-line belongs to no track.
    send(&cam, "gap", 0..20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Subscribed{T2, M}, m-line sendonly again, same SSRC.
    sfu.reassign("cam", "TR_second");
    let mut t2 = next_subscribed(&mut events).await;
    assert_eq!(t2.info().track_id, "TR_second");
    assert_eq!(t2.info().mid, mid, "same m-line");
    assert_eq!(t2.info().participant_id, mock_sfu::OTHER);
    assert_eq!(t2.info().kind, client_sdk::proto::TrackKind::Video);
    assert_eq!(t2.info().codec, "VP8");
    // The mock applies the answer asynchronously; let it settle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&cam, "cam2", 0..PACKETS).await;
    let second = collect_and_check("cam2", PACKETS, &mut t2).await;
    assert_eq!(second[0].ssrc, ssrc, "same SSRC on the reused m-line");
    // 20 gap packets went out in between.
    let gap = second[0]
        .sequence_number
        .wrapping_sub(first[PACKETS as usize - 1].sequence_number);
    assert!(
        (1..=21).contains(&gap),
        "sequence numbers continue across the reuse (gap {gap})"
    );

    // T1 stayed ended and got none of it.
    assert!(t1.try_recv().is_none());
    assert!(t1.recv().await.is_none());
    assert_eq!(t1.received(), t1_received);

    // Keyframe requests on the new track still reach the publisher.
    t2.request_keyframe().await.expect("PLI");
    loop {
        match next_event(&mut events).await {
            Event::KeyframeRequested { cid } => {
                assert_eq!(cid, "cam");
                break;
            }
            Event::ConnectionStateChanged { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    me.leave().await;
}
