//! Real openmls groups over the store: every kind of record openmls writes
//! in create, add, Welcome join, proposals, commits with and without a
//! path, removal and application messages, read back by reloading the
//! groups from their stores and carrying on with the reloaded copies.

use openmls::prelude::{
    BasicCredential, Ciphersuite, CredentialWithKey, GroupId, KeyPackage, LeafNodeIndex,
    LeafNodeParameters, MlsGroup, MlsGroupCreateConfig, MlsMessageBodyIn, MlsMessageIn,
    MlsMessageOut, PURE_PLAINTEXT_WIRE_FORMAT_POLICY, ProcessedMessageContent, PublicGroup,
    StagedWelcome, tls_codec::Deserialize as _,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::RustCrypto;
use openmls_traits::OpenMlsProvider;

use crate::{MlsProvider, MlsStore};

const SUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

struct Client {
    provider: MlsProvider,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
    group: Option<MlsGroup>,
}

impl Client {
    fn new(name: &str) -> Self {
        Self::with(name, MlsProvider::new())
    }

    /// A client over a store that keeps only what a live group reads.
    fn live(name: &str) -> Self {
        Self::with(name, MlsProvider::for_live_groups())
    }

    fn with(name: &str, provider: MlsProvider) -> Self {
        let signer = SignatureKeyPair::new(SUITE.signature_algorithm()).unwrap();
        // The signature key pair record.
        signer.store(provider.storage()).unwrap();
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.to_public_vec().into(),
        };
        Self {
            provider,
            signer,
            credential,
            group: None,
        }
    }

    fn group(&mut self) -> &mut MlsGroup {
        self.group.as_mut().unwrap()
    }

    /// Founds group "room" (epoch 0, alone).
    fn found(&mut self) {
        let id = GroupId::from_slice(b"room");
        let group = MlsGroup::new_with_group_id(
            &self.provider,
            &self.signer,
            &config(),
            id,
            self.credential.clone(),
        );
        self.group = Some(group.unwrap());
    }

    /// Runs `f` on our group with our provider and signer.
    fn op<R>(&mut self, f: impl FnOnce(&mut MlsGroup, &MlsProvider, &SignatureKeyPair) -> R) -> R {
        f(self.group.as_mut().unwrap(), &self.provider, &self.signer)
    }

    fn key_package(&self) -> KeyPackage {
        KeyPackage::builder()
            .build(SUITE, &self.provider, &self.signer, self.credential.clone())
            .unwrap()
            .key_package()
            .clone()
    }

    fn join(&mut self, welcome: &MlsMessageOut) {
        let MlsMessageBodyIn::Welcome(welcome) = parse(welcome).extract() else {
            panic!("not a Welcome");
        };
        let config = config().join_config().clone();
        let group = StagedWelcome::new_from_welcome(&self.provider, &config, welcome, None)
            .unwrap()
            .into_group(&self.provider)
            .unwrap();
        self.group = Some(group);
    }

    fn send(&mut self, text: &[u8]) -> MlsMessageOut {
        self.op(|g, p, s| g.create_message(p, s, text).unwrap())
    }

    /// Processes a message from the group: returns application data, stores
    /// proposals, merges commits.
    fn receive(&mut self, message: &MlsMessageOut) -> Option<Vec<u8>> {
        let message = parse(message).try_into_protocol_message().unwrap();
        let provider = &self.provider;
        let group = self.group.as_mut().unwrap();
        let processed = group.process_message(provider, message).unwrap();
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(m) => return Some(m.into_bytes()),
            ProcessedMessageContent::ProposalMessage(p) => {
                group
                    .store_pending_proposal(provider.storage(), *p)
                    .unwrap();
            }
            ProcessedMessageContent::StagedCommitMessage(c) => {
                group.merge_staged_commit(provider, *c).unwrap();
            }
            _ => panic!("unexpected message"),
        }
        None
    }

    fn merge(&mut self) {
        self.op(|g, p, _| g.merge_pending_commit(p).unwrap());
    }

    /// Replaces the live group by one loaded from the store, after checking
    /// that the two agree.
    fn reload(&mut self) {
        let live = self.group.take().unwrap();
        let loaded = MlsGroup::load(self.provider.storage(), live.group_id())
            .unwrap()
            .expect("group stored");
        assert_eq!(loaded.epoch(), live.epoch());
        assert_eq!(loaded.own_leaf_index(), live.own_leaf_index());
        assert_eq!(
            loaded.epoch_authenticator().as_slice(),
            live.epoch_authenticator().as_slice()
        );
        assert_eq!(
            loaded.pending_proposals().count(),
            live.pending_proposals().count()
        );
        let export = |g: &MlsGroup| {
            g.export_secret(self.provider.crypto(), "l", b"c", 32)
                .unwrap()
        };
        assert_eq!(export(&loaded), export(&live));
        let members = |g: &MlsGroup| {
            g.members()
                .map(|m| (m.index, m.signature_key, m.encryption_key))
                .collect::<Vec<_>>()
        };
        assert_eq!(members(&loaded), members(&live));
        assert_eq!(loaded.export_ratchet_tree(), live.export_ratchet_tree());
        self.group = Some(loaded);
    }
}

