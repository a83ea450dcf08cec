//! Matching media on the subscriber transport to the tracks it carries.
//!
//! Two things must meet: the server's `subscribed{track_id, mid}` and the
//! first packet of the remote track on that mid. They come over different
//! paths (WebSocket and UDP) in either order; whichever is second completes
//! the [`RemoteTrack`]. Packets that arrive before the mapping wait in the
//! inbound track's queue.

use crate::peer::InboundTrack;
use crate::track::{RemoteTrack, RemoteTrackInfo};
use signaling::proto::{RoomState, TrackInfo};
use std::collections::HashMap;
use tracing::warn;

#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    /// Every track announced in the room, by track id.
    directory: HashMap<String, TrackInfo>,
    /// `subscribed` messages whose media has not arrived yet: mid → track id.
    announced: HashMap<String, String>,
    /// Media that arrived before its `subscribed` message, by mid.
    arrived: HashMap<String, InboundTrack>,
}

impl Subscriptions {
    /// Starts from the room as it was at join time.
    pub(super) fn new(room: &RoomState) -> Self {
        let mut subs = Self::default();
        for participant in &room.participants {
            for track in &participant.tracks {
                subs.learn(track);
            }
        }
        subs
    }

    /// Records a published track.
    pub(super) fn learn(&mut self, track: &TrackInfo) {
        self.directory.insert(track.track_id.clone(), track.clone());
    }

    /// Forgets an unpublished track.
    pub(super) fn forget(&mut self, track_id: &str) {
        self.directory.remove(track_id);
        self.announced.retain(|_, id| id != track_id);
    }

    /// Forgets every track of a participant who left.
    pub(super) fn forget_participant(&mut self, participant_id: &str) {
        let gone: Vec<String> = self
            .directory
            .values()
            .filter(|t| t.participant_id == participant_id)
            .map(|t| t.track_id.clone())
            .collect();
        for track_id in gone {
            self.forget(&track_id);
        }
    }

    /// The server says `track_id` arrives at `mid`.
    pub(super) fn subscribed(&mut self, track_id: String, mid: String) -> Option<RemoteTrack> {
        match self.arrived.remove(&mid) {
            Some(inbound) => Some(self.pair(&track_id, inbound)),
            None => {
                self.announced.insert(mid, track_id);
                None
            }
        }
    }

    /// The server stopped sending `track_id`.
    pub(super) fn unsubscribed(&mut self, track_id: &str) {
        let mids: Vec<String> = self
            .announced
            .iter()
            .filter(|(_, id)| *id == track_id)
            .map(|(mid, _)| mid.clone())
            .collect();
        for mid in mids {
            self.announced.remove(&mid);
            self.arrived.remove(&mid);
        }
    }

    /// Media started arriving on a subscriber m-line.
    pub(super) fn arrived(&mut self, inbound: InboundTrack) -> Option<RemoteTrack> {
        match self.announced.remove(inbound.mid()) {
            Some(track_id) => Some(self.pair(&track_id, inbound)),
            None => {
                self.arrived.insert(inbound.mid().to_owned(), inbound);
                None
            }
        }
    }

    fn pair(&self, track_id: &str, inbound: InboundTrack) -> RemoteTrack {
        let info = match self.directory.get(track_id) {
            Some(track) => RemoteTrackInfo {
                track_id: track.track_id.clone(),
                participant_id: track.participant_id.clone(),
                kind: track.kind,
                codec: track.codec.clone(),
                e2ee: track.e2ee,
                mid: inbound.mid().to_owned(),
            },
            None => {
                warn!(%track_id, "subscribed to a track the server never announced");
                RemoteTrackInfo {
                    track_id: track_id.to_owned(),
                    participant_id: String::new(),
                    kind: inbound.kind(),
                    codec: String::new(),
                    e2ee: false,
                    mid: inbound.mid().to_owned(),
                }
            }
        };
        RemoteTrack::new(inbound, info)
    }
}
