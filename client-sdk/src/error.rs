//! Error types, one per operation.

use signaling::proto::ErrorCode;
use std::time::Duration;

/// A failure inside one WebRTC transport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// The `webrtc` stack refused an operation (bad SDP, wrong state, ...).
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    /// A track asked for a codec this peer was not configured with.
    #[error("codec {0} is not configured on this peer")]
    CodecNotConfigured(String),
    /// The transport did not reach the connected state in time.
    #[error("not connected after {0:?}")]
    Timeout(Duration),
    /// The transport is closed.
    #[error("peer connection closed")]
    Closed,
}

/// Something the server said or did that the protocol does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The server answered with an error message.
    #[error("server error {code:?}: {message}")]
    Server {
        /// Its class.
        code: ErrorCode,
        /// Its detail.
        message: String,
    },
    /// The WebSocket upgrade was refused with this HTTP status.
    #[error("websocket upgrade refused with HTTP {0}")]
    Handshake(u16),
    /// A frame was not a valid server message.
    #[error("malformed server message: {0}")]
    Malformed(String),
    /// A valid message arrived where the protocol does not allow it.
    #[error("unexpected {0} message")]
    Unexpected(&'static str),
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
}

/// Why [`connect`](crate::connect) (or
/// [`Participant::connect`](crate::transport::Participant::connect)) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a usable `ws://` URL.
    #[error("invalid signaling url: {0}")]
    InvalidUrl(String),
    /// No connection to the server could be made.
    #[error("signaling server unreachable: {0}")]
    Unreachable(#[source] std::io::Error),
    /// The server refused the token (missing, forged, expired, wrong room,
    /// or lacking a grant).
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The server speaks another protocol version.
    #[error("protocol version mismatch (client speaks {client}): {message}")]
    ProtocolVersion {
        /// The version this SDK speaks.
        client: u32,
        /// The server's explanation.
        message: String,
    },
    /// Connecting and joining took longer than
    /// [`ConnectOptions::connect_timeout`](crate::config::ConnectOptions::connect_timeout).
    #[error("no answer from the server within {0:?}")]
    Timeout(Duration),
    /// The server broke the protocol, or refused the join for another reason.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The WebRTC transports could not be created.
    #[error("webrtc setup failed: {0}")]
    Peer(#[from] PeerError),
    /// The end-to-end encryption layer could not start.
    #[error("e2ee setup failed: {0}")]
    E2ee(String),
}

/// Why publishing or unpublishing a track failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The server refused it.
    #[error("refused by the server ({code:?}): {message}")]
    Rejected {
        /// Its class, e.g. [`ErrorCode::Forbidden`] without a publish grant.
        code: ErrorCode,
        /// Its detail.
        message: String,
    },
    /// A track with this `cid` is already published.
    #[error("a track with cid {0:?} is already published")]
    DuplicateCid(String),
    /// End-to-end encryption has no media format for this codec.
    #[error("no end-to-end encrypted media format for codec {0:?}")]
    UnsupportedCodec(String),
    /// The simulcast encodings are not usable: on an audio track, more
    /// than the server accepts, a rid that is empty, too long, not
    /// alphanumeric or repeated, or a zero size.
    #[error("bad simulcast encodings: {0}")]
    BadSimulcast(&'static str),
    /// The server did not answer in time.
    #[error("no answer from the server within {0:?}")]
    Timeout(Duration),
    /// The local transport failed.
    #[error(transparent)]
    Peer(#[from] PeerError),
    /// The session is closed.
    #[error("session closed")]
    Closed,
}

/// Why waiting on a [`Room`](crate::Room) ended without what it waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// Not within the time given.
    #[error("not reached within {0:?}")]
    Timeout(Duration),
    /// The room or its transport closed first.
    #[error("closed before it was reached")]
    Closed,
}

/// Why a packet could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The transport is not (yet, or any more) connected; the packet was
    /// not sent.
    #[error("transport not connected")]
    NotConnected,
    /// The track or its transport is closed.
    #[error("track closed")]
    Closed,
    /// A header extension did not fit the RFC 8285 one-byte form.
    #[error("header extension too large")]
    ExtensionTooLarge,
    /// The track has no simulcast encoding with this index.
    #[error("no encoding {0}")]
    NoEncoding(usize),
}
