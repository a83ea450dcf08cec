//! [`MlsClient`]: one participant's MLS state (identity, KeyPackages, at
//! most one group) and the operations that do not change the epoch.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use mls_store::MlsProvider;
use openmls::prelude::{
    BasicCredential, CredentialWithKey, ExportSecretError, GroupId, KeyPackage, KeyPackageBundle,
    KeyPackageRef, MlsGroup, MlsMessageBodyIn, MlsMessageIn, MlsMessageOut, OpenMlsProvider as _,
    StagedWelcome, Welcome, tls_codec::Deserialize as _,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_traits::storage::StorageProvider as _;

use super::{
    GroupStats, Member, MlsConfig,
    config::CIPHERSUITE,
    error::{GroupError, from_welcome, logged},
    history::RosterHistory,
    key_package,
    verification::code_from_authenticator,
};

/// The SFrame base key exporter label (RFC 9605 §5.2).
const SFRAME_EXPORTER_LABEL: &str = "SFrame 1.0 Base Key";

/// HKDF-Expand yields at most 255 hash blocks (RFC 5869 §2.3); SHA-256.
const MAX_EXPORT_LEN: usize = 255 * 32;

/// One participant's MLS client: a fresh Ed25519 identity, its KeyPackages
/// and at most one group.
///
/// Sans-IO: every method takes or returns TLS-serialized `MLSMessage` bytes
/// and the caller moves them through the delivery service. The provider
/// (`openmls_rust_crypto`'s crypto, `mls-store`'s in-memory storage) is
/// owned and never shared; all keys stay inside it and never appear in
/// `Debug` or logs.
///
/// ```
/// use e2ee::group::{MlsClient, MlsConfig, Processed};
///
/// let mut alice = MlsClient::new("alice", MlsConfig::default())?;
/// let mut bob = MlsClient::new("bob", MlsConfig::default())?;
/// alice.create_group(b"room-1")?;
/// let _for_the_delivery_service = alice.group_info()?;
///
/// let bob_kp = bob.key_package()?;
/// let commit = alice.commit(&[&bob_kp], &[])?;
/// // ... the delivery service accepts the commit for this epoch ...
/// alice.merge_pending_commit()?;
/// assert!(bob.join(commit.welcome.as_deref().unwrap())?);
/// assert_eq!(alice.verification_code(), bob.verification_code());
///
/// let ct = alice.encrypt_application(b"hi")?;
/// match bob.process(&ct)? {
///     Processed::Application { sender, data } => {
///         assert_eq!((sender.identity.as_str(), data.as_slice()), ("alice", &b"hi"[..]));
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), e2ee::group::GroupError>(())
/// ```
pub struct MlsClient {
    pub(super) provider: MlsProvider,
    pub(super) signer: SignatureKeyPair,
    pub(super) credential: CredentialWithKey,
    pub(super) identity: String,
    pub(super) cfg: MlsConfig,
    pub(super) group: Option<MlsGroup>,
    pub(super) history: RosterHistory,
    pub(super) stats: GroupStats,
    /// The roster of one epoch, built once: a member of a big room asks
    /// for it on every log entry, and building it walks every leaf's
    /// credential. Keyed by epoch, and emptied whenever `group` is
    /// replaced; a `Mutex` so that `members` can fill it through `&self`.
    pub(super) roster: Mutex<Option<(u64, Arc<[Member]>)>>,
}

impl fmt::Debug for MlsClient {
    // By hand: the provider's derived Debug would print its key store.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MlsClient")
            .field("identity", &self.identity)
            .field("epoch", &self.epoch())
            .field("own_leaf", &self.own_leaf())
            .field("members", &self.group.as_ref().map(|g| g.members().count()))
            .field("pending_commit", &self.has_pending_commit())
            .finish_non_exhaustive()
    }
}

