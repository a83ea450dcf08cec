//! Three end-to-end encrypted members through the real SFU, run as its own
//! process behind relays that record every datagram and every signaling
//! message. Every member decrypts every other member's audio and video
//! frames byte for byte; a random 32-byte marker in every frame and chat
//! message never appears in anything the server sent or received, nor in
//! the server's memory, and neither does any SFrame key the members hold.
//! A plaintext control shows the memory scan does find what is there.

mod support;

use base64::Engine as _;
use client_sdk::config::ConnectOptions;
use client_sdk::proto::Target;
use client_sdk::transport::Participant;
use client_sdk::{Codec, RoomOptions, TrackSpec};
use std::time::Duration;
use support::udpcapture::UdpCapture;
use support::wsproxy::WsProxy;
use support::{LIMIT, Member, frame, frame_index, memscan, video_frame};

const ROOM: &str = "e2ee-call";
const NAMES: [&str; 3] = ["alice", "bob", "carol"];
const AUDIO_FRAMES: u32 = 50;
const VIDEO_FRAMES: u32 = 30;

/// Audio frames are 100 bytes; video frames vary from 1.2 KB to a 30 KB
/// keyframe, so some span many packets.
fn video_len(i: u32) -> usize {
    if i.is_multiple_of(10) {
        30_000
    } else {
        1_200 + (i as usize * 397) % 6_000
    }
}

fn needles(marker: &[u8]) -> Vec<Vec<u8>> {
    vec![
        marker.to_vec(),
        hex::encode(marker).into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(marker)
            .into_bytes()[..40]
            .to_vec(),
    ]
}

