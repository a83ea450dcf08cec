//! Signaling's way into the media shards: which shard each room lives on,
//! and each command sent to the shard that holds its participant.
//!
//! A room lives on one shard, so every packet of a room arrives on, and is
//! forwarded from, that shard's own socket: no lock and no queue between
//! shards per packet. The table here is only touched by signaling commands
//! (joins, offers, leaves), never per packet.
//!
//! Ownership (see "Who owns what" in `docs/architecture.md`): this table is
//! the truth for which shard a room is on, and nothing else. Who is in a
//! room is signaling's to know; the participant entries here are an index
//! built from the joins and leaves that pass through, kept only to find a
//! participant's shard and to count a room's members until it can be
//! forgotten.

use sfu_core::{MediaCommand, SdpLimits};
use signaling::media::{MediaRequest, MediaSink};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::mpsc;

/// Where rooms live, and how loaded each shard is. No IO: [`ShardPlacement`]
/// sends, this only decides and remembers. Participant entries and counts
/// are an index of the joins and leaves routed, not membership.
#[derive(Debug)]
struct PlacementTable {
    /// Room name → (shard, participants in it).
    rooms: HashMap<String, (usize, usize)>,
    /// Participant id → (shard, room).
    participants: HashMap<String, (usize, String)>,
    /// Participants per shard.
    load: Vec<usize>,
}

impl PlacementTable {
    fn new(shards: usize) -> Self {
        Self {
            rooms: HashMap::new(),
            participants: HashMap::new(),
            load: vec![0; shards.max(1)],
        }
    }

    /// The shard a join into `room` goes to: the room's own if it has one,
    /// else the `usable` shard with the fewest participants (the lowest
    /// index on a tie). `None` if the room is new and no shard is usable.
    fn shard_for_room(&self, room: &str, usable: impl Fn(usize) -> bool) -> Option<usize> {
        if let Some((shard, _)) = self.rooms.get(room) {
            return Some(*shard);
        }
        self.load
            .iter()
            .enumerate()
            .filter(|(i, _)| usable(*i))
            .min_by_key(|(i, load)| (**load, *i))
            .map(|(i, _)| i)
    }

    fn shard_of(&self, participant: &str) -> Option<usize> {
        self.participants.get(participant).map(|(shard, _)| *shard)
    }

    /// Records that `participant` joined `room` on `shard`, replacing any
    /// earlier membership of the same id (as the plane does).
    fn add(&mut self, participant: &str, room: &str, shard: usize) {
        self.remove(participant);
        let entry = self.rooms.entry(room.to_string()).or_insert((shard, 0));
        debug_assert_eq!(entry.0, shard, "a room lives on one shard");
        entry.1 += 1;
        if let Some(load) = self.load.get_mut(shard) {
            *load += 1;
        }
        self.participants
            .insert(participant.to_string(), (shard, room.to_string()));
    }

    /// Forgets `participant`, and its room once empty, so that a later room
    /// of the same name is placed anew. Returns the shard it was on.
    fn remove(&mut self, participant: &str) -> Option<usize> {
        let (shard, room) = self.participants.remove(participant)?;
        if let Some(load) = self.load.get_mut(shard) {
            *load = load.saturating_sub(1);
        }
        if let Some((_, members)) = self.rooms.get_mut(&room) {
            *members = members.saturating_sub(1);
            if *members == 0 {
                self.rooms.remove(&room);
            }
        }
        Some(shard)
    }
}

/// Places rooms on media shards and routes signaling's commands to them
/// (see the module docs).
///
/// A command for a participant placement does not know goes nowhere and
/// counts as accepted. Signaling only sends commands for members it joined
/// and never after their `Leave` (both under the room's lock), so an unknown
/// id is not overload; answering `false` would make signaling tell the
/// client the media plane is unavailable, which is untrue. One shard does
/// the same with a command for a participant it no longer has, e.g. after
/// timing it out.
pub(crate) struct ShardPlacement {
    shards: Vec<mpsc::Sender<MediaRequest>>,
    /// Held across the `try_send`, so a placement and the command it
    /// routes are one step for every other command.
    placement: Mutex<PlacementTable>,
    /// What [`MediaSink::prepare`] holds clients' SDP to; the shards' planes
    /// have the same.
    sdp: SdpLimits,
}