impl MlsClient {
    /// A client with a fresh Ed25519 signature key and a BasicCredential
    /// whose identity is the UTF-8 bytes of `identity` (must not be empty).
    pub fn new(identity: &str, cfg: MlsConfig) -> Result<Self, GroupError> {
        if identity.is_empty() {
            return Err(GroupError::InvalidArgument);
        }
        let signer = SignatureKeyPair::new(CIPHERSUITE.signature_algorithm())
            .map_err(|e| logged(GroupError::Crypto, "signature key generation failed", &e))?;
        let credential = CredentialWithKey {
            credential: BasicCredential::new(identity.as_bytes().to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        Ok(Self {
            provider: MlsProvider::for_live_groups(),
            signer,
            credential,
            identity: identity.to_owned(),
            cfg,
            group: None,
            history: RosterHistory::default(),
            stats: GroupStats::default(),
            roster: Mutex::new(None),
        })
    }

    /// Our credential identity. (Never logged: it is personal data.)
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Our Ed25519 signature public key (32 bytes).
    pub fn signature_key(&self) -> &[u8] {
        self.signer.public()
    }

    /// The configuration this client was created with.
    pub fn config(&self) -> &MlsConfig {
        &self.cfg
    }

    /// Counters of accepted and rejected messages.
    pub fn stats(&self) -> GroupStats {
        self.stats
    }

    /// A new single-use KeyPackage (TLS-serialized `MLSMessage`) to publish.
    /// Its private keys stay in this client until a Welcome consumes them.
    pub fn key_package(&mut self) -> Result<Vec<u8>, GroupError> {
        let bundle = KeyPackage::builder()
            .build(
                CIPHERSUITE,
                &self.provider,
                &self.signer,
                self.credential.clone(),
            )
            .map_err(|e| logged(GroupError::Internal, "key package creation failed", &e))?;
        MlsMessageOut::from(bundle.key_package().clone())
            .to_bytes()
            .map_err(|e| logged(GroupError::Internal, "key package encoding failed", &e))
    }

    /// Founds a group with id `group_id` (epoch 0, us alone at leaf 0).
    pub fn create_group(&mut self, group_id: &[u8]) -> Result<(), GroupError> {
        if self.group.is_some() {
            return Err(GroupError::AlreadyInGroup);
        }
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &self.cfg.create_config(),
            GroupId::from_slice(group_id),
            self.credential.clone(),
        )
        .map_err(|e| logged(GroupError::Internal, "group creation failed", &e))?;
        self.history.clear();
        self.forget_roster();
        self.group = Some(group);
        tracing::debug!("founded group");
        Ok(())
    }

    /// A signed GroupInfo (TLS-serialized `MLSMessage`) of the current epoch
    /// with the ratchet tree extension: the group's public state, for the
    /// delivery service to track (the founder sends the epoch-0 one). It
    /// holds no secret the group's confidentiality rests on; see
    /// `docs/e2ee.md` for what it reveals.
    pub fn group_info(&self) -> Result<Vec<u8>, GroupError> {
        let group = self.group.as_ref().ok_or(GroupError::NotInGroup)?;
        group
            .export_group_info(self.provider.crypto(), &self.signer, true)
            .map_err(|e| logged(GroupError::Internal, "group info export failed", &e))?
            .to_bytes()
            .map_err(|e| logged(GroupError::Internal, "group info encoding failed", &e))
    }

    /// Joins the group a Welcome invites us to.
    ///
    /// Returns `Ok(false)` if the Welcome has no secrets for any of our
    /// KeyPackages (it is for someone else). A Welcome that is for us but
    /// fails validation is `InvalidMessage`; the KeyPackage it named is then
    /// used up, so publish a new one. `AlreadyInGroup` if we have a group.
    pub fn join(&mut self, welcome: &[u8]) -> Result<bool, GroupError> {
        if self.group.is_some() {
            return Err(GroupError::AlreadyInGroup);
        }
        let message = MlsMessageIn::tls_deserialize_exact(welcome)
            .map_err(|e| logged(GroupError::InvalidMessage, "welcome parse failed", &e))?;
        let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
            tracing::debug!("join: not a Welcome message");
            return Err(GroupError::InvalidMessage);
        };
        if welcome.ciphersuite() != CIPHERSUITE {
            tracing::debug!("join: foreign ciphersuite");
            return Err(GroupError::InvalidMessage);
        }
        // openmls deletes the KeyPackage a Welcome names before it has
        // checked the rest, so a corrupted or forged Welcome would burn it.
        // Keep a copy and put it back unless the join succeeds.
        let ours = self.our_key_package(&welcome);
        let staged =
            StagedWelcome::new_from_welcome(&self.provider, &self.cfg.join_config(), welcome, None)
                .and_then(|staged| staged.into_group(&self.provider));
        let group = match staged {
            Ok(group) => group,
            Err(e) => {
                self.restore_key_package(ours);
                return match from_welcome(e) {
                    GroupError::WelcomeNotForUs => Ok(false),
                    other => Err(other),
                };
            }
        };
        self.history.clear();
        self.forget_roster();
        tracing::debug!(
            epoch = group.epoch().as_u64(),
            leaf = group.own_leaf_index().u32(),
            "joined group"
        );
        self.group = Some(group);
        Ok(true)
    }

    /// The first of our stored KeyPackages that `welcome` has secrets for.
    fn our_key_package(&self, welcome: &Welcome) -> Option<(KeyPackageRef, KeyPackageBundle)> {
        welcome.secrets().iter().find_map(|secrets| {
            let hash_ref = secrets.new_member();
            let bundle: Option<KeyPackageBundle> = self
                .provider
                .storage()
                .key_package(&hash_ref)
                .ok()
                .flatten();
            bundle.map(|b| (hash_ref, b))
        })
    }

    fn restore_key_package(&self, saved: Option<(KeyPackageRef, KeyPackageBundle)>) {
        if let Some((hash_ref, bundle)) = saved
            && let Err(e) = self
                .provider
                .storage()
                .write_key_package(&hash_ref, &bundle)
        {
            tracing::debug!(error = %e, "restoring key package failed");
        }
    }

