//! The sending side: one key per (epoch, own leaf), one counter per key.

use sframe::key::EncryptionKey;
use zeroize::Zeroizing;

use super::codec::{encryption_key, seal_with};
use super::error::FrameError;
use super::kid::kid;
use super::media::MediaCodec;
use super::suite::{Suite, check_base_key};

/// The key a member currently sends under.
struct SendKey {
    epoch: u64,
    leaf: u32,
    kid: u64,
    /// Kept only to recognise a repeated `set_epoch` for the same key.
    base_key: Zeroizing<Vec<u8>>,
    key: EncryptionKey,
    /// `None` once `u64::MAX` has been used.
    next_ctr: Option<u64>,
}

/// Encrypts a member's outgoing frames (RFC 9605 §4.4.3) under the key of its
/// KID in the current MLS epoch.
///
/// One encryptor per member, shared by all its outgoing streams (audio, video,
/// every simulcast encoding): the counter lives here, and two encryptors with
/// the same leaf and epoch would send the same (key, nonce) twice.
///
/// ```
/// use e2ee::frame::{FrameEncryptor, FrameError, Suite};
///
/// let mut enc = FrameEncryptor::new(Suite::default(), 2);
/// let mut out = Vec::new();
/// assert!(matches!(enc.encrypt(b"x", &[0], &mut out), Err(FrameError::NoKey)));
/// enc.set_epoch(9, &[0x42; 16])?;
/// enc.encrypt(b"frame", &[0], &mut out)?;
/// assert_eq!(out.len(), 3 + 5 + 16); // header (KID 0x209 in 2 bytes) + ciphertext + tag
/// # Ok::<(), FrameError>(())
/// ```
pub struct FrameEncryptor {
    suite: Suite,
    /// The leaf the next `set_epoch` uses.
    leaf: u32,
    current: Option<SendKey>,
    aad: Vec<u8>,
}

impl std::fmt::Debug for FrameEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("FrameEncryptor");
        d.field("suite", &self.suite).field("leaf", &self.leaf);
        if let Some(k) = &self.current {
            d.field("epoch", &k.epoch)
                .field("kid", &k.kid)
                .field("next_ctr", &k.next_ctr);
        }
        d.finish_non_exhaustive()
    }
}

impl FrameEncryptor {
    /// An encryptor for the member at `leaf`, with no key until
    /// [`set_epoch`](Self::set_epoch).
    pub fn new(suite: Suite, leaf: u32) -> Self {
        Self {
            suite,
            leaf,
            current: None,
            aad: Vec::new(),
        }
    }

    /// Switches to the key of `epoch` at once (call it after merging a
    /// commit); `base_key` is that epoch's exporter output, of
    /// [`base_key_len`] bytes.
    ///
    /// The counter restarts at 0 for the new key. Calling it again with the
    /// same epoch, leaf and base key changes nothing (the counter goes on).
    /// An epoch older than the current one is refused
    /// ([`FrameError::EpochRegressed`]): going back to an earlier key would
    /// restart its counter and reuse nonces. A new group starts with a new
    /// encryptor.
    pub fn set_epoch(&mut self, epoch: u64, base_key: &[u8]) -> Result<(), FrameError> {
        check_base_key(self.suite, base_key)?;
        if let Some(cur) = &self.current {
            if epoch < cur.epoch {
                return Err(FrameError::EpochRegressed {
                    epoch,
                    current: cur.epoch,
                });
            }
            if epoch == cur.epoch && self.leaf == cur.leaf && cur.base_key.as_slice() == base_key {
                return Ok(());
            }
        }
        let kid = kid(self.leaf, epoch);
        let key = encryption_key(self.suite, kid, base_key)?;
        self.current = Some(SendKey {
            epoch,
            leaf: self.leaf,
            kid,
            base_key: Zeroizing::new(base_key.to_vec()),
            key,
            next_ctr: Some(0),
        });
        tracing::debug!(epoch, kid, "sframe sending key installed");
        Ok(())
    }

    /// Changes the leaf index (only a rejoin does that). It takes effect at
    /// the next [`set_epoch`](Self::set_epoch).
    pub fn set_leaf(&mut self, leaf: u32) {
        self.leaf = leaf;
    }

