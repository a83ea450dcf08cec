//! The room registry: who is in which room, with which tracks, and each
//! room's MLS delivery log.
//!
//! Each room sits behind one `DashMap` shard lock. Every change to a room —
//! and the media command and broadcasts that go with it — happens under that
//! lock, so all members and the media plane see one order of events per
//! room, the MLS log order is the delivery order at every member, and a
//! participant is removed (one `MediaCommand::Leave`, one
//! `participant_left`) exactly once whichever path removes it first.
//! Nothing under the lock waits: media commands and outboxes only enqueue.
//!
//! Ownership (see "Who owns what" in `docs/architecture.md`): this registry
//! is the truth for membership (who is in which room, under which identity
//! and grants) and for the track list clients see (server track ids, cids,
//! codecs). The media plane keeps its own, derived view of both, fed only by
//! the commands sent from here under the room's lock, so it never learns of
//! a member or a track this registry does not have.
//!
//! MLS operations are in `mls_broadcast.rs`, suspension and resume in
//! `resume.rs`, the unit tests and their shared doubles in `tests.rs`.

mod mls_broadcast;
mod resume;

pub(crate) use mls_broadcast::MlsError;
pub(crate) use resume::{ResumeError, ResumeRequest};

use super::budget::{RoomBudget, SharedEntry};
use super::delivery_log::{DeliveryLog, LogLimits, Logged};
use super::ids;
use super::metrics::Metrics;
use super::outbox::{Kick, Outbox, Queued, SendOutcome};
use super::quota::{AddrKey, Quota, Refusal, Slot};
use crate::media::{self, EventSender, MediaRequest, MediaSink};
use crate::proto::{
    LeaveReason, MlsInfo, ParticipantInfo, RoomState, ServerMessage, TrackInfo, TrackPublish,
};
use crate::token::Grants;
use dashmap::DashMap;
use serde::Serialize;
use sfu_core::MediaCommand;
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// One row of the admin room list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RoomSummary {
    pub(crate) name: String,
    pub(crate) participants: usize,
    pub(crate) tracks: usize,
}

/// Totals over every room, for the gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) rooms: usize,
    pub(crate) participants: usize,
    pub(crate) suspended: usize,
    pub(crate) tracks: usize,
    pub(crate) mls_log_entries: usize,
    pub(crate) mls_log_bytes: usize,
    pub(crate) mls_key_packages: usize,
}

/// A secret that never shows in `Debug` output (and so never in logs).
#[derive(Clone, PartialEq, Eq)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug)]
struct Member {
    info: ParticipantInfo,
    /// Client cid → server track id.
    cids: HashMap<String, String>,
    outbox: Outbox,
    grants: Grants,
    resume_token: Secret,
    /// The last MLS log seq before it joined; a resume never replays
    /// entries at or before it.
    joined_seq: u64,
    /// Its place in the participant caps, given back when it is removed.
    _slot: Slot,
}

#[derive(Debug)]
struct Room {
    members: HashMap<String, Member>,
    /// Identity → participant id.
    by_identity: HashMap<String, String>,
    /// Track id → publisher participant id.
    tracks: HashMap<String, String>,
    mls: DeliveryLog,
    /// Bytes queued to the members.
    budget: Arc<RoomBudget>,
    /// Its place in the room caps, given back when the room goes.
    _slot: Option<Slot>,
}

impl Room {
    fn new(limits: LogLimits, budget: Arc<RoomBudget>, slot: Option<Slot>) -> Self {
        Self {
            members: HashMap::new(),
            by_identity: HashMap::new(),
            tracks: HashMap::new(),
            mls: DeliveryLog::new(limits),
            budget,
            _slot: slot,
        }
    }

    /// Everyone but `except`, sorted by id.
    fn others(&self, except: &str) -> Vec<ParticipantInfo> {
        let mut v: Vec<ParticipantInfo> = self
            .members
            .iter()
            .filter(|(pid, _)| pid.as_str() != except)
            .map(|(_, m)| m.info.clone())
            .collect();
        v.sort_by(|a, b| a.participant_id.cmp(&b.participant_id));
        v
    }
}

/// Everything a join needs.
#[derive(Debug)]
pub(crate) struct JoinRequest {
    pub(crate) room: String,
    pub(crate) identity: String,
    pub(crate) name: String,
    pub(crate) grants: Grants,
    pub(crate) auto_subscribe: bool,
    pub(crate) max_participants: usize,
    pub(crate) outbox: Outbox,
    pub(crate) events: EventSender,
    /// Where the client connects from, for the per-address caps.
    pub(crate) addr: Option<AddrKey>,
}

