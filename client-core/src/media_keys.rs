//! A member's SFrame keys for media: one encryptor for everything it sends
//! (its KID and counter are per sender, shared by all of its tracks, so no
//! nonce repeats across tracks) and one decryptor for everything it
//! receives (replay windows are per sender KID), plus who may send what.
//!
//! Sans-IO and single-threaded: a shell installs each
//! [`Output::Epoch`](crate::Output::Epoch), feeds received frames with a context of its
//! choosing, and takes the frames that opened and came from the participant
//! whose track carried them ([`MediaKeys::poll_frame`]).
//!
//! A frame is delivered, or dropped for a reason that is true. Each epoch's
//! member list is kept exactly as long as the decryptor keeps that epoch's
//! keys, so every frame that opens can be named; a frame whose track's
//! publisher the signaling roster has not named yet waits for it briefly
//! (`unknown_sender` if it never comes) rather than passing for a spoof.

use crate::unattributed::Unattributed;
use e2ee::frame::{
    DecryptConfig, Decrypted, DropReason, FrameDecryptor, FrameEncryptor, FrameError, MediaCodec,
    Suite,
};
use e2ee::group::Member;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use tracing::{debug, trace};
use web_time::Instant;

/// What a received frame carries through the decryptor: at least the
/// participant whose track it arrived on (the publisher the SFU named).
pub trait FrameOrigin {
    /// The participant id of the track's publisher.
    fn publisher(&self) -> &str;
}

/// Why a frame was not encrypted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// This member holds no group key (not yet in the group, or left it).
    #[error("no group key yet")]
    NoKey,
    /// The frame could not be sealed.
    #[error("frame encryption failed: {0}")]
    Frame(#[from] FrameError),
}

/// A received frame that opened and whose sender is its track's publisher.
#[derive(Debug)]
pub struct OpenedFrame<C> {
    /// The encoded frame.
    pub plaintext: Vec<u8>,
    /// The sender's identity (its MLS credential). Shared with the
    /// epoch's member list: a frame costs no copy of it.
    pub identity: Arc<str>,
    /// The epoch whose key opened it.
    pub epoch: u64,
    /// What the shell passed with the frame.
    pub ctx: C,
}

/// Frames dropped so far, by reason; running totals. As JSON (the browser
/// engine's `failures()`), its fields are camelCase.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct FailureCounts {
    /// The SFrame header could not be parsed (or the shell could not parse
    /// the packet around it).
    pub malformed: u64,
    /// Authentication failed: tampered, or not made with the key its KID names.
    pub auth_failed: u64,
    /// A counter already seen, or older than the replay window.
    pub replay: u64,
    /// A key id that never became known before the buffering timeout.
    pub unknown_kid: u64,
    /// A key id for an epoch whose keys are gone.
    pub wrong_epoch: u64,
    /// Not a failure, and not in [`total`](Self::total): frames of an epoch
    /// before this member's first one, sent before it joined (in flight or
    /// retransmitted around the join), which by design it cannot read.
    pub before_join: u64,
    /// Decrypted, but the sender is not the participant whose track it came on.
    pub wrong_sender: u64,
    /// Decrypted, from a group member, on the track of a participant the
    /// signaling roster did not name within the wait for it: who sent it
    /// is known, whether that is the track's publisher is not.
    pub unknown_sender: u64,
    /// Packets that never formed a whole frame (counted by the shell).
    pub incomplete: u64,
}

impl FailureCounts {
    /// All failures: every drop but [`before_join`](Self::before_join).
    pub fn total(&self) -> u64 {
        self.malformed
            + self.auth_failed
            + self.replay
            + self.unknown_kid
            + self.wrong_epoch
            + self.wrong_sender
            + self.unknown_sender
            + self.incomplete
    }
}

/// The media keys and counters of one room member.
pub struct MediaKeys<C> {
    suite: Suite,
    encryptor: FrameEncryptor,
    sending: bool,
    decryptor: FrameDecryptor<C>,
    /// Leaf → identity, for every epoch the decryptor holds keys of.
    members: BTreeMap<u64, HashMap<u32, Arc<str>>>,
    /// Participant id → identity, from the signaling roster.
    identities: HashMap<String, String>,
    /// Opened frames whose track's publisher is not known yet.
    unattributed: Unattributed<C>,
    opened: VecDeque<OpenedFrame<C>>,
    wrong_sender: u64,
    unknown_sender: u64,
    incomplete: u64,
    malformed_packets: u64,
}

