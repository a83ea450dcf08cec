//! The engine of one room, in plain Rust: JSON in, JSON out, bytes in,
//! bytes out. The wasm bindings only convert types; everything here also
//! runs (and is tested) natively.

use crate::outputs::{EngineOutput, RosterMember};
use client_core::{
    Coordinator, CoordinatorConfig, FailureCounts, FrameOrigin, Instant, MediaKeys, Output, Pacing,
};
use e2ee::frame::{DecryptConfig, MediaCodec, Suite, base_key_len};
use e2ee::group::{MlsClient, MlsConfig};
use serde::Deserialize;
use signaling::proto::{ErrorCode, ServerMessage};
use std::collections::VecDeque;
use std::time::Duration;

/// Why the engine refused a call. Never carries key material or a
/// library's internal detail beyond its message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The configuration JSON is not valid.
    #[error("bad engine config: {0}")]
    Config(String),
    /// A server message is not valid JSON of a known shape.
    #[error("bad server message: {0}")]
    Message(String),
    /// `start` was given something other than a `joined` message.
    #[error("start needs the server's joined message")]
    NotJoined,
    /// Called before `start`.
    #[error("the engine is not started")]
    NotStarted,
    /// The MLS client could not be created.
    #[error("cannot create the MLS client: {0}")]
    Mls(String),
    /// A chat message longer than one message may be.
    #[error("chat message of {0} bytes is too long")]
    ChatTooLong(usize),
    /// A codec the media format does not cover.
    #[error("unsupported codec {0}")]
    Codec(String),
}

/// Tuning, from the SDK's options (all optional; JSON, camelCase).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct EngineConfig {
    /// How long the next member in line waits before committing a pending
    /// join or leave in place of a silent committer.
    pub takeover_delay_ms: u64,
    /// How long the MLS and signaling rosters may differ before a mismatch
    /// is reported.
    pub mismatch_grace_ms: u64,
    /// Periodic self-update, if any.
    pub self_update_ms: Option<u64>,
    /// A commit that only adds waits until this long after the current
    /// epoch began (joins in a burst go together; leaves never wait). Every
    /// member of a room should use the same value.
    pub join_pacing_ms: u64,
    /// Tests only: install every epoch's SFrame key with one bit flipped, so
    /// this member can read no one's frames (and no one its own), as with a
    /// corrupted or stale key.
    pub test_tamper_keys: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            takeover_delay_ms: 2000,
            mismatch_grace_ms: 10_000,
            self_update_ms: None,
            join_pacing_ms: Pacing::default().add_interval.as_millis() as u64,
            test_tamper_keys: false,
        }
    }
}

/// A received frame's context: whose track carried it and the shell's
/// handle for it (the worker keeps the frame object under that handle).
#[derive(Debug)]
pub struct Received {
    publisher: String,
    /// The shell's handle.
    pub handle: u32,
}

impl FrameOrigin for Received {
    fn publisher(&self) -> &str {
        &self.publisher
    }
}

/// A frame that opened late (it waited for its epoch's key).
#[derive(Debug)]
pub struct Released {
    /// The handle the shell passed with it.
    pub handle: u32,
    /// The encoded frame.
    pub data: Vec<u8>,
}

/// One room's E2EE engine.
pub struct EngineCore {
    identity: String,
    participant_id: String,
    cfg: CoordinatorConfig,
    tamper_keys: bool,
    coordinator: Option<Coordinator>,
    keys: MediaKeys<Received>,
    out: VecDeque<String>,
    released: VecDeque<Released>,
    last_waits: bool,
}

impl std::fmt::Debug for EngineCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineCore")
            .field("participant_id", &self.participant_id)
            .finish_non_exhaustive()
    }
}

