//! The room registry: who is in which room, with which tracks.
//!
//! Each room sits behind one `DashMap` shard lock. Every change to a room —
//! and the media command and broadcasts that go with it — happens under that
//! lock, so all members and the media plane see one order of events per
//! room, and a participant is removed (one `MediaCommand::Leave`, one
//! `participant_left`) exactly once whichever path removes it first. Nothing
//! under the lock waits: media commands and outboxes only enqueue.

use super::ids;
use super::metrics::Metrics;
use super::outbox::{Delivery, Kick, Outbox};
use crate::media::{MediaCommand, MediaEvent, MediaPlane};
use crate::proto::{
    LeaveReason, ParticipantInfo, RoomState, ServerMessage, TrackInfo, TrackPublish,
};
use crate::token::Grants;
use dashmap::DashMap;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One row of the admin room list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct RoomSummary {
    pub(crate) name: String,
    pub(crate) participants: usize,
    pub(crate) tracks: usize,
}

#[derive(Debug)]
struct Member {
    info: ParticipantInfo,
    /// Client cid → server track id.
    cids: HashMap<String, String>,
    outbox: Outbox,
}

#[derive(Debug, Default)]
struct Room {
    members: HashMap<String, Member>,
    /// Identity → participant id.
    by_identity: HashMap<String, String>,
    /// Track id → publisher participant id.
    tracks: HashMap<String, String>,
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
    pub(crate) events: mpsc::Sender<MediaEvent>,
}

/// A successful join.
#[derive(Debug)]
pub(crate) struct Joined {
    pub(crate) participant_id: String,
    pub(crate) room: RoomState,
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
}

/// The registry.
pub(crate) struct Rooms {
    map: DashMap<String, Room>,
    media: Arc<dyn MediaPlane>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Rooms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rooms")
            .field("rooms", &self.map.len())
            .finish_non_exhaustive()
    }
}

/// Sends `msg` to every member but `except`.
fn broadcast(metrics: &Metrics, room: &Room, except: Option<&str>, msg: &ServerMessage) {
    for (pid, m) in &room.members {
        if Some(pid.as_str()) == except {
            continue;
        }
        if m.outbox.send(msg.clone()) == Delivery::SlowConsumer {
            metrics.slow_consumer();
            tracing::info!(participant = %pid, "slow consumer: outbound queue full, closing");
        }
    }
}

impl Rooms {
    pub(crate) fn new(media: Arc<dyn MediaPlane>, metrics: Arc<Metrics>) -> Self {
        Self {
            map: DashMap::new(),
            media,
            metrics,
        }
    }

