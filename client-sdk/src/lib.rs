//! Client SDK for the conferencing stack: join a room over WebSocket
//! signaling, publish tracks of raw RTP, and receive everyone else's.
//!
//! This is the native WebRTC participant (built on the `webrtc` crate) that
//! apps, the load tester and the SFU integration tests embed. End-to-end
//! encryption (MLS group keys, SFrame frames) is layered on top later; the
//! media path here is byte-transparent so that it can be: the payload bytes
//! given to [`LocalTrack::write_rtp`] are the payload bytes another
//! participant's [`RemoteTrack::recv`] returns.
//!
//! # Layers
//!
//! - [`Participant`] is one person in a room: a WebSocket session speaking
//!   the [`signaling::proto`] protocol plus two WebRTC transports, the
//!   *publisher* (we offer, media goes up) and the *subscriber* (the server
//!   offers, media comes down).
//! - [`Peer`] is one of those transports on its own, with no signaling: it
//!   creates and accepts SDP, trickles candidates as [`PeerEvent`]s, sends
//!   [`OutboundTrack`]s and yields [`InboundTrack`]s. Tests wire two of them
//!   together directly.
//!
//! # Example
//!
//! ```no_run
//! use client_sdk::{Codec, ConnectOptions, Event, Participant, TrackSpec};
//!
//! # async fn run(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let (me, mut events) =
//!     Participant::connect("ws://127.0.0.1:7880/rtc", token, ConnectOptions::default()).await?;
//! let mic = me.publish_track(TrackSpec::new("mic", Codec::opus())).await?;
//! mic.write_rtp(vec![0xde, 0xad, 0xbe, 0xef], 960, false).await.ok();
//! while let Some(event) = events.recv().await {
//!     if let Event::TrackSubscribed(mut track) = event {
//!         while let Some(packet) = track.recv().await {
//!             println!("{} sent {} bytes", track.info().participant_id, packet.payload.len());
//!         }
//!     }
//! }
//! me.leave().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod codec;
mod error;
mod events;
mod options;
mod participant;
mod peer;
mod room;
mod rtp_packet;
mod track;

pub use codec::Codec;
/// The E2EE building blocks (SFrame suites, decrypt tuning, MLS settings).
pub use e2ee;
pub use error::{ConnectError, PeerError, ProtocolError, PublishError, WriteError};
pub use events::{CloseReason, ConnectionState, Event, Events};
pub use options::{ConnectOptions, IceOptions, IceServer, PeerConfig};
pub use participant::Participant;
pub use peer::{InboundTrack, OutboundTrack, Peer, PeerEvent, PeerEvents};
pub use room::{
    ChatError, DecryptFailures, DecryptedFrame, MediaSender, RemoteMedia, Room, RoomEvent,
    RoomEvents, RoomOptions, RosterMember, SendFrameError, SignalingState, connect,
};
pub use rtp_packet::{RtpExtension, RtpPacket};
pub use track::{LocalTrack, RemoteTrack, RemoteTrackInfo, TrackSpec};

/// Hooks for the workspace's own tests, with the `test-util` feature:
/// the group-key state machine on its own, to drive on virtual time. Never
/// enable the feature in an app.
#[cfg(feature = "test-util")]
pub mod test_util {
    pub use crate::room::{Coordinator, CoordinatorConfig, Output};
}

/// The protocol types that appear in this crate's API, re-exported so apps
/// need no direct dependency on `signaling`.
pub use signaling::proto::{
    ErrorCode, IceCandidate, LeaveReason, ParticipantInfo, RoomState, Target, TrackInfo, TrackKind,
};
