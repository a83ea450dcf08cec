//! An end-to-end encrypted room: a [`Participant`] plus the MLS group that
//! keys it and the SFrame layer that encrypts every frame.
//!
//! The server forwards ciphertext and relays MLS messages it cannot read.
//! `docs/e2ee.md` describes the key schedule, epoch switching and what the
//! server can and cannot learn.

mod events;
mod keys;
mod media;
mod sender;

pub use events::{DecryptFailures, RoomEvent, RoomEvents, RosterMember, SignalingState};
pub use media::{DecryptedFrame, FramePiece, RemoteMedia, frame_piece, receive_assembler};
pub use sender::{MediaSender, SendFrameError};

use crate::error::{ConnectError, PeerError, PublishError, WaitError};
use crate::events::{CloseReason, Event, Events};
use crate::options::ConnectOptions;
use crate::participant::Participant;
use crate::track::{TrackSettings, TrackSpec};
use client_core::{Coordinator, CoordinatorConfig, Output, Pacing};
use e2ee::frame::{DecryptConfig, Suite, base_key_len};
use e2ee::group::{MlsClient, MlsConfig};
use keys::Keys;
use sender::SenderSlot;
use signaling::proto::{Target, TrackKind};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// How often decrypt-failure totals are checked for an event.
const FAILURE_REPORT_INTERVAL: Duration = Duration::from_millis(250);

/// Options for [`connect`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RoomOptions {
    /// The signaling and transport options.
    pub connect: ConnectOptions,
    /// The SFrame cipher suite; every member must use the same one.
    pub suite: Suite,
    /// Grace period, buffering and replay window on receive.
    pub decrypt: DecryptConfig,
    /// MLS settings.
    pub mls: MlsConfig,
    /// How long the next member in line waits before committing a pending
    /// join or leave in place of a silent committer.
    pub takeover_delay: Duration,
    /// How long the MLS and signaling rosters may differ before
    /// [`RoomEvent::RosterMismatch`] (a member the server never announced is
    /// reported at once).
    pub mismatch_grace: Duration,
    /// Periodic self-update (post-compromise security), if any.
    pub self_update: Option<Duration>,
    /// How joins are gathered into commits: a commit that only adds waits
    /// until `add_interval` after the current epoch began (leaves never
    /// wait). Every member should use the same values.
    pub pacing: Pacing,
}

impl Default for RoomOptions {
    fn default() -> Self {
        Self {
            connect: ConnectOptions::default(),
            suite: Suite::default(),
            decrypt: DecryptConfig::default(),
            mls: MlsConfig::default(),
            takeover_delay: Duration::from_secs(2),
            mismatch_grace: Duration::from_secs(10),
            self_update: None,
            pacing: Pacing::default(),
        }
    }
}

impl RoomOptions {
    /// The defaults, with ICE on loopback only (tests, a local SFU).
    pub fn loopback() -> Self {
        Self {
            connect: ConnectOptions::loopback(),
            ..Self::default()
        }
    }
}

/// Why a chat message was not queued.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// The text is longer than the SDK sends in one message.
    #[error("chat message of {0} bytes is too long")]
    TooLong(usize),
    /// The room is closed.
    #[error("room closed")]
    Closed,
}

enum Command {
    Chat(String),
}

/// What the app can read at any time.
#[derive(Debug, Default, Clone)]
struct Snapshot {
    epoch: Option<u64>,
    roster: Vec<RosterMember>,
    verification_code: Option<String>,
}

struct RoomShared {
    /// The current session; replaced when the room has to be joined again.
    session: Mutex<Arc<Participant>>,
    url: String,
    /// Kept to join again; never logged.
    token: String,
    options: RoomOptions,
    identity: String,
    keys: Arc<Keys>,
    snapshot: Mutex<Snapshot>,
    /// Published tracks, to publish again after a rejoin and to ask for a
    /// keyframe on video ones every epoch.
    senders: Mutex<Vec<Weak<SenderSlot>>>,
}

impl RoomShared {
    fn participant(&self) -> Arc<Participant> {
        Arc::clone(&lock(&self.session))
    }

    fn live_senders(&self) -> Vec<Arc<SenderSlot>> {
        let mut senders = lock(&self.senders);
        senders.retain(|s| s.strong_count() > 0);
        senders.iter().filter_map(Weak::upgrade).collect()
    }