impl<C> std::fmt::Debug for MediaKeys<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaKeys")
            .field("sending", &self.sending)
            .field("epoch", &self.decryptor.epoch())
            .finish_non_exhaustive()
    }
}

impl<C: FrameOrigin> MediaKeys<C> {
    /// No keys yet: nothing is sent or accepted until the first epoch.
    pub fn new(suite: Suite, cfg: DecryptConfig) -> Self {
        Self {
            suite,
            encryptor: FrameEncryptor::new(suite, 0),
            sending: false,
            decryptor: FrameDecryptor::new(suite, cfg),
            members: BTreeMap::new(),
            identities: HashMap::new(),
            unattributed: Unattributed::new(),
            opened: VecDeque::new(),
            wrong_sender: 0,
            unknown_sender: 0,
            incomplete: 0,
            malformed_packets: 0,
        }
    }

    /// Records a participant's identity from the signaling roster; frames
    /// that waited for it are then delivered (or, if their sender is
    /// someone else, dropped as `wrong_sender`).
    pub fn learn_identity(&mut self, pid: &str, identity: &str) {
        self.identities.insert(pid.to_owned(), identity.to_owned());
        for frame in self.unattributed.take(pid) {
            self.deliver_if_from(identity, frame);
        }
    }

    /// A new epoch: send under it from now on, accept it on receive, and
    /// release frames that were waiting for it.
    pub fn install_epoch(
        &mut self,
        now: Instant,
        epoch: u64,
        base_key: &[u8],
        own_leaf: u32,
        members: &[Member],
    ) {
        self.encryptor.set_leaf(own_leaf);
        self.sending = self.encryptor.set_epoch(epoch, base_key).is_ok();
        match self.decryptor.add_epoch(now, epoch, base_key) {
            // The frames this released are attributed below, once the
            // epoch's members are in place.
            Ok(()) => {
                self.members.insert(
                    epoch,
                    members
                        .iter()
                        .map(|m| (m.leaf, Arc::from(m.identity.as_str())))
                        .collect(),
                );
            }
            Err(error) => debug!(%error, "installing receive keys failed"),
        }
        self.forget_members_without_keys();
        self.release_ready(now);
    }

    /// We left the group: nothing is sent or accepted until the next epoch.
    pub fn forget(&mut self) {
        self.sending = false;
        // A later group starts again at epoch 0; the encryptor refuses to
        // go back (it would restart an old key's counter), so start afresh.
        self.encryptor = FrameEncryptor::new(self.suite, 0);
        self.decryptor.clear();
        // The next group's epochs reuse the numbers; left in place, the old
        // group's higher epochs would be kept and the new ones evicted.
        self.members.clear();
    }

    /// Whether frames can be sent (this member holds a group key).
    pub fn can_send(&self) -> bool {
        self.sending
    }

    /// Encrypts one encoded frame into `out` in the media wire format.
    pub fn encrypt_into(
        &mut self,
        codec: MediaCodec,
        frame: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), EncryptError> {
        if !self.sending {
            return Err(EncryptError::NoKey);
        }
        self.encryptor.encrypt_media(codec, frame, out)?;
        Ok(())
    }

    /// Encrypts one encoded frame in the media wire format.
    pub fn encrypt(&mut self, codec: MediaCodec, frame: &[u8]) -> Result<Vec<u8>, EncryptError> {
        let mut out = Vec::with_capacity(frame.len() + 32);
        self.encrypt_into(codec, frame, &mut out)?;
        Ok(out)
    }

    /// Decrypts one received frame. Frames that open and come from their
    /// track's publisher, this one or earlier ones that waited for their
    /// epoch, are then ready at [`MediaKeys::poll_frame`]; the rest are
    /// counted in [`MediaKeys::failures`].
    pub fn decrypt(&mut self, now: Instant, codec: MediaCodec, frame: &[u8], ctx: C) {
        match self.decryptor.decrypt_media(now, codec, frame, ctx) {
            Ok(Some(frame)) => self.attribute(now, frame),
            Ok(None) => trace!("frame buffered until its epoch"),
            Err(reason) => trace!(reason = reason.as_str(), "frame dropped"),
        }
        self.release_ready(now);
    }

    /// The next frame that opened and passed attribution, oldest first.
    pub fn poll_frame(&mut self) -> Option<OpenedFrame<C>> {
        self.opened.pop_front()
    }

