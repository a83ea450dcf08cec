//! A participant in a room: the signaling session and its two transports.

mod connect;
mod publish;
mod session;
mod settings;
mod signal;
mod subscriptions;

use crate::error::{ConnectError, PeerError, PublishError};
use crate::events::{CloseReason, ConnectionState, Event, Events};
use crate::options::ConnectOptions;
use crate::peer::Peer;
use crate::track::{LocalTrack, TrackSettings, TrackSpec};
use futures_util::StreamExt;
use publish::InFlight;
use settings::SettingsStore;
use signal::Signal;
use signaling::proto::{ClientMessage, MlsInfo, RoomState, Target};
use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use subscriptions::Subscriptions;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::info;

/// How long [`Participant::leave`] waits for the `leave` message to go out.
const LEAVE_FLUSH: Duration = Duration::from_secs(2);

/// State shared by the participant handle and its tasks.
struct Shared {
    participant_id: String,
    /// Our identity, as the token names it.
    identity: String,
    room: RoomState,
    mls: MlsInfo,
    url: String,
    /// Kept to reconnect; never logged.
    token: String,
    resume_token: String,
    /// The last MLS log entry passed up: where a resume continues.
    mls_seq: AtomicU64,
    options: ConnectOptions,
    signal: Signal,
    publisher: Peer,
    subscriber: Peer,
    events: mpsc::UnboundedSender<Event>,
    /// Serializes publish and unpublish negotiations.
    publish_lock: tokio::sync::Mutex<()>,
    in_flight: Mutex<InFlight>,
    published: Mutex<HashSet<String>>,
    subscriptions: Mutex<Subscriptions>,
    settings: Mutex<SettingsStore>,
    closed: AtomicBool,
    last_heard: Mutex<Instant>,
    /// Rung by the keepalive when the server has gone silent.
    silence_alarm: tokio::sync::Notify,
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn peer(&self, target: Target) -> &Peer {
        match target {
            Target::Publisher => &self.publisher,
            Target::Subscriber => &self.subscriber,
        }
    }

    /// Queues an event for the app. Once the session is closing only
    /// [`Event::Closed`] goes through, so that it is the last one.
    fn emit(&self, event: Event) {
        if self.is_closed() && !matches!(event, Event::Closed(_)) {
            return;
        }
        let _ = self.events.send(event);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn in_flight(&self) -> MutexGuard<'_, InFlight> {
        lock(&self.in_flight)
    }

    fn published_cids(&self) -> MutexGuard<'_, HashSet<String>> {
        lock(&self.published)
    }

    fn subscriptions(&self) -> MutexGuard<'_, Subscriptions> {
        lock(&self.subscriptions)
    }

    fn settings(&self) -> MutexGuard<'_, SettingsStore> {
        lock(&self.settings)
    }

    fn heard_from_server(&self) {
        *lock(&self.last_heard) = Instant::now();
    }

    fn silence(&self) -> Duration {
        lock(&self.last_heard).elapsed()
    }

    /// Ends the session once: wakes pending requests, closes the WebSocket
    /// after what is queued, closes both transports, and says why.
    async fn shutdown(&self, reason: CloseReason) {
        self.shutdown_after(reason, None).await;
    }

    /// [`Self::shutdown`], sending `last` first if this call is the one that
    /// ends the session. The session counts as ended before `last` goes
    /// out, so the server's reply to it (`leave` is answered with `closed`
    /// and a close frame) cannot end the session with another reason first.
    async fn shutdown_after(&self, reason: CloseReason, last: Option<ClientMessage>) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(message) = last {
            self.signal.send(message);
        }
        info!(participant = %self.participant_id, ?reason, "session closed");
        self.clear_in_flight();
        self.signal.close();
        self.publisher.close().await;
        self.subscriber.close().await;
        self.emit(Event::Closed(reason));
    }
}

/// One participant in a room.
///
/// Created by [`connect`](Self::connect), which also returns the stream of
/// [`Event`]s. Dropping it ends the session without a `leave` (the server
/// sees the connection close); [`leave`](Self::leave) ends it cleanly.
pub struct Participant {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for Participant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Participant")
            .field("participant_id", &self.shared.participant_id)
            .field("room", &self.shared.room.room)
            .finish_non_exhaustive()
    }
}