    /// A group-key state machine for `participant`'s session, with a fresh
    /// MLS client (a new signature key per membership).
    fn coordinator(
        &self,
        participant: &Participant,
        now: Instant,
    ) -> Result<Coordinator, ConnectError> {
        let mls = MlsClient::new(&self.identity, self.options.mls.clone())
            .map_err(|e| ConnectError::E2ee(e.to_string()))?;
        let roster: Vec<(String, String)> = participant
            .room()
            .participants
            .iter()
            .map(|p| (p.participant_id.clone(), p.identity.clone()))
            .collect();
        self.keys
            .learn_identity(participant.participant_id(), &self.identity);
        for (pid, id) in &roster {
            self.keys.learn_identity(pid, id);
        }
        let cfg = CoordinatorConfig {
            takeover_delay: self.options.takeover_delay,
            mismatch_grace: self.options.mismatch_grace,
            self_update: self.options.self_update,
            sframe_nk: base_key_len(self.options.suite),
            mls: self.options.mls.clone(),
            pacing: self.options.pacing,
        };
        Ok(Coordinator::new(
            cfg,
            mls,
            participant.participant_id(),
            roster,
            participant.mls_info(),
            now,
        ))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One member of an end-to-end encrypted room. Created by [`connect`].
pub struct Room {
    shared: Arc<RoomShared>,
    commands: mpsc::UnboundedSender<Command>,
    epoch: watch::Receiver<Option<u64>>,
    driver: JoinHandle<()>,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room")
            .field("participant", &self.shared.participant())
            .field("identity", &self.shared.identity)
            .finish_non_exhaustive()
    }
}

/// Joins the room the access `token` names, at the signaling server `url`
/// (e.g. `ws://127.0.0.1:7880/rtc`), with end-to-end encryption.
///
/// The room is usable at once; frames sent before this member holds a
/// group key fail with [`SendFrameError::NoKey`]. [`Room::wait_for_keys`]
/// waits for the first epoch. The [crate documentation](crate) shows the
/// whole flow.
pub async fn connect(
    url: &str,
    token: &str,
    options: RoomOptions,
) -> Result<(Room, RoomEvents), ConnectError> {
    let (participant, events) = Participant::connect(url, token, options.connect.clone()).await?;
    let identity = participant.identity().to_owned();
    let keys = Arc::new(Keys::new(options.suite, options.decrypt.clone()));
    let participant = Arc::new(participant);
    let shared = Arc::new(RoomShared {
        session: Mutex::new(Arc::clone(&participant)),
        url: url.to_owned(),
        token: token.to_owned(),
        options,
        identity,
        keys,
        snapshot: Mutex::new(Snapshot::default()),
        senders: Mutex::new(Vec::new()),
    });
    let coordinator = shared.coordinator(&participant, Instant::now())?;
    let (commands_tx, commands_rx) = mpsc::unbounded_channel();
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let (epoch_tx, epoch_rx) = watch::channel(None);
    let driver = tokio::spawn(
        Driver {
            shared: Arc::clone(&shared),
            coordinator,
            events: events_tx,
            epoch: epoch_tx,
            failures: DecryptFailures::default(),
            receivers: Vec::new(),
        }
        .run(events, commands_rx),
    );
    Ok((
        Room {
            shared,
            commands: commands_tx,
            epoch: epoch_rx,
            driver,
        },
        RoomEvents::new(events_rx),
    ))
}

impl Room {
    /// This member's participant id, assigned by the server (a new one if
    /// the room had to be joined again).
    pub fn participant_id(&self) -> String {
        self.shared.participant().participant_id().to_owned()
    }

    /// This member's identity (from the token; also its MLS credential).
    pub fn identity(&self) -> &str {
        &self.shared.identity
    }

    /// Publishes an end-to-end encrypted track. The SDK encrypts,
    /// packetizes and sends each frame given to [`MediaSender::send_frame`].
    ///
    /// The codec must be one the media format covers
    /// ([`MediaCodec::from_name`](e2ee::frame::MediaCodec::from_name): Opus,
    /// VP8); another is [`PublishError::UnsupportedCodec`].
    pub async fn publish(&self, spec: TrackSpec) -> Result<MediaSender, PublishError> {
        let spec = spec.with_e2ee(true);
        let codec = e2ee::frame::MediaCodec::from_name(&spec.codec.name)
            .ok_or_else(|| PublishError::UnsupportedCodec(spec.codec.name.clone()))?;
        let track = self
            .shared
            .participant()
            .publish_track(spec.clone())
            .await?;
        let slot = Arc::new(SenderSlot::new(spec, track));
        lock(&self.shared.senders).push(Arc::downgrade(&slot));
        Ok(MediaSender::new(slot, codec, Arc::clone(&self.shared.keys)))
    }