/// Whether any needle occurs in `hay`, or in any base64 string inside it
/// once decoded (signaling carries binary as base64).
fn contains_any(hay: &[u8], needles: &[Vec<u8>]) -> bool {
    let direct = needles
        .iter()
        .any(|n| memchr::memmem::find(hay, n).is_some());
    if direct {
        return true;
    }
    let text = String::from_utf8_lossy(hay);
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
        .filter(|s| s.len() >= 16)
        .filter_map(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .any(|bytes| {
            needles
                .iter()
                .any(|n| memchr::memmem::find(&bytes, n).is_some())
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_decrypt_each_other_and_the_server_sees_no_plaintext() {
    let marker: [u8; 32] = rand::random();
    let marker_hex = hex::encode(marker);
    let sfu = support::sfu_process("127.0.0.2").await;
    let public = format!("127.0.0.2:{}", sfu.media.port())
        .parse()
        .expect("addr");
    let udp = UdpCapture::start(public, sfu.media).await;
    let ws = WsProxy::start(sfu.url()).await;

    let mut members = Vec::new();
    for name in NAMES {
        members.push(Member::join(&ws.url(), ROOM, name, RoomOptions::loopback()).await);
    }
    // Everyone in one group: same epoch, same code, three members.
    for m in &members {
        m.until("a group of three", |i| {
            i.rosters.last().is_some_and(|r| r.len() == 3)
        })
        .await;
    }
    let codes: Vec<_> = members.iter().map(|m| m.room.verification_code()).collect();
    assert!(codes[0].is_some());
    assert!(
        codes.iter().all(|c| *c == codes[0]),
        "verification codes differ: {codes:?}"
    );

    let mut tracks = Vec::new();
    for m in &members {
        tracks.push(m.publish_av().await);
        m.room
            .wait_connected(Target::Publisher, LIMIT)
            .await
            .unwrap_or_else(|e| {
                for c in ws.captured() {
                    if c.text.contains("candidate") {
                        println!("{:?} {}", c.dir, &c.text[..c.text.len().min(4000)]);
                    }
                }
                panic!(
                    "publisher connected: {e}; relay saw {} datagrams",
                    udp.datagrams().len()
                )
            });
    }
    // A remote track shows once its first packet arrives, and the SFU
    // starts a subscriber's video at a keyframe: warm up with keyframes
    // (labelled "warm", not counted) until everyone has every track.
    for round in 0u32.. {
        if members.iter().all(|m| m.inbox().subscribed >= 4) {
            break;
        }
        assert!(round < 500, "tracks did not all arrive");
        for (name, (mic, cam)) in NAMES.iter().zip(&tracks) {
            let _ = cam
                .send_frame(
                    &video_frame(name, "warm", round, &marker, 1200, true),
                    round * 3000,
                    true,
                )
                .await;
            let _ = mic
                .send_frame(
                    &frame(name, "warm", round, &marker, 100),
                    round * 960,
                    false,
                )
                .await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The SFU gates video at a keyframe and asks for one on subscribe:
    // frame 0 is one, and each member sends every frame once.
    for (name, (mic, cam)) in NAMES.iter().zip(&tracks) {
        for i in 0..VIDEO_FRAMES {
            let key = i.is_multiple_of(10);
            let data = video_frame(name, "cam", i, &marker, video_len(i), key);
            cam.send_frame(&data, i * 3000, key)
                .await
                .expect("video frame sent");
            // Paced like a camera, not blasted: a burst of hundreds of
            // packets would only measure socket buffers.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for i in 0..AUDIO_FRAMES {
            let data = frame(name, "mic", i, &marker, 100);
            mic.send_frame(&data, i * 960, false)
                .await
                .expect("audio frame sent");
        }
    }
    for name in NAMES {
        members
            .iter()
            .find(|m| m.room.identity() == name)
            .expect("member")
            .room
            .send_chat(&format!("{name}: the marker is {marker_hex}"))
            .await
            .expect("chat queued");
    }

    for m in &members {
        let me = m.room.identity().to_owned();
        for other in NAMES.iter().filter(|n| **n != me) {
            let want = AUDIO_FRAMES + VIDEO_FRAMES;
            m.until(&format!("all frames from {other}"), |i| {
                i.frames_from(other)
                    .iter()
                    .filter(|f| frame_index(&f.data).is_some_and(|x| x.1 != "warm"))
                    .count() as u32
                    >= want
            })
            .await;
            let got: Vec<_> = m
                .inbox()
                .frames_from(other)
                .into_iter()
                .filter(|f| frame_index(&f.data).is_some_and(|x| x.1 != "warm"))
                .collect();
            for f in &got {
                let (sender, track, i) = frame_index(&f.data).expect("our frame format");
                assert_eq!(sender, *other, "{me}: frame attributed to the wrong sender");
                assert_eq!(f.identity, *other);
                let want = if track == "cam" {
                    video_frame(
                        other,
                        &track,
                        i,
                        &marker,
                        video_len(i),
                        i.is_multiple_of(10),
                    )
                } else {
                    frame(other, &track, i, &marker, 100)
                };
                assert_eq!(f.data, want, "{me}: {other}/{track}/{i} changed");
                assert_eq!(
                    f.keyframe,
                    track == "cam" && i.is_multiple_of(10),
                    "{me}: keyframe flag of {other}/{track}/{i}"
                );
            }
            let mut audio: Vec<u32> = got
                .iter()
                .filter_map(|f| frame_index(&f.data))
                .filter(|x| x.1 == "mic")
                .map(|x| x.2)
                .collect();
            audio.sort_unstable();
            audio.dedup();
            assert_eq!(
                audio,
                (0..AUDIO_FRAMES).collect::<Vec<_>>(),
                "{me}: audio from {other}"
            );
            let mut video: Vec<u32> = got
                .iter()
                .filter_map(|f| frame_index(&f.data))
                .filter(|x| x.1 == "cam")
                .map(|x| x.2)
                .collect();
            video.sort_unstable();
            video.dedup();
            assert_eq!(
                video,
                (0..VIDEO_FRAMES).collect::<Vec<_>>(),
                "{me}: video from {other}"
            );
        }
        m.until("the chat", |i| i.chat.len() >= 3).await;
        assert!(
            m.room.decrypt_failures().total() == 0,
            "{me}: {:?}",
            m.room.decrypt_failures()
        );
    }
    let chats: Vec<_> = members.iter().map(|m| m.inbox().chat.clone()).collect();
    assert!(chats.iter().all(|c| *c == chats[0]), "chat order differs");
    assert!(chats[0].iter().all(|(_, t)| t.contains(&marker_hex)));

    // What the server saw.
    let needles = needles(&marker);
    let datagrams = udp.datagrams();
    assert!(
        datagrams.len() > 500,
        "the relay saw the call ({} datagrams)",
        datagrams.len()
    );
    for d in &datagrams {
        assert!(
            !needles.iter().any(|n| memchr::memmem::find(d, n).is_some()),
            "marker in a datagram"
        );
    }
    let messages = ws.captured();
    assert!(
        messages
            .iter()
            .any(|m| m.text.contains("\"mls_application\"")),
        "chat went through signaling"
    );
    for m in &messages {
        assert!(
            !contains_any(m.text.as_bytes(), &needles),
            "marker in signaling: {}",
            &m.text[..m.text.len().min(200)]
        );
    }
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    for m in &members {
        for (_, key, salt) in m.room.held_sframe_keys_for_tests() {
            secrets.push(key);
            secrets.push(salt);
        }
    }
    assert!(
        secrets.len() >= 8,
        "members hold keys for each other ({})",
        secrets.len()
    );
    let mut all = needles.clone();
    all.extend(secrets.iter().cloned());
    let (found, scanned) = memscan::scan(sfu.child.id(), &all);
    assert!(scanned > 1 << 20, "scanned {scanned} bytes");
    assert!(
        found.iter().all(|n| *n == 0),
        "the server's memory holds a marker or key: {found:?}"
    );

    // Control: plaintext media does show up in the server's memory.
    let control_marker: [u8; 32] = rand::random();
    let (plain, _events) = Participant::connect(
        &ws.url(),
        &support::token(ROOM, "control"),
        ConnectOptions::loopback(),
    )
    .await
    .expect("control joins");
    let cam = plain
        .publish_track(TrackSpec::new("cam", Codec::vp8()))
        .await
        .expect("publish");
    plain
        .wait_connected(Target::Publisher, LIMIT)
        .await
        .expect("connected");
    for i in 0..200u32 {
        let mut payload = control_marker.to_vec();
        payload.extend_from_slice(&i.to_be_bytes());
        cam.write_rtp(payload, i * 3000, true).await.expect("write");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (found, _) = memscan::scan(sfu.child.id(), &[control_marker.to_vec()]);
    assert!(
        found[0] > 0,
        "the scan finds plaintext the server does hold"
    );
    plain.leave().await;
    for m in &members {
        m.room.leave().await;
    }
}