    /// Drops the local group state (after removal, or before rejoining).
    /// A no-op without a group.
    pub fn leave_group(&mut self) {
        if let Some(mut group) = self.group.take() {
            // Deleting from storage lets a later Welcome re-create a group
            // with the same id.
            if let Err(e) = group.delete(self.provider.storage()) {
                tracing::debug!(error = %e, "deleting group state failed");
            }
        }
        self.history.clear();
        self.forget_roster();
    }

    /// Whether we are a member of a group.
    pub fn in_group(&self) -> bool {
        self.group.as_ref().is_some_and(MlsGroup::is_active)
    }

    /// The current group's id.
    pub fn group_id(&self) -> Option<Vec<u8>> {
        self.group
            .as_ref()
            .map(|g| g.group_id().as_slice().to_vec())
    }

    /// The current epoch.
    pub fn epoch(&self) -> Option<u64> {
        self.group.as_ref().map(|g| g.epoch().as_u64())
    }

    /// Our leaf index in the ratchet tree.
    pub fn own_leaf(&self) -> Option<u32> {
        self.group.as_ref().map(|g| g.own_leaf_index().u32())
    }

    /// The roster of the current epoch, ordered by leaf index. Empty without
    /// a group. Built once per epoch; the clone is a reference count.
    pub fn members(&self) -> Arc<[Member]> {
        let Some(group) = self.group.as_ref() else {
            return Arc::from([]);
        };
        let epoch = group.epoch().as_u64();
        let mut cached = self.roster.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, roster)) = cached.as_ref()
            && *at == epoch
        {
            return Arc::clone(roster);
        }
        let roster: Arc<[Member]> = group.members().map(|m| Member::from(&m)).collect();
        *cached = Some((epoch, Arc::clone(&roster)));
        roster
    }

    /// Empties the roster cache: `group` is being replaced, and a new group
    /// can be at the epoch the cached roster was built for.
    fn forget_roster(&mut self) {
        *self
            .roster
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Validates a KeyPackage (signatures, lifetime, ciphersuite, UTF-8 basic
    /// credential) and returns who it belongs to, with `leaf == u32::MAX`.
    /// The committer checks this against the signaling roster before adding.
    pub fn key_package_identity(&self, key_package: &[u8]) -> Result<Member, GroupError> {
        key_package::validate(self.provider.crypto(), key_package).map(|kp| kp.member)
    }

    /// Who a KeyPackage claims to be (identity and signature key, with
    /// `leaf == u32::MAX`), parsed without verifying its signatures,
    /// lifetime or suite. For deciding that a join waits: [`Self::commit`]
    /// validates every KeyPackage it adds (and skips invalid ones), and
    /// members processing that commit validate them again, so the claim
    /// is never trusted for membership. It skips the two signature
    /// verifications of [`Self::key_package_identity`], which every member
    /// of a big room would otherwise pay for every joiner.
    pub fn key_package_claim(&self, key_package: &[u8]) -> Result<Member, GroupError> {
        key_package::claim(key_package)
    }

    /// `MLS-Exporter(label, context, len)` of the current epoch (RFC 9420
    /// §8.5). `len` must be 1 to 8160 (HKDF-SHA-256's limit of 255 blocks),
    /// else `InvalidArgument`.
    pub fn export_secret(
        &self,
        label: &str,
        context: &[u8],
        len: usize,
    ) -> Result<Vec<u8>, GroupError> {
        let group = self.group.as_ref().ok_or(GroupError::NotInGroup)?;
        if !(1..=MAX_EXPORT_LEN).contains(&len) {
            return Err(GroupError::InvalidArgument);
        }
        group
            .export_secret(self.provider.crypto(), label, context, len)
            .map_err(|e| {
                let kind = match &e {
                    ExportSecretError::KeyLengthTooLong => GroupError::InvalidArgument,
                    ExportSecretError::GroupStateError(_) => GroupError::NotInGroup,
                    _ => GroupError::Crypto,
                };
                logged(kind, "export_secret failed", &e)
            })
    }

    /// The SFrame base key of the current epoch (RFC 9605 §5.2):
    /// `MLS-Exporter("SFrame 1.0 Base Key", "", nk)`.
    pub fn sframe_base_key(&self, nk: usize) -> Result<Vec<u8>, GroupError> {
        self.export_secret(SFRAME_EXPORTER_LABEL, b"", nk)
    }

    /// The current epoch's authenticator (RFC 9420 §8.7): equal for all
    /// members of the same epoch of the same group.
    pub fn epoch_authenticator(&self) -> Option<Vec<u8>> {
        self.group
            .as_ref()
            .map(|g| g.epoch_authenticator().as_slice().to_vec())
    }

    /// A code people compare out of band to detect a split or an injected
    /// member: 30 decimal digits in six space-separated groups of five.
    ///
    /// Derivation: the first 30 bytes of [`Self::epoch_authenticator`] as six
    /// 5-byte big-endian integers, each reduced mod 100000 and printed with
    /// five digits (the shape of Signal's safety numbers). It changes every
    /// epoch; members who processed the same commits show the same code.
    pub fn verification_code(&self) -> Option<String> {
        self.epoch_authenticator()
            .as_deref()
            .and_then(code_from_authenticator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_can_move_between_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<MlsClient>();
    }
}