    /// How this member displays the remote video track `track_id`: the
    /// server sends no layer larger than `settings` allows, and nothing
    /// while the track is hidden. Sent now if the track is subscribed, and
    /// again after each new subscription to it (the SDK remembers it until
    /// the track is unpublished, also across a rejoin). Returns `false` if
    /// the session is closed.
    pub fn set_track_settings(&self, track_id: &str, settings: TrackSettings) -> bool {
        self.shared
            .participant()
            .set_track_settings(track_id, settings)
    }

    /// Sends an end-to-end encrypted chat message to the room. It arrives
    /// at every member (this one included) as [`RoomEvent::Chat`], in the
    /// same order everywhere; messages queue until this member is in the
    /// group.
    pub async fn send_chat(&self, text: &str) -> Result<(), ChatError> {
        if text.len() > client_core::MAX_CHAT_BYTES {
            return Err(ChatError::TooLong(text.len()));
        }
        self.commands
            .send(Command::Chat(text.to_owned()))
            .map_err(|_| ChatError::Closed)
    }

    /// The current MLS epoch, once this member is in the group.
    pub fn epoch(&self) -> Option<u64> {
        lock(&self.shared.snapshot).epoch
    }

    /// The MLS group's members (identity and credential key of each).
    pub fn roster(&self) -> Vec<RosterMember> {
        lock(&self.shared.snapshot).roster.clone()
    }

    /// The code members compare out of band: equal codes mean the same
    /// group, with the same members, in the same epoch.
    pub fn verification_code(&self) -> Option<String> {
        lock(&self.shared.snapshot).verification_code.clone()
    }

    /// Waits until a media transport is connected. The publisher connects
    /// after the first [`Room::publish`], the subscriber after the server's
    /// first offer; frames sent before the publisher is connected are lost.
    pub async fn wait_connected(&self, target: Target, timeout: Duration) -> Result<(), WaitError> {
        let participant = self.shared.participant();
        match participant.wait_connected(target, timeout).await {
            Ok(()) => Ok(()),
            Err(PeerError::Timeout(t)) => Err(WaitError::Timeout(t)),
            Err(_) => Err(WaitError::Closed),
        }
    }

    /// Waits until this member holds a group key; returns the epoch.
    pub async fn wait_for_keys(&self, timeout: Duration) -> Result<u64, WaitError> {
        self.wait_for_epoch(0, timeout).await
    }

