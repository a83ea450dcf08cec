//! The shared test kit.
//!
//! - [`netem::SimNet`]: a seeded network emulator on virtual time (loss,
//!   delay, jitter, hence reordering). The same seed gives the same run.
//! - [`peer::LeanPeer`]: a minimal str0m client that publishes and
//!   subscribes raw RTP. It does only what a peer must, so it can drive the
//!   SFU in tests and benchmarks without being the bottleneck. It sends and
//!   receives the dependency descriptor header extension ([`dd`]).
#![deny(missing_docs)]

pub mod dd;
pub mod netem;
pub mod peer;
