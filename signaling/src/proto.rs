//! The WebSocket wire protocol, version [`PROTOCOL_VERSION`].
//!
//! Every WebSocket text frame holds one JSON object tagged by `"type"`.
//! `docs/protocol.md` describes each message and the order they may come in.
//! These types are the only definition of the protocol: the server, the
//! client SDK and the load tester all use them.
//!
//! Each participant has two WebRTC transports (the LiveKit-style split): on the
//! **publisher** transport the client always makes the offer, and on the
//! **subscriber** transport the server always makes the offer. Neither side
//! can then offer at the same time as the other, so there is no glare.
//!
//! ```
//! use signaling::proto::{ClientMessage, ServerMessage};
//! let join: ClientMessage =
//!     serde_json::from_str(r#"{"type":"join","protocol":1,"token":"t"}"#).unwrap();
//! assert!(matches!(join, ClientMessage::Join { protocol: 1, .. }));
//! let pong = serde_json::to_string(&ServerMessage::Pong { ts: 7 }).unwrap();
//! assert_eq!(pong, r#"{"type":"pong","ts":7}"#);
//! ```

use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. A `join` with another version is
/// refused with [`ErrorCode::ProtocolVersion`].
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest text frame the server accepts, in bytes. SDP offers for a
/// handful of tracks are a few kilobytes; this leaves ample room.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Which of a participant's two WebRTC transports a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Client → SFU media. The client offers.
    Publisher,
    /// SFU → client media. The server offers.
    Subscriber,
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// An audio track.
    Audio,
    /// A video track.
    Video,
}

/// What a client declares when it publishes a track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrackPublish {
    /// The client's own name for the track, unique among its tracks.
    pub cid: String,
    /// The `a=mid` of the m-line carrying it in the publisher offer.
    pub mid: String,
    /// Audio or video.
    pub kind: TrackKind,
    /// Codec MIME subtype, e.g. `opus`, `VP8`.
    pub codec: String,
    /// Simulcast layer rids, highest quality first; empty without simulcast.
    #[serde(default)]
    pub simulcast: Vec<String>,
    /// Whether the payload is SFrame ciphertext.
    #[serde(default)]
    pub e2ee: bool,
}

impl TrackPublish {
    /// A track description with no simulcast and no E2EE.
    pub fn new(cid: &str, mid: &str, kind: TrackKind, codec: &str) -> Self {
        Self {
            cid: cid.into(),
            mid: mid.into(),
            kind,
            codec: codec.into(),
            simulcast: Vec::new(),
            e2ee: false,
        }
    }
}

/// A published track as other participants see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrackInfo {
    /// Server-assigned id, unique in the server.
    pub track_id: String,
    /// The publisher's participant id.
    pub participant_id: String,
    /// Audio or video.
    pub kind: TrackKind,
    /// Codec MIME subtype.
    pub codec: String,
    /// Simulcast layer rids.
    pub simulcast: Vec<String>,
    /// Whether the payload is SFrame ciphertext.
    pub e2ee: bool,
}

/// A participant as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ParticipantInfo {
    /// Server-assigned id, unique in the server.
    pub participant_id: String,
    /// The identity from the access token.
    pub identity: String,
    /// Display name from the access token.
    pub name: String,
    /// Tracks it has published.
    pub tracks: Vec<TrackInfo>,
}

/// A room as a joining participant first sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RoomState {
    /// The room name from the token.
    pub room: String,
    /// Everyone else already in the room.
    pub participants: Vec<ParticipantInfo>,
}

/// One trickled ICE candidate, as in `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    /// The `candidate:` attribute line, without `a=`.
    pub candidate: String,
    /// Media id it belongs to, if any.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// m-line index it belongs to, if any.
    #[serde(default)]
    pub sdp_m_line_index: Option<u16>,
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// It sent `leave`.
    Left,
    /// Its WebSocket closed or it stopped answering pings.
    Disconnected,
    /// Its media transport timed out.
    MediaTimeout,
    /// An admin removed it.
    Removed,
    /// The room was closed.
    RoomClosed,
    /// The same identity joined the room again.
    Replaced,
}