    /// Waits until this member reaches an epoch at or after `epoch`.
    pub async fn wait_for_epoch(&self, epoch: u64, timeout: Duration) -> Result<u64, WaitError> {
        let mut rx = self.epoch.clone();
        let wait = async {
            loop {
                if let Some(e) = *rx.borrow_and_update()
                    && e >= epoch
                {
                    return Ok(e);
                }
                if rx.changed().await.is_err() {
                    return Err(WaitError::Closed);
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| WaitError::Timeout(timeout))?
    }

    /// Frames dropped so far, by reason.
    pub fn decrypt_failures(&self) -> DecryptFailures {
        self.shared.keys.failures()
    }

    /// Every SFrame key this member holds now, as `(kid, key, salt)`. Only
    /// for tests that prove forward secrecy and the server's ignorance
    /// (the `test-util` feature); never log or transmit these.
    #[cfg(feature = "test-util")]
    pub fn held_sframe_keys_for_tests(&self) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
        self.shared.keys.held_keys()
    }

    /// Leaves the room cleanly: the others commit this member's removal.
    pub async fn leave(&self) {
        self.shared.participant().leave().await;
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// The task that owns the group-key state machine.
struct Driver {
    shared: Arc<RoomShared>,
    coordinator: Coordinator,
    events: mpsc::UnboundedSender<RoomEvent>,
    epoch: watch::Sender<Option<u64>>,
    failures: DecryptFailures,
    receivers: Vec<JoinHandle<()>>,
}

impl Driver {
    async fn run(mut self, mut events: Events, mut commands: mpsc::UnboundedReceiver<Command>) {
        self.drain();
        let mut report = tokio::time::interval(FAILURE_REPORT_INTERVAL);
        loop {
            let next = [
                self.coordinator.next_tick(),
                self.shared.keys.next_timeout(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
            tokio::select! {
                event = events.recv() => match event {
                    Some(Event::Closed(CloseReason::ConnectionLost)) => {
                        match self.rejoin().await {
                            Some(next) => events = next,
                            None => {
                                self.on_event(Event::Closed(CloseReason::ConnectionLost)).await;
                                break;
                            }
                        }
                    }
                    Some(event) => {
                        if self.on_event(event).await {
                            break;
                        }
                    }
                    None => break,
                },
                Some(command) = commands.recv() => match command {
                    Command::Chat(text) => self.coordinator.send_chat(Instant::now(), text),
                },
                _ = tokio::time::sleep_until(next.into()) => {
                    let now = Instant::now();
                    self.coordinator.tick(now);
                    self.shared.keys.tick(now);
                }
                _ = report.tick() => self.report_failures(),
            }
            self.drain();
        }
        for task in self.receivers.drain(..) {
            task.abort();
        }
    }

    fn emit(&self, event: RoomEvent) {
        let _ = self.events.send(event);
    }

    /// The server no longer holds our session: join the room again as a
    /// new participant with a new MLS client, publish the same tracks, and
    /// carry over unsent chat. `None` if that fails within the window.
    async fn rejoin(&mut self) -> Option<Events> {
        let options = &self.shared.options.connect;
        let window = options.reconnect_window;
        if window.is_zero() {
            return None;
        }
        let deadline = Instant::now() + window;
        let mut backoff = Duration::from_millis(100);
        let (participant, events) = loop {
            match Participant::connect(&self.shared.url, &self.shared.token, options.clone()).await
            {
                Ok(joined) => break joined,
                Err(ConnectError::Unauthorized(why)) => {
                    warn!(%why, "cannot join again: token refused");
                    return None;
                }
                Err(error) => {
                    if Instant::now() + backoff >= deadline {
                        warn!(%error, "cannot join again within the window");
                        return None;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        };
        let participant = Arc::new(participant);
        let now = Instant::now();
        let coordinator = match self.shared.coordinator(&participant, now) {
            Ok(c) => c,
            Err(error) => {
                warn!(%error, "cannot restart E2EE");
                participant.leave().await;
                return None;
            }
        };
        info!(participant = %participant.participant_id(), "joined the room again");
        for (track_id, settings) in self.shared.participant().track_settings() {
            participant.set_track_settings(&track_id, settings);
        }
        *lock(&self.shared.session) = Arc::clone(&participant);
        self.shared.keys.forget();
        *lock(&self.shared.snapshot) = Snapshot::default();
        let unsent = self.coordinator.take_unsent_chat();
        let old_members = self.coordinator.other_member_identities();
        self.coordinator = coordinator;
        // The others rejoin too, one by one: chat sent before they are back
        // would never reach them.
        self.coordinator
            .hold_chat_until_back(old_members, now + window);
        for text in unsent {
            self.coordinator.send_chat(now, text);
        }
        for slot in self.shared.live_senders() {
            match participant.publish_track(slot.spec.clone()).await {
                Ok(track) => slot.replace(track),
                Err(error) => warn!(cid = %slot.spec.cid, %error, "cannot publish again"),
            }
        }
        self.emit(RoomEvent::Signaling(SignalingState::Rejoined));
        Some(events)
    }

    fn report_failures(&mut self) {
        let now = self.shared.keys.failures();
        if now != self.failures {
            self.failures = now;
            self.emit(RoomEvent::DecryptFailures(now));
        }
    }

    /// Handles one participant event; `true` when the session is over.
    async fn on_event(&mut self, event: Event) -> bool {
        let now = Instant::now();
        match event {
            Event::Mls { seq, entry } => self.coordinator.entry(now, seq, entry),
            Event::MlsCommitRejected { epoch } => self.coordinator.commit_rejected(now, epoch),
            Event::ParticipantJoined(info) => {
                self.shared
                    .keys
                    .learn_identity(&info.participant_id, &info.identity);
                self.coordinator
                    .participant_joined(&info.participant_id, &info.identity);
                self.emit(RoomEvent::ParticipantJoined(info));
            }
            Event::ParticipantLeft {
                participant_id,
                reason,
            } => {
                self.coordinator.participant_left(&participant_id, now);
                self.emit(RoomEvent::ParticipantLeft {
                    participant_id,
                    reason,
                });
            }
            Event::TrackSubscribed(track) => {
                let dd_id = if track.info().kind == TrackKind::Video {
                    self.shared
                        .participant()
                        .subscriber_extension_id(rtp_dd::URI)
                        .await
                } else {
                    None
                };
                let (media, task) = media::receive(track, dd_id, Arc::clone(&self.shared.keys));
                self.receivers.retain(|t| !t.is_finished());
                self.receivers.push(task);
                self.emit(RoomEvent::TrackSubscribed(media));
            }
            Event::TrackUnsubscribed { track_id } => {
                self.emit(RoomEvent::TrackUnsubscribed { track_id })
            }
            Event::KeyframeRequested { cid } => self.emit(RoomEvent::KeyframeNeeded { cid }),
            Event::PublisherLayers { track_id, active } => {
                let slot = self
                    .shared
                    .live_senders()
                    .into_iter()
                    .find(|s| s.current().track_id() == track_id);
                match slot {
                    Some(slot) if slot.spec.is_simulcast() => {
                        let flags = slot.set_active(&active);
                        self.emit(RoomEvent::PublisherLayers {
                            cid: slot.spec.cid.clone(),
                            active: flags,
                        });
                    }
                    _ => debug!(%track_id, "publisher_layers for no simulcast track of ours"),
                }
            }
            Event::TrackPaused { track_id, paused } => {
                self.emit(RoomEvent::TrackPaused { track_id, paused })
            }
            Event::ActiveSpeaker { participant_id } => {
                self.emit(RoomEvent::ActiveSpeaker { participant_id })
            }
            Event::ConnectionStateChanged { target, state } => {
                self.emit(RoomEvent::ConnectionStateChanged { target, state })
            }
            Event::Reconnecting => self.emit(RoomEvent::Signaling(SignalingState::Reconnecting)),
            // The gap path reports `RejoinedGroup` through the
            // coordinator's `Desynchronized` output, and starts over as a
            // joiner (nothing of the old group state is worth resending).
            Event::Resumed { log_gap: true } => self.coordinator.log_gap(now),
            Event::Resumed { log_gap: false } => {
                self.emit(RoomEvent::Signaling(SignalingState::Resumed));
                self.coordinator.resumed(now);
            }
            Event::Closed(reason) => {
                self.report_failures();
                self.emit(RoomEvent::Closed(reason));
                return true;
            }
            Event::ServerError { code, message } => {
                debug!(?code, %message, "server error");
            }
            _ => {}
        }
        false
    }

    /// Carries out what the coordinator asked for.
    fn drain(&mut self) {
        while let Some(output) = self.coordinator.poll() {
            match output {
                Output::Send(message) => {
                    if !self.shared.participant().send_message(message) {
                        debug!("signaling closed; MLS message not sent");
                    }
                }
                Output::Epoch {
                    epoch,
                    base_key,
                    own_leaf,
                    members,
                    verification_code,
                } => {
                    self.shared.keys.install_epoch(
                        Instant::now(),
                        epoch,
                        &base_key,
                        own_leaf,
                        &members,
                    );
                    let roster: Vec<RosterMember> =
                        members.into_iter().map(RosterMember::from).collect();
                    *lock(&self.shared.snapshot) = Snapshot {
                        epoch: Some(epoch),
                        roster: roster.clone(),
                        verification_code: Some(verification_code.clone()),
                    };
                    self.epoch.send_replace(Some(epoch));
                    self.emit(RoomEvent::EpochChanged { epoch });
                    self.emit(RoomEvent::RosterChanged(roster));
                    self.emit(RoomEvent::VerificationCodeChanged(verification_code));
                    // RFC 9605 §6.2: the first frame under a new key should
                    // be one a receiver can start from.
                    for slot in self.shared.live_senders() {
                        if slot.spec.kind() == TrackKind::Video {
                            self.emit(RoomEvent::KeyframeNeeded {
                                cid: slot.spec.cid.clone(),
                            });
                        }
                    }
                }
                Output::LeftGroup => {
                    self.shared.keys.forget();
                    *lock(&self.shared.snapshot) = Snapshot::default();
                }
                Output::Chat { from, text } => self.emit(RoomEvent::Chat {
                    from: from.identity,
                    text,
                }),
                Output::Mismatch {
                    mls_only,
                    signaling_only,
                } => self.emit(RoomEvent::RosterMismatch {
                    mls_only,
                    signaling_only,
                }),
                Output::Desynchronized => {
                    warn!("group state out of step with the log; asking to be added again");
                    self.emit(RoomEvent::Signaling(SignalingState::RejoinedGroup));
                }
            }
        }
    }
}