impl Participant {
    /// Connects to the signaling server at `url` (e.g.
    /// `ws://127.0.0.1:7880/rtc`), joins the room the access `token` names,
    /// and sets up the publisher and subscriber transports.
    ///
    /// The server then subscribes this participant to the room's tracks
    /// (auto-subscribe): they appear as [`Event::TrackSubscribed`].
    ///
    /// ```no_run
    /// use client_sdk::ConnectError;
    /// use client_sdk::config::ConnectOptions;
    /// use client_sdk::transport::Participant;
    ///
    /// # async fn run(token: &str) {
    /// match Participant::connect("ws://127.0.0.1:7880/rtc", token, ConnectOptions::default()).await {
    ///     Ok((me, _events)) => println!("joined as {}", me.participant_id()),
    ///     Err(ConnectError::Unauthorized(why)) => eprintln!("bad token: {why}"),
    ///     Err(other) => eprintln!("cannot join: {other}"),
    /// }
    /// # }
    /// ```
    pub async fn connect(
        url: &str,
        token: &str,
        options: ConnectOptions,
    ) -> Result<(Self, Events), ConnectError> {
        let (ws, joined) = connect::open(url, token, options.connect_timeout).await?;
        let identity = connect::token_identity(token).unwrap_or_default();
        info!(participant = %joined.participant_id, room = %joined.room.room, "joined");
        let (publisher, publisher_events) = Peer::new(options.peer_config()).await?;
        let (subscriber, subscriber_events) = Peer::new(options.peer_config()).await?;
        let (sink, stream) = ws.split();
        let (outgoing_tx, outgoing_rx) = mpsc::unbounded_channel();
        let (sinks_tx, sinks_rx) = mpsc::unbounded_channel();
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            subscriptions: Mutex::new(Subscriptions::new(&joined.room)),
            participant_id: joined.participant_id,
            identity,
            room: joined.room,
            mls_seq: AtomicU64::new(joined.mls.seq),
            mls: joined.mls,
            url: url.to_owned(),
            token: token.to_owned(),
            resume_token: joined.resume_token,
            options,
            signal: Signal::new(outgoing_tx, sinks_tx),
            publisher,
            subscriber,
            events: events_tx,
            publish_lock: tokio::sync::Mutex::new(()),
            in_flight: Mutex::new(InFlight::default()),
            published: Mutex::new(HashSet::new()),
            settings: Mutex::new(SettingsStore::default()),
            closed: AtomicBool::new(false),
            last_heard: Mutex::new(Instant::now()),
            silence_alarm: tokio::sync::Notify::new(),
        });
        let writer = tokio::spawn(signal::writer(sink, outgoing_rx, sinks_rx));
        let tasks = vec![
            tokio::spawn(session::read_loop(Arc::clone(&shared), stream)),
            tokio::spawn(session::keepalive(Arc::clone(&shared))),
            tokio::spawn(session::relay_peer_events(
                Arc::clone(&shared),
                Target::Publisher,
                publisher_events,
            )),
            tokio::spawn(session::relay_peer_events(
                Arc::clone(&shared),
                Target::Subscriber,
                subscriber_events,
            )),
        ];
        let participant = Self {
            shared,
            tasks,
            writer: Mutex::new(Some(writer)),
        };
        Ok((participant, Events::new(events_rx)))
    }

    /// This participant's id, assigned by the server.
    pub fn participant_id(&self) -> &str {
        &self.shared.participant_id
    }

    /// The identity the access token names.
    pub fn identity(&self) -> &str {
        &self.shared.identity
    }

    /// The room's MLS group as it stood when this participant joined.
    pub fn mls_info(&self) -> &MlsInfo {
        &self.shared.mls
    }

    /// Queues a protocol message (MLS messages from the room layer).
    pub(crate) fn send_message(&self, message: ClientMessage) -> bool {
        !self.is_closed() && self.shared.signal.send(message)
    }

    /// The id the subscriber transport negotiated for header extension
    /// `uri`, if any.
    pub(crate) async fn subscriber_extension_id(&self, uri: &str) -> Option<u8> {
        self.shared.subscriber.remote_extension_id(uri).await
    }

    /// The room as it was when this participant joined; later changes
    /// arrive as events.
    pub fn room(&self) -> &RoomState {
        &self.shared.room
    }

    /// Publishes a track: negotiates it on the publisher transport and
    /// returns once the server has accepted it. Send media with
    /// [`LocalTrack::write_rtp`] once the publisher transport is connected
    /// (see [`wait_connected`](Self::wait_connected)).
    pub async fn publish_track(&self, spec: TrackSpec) -> Result<LocalTrack, PublishError> {
        self.shared.publish(spec).await
    }

    /// Stops publishing a track and renegotiates the publisher transport.
    pub async fn unpublish_track(&self, track: LocalTrack) -> Result<(), PublishError> {
        self.shared.unpublish(track).await
    }

    /// Tells the room that `track` is muted (camera off, microphone muted)
    /// or no longer is; the others get [`Event::TrackMuted`]. Only a hint
    /// for display: what is sent is up to the app (send nothing, or
    /// silence). Returns `false` if the session is closed.
    pub fn set_track_muted(&self, track: &LocalTrack, muted: bool) -> bool {
        !self.is_closed()
            && self.shared.signal.send(ClientMessage::Mute {
                cid: track.cid().to_owned(),
                muted,
            })
    }

    /// Asks the server to send a track (only needed when the server does
    /// not auto-subscribe). It arrives as [`Event::TrackSubscribed`].
    /// Returns `false` if the session is closed.
    pub fn subscribe(&self, track_id: &str) -> bool {
        !self.is_closed()
            && self.shared.signal.send(ClientMessage::Subscribe {
                track_id: track_id.to_owned(),
            })
    }

    /// Asks the server to stop sending a track; confirmed by
    /// [`Event::TrackUnsubscribed`]. Returns `false` if the session is closed.
    pub fn unsubscribe(&self, track_id: &str) -> bool {
        !self.is_closed()
            && self.shared.signal.send(ClientMessage::Unsubscribe {
                track_id: track_id.to_owned(),
            })
    }

    /// How this client displays the remote track `track_id`: sent to the
    /// server now if the track is subscribed, and again after every
    /// `subscribed` for it, until it is unpublished. Returns `false` if the
    /// session is closed.
    pub fn set_track_settings(&self, track_id: &str, settings: TrackSettings) -> bool {
        if self.is_closed() {
            return false;
        }
        match self.shared.settings().set(track_id, settings) {
            Some(message) => self.shared.signal.send(message),
            None => true,
        }
    }

    /// Every remembered track setting.
    pub(crate) fn track_settings(&self) -> Vec<(String, TrackSettings)> {
        self.shared.settings().all()
    }

    /// The current state of one transport.
    pub fn connection_state(&self, target: Target) -> ConnectionState {
        self.shared.peer(target).connection_state()
    }

    /// Waits until a transport is connected. The publisher connects after
    /// the first [`publish_track`](Self::publish_track), the subscriber
    /// after the server's first offer.
    pub async fn wait_connected(&self, target: Target, timeout: Duration) -> Result<(), PeerError> {
        self.shared.peer(target).wait_connected(timeout).await
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Leaves the room: sends `leave`, closes both transports and the
    /// WebSocket, and emits [`Event::Closed`] with [`CloseReason::Left`].
    /// Idempotent.
    pub async fn leave(&self) {
        self.shared
            .shutdown_after(CloseReason::Left, Some(ClientMessage::Leave))
            .await;
        let writer = lock(&self.writer).take();
        if let Some(writer) = writer {
            let _ = tokio::time::timeout(LEAVE_FLUSH, writer).await;
        }
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        // The writer ends by itself once the tasks' handles on the session
        // are gone, closing the WebSocket; the transports close as their
        // `Peer`s drop.
    }
}
