//! The room's SFrame keys: one encryptor for everything this member sends
//! (its KID and counter are per sender, shared by its tracks) and one
//! decryptor for everything it receives (replay windows are per sender KID).

use super::events::DecryptFailures;
use super::media::{DecryptedFrame, FrameSink, SendFrameError};
use e2ee::frame::{
    DecryptConfig, Decrypted, DropReason, FrameDecryptor, FrameEncryptor, MediaCodec, Suite,
};
use e2ee::group::Member;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tracing::{debug, trace};

/// How many epochs' member lists are kept to name senders.
const EPOCHS_KEPT: usize = 4;

/// What travels with a frame through the decryptor.
pub(crate) struct FrameCtx {
    pub(crate) sink: Arc<FrameSink>,
    pub(crate) timestamp: u32,
}

struct State {
    suite: Suite,
    encryptor: FrameEncryptor,
    sending: bool,
    decryptor: FrameDecryptor<FrameCtx>,
    /// Leaf → identity, per epoch.
    members: BTreeMap<u64, HashMap<u32, String>>,
    /// Participant id → identity, from the signaling roster.
    identities: HashMap<String, String>,
    wrong_sender: u64,
    incomplete: u64,
    malformed_packets: u64,
}

/// The keys and counters of one room.
pub(crate) struct Keys {
    state: Mutex<State>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").finish_non_exhaustive()
    }
}

