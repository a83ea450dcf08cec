//! The per-connection protocol state machine.
//!
//! It does no socket IO and never waits: the WebSocket driver (`ws.rs`)
//! feeds it parsed input and writes out whatever it pushes to [`Out`].
//! Every method returns a [`Flow`] saying whether the connection goes on.
//! Joining and resuming are in `join.rs`, the MLS messages in
//! `mls_inbound.rs`, the size, rate and budget checks every message passes
//! first in `admission.rs`.

mod admission;
mod join;
mod mls_inbound;

use admission::Limiter;

use super::delivery_log::Logged;
use super::limits::Allowance;
use super::outbox::{Kick, Outbox, Queued, Signal};
use super::quota::AddrKey;
use super::rooms::RoomError;
use super::state::Shared;
use crate::proto::{ClientMessage, ErrorCode, LeaveReason, ServerMessage, Target, TrackPublish};
use crate::token::Grants;
use axum::extract::ws::close_code;
use sfu_core::{MediaCommand, MediaEvent};
use std::sync::Arc;

/// Longest `cid`, `mid`, codec, rid or participant id a client may name.
const MAX_NAME_BYTES: usize = 64;
/// Most simulcast layers per track.
const MAX_SIMULCAST_LAYERS: usize = 4;
/// Longest error detail echoed back (parser messages can quote input).
const MAX_ERROR_DETAIL: usize = 200;

/// Whether the connection goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Keep going.
    Continue,
    /// Write what is in `out`, then close with this WebSocket close code.
    Close(u16),
}

/// One frame to write to the socket.
#[derive(Debug, Clone)]
pub(crate) enum Frame {
    /// A message to serialize.
    Msg(ServerMessage),
    /// An MLS log entry, already serialized.
    Mls(Arc<Logged>),
}

/// What the session wants written, in order.
#[derive(Debug, Default)]
pub(crate) struct Out(Vec<Frame>);

impl Out {
    pub(crate) fn push(&mut self, msg: ServerMessage) {
        self.0.push(Frame::Msg(msg));
    }

    pub(crate) fn push_mls(&mut self, entry: Arc<Logged>) {
        self.0.push(Frame::Mls(entry));
    }

    pub(crate) fn drain(&mut self) -> std::vec::Drain<'_, Frame> {
        self.0.drain(..)
    }
}

#[derive(Debug)]
enum State {
    AwaitingJoin,
    Joined {
        room: String,
        participant_id: String,
        grants: Grants,
    },
    Ended,
}