impl ShardPlacement {
    /// A placement over the shards' command queues, shard i at index i.
    pub(crate) fn new(shards: Vec<mpsc::Sender<MediaRequest>>, sdp: SdpLimits) -> Self {
        let placement = Mutex::new(PlacementTable::new(shards.len()));
        Self {
            shards,
            placement,
            sdp,
        }
    }

    fn send(&self, shard: usize, request: MediaRequest) -> bool {
        self.shards
            .get(shard)
            .is_some_and(|tx| tx.try_send(request).is_ok())
    }
}

impl MediaSink for ShardPlacement {
    fn prepare(&self, command: &mut MediaCommand) {
        command.prepare(&self.sdp);
    }

    fn command(&self, request: MediaRequest) -> bool {
        let participant = request.command.participant().to_string();
        // Nothing in here panics, so a poisoned lock still holds a
        // consistent table.
        let mut placement = self.placement.lock().unwrap_or_else(|p| p.into_inner());
        match request.command {
            MediaCommand::Join { ref room, .. } => {
                let room = room.clone();
                // A shard whose thread has ended takes no new rooms; its
                // rooms' media went with it.
                let usable = |i: usize| self.shards.get(i).is_some_and(|tx| !tx.is_closed());
                let Some(shard) = placement.shard_for_room(&room, usable) else {
                    return false;
                };
                let previous = placement.shard_of(&participant);
                // Record only once the shard took the join: a refused join
                // leaves the table as it was.
                if !self.send(shard, request) {
                    return false;
                }
                placement.add(&participant, &room, shard);
                tracing::debug!(%participant, %room, shard, "participant placed");
                // The same id joining again replaces the earlier session; a
                // shard does that by itself, but another shard must be told
                // to let go of it.
                if let Some(old) = previous.filter(|old| *old != shard) {
                    let leave = MediaCommand::Leave {
                        participant: participant.clone(),
                    };
                    if !self.send(old, leave.into()) {
                        tracing::warn!(%participant, shard = old, "shard refused leave of a rejoined participant");
                    }
                }
                true
            }
            MediaCommand::Leave { .. } => match placement.remove(&participant) {
                Some(shard) => self.send(shard, request),
                None => true,
            },
            MediaCommand::PublisherOffer { .. }
            | MediaCommand::SubscriberAnswer { .. }
            | MediaCommand::Candidate { .. }
            | MediaCommand::Publish { .. }
            | MediaCommand::Unpublish { .. }
            | MediaCommand::Subscribe { .. }
            | MediaCommand::Unsubscribe { .. }
            | MediaCommand::TrackSettings { .. } => match placement.shard_of(&participant) {
                Some(shard) => self.send(shard, request),
                None => {
                    tracing::debug!(%participant, "media command for an unknown participant; dropped");
                    true
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::error::TryRecvError;

    /// A placement over `n` shards with queues of `depth`, and the shards' ends.
    fn placement(n: usize, depth: usize) -> (ShardPlacement, Vec<mpsc::Receiver<MediaRequest>>) {
        let (txs, rxs) = (0..n).map(|_| mpsc::channel(depth)).unzip();
        (ShardPlacement::new(txs, SdpLimits::default()), rxs)
    }

    fn join(room: &str, pid: &str) -> MediaRequest {
        let (events, _) = mpsc::channel(1);
        let join = MediaCommand::Join {
            participant: pid.into(),
            room: room.into(),
            can_publish: true,
            auto_subscribe: true,
        };
        MediaRequest::join(join, events)
    }

    fn leave(pid: &str) -> MediaRequest {
        MediaCommand::Leave {
            participant: pid.into(),
        }
        .into()
    }

    fn offer(pid: &str) -> MediaRequest {
        MediaCommand::PublisherOffer {
            participant: pid.into(),
            sdp: "v=0".into(),
        }
        .into()
    }

    /// Drains every shard: per shard, (kind, participant) in order.
    fn drain(rxs: &mut [mpsc::Receiver<MediaRequest>]) -> Vec<Vec<(&'static str, String)>> {
        rxs.iter_mut()
            .map(|rx| {
                let mut got = Vec::new();
                while let Ok(MediaRequest { command: cmd, .. }) = rx.try_recv() {
                    let kind = match &cmd {
                        MediaCommand::Join { .. } => "join",
                        MediaCommand::Leave { .. } => "leave",
                        MediaCommand::PublisherOffer { .. } => "offer",
                        _ => "other",
                    };
                    got.push((kind, cmd.participant().to_string()));
                }
                got
            })
            .collect()
    }

    fn cmds(list: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        list.iter().map(|(k, p)| (*k, p.to_string())).collect()
    }

    #[test]
    fn a_room_lives_on_one_shard_and_new_rooms_go_to_the_least_loaded() {
        let (r, mut rxs) = placement(3, 16);
        assert!(r.command(join("a", "a1")));
        assert!(r.command(join("b", "b1")));
        assert!(r.command(join("a", "a2")));
        assert!(r.command(join("a", "a3")));
        // Loads now 3, 1, 0: c takes shard 2, d the least loaded of 1 and 2
        // once c has one (a tie goes to the lower index).
        assert!(r.command(join("c", "c1")));
        assert!(r.command(join("d", "d1")));
        assert!(r.command(offer("a2")));
        assert!(r.command(offer("d1")));
        assert_eq!(
            drain(&mut rxs),
            vec![
                cmds(&[
                    ("join", "a1"),
                    ("join", "a2"),
                    ("join", "a3"),
                    ("offer", "a2")
                ]),
                cmds(&[("join", "b1"), ("join", "d1"), ("offer", "d1")]),
                cmds(&[("join", "c1")]),
            ]
        );
    }

    #[test]
    fn an_empty_room_is_forgotten_and_placed_anew() {
        let (r, mut rxs) = placement(2, 16);
        assert!(r.command(join("big", "x1")));
        assert!(r.command(join("big", "x2")));
        assert!(r.command(join("small", "s1")));
        assert!(r.command(leave("s1")));
        assert!(r.command(leave("x1")));
        assert!(r.command(leave("x2")));
        // Both shards are empty again: "small" now starts on shard 0, and
        // "big" on the less loaded shard 1.
        assert!(r.command(join("small", "s2")));
        assert!(r.command(join("big", "x3")));
        assert_eq!(
            drain(&mut rxs),
            vec![
                cmds(&[
                    ("join", "x1"),
                    ("join", "x2"),
                    ("leave", "x1"),
                    ("leave", "x2"),
                    ("join", "s2"),
                ]),
                cmds(&[("join", "s1"), ("leave", "s1"), ("join", "x3")]),
            ]
        );
        let p = r.placement.lock().expect("lock");
        assert_eq!(p.load, vec![1, 1]);
        assert_eq!(p.rooms.len(), 2);
    }

    #[test]
    fn commands_for_unknown_participants_go_nowhere_and_are_accepted() {
        let (r, mut rxs) = placement(2, 16);
        assert!(r.command(offer("ghost")));
        assert!(r.command(leave("ghost")));
        assert!(r.command(join("a", "p")));
        assert!(r.command(leave("p")));
        // After its leave, p is unknown too.
        assert!(r.command(offer("p")));
        assert!(r.command(leave("p")));
        assert_eq!(
            drain(&mut rxs),
            vec![cmds(&[("join", "p"), ("leave", "p")]), vec![]]
        );
    }

    #[test]
    fn a_refused_join_changes_nothing() {
        let (r, mut rxs) = placement(2, 1);
        assert!(r.command(join("a", "a1")));
        assert!(r.command(join("b", "b1")));
        // Both queues are full now; room c would go to shard 0 (a tie).
        assert!(!r.command(join("c", "c1")), "shard 0 is full");
        {
            let p = r.placement.lock().expect("lock");
            assert_eq!(p.load, vec![1, 1]);
            assert!(!p.rooms.contains_key("c"));
            assert!(p.shard_of("c1").is_none());
        }
        assert!(r.command(offer("c1")), "unknown: dropped");
        assert_eq!(
            drain(&mut rxs),
            vec![cmds(&[("join", "a1")]), cmds(&[("join", "b1")])]
        );
        // With room again, the retry is placed as if the refusal never was.
        assert!(r.command(join("c", "c1")));
        assert_eq!(drain(&mut rxs), vec![cmds(&[("join", "c1")]), vec![]]);
    }

    #[test]
    fn a_refused_command_reports_false() {
        let (r, mut rxs) = placement(1, 1);
        assert!(r.command(join("a", "p")));
        assert!(!r.command(offer("p")), "queue full");
        assert_eq!(drain(&mut rxs), vec![cmds(&[("join", "p")])]);
        assert!(r.command(offer("p")));
        drop(rxs);
        assert!(!r.command(offer("p")), "shard gone");
    }

    #[test]
    fn rejoining_with_the_same_id_moves_the_participant() {
        let (r, mut rxs) = placement(2, 16);
        assert!(r.command(join("a", "p")));
        assert!(r.command(join("b", "q")));
        // Same room again: the shard replaces it itself; counted once.
        assert!(r.command(join("a", "p")));
        {
            let p = r.placement.lock().expect("lock");
            assert_eq!(p.load, vec![1, 1]);
            assert_eq!(p.rooms.get("a"), Some(&(0, 1)));
        }
        // Into room b on the other shard: shard 0 is told to let go, and
        // room a, now empty, is forgotten.
        assert!(r.command(join("b", "p")));
        assert!(r.command(offer("p")));
        assert_eq!(
            drain(&mut rxs),
            vec![
                cmds(&[("join", "p"), ("join", "p"), ("leave", "p")]),
                cmds(&[("join", "q"), ("join", "p"), ("offer", "p")]),
            ]
        );
        let p = r.placement.lock().expect("lock");
        assert_eq!(p.load, vec![0, 2]);
        assert!(!p.rooms.contains_key("a"));
        assert_eq!(p.rooms.get("b"), Some(&(1, 2)));
    }

    #[test]
    fn new_rooms_avoid_a_shard_that_has_stopped() {
        let (r, mut rxs) = placement(2, 16);
        assert!(r.command(join("a", "a1")));
        let stopped = rxs.remove(0);
        drop(stopped);
        // b goes to the less loaded shard 1; c, on a tie that shard 0 would
        // win, goes there too, as shard 0 is gone. Room a stays where its
        // media was, and cannot take joins.
        assert!(r.command(join("b", "b1")));
        assert!(r.command(join("c", "c1")));
        assert!(!r.command(join("a", "a2")), "room a's shard is gone");
        assert_eq!(
            drain(&mut rxs),
            vec![cmds(&[("join", "b1"), ("join", "c1")])]
        );
        drop(rxs);
        assert!(!r.command(join("d", "d1")), "no shard left");
    }

    #[test]
    fn one_shard_takes_everything() {
        let (r, mut rxs) = placement(1, 16);
        for i in 0..5 {
            assert!(r.command(join(&format!("room{i}"), &format!("p{i}"))));
        }
        assert_eq!(drain(&mut rxs)[0].len(), 5);
        assert!(matches!(rxs[0].try_recv(), Err(TryRecvError::Empty)));
    }
}
