//! The receiving side: the current epoch's keys, earlier epochs' for a
//! grace period, frames of a coming epoch held back, replay windows per KID.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use web_time::Instant;

use sframe::key::DecryptionKey;
use zeroize::Zeroizing;

use super::codec::{Header, decryption_key, open_with, parse_header};
use super::error::{DropCounts, DropReason, FrameError};
use super::held::derive_key_salt;
use super::kid::{EPOCH_BITS, is_ours, split_kid};
use super::media::MediaCodec;
use super::pending::{Pending, PendingQueue};
use super::replay::ReplayWindow;
use super::suite::{Suite, check_base_key};

/// Most superseded epochs held at once. Commits rarely come faster than
/// one per round trip, so a few cover any grace period; the bound keeps a
/// burst of commits from pinning many epochs' keys.
pub const MAX_PREVIOUS: usize = 8;

/// Tuning of a [`FrameDecryptor`]. Start from `Default` and set fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecryptConfig {
    /// How long an epoch's keys stay usable after a newer epoch is
    /// installed (frames still in flight from senders that switched later).
    /// Every superseded epoch gets its own grace, so senders that are one
    /// or two commits behind (a leave and a join in quick succession) are
    /// still read. Default 2 s.
    pub grace: Duration,
    /// How long a frame of a not-yet-installed epoch waits for its key.
    /// Default 1 s.
    pub pending_timeout: Duration,
    /// Most frames waiting for a key; beyond it the oldest is dropped as
    /// [`DropReason::UnknownKid`]. Default 256.
    pub max_pending: usize,
    /// Most bytes (frames + metadata) waiting for a key, bounded like
    /// `max_pending`: unauthenticated frames must not pin much memory.
    /// Default 8 MiB.
    pub max_pending_bytes: usize,
    /// Replay window per KID, in counter values below the highest seen
    /// (capped at 65 536). Default 128.
    pub replay_window: u64,
    /// Most KIDs (senders) one epoch keeps keys and replay windows for. A KID
    /// is only kept once a frame under it authenticated, so only members can
    /// fill this. Default 4096.
    pub max_senders: usize,
}

impl Default for DecryptConfig {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(2),
            pending_timeout: Duration::from_secs(1),
            max_pending: 256,
            max_pending_bytes: 8 << 20,
            replay_window: 128,
            max_senders: 4096,
        }
    }
}

/// A decrypted frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted<T> {
    /// The encoded frame.
    pub plaintext: Vec<u8>,
    /// MLS leaf index of the sender (from the KID, authenticated with it).
    pub sender_leaf: u32,
    /// The full MLS epoch whose key opened it.
    pub epoch: u64,
    /// The SFrame counter (CTR).
    pub counter: u64,
    /// What the caller passed with the frame.
    pub ctx: T,
}

/// One sender's key in one epoch.
struct SenderKey {
    key: DecryptionKey,
    window: ReplayWindow,
}

/// Everything held for one epoch. The base key and the derived keys are
/// zeroized when it is dropped.
struct EpochKeys {
    epoch: u64,
    base_key: Zeroizing<Vec<u8>>,
    senders: HashMap<u64, SenderKey>,
}

impl EpochKeys {
    fn bits(&self) -> u8 {
        (self.epoch & ((1 << EPOCH_BITS) - 1)) as u8
    }
}

/// Which key a frame's KID points at.
enum Slot {
    Current,
    /// The superseded epoch at this index of `previous`.
    Previous(usize),
    /// An epoch we have not reached yet: hold the frame.
    Ahead,
    Stale,
}

