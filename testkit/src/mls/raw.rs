//! A group member made with openmls directly, for the delivery service's
//! tests: the `e2ee` code only makes honest-sized messages, and a hostile
//! member may pad its own leaf node (RFC 9420 allows an `application_id`
//! extension in any leaf without listing it in the leaf's capabilities).
//! Every message it makes is valid MLS, in the rooms' ciphersuite and
//! wire format, so `e2ee` clients and the delivery service take it as
//! they would an honest client's.

use openmls::prelude::{
    ApplicationIdExtension, BasicCredential, Ciphersuite, CredentialWithKey, Extension, Extensions,
    GroupId, KeyPackage, KeyPackageIn, LeafNode, LeafNodeParameters, MlsGroup,
    MlsGroupCreateConfig, MlsMessageBodyIn, MlsMessageIn, MlsMessageOut, OpenMlsProvider as _,
    PURE_PLAINTEXT_WIRE_FORMAT_POLICY, ProcessedMessageContent, ProtocolVersion,
    tls_codec::Deserialize as _,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

/// The rooms' ciphersuite (the clients' fixed choice).
const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

fn bytes(msg: &MlsMessageOut) -> Vec<u8> {
    msg.to_bytes().expect("encode")
}

/// A leaf-node extension of `bytes` bytes of padding (none for 0).
fn padding(bytes: usize) -> Extensions<LeafNode> {
    if bytes == 0 {
        return Extensions::empty();
    }
    let ext = Extension::ApplicationId(ApplicationIdExtension::new(&vec![0x5a; bytes]));
    Extensions::single(ext).expect("application_id is a leaf-node extension")
}

/// One participant's MLS state, made with openmls directly.
pub struct RawMember {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    group: Option<MlsGroup>,
}

impl RawMember {
    /// A member whose basic credential names `identity`.
    pub fn new(identity: &str) -> Self {
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).expect("signature key");
        let credential = CredentialWithKey {
            credential: BasicCredential::new(identity.as_bytes().to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        Self {
            provider: OpenMlsRustCrypto::default(),
            signer,
            credential,
            group: None,
        }
    }

    /// The provider, signer and group, borrowed apart.
    fn parts(&mut self) -> (&OpenMlsRustCrypto, &SignatureKeyPair, &mut MlsGroup) {
        let group = self.group.as_mut().expect("in a group");
        (&self.provider, &self.signer, group)
    }

    /// A KeyPackage whose leaf carries `leaf_padding` bytes of padding.
    pub fn key_package(&self, leaf_padding: usize) -> Vec<u8> {
        let bundle = KeyPackage::builder()
            .leaf_node_extensions(padding(leaf_padding))
            .build(SUITE, &self.provider, &self.signer, self.credential.clone())
            .expect("key package");
        bytes(&MlsMessageOut::from(bundle.key_package().clone()))
    }

    /// Founds the group `group_id` alone, its leaf carrying `leaf_padding`
    /// bytes of padding.
    pub fn found(&mut self, group_id: &[u8], leaf_padding: usize) {
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(SUITE)
            .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .with_leaf_node_extensions(padding(leaf_padding))
            .expect("leaf extensions")
            .build();
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &config,
            GroupId::from_slice(group_id),
            self.credential.clone(),
        )
        .expect("group");
        self.group = Some(group);
    }

    /// The GroupInfo with the ratchet tree.
    pub fn group_info(&self) -> Vec<u8> {
        let group = self.group.as_ref().expect("in a group");
        bytes(
            &group
                .export_group_info(self.provider.crypto(), &self.signer, true)
                .expect("group info"),
        )
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.group.as_ref().expect("in a group").epoch().as_u64()
    }

    /// A commit adding the members of `key_packages` (MLSMessages) and its
    /// Welcome; pending until [`Self::settle`].
    pub fn add(&mut self, key_packages: &[&[u8]]) -> (Vec<u8>, Vec<u8>) {
        let kps: Vec<KeyPackage> = key_packages
            .iter()
            .map(|b| {
                let MlsMessageBodyIn::KeyPackage(kp) = MlsMessageIn::tls_deserialize_exact(b)
                    .expect("an MLSMessage")
                    .extract()
                else {
                    panic!("not a KeyPackage")
                };
                KeyPackageIn::validate(kp, self.provider.crypto(), ProtocolVersion::Mls10)
                    .expect("valid KeyPackage")
            })
            .collect();
        let (provider, signer, group) = self.parts();
        let (commit, welcome, _) = group.add_members(provider, signer, &kps).expect("add");
        (bytes(&commit), bytes(&welcome))
    }

    /// A self-update commit whose new leaf carries `leaf_padding` bytes of
    /// padding; pending until [`Self::settle`].
    pub fn self_update(&mut self, leaf_padding: usize) -> Vec<u8> {
        let params = LeafNodeParameters::builder()
            .with_extensions(padding(leaf_padding))
            .build();
        let (provider, signer, group) = self.parts();
        bytes(
            &group
                .self_update(provider, signer, params)
                .expect("self-update")
                .into_commit(),
        )
    }

    /// The pending commit was accepted (merge it) or refused (drop it).
    pub fn settle(&mut self, accepted: bool) {
        let (provider, _, group) = self.parts();
        if accepted {
            group.merge_pending_commit(provider).expect("merge");
        } else {
            group
                .clear_pending_commit(provider.storage())
                .expect("clear");
        }
    }

    /// Applies another member's commit (an MLSMessage).
    pub fn process_commit(&mut self, commit: &[u8]) {
        let message = MlsMessageIn::tls_deserialize_exact(commit)
            .expect("an MLSMessage")
            .try_into_protocol_message()
            .expect("a protocol message");
        let (provider, _, group) = self.parts();
        let processed = group.process_message(provider, message).expect("process");
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
            panic!("not a commit")
        };
        group.merge_staged_commit(provider, *staged).expect("merge");
    }
}
