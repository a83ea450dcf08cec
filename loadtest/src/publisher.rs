//! A publishing participant's tracks: synthetic frames paced by a timer,
//! each starting with a [`FrameHeader`], handed to the SDK to encrypt and
//! send. Sending never waits for receivers.

use crate::clock::now_us;
use crate::frame::{FrameBuf, FrameHeader, MediaKind};
use crate::pacing::{AudioPacing, VideoPacing};
use crate::state::{Shared, Slot};
use client_sdk::proto::Target;
use client_sdk::{Codec, Encoding, MediaSender, Room, TrackSpec};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::trace;

/// The video track's `cid`.
pub const VIDEO_CID: &str = "cam";
/// The audio track's `cid`.
pub const AUDIO_CID: &str = "mic";
/// Limit on holding the first group key.
pub const KEY_LIMIT: Duration = Duration::from_secs(20);
/// Limit on publishing one track.
pub const PUBLISH_LIMIT: Duration = Duration::from_secs(15);
/// Limit on handing one frame to the SDK.
pub const SEND_LIMIT: Duration = Duration::from_secs(1);
/// The simulcast encodings (lowest first): rid, the size it stands for,
/// and its share of `--video-kbps` as a divisor (roughly how a browser
/// splits 720p simulcast).
pub const SIMULCAST: [(&str, u16, u16, u32); 3] =
    [("q", 320, 180, 16), ("h", 640, 360, 4), ("f", 1280, 720, 1)];

/// The track a publisher sends as `kind`.
fn track_spec(cid: &str, kind: MediaKind, simulcast: bool) -> TrackSpec {
    match kind {
        MediaKind::Audio => TrackSpec::new(cid, Codec::opus()),
        MediaKind::Video if simulcast => TrackSpec::new(cid, Codec::vp8()).with_simulcast(
            SIMULCAST
                .iter()
                .map(|(rid, w, h, _)| Encoding::new(*rid, *w, *h))
                .collect(),
        ),
        MediaKind::Video => TrackSpec::new(cid, Codec::vp8()),
    }
}

/// Waits for the group key, publishes the slot's tracks and sends until
/// `ended` or the run's media stop.
pub async fn run(
    shared: Arc<Shared>,
    slot: Arc<Slot>,
    room: Arc<Room>,
    keyframe: Arc<AtomicBool>,
    ended: CancellationToken,
) {
    // Frames sent before this member holds a key would only be dropped.
    let keyed = tokio::select! {
        r = room.wait_for_keys(KEY_LIMIT) => r,
        () = ended.cancelled() => return,
    };
    if let Err(e) = keyed {
        slot.note_error(format!("publisher had no E2EE key: {e}"));
        return;
    }
    let mut senders = JoinSet::new();
    // Cancelled once the publisher transport is up: senders start then.
    let go = CancellationToken::new();
    let tracks = [
        (slot.video, VIDEO_CID, MediaKind::Video),
        (slot.audio, AUDIO_CID, MediaKind::Audio),
    ];
    for (wanted, cid, kind) in tracks {
        if !wanted {
            continue;
        }
        let spec = track_spec(cid, kind, shared.settings.simulcast);
        let published = tokio::select! {
            r = tokio::time::timeout(PUBLISH_LIMIT, room.publish(spec)) => r,
            () = ended.cancelled() => return,
        };
        let sender = match published {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                slot.note_error(format!("publishing {cid} failed: {e}"));
                continue;
            }
            Err(_) => {
                slot.note_error(format!("publishing {cid} timed out"));
                continue;
            }
        };
        let counter = shared.senders.counter_in_room(slot.index, slot.room, kind);
        let stop = ended.clone();
        let shared = Arc::clone(&shared);
        let index = slot.index;
        let keyframe = Arc::clone(&keyframe);
        let go = go.clone();
        senders.spawn(async move {
            tokio::select! {
                () = go.cancelled() => {}
                () = stop.cancelled() => return,
            }
            match kind {
                MediaKind::Video => {
                    send_video(&shared, index, &sender, &counter, &keyframe, &stop).await
                }
                MediaKind::Audio => send_audio(&shared, index, &sender, &counter, &stop).await,
            }
        });
    }
    // Frames written before the transport is up would only be dropped.
    if !senders.is_empty() {
        let connected = tokio::select! {
            r = room.wait_connected(Target::Publisher, PUBLISH_LIMIT) => r,
            () = ended.cancelled() => return,
        };
        if let Err(e) = connected {
            slot.note_error(format!("publisher transport did not connect: {e}"));
        }
        go.cancel();
    }
    while senders.join_next().await.is_some() {}
}

