//! Group configuration: the fixed ciphersuite and the tunable limits.

use openmls::prelude::{
    Ciphersuite, MlsGroupCreateConfig, MlsGroupJoinConfig, PURE_PLAINTEXT_WIRE_FORMAT_POLICY,
    SenderRatchetConfiguration,
};

/// The only ciphersuite this module speaks: RFC 9420 §17.1 suite 0x0001,
/// `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519`.
///
/// Fixed so that every client of a room agrees without negotiation, and
/// because it is the mandatory-to-implement suite with the cheapest HPKE.
/// Its hash is SHA-256, so the epoch authenticator is 32 bytes.
pub(crate) const CIPHERSUITE: Ciphersuite =
    Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// Tunable limits of an [`MlsClient`](super::MlsClient).
///
/// The ciphersuite is fixed to
/// `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519` (X25519, AES-128-GCM,
/// SHA-256, Ed25519) and not configurable. Handshake messages (commits,
/// proposals) are always sent as signed `PublicMessage`s and only those are
/// accepted (openmls' pure-plaintext wire-format policy), so the delivery
/// service can check that a commit is well-formed, signed by a member and
/// changes exactly the members it should; a handshake message sent as a
/// `PrivateMessage` is refused. Application messages are always
/// `PrivateMessage`s. Welcomes always carry the ratchet tree extension.
///
/// Every member of a group should use the same values: they only affect how
/// tolerant a receiver is, but a sender's `padding_size` is visible on the
/// wire.
///
/// ```
/// let mut cfg = e2ee::group::MlsConfig::default();
/// cfg.max_past_epochs = 8;
/// assert_eq!(cfg.out_of_order_tolerance, 16);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MlsConfig {
    /// How many past epochs keep their message secrets, so application
    /// messages encrypted just before a commit still decrypt after it.
    /// Default 4.
    pub max_past_epochs: usize,
    /// How many generations behind the newest one a sender's ratchet keeps
    /// keys for, i.e. how late a reordered message may arrive. Default 16.
    pub out_of_order_tolerance: u32,
    /// How far ahead of the last seen generation a message may jump (lost
    /// messages in between). Bounds the work a forged generation can cost.
    /// Default 1000.
    pub maximum_forward_distance: u32,
    /// `PrivateMessage` content is padded to a multiple of this many bytes to
    /// blur message lengths. 0 disables padding. Default 32.
    pub padding_size: usize,
}

impl Default for MlsConfig {
    fn default() -> Self {
        Self {
            max_past_epochs: 4,
            out_of_order_tolerance: 16,
            maximum_forward_distance: 1000,
            padding_size: 32,
        }
    }
}

impl MlsConfig {
    fn ratchet(&self) -> SenderRatchetConfiguration {
        SenderRatchetConfiguration::new(self.out_of_order_tolerance, self.maximum_forward_distance)
    }

    /// Configuration for a group we found.
    pub(super) fn create_config(&self) -> MlsGroupCreateConfig {
        MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
            .max_past_epochs(self.max_past_epochs)
            .sender_ratchet_configuration(self.ratchet())
            .padding_size(self.padding_size)
            .use_ratchet_tree_extension(true)
            .build()
    }

    /// Configuration for a group we join by Welcome; must match
    /// [`Self::create_config`] in everything but the group context.
    pub(super) fn join_config(&self) -> MlsGroupJoinConfig {
        MlsGroupJoinConfig::builder()
            .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
            .max_past_epochs(self.max_past_epochs)
            .sender_ratchet_configuration(self.ratchet())
            .padding_size(self.padding_size)
            .use_ratchet_tree_extension(true)
            .build()
    }
}
