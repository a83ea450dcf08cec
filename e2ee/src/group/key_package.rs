//! Parsing and validating KeyPackages received from the delivery service.

use openmls::prelude::{
    BasicCredential, KeyPackage, MlsMessageBodyIn, MlsMessageIn, ProtocolVersion,
    tls_codec::Deserialize as _,
};
use openmls_rust_crypto::RustCrypto;

use super::{
    Member,
    config::CIPHERSUITE,
    error::{GroupError, from_key_package, logged},
};

/// A KeyPackage that passed [`validate`], with the member it would become.
pub(super) struct ValidKeyPackage {
    pub(super) key_package: KeyPackage,
    pub(super) member: Member,
}

/// Parses a TLS-serialized `MLSMessage` carrying a KeyPackage and checks it:
/// leaf and package signatures, lifetime (against the system clock, inside
/// openmls), protocol version, our ciphersuite, a basic credential whose
/// identity is UTF-8.
pub(super) fn validate(crypto: &RustCrypto, bytes: &[u8]) -> Result<ValidKeyPackage, GroupError> {
    let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(|e| {
        logged(
            GroupError::InvalidKeyPackage,
            "key package parse failed",
            &e,
        )
    })?;
    let MlsMessageBodyIn::KeyPackage(key_package) = message.extract() else {
        tracing::debug!("key package rejected: not a KeyPackage message");
        return Err(GroupError::InvalidKeyPackage);
    };
    let key_package = key_package
        .validate(crypto, ProtocolVersion::Mls10)
        .map_err(from_key_package)?;
    if key_package.ciphersuite() != CIPHERSUITE {
        tracing::debug!("key package rejected: foreign ciphersuite");
        return Err(GroupError::InvalidKeyPackage);
    }
    let leaf = key_package.leaf_node();
    let identity = BasicCredential::try_from(leaf.credential().clone())
        .ok()
        .and_then(|basic| String::from_utf8(basic.identity().to_vec()).ok())
        .ok_or_else(|| {
            tracing::debug!("key package rejected: not a UTF-8 basic credential");
            GroupError::InvalidKeyPackage
        })?;
    let member = Member {
        leaf: u32::MAX,
        identity,
        signature_key: leaf.signature_key().as_slice().to_vec(),
    };
    Ok(ValidKeyPackage {
        key_package,
        member,
    })
}