/// A successful join.
#[derive(Debug)]
pub(crate) struct Joined {
    pub(crate) participant_id: String,
    pub(crate) room: RoomState,
    pub(crate) mls: MlsInfo,
    pub(crate) resume_token: String,
}

/// Why a registry operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoomError {
    /// The room is at its participant limit.
    RoomFull,
    /// The media plane refused the command.
    MediaUnavailable,
    /// The participant is no longer in the room (it is being removed).
    Gone,
    /// No such room.
    NoRoom,
    /// No such participant, track or cid.
    NotFound,
    /// The track is the caller's own.
    OwnTrack,
    /// The cid is already published by this participant.
    DuplicateCid,
    /// The participant is at its track limit.
    TooManyTracks,
    /// A participant cap refused the join.
    TooManyParticipants(Refusal),
    /// A room cap refused to open the room.
    TooManyRooms(Refusal),
}

/// The caps and byte budget the registry enforces.
#[derive(Debug, Clone)]
pub(crate) struct RoomCaps {
    /// Participants, server-wide and per address.
    pub(crate) participants: Arc<Quota>,
    /// Rooms, server-wide and per address (of the first joiner).
    pub(crate) rooms: Arc<Quota>,
    /// Bytes each room may have queued to its members.
    pub(crate) room_bytes: usize,
    /// Every room's queued bytes, summed.
    pub(crate) queued_total: Arc<AtomicUsize>,
}

impl Default for RoomCaps {
    fn default() -> Self {
        Self {
            participants: Quota::new(usize::MAX, usize::MAX),
            rooms: Quota::new(usize::MAX, usize::MAX),
            room_bytes: usize::MAX,
            queued_total: Arc::default(),
        }
    }
}

/// The registry.
pub(crate) struct Rooms {
    map: DashMap<String, Room>,
    media: Arc<dyn MediaSink>,
    metrics: Arc<Metrics>,
    limits: LogLimits,
    caps: RoomCaps,
    /// See `SignalingConfig::mls_founder_timeout`.
    founder_timeout: Duration,
    /// This registry, for the founder timers it starts.
    me: Weak<Rooms>,
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms")
            .field("rooms", &self.map.len())
            .finish_non_exhaustive()
    }
}

/// Counts and logs one delivery outcome.
fn delivered(metrics: &Metrics, pid: &str, d: SendOutcome) {
    if d == SendOutcome::SlowConsumer {
        metrics.slow_consumer();
        tracing::info!(participant = %pid, "slow consumer: outbound queue full, closing");
    }
}

/// Sends `msg` to every member but `except`.
fn broadcast(metrics: &Metrics, room: &Room, except: Option<&str>, msg: &ServerMessage) {
    for (pid, m) in &room.members {
        if Some(pid.as_str()) == except {
            continue;
        }
        delivered(metrics, pid, m.outbox.send_msg(msg.clone()));
    }
}

/// Sends a new MLS log entry to every member, the sender included, and
/// counts it.
fn broadcast_mls(metrics: &Metrics, room: &Room, entry: &Arc<Logged>) {
    metrics.mls_entry(entry.kind, entry.bytes());
    let shared = SharedEntry::new(entry.clone(), &room.budget);
    for (pid, m) in &room.members {
        delivered(metrics, pid, m.outbox.send(Queued::Mls(shared.clone())));
    }
}

