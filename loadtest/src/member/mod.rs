//! One scripted, end-to-end encrypted room member that sends real media:
//! the library behind the `participant` tool, which the browser tests put
//! in a room with Chromium participants.
//!
//! [`run`] joins, publishes a VP8 camera and an Opus microphone that replay
//! [`media`](crate::media) clips in a loop (going back to a keyframe when the
//! SDK asks for one), subscribes to everyone, sends chat, and when the run
//! ends leaves and returns a [`Summary`]: decrypted frames per remote track
//! and per publisher, decrypt failures by reason, chat in arrival order, and
//! every epoch's verification code and members.
//!
//! The run's clock starts when the group first has
//! [`Options::expect_members`] members, so that a slow join elsewhere does
//! not eat into it; chat is sent from then on. After the duration the media
//! stops and the member waits (at most [`Options::linger`]) until
//! [`Options::expect_chat`] messages have arrived, so that every member
//! leaves with the whole conversation.

pub mod summary;

use crate::cli::Secret;
use crate::media::{AudioClip, AudioLoop, VideoClip, VideoLoop, opus_packet_samples, vp8_keyframe};
use client_sdk::proto::{Target, TrackKind};
use client_sdk::{
    Codec, ConnectError, DecryptedFrame, MediaSender, PublishError, RemoteMedia, Room, RoomEvent,
    RoomOptions, SendFrameError, TrackSpec,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use summary::{ChatMessage, EpochSummary, Failures, IdentityFrames, Sent, Summary, TrackSummary};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The published tracks' names (`cid`s).
pub const VIDEO_CID: &str = "cam";
/// See [`VIDEO_CID`].
pub const AUDIO_CID: &str = "mic";

/// What a run does.
#[derive(Debug, Clone)]
pub struct Options {
    /// The signaling URL, e.g. `ws://127.0.0.1:7880/rtc`.
    pub url: String,
    /// The access token; never logged nor reported.
    pub token: Secret,
    /// The room's settings (e.g. [`RoomOptions::loopback`]).
    pub room: RoomOptions,
    /// The video to publish, if any.
    pub video: Option<VideoClip>,
    /// The audio to publish, if any.
    pub audio: Option<AudioClip>,
    /// How long to stay once the group is complete.
    pub duration: Duration,
    /// The group size that starts the run's clock (and chat). 0 or 1: start
    /// once this member holds a group key.
    pub expect_members: usize,
    /// The longest wait for that group; the run starts anyway after it.
    pub join_timeout: Duration,
    /// Chat messages to send, `"<identity>#<n>"` for n from 0.
    pub chat: u32,
    /// Time between two of them.
    pub chat_interval: Duration,
    /// Chat messages (from everyone) to wait for before leaving.
    pub expect_chat: usize,
    /// The longest wait for them after the duration.
    pub linger: Duration,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// Joining the room failed.
    #[error("cannot join: {0}")]
    Connect(#[from] ConnectError),
    /// Publishing a track failed.
    #[error("cannot publish track {track}: {error}")]
    Publish {
        /// Which track (its `cid`).
        track: &'static str,
        /// Why.
        error: PublishError,
    },
}

/// Send counters, shared with the media tasks.
#[derive(Debug, Default)]
struct SendCounters {
    video_frames: AtomicU64,
    video_keyframes: AtomicU64,
    audio_frames: AtomicU64,
    no_key: AtomicU64,
    errors: AtomicU64,
    keyframe_requests: AtomicU64,
    video_restarts: AtomicU64,
}

impl SendCounters {
    fn count(&self, result: Result<(), SendFrameError>, sent: &AtomicU64) -> bool {
        match result {
            Ok(()) => {
                sent.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(SendFrameError::NoKey) => {
                self.no_key.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(error) => {
                if self.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    warn!(%error, "a frame was not sent");
                }
                false
            }
        }
    }
}

/// What the receive side records, shared with one task per remote track.
#[derive(Debug, Default)]
struct Received {
    tracks: HashMap<String, TrackSummary>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Whether a decrypted frame is a frame of its track's codec.
fn valid_frame(kind: TrackKind, data: &[u8]) -> bool {
    match kind {
        TrackKind::Video => vp8_keyframe(data).is_some(),
        TrackKind::Audio => opus_packet_samples(data).is_some(),
    }
}

fn kind_name(kind: TrackKind) -> &'static str {
    match kind {
        TrackKind::Audio => "audio",
        TrackKind::Video => "video",
    }
}

/// Counts one remote track's frames until it ends.
fn count_frames(
    mut media: RemoteMedia,
    identity: Option<String>,
    received: Arc<Mutex<Received>>,
    start: Instant,
) -> JoinHandle<()> {
    let track_id = media.track_id().to_owned();
    let kind = media.kind();
    lock(&received)
        .tracks
        .entry(track_id.clone())
        .or_insert_with(|| TrackSummary {
            track_id: track_id.clone(),
            participant_id: media.participant_id().to_owned(),
            identity,
            kind: kind_name(kind).to_owned(),
            ..TrackSummary::default()
        });
    tokio::spawn(async move {
        while let Some(frame) = media.recv().await {
            let DecryptedFrame {
                identity,
                keyframe,
                epoch,
                data,
                ..
            } = frame;
            let now = ms(start);
            let mut r = lock(&received);
            let Some(t) = r.tracks.get_mut(&track_id) else {
                return;
            };
            if t.first_frame_ms.is_none() {
                info!(from = %identity, kind = %t.kind, "first frame decrypted");
                t.first_frame_ms = Some(now);
            }
            t.identity = Some(identity);
            t.frames += 1;
            t.keyframes += u64::from(keyframe);
            t.invalid += u64::from(!valid_frame(kind, &data));
            t.bytes += data.len() as u64;
            t.last_frame_ms = Some(now);
            t.last_epoch = Some(epoch);
        }
    })
}

/// Sends the video clip in a loop, one frame per frame interval, starting
/// again at a keyframe whenever `keyframe` is set.
fn send_video(
    sender: MediaSender,
    clip: VideoClip,
    keyframe: Arc<AtomicBool>,
    counters: Arc<SendCounters>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut video = VideoLoop::new(clip, rand::random());
        let interval = video.frame_interval();
        let mut due = tokio::time::Instant::now();
        loop {
            if keyframe.swap(false, Ordering::Relaxed) {
                video.restart();
                counters
                    .video_restarts
                    .store(video.restarts, Ordering::Relaxed);
            }
            let (data, timestamp, key) = video.next_frame();
            let result = sender.send_frame(data, timestamp, key).await;
            if counters.count(result, &counters.video_frames) && key {
                counters.video_keyframes.fetch_add(1, Ordering::Relaxed);
            }
            due += interval;
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = stop.cancelled() => break,
            }
        }
    })
}