fn ignore_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Keys {
    pub(crate) fn new(suite: Suite, cfg: DecryptConfig) -> Self {
        Self {
            state: Mutex::new(State {
                suite,
                encryptor: FrameEncryptor::new(suite, 0),
                sending: false,
                decryptor: FrameDecryptor::new(suite, cfg),
                members: BTreeMap::new(),
                identities: HashMap::new(),
                wrong_sender: 0,
                incomplete: 0,
                malformed_packets: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        ignore_poison(&self.state)
    }

    /// Records a participant's identity from the signaling roster.
    pub(crate) fn learn_identity(&self, pid: &str, identity: &str) {
        self.lock()
            .identities
            .insert(pid.to_owned(), identity.to_owned());
    }

    /// A new epoch: send under it from now on, accept it on receive, and
    /// deliver frames that were waiting for it.
    pub(crate) fn install_epoch(
        &self,
        now: Instant,
        epoch: u64,
        base_key: &[u8],
        own_leaf: u32,
        members: &[Member],
    ) {
        let mut s = self.lock();
        s.members.insert(
            epoch,
            members
                .iter()
                .map(|m| (m.leaf, m.identity.clone()))
                .collect(),
        );
        while s.members.len() > EPOCHS_KEPT {
            s.members.pop_first();
        }
        s.encryptor.set_leaf(own_leaf);
        s.sending = s.encryptor.set_epoch(epoch, base_key).is_ok();
        if let Err(error) = s.decryptor.add_epoch(now, epoch, base_key) {
            debug!(%error, "installing receive keys failed");
        }
        while let Some(frame) = s.decryptor.poll_ready() {
            deliver(&mut s, frame);
        }
    }

    /// We left the group: nothing is sent or accepted until the next epoch.
    pub(crate) fn forget(&self) {
        let mut s = self.lock();
        s.sending = false;
        // A later group starts again at epoch 0; the encryptor refuses to
        // go back (it would restart an old key's counter), so start afresh.
        s.encryptor = FrameEncryptor::new(s.suite, 0);
        s.decryptor.clear();
        // The next group's epochs reuse the numbers; left in place, the old
        // group's higher epochs would be kept and the new ones evicted.
        s.members.clear();
    }

    pub(crate) fn encrypt(
        &self,
        codec: MediaCodec,
        frame: &[u8],
    ) -> Result<Vec<u8>, SendFrameError> {
        let mut s = self.lock();
        if !s.sending {
            return Err(SendFrameError::NoKey);
        }
        let mut out = Vec::with_capacity(frame.len() + 32);
        s.encryptor
            .encrypt_media(codec, frame, &mut out)
            .map_err(|e| SendFrameError::Encrypt(e.to_string()))?;
        Ok(out)
    }

    pub(crate) fn decrypt(&self, now: Instant, codec: MediaCodec, frame: &[u8], ctx: FrameCtx) {
        let mut s = self.lock();
        match s.decryptor.decrypt_media(now, codec, frame, ctx) {
            Ok(Some(frame)) => deliver(&mut s, frame),
            Ok(None) => trace!("frame buffered until its epoch"),
            Err(reason) => trace!(reason = reason.as_str(), "frame dropped"),
        }
        while let Some(frame) = s.decryptor.poll_ready() {
            deliver(&mut s, frame);
        }
    }

    /// Expires buffered frames and old epochs.
    pub(crate) fn tick(&self, now: Instant) {
        self.lock().decryptor.handle_timeout(now);
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.lock().decryptor.poll_timeout()
    }

    pub(crate) fn count_incomplete(&self, n: u64) {
        self.lock().incomplete += n;
    }

    pub(crate) fn count_malformed(&self) {
        self.lock().malformed_packets += 1;
    }

    pub(crate) fn failures(&self) -> DecryptFailures {
        let s = self.lock();
        let d = s.decryptor.drops();
        DecryptFailures {
            malformed: d.get(DropReason::Malformed) + s.malformed_packets,
            auth_failed: d.get(DropReason::AuthFailed),
            replay: d.get(DropReason::Replay),
            unknown_kid: d.get(DropReason::UnknownKid),
            wrong_epoch: d.get(DropReason::WrongEpoch),
            wrong_sender: s.wrong_sender,
            incomplete: s.incomplete,
        }
    }

    /// Every SFrame key this member holds right now, as `(kid, key, salt)`:
    /// for tests that prove what a member can and cannot decrypt.
    #[cfg(feature = "test-util")]
    pub(crate) fn held_keys(&self) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
        self.lock().decryptor.held_keys()
    }
}

/// Hands a decrypted frame to its track, if its sender is the track's
/// publisher. The SFU chooses which track a packet arrives on; the MLS
/// credential says who encrypted it. They must agree.
fn deliver(s: &mut State, frame: Decrypted<FrameCtx>) {
    let identity = s
        .members
        .get(&frame.epoch)
        .and_then(|m| m.get(&frame.sender_leaf))
        .cloned();
    let expected = s.identities.get(&frame.ctx.sink.participant_id);
    let Some(identity) = identity.filter(|id| Some(id) == expected) else {
        s.wrong_sender += 1;
        return;
    };
    let out = DecryptedFrame {
        participant_id: frame.ctx.sink.participant_id.clone(),
        identity,
        track_id: frame.ctx.sink.track_id.clone(),
        timestamp: frame.ctx.timestamp,
        keyframe: frame.ctx.sink.codec.is_keyframe(&frame.plaintext),
        epoch: frame.epoch,
        data: frame.plaintext,
    };
    if frame.ctx.sink.tx.try_send(out).is_err() {
        trace!("app is not reading a track; frame dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    fn members() -> Vec<Member> {
        ["alice", "bob"]
            .iter()
            .zip(0..)
            .map(|(id, leaf)| Member {
                leaf,
                identity: (*id).to_owned(),
                signature_key: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_new_group_after_a_long_one_still_names_its_senders() {
        let now = Instant::now();
        let keys = Keys::new(Suite::default(), DecryptConfig::default());
        keys.learn_identity("p-bob", "bob");
        for epoch in 0..6 {
            keys.install_epoch(now, epoch, &[epoch as u8; 16], 0, &members());
        }
        // Rejoined after a server restart: a new group, from epoch 0 again.
        keys.forget();
        let key = [0xa5; 16];
        keys.install_epoch(now, 0, &key, 0, &members());

        let mut bob = FrameEncryptor::new(Suite::default(), 1);
        bob.set_epoch(0, &key).unwrap();
        let mut sealed = Vec::new();
        bob.encrypt_media(MediaCodec::Opus, b"frame", &mut sealed)
            .unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        let sink = Arc::new(FrameSink {
            tx,
            codec: MediaCodec::Opus,
            participant_id: "p-bob".into(),
            track_id: "t".into(),
        });
        let ctx = FrameCtx { sink, timestamp: 0 };
        keys.decrypt(now, MediaCodec::Opus, &sealed, ctx);

        assert_eq!(keys.failures().wrong_sender, 0);
        let frame = rx.try_recv().expect("bob's frame delivered");
        assert_eq!(
            (frame.identity.as_str(), frame.data.as_slice()),
            ("bob", &b"frame"[..])
        );
    }
}