impl EngineCore {
    /// An engine for `identity` (the token's, and so the MLS credential's).
    /// `config` is an [`EngineConfig`] as JSON (`""` for the defaults).
    pub fn new(identity: &str, config: &str) -> Result<Self, EngineError> {
        let cfg: EngineConfig = if config.trim().is_empty() {
            EngineConfig::default()
        } else {
            serde_json::from_str(config).map_err(|e| EngineError::Config(e.to_string()))?
        };
        let suite = Suite::default();
        Ok(Self {
            identity: identity.to_owned(),
            participant_id: String::new(),
            cfg: CoordinatorConfig {
                takeover_delay: Duration::from_millis(cfg.takeover_delay_ms),
                mismatch_grace: Duration::from_millis(cfg.mismatch_grace_ms),
                self_update: cfg.self_update_ms.map(Duration::from_millis),
                sframe_nk: base_key_len(suite),
                mls: MlsConfig::default(),
                pacing: Pacing {
                    add_interval: Duration::from_millis(cfg.join_pacing_ms),
                    ..Pacing::default()
                },
            },
            tamper_keys: cfg.test_tamper_keys,
            coordinator: None,
            keys: MediaKeys::new(suite, DecryptConfig::default()),
            out: VecDeque::new(),
            released: VecDeque::new(),
            last_waits: false,
        })
    }

    /// Starts (or, after joining the room afresh, restarts) from the
    /// server's `joined` message: a new MLS client, the roster, the group.
    pub fn start(&mut self, now: Instant, joined: &str) -> Result<(), EngineError> {
        let ServerMessage::Joined {
            participant_id,
            room,
            mls,
            ..
        } = parse(joined)?
        else {
            return Err(EngineError::NotJoined);
        };
        let client = MlsClient::new(&self.identity, self.cfg.mls.clone())
            .map_err(|e| EngineError::Mls(e.to_string()))?;
        // A new session is a new member: nothing of the old group is valid.
        let unsent = match self.coordinator.take() {
            Some(mut old) => {
                self.keys.forget();
                old.take_unsent_chat()
            }
            None => Vec::new(),
        };
        self.keys.learn_identity(&participant_id, &self.identity);
        let roster: Vec<(String, String)> = room
            .participants
            .into_iter()
            .map(|p| (p.participant_id, p.identity))
            .collect();
        for (pid, identity) in &roster {
            self.keys.learn_identity(pid, identity);
        }
        let mut coordinator =
            Coordinator::new(self.cfg.clone(), client, &participant_id, roster, &mls, now);
        for text in unsent {
            coordinator.send_chat(now, text);
        }
        self.participant_id = participant_id;
        self.coordinator = Some(coordinator);
        self.drain(now);
        Ok(())
    }

    /// One message from the server. Those the engine needs (`mls`,
    /// `mls_commit_rejected`, `participant_joined`/`left`, `resumed`,
    /// `error{mls_gap}`) are acted on; others are ignored.
    pub fn server_message(&mut self, now: Instant, message: &str) -> Result<(), EngineError> {
        let message = parse(message)?;
        let coordinator = self.coordinator.as_mut().ok_or(EngineError::NotStarted)?;
        match message {
            ServerMessage::Mls { seq, entry } => coordinator.entry(now, seq, entry),
            ServerMessage::MlsCommitRejected { epoch, .. } => {
                coordinator.commit_rejected(now, epoch)
            }
            ServerMessage::ParticipantJoined { participant } => {
                self.keys
                    .learn_identity(&participant.participant_id, &participant.identity);
                coordinator.participant_joined(&participant.participant_id, &participant.identity);
            }
            ServerMessage::ParticipantLeft { participant_id, .. } => {
                coordinator.participant_left(&participant_id, now)
            }
            ServerMessage::Resumed { .. } => coordinator.resumed(now),
            ServerMessage::Error {
                code: ErrorCode::MlsGap,
                ..
            } => coordinator.log_gap(now),
            _ => {}
        }
        self.drain(now);
        Ok(())
    }

    /// Time passed: resends, takeovers, mismatch reports, buffered frames
    /// that waited too long.
    pub fn tick(&mut self, now: Instant) {
        if let Some(c) = self.coordinator.as_mut() {
            c.tick(now);
        }
        self.keys.tick(now);
        self.drain(now);
    }

