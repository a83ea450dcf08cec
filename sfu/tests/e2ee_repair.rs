//! NACK/RTX repair of end-to-end encrypted video between an SDK publisher
//! and the SFU, run as its own process behind a lossy relay.
//!
//! The relay drops every [`LOSS_EVERY`]th first transmission of alice's
//! video RTP packets on the way to the SFU. The SFU NACKs the gaps, alice's
//! webrtc-rs answers with RTX, and the SFU forwards the repaired packets to
//! bob. bob must decrypt every frame byte for byte with no drop of any
//! kind. This guards the SDK's NACK responder (`client-sdk/src/peer/nack/`):
//! webrtc-rs's own drops the header extensions of RTX packets, so a repaired
//! packet would reach bob without its dependency descriptor and bob could
//! not place it in its frame.

mod support;

use client_sdk::proto::Target;
use client_sdk::{Codec, DecryptedFrame, RoomOptions, TrackSpec};
use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::udpcapture::{DropPolicy, UdpCapture};
use support::{LIMIT, Member, frame_index, video_frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ROOM: &str = "e2ee-repair";
const FRAMES: u32 = 60;
const KEYFRAME_EVERY: u32 = 15;
/// The relay drops one in this many first transmissions of video packets.
const LOSS_EVERY: u64 = 5;
/// 30 fps.
const FRAME_INTERVAL: Duration = Duration::from_millis(33);
/// 90 kHz ticks per frame at 30 fps.
const TICKS_PER_FRAME: u32 = 3_000;

/// Delta frames of 3–8 KB (3 to 8 packets), keyframes of 20–30 KB (19 to
/// 28 packets): every frame spans several packets.
fn video_len(i: u32) -> usize {
    if i.is_multiple_of(KEYFRAME_EVERY) {
        20_000 + (i as usize * 2_311) % 10_000
    } else {
        3_000 + (i as usize * 1_733) % 5_000
    }
}

/// The clear RTP header fields the relay needs (SRTP leaves the header in
/// the clear).
struct RtpHeader {
    payload_type: u8,
    seq: u16,
    timestamp: u32,
    ssrc: u32,
}

impl RtpHeader {
    /// RTP, not STUN, DTLS or RTCP: first byte 128..=191 (RFC 7983), and a
    /// second byte outside 192..=223, where RTCP packet types fall when
    /// RTP and RTCP share a port (RFC 5761 §4).
    fn parse(d: &[u8]) -> Option<Self> {
        if d.len() < 12 || !(128..=191).contains(&d[0]) || (192..=223).contains(&d[1]) {
            return None;
        }
        Some(Self {
            payload_type: d[1] & 0x7f,
            seq: u16::from_be_bytes([d[2], d[3]]),
            timestamp: u32::from_be_bytes([d[4], d[5], d[6], d[7]]),
            ssrc: u32::from_be_bytes([d[8], d[9], d[10], d[11]]),
        })
    }
}

/// What the loss policy did while armed.
#[derive(Default)]
struct LossLog {
    /// First transmissions of primary video packets.
    video: u64,
    /// RTX packets (never dropped).
    rtx: u64,
    /// `(ssrc, seq, timestamp)` of every dropped packet.
    dropped: Vec<(u32, u16, u32)>,
}

/// Drops every `LOSS_EVERY`th first transmission of a packet with the
/// SDK's VP8 payload type while `armed`. Only alice publishes video, so
/// that payload type is her camera. STUN, DTLS, RTCP, audio and RTX pass;
/// so does a repeat of an `(ssrc, seq)` already seen, in case a
/// retransmission comes without RTX.
fn lossy_video(armed: Arc<AtomicBool>, log: Arc<Mutex<LossLog>>) -> DropPolicy {
    let video = Codec::vp8().payload_type;
    let rtx = Codec::vp8().rtx_payload_type;
    let mut seen = HashSet::new();
    Box::new(move |d| {
        let Some(h) = RtpHeader::parse(d) else {
            return false;
        };
        let first = h.payload_type == video && seen.insert((h.ssrc, h.seq));
        if !armed.load(Ordering::Relaxed) {
            return false;
        }
        let mut log = log.lock().unwrap();
        if Some(h.payload_type) == rtx {
            log.rtx += 1;
        }
        if !first {
            return false;
        }
        log.video += 1;
        if !log.video.is_multiple_of(LOSS_EVERY) {
            return false;
        }
        log.dropped.push((h.ssrc, h.seq, h.timestamp));
        true
    })
}

/// The SFU's RTP counters and every non-zero drop counter, from `/metrics`.
async fn sfu_counters(http: SocketAddr) -> Vec<String> {
    let Ok(mut s) = tokio::net::TcpStream::connect(http).await else {
        return vec!["metrics unreachable".into()];
    };
    let req = format!("GET /metrics HTTP/1.0\r\nHost: {http}\r\n\r\n");
    let mut body = String::new();
    if s.write_all(req.as_bytes()).await.is_err() || s.read_to_string(&mut body).await.is_err() {
        return vec!["metrics unreadable".into()];
    }
    body.lines()
        .filter(|l| {
            l.starts_with("sfu_media_rtp_packets")
                || l.starts_with("sfu_media_keyframe_requests")
                || (l.starts_with("sfu_packets_dropped_total") && !l.ends_with(" 0"))
        })
        .map(str::to_owned)
        .collect()
}

fn measured(frames: &[DecryptedFrame]) -> Vec<&DecryptedFrame> {
    frames
        .iter()
        .filter(|f| frame_index(&f.data).is_some_and(|x| x.1 == "cam"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_lost_on_the_way_to_the_sfu_is_repaired_for_every_frame() {
    let started = Instant::now();
    let marker: [u8; 32] = rand::random();
    let sfu = support::sfu_process("127.0.0.2").await;
    let public = format!("127.0.0.2:{}", sfu.media.port())
        .parse()
        .expect("addr");
    let armed = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(LossLog::default()));
    let udp = UdpCapture::start_with(
        public,
        sfu.media,
        lossy_video(Arc::clone(&armed), Arc::clone(&log)),
    )
    .await;

    let alice = Member::join(&sfu.url(), ROOM, "alice", RoomOptions::loopback()).await;
    let bob = Member::join(&sfu.url(), ROOM, "bob", RoomOptions::loopback()).await;
    for m in [&alice, &bob] {
        m.until("a group of two", |i| {
            i.rosters.last().is_some_and(|r| r.len() == 2)
        })
        .await;
    }
    let cam = alice
        .room
        .publish(TrackSpec::new("cam", Codec::vp8()))
        .await
        .expect("publish cam");
    alice
        .room
        .wait_connected(Target::Publisher, LIMIT)
        .await
        .expect("publisher connected");

    // Lossless warm-up: small keyframes until bob decrypts one, so the
    // path, the keys and the SFU's keyframe gate are all settled.
    let mut ts = 0u32;
    for round in 0u32.. {
        if bob.inbox().frames_from("alice").iter().any(|f| f.keyframe) {
            break;
        }
        assert!(round < 500, "bob never got alice's warm-up video");
        let _ = cam
            .send_frame(
                &video_frame("alice", "warm", round, &marker, 1200, true),
                ts,
                true,
            )
            .await;
        ts = ts.wrapping_add(TICKS_PER_FRAME);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    armed.store(true, Ordering::Relaxed);
    let sending = Instant::now();
    let mut tick = tokio::time::interval(FRAME_INTERVAL);
    for i in 0..FRAMES {
        tick.tick().await;
        let key = i.is_multiple_of(KEYFRAME_EVERY);
        let data = video_frame("alice", "cam", i, &marker, video_len(i), key);
        cam.send_frame(&data, ts, key)
            .await
            .expect("video frame sent");
        ts = ts.wrapping_add(TICKS_PER_FRAME);
    }

    // Until every frame is in, or bob drops something (then there is no
    // point waiting for the rest).
    let deadline = Instant::now() + LIMIT;
    loop {
        let notified = bob.notify.notified();
        let got = measured(&bob.inbox().frames_from("alice")).len() as u32;
        if got >= FRAMES || bob.room.decrypt_failures().total() > 0 || Instant::now() > deadline {
            break;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
    }
    let delivered = sending.elapsed();
    // Late duplicates or failures would show within this.
    tokio::time::sleep(Duration::from_millis(300)).await;
    armed.store(false, Ordering::Relaxed);

    let (video, rtx, dropped) = {
        let log = log.lock().unwrap();
        (log.video, log.rtx, log.dropped.clone())
    };
    let frames_hit: BTreeSet<u32> = dropped.iter().map(|d| d.2).collect();
    let counters = sfu_counters(sfu.http).await;
    println!(
        "relay: {video} video packets, dropped {} ({} datagrams) in {} of {FRAMES} frames, \
         {rtx} RTX seen; sfu: {counters:?}; frames in {delivered:?}, test {:?}",
        dropped.len(),
        udp.dropped(),
        frames_hit.len(),
        started.elapsed()
    );

    assert!(
        video > 0,
        "the relay saw no video of payload type {}",
        Codec::vp8().payload_type
    );
    assert!(!dropped.is_empty(), "the relay dropped nothing");
    assert_eq!(udp.dropped(), dropped.len() as u64);
    assert!(
        frames_hit.len() > 1,
        "losses in more than one frame: {frames_hit:?}"
    );

    let (frames, reported) = {
        let inbox = bob.inbox();
        (inbox.frames_from("alice"), inbox.failures)
    };
    let got = measured(&frames);
    let failures = bob.room.decrypt_failures();
    let indices: BTreeSet<u32> = got
        .iter()
        .filter_map(|f| frame_index(&f.data))
        .map(|x| x.2)
        .collect();
    let missing: Vec<u32> = (0..FRAMES).filter(|i| !indices.contains(i)).collect();
    assert!(
        missing.is_empty() && failures.total() == 0,
        "bob: frames never decrypted {missing:?}; drops {failures:?}; \
         relay dropped {} packets in {} frames, {rtx} RTX seen; sfu {counters:?}",
        dropped.len(),
        frames_hit.len()
    );
    assert_eq!(got.len(), FRAMES as usize, "bob: a frame came twice");
    for f in &got {
        let (_, _, i) = frame_index(&f.data).expect("our frame format");
        assert_eq!(f.identity, "alice");
        assert_eq!(
            f.data,
            video_frame(
                "alice",
                "cam",
                i,
                &marker,
                video_len(i),
                i.is_multiple_of(KEYFRAME_EVERY)
            ),
            "bob: frame {i} changed"
        );
        assert_eq!(
            f.keyframe,
            i.is_multiple_of(KEYFRAME_EVERY),
            "bob: keyframe flag of frame {i}"
        );
    }
    assert!(
        reported.as_ref().is_none_or(|f| f.total() == 0),
        "bob was told of drops: {reported:?}"
    );
    // Every drop was answered with RTX (the relay cannot read which: the
    // original sequence number is inside the SRTP-encrypted payload).
    assert!(
        rtx >= dropped.len() as u64,
        "{rtx} RTX for {} drops",
        dropped.len()
    );
    alice.room.leave().await;
    bob.room.leave().await;
}
