//! The room's MLS group (RFC 9420, via `openmls`).
//!
//! One [`MlsClient`] per participant holds its identity (Ed25519 key and a
//! BasicCredential), its KeyPackages and at most one group. It is sans-IO:
//! everything in and out is a TLS-serialized `MLSMessage`, moved by the
//! caller through the signaling server, the delivery service: it orders
//! the log, accepts one commit per epoch and checks each commit against the
//! group's public state.
//!
//! Flow:
//! - The founder calls [`MlsClient::create_group`] and hands
//!   [`MlsClient::group_info`] to the delivery service, which tracks the
//!   group's public state from it.
//! - A joiner publishes [`MlsClient::key_package`]. A deterministically
//!   chosen member checks it with [`MlsClient::key_package_identity`] and
//!   calls [`MlsClient::commit`] (adds and removes in one commit), sends the
//!   commit to the log and, once accepted, calls
//!   [`MlsClient::merge_pending_commit`] and sends the Welcome (it carries
//!   the ratchet tree). If another commit won the epoch it calls
//!   [`MlsClient::clear_pending_commit`], processes the winner and retries.
//! - Everyone else feeds log entries to [`MlsClient::process`].
//! - The SFrame layer takes [`MlsClient::sframe_base_key`] each epoch;
//!   people compare [`MlsClient::verification_code`].
//!
//! Handshake messages are signed `PublicMessage`s, so the delivery service
//! sees the group's membership (credentials and leaf public keys) and can
//! refuse a commit that is forged, replayed or changes the wrong members;
//! application messages are `PrivateMessage`s. Commits from outside the
//! group (external commits) are refused. Past epochs' secrets are kept
//! ([`MlsConfig::max_past_epochs`]) so chat sent just before a commit still
//! decrypts after it.

mod client;
mod commit;
mod config;
mod error;
mod history;
mod key_package;
mod member;
mod process;
mod stats;
mod verification;

pub use client::MlsClient;
pub use commit::Commit;
pub use config::MlsConfig;
pub use error::GroupError;
pub use member::Member;
pub use process::Processed;
pub use stats::GroupStats;
