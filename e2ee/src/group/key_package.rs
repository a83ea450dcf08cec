//! Parsing and validating KeyPackages received from the delivery service.

use openmls::prelude::{
    BasicCredential, Credential, KeyPackage, KeyPackageIn, MlsMessageBodyIn, MlsMessageIn,
    ProtocolVersion, tls_codec::Deserialize as _,
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
    let key_package = parse(bytes)?
        .validate(crypto, ProtocolVersion::Mls10)
        .map_err(from_key_package)?;
    if key_package.ciphersuite() != CIPHERSUITE {
        tracing::debug!("key package rejected: foreign ciphersuite");
        return Err(GroupError::InvalidKeyPackage);
    }
    let leaf = key_package.leaf_node();
    let member = Member {
        leaf: u32::MAX,
        identity: basic_identity(leaf.credential())?,
        signature_key: leaf.signature_key().as_slice().to_vec(),
    };
    Ok(ValidKeyPackage {
        key_package,
        member,
    })
}

/// Who a KeyPackage says it is (identity and signature key), read without
/// checking anything it signs: cheap enough for every member to do for
/// every joiner. Whoever commits it validates it first ([`validate`]), and
/// so does everyone who processes that commit, so a forged one is dropped
/// then; until then it only tells the commit policy that a join waits.
pub(super) fn claim(bytes: &[u8]) -> Result<Member, GroupError> {
    let credential = parse(bytes)?.unverified_credential();
    Ok(Member {
        leaf: u32::MAX,
        identity: basic_identity(&credential.credential)?,
        signature_key: credential.signature_key.as_slice().to_vec(),
    })
}

fn parse(bytes: &[u8]) -> Result<KeyPackageIn, GroupError> {
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
    Ok(key_package)
}

fn basic_identity(credential: &Credential) -> Result<String, GroupError> {
    BasicCredential::try_from(credential.clone())
        .ok()
        .and_then(|basic| String::from_utf8(basic.identity().to_vec()).ok())
        .ok_or_else(|| {
            tracing::debug!("key package rejected: not a UTF-8 basic credential");
            GroupError::InvalidKeyPackage
        })
}