/// Decrypts the frames of every sender in a room (RFC 9605 §4.4.4) with keys
/// of the current MLS epoch, or of an earlier one during its grace period.
///
/// A KID carries the epoch's low [`EPOCH_BITS`] bits. Against the current
/// epoch they classify a frame as: the current epoch; an earlier epoch
/// (while its grace lasts, at most [`MAX_PREVIOUS`] of them); up to 128
/// epochs ahead, which is held back until
/// [`add_epoch`](Self::add_epoch) installs that epoch or
/// `pending_timeout` passes; anything else is [`DropReason::WrongEpoch`].
/// Before the first epoch every frame is held back.
///
/// Keys per KID are derived on first use and kept, with a replay window, only
/// once a frame under them authenticated; a forged frame changes no state.
/// Every dropped frame is counted in [`drops`](Self::drops).
///
/// Sans-IO: time is the caller's `now`. Call
/// [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout), and drain
/// [`poll_ready`](Self::poll_ready) after `add_epoch`.
///
/// `T` is whatever the caller wants back with each frame (track id, RTP
/// timestamp, ...); it is held with a frame while the frame waits.
pub struct FrameDecryptor<T> {
    suite: Suite,
    cfg: DecryptConfig,
    current: Option<EpochKeys>,
    /// Superseded epochs still in their grace, oldest first, each with when
    /// its grace ends (`None`: never, for a grace too large to represent).
    /// Their KID bits differ from each other's and from `current`'s.
    previous: VecDeque<(EpochKeys, Option<Instant>)>,
    /// The first epoch installed since creation or the last `clear`: a
    /// frame of an earlier epoch was sent before this member joined.
    first_epoch: Option<u64>,
    pending: PendingQueue<T>,
    ready: VecDeque<Decrypted<T>>,
    drops: DropCounts,
    aad: Vec<u8>,
}

impl<T> std::fmt::Debug for FrameDecryptor<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameDecryptor")
            .field("suite", &self.suite)
            .field("current", &self.current.as_ref().map(|k| k.epoch))
            .field(
                "previous",
                &self
                    .previous
                    .iter()
                    .map(|(k, _)| k.epoch)
                    .collect::<Vec<_>>(),
            )
            .field("pending", &self.pending.len())
            .field("ready", &self.ready.len())
            .field("drops", &self.drops)
            .finish_non_exhaustive()
    }
}

impl<T> FrameDecryptor<T> {
    /// A decryptor with no keys: frames wait for the first
    /// [`add_epoch`](Self::add_epoch).
    pub fn new(suite: Suite, cfg: DecryptConfig) -> Self {
        let pending = PendingQueue::new(cfg.max_pending, cfg.max_pending_bytes);
        Self {
            suite,
            cfg,
            current: None,
            previous: VecDeque::new(),
            first_epoch: None,
            pending,
            ready: VecDeque::new(),
            drops: DropCounts::default(),
            aad: Vec::new(),
        }
    }

