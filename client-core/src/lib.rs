//! The sans-IO client: the room's group-key state machine (MLS commit
//! policy, roster check, ordered chat), shared by the native SDK and the
//! browser's wasm build.
//!
//! A [`Coordinator`] holds one member's MLS client and decides, on every
//! member alike, what to commit and when, which roster differences to
//! report, and in which order chat arrives. It does no I/O and reads no
//! clock: its shell tells it the time, feeds it what the signaling server
//! delivered (MLS log entries, roster changes, refusals, reconnects), and
//! polls it for [`Output`]s (messages to send, a new epoch's SFrame base
//! key, chat, roster mismatches). [`MediaKeys`] turns those epochs into
//! SFrame keys for media and names the sender of every received frame.
//! The native SDK (`client-sdk`) drives both from a tokio task; the
//! browser's worker drives them from JavaScript events. Both run this same
//! code, so both clients commit, take over, order chat and attribute frames
//! the same way.
//!
//! Times are [`Instant`]s: `std::time::Instant` on native targets, and on
//! `wasm32-unknown-unknown` (where std's clock panics) the browser's
//! monotonic clock. `docs/e2ee.md` describes the protocol.
//!
//! ```
//! use client_core::{Coordinator, CoordinatorConfig, Instant, Output, Pacing};
//! use e2ee::group::{MlsClient, MlsConfig};
//! use signaling::proto::{ClientMessage, MlsInfo};
//! use std::time::Duration;
//!
//! let cfg = CoordinatorConfig {
//!     takeover_delay: Duration::from_secs(2),
//!     mismatch_grace: Duration::from_secs(10),
//!     self_update: None,
//!     sframe_nk: 16,
//!     mls: MlsConfig::default(),
//!     pacing: Pacing::default(),
//! };
//! let mls = MlsClient::new("alice", cfg.mls.clone())?;
//! // The server's `joined`: alice is alone in the room, so she founds the
//! // group the server named.
//! let info = MlsInfo { group_id: "5eed".into(), epoch: 0, seq: 0, founder: true };
//! let mut alice = Coordinator::new(cfg, mls, "PA_alice", Vec::new(), &info, Instant::now());
//!
//! // The group's public state goes to the delivery service, and the first
//! // epoch's SFrame base key to the media layer.
//! assert!(matches!(alice.poll(), Some(Output::Send(ClientMessage::MlsGroupInfo { .. }))));
//! let Some(Output::Epoch { epoch: 0, base_key, verification_code, .. }) = alice.poll() else {
//!     panic!("no epoch");
//! };
//! assert_eq!(base_key.len(), 16);
//! assert!(!verification_code.is_empty());
//! // From now on: feed it the log (`entry`), roster changes and the time
//! // (`tick` at `next_tick`), and poll again after each.
//! # Ok::<(), e2ee::group::GroupError>(())
//! ```
#![deny(missing_docs)]

mod chat;
mod chat_outbox;
mod commit_policy;
mod coordinator;
mod media_keys;
mod roster_check;
mod unattributed;

pub use chat::MAX_CHAT_BYTES;
pub use commit_policy::Pacing;
pub use coordinator::{Coordinator, CoordinatorConfig, Output};
pub use media_keys::{EncryptError, FailureCounts, FrameOrigin, MediaKeys, OpenedFrame};
/// The clock of this API: `std::time::Instant` on native targets, the
/// page's `performance.now()` on `wasm32-unknown-unknown`.
pub use web_time::Instant;