    /// The epoch of the current key.
    pub fn epoch(&self) -> Option<u64> {
        self.current.as_ref().map(|k| k.epoch)
    }

    /// The KID frames are sent under now.
    pub fn kid(&self) -> Option<u64> {
        self.current.as_ref().map(|k| k.kid)
    }

    /// The suite this encryptor seals with.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Encrypts one encoded frame. `out` is cleared and receives the full
    /// SFrame ciphertext (`header || ciphertext || tag`); `metadata` is
    /// authenticated but not included, and the receiver must pass the same
    /// bytes.
    ///
    /// Each call uses the next counter of the current key, even if it fails,
    /// so a counter is never used twice. After `u64::MAX` frames under one key
    /// it fails with [`FrameError::CounterExhausted`] until the next epoch.
    pub fn encrypt(
        &mut self,
        plaintext: &[u8],
        metadata: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        out.clear();
        self.seal_appending(plaintext, metadata, out)
    }

    /// Encrypts one encoded frame of `codec` in the media wire format
    /// ([`media`](crate::frame::MediaCodec)): `out` is cleared and receives
    /// `clear prefix || header || ciphertext || tag`, with the prefix bound
    /// into the AAD. Counters as in [`encrypt`](Self::encrypt).
    pub fn encrypt_media(
        &mut self,
        codec: MediaCodec,
        frame: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        let (prefix, rest) = frame.split_at(codec.clear_prefix_len(frame));
        out.clear();
        out.extend_from_slice(prefix);
        self.seal_appending(rest, prefix, out)
    }

    fn seal_appending(
        &mut self,
        plaintext: &[u8],
        metadata: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        let Some(k) = self.current.as_mut() else {
            out.clear();
            return Err(FrameError::NoKey);
        };
        let Some(ctr) = k.next_ctr else {
            out.clear();
            return Err(FrameError::CounterExhausted);
        };
        k.next_ctr = ctr.checked_add(1);
        let sealed = seal_with(
            &k.key,
            self.suite,
            k.kid,
            ctr,
            metadata,
            plaintext,
            out,
            &mut self.aad,
        );
        if sealed.is_err() {
            // Never leave a clear prefix behind without its ciphertext.
            out.clear();
        }
        sealed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::codec::parse_header;

    fn ctr_of(frame: &[u8]) -> u64 {
        parse_header(frame).expect("header").ctr
    }

    #[test]
    fn counter_runs_out_once() {
        let mut e = FrameEncryptor::new(Suite::default(), 1);
        e.set_epoch(1, &[1; 16]).expect("epoch");
        if let Some(k) = e.current.as_mut() {
            k.next_ctr = Some(u64::MAX - 1);
        }
        let mut out = Vec::new();
        e.encrypt(b"a", &[], &mut out).expect("MAX-1");
        assert_eq!(ctr_of(&out), u64::MAX - 1);
        e.encrypt(b"b", &[], &mut out).expect("MAX");
        assert_eq!(ctr_of(&out), u64::MAX);
        assert!(matches!(
            e.encrypt(b"c", &[], &mut out),
            Err(FrameError::CounterExhausted)
        ));
        assert!(out.is_empty());
        e.set_epoch(2, &[2; 16]).expect("new epoch");
        e.encrypt(b"d", &[], &mut out).expect("fresh key");
        assert_eq!(ctr_of(&out), 0);
    }

    #[test]
    fn same_epoch_twice_keeps_counter_and_regress_is_refused() {
        let mut e = FrameEncryptor::new(Suite::default(), 1);
        let mut out = Vec::new();
        e.set_epoch(5, &[5; 16]).expect("epoch");
        e.encrypt(b"a", &[], &mut out).expect("enc");
        e.set_epoch(5, &[5; 16]).expect("same again");
        e.encrypt(b"b", &[], &mut out).expect("enc");
        assert_eq!(ctr_of(&out), 1, "counter continued");
        assert!(matches!(
            e.set_epoch(4, &[4; 16]),
            Err(FrameError::EpochRegressed {
                epoch: 4,
                current: 5
            })
        ));
        assert!(matches!(
            e.set_epoch(6, &[6; 15]),
            Err(FrameError::InvalidKeyLength {
                expected: 16,
                got: 15
            })
        ));
        assert_eq!(e.epoch(), Some(5));
    }
}
