//! The boundary between signaling and the media plane.
//!
//! Signaling owns who is in which room. The media plane owns transports,
//! tracks and forwarding. Signaling sends [`MediaCommand`]s; the media plane
//! answers each participant on the channel it was given at join time. Both
//! sides only enqueue, so neither blocks the other.

use crate::proto::{IceCandidate, Target, TrackPublish};
use tokio::sync::mpsc;

/// Per-participant event queue depth. A participant whose queue is full is
/// too slow to keep up and is disconnected by the media plane.
pub const EVENT_QUEUE: usize = 256;

/// What the media plane tells one participant's signaling session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// The answer to a publisher offer.
    PublisherAnswer {
        /// The SDP.
        sdp: String,
    },
    /// A (re)negotiation offer for the subscriber transport.
    SubscriberOffer {
        /// The SDP.
        sdp: String,
    },
    /// A track now arrives at `mid` on the subscriber transport.
    Subscribed {
        /// The track id.
        track_id: String,
        /// The subscriber-side mid.
        mid: String,
    },
    /// A track no longer arrives on the subscriber transport.
    Unsubscribed {
        /// The track id.
        track_id: String,
    },
    /// The participant's media timed out (ICE consent lost or never
    /// connected). Signaling removes the participant.
    Timeout,
    /// A request failed; the participant stays.
    Error {
        /// Safe to show the client.
        message: String,
    },
}

/// What signaling asks of the media plane.
#[derive(Debug)]
#[non_exhaustive]
pub enum MediaCommand {
    /// A participant joined a room.
    Join {
        /// Room name.
        room: String,
        /// Participant id.
        participant_id: String,
        /// Whether it may publish.
        can_publish: bool,
        /// Whether to subscribe it to every track in the room, now and later.
        auto_subscribe: bool,
        /// Where its events go.
        events: mpsc::Sender<MediaEvent>,
    },
    /// A participant left; free everything it had.
    Leave {
        /// Participant id.
        participant_id: String,
    },
    /// A publisher-transport offer.
    PublisherOffer {
        /// Participant id.
        participant_id: String,
        /// The SDP.
        sdp: String,
    },
    /// A subscriber-transport answer.
    SubscriberAnswer {
        /// Participant id.
        participant_id: String,
        /// The SDP.
        sdp: String,
    },
    /// A trickled remote candidate.
    Candidate {
        /// Participant id.
        participant_id: String,
        /// Which transport.
        target: Target,
        /// The candidate.
        candidate: IceCandidate,
    },
    /// A track was published; `track_id` is the server's id for it.
    Publish {
        /// Participant id.
        participant_id: String,
        /// Server-assigned track id.
        track_id: String,
        /// What the client declared.
        track: TrackPublish,
    },
    /// A track was unpublished.
    Unpublish {
        /// Participant id.
        participant_id: String,
        /// Track id.
        track_id: String,
    },
    /// Subscribe a participant to a track.
    Subscribe {
        /// Participant id.
        participant_id: String,
        /// Track id.
        track_id: String,
    },
    /// Unsubscribe a participant from a track.
    Unsubscribe {
        /// Participant id.
        participant_id: String,
        /// Track id.
        track_id: String,
    },
}

/// The media plane as signaling sees it.
pub trait MediaPlane: Send + Sync + 'static {
    /// Enqueues a command. Returns `false` if the media plane is gone or
    /// overloaded; signaling then reports [`crate::proto::ErrorCode::Unavailable`].
    fn command(&self, cmd: MediaCommand) -> bool;
}