fn ticker(period: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(period);
    // After a stall, go on at the frame rate rather than bursting to catch up.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}

/// Hands one frame to the SDK; the sequence number advances only for a
/// frame that was sent, so gaps at receivers are loss.
/// On a simulcast track every encoding's frame of one picture has the same
/// sequence number.
#[allow(clippy::too_many_arguments)]
async fn send_one(
    shared: &Shared,
    sender: &MediaSender,
    encoding: usize,
    counter: &AtomicU64,
    frame: &[u8],
    seq: u64,
    rtp_ts: u32,
    keyframe: bool,
) -> bool {
    let send = sender.send_frame_on(encoding, frame, rtp_ts, keyframe);
    match tokio::time::timeout(SEND_LIMIT, send).await {
        Ok(Ok(())) => {
            counter.store(seq + 1, Ordering::Release);
            true
        }
        Ok(Err(e)) => {
            trace!(error = %e, "frame not sent");
            shared.send_errors.fetch_add(1, Ordering::Relaxed);
            false
        }
        Err(_) => {
            trace!("frame not sent in time");
            shared.send_errors.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// One encoding's frames: the whole rate, or a simulcast encoding's share.
struct Encoder {
    pacing: VideoPacing,
    /// Whether the server wanted it on the last frame (dynacast).
    active: bool,
}

/// The encoders of a video track, lowest first.
fn encoders(shared: &Shared, sender: &MediaSender) -> Vec<Encoder> {
    let s = &shared.settings;
    let divisors: Vec<u32> = if sender.encoding_count() > 1 {
        SIMULCAST.iter().map(|e| e.3).collect()
    } else {
        vec![1]
    };
    divisors
        .into_iter()
        .map(|d| Encoder {
            pacing: VideoPacing::new(
                (s.video_kbps / d).max(1),
                s.video_fps,
                s.keyframe_interval_s,
            ),
            active: true,
        })
        .collect()
}

async fn send_video(
    shared: &Shared,
    index: u32,
    sender: &MediaSender,
    counter: &AtomicU64,
    keyframe: &AtomicBool,
    stop: &CancellationToken,
) {
    let mut encoders = encoders(shared, sender);
    // Every encoding runs at the same frame rate and keyframe interval.
    let top = encoders[encoders.len() - 1].pacing;
    let mut buf = FrameBuf::new(top.key_bytes);
    let mut tick = ticker(top.interval);
    let (mut gop_pos, mut rtp_ts) = (0u64, 0u32);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            () = shared.stop_media.cancelled() => break,
            _ = tick.tick() => {}
        }
        // A new epoch or the SFU asked for a keyframe (RFC 9605 §6.2); an
        // encoding the server wants again starts with one, as an encoder
        // that was stopped would. Keyframes go on all encodings together,
        // as a browser's simulcast encoders do.
        let mut forced = keyframe.swap(false, Ordering::Relaxed);
        for (e, enc) in encoders.iter_mut().enumerate() {
            let active = sender.encoding_active(e);
            forced |= active && !enc.active;
            enc.active = active;
        }
        let key = forced || gop_pos == 0;
        if key {
            gop_pos = 0;
        }
        let seq = counter.load(Ordering::Acquire);
        for (e, enc) in encoders.iter().enumerate() {
            if !enc.active {
                continue;
            }
            let header = FrameHeader {
                sender: index,
                kind: MediaKind::Video,
                layer: e as u8,
                seq,
                send_us: now_us(),
            };
            let len = if key {
                enc.pacing.key_bytes
            } else {
                enc.pacing.delta_bytes
            };
            let frame = buf.video_frame(&header, len, key);
            if !send_one(shared, sender, e, counter, frame, seq, rtp_ts, key).await && key {
                keyframe.store(true, Ordering::Relaxed);
            }
        }
        rtp_ts = rtp_ts.wrapping_add(top.rtp_step);
        gop_pos = (gop_pos + 1) % top.gop_frames;
    }
}

async fn send_audio(
    shared: &Shared,
    index: u32,
    sender: &MediaSender,
    counter: &AtomicU64,
    stop: &CancellationToken,
) {
    let pacing = AudioPacing::new(shared.settings.audio_pps);
    let mut buf = FrameBuf::new(pacing.bytes);
    let mut tick = ticker(pacing.interval);
    let mut rtp_ts = 0u32;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            () = shared.stop_media.cancelled() => break,
            _ = tick.tick() => {}
        }
        let seq = counter.load(Ordering::Acquire);
        let header = FrameHeader {
            sender: index,
            kind: MediaKind::Audio,
            layer: 0,
            seq,
            send_us: now_us(),
        };
        let frame = buf.frame(&header, pacing.bytes);
        send_one(shared, sender, 0, counter, frame, seq, rtp_ts, false).await;
        rtp_ts = rtp_ts.wrapping_add(pacing.rtp_step);
    }
}
