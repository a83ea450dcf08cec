//! The shared test kit.
//!
//! - [`netem::SimNet`]: a seeded network emulator on virtual time (loss,
//!   delay, jitter, hence reordering). The same seed gives the same run.
//! - [`peer::LeanPeer`]: a minimal str0m client that publishes and
//!   subscribes raw RTP. It does only what a peer must, so it can drive the
//!   SFU in tests and benchmarks without being the bottleneck. It sends and
//!   receives the dependency descriptor header extension through the SFU's
//!   own serializer ([`sfu_core::dd`]).
//! - [`plane_world::World`]: a whole media plane, its clients and the
//!   network between them on one virtual clock.
//! - [`plane_fanout::Rig`]: that world split so one datagram into the plane
//!   and its outputs can be timed or counted alone.
//! - [`sdp::offer`]: real publisher offers of any size, for hostile tests.
//! - [`vp8`]: synthetic VP8 frames, for senders that encode nothing.
#![deny(missing_docs)]

pub mod alloc;
pub mod chat;
#[cfg(feature = "rt")]
pub mod http;
#[cfg(feature = "rt")]
pub mod logs;
pub mod metrics;
#[cfg(feature = "mls")]
pub mod mls;
pub mod netem;
pub mod peer;
pub mod plane_fanout;
pub mod plane_world;
pub mod procfs;
pub mod rng;
pub mod sdp;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "rt")]
pub mod sfu_bin;
#[cfg(feature = "token")]
pub mod token;
pub mod vp8;
#[cfg(feature = "rt")]
pub mod wait;
#[cfg(feature = "ws")]
pub mod ws;
#[cfg(feature = "ws")]
pub mod wsproxy;
