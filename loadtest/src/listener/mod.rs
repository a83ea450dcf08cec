//! A light listener: a participant that only receives, built to cost
//! little CPU so one machine can fill a big room with them.
//!
//! It is still a real room member. It joins over the same signaling
//! protocol as `client_sdk` with its own token; it is a real MLS member
//! through `client_core`'s [`Coordinator`] (it sends its KeyPackage, is
//! added by a commit, processes every commit, and takes its turn to commit
//! others' joins and leaves like any member); and it receives over a real
//! WebRTC transport (ICE, DTLS-SRTP, RTCP receiver reports and NACKs) on
//! str0m, the SFU's own sans-IO stack, instead of webrtc-rs. Every frame it
//! counts was depacketized and decrypted with the SDK's own code
//! ([`client_sdk::transport::frame_piece`], the SDK's frame assembler and
//! `client_core`'s media keys), so its figures compare with a full
//! participant's.
//!
//! One tokio task per listener owns its WebSocket's sending half, UDP
//! socket, `Rtc`, coordinator and keys: no locks between them, and one
//! timer it moves. A second task reads the WebSocket and hands over parsed
//! messages: polling the WebSocket itself on every datagram would cost a
//! zeroed read buffer each time (tungstenite resizes it per read attempt).
//!
//! Its MLS work does not run on that task. Every commit of a big room
//! reaches all its members at once, and each spends a millisecond or two on
//! it (a Welcome, tens): run on the runtime's worker threads, those bursts
//! hold up the runtime, the media is read late and the tester measures itself. A
//! real client keeps MLS off its media path, so the listener hands its
//! coordinator, with the inputs queued for it (log entries, roster
//! changes, its timer), to the process's
//! [`MlsPool`](crate::mls_pool::MlsPool) and gets it back with its outputs
//! to carry out (`mls.rs`). Meanwhile it goes on receiving; MLS inputs that
//! arrive wait in order for the next trip, and the coordinator's timer is
//! only consulted while it is home.
//!
//! Like the SDK it does not ask for keyframes on receive (the SFU starts
//! each subscription at a keyframe). Unlike the SDK it does not reconnect
//! a lost signaling connection: the session then counts as lost.

mod downlink;
mod media;
mod mls;
mod signal;

use crate::clock;
use crate::participant::{JOIN_WINDOW, LEAVE_LIMIT, admit};
use crate::state::{Phase, Shared, Slot, lock};
use client_core::{Coordinator, CoordinatorConfig, Output};
use e2ee::frame::base_key_len;
use e2ee::group::MlsClient;
use futures_util::SinkExt;
use media::{Keys, TrackMeta, Transport};
use mls::{CoordInput, MlsWork};
use signal::WsSink;
use signaling::proto::{ClientMessage, ErrorCode, ServerMessage, Target, TrackInfo};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, warn};

/// How often the drop totals are copied to the slot (as the SDK reports
/// them).
const FAILURE_REPORT_INTERVAL: Duration = Duration::from_millis(250);

