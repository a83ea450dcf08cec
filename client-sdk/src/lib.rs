//! Client SDK for the conferencing stack: join a room with end-to-end
//! encryption, publish media, receive everyone else's, chat, and check that
//! everyone holds the same keys.
//!
//! [`connect`] joins the room an access token names and returns a [`Room`]
//! and its [`RoomEvents`]. Every frame is encrypted with SFrame (RFC 9605)
//! under keys from the room's MLS group (RFC 9420) before it leaves this
//! process; the SFU forwards ciphertext and relays MLS messages it cannot
//! read. Members that see the same verification code hold the same keys
//! with the same members. `docs/e2ee.md` describes the key schedule and
//! what the server can and cannot learn.
//!
//! ```no_run
//! use client_sdk::{Codec, RoomEvent, RoomOptions, TrackSpec};
//! use std::time::Duration;
//!
//! # async fn run(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! // Join: signaling, the media transports, and the MLS group.
//! let (room, mut events) =
//!     client_sdk::connect("wss://sfu.example.com/rtc", token, RoomOptions::default()).await?;
//! // Frames can be sent once this member holds the group's key.
//! room.wait_for_keys(Duration::from_secs(10)).await?;
//!
//! // Publish a track and send an encoded frame: the SDK encrypts and
//! // packetizes it.
//! let mic = room.publish(TrackSpec::new("mic", Codec::opus())).await?;
//! mic.send_frame(b"an encoded opus frame", 960, false).await?;
//!
//! // Chat, end-to-end encrypted, in one order at every member.
//! room.send_chat("hello").await?;
//!
//! // Compare this code out of band with the others'.
//! println!("verification code: {:?}", room.verification_code());
//!
//! while let Some(event) = events.recv().await {
//!     match event {
//!         // Receive frames, decrypted and reassembled.
//!         RoomEvent::TrackSubscribed(mut track) => {
//!             tokio::spawn(async move {
//!                 while let Some(frame) = track.recv().await {
//!                     println!("{} sent {} bytes", frame.identity, frame.data.len());
//!                 }
//!             });
//!         }
//!         RoomEvent::Chat { from, text } => println!("{from}: {text}"),
//!         RoomEvent::VerificationCodeChanged(code) => println!("verification code: {code}"),
//!         RoomEvent::RosterMismatch { mls_only, signaling_only } => {
//!             eprintln!("the server's roster and the group differ: {mls_only:?} {signaling_only:?}");
//!         }
//!         RoomEvent::Closed(_) => break,
//!         _ => {}
//!     }
//! }
//! room.leave().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Modules
//!
//! - [`config`]: settings beyond [`RoomOptions`]' own fields (signaling and
//!   ICE, the SFrame suite, decryption and MLS tuning).
//! - [`proto`]: the signaling protocol's types that appear in this API.
//! - [`transport`]: the layers underneath a [`Room`], without end-to-end
//!   encryption: a bare participant (signaling plus two WebRTC transports
//!   carrying raw RTP) and a bare WebRTC transport. Apps do not need them;
//!   the SFU's own tests use them to look at the wire.
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
mod vp8_payload;

pub use codec::Codec;
pub use error::{ConnectError, PublishError, WaitError};
pub use events::{CloseReason, ConnectionState};
pub use room::{
    ChatError, DecryptFailures, DecryptedFrame, MediaSender, RemoteMedia, Room, RoomEvent,
    RoomEvents, RoomOptions, RosterMember, SendFrameError, SignalingState, connect,
};
pub use track::{Encoding, TrackSettings, TrackSpec};

/// Settings beyond [`RoomOptions`]' own fields.
pub mod config {
    pub use crate::options::{ConnectOptions, IceOptions, IceServer};
    /// How joins are gathered into commits.
    pub use client_core::Pacing;
    /// How receivers buffer, wait and check replays.
    pub use e2ee::frame::DecryptConfig;
    /// The SFrame cipher suite; every member of a room must use the same.
    pub use e2ee::frame::Suite;
    /// MLS tolerances (past epochs kept, out-of-order messages).
    pub use e2ee::group::MlsConfig;
}

/// The signaling protocol's types that appear in this crate's API,
/// re-exported so apps need no direct dependency on `signaling`.
pub mod proto {
    pub use signaling::proto::{
        ErrorCode, IceCandidate, LeaveReason, ParticipantInfo, RoomState, Target, TrackInfo,
        TrackKind,
    };
}

pub mod transport {
    //! The layers under a [`Room`](crate::Room), without end-to-end
    //! encryption. Apps do not need them: media sent this way is not
    //! encrypted.
    //!
    //! - [`Participant`] is one person in a room: a WebSocket session speaking
    //!   the signaling protocol plus two WebRTC transports, the *publisher* (we
    //!   offer, media goes up) and the *subscriber* (the server offers, media
    //!   comes down). The payload bytes given to [`LocalTrack::write_rtp`] are
    //!   the payload bytes another participant's [`RemoteTrack::recv`] returns.
    //! - [`Peer`] is one of those transports on its own, with no signaling: it
    //!   creates and accepts SDP, trickles candidates as [`PeerEvent`]s, sends
    //!   [`OutboundTrack`]s and yields [`InboundTrack`]s. Tests wire two of them
    //!   together directly.
    //!
    //! ```no_run
    //! use client_sdk::config::ConnectOptions;
    //! use client_sdk::transport::{Event, Participant};
    //! use client_sdk::{Codec, TrackSpec};
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

    pub use crate::error::{PeerError, ProtocolError, WriteError};
    pub use crate::events::{Event, Events};
    pub use crate::options::PeerConfig;
    pub use crate::participant::Participant;
    pub use crate::peer::{InboundTrack, OutboundTrack, Peer, PeerEvent, PeerEvents};
    pub use crate::room::{FramePiece, frame_piece, receive_assembler};
    pub use crate::rtp_packet::{RtpExtension, RtpPacket};
    pub use crate::track::{LocalTrack, RemoteTrack, RemoteTrackInfo};
}

/// Hooks for the workspace's own tests, with the `test-util` feature: the
/// group-key state machine on its own, to drive on virtual time (the
/// `client-core` crate's, re-exported). Never enable the feature in an app.
#[cfg(feature = "test-util")]
pub mod test_util {
    pub use client_core::{Coordinator, CoordinatorConfig, Output};
}