    /// Installs `epoch` (with its exporter output `base_key`, of
    /// [`base_key_len`] bytes) as current. The previous current epoch stays
    /// usable for `cfg.grace` from `now`, and earlier ones until their own
    /// grace ends; an epoch whose KID bits the new one reuses is dropped at
    /// once, and so is the oldest beyond [`MAX_PREVIOUS`].
    /// Frames waiting for this epoch are decrypted (see
    /// [`poll_ready`](Self::poll_ready)); waiting frames of an epoch now
    /// behind are dropped as [`DropReason::WrongEpoch`].
    ///
    /// Installing the current epoch again with the same key changes nothing.
    /// The current epoch with another key is [`FrameError::EpochConflict`];
    /// an older epoch is [`FrameError::EpochRegressed`] (a new group after a
    /// rejoin needs [`clear`](Self::clear) first).
    pub fn add_epoch(
        &mut self,
        now: Instant,
        epoch: u64,
        base_key: &[u8],
    ) -> Result<(), FrameError> {
        check_base_key(self.suite, base_key)?;
        if let Some(cur) = &self.current {
            if epoch < cur.epoch {
                return Err(FrameError::EpochRegressed {
                    epoch,
                    current: cur.epoch,
                });
            }
            if epoch == cur.epoch {
                return if cur.base_key.as_slice() == base_key {
                    Ok(())
                } else {
                    Err(FrameError::EpochConflict { epoch })
                };
            }
        }
        let fresh = EpochKeys {
            epoch,
            base_key: Zeroizing::new(base_key.to_vec()),
            senders: HashMap::new(),
        };
        self.first_epoch.get_or_insert(epoch);
        let new_bits = fresh.bits();
        if let Some(old) = self.current.replace(fresh)
            && !self.cfg.grace.is_zero()
        {
            self.previous
                .push_back((old, now.checked_add(self.cfg.grace)));
        }
        // A KID must name one epoch: older epochs with the new one's bits go.
        self.previous.retain(|(k, _)| k.bits() != new_bits);
        while self.previous.len() > MAX_PREVIOUS {
            self.previous.pop_front();
        }
        tracing::debug!(epoch, "sframe receiving epoch installed");

        for p in self.pending.take_all() {
            match self.classify(p.header.kid) {
                Slot::Ahead => {
                    // It fitted before, so it fits again; count it anyway.
                    let dropped = self.pending.push(p).unwrap_or(1);
                    self.drops.add(DropReason::UnknownKid, dropped);
                }
                Slot::Stale => {
                    let reason = self.stale_reason(p.header.kid);
                    self.drops.add(reason, 1);
                }
                slot @ (Slot::Current | Slot::Previous(_)) => {
                    match self.open(
                        slot,
                        &p.header,
                        &p.frame,
                        &p.metadata,
                        p.keep_metadata,
                        p.ctx,
                    ) {
                        Ok(d) => self.ready.push_back(d),
                        Err(reason) => self.drops.add(reason, 1),
                    }
                }
            }
        }
        Ok(())
    }

    /// Forgets all keys, e.g. after being removed or before a clean rejoin.
    /// Waiting frames are dropped as [`DropReason::UnknownKid`]; frames
    /// already decrypted stay in [`poll_ready`](Self::poll_ready).
    pub fn clear(&mut self) {
        self.current = None;
        self.previous.clear();
        self.first_epoch = None;
        let dropped = self.pending.take_all().len() as u64;
        self.drops.add(DropReason::UnknownKid, dropped);
        tracing::debug!(dropped, "sframe receiving keys cleared");
    }

    /// Decrypts one whole SFrame ciphertext with the `metadata` it was sent
    /// with.
    ///
    /// `Ok(Some)`: decrypted. `Ok(None)`: held back because its epoch is ahead
    /// of ours; it comes out of [`poll_ready`](Self::poll_ready) after
    /// [`add_epoch`](Self::add_epoch), or is dropped at `pending_timeout`.
    /// `Err(reason)`: dropped and counted.
    pub fn decrypt(
        &mut self,
        now: Instant,
        frame: &[u8],
        metadata: &[u8],
        ctx: T,
    ) -> Result<Option<Decrypted<T>>, DropReason> {
        self.decrypt_counted(now, frame, metadata, false, ctx)
    }

    /// Decrypts one frame of `codec` in the media wire format
    /// ([`MediaCodec`]): the clear prefix is authenticated as the metadata,
    /// and the plaintext that comes out is the whole encoded frame again,
    /// prefix included. Results as in [`decrypt`](Self::decrypt).
    pub fn decrypt_media(
        &mut self,
        now: Instant,
        codec: MediaCodec,
        wire: &[u8],
        ctx: T,
    ) -> Result<Option<Decrypted<T>>, DropReason> {
        let (prefix, sframe) = wire.split_at(codec.clear_prefix_len(wire));
        self.decrypt_counted(now, sframe, prefix, true, ctx)
    }