    /// When [`EngineCore::tick`] has something to do next.
    pub fn next_tick(&self) -> Option<Instant> {
        [
            self.coordinator.as_ref().and_then(Coordinator::next_tick),
            self.keys.next_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next output, as JSON (see [`EngineOutput`]).
    pub fn poll(&mut self) -> Option<String> {
        self.out.pop_front()
    }

    /// Queues an end-to-end encrypted chat message.
    pub fn send_chat(&mut self, now: Instant, text: &str) -> Result<(), EngineError> {
        if text.len() > client_core::MAX_CHAT_BYTES {
            return Err(EngineError::ChatTooLong(text.len()));
        }
        let coordinator = self.coordinator.as_mut().ok_or(EngineError::NotStarted)?;
        coordinator.send_chat(now, text.to_owned());
        self.drain(now);
        Ok(())
    }

    /// Encrypts one encoded frame; `None` while this member holds no key
    /// (the frame must be dropped, never sent in the clear).
    pub fn encrypt(&mut self, codec: &str, frame: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let codec = media_codec(codec)?;
        Ok(self.keys.encrypt(codec, frame).ok())
    }

    /// Decrypts one received frame that arrived on a track of `publisher`.
    /// Returns its plaintext if it opened now and came from `publisher`;
    /// `None` if it was dropped or waits for its epoch (then it may come
    /// out of [`EngineCore::take_released`] later, under `handle`).
    pub fn decrypt(
        &mut self,
        now: Instant,
        codec: &str,
        publisher: &str,
        handle: u32,
        frame: &[u8],
    ) -> Result<Option<Vec<u8>>, EngineError> {
        let codec = media_codec(codec)?;
        let ctx = Received {
            publisher: publisher.to_owned(),
            handle,
        };
        let waiting = self.keys.waiting();
        self.keys.decrypt(now, codec, frame, ctx);
        self.last_waits = self.keys.waiting() > waiting;
        let mut this = None;
        while let Some(opened) = self.keys.poll_frame() {
            if opened.ctx.handle == handle && this.is_none() {
                this = Some(opened.plaintext);
            } else {
                self.released.push_back(Released {
                    handle: opened.ctx.handle,
                    data: opened.plaintext,
                });
            }
        }
        Ok(this)
    }

    /// Whether the last frame given to [`EngineCore::decrypt`] waits for
    /// its epoch (else a `None` from it means the frame was dropped).
    pub fn last_waits(&self) -> bool {
        self.last_waits
    }

    /// A frame that opened after it waited for its epoch.
    pub fn take_released(&mut self) -> Option<Released> {
        self.released.pop_front()
    }

    /// Frames dropped so far, by reason.
    pub fn failures(&self) -> FailureCounts {
        self.keys.failures()
    }

    /// Whether frames can be sent now.
    pub fn has_key(&self) -> bool {
        self.keys.can_send()
    }

    /// Carries out the coordinator's outputs: keys are installed here and
    /// never leave; the rest becomes JSON for the page.
    fn drain(&mut self, now: Instant) {
        let Some(coordinator) = self.coordinator.as_mut() else {
            return;
        };
        while let Some(output) = coordinator.poll() {
            let event = match output {
                Output::Send(message) => EngineOutput::Send { message },
                Output::Epoch {
                    epoch,
                    base_key,
                    own_leaf,
                    members,
                    verification_code,
                } => {
                    let mut base_key = base_key;
                    if self.tamper_keys
                        && let Some(b) = base_key.first_mut()
                    {
                        *b ^= 1;
                    }
                    self.keys
                        .install_epoch(now, epoch, &base_key, own_leaf, &members);
                    EngineOutput::Epoch {
                        epoch,
                        verification_code,
                        roster: members.into_iter().map(RosterMember::from).collect(),
                    }
                }
                Output::LeftGroup => {
                    self.keys.forget();
                    EngineOutput::LeftGroup
                }
                Output::Chat { from, text } => EngineOutput::Chat {
                    from: from.identity,
                    text,
                },
                Output::Mismatch {
                    mls_only,
                    signaling_only,
                } => EngineOutput::Mismatch {
                    mls_only,
                    signaling_only,
                },
                Output::Desynchronized => EngineOutput::Desynchronized,
            };
            // Serializing our own plain types cannot fail; skip it if it did.
            if let Ok(json) = serde_json::to_string(&event) {
                self.out.push_back(json);
            }
        }
        // Frames released by a new epoch go out by handle.
        while let Some(opened) = self.keys.poll_frame() {
            self.released.push_back(Released {
                handle: opened.ctx.handle,
                data: opened.plaintext,
            });
        }
    }
}

fn parse(message: &str) -> Result<ServerMessage, EngineError> {
    serde_json::from_str(message).map_err(|e| EngineError::Message(e.to_string()))
}

fn media_codec(name: &str) -> Result<MediaCodec, EngineError> {
    MediaCodec::from_name(name).ok_or_else(|| EngineError::Codec(name.chars().take(32).collect()))
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