/// Sends the audio clip in a loop, paced by each packet's duration.
fn send_audio(
    sender: MediaSender,
    clip: AudioClip,
    counters: Arc<SendCounters>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut audio = AudioLoop::new(clip, rand::random());
        let mut due = tokio::time::Instant::now();
        loop {
            let (data, timestamp, duration) = audio.next_packet();
            let result = sender.send_frame(data, timestamp, false).await;
            counters.count(result, &counters.audio_frames);
            due += duration;
            tokio::select! {
                () = tokio::time::sleep_until(due) => {}
                () = stop.cancelled() => break,
            }
        }
    })
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the group to be complete.
    Joining,
    /// Sending media and chat until the deadline.
    Running,
    /// Media stopped; waiting for the rest of the chat.
    Draining,
}

/// The event loop's state.
struct Run {
    options: Options,
    start: Instant,
    room: Room,
    summary: Summary,
    /// Identities by participant id, from the server's join events.
    identities: HashMap<String, String>,
    /// The epoch and roster of the event in progress (a new epoch's events
    /// come as epoch, roster, code).
    pending_epoch: Option<u64>,
    pending_members: Vec<String>,
    received: Arc<Mutex<Received>>,
    receivers: Vec<JoinHandle<()>>,
    chat_sent: u32,
    keyframe: Arc<AtomicBool>,
    counters: Arc<SendCounters>,
}

