//! MLS messages as large as the delivery service lets through, made with
//! openmls directly: the e2ee crate only makes honest-sized ones. Every
//! message is valid (the server checks KeyPackages and commits against
//! the group's public state). A KeyPackage's bulk is a KeyPackage
//! extension of a private-use type its leaf lists in its capabilities
//! (the delivery service caps the leaf itself at 2 KiB, far under the
//! KeyPackage cap); a commit's is its authenticated data, and a chat
//! message's its plaintext.
//!
//! A commit cannot carry the bulk in the committer's new leaf: the
//! delivery service refuses leaves over 2 KiB before processing a commit
//! (such a leaf would stay in the tree every Welcome carries).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use openmls::prelude::{
    BasicCredential, Capabilities, Ciphersuite, CredentialWithKey, Extension, ExtensionType,
    Extensions, GroupId, KeyPackage, LeafNodeParameters, MlsGroup, MlsGroupCreateConfig,
    MlsMessageOut, OpenMlsProvider as _, PURE_PLAINTEXT_WIRE_FORMAT_POLICY, UnknownExtension,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

/// The rooms' ciphersuite (the clients' fixed choice).
const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// Raw bytes whose base64 is at most `cap` characters.
fn raw_within(cap: usize) -> usize {
    cap / 4 * 3
}

fn b64(msg: &MlsMessageOut) -> String {
    B64.encode(msg.to_bytes().expect("encode"))
}

/// A private-use extension type (RFC 9420 §17.1: 0xF000 to 0xFFFF).
const PADDING_EXTENSION: u16 = 0xf0a5;

fn padding(bytes: usize) -> Extensions<KeyPackage> {
    let ext = Extension::Unknown(PADDING_EXTENSION, UnknownExtension(vec![0x5a; bytes]));
    Extensions::single(ext).expect("an unknown extension is valid in a KeyPackage")
}

/// Leaf capabilities listing the padding extension (an extension in a
/// KeyPackage must be listed in its leaf's capabilities).
fn padding_capabilities() -> Capabilities {
    let ext = [ExtensionType::Unknown(PADDING_EXTENSION)];
    Capabilities::new(None, None, Some(&ext), None, None)
}

/// Finds the padding that brings `make(padding)`'s base64 to `cap`
/// characters or just under: the size grows by one byte per padding byte
/// (plus a length prefix), so one or two tries land it. `guess` keeps the
/// padding found for the next message of the same kind.
fn fit(cap: usize, guess: &mut Option<usize>, mut make: impl FnMut(usize) -> String) -> String {
    let mut pad = match *guess {
        Some(pad) => pad,
        None => raw_within(cap).saturating_sub(make(0).len() / 4 * 3 + 8),
    };
    loop {
        let msg = make(pad);
        if msg.len() <= cap {
            *guess = Some(pad);
            return msg;
        }
        pad = pad.saturating_sub(raw_within(msg.len() - cap + 4).max(1));
    }
}

/// One participant's MLS identity: a signature key and a basic credential
/// naming its token identity.
pub(crate) struct Identity {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

impl Identity {
    pub(crate) fn new(identity: &str) -> Self {
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).expect("signature key");
        let credential = CredentialWithKey {
            credential: BasicCredential::new(identity.as_bytes().to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        Self {
            provider: OpenMlsRustCrypto::default(),
            signer,
            credential,
        }
    }

    /// A fresh valid KeyPackage, base64, padded to `cap` characters.
    pub(crate) fn key_package(&self, cap: usize) -> String {
        fit(cap, &mut None, |pad| {
            let bundle = KeyPackage::builder()
                .leaf_node_capabilities(padding_capabilities())
                .key_package_extensions(padding(pad))
                .build(SUITE, &self.provider, &self.signer, self.credential.clone())
                .expect("key package");
            b64(&MlsMessageOut::from(bundle.key_package().clone()))
        })
    }

    /// Founds the group `group_id` (the room's, from `joined`) alone.
    pub(crate) fn found(self, group_id: &[u8]) -> Member {
        let config = MlsGroupCreateConfig::builder()
            .ciphersuite(SUITE)
            .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(true)
            .build();
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &config,
            GroupId::from_slice(group_id),
            self.credential.clone(),
        )
        .expect("group");
        Member {
            id: self,
            group,
            commit_pad: None,
            chat_pad: None,
        }
    }
}

/// The only member of a group: it commits self-updates carrying as much
/// authenticated data as the commit cap allows, and sends chat.
pub(crate) struct Member {
    id: Identity,
    group: MlsGroup,
    commit_pad: Option<usize>,
    chat_pad: Option<usize>,
}

impl Member {
    /// The epoch-0 GroupInfo with the ratchet tree, base64.
    pub(crate) fn group_info(&self) -> String {
        let info = self
            .group
            .export_group_info(self.id.provider.crypto(), &self.id.signer, true)
            .expect("group info");
        b64(&info)
    }

    /// The current epoch.
    pub(crate) fn epoch(&self) -> u64 {
        self.group.epoch().as_u64()
    }

    /// A self-update commit for the current epoch, base64, padded to `cap`
    /// characters with authenticated data; pending until [`Self::settle`].
    pub(crate) fn commit(&mut self, cap: usize) -> String {
        let Self {
            id,
            group,
            commit_pad,
            ..
        } = self;
        fit(cap, commit_pad, |pad| {
            if group.pending_commit().is_some() {
                group
                    .clear_pending_commit(id.provider.storage())
                    .expect("clear");
            }
            group.set_aad(vec![0x5a; pad]);
            let bundle = group
                .self_update(&id.provider, &id.signer, LeafNodeParameters::default())
                .expect("self-update");
            b64(&bundle.into_commit())
        })
    }

    /// The pending commit was accepted (merge it) or refused (drop it).
    pub(crate) fn settle(&mut self, accepted: bool) {
        let Self { id, group, .. } = self;
        if accepted {
            group.merge_pending_commit(&id.provider).expect("merge");
        } else {
            group
                .clear_pending_commit(id.provider.storage())
                .expect("clear");
        }
    }

    /// An application message encrypted for the current epoch, base64,
    /// padded to `cap` characters.
    pub(crate) fn chat(&mut self, cap: usize) -> String {
        let Self {
            id,
            group,
            chat_pad,
            ..
        } = self;
        fit(cap, chat_pad, |pad| {
            let msg = group
                .create_message(&id.provider, &id.signer, &vec![b'x'; pad])
                .expect("application message");
            b64(&msg)
        })
    }
}
