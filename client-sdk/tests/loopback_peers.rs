//! Two bare peers in one process, wired directly (no signaling server):
//! RTP payloads cross DTLS-SRTP on 127.0.0.1 byte for byte, sequence
//! numbers are continuous, and keyframe requests reach the sender.

mod common;

use client_sdk::proto::TrackKind;
use client_sdk::transport::{Peer, PeerConfig};
use client_sdk::{Codec, TrackSpec};
use common::{LIMIT, Seen, collect_and_check, next_seen, payload, relay};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

const PACKETS: u32 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_payloads_cross_a_loopback_pair_unchanged() {
    common::init_tracing();
    let (alice, alice_events) = Peer::new(PeerConfig::loopback()).await.expect("alice");
    let (bob, bob_events) = Peer::new(PeerConfig::loopback()).await.expect("bob");
    let (alice, bob) = (Arc::new(alice), Arc::new(bob));

    let mic = alice
        .add_track(&TrackSpec::new("mic", Codec::opus()))
        .await
        .expect("audio track");
    let cam = alice
        .add_track(&TrackSpec::new("cam", Codec::vp8()))
        .await
        .expect("video track");

    let offer = alice.create_offer().await.expect("offer");
    // NACK and keyframe feedback, and RTX for video, are offered.
    for line in [
        "a=rtcp-fb:96 nack",
        "a=rtcp-fb:96 nack pli",
        "a=rtcp-fb:111 nack",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=ssrc-group:FID",
    ] {
        assert!(offer.contains(line), "offer lacks {line:?}:\n{offer}");
    }
    let answer = bob.accept_offer(offer).await.expect("answer");
    alice.accept_answer(answer).await.expect("apply answer");

    let (cand_tx, mut cand_rx) = mpsc::unbounded_channel();
    let mut alice_seen = relay(alice_events, Arc::clone(&bob), cand_tx.clone());
    let mut bob_seen = relay(bob_events, Arc::clone(&alice), cand_tx);

    alice.wait_connected(LIMIT).await.expect("alice connected");
    bob.wait_connected(LIMIT).await.expect("bob connected");

    // Only loopback candidates were gathered.
    let mut candidates = Vec::new();
    while let Ok(c) = cand_rx.try_recv() {
        candidates.push(c);
    }
    assert!(!candidates.is_empty(), "no candidates trickled");
    for c in &candidates {
        assert!(c.contains(" 127.0.0.1 "), "non-loopback candidate {c}");
    }

    let sender = tokio::spawn({
        let (mic, cam) = (Arc::new(mic), Arc::new(cam));
        async move {
            for i in 0..PACKETS {
                mic.write_rtp(payload("mic", i), i * 960, false)
                    .await
                    .expect("write audio");
                cam.write_rtp(payload("cam", i), (i / 3) * 3000, i % 3 == 2)
                    .await
                    .expect("write video");
                if i % 10 == 9 {
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            }
            (mic, cam)
        }
    });

    let mut tracks = HashMap::new();
    while tracks.len() < 2 {
        match next_seen(&mut bob_seen).await {
            Seen::Track(track) => {
                tracks.insert(track.track_id().to_owned(), track);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let (mic, cam) = sender.await.expect("sender task");
    assert_eq!((mic.sent(), cam.sent()), (PACKETS.into(), PACKETS.into()));

    for (cid, ssrc) in [("mic", mic.ssrc()), ("cam", cam.ssrc())] {
        let track = tracks.get_mut(cid).expect("track with the sender's msid");
        let kind = if cid == "mic" {
            TrackKind::Audio
        } else {
            TrackKind::Video
        };
        assert_eq!(track.kind(), kind);
        assert!(!track.mid().is_empty());
        let got = collect_and_check(cid, PACKETS, track).await;
        assert!(got.iter().all(|p| p.ssrc == ssrc));
        assert_eq!(got[0].payload_type, if cid == "mic" { 111 } else { 96 });
        assert_eq!(track.dropped(), 0);
    }

    // A keyframe request from the receiver reaches the sender's app.
    tracks["cam"].request_keyframe().await.expect("send PLI");
    match next_seen(&mut alice_seen).await {
        Seen::KeyframeRequested(cid) => assert_eq!(cid, "cam"),
        other => panic!("unexpected {other:?}"),
    }

    alice.close().await;
    bob.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_before_connecting_is_refused() {
    let (alice, _events) = Peer::new(PeerConfig::loopback()).await.expect("alice");
    let track = alice
        .add_track(&TrackSpec::new("mic", Codec::opus()))
        .await
        .expect("track");
    assert_eq!(
        track.write_rtp(vec![1, 2, 3], 0, false).await,
        Err(client_sdk::transport::WriteError::NotConnected)
    );
    let mut h264 = Codec::vp8();
    h264.name = "H264".into();
    assert!(matches!(
        alice.add_track(&TrackSpec::new("x", h264)).await,
        Err(client_sdk::transport::PeerError::CodecNotConfigured(_))
    ));
    alice.close().await;
}
