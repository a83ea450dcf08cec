//! What the engine tells the page, as JSON. Keys never appear here: an
//! epoch's base key is installed inside the engine and only its number,
//! members and verification code go out.

use e2ee::group::Member;
use serde::Serialize;
use signaling::proto::ClientMessage;

/// One output of [`EngineCore::poll`](crate::EngineCore::poll), tagged by
/// `type` (camelCase fields).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum EngineOutput {
    /// Send `message` to the signaling server as it is.
    Send {
        /// A `mls_*` client message.
        message: ClientMessage,
    },
    /// A new epoch is in use for sending and receiving.
    #[serde(rename_all = "camelCase")]
    Epoch {
        /// The MLS epoch.
        epoch: u64,
        /// Equal on every member of the same group in the same epoch.
        verification_code: String,
        /// The group's members.
        roster: Vec<RosterMember>,
    },
    /// This member is no longer in a group; nothing is sent or decrypted
    /// until the next epoch.
    LeftGroup,
    /// A chat message, in the room's order.
    Chat {
        /// The sender's identity.
        from: String,
        /// Its text.
        text: String,
    },
    /// The MLS roster and the signaling roster disagree.
    #[serde(rename_all = "camelCase")]
    Mismatch {
        /// Identities in the group that the signaling roster lacks.
        mls_only: Vec<String>,
        /// Identities in the signaling roster missing from the group.
        signaling_only: Vec<String>,
    },
    /// The group state fell out of step with the log; this member asked to
    /// be added again.
    Desynchronized,
}

/// A member of the MLS group.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RosterMember {
    /// Its leaf index.
    pub leaf: u32,
    /// Its credential's identity.
    pub identity: String,
    /// Its public signature key, hex.
    pub signature_key: String,
}

impl From<Member> for RosterMember {
    fn from(m: Member) -> Self {
        Self {
            leaf: m.leaf,
            identity: m.identity,
            signature_key: hex::encode(m.signature_key),
        }
    }
}
