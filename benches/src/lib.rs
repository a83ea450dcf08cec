//! Benchmarks of the SFU.
//!
//! - Criterion benches of the per-packet pieces live in `benches/benches`.
//! - [`fwd`] is the whole-system forwarding benchmark behind the `fwdbench`
//!   binary: the real SFU in its own process, driven over loopback UDP by
//!   lean DTLS-SRTP peers, against a minimal batched forwarder measured in
//!   the same run.
#![deny(missing_docs)]

pub mod fwd;