    /// How many received frames wait: for their epoch's key, or for the
    /// roster to name their track's publisher.
    pub fn waiting(&self) -> usize {
        self.decryptor.pending_len() + self.unattributed.len()
    }

    /// Expires waiting frames and old epochs.
    pub fn tick(&mut self, now: Instant) {
        self.decryptor.handle_timeout(now);
        self.forget_members_without_keys();
        let expired = self.unattributed.expire(now);
        if expired > 0 {
            debug!(
                expired,
                "frames from a publisher the roster never named dropped"
            );
            self.unknown_sender += expired;
        }
    }

    /// When [`MediaKeys::tick`] has something to do.
    pub fn next_timeout(&self) -> Option<Instant> {
        [
            self.decryptor.poll_timeout(),
            self.unattributed.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Counts `n` frames the shell could not assemble from their packets.
    pub fn count_incomplete(&mut self, n: u64) {
        self.incomplete += n;
    }

    /// Counts one packet the shell could not parse.
    pub fn count_malformed(&mut self) {
        self.malformed_packets += 1;
    }

    /// Frames dropped so far, by reason.
    pub fn failures(&self) -> FailureCounts {
        let d = self.decryptor.drops();
        FailureCounts {
            malformed: d.get(DropReason::Malformed) + self.malformed_packets,
            auth_failed: d.get(DropReason::AuthFailed),
            replay: d.get(DropReason::Replay),
            unknown_kid: d.get(DropReason::UnknownKid),
            wrong_epoch: d.get(DropReason::WrongEpoch),
            before_join: d.get(DropReason::BeforeJoin),
            wrong_sender: self.wrong_sender,
            unknown_sender: self.unknown_sender,
            incomplete: self.incomplete,
        }
    }

    /// Every SFrame key held right now, as `(kid, key, salt)`: only for
    /// tests that prove what a member can and cannot decrypt.
    #[doc(hidden)]
    pub fn held_keys(&self) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
        self.decryptor.held_keys()
    }

    fn release_ready(&mut self, now: Instant) {
        while let Some(frame) = self.decryptor.poll_ready() {
            self.attribute(now, frame);
        }
    }

    /// Member lists live exactly as long as their epoch's keys: a frame
    /// that opens can always be named, and nothing is kept beyond that.
    /// (The decryptor may drop an epoch whose grace ended during a
    /// `decrypt`; its list goes at the next install or tick.)
    fn forget_members_without_keys(&mut self) {
        let mut held = self.decryptor.previous_epochs();
        held.extend(self.decryptor.epoch());
        self.members.retain(|epoch, _| held.contains(epoch));
    }

    /// Keeps a decrypted frame only if its sender is the track's publisher.
    /// The SFU chooses which track a packet arrives on; the MLS credential
    /// says who encrypted it. They must agree. A publisher the roster has
    /// not named yet is waited for.
    fn attribute(&mut self, now: Instant, frame: Decrypted<C>) {
        let Some(members) = self.members.get(&frame.epoch) else {
            // Not reached: the list is kept as long as the keys that opened it.
            debug!(epoch = frame.epoch, "no member list for an epoch with keys");
            self.unknown_sender += 1;
            return;
        };
        let Some(sender) = members.get(&frame.sender_leaf).cloned() else {
            // A leaf no member holds, under a key only members have: a
            // member made it up.
            self.wrong_sender += 1;
            return;
        };
        let frame = OpenedFrame {
            plaintext: frame.plaintext,
            identity: sender,
            epoch: frame.epoch,
            ctx: frame.ctx,
        };
        match self.identities.get(frame.ctx.publisher()) {
            Some(expected) if **expected == *frame.identity => self.opened.push_back(frame),
            Some(_) => self.wrong_sender += 1,
            None => {
                trace!("frame waits for its publisher's identity");
                let publisher = frame.ctx.publisher().to_owned();
                self.unknown_sender += self.unattributed.hold(now, publisher, frame);
            }
        }
    }

    fn deliver_if_from(&mut self, publisher_identity: &str, frame: OpenedFrame<C>) {
        if *frame.identity == *publisher_identity {
            self.opened.push_back(frame);
        } else {
            self.wrong_sender += 1;
        }
    }
}

#[cfg(test)]
#[path = "media_keys_tests.rs"]
mod tests;
