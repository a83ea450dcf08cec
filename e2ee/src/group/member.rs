//! Group members as the application sees them.

use openmls::prelude::{BasicCredential, Credential};

/// One member of the MLS group (one leaf of the ratchet tree).
///
/// `identity` is the member's BasicCredential content read as UTF-8 (invalid
/// bytes become U+FFFD; our own KeyPackage validation rejects such
/// identities). `signature_key` is the raw Ed25519 public key of the leaf.
/// The application compares both with the signaling roster to spot ghosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Leaf index in the ratchet tree (`u32::MAX` for a KeyPackage not yet in
    /// a group).
    pub leaf: u32,
    /// Credential identity.
    pub identity: String,
    /// Ed25519 signature public key (32 bytes).
    pub signature_key: Vec<u8>,
}

/// The identity bytes of a credential: the BasicCredential identity, or the
/// raw credential content for any other credential type.
pub(super) fn identity_bytes(credential: &Credential) -> Vec<u8> {
    match BasicCredential::try_from(credential.clone()) {
        Ok(basic) => basic.identity().to_vec(),
        Err(_) => credential.serialized_content().to_vec(),
    }
}

impl From<&openmls::prelude::Member> for Member {
    fn from(m: &openmls::prelude::Member) -> Self {
        Self {
            leaf: m.index.u32(),
            identity: String::from_utf8_lossy(&identity_bytes(&m.credential)).into_owned(),
            signature_key: m.signature_key.clone(),
        }
    }
}
