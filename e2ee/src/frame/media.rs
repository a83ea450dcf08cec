//! The media wire format every client speaks: one SFrame ciphertext per
//! encoded frame, with the few leading bytes a codec's RTP packetizer must
//! read left in the clear and bound into the AAD.
//!
//! ```text
//! wire frame = clear prefix || SFrame header || ciphertext || tag
//! AAD        = SFrame header || clear prefix
//! ```
//!
//! A browser can produce exactly this: its `RTCRtpScriptTransform` sees the
//! encoded frame before the codec's own packetizer, and that packetizer
//! parses the frame's first bytes (for VP8, the keyframe bit and, on a
//! keyframe, the picture size). The prefix is authenticated, so an SFU that
//! rewrites it (a keyframe bit, a size) makes the frame fail to decrypt, and
//! its length is read from the prefix itself, so flipping the bit that
//! decides the length also fails authentication.
//!
//! | codec | clear prefix |
//! |---|---|
//! | Opus | none |
//! | VP8 | keyframe: 10 bytes (frame tag, start code, size); delta: 3 (frame tag) |
//! | VP9 | none (the packetizer reads no payload byte) |
//!
//! ```
//! use std::time::Instant;
//! use e2ee::frame::{base_key_len, DecryptConfig, FrameDecryptor, FrameEncryptor, MediaCodec, Suite};
//!
//! let suite = Suite::default();
//! let base_key = vec![7u8; base_key_len(suite)];
//! let mut alice = FrameEncryptor::new(suite, 3);
//! alice.set_epoch(1, &base_key)?;
//! let mut bob = FrameDecryptor::new(suite, DecryptConfig::default());
//! bob.add_epoch(Instant::now(), 1, &base_key)?;
//!
//! // A VP8 keyframe: frame tag (P bit 0), start code, 640x360.
//! let frame = [0x50, 0x2d, 0x01, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 0xaa, 0xbb];
//! let mut wire = Vec::new();
//! alice.encrypt_media(MediaCodec::Vp8, &frame, &mut wire)?;
//! assert_eq!(&wire[..10], &frame[..10], "the packetizer's bytes stay readable");
//! let opened = bob.decrypt_media(Instant::now(), MediaCodec::Vp8, &wire, ()).unwrap().unwrap();
//! assert_eq!(opened.plaintext, frame);
//! # Ok::<(), e2ee::frame::FrameError>(())
//! ```

/// The most bytes any codec leaves in the clear.
pub const MAX_CLEAR_PREFIX: usize = 10;

/// VP8 (RFC 6386 §9.1): the 3-byte frame tag, plus on a keyframe the start
/// code and the 4 bytes of width and height.
const VP8_KEYFRAME_PREFIX: usize = 10;
const VP8_DELTA_PREFIX: usize = 3;

/// A codec whose frames the media format knows how to split into a clear
/// prefix and an encrypted rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaCodec {
    /// Opus audio (RFC 7587): the whole frame is encrypted.
    Opus,
    /// VP8 video (RFC 7741): the frame tag stays clear, and on a keyframe
    /// the start code and picture size too.
    Vp8,
    /// VP9 video: the whole frame is encrypted. Its RTP packetizer takes
    /// what it needs from the encoder, not from the frame bytes.
    Vp9,
}

impl MediaCodec {
    /// The codec of an SDP/MIME subtype (`opus`, `VP8`, `VP9`, any case);
    /// `None` for a codec the format does not cover (H.264 and AV1, whose
    /// packetizers parse NAL units or OBUs throughout the frame).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.rsplit('/').next().unwrap_or(name);
        [("opus", Self::Opus), ("vp8", Self::Vp8), ("vp9", Self::Vp9)]
            .into_iter()
            .find(|(n, _)| name.eq_ignore_ascii_case(n))
            .map(|(_, c)| c)
    }

    /// How many leading bytes of `frame` stay in the clear. The same on the
    /// plaintext frame and on its wire form, since those bytes are equal.
    pub fn clear_prefix_len(self, frame: &[u8]) -> usize {
        let want = match self {
            Self::Opus | Self::Vp9 => 0,
            Self::Vp8 => match vp8_is_keyframe(frame) {
                Some(true) => VP8_KEYFRAME_PREFIX,
                Some(false) => VP8_DELTA_PREFIX,
                None => 0,
            },
        };
        want.min(frame.len())
    }

    /// Whether `frame` (plaintext or wire form) starts a picture a decoder
    /// can begin from, as far as its clear bytes tell; always `false` for
    /// audio and for VP9, whose keyframe bit is encrypted.
    pub fn is_keyframe(self, frame: &[u8]) -> bool {
        self == Self::Vp8 && vp8_is_keyframe(frame) == Some(true)
    }
}

/// The P bit of a VP8 frame tag: 0 means a keyframe.
fn vp8_is_keyframe(frame: &[u8]) -> Option<bool> {
    frame.first().map(|b| b & 0x01 == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_prefix_follows_the_keyframe_bit() {
        let key = [
            0x50, 0x2d, 0x01, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 0xaa,
        ];
        let delta = [0x31, 0x07, 0x00, 0xaa, 0xbb];
        assert_eq!(MediaCodec::Vp8.clear_prefix_len(&key), 10);
        assert_eq!(MediaCodec::Vp8.clear_prefix_len(&delta), 3);
        assert_eq!(
            MediaCodec::Vp8.clear_prefix_len(&key[..4]),
            4,
            "short keyframe"
        );
        assert_eq!(MediaCodec::Vp8.clear_prefix_len(&[]), 0);
        assert!(MediaCodec::Vp8.is_keyframe(&key) && !MediaCodec::Vp8.is_keyframe(&delta));
        assert_eq!(MediaCodec::Opus.clear_prefix_len(&key), 0);
        assert_eq!(MediaCodec::Vp9.clear_prefix_len(&delta), 0);
        assert!(!MediaCodec::Vp9.is_keyframe(&key));
    }

    #[test]
    fn names() {
        assert_eq!(MediaCodec::from_name("VP8"), Some(MediaCodec::Vp8));
        assert_eq!(MediaCodec::from_name("video/vp9"), Some(MediaCodec::Vp9));
        assert_eq!(MediaCodec::from_name("audio/OPUS"), Some(MediaCodec::Opus));
        assert_eq!(MediaCodec::from_name("H264"), None);
        assert_eq!(MediaCodec::from_name("AV1"), None);
    }
}