impl Run {
    fn on_event(&mut self, event: RoomEvent) -> bool {
        match event {
            RoomEvent::ParticipantJoined(info) => {
                self.identities.insert(info.participant_id, info.identity);
            }
            RoomEvent::TrackSubscribed(media) => {
                let identity = self.identities.get(media.participant_id()).cloned();
                info!(track = %media.track_id(), kind = kind_name(media.kind()), "subscribed");
                let task = count_frames(media, identity, Arc::clone(&self.received), self.start);
                self.receivers.push(task);
            }
            RoomEvent::EpochChanged { epoch } => {
                if self.summary.first_epoch_ms.is_none() {
                    self.summary.first_epoch_ms = Some(ms(self.start));
                    self.summary.decrypt_failures_at_join =
                        Failures::from(&self.room.decrypt_failures());
                }
                self.pending_epoch = Some(epoch);
            }
            RoomEvent::RosterChanged(roster) => {
                let mut members: Vec<String> = roster.into_iter().map(|m| m.identity).collect();
                members.sort();
                self.pending_members = members;
            }
            RoomEvent::VerificationCodeChanged(code) => {
                let epoch = self.pending_epoch.or(self.room.epoch()).unwrap_or_default();
                let members = std::mem::take(&mut self.pending_members);
                info!(epoch, members = members.len(), verification_code = %code, "new epoch");
                self.summary.epochs.push(EpochSummary {
                    epoch,
                    verification_code: code,
                    members,
                    at_ms: ms(self.start),
                });
            }
            RoomEvent::KeyframeNeeded { cid } if cid == VIDEO_CID => {
                self.counters
                    .keyframe_requests
                    .fetch_add(1, Ordering::Relaxed);
                self.keyframe.store(true, Ordering::Relaxed);
            }
            RoomEvent::Chat { from, text } => self.summary.chat.push(ChatMessage { from, text }),
            RoomEvent::RosterMismatch { .. } => self.summary.roster_mismatches += 1,
            RoomEvent::Closed(reason) => {
                warn!(?reason, "the session closed");
                return true;
            }
            _ => {}
        }
        false
    }

    fn group_complete(&self) -> bool {
        self.summary
            .epochs
            .last()
            .is_some_and(|e| e.members.len() >= self.options.expect_members.max(1))
    }
}

async fn publish(room: &Room, cid: &'static str, codec: Codec) -> Result<MediaSender, MemberError> {
    room.publish(TrackSpec::new(cid, codec))
        .await
        .map_err(|error| MemberError::Publish { track: cid, error })
}

