//! SFrame frames (RFC 9605) keyed by MLS epochs (RFC 9605 §5.2).
//!
//! Every MLS epoch yields one secret, `base_key = MLS-Exporter("SFrame 1.0
//! Base Key", "", Nk)` (computed by [`crate::group`], length
//! [`base_key_len`]). Each member sends under its own KID,
//! `KID = (leaf_index << E) | (epoch mod 2^E)` with `E =` [`EPOCH_BITS`]
//! (see [`kid`]), and the SFrame key and salt of a KID are derived from the
//! base key as in RFC 9605 §4.4.2. There is no ratchet: a new MLS epoch is the
//! only key change.
//!
//! - [`FrameEncryptor`]: one per sending member. It turns an encoded frame into
//!   one SFrame ciphertext (`header || ciphertext || tag`) and owns the
//!   counter, so all outgoing streams of a member must share it.
//! - [`FrameDecryptor`]: one per receiving member. It keeps the current epoch
//!   and, for a grace period, the previous one; buffers frames of an epoch it
//!   has not reached yet; drops replays, forgeries and stale epochs, counting
//!   each by [`DropReason`].
//! - [`packetize`] and [`FrameAssembler`]: one ciphertext per encoded frame,
//!   split into RTP payloads and put back together (per-frame SFrame of
//!   draft-ietf-avtcore-rtp-sframe).
//!
//! The metadata passed next to a frame is authenticated (it is part of the
//! AAD) but not encrypted and not carried in the ciphertext: the receiver must
//! pass the same bytes. The SDK passes `[1]` for keyframes and `[0]` for delta
//! frames.
//!
//! ```
//! use std::time::Instant;
//! use e2ee::frame::{base_key_len, DecryptConfig, FrameDecryptor, FrameEncryptor, Suite};
//!
//! let suite = Suite::default();
//! let base_key = vec![7u8; base_key_len(suite)]; // from the MLS exporter
//! let mut alice = FrameEncryptor::new(suite, 3);
//! alice.set_epoch(1, &base_key)?;
//! let mut bob = FrameDecryptor::new(suite, DecryptConfig::default());
//! let now = Instant::now();
//! bob.add_epoch(now, 1, &base_key)?;
//!
//! let mut wire = Vec::new();
//! alice.encrypt(b"encoded frame", &[1], &mut wire)?;
//! let frame = bob.decrypt(now, &wire, &[1], "track-a").unwrap().unwrap();
//! assert_eq!(frame.plaintext, b"encoded frame");
//! assert_eq!((frame.sender_leaf, frame.epoch, frame.ctx), (3, 1, "track-a"));
//! # Ok::<(), e2ee::frame::FrameError>(())
//! ```

mod assembler;
mod codec;
mod decryptor;
mod encryptor;
mod error;
mod held;
mod kid;
mod media;
mod packetize;
mod pending;
mod replay;
mod suite;

pub use assembler::{AssembledFrame, FrameAssembler, MAX_REORDER_DEPTH};
#[doc(hidden)]
pub use codec::{Opened, open, seal};
pub use decryptor::{DecryptConfig, Decrypted, FrameDecryptor, MAX_PREVIOUS};
pub use encryptor::FrameEncryptor;
pub use error::{DropCounts, DropReason, FrameError};
pub use kid::{EPOCH_BITS, kid, split_kid};
pub use media::{MAX_CLEAR_PREFIX, MediaCodec};
pub use packetize::{FrameChunk, packetize};
pub use suite::{Suite, base_key_len};
