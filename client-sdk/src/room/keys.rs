//! The room's SFrame keys ([`MediaKeys`], shared with the browser's wasm
//! engine) behind a lock, delivering each opened frame to its track.

use super::events::DecryptFailures;
use super::media::{DecryptedFrame, FrameSink};
use super::sender::SendFrameError;
use client_core::{EncryptError, FrameOrigin, MediaKeys, OpenedFrame};
use e2ee::frame::{DecryptConfig, MediaCodec, Suite};
use e2ee::group::Member;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tracing::trace;

/// What travels with a frame through the decryptor.
pub(crate) struct FrameCtx {
    pub(crate) sink: Arc<FrameSink>,
    pub(crate) timestamp: u32,
}

impl FrameOrigin for FrameCtx {
    fn publisher(&self) -> &str {
        &self.sink.participant_id
    }
}

/// The keys and counters of one room.
pub(crate) struct Keys {
    state: Mutex<MediaKeys<FrameCtx>>,
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
            state: Mutex::new(MediaKeys::new(suite, cfg)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MediaKeys<FrameCtx>> {
        ignore_poison(&self.state)
    }

    /// Records a participant's identity from the signaling roster, and
    /// delivers the frames of its tracks that were waiting for it.
    pub(crate) fn learn_identity(&self, pid: &str, identity: &str) {
        let mut keys = self.lock();
        keys.learn_identity(pid, identity);
        deliver_ready(&mut keys);
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
        let mut keys = self.lock();
        keys.install_epoch(now, epoch, base_key, own_leaf, members);
        deliver_ready(&mut keys);
    }

    /// We left the group: nothing is sent or accepted until the next epoch.
    pub(crate) fn forget(&self) {
        self.lock().forget();
    }

    pub(crate) fn encrypt(
        &self,
        codec: MediaCodec,
        frame: &[u8],
    ) -> Result<Vec<u8>, SendFrameError> {
        self.lock().encrypt(codec, frame).map_err(|e| match e {
            EncryptError::NoKey => SendFrameError::NoKey,
            other => SendFrameError::Encrypt(other.to_string()),
        })
    }

    pub(crate) fn decrypt(&self, now: Instant, codec: MediaCodec, frame: &[u8], ctx: FrameCtx) {
        let mut keys = self.lock();
        keys.decrypt(now, codec, frame, ctx);
        deliver_ready(&mut keys);
    }

    /// Expires buffered frames and old epochs.
    pub(crate) fn tick(&self, now: Instant) {
        self.lock().tick(now);
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.lock().next_timeout()
    }

    pub(crate) fn count_incomplete(&self, n: u64) {
        self.lock().count_incomplete(n);
    }

    pub(crate) fn count_malformed(&self) {
        self.lock().count_malformed();
    }

    pub(crate) fn failures(&self) -> DecryptFailures {
        self.lock().failures()
    }

    /// Every SFrame key this member holds right now, as `(kid, key, salt)`:
    /// for tests that prove what a member can and cannot decrypt.
    #[cfg(feature = "test-util")]
    pub(crate) fn held_keys(&self) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
        self.lock().held_keys()
    }
}

/// Hands every frame that opened and passed attribution to its track.
fn deliver_ready(keys: &mut MediaKeys<FrameCtx>) {
    while let Some(OpenedFrame {
        plaintext,
        identity,
        epoch,
        ctx,
    }) = keys.poll_frame()
    {
        let out = DecryptedFrame {
            participant_id: ctx.sink.participant_id.clone(),
            identity: identity.to_string(),
            track_id: ctx.sink.track_id.clone(),
            timestamp: ctx.timestamp,
            keyframe: ctx.sink.codec.is_keyframe(&plaintext),
            epoch,
            data: plaintext,
        };
        if ctx.sink.tx.try_send(out).is_err() {
            trace!("app is not reading a track; frame dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use e2ee::frame::FrameEncryptor;
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

    fn sink(pid: &str) -> (Arc<FrameSink>, mpsc::Receiver<DecryptedFrame>) {
        let (tx, rx) = mpsc::channel(4);
        let sink = Arc::new(FrameSink {
            tx,
            codec: MediaCodec::Opus,
            participant_id: pid.into(),
            track_id: "t".into(),
        });
        (sink, rx)
    }

    /// Media can overtake the roster change that names its publisher: the
    /// frame waits, and reaches its track once the roster catches up.
    #[test]
    fn a_frame_ahead_of_its_publishers_identity_reaches_the_track_later() {
        let now = Instant::now();
        let keys = Keys::new(Suite::default(), DecryptConfig::default());
        let key = [0x3c; 16];
        keys.install_epoch(now, 0, &key, 0, &members());
        let mut bob = FrameEncryptor::new(Suite::default(), 1);
        bob.set_epoch(0, &key).unwrap();
        let mut sealed = Vec::new();
        bob.encrypt_media(MediaCodec::Opus, b"early", &mut sealed)
            .unwrap();
        let (sink, mut rx) = sink("p-bob");
        keys.decrypt(
            now,
            MediaCodec::Opus,
            &sealed,
            FrameCtx { sink, timestamp: 0 },
        );
        assert!(rx.try_recv().is_err(), "waits");
        keys.learn_identity("p-bob", "bob");
        let frame = rx.try_recv().expect("delivered once bob is named");
        assert_eq!(frame.identity, "bob");
        assert_eq!(keys.failures().total(), 0);
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
