//! The boundary between signaling and the media plane.
//!
//! Signaling owns who is in which room. The media plane owns transports,
//! tracks and forwarding. Signaling sends sfu-core's [`MediaCommand`]s
//! through a [`MediaSink`]; the media plane answers each participant with
//! [`MediaEvent`]s on the channel given with its join. Both sides only
//! enqueue, so neither blocks the other.
//!
//! The commands and events are defined once, in sfu-core, without an async
//! runtime; the only thing added here is the per-participant tokio channel,
//! which the media plane itself never sees (the shell around it does).

use crate::proto;
use sfu_core::{MediaCommand, MediaEvent, Target, TrackKind};
use tokio::sync::mpsc;

/// Per-participant event queue depth. A participant whose queue is full is
/// too slow to keep up and is disconnected by the media plane.
pub const EVENT_QUEUE: usize = 256;

/// Where the media plane sends one participant's events.
pub type EventSender = mpsc::Sender<MediaEvent>;

/// A command on its way to the media plane.
#[derive(Debug)]
pub struct MediaRequest {
    /// What to do.
    pub command: MediaCommand,
    /// With a [`MediaCommand::Join`]: where the participant's events go from
    /// then on. `None` with every other command.
    pub events: Option<EventSender>,
}

impl MediaRequest {
    /// A join, with the participant's event channel.
    pub fn join(command: MediaCommand, events: EventSender) -> Self {
        Self {
            command,
            events: Some(events),
        }
    }
}

impl From<MediaCommand> for MediaRequest {
    fn from(command: MediaCommand) -> Self {
        Self {
            command,
            events: None,
        }
    }
}

/// The media plane as signaling sees it.
pub trait MediaSink: Send + Sync + 'static {
    /// Enqueues a request. Returns `false` if the media plane is gone or
    /// overloaded; signaling then reports [`proto::ErrorCode::Unavailable`].
    fn command(&self, request: MediaRequest) -> bool;

    /// Does the costly, stateless part of a command before it is queued:
    /// checks and parses the client SDP it carries
    /// ([`MediaCommand::prepare`]). Signaling calls it outside any lock,
    /// on the task that received the message, so a media thread never
    /// parses a client's SDP. The default leaves the command as it is (the
    /// media plane then parses it itself).
    fn prepare(&self, command: &mut MediaCommand) {
        let _ = command;
    }
}

impl From<proto::Target> for Target {
    fn from(t: proto::Target) -> Self {
        match t {
            proto::Target::Publisher => Self::Publisher,
            proto::Target::Subscriber => Self::Subscriber,
        }
    }
}

impl From<proto::TrackKind> for TrackKind {
    fn from(k: proto::TrackKind) -> Self {
        match k {
            proto::TrackKind::Audio => Self::Audio,
            proto::TrackKind::Video => Self::Video,
        }
    }
}

/// The publish command for `track`, published by `participant` under the
/// server's `track_id`.
pub(crate) fn publish(
    participant: &str,
    track_id: &str,
    track: proto::TrackPublish,
) -> MediaCommand {
    MediaCommand::Publish {
        participant: participant.to_string(),
        track_id: track_id.to_string(),
        mid: track.mid,
        kind: track.kind.into(),
        simulcast: track.simulcast,
        layer_sizes: track
            .layers
            .iter()
            .map(|l| sfu_core::LayerSize {
                width: l.width,
                height: l.height,
            })
            .collect(),
    }
}

/// The candidate command for a candidate trickled by `participant`.
pub(crate) fn candidate(
    participant: &str,
    target: proto::Target,
    candidate: proto::IceCandidate,
) -> MediaCommand {
    MediaCommand::Candidate {
        participant: participant.to_string(),
        target: target.into(),
        candidate: candidate.candidate,
    }
}