    /// Removes `pid` from `room` (already locked): media leave, broadcast,
    /// count. Returns the member so the caller may kick it.
    fn remove_locked(&self, room: &mut Room, pid: &str, reason: LeaveReason) -> Option<Member> {
        let m = room.members.remove(pid)?;
        if room.by_identity.get(&m.info.identity).map(String::as_str) == Some(pid) {
            room.by_identity.remove(&m.info.identity);
        }
        for t in m.cids.values() {
            room.tracks.remove(t);
        }
        if !self.media.command(MediaCommand::Leave {
            participant_id: pid.to_string(),
        }) {
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
        self.metrics.leave(reason);
        tracing::info!(participant = %pid, ?reason, "participant left");
        Some(m)
    }

    fn drop_if_empty(&self, room: &str) {
        self.map.remove_if(room, |_, r| r.members.is_empty());
    }

    /// Adds a participant, replacing any earlier session of the same
    /// identity, and tells the others and the media plane.
    /// Adds a participant, replacing any earlier session of the same
    /// identity, and tells the others and the media plane.
    pub(crate) fn join(&self, req: JoinRequest) -> Result<Joined, RoomError> {
        let room_name = req.room.clone();
        let result = {
            let mut room = self.map.entry(room_name.clone()).or_default();
            let old = room.by_identity.get(&req.identity).cloned();
            let others = room.members.len() - usize::from(old.is_some());
            if others >= req.max_participants {
                Err(RoomError::RoomFull)
            } else {
                let pid = ids::participant_id();
                let accepted = self.media.command(MediaCommand::Join {
                    room: room_name.clone(),
                    participant_id: pid.clone(),
                    can_publish: req.grants.publish,
                    auto_subscribe: req.auto_subscribe,
                    events: req.events,
                });
                if !accepted {
                    Err(RoomError::MediaUnavailable)
                } else {
                    if let Some(old) = old
                        && let Some(m) = self.remove_locked(&mut room, &old, LeaveReason::Replaced)
                    {
                        m.outbox.kick(Kick::Removed(LeaveReason::Replaced));
                    }
                    let mut participants: Vec<ParticipantInfo> =
                        room.members.values().map(|m| m.info.clone()).collect();
                    participants.sort_by(|a, b| a.participant_id.cmp(&b.participant_id));
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
                    room.by_identity.insert(req.identity, pid.clone());
                    room.members.insert(
                        pid.clone(),
                        Member {
                            info,
                            cids: HashMap::new(),
                            outbox: req.outbox,
                        },
                    );
                    self.metrics.join();
                    Ok(Joined {
                        participant_id: pid,
                        room: RoomState {
                            room: room_name.clone(),
                            participants,
                        },
                    })
                }
            }
        };
        if result.is_err() {
            self.drop_if_empty(&room_name);
        }
        result
    }

    /// The participant's own exit (leave, disconnect, timeout). Returns
    /// whether it was still there; if not, another path removed it.
    pub(crate) fn leave(&self, room: &str, pid: &str, reason: LeaveReason) -> bool {
        let removed = match self.map.get_mut(room) {
            Some(mut r) => self.remove_locked(&mut r, pid, reason).is_some(),
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
            self.remove_locked(&mut r, pid, LeaveReason::Removed)
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
            if !self.media.command(MediaCommand::Leave {
                participant_id: pid.clone(),
            }) {
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
        cmd: MediaCommand,
    ) -> Result<(), RoomError> {
        let r = self.map.get(room).ok_or(RoomError::Gone)?;
        if !r.members.contains_key(pid) {
            return Err(RoomError::Gone);
        }
        if self.media.command(cmd) {
            Ok(())
        } else {
            Err(RoomError::MediaUnavailable)
        }
    }

    /// Registers a track, tells the media plane, and announces it.
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
        };
        let cid = track.cid.clone();
        if !self.media.command(MediaCommand::Publish {
            participant_id: pid.to_string(),
            track_id: info.track_id.clone(),
            track,
        }) {
            return Err(RoomError::MediaUnavailable);
        }
        m.cids.insert(cid, info.track_id.clone());
        m.info.tracks.push(info.clone());
        r.tracks.insert(info.track_id.clone(), pid.to_string());
        broadcast(
            &self.metrics,
            r,
            Some(pid),
            &ServerMessage::TrackPublished {
                track: info.clone(),
            },
        );
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
        if !self.media.command(MediaCommand::Unpublish {
            participant_id: pid.to_string(),
            track_id: track_id.clone(),
        }) {
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
                if self.media.command(cmd) {
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
        let mut v: Vec<ParticipantInfo> = r.members.values().map(|m| m.info.clone()).collect();
        v.sort_by(|a, b| a.participant_id.cmp(&b.participant_id));
        Some(v)
    }

    /// (rooms, participants, tracks).
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        self.map.iter().fold((0, 0, 0), |(r, p, t), e| {
            (r + 1, p + e.members.len(), t + e.tracks.len())
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::proto::TrackKind;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Default)]
    struct Media {
        refuse: AtomicBool,
        leaves: Mutex<Vec<String>>,
    }

    impl MediaPlane for Media {
        fn command(&self, cmd: MediaCommand) -> bool {
            if let MediaCommand::Leave { participant_id } = &cmd {
                self.leaves.lock().unwrap().push(participant_id.clone());
            }
            !self.refuse.load(Ordering::Relaxed)
        }
    }

    fn setup() -> (Rooms, Arc<Media>, Arc<Metrics>) {
        let media = Arc::new(Media::default());
        let metrics = Arc::new(Metrics::default());
        (Rooms::new(media.clone(), metrics.clone()), media, metrics)
    }

    fn req(identity: &str, outbox: Outbox) -> JoinRequest {
        JoinRequest {
            room: "r".into(),
            identity: identity.into(),
            name: identity.into(),
            grants: Grants::default(),
            auto_subscribe: true,
            max_participants: 10,
            outbox,
            events: mpsc::channel(1).0,
        }
    }

    #[tokio::test]
    async fn a_full_outbox_kicks_the_slow_consumer() {
        let (rooms, _, _) = setup();
        let (a_out, _a_rx, _a_kick) = Outbox::new(8);
        let a = rooms.join(req("a", a_out)).unwrap().participant_id;
        let (b_out, _b_rx, b_kick) = Outbox::new(1);
        rooms.join(req("b", b_out)).unwrap();
        // Bob never drains: one event fits, the second overflows.
        for cid in ["1", "2"] {
            let t = TrackPublish::new(cid, cid, TrackKind::Audio, "opus");
            rooms.publish("r", &a, t, 8).unwrap();
        }
        assert_eq!(
            b_kick.kicked().await,
            Kick::Leave(LeaveReason::Disconnected)
        );
    }

    #[test]
    fn every_removal_path_removes_once() {
        let (rooms, media, _) = setup();
        let join = |id: &str| {
            let (o, rx, kick) = Outbox::new(8);
            let pid = rooms.join(req(id, o)).unwrap().participant_id;
            (pid, rx, kick)
        };
        let (a, _a_rx, _) = join("a");
        let (b, mut b_rx, _) = join("b");
        let (c, _c_rx, _) = join("c");

        rooms.remove("r", &a).unwrap();
        assert_eq!(rooms.remove("r", &a), Err(RoomError::NotFound));
        assert!(!rooms.leave("r", &a, LeaveReason::Disconnected));
        assert!(rooms.leave("r", &b, LeaveReason::Left));
        assert!(!rooms.leave("r", &b, LeaveReason::Left));
        assert_eq!(rooms.close("r"), Ok(1));
        assert!(!rooms.leave("r", &c, LeaveReason::Disconnected));
        assert_eq!(rooms.close("r"), Err(RoomError::NoRoom));
        assert_eq!(*media.leaves.lock().unwrap(), vec![a.clone(), b, c]);
        assert_eq!(rooms.counts(), (0, 0, 0));

        // Bob heard of Alice's removal exactly once.
        let mut left = 0;
        while let Ok(m) = b_rx.try_recv() {
            if let ServerMessage::ParticipantLeft { participant_id, .. } = m {
                assert_eq!(participant_id, a);
                left += 1;
            }
        }
        assert_eq!(left, 1);
    }

    #[test]
    fn a_refused_join_leaves_no_trace() {
        let (rooms, media, metrics) = setup();
        media.refuse.store(true, Ordering::Relaxed);
        let (o, _rx, _) = Outbox::new(8);
        assert_eq!(
            rooms.join(req("a", o)).map(|_| ()),
            Err(RoomError::MediaUnavailable)
        );
        assert_eq!(rooms.counts(), (0, 0, 0));
        assert!(rooms.list().is_empty());
        let mut s = String::new();
        metrics.render(Default::default(), &mut s);
        assert!(s.contains("sfu_joins_total 0"));
    }

    #[test]
    fn commands_for_a_removed_participant_are_not_sent() {
        let (rooms, _, _) = setup();
        let (o, _rx, _) = Outbox::new(8);
        let a = rooms.join(req("a", o)).unwrap().participant_id;
        let (o2, _rx2, _) = Outbox::new(8);
        let _keep_room = rooms.join(req("b", o2)).unwrap();
        rooms.remove("r", &a).unwrap();
        let cmd = MediaCommand::PublisherOffer {
            participant_id: a.clone(),
            sdp: String::new(),
        };
        assert_eq!(rooms.command("r", &a, cmd), Err(RoomError::Gone));
        let t = TrackPublish::new("x", "0", TrackKind::Video, "VP8");
        assert_eq!(
            rooms.publish("r", &a, t, 8).map(|_| ()),
            Err(RoomError::Gone)
        );
    }
}