/// Messages a client sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientMessage {
    /// First message on a connection.
    Join {
        /// Must equal [`PROTOCOL_VERSION`].
        protocol: u32,
        /// A signed access token (see [`crate::token`]).
        token: String,
    },
    /// An SDP offer; only for [`Target::Publisher`].
    Offer {
        /// The transport.
        target: Target,
        /// The session description.
        sdp: String,
    },
    /// An SDP answer; only for [`Target::Subscriber`].
    Answer {
        /// The transport.
        target: Target,
        /// The session description.
        sdp: String,
    },
    /// A trickled ICE candidate.
    Candidate {
        /// The transport.
        target: Target,
        /// The candidate.
        candidate: IceCandidate,
    },
    /// Announce a track before (or together with) the offer that carries it.
    Publish {
        /// The track.
        track: TrackPublish,
    },
    /// Stop publishing a track.
    Unpublish {
        /// The client's `cid` for it.
        cid: String,
    },
    /// Subscribe to a track (auto-subscribe makes this rarely needed).
    Subscribe {
        /// The server's track id.
        track_id: String,
    },
    /// Unsubscribe from a track.
    Unsubscribe {
        /// The server's track id.
        track_id: String,
    },
    /// Leave the room.
    Leave,
    /// Keepalive; the server answers with `pong` carrying the same `ts`.
    Ping {
        /// Opaque to the server.
        ts: u64,
    },
}

/// Messages the server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerMessage {
    /// The join succeeded.
    Joined {
        /// The protocol version in use.
        protocol: u32,
        /// This participant's id.
        participant_id: String,
        /// The room and its other participants.
        room: RoomState,
        /// Whether the server subscribes this participant to every track.
        auto_subscribe: bool,
    },
    /// An SDP offer; only for [`Target::Subscriber`].
    Offer {
        /// The transport.
        target: Target,
        /// The session description.
        sdp: String,
    },
    /// An SDP answer; only for [`Target::Publisher`].
    Answer {
        /// The transport.
        target: Target,
        /// The session description.
        sdp: String,
    },
    /// A trickled ICE candidate from the server.
    Candidate {
        /// The transport.
        target: Target,
        /// The candidate.
        candidate: IceCandidate,
    },
    /// A published track was accepted.
    TrackAccepted {
        /// The client's `cid`.
        cid: String,
        /// The server's id for it.
        track: TrackInfo,
    },
    /// Another participant joined.
    ParticipantJoined {
        /// Who.
        participant: ParticipantInfo,
    },
    /// A participant left.
    ParticipantLeft {
        /// Who.
        participant_id: String,
        /// Why.
        reason: LeaveReason,
    },
    /// A track was published in the room.
    TrackPublished {
        /// The track.
        track: TrackInfo,
    },
    /// A track was unpublished.
    TrackUnpublished {
        /// Its publisher.
        participant_id: String,
        /// Its id.
        track_id: String,
    },
    /// A track now arrives on the subscriber transport at `mid`.
    Subscribed {
        /// The track.
        track_id: String,
        /// The subscriber-side m-line.
        mid: String,
    },
    /// A track no longer arrives on the subscriber transport.
    Unsubscribed {
        /// The track.
        track_id: String,
    },
    /// Answer to `ping`.
    Pong {
        /// The `ts` from the ping.
        ts: u64,
    },
    /// The server ended this participant's session. The socket closes next.
    Closed {
        /// Why.
        reason: LeaveReason,
    },
    /// A request failed.
    Error {
        /// Machine-readable class.
        code: ErrorCode,
        /// Human-readable detail; never contains secrets.
        message: String,
    },
}

/// Error classes the server reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not valid JSON, or not a known message.
    BadMessage,
    /// The frame is larger than [`MAX_MESSAGE_BYTES`].
    TooLarge,
    /// The message is not allowed in this state (e.g. an offer before join).
    OutOfOrder,
    /// The token is missing, forged, expired or for another room.
    Unauthorized,
    /// The token lacks the grant this needs.
    Forbidden,
    /// The client speaks another protocol version.
    ProtocolVersion,
    /// Too many messages; the connection is closed if it goes on.
    RateLimited,
    /// The referenced track or participant does not exist.
    NotFound,
    /// The media plane refused the request (e.g. an unusable SDP).
    Media,
    /// The server is shutting down or a limit was reached.
    Unavailable,
}

impl ServerMessage {
    /// An error message.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }
}
