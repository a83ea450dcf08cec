//! What a [`Room`](super::Room) tells the app.

use super::media::RemoteMedia;
use crate::events::{CloseReason, ConnectionState};
use signaling::proto::{LeaveReason, ParticipantInfo, Target};
use tokio::sync::mpsc;

/// A member of the MLS group: who holds the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RosterMember {
    /// Its leaf index in the group (the sender index in SFrame KIDs).
    pub leaf: u32,
    /// The identity its credential names.
    pub identity: String,
    /// The public signature key its credential is bound to.
    pub signature_key: Vec<u8>,
}

impl From<e2ee::group::Member> for RosterMember {
    fn from(m: e2ee::group::Member) -> Self {
        Self {
            leaf: m.leaf,
            identity: m.identity,
            signature_key: m.signature_key,
        }
    }
}

/// Frames dropped instead of being passed to the app, by reason; running
/// totals for this room handle. The same counts the browser SDK reports.
pub use client_core::FailureCounts as DecryptFailures;

/// The signaling connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignalingState {
    /// Lost; reconnecting with resume.
    Reconnecting,
    /// Reconnected; the group state caught up from the delivery log.
    Resumed,
    /// Reconnected, but the log could not cover the gap: the group state was
    /// dropped and this member asked to be added again (decryption resumes
    /// with the next epoch).
    RejoinedGroup,
    /// The server no longer held the session: this member joined the room
    /// again as a new participant (new participant id, new MLS leaf), and
    /// published its tracks again. Decryption resumes once it is added.
    Rejoined,
}

/// Something that happened in the room.
#[derive(Debug)]
#[non_exhaustive]
pub enum RoomEvent {
    /// Another participant joined (signaling roster).
    ParticipantJoined(ParticipantInfo),
    /// A participant left (signaling roster).
    ParticipantLeft {
        /// Who.
        participant_id: String,
        /// Why.
        reason: LeaveReason,
    },
    /// A remote track's decrypted frames are arriving.
    TrackSubscribed(RemoteMedia),
    /// A remote track ended.
    TrackUnsubscribed {
        /// Its id.
        track_id: String,
    },
    /// The MLS group's members changed (every epoch).
    RosterChanged(Vec<RosterMember>),
    /// A new E2EE epoch: new keys are in use for sending and receiving.
    EpochChanged {
        /// The MLS epoch.
        epoch: u64,
    },
    /// The verification code changed (every epoch). Members who see the
    /// same code are in the same group with the same members.
    VerificationCodeChanged(String),
    /// The MLS roster and the server's roster disagree beyond a change in
    /// progress: possibly a ghost, or a withheld commit.
    RosterMismatch {
        /// In the MLS group but not announced by the server.
        mls_only: Vec<String>,
        /// Announced by the server but not in the MLS group.
        signaling_only: Vec<String>,
    },
    /// Frames were dropped; the running totals by reason.
    DecryptFailures(DecryptFailures),
    /// Send a keyframe on this local track: the SFU asked for one, or a new
    /// epoch began (RFC 9605 §6.2).
    KeyframeNeeded {
        /// The track's `cid`.
        cid: String,
    },
    /// Dynacast: which simulcast encodings of a local track some
    /// subscriber wants now (see [`MediaSender::encoding_active`](super::MediaSender::encoding_active),
    /// which says the same).
    PublisherLayers {
        /// The track's `cid`.
        cid: String,
        /// Per encoding, lowest quality first: wanted or not.
        active: Vec<bool>,
    },
    /// A remote video track was paused by the server because this
    /// member's downlink cannot carry even its lowest layer (show an avatar
    /// rather than a frozen frame), or flows again.
    TrackPaused {
        /// Its id.
        track_id: String,
        /// Paused, or resumed.
        paused: bool,
    },
    /// The room's dominant speaker changed; `None` when nobody speaks.
    ActiveSpeaker {
        /// The speaker's participant id.
        participant_id: Option<String>,
    },
    /// An end-to-end encrypted chat message, in the room's order (own
    /// messages included, at their place in that order).
    Chat {
        /// The sender's MLS identity.
        from: String,
        /// The text.
        text: String,
    },
    /// A media transport changed state.
    ConnectionStateChanged {
        /// Which one.
        target: Target,
        /// Its new state.
        state: ConnectionState,
    },
    /// The signaling connection dropped or came back.
    Signaling(SignalingState),
    /// The session is over. This is the last event.
    Closed(CloseReason),
}

/// The receiving end of a room's events.
#[derive(Debug)]
pub struct RoomEvents {
    rx: mpsc::UnboundedReceiver<RoomEvent>,
}

impl RoomEvents {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<RoomEvent>) -> Self {
        Self { rx }
    }

    /// The next event; `None` once the room is gone.
    pub async fn recv(&mut self) -> Option<RoomEvent> {
        self.rx.recv().await
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<RoomEvent> {
        self.rx.try_recv().ok()
    }
}