/// Runs `slot` as a light listener from join to leave. Never panics on
/// what the network does; every wait is bounded or ends with the run's
/// shutdown.
pub async fn run(shared: Arc<Shared>, slot: Arc<Slot>) {
    let joined = admit(&shared, &slot, |token| {
        let (shared, slot) = (Arc::clone(&shared), Arc::clone(&slot));
        async move { Session::connect(&shared, &slot, &token).await }
    });
    let Some(mut session) = joined.await else {
        return;
    };
    slot.set_phase(Phase::Live);
    debug!(identity = %slot.identity, "light listener joined");
    let end = session.drive(&shared, &slot).await;
    slot.set_failures(session.keys.failures());
    match end {
        Ok(()) => {
            let _ = tokio::time::timeout(LEAVE_LIMIT, session.leave()).await;
            slot.set_phase(Phase::Left);
        }
        Err(why) => {
            debug!(identity = %slot.identity, %why, "session lost");
            slot.note_error(why);
            slot.set_phase(Phase::Lost);
        }
    }
}

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error(transparent)]
    Join(#[from] signal::JoinError),
    #[error("no local address: {0}")]
    Socket(#[from] std::io::Error),
    #[error("E2EE setup failed: {0}")]
    E2ee(String),
}

/// One listener's whole state, owned by its task.
struct Session {
    sink: WsSink,
    /// Server messages, parsed by the reader task; closed when the
    /// connection is.
    incoming: mpsc::UnboundedReceiver<ServerMessage>,
    reader: JoinHandle<()>,
    /// Messages to send at the next flush.
    outbox: Vec<ClientMessage>,
    transport: Transport,
    /// The coordinator, home or away on the MLS pool.
    mls: MlsWork<Coordinator>,
    keys: Keys,
    /// Every track announced in the room, by track id.
    directory: HashMap<String, TrackInfo>,
    /// Publishers' participant ids, shared by their tracks' frames.
    publishers: HashMap<String, Arc<str>>,
    ping_interval: Duration,
}

impl Session {
    async fn connect(shared: &Shared, slot: &Slot, token: &str) -> Result<Self, ConnectError> {
        let (sink, stream, joined) = signal::join(&shared.settings.target.url, token).await?;
        let (incoming_tx, incoming) = mpsc::unbounded_channel();
        let now = Instant::now();
        let ip = local_ip(shared).await?;
        let transport = Transport::bind(ip, now, slot.downlink_bps).await?;
        let options = &shared.options;
        let mut keys = Keys::new(options.suite, options.decrypt.clone());
        keys.learn_identity(&joined.participant_id, &slot.identity);
        let mut directory = HashMap::new();
        let mut roster = Vec::new();
        for p in &joined.room.participants {
            keys.learn_identity(&p.participant_id, &p.identity);
            roster.push((p.participant_id.clone(), p.identity.clone()));
            for t in &p.tracks {
                directory.insert(t.track_id.clone(), t.clone());
            }
        }
        let mls = MlsClient::new(&slot.identity, options.mls.clone())
            .map_err(|e| ConnectError::E2ee(e.to_string()))?;
        let cfg = CoordinatorConfig {
            takeover_delay: options.takeover_delay,
            mismatch_grace: options.mismatch_grace,
            self_update: options.self_update,
            sframe_nk: base_key_len(options.suite),
            mls: options.mls.clone(),
            pacing: options.pacing,
        };
        let coordinator =
            Coordinator::new(cfg, mls, &joined.participant_id, roster, &joined.mls, now);
        Ok(Self {
            sink,
            incoming,
            reader: tokio::spawn(signal::read(stream, incoming_tx)),
            outbox: Vec::new(),
            transport,
            mls: MlsWork::new(coordinator),
            keys,
            directory,
            publishers: HashMap::new(),
            ping_interval: options.connect.ping_interval.max(Duration::from_millis(10)),
        })
    }

    /// Runs until asked to leave (`Ok`) or the session is lost (`Err`).
    async fn drive(&mut self, shared: &Shared, slot: &Slot) -> Result<(), String> {
        let start = Instant::now();
        let mut next_ping = start + self.ping_interval;
        let mut next_report = start + FAILURE_REPORT_INTERVAL;
        // When this listener stops counting as joining (set at its first
        // epoch), and whether that was marked.
        let mut joined_at: Option<Instant> = None;
        let mut join_marked = false;
        // One timer, moved when the next deadline moves: no timer
        // registered and dropped per datagram.
        let sleep = tokio::time::sleep_until(start.into());
        tokio::pin!(sleep);
        loop {
            let now = Instant::now();
            self.drain(now, shared, slot, join_marked, &mut joined_at);
            self.mls.dispatch(&shared.mls_pool);
            self.deliver(shared, slot);
            self.flush().await?;
            if self.transport.failed {
                return Err("media transport failed".to_owned());
            }
            let join_due = joined_at.filter(|_| !join_marked);
            let next = [
                Some(self.transport.next_timeout()),
                self.transport.next_release(),
                self.mls.home().and_then(|c| c.next_tick()),
                self.keys.next_timeout(),
                Some(next_ping),
                Some(next_report),
                join_due,
                slot.epoch_loss_deadline(),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + Duration::from_secs(1));
            if sleep.deadline() != next.into() {
                sleep.as_mut().reset(next.into());
            }
            tokio::select! {
                r = self.transport.readable() => {
                    if let Err(e) = r {
                        return Err(format!("media socket failed: {e}"));
                    }
                    self.transport.read_all(&mut self.keys);
                }
                message = self.incoming.recv() => match message {
                    Some(message) => self.on_message(message)?,
                    None => return Err("signaling connection lost".to_owned()),
                },
                back = self.mls.back() => back.map_err(|e| e.to_string())?,
                () = &mut sleep => {
                    let now = Instant::now();
                    self.transport.release(now, &mut self.keys);
                    if now >= self.transport.next_timeout() {
                        self.transport.tick(now, &mut self.keys);
                    }
                    let tick = self.mls.home().and_then(|c| c.next_tick());
                    if tick.is_some_and(|t| now >= t) {
                        // Its turn to commit is as heavy as processing one:
                        // it goes to the pool with the next dispatch.
                        self.mls.push(CoordInput::Tick);
                    }
                    if self.keys.next_timeout().is_some_and(|t| now >= t) {
                        self.keys.tick(now);
                    }
                    if now >= next_ping {
                        let ts = u64::try_from(now.duration_since(start).as_millis()).unwrap_or(u64::MAX);
                        self.outbox.push(ClientMessage::Ping { ts });
                        next_ping = now + self.ping_interval;
                    }
                    if now >= next_report {
                        slot.set_failures(self.keys.failures());
                        next_report = now + FAILURE_REPORT_INTERVAL;
                    }
                    if join_due.is_some_and(|at| now >= at) {
                        slot.mark_joined(self.keys.failures().total());
                        join_marked = true;
                    }
                    slot.epoch_loss_tick(&shared.senders, now, self.keys.failures());
                }
                () = slot.leave.cancelled() => return Ok(()),
                () = shared.shutdown.cancelled() => return Ok(()),
            }
        }
    }

    /// Handles one server message; `Err` when the session is over.
    fn on_message(&mut self, message: ServerMessage) -> Result<(), String> {
        let now = Instant::now();
        match message {
            ServerMessage::Offer {
                target: Target::Subscriber,
                sdp,
            } => match self.transport.accept_offer(&sdp) {
                Ok(sdp) => {
                    self.outbox.push(ClientMessage::Answer {
                        target: Target::Subscriber,
                        sdp,
                    });
                    // str0m has new work (ICE checks) and a new timeout.
                    self.transport.tick(now, &mut self.keys);
                }
                Err(e) => return Err(format!("subscriber offer refused: {e}")),
            },
            ServerMessage::Candidate {
                target: Target::Subscriber,
                candidate,
            } => {
                self.transport.add_remote_candidate(&candidate.candidate);
                self.transport.tick(now, &mut self.keys);
            }
            ServerMessage::ParticipantJoined { participant } => {
                self.keys
                    .learn_identity(&participant.participant_id, &participant.identity);
                for t in &participant.tracks {
                    self.directory.insert(t.track_id.clone(), t.clone());
                }
                self.mls.push(CoordInput::ParticipantJoined {
                    participant_id: participant.participant_id,
                    identity: participant.identity,
                });
            }
            ServerMessage::ParticipantLeft { participant_id, .. } => {
                self.directory
                    .retain(|_, t| t.participant_id != participant_id);
                self.publishers.remove(&participant_id);
                self.mls
                    .push(CoordInput::ParticipantLeft { participant_id });
            }
            ServerMessage::TrackPublished { track } => {
                self.directory.insert(track.track_id.clone(), track);
            }
            ServerMessage::TrackUnpublished { track_id, .. } => {
                self.directory.remove(&track_id);
            }
            ServerMessage::Subscribed { track_id, mid } => {
                let Some(info) = self.directory.get(&track_id) else {
                    warn!(%track_id, "subscribed to a track the server never announced");
                    return Ok(());
                };
                let publisher = Arc::clone(
                    self.publishers
                        .entry(info.participant_id.clone())
                        .or_insert_with(|| Arc::from(info.participant_id.as_str())),
                );
                let meta = TrackMeta {
                    publisher,
                    kind: info.kind,
                    codec: info.codec.clone(),
                };
                self.transport.subscribed(track_id, &mid, meta);
            }
            ServerMessage::Unsubscribed { track_id } => self.transport.unsubscribed(&track_id),
            ServerMessage::Mls { seq, entry } => self.mls.push(CoordInput::Entry { seq, entry }),
            ServerMessage::MlsCommitRejected { epoch, .. } => {
                self.mls.push(CoordInput::CommitRejected { epoch });
            }
            ServerMessage::Error {
                code: ErrorCode::MlsGap,
                ..
            } => self.mls.push(CoordInput::LogGap),
            ServerMessage::Closed { reason } => {
                return Err(format!("session closed: Server({reason:?})"));
            }
            ServerMessage::Error { code, .. } => debug!(?code, "server error"),
            _ => {}
        }
        Ok(())
    }

    /// Carries out what the coordinator asked for, if it is home (outputs
    /// of its work on the pool wait in it until it is).
    fn drain(
        &mut self,
        now: Instant,
        shared: &Shared,
        slot: &Slot,
        join_marked: bool,
        joined_at: &mut Option<Instant>,
    ) {
        let Some(coordinator) = self.mls.home() else {
            return;
        };
        while let Some(output) = coordinator.poll() {
            match output {
                Output::Send(message) => self.outbox.push(message),
                Output::Epoch {
                    epoch,
                    base_key,
                    own_leaf,
                    members,
                    ..
                } => {
                    self.keys
                        .install_epoch(now, epoch, &base_key, own_leaf, &members);
                    slot.epoch_switches.fetch_add(1, Ordering::Relaxed);
                    slot.set_roster(members.into_iter().map(|m| m.identity).collect());
                    joined_at.get_or_insert(now + JOIN_WINDOW);
                    if join_marked {
                        slot.epoch_changed(&shared.senders, now, self.keys.failures());
                    }
                }
                Output::LeftGroup => self.keys.forget(),
                Output::Mismatch { .. } => slot.note_roster_mismatch(),
                Output::Desynchronized => {
                    warn!("group state out of step with the log; asking to be added again");
                }
                Output::Chat { .. } => {}
            }
        }
    }

    /// Counts the frames that opened and passed attribution.
    fn deliver(&mut self, shared: &Shared, slot: &Slot) {
        let Some(first) = self.keys.poll_frame() else {
            return;
        };
        let now = clock::now_us();
        let mut stats = lock(&slot.stats);
        let mut n = 1;
        // A frame that is not ours is counted by the stats as malformed.
        let _ = stats.on_frame(&first.plaintext, now);
        while let Some(frame) = self.keys.poll_frame() {
            let _ = stats.on_frame(&frame.plaintext, now);
            n += 1;
        }
        drop(stats);
        shared.frames_received.fetch_add(n, Ordering::Relaxed);
    }

    /// Sends what is queued.
    async fn flush(&mut self) -> Result<(), String> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        for message in self.outbox.drain(..) {
            self.sink
                .feed(signal::text(&message))
                .await
                .map_err(|_| "signaling connection lost".to_owned())?;
        }
        self.sink
            .flush()
            .await
            .map_err(|_| "signaling connection lost".to_owned())
    }

    /// Leaves cleanly: `leave`, then the close frame.
    async fn leave(&mut self) {
        self.outbox.push(ClientMessage::Leave);
        if self.flush().await.is_ok() {
            let _ = self.sink.send(Message::Close(None)).await;
            let _ = self.sink.close().await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The address to gather a host candidate on: loopback for a loopback
/// SFU, else the interface the route to the SFU leaves from.
async fn local_ip(shared: &Shared) -> std::io::Result<IpAddr> {
    let endpoint = &shared.settings.target.endpoint;
    if endpoint.is_loopback() {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let remote: SocketAddr = tokio::net::lookup_host(endpoint.authority())
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other("the SFU's host name did not resolve"))?;
    let unspecified: IpAddr = if remote.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    };
    // Connecting a UDP socket sends nothing; it only picks the route.
    let probe = tokio::net::UdpSocket::bind(SocketAddr::new(unspecified, 0)).await?;
    probe.connect(remote).await?;
    Ok(probe.local_addr()?.ip())
}
