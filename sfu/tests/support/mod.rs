//! Shared by the E2EE system tests: the real SFU (in process or as its own
//! process), tokens, proxies, and Room clients that record what they get.
// Each test binary uses a part of this module.
#![allow(dead_code, unused_imports, unreachable_pub)]

pub mod memscan;
pub mod udpcapture;

use client_sdk::{
    Codec, DecryptedFrame, MediaSender, Room, RoomEvent, RoomEvents, RoomOptions, TrackSpec,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub use testkit::server::{SfuProcess, sfu as server, url};
pub use testkit::token::dev_token as token;
pub use testkit::wait::LIMIT;
pub use testkit::wsproxy;

/// A member's microphone: an Opus track sending a numbered 100-byte frame
/// (see [`frame`]) every 20 ms until stopped.
pub struct Microphone {
    stop: Arc<tokio::sync::Notify>,
    sent: Arc<std::sync::atomic::AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Microphone {
    /// Publishes the track, waits for the publisher transport, and starts
    /// sending; every frame carries `marker`.
    pub async fn start(member: &Member, marker: &[u8]) -> Self {
        let mic = member
            .room
            .publish(TrackSpec::new("mic", Codec::opus()))
            .await
            .expect("publish mic");
        member
            .room
            .wait_connected(client_sdk::proto::Target::Publisher, LIMIT)
            .await
            .expect("publisher connected");
        let (name, marker) = (member.room.identity().to_owned(), marker.to_vec());
        let stop = Arc::new(tokio::sync::Notify::new());
        let sent = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let task = tokio::spawn({
            let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                for i in 0.. {
                    tokio::select! {
                        _ = tick.tick() => {}
                        () = stop.notified() => break,
                    }
                    let data = frame(&name, "mic", i, &marker, 100);
                    if mic.send_frame(&data, i * 960, false).await.is_ok() {
                        sent.store(i + 1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        });
        Self { stop, sent, task }
    }

    /// Stops sending; returns how many frames were sent (the index after
    /// the last one that was).
    pub async fn stop(self) -> u32 {
        self.stop.notify_one();
        self.task.await.expect("microphone task");
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The `sfu` binary of this build as its own process; media is advertised
/// at `public_ip` (see [`SfuProcess::start`]).
pub async fn sfu_process(public_ip: &str) -> SfuProcess {
    SfuProcess::start(std::path::Path::new(env!("CARGO_BIN_EXE_sfu")), public_ip).await
}

/// What one member received, shared with its collector task.
#[derive(Default)]
pub struct Inbox {
    /// Decrypted frames per (publisher identity, track id), in order.
    pub frames: HashMap<(String, String), Vec<DecryptedFrame>>,
    /// When each decrypted frame arrived, per publisher identity.
    pub arrivals: HashMap<String, Vec<Instant>>,
    pub chat: Vec<(String, String)>,
    pub codes: Vec<String>,
    pub epochs: Vec<u64>,
    pub rosters: Vec<Vec<String>>,
    pub mismatches: Vec<(Vec<String>, Vec<String>)>,
    pub failures: Option<client_sdk::DecryptFailures>,
    pub signaling: Vec<client_sdk::SignalingState>,
    pub keyframes_needed: usize,
    pub subscribed: usize,
    pub closed: bool,
}

impl Inbox {
    pub fn frames_from(&self, identity: &str) -> Vec<DecryptedFrame> {
        let mut all: Vec<DecryptedFrame> = self
            .frames
            .iter()
            .filter(|((id, _), _)| id == identity)
            .flat_map(|(_, f)| f.clone())
            .collect();
        all.sort_by_key(|f| f.track_id.clone());
        all
    }
}

/// A room member with its inbox.
pub struct Member {
    /// Shared, so that a task of the test can send from it too.
    pub room: Arc<Room>,
    pub inbox: Arc<Mutex<Inbox>>,
    pub notify: Arc<tokio::sync::Notify>,
}

impl Member {
    pub async fn join(url: &str, room: &str, identity: &str, options: RoomOptions) -> Self {
        let (room, events) = client_sdk::connect(url, &token(room, identity), options)
            .await
            .expect("connect");
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let notify = Arc::new(tokio::sync::Notify::new());
        collect(events, Arc::clone(&inbox), Arc::clone(&notify));
        Self {
            room: Arc::new(room),
            inbox,
            notify,
        }
    }

    pub fn inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap()
    }

    /// Waits until `check` holds on the inbox.
    pub async fn until(&self, what: &str, check: impl Fn(&Inbox) -> bool) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let notified = self.notify.notified();
            if check(&self.inbox()) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let i = self.inbox();
                let mut summary: Vec<String> = i
                    .frames
                    .iter()
                    .map(|((id, track), f)| {
                        let mut idx: Vec<String> = f
                            .iter()
                            .filter_map(|f| frame_index(&f.data))
                            .map(|x| format!("{}{}", &x.1[..1], x.2))
                            .collect();
                        idx.truncate(80);
                        format!("{id}/{track}: {} frames {idx:?}", f.len())
                    })
                    .collect();
                summary.sort();
                panic!(
                    "{}: timed out waiting for {what}; frames {summary:#?}; failures {:?}; subscribed {}",
                    self.room.identity(),
                    self.room.decrypt_failures(),
                    i.subscribed
                );
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }

    pub async fn publish_av(&self) -> (MediaSender, MediaSender) {
        let mic = self
            .room
            .publish(TrackSpec::new("mic", Codec::opus()))
            .await
            .expect("publish mic");
        let cam = self
            .room
            .publish(TrackSpec::new("cam", Codec::vp8()))
            .await
            .expect("publish cam");
        (mic, cam)
    }
}

fn collect(mut events: RoomEvents, inbox: Arc<Mutex<Inbox>>, notify: Arc<tokio::sync::Notify>) {
    tokio::spawn(async move {
        let (frame_tx, mut frame_rx) = mpsc::unbounded_channel::<DecryptedFrame>();
        loop {
            tokio::select! {
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    let mut i = inbox.lock().unwrap();
                    match ev {
                        RoomEvent::TrackSubscribed(mut media) => {
                            i.subscribed += 1;
                            let tx = frame_tx.clone();
                            tokio::spawn(async move {
                                while let Some(f) = media.recv().await {
                                    if tx.send(f).is_err() { break; }
                                }
                            });
                        }
                        RoomEvent::Chat { from, text } => i.chat.push((from, text)),
                        RoomEvent::VerificationCodeChanged(c) => i.codes.push(c),
                        RoomEvent::EpochChanged { epoch } => i.epochs.push(epoch),
                        RoomEvent::RosterChanged(r) => {
                            i.rosters.push(r.into_iter().map(|m| m.identity).collect())
                        }
                        RoomEvent::RosterMismatch { mls_only, signaling_only } => {
                            i.mismatches.push((mls_only, signaling_only))
                        }
                        RoomEvent::DecryptFailures(f) => i.failures = Some(f),
                        RoomEvent::Signaling(s) => i.signaling.push(s),
                        RoomEvent::KeyframeNeeded { .. } => i.keyframes_needed += 1,
                        RoomEvent::Closed(_) => i.closed = true,
                        _ => {}
                    }
                    drop(i);
                    notify.notify_waiters();
                }
                Some(f) = frame_rx.recv() => {
                    let mut i = inbox.lock().unwrap();
                    i.arrivals.entry(f.identity.clone()).or_default().push(Instant::now());
                    i.frames
                        .entry((f.identity.clone(), f.track_id.clone()))
                        .or_default()
                        .push(f);
                    drop(i);
                    notify.notify_waiters();
                }
            }
        }
    });
}

/// A frame plaintext: sender, track, index, the marker, and filler that
/// covers every byte value, `len` bytes in all.
pub fn frame(sender: &str, track: &str, i: u32, marker: &[u8], len: usize) -> Vec<u8> {
    let mut p = format!("{sender}/{track}/{i}/").into_bytes();
    p.extend_from_slice(marker);
    let fill = len.saturating_sub(p.len());
    p.extend((0..=255u8).cycle().skip(i as usize % 256).take(fill));
    p
}

/// A video frame: [`frame`] behind a synthetic VP8 header, as the media
/// format needs (its keyframe bit must match `keyframe`).
pub fn video_frame(
    sender: &str,
    track: &str,
    i: u32,
    marker: &[u8],
    len: usize,
    keyframe: bool,
) -> Vec<u8> {
    testkit::vp8::frame(keyframe, &frame(sender, track, i, marker, len))
}

/// Parses the index out of a frame made by [`frame`] or [`video_frame`].
pub fn frame_index(data: &[u8]) -> Option<(String, String, u32)> {
    let data = testkit::vp8::strip(data);
    let text = String::from_utf8_lossy(&data[..data.len().min(64)]).to_string();
    let mut parts = text.split('/');
    let sender = parts.next()?.to_owned();
    let track = parts.next()?.to_owned();
    let i = parts.next()?.parse().ok()?;
    Some((sender, track, i))
}

/// The KID and CTR of an SFrame ciphertext (RFC 9605 §4.3), and the
/// header length.
pub fn sframe_header(data: &[u8]) -> Option<(u64, u64, usize)> {
    let config = *data.first()?;
    let mut at = 1;
    let read = |at: &mut usize, n: usize| -> Option<u64> {
        let bytes = data.get(*at..*at + n)?;
        *at += n;
        Some(bytes.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)))
    };
    let k = u64::from((config >> 4) & 0x07);
    let kid = if config & 0x80 == 0 {
        k
    } else {
        read(&mut at, k as usize + 1)?
    };
    let c = u64::from(config & 0x07);
    let ctr = if config & 0x08 == 0 {
        c
    } else {
        read(&mut at, c as usize + 1)?
    };
    Some((kid, ctr, at))
}

/// Tries to open an AES_128_GCM_SHA256_128 SFrame ciphertext with one
/// `(key, salt)` by hand: nonce = salt XOR CTR, AAD = header || metadata.
pub fn open_by_hand(data: &[u8], metadata: &[u8], key: &[u8], salt: &[u8]) -> Option<Vec<u8>> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let (_, ctr, header_len) = sframe_header(data)?;
    if key.len() != 16 || salt.len() != 12 {
        return None;
    }
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(salt);
    for (i, b) in ctr.to_be_bytes().iter().enumerate() {
        nonce[4 + i] ^= b;
    }
    let cipher = aes_gcm::Aes128Gcm::new_from_slice(key).ok()?;
    let mut aad = data[..header_len].to_vec();
    aad.extend_from_slice(metadata);
    cipher
        .decrypt(
            &aes_gcm::Nonce::from(nonce),
            Payload {
                msg: &data[header_len..],
                aad: &aad,
            },
        )
        .ok()
}