/// One connection's protocol state.
#[derive(Debug)]
pub(crate) struct Session {
    shared: Arc<Shared>,
    /// This connection's wake-up and kick signals.
    signal: Arc<Signal>,
    /// The participant's outbox, once joined or resumed.
    outbox: Option<Outbox>,
    /// The room named in the URL (`/rtc?room=…`), if any.
    url_room: Option<String>,
    /// Where the client connects from, if known.
    addr: Option<AddrKey>,
    /// The rate allowance it draws on.
    limiter: Limiter,
    /// Subscriber offers sent on this connection and not answered yet: the
    /// server decides how many there are, so an answer to one is not
    /// charged to the client's SDP rate (see `admission.rs`).
    offers_unanswered: u32,
    state: State,
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_ERROR_DETAIL {
        let mut cut = MAX_ERROR_DETAIL;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn bad_name(s: &str) -> bool {
    s.is_empty() || s.len() > MAX_NAME_BYTES
}

fn validate_track(t: &TrackPublish) -> Result<(), String> {
    if bad_name(&t.cid) || bad_name(&t.mid) || bad_name(&t.codec) {
        return Err(format!(
            "cid, mid and codec must be 1 to {MAX_NAME_BYTES} bytes"
        ));
    }
    if t.simulcast.len() > MAX_SIMULCAST_LAYERS || t.simulcast.iter().any(|r| bad_name(r)) {
        return Err(format!(
            "at most {MAX_SIMULCAST_LAYERS} simulcast rids of 1 to {MAX_NAME_BYTES} bytes"
        ));
    }
    if t.layers.len() > MAX_SIMULCAST_LAYERS
        || t.layers.iter().any(|l| l.width == 0 || l.height == 0)
    {
        return Err(format!(
            "at most {MAX_SIMULCAST_LAYERS} layer sizes, each at least 1×1"
        ));
    }
    Ok(())
}

impl Session {
    pub(crate) fn new(
        shared: Arc<Shared>,
        signal: Arc<Signal>,
        url_room: Option<String>,
        addr: Option<AddrKey>,
    ) -> Self {
        let cfg = &shared.config;
        let own = Allowance::new(
            cfg.rate_limit,
            &cfg.message_rates,
            std::time::Instant::now(),
        );
        Self {
            limiter: Limiter::Connection(Box::new(own)),
            offers_unanswered: 0,
            shared,
            signal,
            outbox: None,
            url_room,
            addr,
            state: State::AwaitingJoin,
        }
    }

    /// The room, once joined.
    fn room_name(&self) -> Option<&str> {
        match &self.state {
            State::Joined { room, .. } => Some(room),
            _ => None,
        }
    }

    /// Whether a join succeeded and the participant is still in its room.
    pub(crate) fn is_joined(&self) -> bool {
        matches!(self.state, State::Joined { .. })
    }

    /// The participant id, once joined.
    pub(crate) fn participant_id(&self) -> Option<&str> {
        match &self.state {
            State::Joined { participant_id, .. } => Some(participant_id),
            _ => None,
        }
    }

    /// The next item from the participant's outbox; never resolves before
    /// a join, or once another connection has resumed the participant.
    /// Cancel-safe.
    pub(crate) async fn next_queued(&self) -> Queued {
        match &self.outbox {
            Some(ob) => ob.recv(&self.signal).await,
            None => std::future::pending().await,
        }
    }

    /// Pushes an error and counts it.
    pub(crate) fn reject(&self, out: &mut Out, code: ErrorCode, message: impl Into<String>) {
        self.shared.metrics.error(code);
        out.push(ServerMessage::error(code, truncate(message.into())));
    }

    /// One text frame from the client.
    pub(crate) fn on_text(&mut self, text: &str, out: &mut Out) -> Flow {
        self.shared.metrics.message();
        match serde_json::from_str::<ClientMessage>(text) {
            Ok(msg) => self.on_message(msg, out),
            Err(e) => {
                self.reject(out, ErrorCode::BadMessage, format!("invalid message: {e}"));
                Flow::Continue
            }
        }
    }

    /// One parsed client message.
    pub(crate) fn on_message(&mut self, msg: ClientMessage, out: &mut Out) -> Flow {
        if let Some(refused) = self.admit(&msg, out) {
            return refused;
        }
        match (&self.state, msg) {
            (_, ClientMessage::Ping { ts }) => {
                out.push(ServerMessage::Pong { ts });
                Flow::Continue
            }
            (
                State::AwaitingJoin,
                ClientMessage::Join {
                    protocol,
                    token,
                    resume,
                },
            ) => self.join(protocol, &token, resume, out),
            (State::AwaitingJoin, _) => {
                self.reject(out, ErrorCode::OutOfOrder, "send join first");
                Flow::Continue
            }
            (State::Joined { .. }, ClientMessage::Join { .. }) => {
                self.reject(out, ErrorCode::OutOfOrder, "already joined");
                Flow::Continue
            }
            (
                State::Joined {
                    room,
                    participant_id,
                    grants,
                },
                msg,
            ) => {
                let (room, pid, grants) = (room.clone(), participant_id.clone(), *grants);
                self.joined_message(&room, &pid, grants, msg, out)
            }
            (State::Ended, _) => Flow::Close(close_code::NORMAL),
        }
    }

    fn joined_message(
        &mut self,
        room: &str,
        pid: &str,
        grants: Grants,
        msg: ClientMessage,
        out: &mut Out,
    ) -> Flow {
        let rooms = &self.shared.rooms;
        let pid_s = || pid.to_string();
        let res = match msg {
            ClientMessage::Offer {
                target: Target::Publisher,
                sdp,
            } => rooms.command(
                room,
                pid,
                MediaCommand::PublisherOffer {
                    participant: pid_s(),
                    sdp: sdp.into(),
                },
            ),
            ClientMessage::Offer { .. } => {
                self.reject(
                    out,
                    ErrorCode::OutOfOrder,
                    "the server makes the offers on the subscriber transport",
                );
                return Flow::Continue;
            }
            ClientMessage::Answer {
                target: Target::Subscriber,
                sdp,
            } => rooms.command(
                room,
                pid,
                MediaCommand::SubscriberAnswer {
                    participant: pid_s(),
                    sdp: sdp.into(),
                },
            ),
            ClientMessage::Answer { .. } => {
                self.reject(
                    out,
                    ErrorCode::OutOfOrder,
                    "the client makes the offers on the publisher transport",
                );
                return Flow::Continue;
            }
            ClientMessage::Candidate { target, candidate } => {
                rooms.command(room, pid, crate::media::candidate(pid, target, candidate))
            }
            ClientMessage::Publish { track } => {
                return self.publish(room, pid, grants, track, out);
            }
            ClientMessage::Unpublish { cid } => match rooms.unpublish(room, pid, &cid) {
                Err(RoomError::NotFound) => {
                    self.reject(out, ErrorCode::NotFound, "no published track has that cid");
                    return Flow::Continue;
                }
                other => other.map(drop),
            },
            ClientMessage::Mute { cid, muted } => match rooms.set_muted(room, pid, &cid, muted) {
                Err(RoomError::NotFound) => {
                    self.reject(out, ErrorCode::NotFound, "no published track has that cid");
                    return Flow::Continue;
                }
                other => other.map(drop),
            },
            ClientMessage::Subscribe { track_id } => {
                if !grants.subscribe {
                    self.reject(out, ErrorCode::Forbidden, "token lacks the subscribe grant");
                    return Flow::Continue;
                }
                let cmd = MediaCommand::Subscribe {
                    participant: pid_s(),
                    track_id: track_id.clone(),
                };
                rooms.subscription(room, pid, &track_id, cmd)
            }
            ClientMessage::Unsubscribe { track_id } => {
                let cmd = MediaCommand::Unsubscribe {
                    participant: pid_s(),
                    track_id: track_id.clone(),
                };
                rooms.subscription(room, pid, &track_id, cmd)
            }
            ClientMessage::TrackSettings {
                track_id,
                visible,
                max_width,
                max_height,
            } => {
                let cmd = MediaCommand::TrackSettings {
                    participant: pid_s(),
                    track_id: track_id.clone(),
                    visible,
                    max_width,
                    max_height,
                };
                rooms.subscription(room, pid, &track_id, cmd)
            }
            ClientMessage::Leave => {
                return self.leave_with(LeaveReason::Left, close_code::NORMAL, out);
            }
            msg @ (ClientMessage::MlsKeyPackage { .. }
            | ClientMessage::MlsCommit { .. }
            | ClientMessage::MlsGroupInfo { .. }
            | ClientMessage::MlsApplication { .. }) => {
                self.mls_message(room, pid, msg, out);
                return Flow::Continue;
            }
            // Handled before the state match.
            ClientMessage::Join { .. } | ClientMessage::Ping { .. } => Ok(()),
        };
        self.room_result(res, out);
        Flow::Continue
    }

    fn publish(
        &mut self,
        room: &str,
        pid: &str,
        grants: Grants,
        track: TrackPublish,
        out: &mut Out,
    ) -> Flow {
        if !grants.publish {
            self.reject(out, ErrorCode::Forbidden, "token lacks the publish grant");
            return Flow::Continue;
        }
        if let Err(why) = validate_track(&track) {
            self.reject(out, ErrorCode::BadMessage, why);
            return Flow::Continue;
        }
        let cid = track.cid.clone();
        let max = self.shared.config.max_tracks_per_participant;
        match self.shared.rooms.publish(room, pid, track, max) {
            Ok(info) => out.push(ServerMessage::TrackAccepted { cid, track: info }),
            Err(RoomError::DuplicateCid) => self.reject(
                out,
                ErrorCode::BadMessage,
                "a track with this cid is already published",
            ),
            Err(RoomError::TooManyTracks) => self.reject(
                out,
                ErrorCode::Unavailable,
                format!("at most {max} tracks per participant"),
            ),
            Err(e) => self.room_result(Err(e), out),
        }
        Flow::Continue
    }

    /// Reports the common registry failures.
    fn room_result(&self, res: Result<(), RoomError>, out: &mut Out) {
        match res {
            Ok(()) => {}
            // Being removed: the kick that follows closes the session.
            Err(RoomError::Gone) => {}
            Err(RoomError::NotFound | RoomError::NoRoom) => {
                self.reject(out, ErrorCode::NotFound, "no such track in this room")
            }
            Err(RoomError::OwnTrack) => self.reject(
                out,
                ErrorCode::BadMessage,
                "cannot subscribe to your own track",
            ),
            Err(RoomError::MediaUnavailable) => {
                self.reject(out, ErrorCode::Unavailable, "media plane unavailable")
            }
            Err(
                RoomError::RoomFull
                | RoomError::DuplicateCid
                | RoomError::TooManyTracks
                | RoomError::TooManyParticipants(_)
                | RoomError::TooManyRooms(_),
            ) => self.reject(out, ErrorCode::Unavailable, "request refused"),
        }
    }

    /// Leaves the room (if still in it), says `closed{reason}`, and closes.
    fn leave_with(&mut self, reason: LeaveReason, code: u16, out: &mut Out) -> Flow {
        if self.is_joined() {
            self.end(reason);
            out.push(ServerMessage::Closed { reason });
        }
        Flow::Close(code)
    }

    /// One item from the participant's outbox.
    pub(crate) fn on_queued(&mut self, item: Queued, out: &mut Out) -> Flow {
        match item {
            Queued::Msg(m) => out.push(m),
            Queued::Mls(e) => {
                let pid = self.participant_id().unwrap_or_default();
                out.push_mls(e.entry().for_member(pid));
            }
            Queued::Media(ev) => return self.on_media(ev, out),
            // The media plane dropped this participant's queue (it fell
            // behind): its media state is gone, so the participant leaves
            // as if its media had timed out.
            Queued::MediaGone => return self.on_media(MediaEvent::Timeout, out),
        }
        Flow::Continue
    }

    /// One event from the media plane for this participant.
    pub(crate) fn on_media(&mut self, ev: MediaEvent, out: &mut Out) -> Flow {
        if !self.is_joined() {
            return Flow::Continue;
        }
        match ev {
            MediaEvent::PublisherAnswer { sdp } => out.push(ServerMessage::Answer {
                target: Target::Publisher,
                sdp,
            }),
            MediaEvent::SubscriberOffer { sdp } => {
                self.offers_unanswered = self.offers_unanswered.saturating_add(1);
                out.push(ServerMessage::Offer {
                    target: Target::Subscriber,
                    sdp,
                })
            }
            MediaEvent::Subscribed { track_id, mid } => {
                out.push(ServerMessage::Subscribed { track_id, mid })
            }
            MediaEvent::Unsubscribed { track_id } => {
                out.push(ServerMessage::Unsubscribed { track_id })
            }
            MediaEvent::TrackPaused { track_id, paused } => {
                out.push(ServerMessage::TrackPaused { track_id, paused })
            }
            MediaEvent::ActiveSpeaker { participant_id } => {
                out.push(ServerMessage::ActiveSpeaker { participant_id })
            }
            MediaEvent::PublisherLayers { track_id, active } => {
                out.push(ServerMessage::PublisherLayers { track_id, active })
            }
            MediaEvent::Timeout => {
                return self.leave_with(LeaveReason::MediaTimeout, close_code::NORMAL, out);
            }
            MediaEvent::Error { message } => self.reject(out, ErrorCode::Media, message),
            MediaEvent::RateLimited { message } => {
                self.reject(out, ErrorCode::RateLimited, message)
            }
        }
        Flow::Continue
    }

    /// The registry or a slow-consumer check told this connection to stop.
    pub(crate) fn on_kick(&mut self, kick: Kick, out: &mut Out) -> Flow {
        match kick {
            Kick::Removed(reason) => {
                if self.is_joined() {
                    out.push(ServerMessage::Closed { reason });
                }
                self.state = State::Ended;
                Flow::Close(close_code::NORMAL)
            }
            Kick::Leave(reason) => self.leave_with(reason, close_code::POLICY, out),
            Kick::Detached => {
                tracing::debug!("resumed on another connection");
                self.state = State::Ended;
                Flow::Close(close_code::NORMAL)
            }
        }
    }

    /// The server is shutting down.
    pub(crate) fn on_shutdown(&mut self, out: &mut Out) -> Flow {
        self.reject(out, ErrorCode::Unavailable, "server shutting down");
        self.leave_with(LeaveReason::RoomClosed, close_code::AWAY, out)
    }

    /// No join arrived in time.
    pub(crate) fn on_join_timeout(&mut self, out: &mut Out) -> Flow {
        self.reject(out, ErrorCode::Unauthorized, "no join in time");
        Flow::Close(close_code::POLICY)
    }

    /// The connection was lost without `leave`: keep the participant in
    /// its room for the resume grace period. Returns whether it is now
    /// suspended; if not, the caller ends the session.
    pub(crate) fn suspend(&mut self) -> bool {
        let cfg = &self.shared.config;
        if cfg.resume_grace.is_zero() || self.shared.is_shutting_down() {
            return false;
        }
        match &self.state {
            State::Joined {
                room,
                participant_id,
                ..
            } => {
                self.shared
                    .rooms
                    .suspend(room, participant_id, self.signal.id(), cfg.resume_buffer)
            }
            _ => false,
        }
    }

    /// A kick while suspended: the participant was removed, resumed
    /// elsewhere, or its buffer overflowed.
    pub(crate) fn on_suspended_kick(&mut self, kick: Kick) {
        match kick {
            Kick::Removed(_) | Kick::Detached => self.state = State::Ended,
            Kick::Leave(reason) => {
                self.end(reason);
            }
        }
    }

    /// Ends the session: if the participant is still in its room, on this
    /// connection, it leaves with `reason`. Idempotent. Returns whether
    /// this call removed it.
    pub(crate) fn end(&mut self, reason: LeaveReason) -> bool {
        match std::mem::replace(&mut self.state, State::Ended) {
            State::Joined {
                room,
                participant_id,
                ..
            } => self
                .shared
                .rooms
                .leave(&room, &participant_id, self.signal.id(), reason),
            _ => false,
        }
    }
}

impl Drop for Session {
    // A session dropped without an explicit end (task cancelled, runtime
    // shut down) still leaves its room exactly once.
    fn drop(&mut self) {
        self.end(LeaveReason::Disconnected);
    }
}
