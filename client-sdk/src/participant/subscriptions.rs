//! Matching media on the subscriber transport to the tracks it carries.
//!
//! Two things must meet: the server's `subscribed{track_id, mid}` and the
//! first packet of the remote track on that mid. They come over different
//! paths (WebSocket and UDP) in either order; whichever is second completes
//! the [`RemoteTrack`]. Packets that arrive before the mapping wait in the
//! inbound track's queue.
//!
//! The server may reuse an m-line: `unsubscribed{T1}` (the m-line goes
//! `inactive`), later `subscribed{T2, same mid}` (it goes `sendonly` again)
//! with T2's media on the same SSRC. `webrtc` sees one media stream
//! throughout and announces it once, so the stream's queue is swapped
//! instead: `unsubscribed` ends T1's queue (its [`RemoteTrack`] drains, then
//! ends), and `subscribed` on a mid whose media already flows completes T2's
//! [`RemoteTrack`] at once, with a fresh queue that gets every packet from
//! then on. Packets in between belong to no track: they are dropped and
//! counted, never queued for the next one.

use crate::peer::{InboundTrack, MediaStream};
use crate::track::{RemoteTrack, RemoteTrackInfo};
use signaling::proto::{RoomState, TrackInfo};
use std::collections::HashMap;
use std::sync::Arc;
use tracing::{debug, warn};

/// A subscriber media stream that has been paired with a track.
#[derive(Debug)]
struct Paired {
    stream: Arc<MediaStream>,
    /// The track it carries now; `None` between `unsubscribed` and the next
    /// `subscribed` for its mid.
    track_id: Option<String>,
}

#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    /// Every track announced in the room, by track id.
    directory: HashMap<String, TrackInfo>,
    /// `subscribed` messages whose media has not arrived yet: mid → track id.
    announced: HashMap<String, String>,
    /// Media that arrived before its `subscribed` message, by mid.
    arrived: HashMap<String, InboundTrack>,
    /// Media streams paired with a track at least once, by mid.
    paired: HashMap<String, Paired>,
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

    /// Forgets every track of a participant who left; returns their ids.
    pub(super) fn forget_participant(&mut self, participant_id: &str) -> Vec<String> {
        let gone: Vec<String> = self
            .directory
            .values()
            .filter(|t| t.participant_id == participant_id)
            .map(|t| t.track_id.clone())
            .collect();
        for track_id in &gone {
            self.forget(track_id);
        }
        gone
    }

    /// The server says `track_id` arrives at `mid`.
    pub(super) fn subscribed(&mut self, track_id: String, mid: String) -> Option<RemoteTrack> {
        if let Some(paired) = self.paired.get_mut(&mid) {
            // A reused m-line: its media stream is already flowing.
            if let Some(previous) = paired.track_id.replace(track_id.clone()) {
                warn!(%mid, %previous, %track_id, "m-line reassigned without `unsubscribed`");
            }
            debug!(%mid, %track_id, "m-line reused");
            let inbound = paired.stream.open();
            return Some(self.pair(&track_id, inbound));
        }
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
        for paired in self.paired.values_mut() {
            if paired.track_id.as_deref() == Some(track_id) {
                paired.track_id = None;
                paired.stream.close();
            }
        }
    }

    /// Media started arriving on a subscriber m-line.
    pub(super) fn arrived(&mut self, inbound: InboundTrack) -> Option<RemoteTrack> {
        if let Some(old) = self.paired.remove(inbound.mid()) {
            // `webrtc` started a new stream on a known m-line: it replaces
            // the old one, and takes over the track the m-line carries now.
            old.stream.close();
            if let Some(track_id) = old.track_id {
                return Some(self.pair(&track_id, inbound));
            }
        }
        match self.announced.remove(inbound.mid()) {
            Some(track_id) => Some(self.pair(&track_id, inbound)),
            None => {
                self.arrived.insert(inbound.mid().to_owned(), inbound);
                None
            }
        }
    }

    /// Makes `inbound` the app's track `track_id`, and remembers its stream
    /// for a later reuse of the m-line.
    fn pair(&mut self, track_id: &str, inbound: InboundTrack) -> RemoteTrack {
        self.paired.insert(
            inbound.mid().to_owned(),
            Paired {
                stream: Arc::clone(inbound.stream()),
                track_id: Some(track_id.to_owned()),
            },
        );
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