/// Joins, runs until the duration ends (or `stop` is cancelled, or the
/// session closes), leaves, and returns what happened.
pub async fn run(options: Options, stop: CancellationToken) -> Result<Summary, MemberError> {
    let start = Instant::now();
    let (room, mut events) =
        client_sdk::connect(&options.url, &options.token.0, options.room.clone()).await?;
    info!(
        identity = %room.identity(),
        participant = %room.participant_id(),
        at_ms = ms(start),
        "connected"
    );
    let counters = Arc::new(SendCounters::default());
    let media_stop = CancellationToken::new();
    let keyframe = Arc::new(AtomicBool::new(false));
    // Publish both, then send once the publisher transport is up: frames
    // before that would only be refused.
    let cam = match options.video.clone() {
        Some(clip) => Some((publish(&room, VIDEO_CID, Codec::vp8()).await?, clip)),
        None => None,
    };
    let mic = match options.audio.clone() {
        Some(clip) => Some((publish(&room, AUDIO_CID, Codec::opus()).await?, clip)),
        None => None,
    };
    if cam.is_some() || mic.is_some() {
        match room
            .wait_connected(Target::Publisher, options.join_timeout)
            .await
        {
            Ok(()) => info!(at_ms = ms(start), "publishing"),
            Err(error) => warn!(%error, "the publisher transport is not connected"),
        }
    }
    let mut senders = Vec::new();
    if let Some((sender, clip)) = cam {
        senders.push(send_video(
            sender,
            clip,
            Arc::clone(&keyframe),
            Arc::clone(&counters),
            media_stop.clone(),
        ));
    }
    if let Some((sender, clip)) = mic {
        senders.push(send_audio(
            sender,
            clip,
            Arc::clone(&counters),
            media_stop.clone(),
        ));
    }

    let mut run = Run {
        summary: Summary {
            identity: room.identity().to_owned(),
            participant_id: room.participant_id(),
            ..Summary::default()
        },
        options,
        start,
        room,
        identities: HashMap::new(),
        pending_epoch: None,
        pending_members: Vec::new(),
        received: Arc::new(Mutex::new(Received::default())),
        receivers: Vec::new(),
        chat_sent: 0,
        keyframe,
        counters: Arc::clone(&counters),
    };
    let mut phase = Phase::Joining;
    let mut deadline = tokio::time::Instant::now() + run.options.join_timeout;
    let mut next_chat = tokio::time::Instant::now();
    let ended = loop {
        let chat_due = phase == Phase::Running && run.chat_sent < run.options.chat;
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break "closed" };
                if run.on_event(event) {
                    break "closed";
                }
            }
            () = tokio::time::sleep_until(next_chat), if chat_due => {
                let text = format!("{}#{}", run.summary.identity, run.chat_sent);
                if run.room.send_chat(&text).await.is_ok() {
                    run.summary.sent.chat += 1;
                }
                run.chat_sent += 1;
                next_chat += run.options.chat_interval;
            }
            () = tokio::time::sleep_until(deadline) => match phase {
                Phase::Joining => {
                    warn!("the group did not reach the expected size; starting anyway");
                    phase = Phase::Running;
                    deadline = tokio::time::Instant::now() + run.options.duration;
                    next_chat = tokio::time::Instant::now();
                }
                // Every chat message goes out before the run ends.
                Phase::Running if chat_due => deadline = next_chat,
                Phase::Running => {
                    media_stop.cancel();
                    phase = Phase::Draining;
                    deadline = tokio::time::Instant::now() + run.options.linger;
                }
                Phase::Draining => {
                    warn!(
                        got = run.summary.chat.len(),
                        expected = run.options.expect_chat,
                        "not all chat arrived"
                    );
                    break "duration";
                }
            },
            () = stop.cancelled() => break "stopped",
        }
        if phase == Phase::Joining && run.group_complete() {
            info!("the group is complete; the run starts");
            run.summary.group_complete_ms = Some(ms(start));
            phase = Phase::Running;
            deadline = tokio::time::Instant::now() + run.options.duration;
            next_chat = tokio::time::Instant::now();
        }
        if phase == Phase::Draining && run.summary.chat.len() >= run.options.expect_chat {
            break "duration";
        }
    };
    media_stop.cancel();
    for task in senders {
        let _ = task.await;
    }
    info!(ended, "leaving");
    let mut summary = run.summary;
    summary.ended = ended.to_owned();
    summary.chat_complete = summary.chat.len() >= run.options.expect_chat;
    summary.epoch = run.room.epoch();
    summary.verification_code = run.room.verification_code();
    summary.decrypt_failures = Failures::from(&run.room.decrypt_failures());
    summary.decrypt_failures_after_join = summary
        .decrypt_failures
        .since(&summary.decrypt_failures_at_join);
    summary.sent = Sent {
        video_frames: counters.video_frames.load(Ordering::Relaxed),
        video_keyframes: counters.video_keyframes.load(Ordering::Relaxed),
        audio_frames: counters.audio_frames.load(Ordering::Relaxed),
        no_key: counters.no_key.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
        keyframe_requests: counters.keyframe_requests.load(Ordering::Relaxed),
        video_restarts: counters.video_restarts.load(Ordering::Relaxed),
        chat: summary.sent.chat,
    };
    let mut tracks: Vec<TrackSummary> = lock(&run.received).tracks.values().cloned().collect();
    tracks.sort_by(|a, b| {
        (&a.identity, &a.kind, &a.track_id).cmp(&(&b.identity, &b.kind, &b.track_id))
    });
    let mut by_identity: BTreeMap<String, IdentityFrames> = BTreeMap::new();
    for t in &tracks {
        let Some(identity) = &t.identity else {
            continue;
        };
        let entry = by_identity.entry(identity.clone()).or_default();
        match t.kind.as_str() {
            "audio" => entry.audio += t.frames,
            _ => entry.video += t.frames,
        }
    }
    summary.tracks = tracks;
    summary.by_identity = by_identity;
    run.room.leave().await;
    for task in run.receivers {
        task.abort();
    }
    summary.left_ms = ms(start);
    Ok(summary)
}
