//! `fwdbench`: forwarded packets per second per SFU core, added latency, and
//! the ratio to a minimal batched forwarder measured in the same run.
//!
//! One scenario runs like this ([`run::run_scenario`]):
//! 1. Start the real SFU as its own process ([`sfu_proc`]): `fwdbench`
//!    re-executes itself with a hidden subcommand that calls `sfu::start`.
//! 2. Join every participant through the real signaling ([`signal`]) with
//!    lean str0m peers in RTP mode ([`endpoint`]); one generator thread
//!    ([`generator`]) drives all their UDP sockets with batched syscalls
//!    ([`batch`]). Publishers send paced ~1200-byte packets that carry a
//!    send timestamp; subscribers count RTP from the clear header and only
//!    hand STUN, DTLS and RTCP to str0m (one probe subscriber decrypts
//!    everything to check the method).
//! 3. Ramp the offered rate ([`ramp`]) until loss passes the limit or the
//!    SFU's shard thread saturates its core; measure a steady window there
//!    (throughput, per core from the SFU's own CPU time, [`cpu`]) and at
//!    half that load (latency).
//! 4. Do the same against [`baseline`]: recvmmsg, per-output copy, header
//!    rewrite and AES-128-GCM seal, sendmmsg, with the same generator and
//!    sinks.
//!
//! [`report`] holds the JSON object per scenario and the table.

pub mod baseline;
pub mod batch;
pub mod cli;
pub mod cpu;
pub mod dtls_sniff;
pub mod endpoint;
pub mod generator;
pub mod latency;
pub mod ramp;
pub mod report;
pub mod rtp;
pub mod run;
pub mod scenario;
pub mod sfu_proc;
pub mod signal;