    fn decrypt_counted(
        &mut self,
        now: Instant,
        frame: &[u8],
        metadata: &[u8],
        keep_metadata: bool,
        ctx: T,
    ) -> Result<Option<Decrypted<T>>, DropReason> {
        let result = self.decrypt_inner(now, frame, metadata, keep_metadata, ctx);
        if let Err(reason) = result {
            self.drops.add(reason, 1);
            tracing::trace!(reason = reason.as_str(), "sframe frame dropped");
        }
        result
    }

    fn decrypt_inner(
        &mut self,
        now: Instant,
        frame: &[u8],
        metadata: &[u8],
        keep_metadata: bool,
        ctx: T,
    ) -> Result<Option<Decrypted<T>>, DropReason> {
        let header = parse_header(frame).ok_or(DropReason::Malformed)?;
        if frame.len() - header.len < self.suite.tag_len() {
            return Err(DropReason::Malformed);
        }
        if !is_ours(header.kid) {
            return Err(DropReason::UnknownKid);
        }
        self.expire_previous(now);
        match self.classify(header.kid) {
            Slot::Stale => Err(self.stale_reason(header.kid)),
            Slot::Ahead => {
                let held = self.pending.push(Pending {
                    deadline: now.checked_add(self.cfg.pending_timeout),
                    header,
                    frame: frame.to_vec(),
                    metadata: metadata.to_vec(),
                    keep_metadata,
                    ctx,
                });
                // Too big to hold at all: dropped (and counted) by the caller.
                let evicted = held.map_err(|_| DropReason::UnknownKid)?;
                self.drops.add(DropReason::UnknownKid, evicted);
                Ok(None)
            }
            slot @ (Slot::Current | Slot::Previous(_)) => self
                .open(slot, &header, frame, metadata, keep_metadata, ctx)
                .map(Some),
        }
    }

    /// The next frame that became decryptable when its epoch was added.
    pub fn poll_ready(&mut self) -> Option<Decrypted<T>> {
        self.ready.pop_front()
    }

    /// Drops waiting frames whose `pending_timeout` has passed (counted as
    /// [`DropReason::UnknownKid`]) and earlier epochs whose grace ended. Returns how many frames it dropped.
    pub fn handle_timeout(&mut self, now: Instant) -> u64 {
        self.expire_previous(now);
        let dropped = self.pending.expire(now);
        self.drops.add(DropReason::UnknownKid, dropped);
        dropped
    }

    /// When [`handle_timeout`](Self::handle_timeout) has work next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let grace = self.previous.iter().filter_map(|(_, end)| *end).min();
        match (grace, self.pending.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Frames dropped so far, per reason.
    pub fn drops(&self) -> &DropCounts {
        &self.drops
    }

    /// The current epoch.
    pub fn epoch(&self) -> Option<u64> {
        self.current.as_ref().map(|k| k.epoch)
    }

    /// The latest superseded epoch, while it is still held.
    pub fn previous_epoch(&self) -> Option<u64> {
        self.previous.back().map(|(k, _)| k.epoch)
    }

    /// Every superseded epoch still held, oldest first.
    pub fn previous_epochs(&self) -> Vec<u64> {
        self.previous.iter().map(|(k, _)| k.epoch).collect()
    }

    /// How many frames wait for their epoch.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Test support for forward-secrecy checks: `(kid, sframe_key,
    /// sframe_salt)` of every KID this decryptor holds a key for (current and
    /// earlier epochs), sorted by epoch held then KID. Keys are derived when a
    /// sender's first frame authenticates, so a KID appears after that; the
    /// base keys they come from are dropped together with them.
    #[doc(hidden)]
    pub fn held_keys(&self) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
        let epochs = self
            .previous
            .iter()
            .map(|(k, _)| k)
            .chain(self.current.iter());
        let mut out = Vec::new();
        for keys in epochs {
            let mut kids: Vec<u64> = keys.senders.keys().copied().collect();
            kids.sort_unstable();
            for kid in kids {
                if let Some((key, salt)) = derive_key_salt(self.suite, &keys.base_key, kid) {
                    out.push((kid, key.to_vec(), salt.to_vec()));
                }
            }
        }
        out
    }