fn config() -> MlsGroupCreateConfig {
    MlsGroupCreateConfig::builder()
        .ciphersuite(SUITE)
        .max_past_epochs(4)
        // Handshakes as PublicMessages, as the delivery service needs.
        .wire_format_policy(PURE_PLAINTEXT_WIRE_FORMAT_POLICY)
        .use_ratchet_tree_extension(true)
        .build()
}

fn parse(message: &MlsMessageOut) -> MlsMessageIn {
    MlsMessageIn::tls_deserialize_exact(message.to_bytes().unwrap()).unwrap()
}

#[test]
fn groups_reloaded_from_the_store_carry_on() {
    let mut alice = Client::new("alice");
    let (mut bob, mut carol) = (Client::new("bob"), Client::new("carol"));
    alice.found();

    // Add with a Welcome (KeyPackage records read and deleted on join).
    let kps = [bob.key_package(), carol.key_package()];
    let (_, welcome, _) = alice.op(|g, p, s| g.add_members(p, s, &kps).unwrap());
    alice.merge();
    bob.join(&welcome);
    carol.join(&welcome);
    // A message of epoch 1, delivered only after later commits.
    let late = alice.send(b"from epoch 1");

    // A standalone Update proposal (proposal queue, own leaf node and HPKE
    // key pair records), stored by everyone, then reloaded while pending.
    let (proposal, _) = bob.op(|g, p, s| {
        g.propose_self_update(p, s, LeafNodeParameters::default())
            .unwrap()
    });
    alice.receive(&proposal);
    carol.receive(&proposal);
    for c in [&mut alice, &mut bob, &mut carol] {
        c.reload();
    }
    let (commit, _, _) = alice.op(|g, p, s| g.commit_to_pending_proposals(p, s).unwrap());
    alice.merge();
    bob.receive(&commit);
    carol.receive(&commit);

    // A commit with a path (epoch key pairs), then a removal.
    let bundle = carol.op(|g, p, s| g.self_update(p, s, LeafNodeParameters::default()).unwrap());
    carol.merge();
    alice.receive(bundle.commit());
    bob.receive(bundle.commit());
    let (remove, _, _) =
        alice.op(|g, p, s| g.remove_members(p, s, &[LeafNodeIndex::new(2)]).unwrap());
    alice.merge();
    bob.receive(&remove);
    carol.receive(&remove);
    assert!(!carol.group().is_active());

    // Reloaded: past epochs' message secrets decode (the epoch-1 message),
    // and the groups go on exchanging messages and commits.
    alice.reload();
    bob.reload();
    assert_eq!(bob.receive(&late).as_deref(), Some(&b"from epoch 1"[..]));
    let hi = alice.send(b"hi");
    assert_eq!(bob.receive(&hi).as_deref(), Some(&b"hi"[..]));
    let bundle = bob.op(|g, p, s| g.self_update(p, s, LeafNodeParameters::default()).unwrap());
    bob.merge();
    alice.receive(bundle.commit());
    alice.reload();
    bob.reload();
    assert_eq!(alice.group().epoch().as_u64(), 5);
    assert_eq!(alice.group().members().count(), 2);

    // Leaving deletes the group's records.
    let id = bob.group().group_id().clone();
    let mut group = bob.group.take().unwrap();
    let provider = &bob.provider;
    group.delete(provider.storage()).unwrap();
    assert!(MlsGroup::load(provider.storage(), &id).unwrap().is_none());
    // Signature keys are the application's: still stored.
    let public = bob.signer.to_public_vec();
    let read = SignatureKeyPair::read(provider.storage(), &public, SUITE.signature_algorithm());
    assert_eq!(read.map(|k| k.to_public_vec()), Some(public));
}

/// Without the records only a reload reads (the tree, the message
/// secrets), groups still join, propose, commit with and without a path,
/// remove, and open a message from a past epoch; a reload is refused.
#[test]
fn live_groups_need_no_tree_or_message_secrets_records() {
    use crate::{Record, StoreError};

    let mut alice = Client::live("alice");
    let (mut bob, mut carol) = (Client::live("bob"), Client::live("carol"));
    alice.found();
    let kps = [bob.key_package(), carol.key_package()];
    let (_, welcome, _) = alice.op(|g, p, s| g.add_members(p, s, &kps).unwrap());
    alice.merge();
    bob.join(&welcome);
    carol.join(&welcome);
    let late = alice.send(b"from epoch 1");

    let (proposal, _) = bob.op(|g, p, s| {
        g.propose_self_update(p, s, LeafNodeParameters::default())
            .unwrap()
    });
    alice.receive(&proposal);
    carol.receive(&proposal);
    let (commit, _, _) = alice.op(|g, p, s| g.commit_to_pending_proposals(p, s).unwrap());
    alice.merge();
    bob.receive(&commit);
    carol.receive(&commit);
    let bundle = carol.op(|g, p, s| g.self_update(p, s, LeafNodeParameters::default()).unwrap());
    carol.merge();
    alice.receive(bundle.commit());
    bob.receive(bundle.commit());
    let (remove, _, _) =
        alice.op(|g, p, s| g.remove_members(p, s, &[LeafNodeIndex::new(2)]).unwrap());
    alice.merge();
    bob.receive(&remove);
    carol.receive(&remove);
    assert!(!carol.group().is_active());

    assert_eq!(bob.receive(&late).as_deref(), Some(&b"from epoch 1"[..]));
    let hi = alice.send(b"hi");
    assert_eq!(bob.receive(&hi).as_deref(), Some(&b"hi"[..]));
    assert_eq!(alice.group().epoch().as_u64(), 4);
    assert_eq!(
        alice.group().epoch_authenticator().as_slice(),
        bob.group().epoch_authenticator().as_slice()
    );

    let id = alice.group().group_id().clone();
    let reload = MlsGroup::load(alice.provider.storage(), &id);
    assert_eq!(reload.err(), Some(StoreError::NotKept(Record::Tree)));
}

