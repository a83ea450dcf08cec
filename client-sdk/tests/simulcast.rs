//! Simulcast through the real SFU, end-to-end encrypted: a native member
//! publishes a three-encoding camera, one subscriber limits itself to the
//! lowest encoding's size and gets only that encoding, the other gets the
//! top one; both decrypt every frame. Once both limit themselves, the
//! publisher hears that the top encoding is no longer wanted (dynacast).

mod common;

use client_sdk::proto::Target;
use client_sdk::{
    Codec, Encoding, MediaSender, Room, RoomEvent, RoomEvents, RoomOptions, TrackSettings,
    TrackSpec,
};
use common::LIMIT;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::token::dev_token;
use tokio::time::Instant;

const ROOM: &str = "simulcast";
/// Frames of each subscriber checked before the next step.
const FRAMES: usize = 30;

/// Encoding `e`'s frame of picture `i`: the encoding index and picture
/// number up front (to tell encodings apart after decryption), then
/// filler sized like the encoding, behind a VP8 header.
fn frame(e: u8, i: u32, keyframe: bool) -> Vec<u8> {
    let len = [200, 700, 2_500][usize::from(e)];
    let mut body = vec![e];
    body.extend_from_slice(&i.to_be_bytes());
    body.extend((0..len).map(|k: usize| (k as u32).wrapping_mul(31).wrapping_add(i) as u8));
    testkit::vp8::frame(keyframe, &body)
}

/// The encoding and picture of a received frame, if its bytes are exactly
/// what [`frame`] made of them.
fn identify(data: &[u8], keyframe: bool) -> Option<(u8, u32)> {
    let body = testkit::vp8::strip(data);
    let e = *body.first()?;
    let i = u32::from_be_bytes(body.get(1..5)?.try_into().ok()?);
    (e < 3 && frame(e, i, keyframe) == data).then_some((e, i))
}

#[derive(Default)]
struct Received {
    /// Encoding of every frame, in arrival order.
    encodings: Vec<u8>,
    /// Frames whose bytes were not a frame the publisher sent.
    garbled: usize,
}

/// Collects the decrypted frames of every remote track into `received`.
fn collect(mut events: RoomEvents, received: Arc<Mutex<Received>>) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let RoomEvent::TrackSubscribed(mut media) = event {
                let received = Arc::clone(&received);
                tokio::spawn(async move {
                    while let Some(f) = media.recv().await {
                        let mut r = received.lock().unwrap();
                        match identify(&f.data, f.keyframe) {
                            Some((e, _)) => r.encodings.push(e),
                            None => r.garbled += 1,
                        }
                    }
                });
            }
        }
    });
}

/// Polls `check` until it holds, within [`LIMIT`].
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn join(url: &str, name: &str) -> (Room, RoomEvents) {
    client_sdk::connect(url, &dev_token(ROOM, name), RoomOptions::loopback())
        .await
        .expect("connect")
}

/// Sends pictures at 30 per second on every encoding the server wants,
/// keyframes on all of them when asked, until `stop`.
fn camera(cam: Arc<MediaSender>, keyframe: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(33));
        for i in 0u32.. {
            ticks.tick().await;
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let key = i.is_multiple_of(60) || keyframe.swap(false, Ordering::Relaxed);
            for e in 0..3u8 {
                if cam.encoding_active(usize::from(e)) {
                    // Refused until the publisher transport is up.
                    let _ = cam
                        .send_frame_on(usize::from(e), &frame(e, i, key), i * 3000, key)
                        .await;
                }
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_the_encoding_their_size_allows_and_dynacast_follows() {
    let sfu = testkit::server::sfu().await;
    let url = testkit::server::url(&sfu);
    let (alice, mut alice_events) = join(&url, "alice").await;
    let (bob, bob_events) = join(&url, "bob").await;
    let (carol, carol_events) = join(&url, "carol").await;
    let (small, big) = (
        Arc::new(Mutex::new(Received::default())),
        Arc::new(Mutex::new(Received::default())),
    );
    collect(bob_events, Arc::clone(&small));
    collect(carol_events, Arc::clone(&big));
    until("a group of three", || {
        [&alice, &bob, &carol].iter().all(|r| r.roster().len() == 3)
    })
    .await;

    let spec = TrackSpec::new("cam", Codec::vp8()).with_simulcast(vec![
        Encoding::new("q", 320, 180),
        Encoding::new("h", 640, 360),
        Encoding::new("f", 1280, 720),
    ]);
    let cam = Arc::new(alice.publish(spec).await.expect("simulcast accepted"));
    assert_eq!(cam.encoding_count(), 3);
    assert!((0..3).all(|e| cam.encoding_active(e)));
    // Not subscribed yet: remembered, and sent once bob is.
    assert!(bob.set_track_settings(&cam.track_id(), TrackSettings::max_size(320, 180)));
    alice
        .wait_connected(Target::Publisher, LIMIT)
        .await
        .expect("publisher connected");

    let layers = Arc::new(Mutex::new(Vec::<Vec<bool>>::new()));
    let keyframe = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let (layers, keyframe) = (Arc::clone(&layers), Arc::clone(&keyframe));
        tokio::spawn(async move {
            while let Some(event) = alice_events.recv().await {
                match event {
                    RoomEvent::KeyframeNeeded { .. } => keyframe.store(true, Ordering::Relaxed),
                    RoomEvent::PublisherLayers { cid, active } if cid == "cam" => {
                        layers.lock().unwrap().push(active)
                    }
                    _ => {}
                }
            }
        });
    }
    camera(Arc::clone(&cam), Arc::clone(&keyframe), Arc::clone(&stop));

    until("frames at both subscribers", || {
        small.lock().unwrap().encodings.len() >= FRAMES
            && big.lock().unwrap().encodings.len() >= FRAMES
    })
    .await;
    {
        let small = small.lock().unwrap();
        assert!(
            small.encodings.iter().all(|e| *e == 0),
            "the small subscriber got {:?}",
            small.encodings
        );
        let big = big.lock().unwrap();
        assert!(
            big.encodings.iter().all(|e| *e == 2),
            "the big subscriber got {:?}",
            big.encodings
        );
    }

    // Nobody wants more than the lowest encoding now: after the server's
    // hold-down (about 3 s), the publisher is told to drop the others.
    assert!(carol.set_track_settings(&cam.track_id(), TrackSettings::max_size(320, 180)));
    until("publisher_layers without the top encoding", || {
        layers.lock().unwrap().last().is_some_and(|a| !a[2])
    })
    .await;
    assert!(!cam.encoding_active(2));
    assert!(cam.encoding_active(0), "{:?}", layers.lock().unwrap());
    let before = big.lock().unwrap().encodings.len();
    until("the big subscriber on the lowest encoding", || {
        big.lock().unwrap().encodings[before..].contains(&0)
    })
    .await;
    stop.store(true, Ordering::Relaxed);

    for (name, room, received) in [("bob", &bob, &small), ("carol", &carol, &big)] {
        assert_eq!(
            room.decrypt_failures().total(),
            0,
            "{name} failed to decrypt"
        );
        assert_eq!(
            received.lock().unwrap().garbled,
            0,
            "{name} got garbled frames"
        );
    }
}