    fn expire_previous(&mut self, now: Instant) {
        self.previous.retain(|(keys, end)| {
            let keep = end.is_none_or(|end| now < end);
            if !keep {
                tracing::debug!(
                    epoch = keys.epoch,
                    "sframe earlier epoch dropped after grace"
                );
            }
            keep
        });
    }

    /// Why a frame classified [`Slot::Stale`] is dropped: an epoch before
    /// our first is [`DropReason::BeforeJoin`], anything else
    /// [`DropReason::WrongEpoch`].
    fn stale_reason(&self, kid: u64) -> DropReason {
        let (Some(cur), Some(first)) = (&self.current, self.first_epoch) else {
            return DropReason::WrongEpoch;
        };
        let behind = u64::from(cur.bits().wrapping_sub(split_kid(kid).1));
        // Stale means at most half the epoch space behind; further is "too
        // far ahead", which no join explains.
        if behind == 0 || behind >= 1 << (EPOCH_BITS - 1) {
            return DropReason::WrongEpoch;
        }
        // An epoch below 0 is no epoch: too far ahead after all.
        match cur.epoch.checked_sub(behind) {
            Some(epoch) if epoch < first => DropReason::BeforeJoin,
            _ => DropReason::WrongEpoch,
        }
    }

    fn classify(&self, kid: u64) -> Slot {
        let Some(cur) = &self.current else {
            return Slot::Ahead;
        };
        let (_, bits) = split_kid(kid);
        if bits == cur.bits() {
            return Slot::Current;
        }
        if let Some(i) = self.previous.iter().position(|(p, _)| p.bits() == bits) {
            return Slot::Previous(i);
        }
        let ahead = bits.wrapping_sub(cur.bits());
        if ahead <= 1 << (EPOCH_BITS - 1) {
            Slot::Ahead
        } else {
            Slot::Stale
        }
    }

    /// Opens a frame with the key of its KID in `slot`; updates the replay
    /// window and key cache only if it authenticates.
    fn open(
        &mut self,
        slot: Slot,
        header: &Header,
        frame: &[u8],
        metadata: &[u8],
        keep_metadata: bool,
        ctx: T,
    ) -> Result<Decrypted<T>, DropReason> {
        let keys = match slot {
            Slot::Current => self.current.as_mut(),
            Slot::Previous(i) => self.previous.get_mut(i).map(|(k, _)| k),
            Slot::Ahead | Slot::Stale => None,
        }
        .ok_or(DropReason::WrongEpoch)?;
        let kid = header.kid;
        let plaintext = match keys.senders.get_mut(&kid) {
            Some(sender) => {
                if !sender.window.check(header.ctr) {
                    return Err(DropReason::Replay);
                }
                let pt = open_with(
                    &sender.key,
                    self.suite,
                    header,
                    frame,
                    metadata,
                    keep_metadata,
                    &mut self.aad,
                )?;
                sender.window.accept(header.ctr);
                pt
            }
            None => {
                if keys.senders.len() >= self.cfg.max_senders {
                    return Err(DropReason::UnknownKid);
                }
                let key = decryption_key(self.suite, kid, &keys.base_key)
                    .map_err(|_| DropReason::AuthFailed)?;
                let pt = open_with(
                    &key,
                    self.suite,
                    header,
                    frame,
                    metadata,
                    keep_metadata,
                    &mut self.aad,
                )?;
                let mut window = ReplayWindow::new(self.cfg.replay_window);
                window.accept(header.ctr);
                keys.senders.insert(kid, SenderKey { key, window });
                pt
            }
        };
        Ok(Decrypted {
            plaintext,
            sender_leaf: split_kid(kid).0,
            epoch: keys.epoch,
            counter: header.ctr,
            ctx,
        })
    }
}
