//! The JSON summary the `participant` tool prints on stdout when it leaves
//! (`docs/loadtest.md`, "A native participant for mixed rooms", describes
//! every field). Times are milliseconds since the tool started.

use client_sdk::DecryptFailures;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything one member saw and did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// This member's identity (from its token).
    pub identity: String,
    /// Its participant id, as the server assigned it.
    pub participant_id: String,
    /// The room, as given with `--room`.
    pub room: Option<String>,
    /// Why it left: `duration` (its run ended), `stopped` ("leave" on stdin,
    /// SIGTERM or SIGINT) or `closed` (the server ended the session).
    pub ended: String,
    /// When it first held a group key.
    pub first_epoch_ms: Option<u64>,
    /// When its group first had the expected number of members (the run's
    /// duration counts from then); `None` if it never did.
    pub group_complete_ms: Option<u64>,
    /// When it left.
    pub left_ms: u64,
    /// What it sent.
    pub sent: Sent,
    /// Every remote track it received, ordered by publisher identity and kind.
    pub tracks: Vec<TrackSummary>,
    /// Decrypted frames per publisher identity.
    pub by_identity: BTreeMap<String, IdentityFrames>,
    /// Frames dropped instead of decrypted, by reason, over the whole run.
    pub decrypt_failures: Failures,
    /// The same totals when this member first held a group key: frames other
    /// members sent before it was in the group are counted by then.
    pub decrypt_failures_at_join: Failures,
    /// `decrypt_failures` less `decrypt_failures_at_join`.
    pub decrypt_failures_after_join: Failures,
    /// Chat messages in the order they arrived (its own included).
    pub chat: Vec<ChatMessage>,
    /// Whether at least the expected number of chat messages arrived.
    pub chat_complete: bool,
    /// Every epoch it entered, in order, with the verification code and the
    /// group's members.
    pub epochs: Vec<EpochSummary>,
    /// The epoch it was in when it left.
    pub epoch: Option<u64>,
    /// The verification code when it left.
    pub verification_code: Option<String>,
    /// How often the server's roster and the MLS group disagreed.
    pub roster_mismatches: u64,
}

/// What one member sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sent {
    /// Video frames encrypted and sent.
    pub video_frames: u64,
    /// Of those, keyframes.
    pub video_keyframes: u64,
    /// Audio packets encrypted and sent.
    pub audio_frames: u64,
    /// Frames not sent because this member had no group key yet.
    pub no_key: u64,
    /// Frames not sent for another reason.
    pub errors: u64,
    /// Keyframe requests received (from the SFU or for a new epoch).
    pub keyframe_requests: u64,
    /// Times the video loop went back to its start to answer one.
    pub video_restarts: u64,
    /// Chat messages sent.
    pub chat: u64,
}

/// One remote track.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrackSummary {
    /// The server's track id.
    pub track_id: String,
    /// The publisher's participant id.
    pub participant_id: String,
    /// The publisher's MLS identity, as the decrypted frames name it
    /// (`None` if no frame was decrypted and the server never named it).
    pub identity: Option<String>,
    /// `audio` or `video`.
    pub kind: String,
    /// Frames decrypted.
    pub frames: u64,
    /// Of those, keyframes.
    pub keyframes: u64,
    /// Decrypted frames that are not frames of the track's codec (a VP8
    /// frame tag or an Opus TOC byte that does not parse).
    pub invalid: u64,
    /// Plaintext bytes decrypted.
    pub bytes: u64,
    /// When its first frame was decrypted.
    pub first_frame_ms: Option<u64>,
    /// When its last frame was decrypted.
    pub last_frame_ms: Option<u64>,
    /// The epoch of its last frame.
    pub last_epoch: Option<u64>,
}

/// Decrypted frames from one publisher.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityFrames {
    /// Audio frames.
    pub audio: u64,
    /// Video frames.
    pub video: u64,
}

/// Dropped frames by reason ([`DecryptFailures`] with its total).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failures {
    /// The SFrame header could not be parsed.
    pub malformed: u64,
    /// Authentication failed.
    pub auth_failed: u64,
    /// A counter seen before or older than the replay window.
    pub replay: u64,
    /// A key id that never became known.
    pub unknown_kid: u64,
    /// A key id of an epoch whose keys are gone.
    pub wrong_epoch: u64,
    /// Not sent by the track's publisher.
    pub wrong_sender: u64,
    /// The track's publisher was not named by the roster in time.
    #[serde(default)]
    pub unknown_sender: u64,
    /// Packets that never formed a whole frame.
    pub incomplete: u64,
    /// Frames sent before this member joined (not failures, not in `total`).
    pub before_join: u64,
    /// All failures.
    pub total: u64,
}

impl From<&DecryptFailures> for Failures {
    fn from(f: &DecryptFailures) -> Self {
        Self {
            malformed: f.malformed,
            auth_failed: f.auth_failed,
            replay: f.replay,
            unknown_kid: f.unknown_kid,
            wrong_epoch: f.wrong_epoch,
            wrong_sender: f.wrong_sender,
            unknown_sender: f.unknown_sender,
            incomplete: f.incomplete,
            before_join: f.before_join,
            total: f.total(),
        }
    }
}

impl Failures {
    /// The drops counted after `earlier` was taken.
    pub fn since(&self, earlier: &Failures) -> Failures {
        Failures {
            malformed: self.malformed.saturating_sub(earlier.malformed),
            auth_failed: self.auth_failed.saturating_sub(earlier.auth_failed),
            replay: self.replay.saturating_sub(earlier.replay),
            unknown_kid: self.unknown_kid.saturating_sub(earlier.unknown_kid),
            wrong_epoch: self.wrong_epoch.saturating_sub(earlier.wrong_epoch),
            wrong_sender: self.wrong_sender.saturating_sub(earlier.wrong_sender),
            unknown_sender: self.unknown_sender.saturating_sub(earlier.unknown_sender),
            incomplete: self.incomplete.saturating_sub(earlier.incomplete),
            before_join: self.before_join.saturating_sub(earlier.before_join),
            total: self.total.saturating_sub(earlier.total),
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// The sender's MLS identity.
    pub from: String,
    /// The text.
    pub text: String,
}

/// One epoch this member entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochSummary {
    /// The MLS epoch.
    pub epoch: u64,
    /// Its verification code.
    pub verification_code: String,
    /// The group's members' identities, sorted.
    pub members: Vec<String>,
    /// When this member entered it.
    pub at_ms: u64,
}
