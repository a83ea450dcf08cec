//! The SFU media plane as a sans-IO state machine.
//!
//! It is told the time, fed datagrams and commands, and polled for datagrams
//! to send, events and its next timeout. It never reads a clock, touches a
//! socket, or depends on an async runtime, so it runs the same under a tokio
//! shell and under a virtual-time test network.
//!
//! Inside, each participant has up to two str0m `Rtc` transports in RTP mode
//! with ICE-lite (publisher and subscriber), and a [`forwarder::Forwarder`] decides
//! where each packet goes and how its header is rewritten.
#![deny(missing_docs)]

mod api;
pub mod dd;
pub mod demux;
pub mod forwarder;
pub mod keyframe;
pub mod layers;
mod plane;
mod resend;
pub mod rewrite;
pub mod sdp;
pub mod speaker;
mod stats;
mod transport;

pub use api::{
    LayerSize, MediaCommand, MediaConfig, MediaEvent, Output, Target, TrackKind, Transmit,
};
pub use plane::{Input, MediaPlane};
pub use sdp::{ClientSdp, SdpLimits, SdpRefusal};
pub use stats::{DropReason, ESTIMATE_BUCKETS_BPS, Stats};
