//! Load tester for the SFU: hundreds of simulated, end-to-end
//! encrypted participants in one process, each a real `client_sdk` room
//! member, sending synthetic frames whose plaintext carries sender,
//! sequence number and send time. Receivers read them after decryption,
//! which gives true end-to-end latency, loss, reordering, duplicates and
//! jitter without any codec.
//!
//! The binary (`loadtest`) is [`cli::Args`] → [`settings::Settings`] →
//! [`run::run`] → [`report::Report`], then a summary table on stdout and
//! the JSON/HTML reports.
//!
//! The measurements are pure state machines told the time, tested without
//! a network: [`frame`] (the header), [`stats`] (per-stream loss,
//! duplicates, reordering, jitter; per-receiver and run aggregates),
//! [`watchdog`], [`thresholds`], [`churn`], [`pacing`], [`sfu_usage`]'s
//! parsers and [`summary`].
#![deny(missing_docs)]

pub mod assemble;
pub mod churn;
pub mod cli;
pub mod clock;
pub mod figures;
pub mod frame;
pub mod listener;
pub mod media;
pub mod member;
pub mod mls_pool;
pub mod pacing;
pub mod participant;
pub mod progress;
pub mod publisher;
pub mod report;
pub mod run;
pub mod settings;
pub mod sfu_usage;
pub mod state;
pub mod stats;
pub mod summary;
pub mod target;
pub mod tester_usage;
pub mod thresholds;
pub mod tokens;
pub mod watchdog;

pub use assemble::{EXIT_OK, EXIT_RUN_FAILED, EXIT_THRESHOLD};