/// The delivery service's view: a `PublicGroup` from the founder's
/// GroupInfo, following commits, reloads from the store.
#[test]
fn a_public_group_reloads_from_the_store() {
    let mut alice = Client::new("alice");
    let bob = Client::new("bob");
    alice.found();
    let info = alice.op(|g, p, s| g.export_group_info(p.crypto(), s, true).unwrap());
    let MlsMessageBodyIn::GroupInfo(info) = parse(&info).extract() else {
        panic!("not a GroupInfo");
    };
    let tree = info
        .extensions()
        .ratchet_tree()
        .unwrap()
        .ratchet_tree()
        .clone();
    let (crypto, store) = (RustCrypto::default(), MlsStore::new());
    let (mut public, _) = PublicGroup::from_external(
        &crypto,
        &store,
        tree,
        info,
        openmls::prelude::ProposalStore::new(),
    )
    .unwrap();

    let (commit, _, _) = alice.op(|g, p, s| g.add_members(p, s, &[bob.key_package()]).unwrap());
    alice.merge();
    let MlsMessageBodyIn::PublicMessage(message) = parse(&commit).extract() else {
        panic!("not a PublicMessage");
    };
    let processed = public.process_message(&crypto, message).unwrap();
    let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
        panic!("not a commit");
    };
    public.merge_commit(&store, *staged).unwrap();

    let loaded = PublicGroup::load(&store, public.group_id())
        .unwrap()
        .expect("stored");
    assert_eq!(loaded.group_context(), public.group_context());
    assert_eq!(loaded.export_ratchet_tree(), public.export_ratchet_tree());
    assert_eq!(loaded.members().count(), 2);
    assert_eq!(loaded.group_context().epoch(), alice.group().epoch());
}

/// The proposal queue: a removed proposal leaves queue and store; a queue
/// naming a proposal that is gone is a typed error.
#[test]
fn the_proposal_queue_follows_removals() {
    use crate::{Record, StoreError};
    use openmls::{ciphersuite::hash_ref::ProposalRef, prelude::QueuedProposal};
    use openmls_traits::storage::StorageProvider as _;

    let mut alice = Client::new("alice");
    let mut bob = Client::new("bob");
    alice.found();
    let (_, welcome, _) = alice.op(|g, p, s| g.add_members(p, s, &[bob.key_package()]).unwrap());
    alice.merge();
    bob.join(&welcome);

    let propose = |bob: &mut Client| {
        bob.op(|g, p, s| {
            g.propose_self_update(p, s, LeafNodeParameters::default())
                .unwrap()
        })
    };
    let (first, first_ref) = propose(&mut bob);
    let (second, second_ref) = propose(&mut bob);
    alice.receive(&first);
    alice.receive(&second);
    let id = alice.group().group_id().clone();
    let store = alice.provider.storage();
    let queued =
        |store: &MlsStore| store.queued_proposals::<GroupId, ProposalRef, QueuedProposal>(&id);
    let refs: Vec<ProposalRef> = queued(store).unwrap().into_iter().map(|(r, _)| r).collect();
    assert_eq!(refs, [first_ref.clone(), second_ref.clone()]);

    let provider = &alice.provider;
    alice
        .group
        .as_mut()
        .unwrap()
        .remove_pending_proposal(provider.storage(), &first_ref)
        .unwrap();
    let store = alice.provider.storage();
    let refs: Vec<ProposalRef> = store.queued_proposal_refs(&id).unwrap();
    assert_eq!(refs, std::slice::from_ref(&second_ref));
    let record = Record::QueuedProposal;
    let gone = crate::codec::encode(record, &(&id, &first_ref)).unwrap();
    assert_eq!(store.get::<QueuedProposal>(record, gone), Ok(None));

    let second_key = crate::codec::encode(record, &(&id, &second_ref)).unwrap();
    store.delete(record, second_key);
    assert_eq!(queued(store).err(), Some(StoreError::MissingProposal));
}