impl Rooms {
    pub(crate) fn new(
        media: Arc<dyn MediaSink>,
        metrics: Arc<Metrics>,
        limits: LogLimits,
        founder_timeout: Duration,
        caps: RoomCaps,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            map: DashMap::new(),
            media,
            metrics,
            limits,
            caps,
            founder_timeout,
            me: me.clone(),
        })
    }

    /// Whether `room` may queue `bytes` more to its members. A room that
    /// does not exist has nothing queued.
    pub(crate) fn fits(&self, room: &str, bytes: usize) -> bool {
        self.map.get(room).is_none_or(|r| r.budget.fits(bytes))
    }

    /// Removes `pid` from `room` (already locked): media leave, broadcast,
    /// MLS reset if no group member is left, count. Returns the member so
    /// the caller may kick it.
    fn remove_locked(
        &self,
        room_name: &str,
        room: &mut Room,
        pid: &str,
        reason: LeaveReason,
    ) -> Option<Member> {
        let m = room.members.remove(pid)?;
        m.outbox.close();
        if room.by_identity.get(&m.info.identity).map(String::as_str) == Some(pid) {
            room.by_identity.remove(&m.info.identity);
        }
        for t in m.cids.values() {
            room.tracks.remove(t);
        }
        if !self.media.command(
            MediaCommand::Leave {
                participant: pid.to_string(),
            }
            .into(),
        ) {
            tracing::warn!(participant = %pid, "media plane refused leave");
        }
        broadcast(
            &self.metrics,
            room,
            None,
            &ServerMessage::ParticipantLeft {
                participant_id: pid.to_string(),
                reason,
            },
        );
        if let Some(reset) = room.mls.departed(pid) {
            tracing::info!("no MLS group member left: group reset");
            self.reset_broadcast(room_name, room, &reset);
        }
        self.metrics.leave(reason);
        tracing::info!(participant = %pid, ?reason, "participant left");
        Some(m)
    }

    fn drop_if_empty(&self, room: &str) {
        self.map.remove_if(room, |_, r| r.members.is_empty());
    }

    /// Adds a participant, replacing any earlier session of the same
    /// identity (live or suspended), and tells the others and the media
    /// plane. A participant alone in the room founds its MLS group.
    pub(crate) fn join(&self, req: JoinRequest) -> Result<Joined, RoomError> {
        let room_name = req.room.clone();
        let slot = self
            .caps
            .participants
            .acquire(req.addr)
            .map_err(RoomError::TooManyParticipants)?;
        // Taken before the room's lock (a quota has its own); if another
        // join opens the room first, this one is given back unused.
        let mut room_slot = if self.map.contains_key(&room_name) {
            None
        } else {
            Some(
                self.caps
                    .rooms
                    .acquire(req.addr)
                    .map_err(RoomError::TooManyRooms)?,
            )
        };
        let result = {
            let limits = self.limits;
            let budget = || RoomBudget::new(self.caps.room_bytes, self.caps.queued_total.clone());
            let mut room = self
                .map
                .entry(room_name.clone())
                .or_insert_with(|| Room::new(limits, budget(), room_slot.take()));
            let old = room.by_identity.get(&req.identity).cloned();
            let others = room.members.len() - usize::from(old.is_some());
            if others >= req.max_participants {
                Err(RoomError::RoomFull)
            } else {
                let pid = ids::participant_id();
                let join = MediaCommand::Join {
                    participant: pid.clone(),
                    room: room_name.clone(),
                    can_publish: req.grants.publish,
                    auto_subscribe: req.auto_subscribe,
                };
                let accepted = self.media.command(MediaRequest::join(join, req.events));
                if !accepted {
                    Err(RoomError::MediaUnavailable)
                } else {
                    if let Some(old) = old
                        && let Some(m) =
                            self.remove_locked(&room_name, &mut room, &old, LeaveReason::Replaced)
                    {
                        m.outbox.kick(Kick::Removed(LeaveReason::Replaced));
                    }
                    let mls = room.mls.join(&pid, &req.identity);
                    if mls.founder {
                        self.arm_founder_timer(&room_name, mls.group_id.clone());
                    }
                    let participants = room.others(&pid);
                    let info = ParticipantInfo {
                        participant_id: pid.clone(),
                        identity: req.identity.clone(),
                        name: req.name,
                        tracks: Vec::new(),
                    };
                    broadcast(
                        &self.metrics,
                        &room,
                        None,
                        &ServerMessage::ParticipantJoined {
                            participant: info.clone(),
                        },
                    );
                    let resume_token = ids::random_hex128();
                    req.outbox.set_room(room.budget.clone());
                    room.by_identity.insert(req.identity, pid.clone());
                    room.members.insert(
                        pid.clone(),
                        Member {
                            info,
                            cids: HashMap::new(),
                            outbox: req.outbox,
                            grants: req.grants,
                            resume_token: Secret(resume_token.clone()),
                            joined_seq: mls.seq,
                            _slot: slot,
                        },
                    );
                    self.metrics.join();
                    Ok(Joined {
                        participant_id: pid,
                        room: RoomState {
                            room: room_name.clone(),
                            participants,
                        },
                        mls,
                        resume_token,
                    })
                }
            }
        };
        if result.is_err() {
            self.drop_if_empty(&room_name);
        }
        result
    }

    /// The participant's own exit (leave, disconnect, timeout, grace
    /// expiry) from connection `conn`. Returns whether this removed it; it
    /// does nothing if another path removed it or another connection has
    /// resumed it since.
    pub(crate) fn leave(&self, room: &str, pid: &str, conn: u64, reason: LeaveReason) -> bool {
        let removed = match self.map.get_mut(room) {
            Some(mut r) => {
                let owned = r.members.get(pid).is_some_and(|m| m.outbox.is_reader(conn));
                owned && self.remove_locked(room, &mut r, pid, reason).is_some()
            }
            None => false,
        };
        if removed {
            self.drop_if_empty(room);
        }
        removed
    }

    /// Admin removal: the participant gets `closed{removed}`.
    pub(crate) fn remove(&self, room: &str, pid: &str) -> Result<(), RoomError> {
        let member = {
            let mut r = self.map.get_mut(room).ok_or(RoomError::NoRoom)?;
            self.remove_locked(room, &mut r, pid, LeaveReason::Removed)
                .ok_or(RoomError::NotFound)?
        };
        member.outbox.kick(Kick::Removed(LeaveReason::Removed));
        self.drop_if_empty(room);
        Ok(())
    }

    /// Closes a room: every member gets `closed{room_closed}`.
    pub(crate) fn close(&self, room: &str) -> Result<usize, RoomError> {
        let (_, r) = self.map.remove(room).ok_or(RoomError::NoRoom)?;
        for (pid, m) in &r.members {
            m.outbox.close();
            if !self.media.command(
                MediaCommand::Leave {
                    participant: pid.clone(),
                }
                .into(),
            ) {
                tracing::warn!(participant = %pid, "media plane refused leave");
            }
            self.metrics.leave(LeaveReason::RoomClosed);
            m.outbox.kick(Kick::Removed(LeaveReason::RoomClosed));
        }
        tracing::info!(participants = r.members.len(), "room closed");
        Ok(r.members.len())
    }

    /// Sends a per-participant media command if the participant is still
    /// in the room, so no command ever follows its `Leave`.
    pub(crate) fn command(
        &self,
        room: &str,
        pid: &str,
        mut cmd: MediaCommand,
    ) -> Result<(), RoomError> {
        // Before the room's lock: parsing an SDP is more than an enqueue.
        self.media.prepare(&mut cmd);
        let r = self.map.get(room).ok_or(RoomError::Gone)?;
        if !r.members.contains_key(pid) {
            return Err(RoomError::Gone);
        }
        if self.media.command(cmd.into()) {
            Ok(())
        } else {
            Err(RoomError::MediaUnavailable)
        }
    }

    /// Registers a track, announces it, and tells the media plane.
    pub(crate) fn publish(
        &self,
        room: &str,
        pid: &str,
        track: TrackPublish,
        max_tracks: usize,
    ) -> Result<TrackInfo, RoomError> {
        let mut r = self.map.get_mut(room).ok_or(RoomError::Gone)?;
        let r = &mut *r;
        let m = r.members.get_mut(pid).ok_or(RoomError::Gone)?;
        if m.cids.contains_key(&track.cid) {
            return Err(RoomError::DuplicateCid);
        }
        if m.cids.len() >= max_tracks {
            return Err(RoomError::TooManyTracks);
        }
        let info = TrackInfo {
            track_id: ids::track_id(),
            participant_id: pid.to_string(),
            kind: track.kind,
            codec: track.codec.clone(),
            simulcast: track.simulcast.clone(),
            e2ee: track.e2ee,
            muted: false,
        };
        // Announce before the media plane hears of the track: its
        // `subscribed{track}` reaches the others through their outboxes, and
        // must land behind `track_published`, or a client pairs media with a
        // track it does not know and cannot tell whose frames they are.
        broadcast(
            &self.metrics,
            r,
            Some(pid),
            &ServerMessage::TrackPublished {
                track: info.clone(),
            },
        );
        let cid = track.cid.clone();
        if !self
            .media
            .command(media::publish(pid, &info.track_id, track).into())
        {
            broadcast(
                &self.metrics,
                r,
                Some(pid),
                &ServerMessage::TrackUnpublished {
                    participant_id: pid.to_string(),
                    track_id: info.track_id,
                },
            );
            return Err(RoomError::MediaUnavailable);
        }
        let m = r.members.get_mut(pid).ok_or(RoomError::Gone)?;
        m.cids.insert(cid, info.track_id.clone());
        m.info.tracks.push(info.clone());
        r.tracks.insert(info.track_id.clone(), pid.to_string());
        Ok(info)
    }

    /// Removes a track by the publisher's cid, tells the media plane, and
    /// announces it.
    pub(crate) fn unpublish(&self, room: &str, pid: &str, cid: &str) -> Result<String, RoomError> {
        let mut r = self.map.get_mut(room).ok_or(RoomError::Gone)?;
        let r = &mut *r;
        let m = r.members.get_mut(pid).ok_or(RoomError::Gone)?;
        let track_id = m.cids.remove(cid).ok_or(RoomError::NotFound)?;
        m.info.tracks.retain(|t| t.track_id != track_id);
        r.tracks.remove(&track_id);
        if !self.media.command(
            MediaCommand::Unpublish {
                participant: pid.to_string(),
                track_id: track_id.clone(),
            }
            .into(),
        ) {
            tracing::warn!(participant = %pid, "media plane refused unpublish");
        }
        broadcast(
            &self.metrics,
            r,
            Some(pid),
            &ServerMessage::TrackUnpublished {
                participant_id: pid.to_string(),
                track_id: track_id.clone(),
            },
        );
        Ok(track_id)
    }

    /// Records that the publisher muted or unmuted the track it calls
    /// `cid`, and announces a change to the others (none if nothing
    /// changed). Returns the track id.
    pub(crate) fn set_muted(
        &self,
        room: &str,
        pid: &str,
        cid: &str,
        muted: bool,
    ) -> Result<String, RoomError> {
        let mut r = self.map.get_mut(room).ok_or(RoomError::Gone)?;
        let r = &mut *r;
        let m = r.members.get_mut(pid).ok_or(RoomError::Gone)?;
        let track_id = m.cids.get(cid).ok_or(RoomError::NotFound)?.clone();
        let track = m
            .info
            .tracks
            .iter_mut()
            .find(|t| t.track_id == track_id)
            .ok_or(RoomError::NotFound)?;
        if track.muted == muted {
            return Ok(track_id);
        }
        track.muted = muted;
        broadcast(
            &self.metrics,
            r,
            Some(pid),
            &ServerMessage::TrackMuted {
                participant_id: pid.to_string(),
                track_id: track_id.clone(),
                muted,
            },
        );
        Ok(track_id)
    }

    /// Sends a (un)subscribe command for another participant's track.
    pub(crate) fn subscription(
        &self,
        room: &str,
        pid: &str,
        track_id: &str,
        cmd: MediaCommand,
    ) -> Result<(), RoomError> {
        let r = self.map.get(room).ok_or(RoomError::Gone)?;
        if !r.members.contains_key(pid) {
            return Err(RoomError::Gone);
        }
        match r.tracks.get(track_id) {
            None => Err(RoomError::NotFound),
            Some(publisher) if publisher == pid => Err(RoomError::OwnTrack),
            Some(_) => {
                if self.media.command(cmd.into()) {
                    Ok(())
                } else {
                    Err(RoomError::MediaUnavailable)
                }
            }
        }
    }

    /// Every room, sorted by name.
    pub(crate) fn list(&self) -> Vec<RoomSummary> {
        let mut v: Vec<RoomSummary> = self
            .map
            .iter()
            .map(|e| RoomSummary {
                name: e.key().clone(),
                participants: e.members.len(),
                tracks: e.tracks.len(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The participants of one room, sorted by id.
    pub(crate) fn participants(&self, room: &str) -> Option<Vec<ParticipantInfo>> {
        let r = self.map.get(room)?;
        Some(r.others(""))
    }

    /// Totals over every room.
    pub(crate) fn counts(&self) -> Counts {
        self.map.iter().fold(Counts::default(), |mut c, e| {
            let (entries, bytes) = e.mls.log_size();
            c.rooms += 1;
            c.participants += e.members.len();
            c.suspended += e
                .members
                .values()
                .filter(|m| m.outbox.is_suspended())
                .count();
            c.tracks += e.tracks.len();
            c.mls_log_entries += entries;
            c.mls_log_bytes += bytes;
            c.mls_key_packages += e.mls.pending_key_packages();
            c
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(super) mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod caps_tests;
