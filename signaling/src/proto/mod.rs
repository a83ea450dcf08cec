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
//! The server is also the MLS (RFC 9420) delivery service of each room: the
//! `mls_*` messages carry base64 MLS messages that the server orders into a
//! per-room log ([`ServerMessage::Mls`]). It cannot read application
//! messages or Welcomes; it checks KeyPackages, the founder's GroupInfo and
//! every commit (signed `PublicMessage`s) against the group's public state
//! and the room's roster, and refuses what does not fit. A lost
//! connection can be taken back with [`ClientMessage::Join`]'s `resume`.
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
/// handful of tracks are a few kilobytes, but an MLS Welcome carries the
/// group's ratchet tree, which for a few hundred members is tens to
/// hundreds of kilobytes once base64-encoded.
pub const MAX_MESSAGE_BYTES: usize = 512 * 1024;

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
    /// The picture size of each spatial layer, lowest quality first: for
    /// simulcast the encodings of `simulcast` in reverse order, for SVC
    /// its spatial layers. Optional; the SFU uses it to match a layer to
    /// the size a subscriber displays.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerSize>,
}

/// A spatial layer's picture size, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSize {
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
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
            layers: Vec::new(),
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
    /// Whether its publisher muted it (camera off, microphone muted): a
    /// hint for display, said by the publisher, not a property of the media.
    #[serde(default)]
    pub muted: bool,
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

fn visible_default() -> bool {
    true
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
        /// Set to take back a session whose connection was lost, instead of
        /// joining afresh. The answer is then [`ServerMessage::Resumed`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Resume>,
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
    /// Tell the room that a published track is muted, or no longer is.
    Mute {
        /// The client's `cid` for it.
        cid: String,
        /// Muted or not.
        muted: bool,
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
    /// How this client displays a track it is subscribed to: the SFU never
    /// sends it a larger layer than `max_width` × `max_height`, and nothing
    /// while it is not `visible`. Applies to the current subscription only;
    /// a client sends it again after each `subscribed` for the track.
    TrackSettings {
        /// The server's track id.
        track_id: String,
        /// Whether the track is shown at all.
        #[serde(default = "visible_default")]
        visible: bool,
        /// The widest picture displayed, in pixels; absent for no limit.
        #[serde(default)]
        max_width: Option<u16>,
        /// The tallest picture displayed, in pixels; absent for no limit.
        #[serde(default)]
        max_height: Option<u16>,
    },
    /// Leave the room.
    Leave,
    /// Keepalive; the server answers with `pong` carrying the same `ts`.
    Ping {
        /// Opaque to the server.
        ts: u64,
    },
    /// This participant's MLS KeyPackage, so that a member can add it. The
    /// server checks it (it parses, its signatures verify, the group's
    /// ciphersuite, a basic credential naming this participant's identity),
    /// keeps the latest one per participant and appends it to the room's log
    /// as [`MlsEntry::KeyPackage`]; an invalid one gets `error{bad_message}`.
    /// Sent by a participant that is already a member, it reports that the
    /// member lost its group state (it could not process a commit or a
    /// Welcome, or its resume hit a gap): the next commit may then remove
    /// its old leaf and add this KeyPackage.
    MlsKeyPackage {
        /// The serialized `KeyPackage` (MLSMessage), base64.
        key_package: String,
    },
    /// An MLS commit, a signed `PublicMessage`. The server accepts one
    /// commit per epoch: the first for the current epoch, from a current
    /// member, that processes cleanly against the group's public state and
    /// changes exactly the members the room calls for (see
    /// `docs/protocol.md`). It appends it to the log as
    /// [`MlsEntry::Commit`]. A commit for another epoch, or one that does
    /// not match the roster, gets [`ServerMessage::MlsCommitRejected`]; a
    /// malformed or forged one gets `error{bad_message}`.
    MlsCommit {
        /// The epoch the commit was created in; must be the one inside it.
        epoch: u64,
        /// The serialized commit (MLSMessage), base64.
        commit: String,
        /// The Welcome for the participants it adds, base64: required
        /// exactly when it adds someone, and for exactly those KeyPackages.
        #[serde(default)]
        welcome: Option<String>,
        /// Ignored: the server works out whom the commit adds. Kept for
        /// compatibility.
        #[serde(default)]
        added: Vec<String>,
        /// Ignored: the server works out whom the commit removes. Kept for
        /// compatibility.
        #[serde(default)]
        removed: Vec<String>,
    },
    /// The founder's signed GroupInfo of epoch 0, with the ratchet tree
    /// extension, sent right after it created the group. The server checks
    /// it (its group id, epoch 0, the founder alone in the tree under its
    /// own identity, a valid signature) and from then on tracks the group's
    /// public state; until then no commit is accepted. A founder that has
    /// not sent a valid one within the founder timeout is replaced (see
    /// [`MlsEntry::Reset`]). Anything else gets `error{bad_message}`; a
    /// repeat once the group is tracked is ignored.
    MlsGroupInfo {
        /// The serialized GroupInfo (MLSMessage), base64.
        group_info: String,
    },
    /// An MLS application message (end-to-end encrypted chat). Appended to
    /// the log as [`MlsEntry::Application`].
    MlsApplication {
        /// The epoch it was encrypted in (not checked: clients keep past
        /// epochs for a while).
        epoch: u64,
        /// The serialized application message (MLSMessage), base64.
        message: String,
    },
}

/// What a client presents to take back its session (see
/// [`ClientMessage::Join`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// The participant id the session had.
    pub participant_id: String,
    /// The `resume_token` from that session's [`ServerMessage::Joined`].
    pub resume_token: String,
    /// The last MLS log sequence number the client processed (0 = none).
    /// The server replays every entry after it.
    pub mls_seq: u64,
}

