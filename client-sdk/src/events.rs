//! What a [`Participant`](crate::transport::Participant) tells the app.

use crate::track::RemoteTrack;
use signaling::proto::{ErrorCode, LeaveReason, ParticipantInfo, Target, TrackInfo};
use tokio::sync::mpsc;
use webrtc::peer_connection::RTCPeerConnectionState;

/// The state of one WebRTC transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Created, nothing negotiated yet.
    New,
    /// ICE or DTLS in progress.
    Connecting,
    /// Media can flow.
    Connected,
    /// Connectivity lost; it may come back.
    Disconnected,
    /// Connectivity lost for good.
    Failed,
    /// Closed locally.
    Closed,
}

impl From<RTCPeerConnectionState> for ConnectionState {
    fn from(state: RTCPeerConnectionState) -> Self {
        match state {
            RTCPeerConnectionState::Connecting => Self::Connecting,
            RTCPeerConnectionState::Connected => Self::Connected,
            RTCPeerConnectionState::Disconnected => Self::Disconnected,
            RTCPeerConnectionState::Failed => Self::Failed,
            RTCPeerConnectionState::Closed => Self::Closed,
            _ => Self::New,
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// [`Participant::leave`](crate::transport::Participant::leave) was called.
    Left,
    /// The server ended the session.
    Server(LeaveReason),
    /// The WebSocket closed, or the server stopped answering pings.
    ConnectionLost,
}

/// Something that happened in the room or to this participant's session.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Another participant joined.
    ParticipantJoined(ParticipantInfo),
    /// A participant left.
    ParticipantLeft {
        /// Who.
        participant_id: String,
        /// Why.
        reason: LeaveReason,
    },
    /// A track was published in the room (possibly by this participant).
    TrackPublished(TrackInfo),
    /// A track was unpublished.
    TrackUnpublished {
        /// Its publisher.
        participant_id: String,
        /// Its id.
        track_id: String,
    },
    /// Another participant muted or unmuted one of its tracks.
    TrackMuted {
        /// Its publisher.
        participant_id: String,
        /// Its id.
        track_id: String,
        /// Muted or not.
        muted: bool,
    },
    /// A remote track's media is arriving. Emitted once the server has said
    /// which subscriber m-line carries the track *and* its first packet has
    /// arrived; packets received before the event are queued in the track.
    ///
    /// When the server reuses an m-line whose media already flowed for an
    /// earlier track, the event comes as soon as the server says so, and the
    /// track gets the packets arriving on that m-line from then on; packets
    /// that arrived while the m-line carried no track are dropped.
    TrackSubscribed(RemoteTrack),
    /// The server stopped sending a track. Its [`RemoteTrack`] ends: `recv`
    /// returns what is still queued, then `None`.
    TrackUnsubscribed {
        /// Its id.
        track_id: String,
    },
    /// A video track this participant receives was paused by the server
    /// (its downlink cannot carry even the lowest layer), or flows again.
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
    /// Dynacast: the simulcast encodings of one of this participant's
    /// tracks that some subscriber wants now; the others need not be sent.
    PublisherLayers {
        /// The track's server id.
        track_id: String,
        /// The wanted encodings' rids, highest quality first.
        active: Vec<String>,
    },
    /// The SFU asked for a keyframe (PLI or FIR) on one of this
    /// participant's published tracks.
    KeyframeRequested {
        /// The track's `cid`.
        cid: String,
    },
    /// A transport changed state.
    ConnectionStateChanged {
        /// Which one.
        target: Target,
        /// Its new state.
        state: ConnectionState,
    },
    /// The server reported an error not tied to a pending request.
    ServerError {
        /// Its class.
        code: ErrorCode,
        /// Its detail.
        message: String,
    },
    /// Applying a server offer or candidate failed; media on that transport
    /// may be affected.
    NegotiationFailed {
        /// Which transport.
        target: Target,
        /// What went wrong.
        error: String,
    },
    /// An entry of the room's MLS delivery log, in log order. The
    /// [`Room`](crate::Room) layer consumes these; a bare participant can
    /// ignore them.
    Mls {
        /// Its sequence number in the room's log.
        seq: u64,
        /// The entry.
        entry: signaling::proto::MlsEntry,
    },
    /// The server refused this participant's MLS commit for `epoch`.
    MlsCommitRejected {
        /// The epoch the refused commit was made in.
        epoch: u64,
    },
    /// The signaling connection is being re-established.
    Reconnecting,
    /// The signaling connection was re-established and the session resumed;
    /// missed log entries follow as [`Event::Mls`]. `log_gap` is `true` if
    /// the server no longer held all of them.
    Resumed {
        /// Whether entries were lost for good.
        log_gap: bool,
    },
    /// The session is over. This is the last event.
    Closed(CloseReason),
}

/// The receiving end of a participant's events.
///
/// Control events are few, so the queue is unbounded: a slow reader delays
/// nothing else. Media never goes through it (see [`RemoteTrack`]).
#[derive(Debug)]
pub struct Events {
    rx: mpsc::UnboundedReceiver<Event>,
}

impl Events {
    pub(crate) fn new(rx: mpsc::UnboundedReceiver<Event>) -> Self {
        Self { rx }
    }

    /// The next event. After [`Event::Closed`] nothing more comes, and
    /// `None` is returned once the [`Participant`](crate::transport::Participant) has
    /// been dropped.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}