/// Where a participant stands in the room's MLS group, as the server sees
/// it. The server only relays MLS messages; it never holds a key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlsInfo {
    /// The group's id, hex: chosen at random by the server for each group
    /// incarnation (a new one after a [`MlsEntry::Reset`]).
    pub group_id: String,
    /// The epoch the next commit must claim.
    pub epoch: u64,
    /// The last log sequence number before this participant joined (or,
    /// in [`ServerMessage::Resumed`], before the resume). It receives every
    /// entry after it.
    pub seq: u64,
    /// Whether this participant must create the group: it is the only
    /// participant in the room (the founder). Always `false` in
    /// [`ServerMessage::Resumed`]; a participant that must found a later
    /// group incarnation learns it from an [`MlsEntry::Reset`].
    pub founder: bool,
}

/// One entry of a room's MLS log. Every member gets every entry, its own
/// included, in one order (see [`ServerMessage::Mls`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MlsEntry {
    /// A participant's KeyPackage: some member should add it.
    KeyPackage {
        /// Whose.
        participant_id: String,
        /// The KeyPackage, base64, as sent.
        key_package: String,
    },
    /// The commit that won its epoch.
    Commit {
        /// The committer.
        participant_id: String,
        /// The epoch it was created in; after it the group is at `epoch + 1`.
        epoch: u64,
        /// The commit, base64, as sent.
        commit: String,
        /// The Welcome for the added participants, base64, as sent. It is
        /// encrypted to them; everyone else ignores it.
        welcome: Option<String>,
        /// Participant ids whose KeyPackages it adds, as the server read
        /// them from the commit.
        added: Vec<String>,
        /// Participant ids whose leaves it removes, as the server read them
        /// from the commit (they may have left the room already).
        removed: Vec<String>,
    },
    /// An application message (chat).
    Application {
        /// The sender.
        participant_id: String,
        /// The epoch the sender declared.
        epoch: u64,
        /// The message, base64, as sent.
        message: String,
    },
    /// A new group incarnation starts at epoch 0: no group member is left
    /// in the room, or the founder did not create the group in time.
    /// `founder` creates it; everyone else sends a KeyPackage.
    Reset {
        /// The new group's id, hex.
        group_id: String,
        /// The participant id that creates the new group.
        founder: String,
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
        /// The room's MLS group as this participant joins it.
        #[serde(default)]
        mls: MlsInfo,
        /// Presented in [`Resume`] to take this session back after its
        /// connection is lost. 128 random bits, hex. Keep it secret.
        #[serde(default)]
        resume_token: String,
    },
    /// The answer to a `join` with a valid `resume`: the session is back.
    /// Next come the missed MLS log entries (as [`ServerMessage::Mls`]), or
    /// `error{mls_gap}` if the log no longer holds them, then the other
    /// messages queued while the connection was away.
    Resumed {
        /// This participant's id (unchanged).
        participant_id: String,
        /// The room and its other participants, now.
        room: RoomState,
        /// The room's MLS group now; `seq` is the last entry replayed.
        mls: MlsInfo,
    },
    /// One MLS log entry. `seq` starts at 1 in each room and has no gaps;
    /// every member receives the entries in the same order.
    Mls {
        /// The entry's sequence number.
        seq: u64,
        /// The entry.
        entry: MlsEntry,
    },
    /// This participant's commit was not accepted: another commit won
    /// `epoch`, `epoch` was not the current one, or the commit does not
    /// change the members the room calls for (then `current_epoch` equals
    /// `epoch`). Process the log up to `current_epoch` and retry if still
    /// needed. It is sent after the log entry that made the commit stale.
    MlsCommitRejected {
        /// The epoch the refused commit claimed.
        epoch: u64,
        /// The epoch the next commit must claim.
        current_epoch: u64,
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
    /// A track's publisher muted or unmuted it.
    TrackMuted {
        /// Its publisher.
        participant_id: String,
        /// Its id.
        track_id: String,
        /// Muted or not.
        muted: bool,
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
    /// A video track this client receives is paused because its
    /// downlink cannot carry even the track's lowest layer (`paused`), or
    /// it flows again. A client shows an avatar rather than a frozen frame.
    TrackPaused {
        /// The track.
        track_id: String,
        /// Paused, or resumed.
        paused: bool,
    },
    /// The room's dominant speaker changed, as the SFU reads it from the
    /// audio level header extension; `None` when nobody speaks.
    ActiveSpeaker {
        /// The speaker.
        participant_id: Option<String>,
    },
    /// Dynacast, to a publisher: the simulcast encodings of its track that
    /// some subscriber wants now, highest quality first. The client may
    /// stop encoding the others until a later `publisher_layers` lists
    /// them again.
    PublisherLayers {
        /// The track.
        track_id: String,
        /// The wanted encodings' rids.
        active: Vec<String>,
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
    /// The token lacks the grant this needs, or an MLS commit or
    /// application message came from a participant that is not a member of
    /// the group.
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
    /// A resume asked for MLS log entries the server no longer holds. The
    /// session is resumed, but the client must rejoin the MLS group.
    MlsGap,
    /// A resume named an unknown or expired session, or a wrong token. The
    /// connection closes; join afresh.
    ResumeFailed,
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

#[cfg(test)]
mod tests;
