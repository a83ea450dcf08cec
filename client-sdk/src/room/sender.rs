//! Encrypted media sent: frames in, RTP packets out, for every published
//! track; the wire format is described in `media`.
//!
//! A simulcast track sends each encoding on its own RTP stream. Frames of
//! every encoding go through the same SFrame encryptor (one key and one
//! counter per member, so no two frames share a nonce), and they share one
//! dependency-descriptor frame number space, as libwebrtc's do: the SFU
//! switches a subscriber between encodings without rewriting frame
//! numbers, so they must not repeat across encodings.
use super::keys::Keys;
use super::media::{MAX_FRAME_BYTES, MAX_RTP_PAYLOAD};
use crate::error::WriteError;
use crate::track::{LocalTrack, TrackSpec};
use crate::vp8_payload;
use e2ee::frame::{MediaCodec, packetize};
use signaling::proto::TrackKind;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

/// Why a frame was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendFrameError {
    /// This member has no group key yet (it is waiting to be added), or
    /// has just been removed. The frame was dropped.
    #[error("no E2EE key yet")]
    NoKey,
    /// The frame is larger than the SDK accepts.
    #[error("frame of {0} bytes is too large")]
    TooLarge(usize),
    /// An audio frame that does not fit one RTP packet.
    #[error("audio frame of {0} bytes does not fit one packet")]
    AudioTooLarge(usize),
    /// The `keyframe` flag disagrees with the frame: a VP8 frame says
    /// itself whether it is a keyframe (the P bit of its frame tag).
    #[error("frame declared keyframe={declared}, but its codec header says otherwise")]
    KeyframeMismatch {
        /// What the caller passed.
        declared: bool,
    },
    /// The track has no simulcast encoding with this index.
    #[error("no encoding {0}")]
    NoEncoding(usize),
    /// Encryption failed (e.g. the counter space of a key is exhausted).
    #[error("encryption failed: {0}")]
    Encrypt(String),
    /// The transport refused the packet.
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// A published track as the room remembers it: after a rejoin it is
/// published again on the new session and the sender switches to it.
#[derive(Debug)]
pub(crate) struct SenderSlot {
    pub(crate) spec: TrackSpec,
    track: Mutex<Arc<LocalTrack>>,
    /// Per encoding (lowest first): whether some subscriber wants it, as
    /// the server last said (dynacast).
    active: Vec<AtomicBool>,
}

impl SenderSlot {
    pub(crate) fn new(spec: TrackSpec, track: LocalTrack) -> Self {
        Self {
            active: (0..spec.stream_count())
                .map(|_| AtomicBool::new(true))
                .collect(),
            spec,
            track: Mutex::new(Arc::new(track)),
        }
    }

    /// Switches to the track as published on a new session, where nothing
    /// has been said about encodings yet.
    pub(crate) fn replace(&self, track: LocalTrack) {
        *self.track.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(track);
        for a in &self.active {
            a.store(true, Ordering::Relaxed);
        }
    }

    pub(crate) fn current(&self) -> Arc<LocalTrack> {
        Arc::clone(&self.track.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Applies `publisher_layers`: `rids` are the wanted encodings. Returns
    /// the new flags, lowest encoding first.
    pub(crate) fn set_active(&self, rids: &[String]) -> Vec<bool> {
        self.spec
            .encodings
            .iter()
            .zip(&self.active)
            .map(|(e, flag)| {
                let on = rids.contains(&e.rid);
                flag.store(on, Ordering::Relaxed);
                on
            })
            .collect()
    }
}

/// One frame ready for the wire.
struct Sealed {
    ciphertext: Vec<u8>,
    /// Its dependency-descriptor frame number (video).
    frame_number: u16,
}

/// Checks and encrypts frames, and numbers video frames: one per track,
/// whatever encoding a frame is for.
#[derive(Debug)]
struct Sealer {
    codec: MediaCodec,
    keys: Arc<Keys>,
    frame_number: AtomicU16,
}

impl Sealer {
    fn seal(&self, frame: &[u8], keyframe: bool) -> Result<Sealed, SendFrameError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(SendFrameError::TooLarge(frame.len()));
        }
        if self.codec == MediaCodec::Vp8 && self.codec.is_keyframe(frame) != keyframe {
            return Err(SendFrameError::KeyframeMismatch { declared: keyframe });
        }
        let ciphertext = self.keys.encrypt(self.codec, frame)?;
        let frame_number = self.frame_number.fetch_add(1, Ordering::Relaxed);
        Ok(Sealed {
            ciphertext,
            frame_number,
        })
    }
}

/// A published, end-to-end encrypted track. Send encoded frames with
/// [`send_frame`](Self::send_frame), or on a simulcast track with
/// [`send_frame_on`](Self::send_frame_on).
#[derive(Debug)]
pub struct MediaSender {
    slot: Arc<SenderSlot>,
    sealer: Sealer,
}

impl MediaSender {
    /// `codec` is the media format of `slot`'s codec (checked at publish).
    pub(crate) fn new(slot: Arc<SenderSlot>, codec: MediaCodec, keys: Arc<Keys>) -> Self {
        Self {
            slot,
            sealer: Sealer {
                codec,
                keys,
                frame_number: AtomicU16::new(0),
            },
        }
    }

    /// The app's name for the track.
    pub fn cid(&self) -> &str {
        &self.slot.spec.cid
    }

    /// The server's id for the track (it changes if the room had to be
    /// joined again).
    pub fn track_id(&self) -> String {
        self.slot.current().track_id().to_owned()
    }

    /// How many encodings the track is sent as: its simulcast encodings,
    /// or 1.
    pub fn encoding_count(&self) -> usize {
        self.slot.active.len()
    }

    /// Whether some subscriber wants simulcast encoding `encoding` (lowest
    /// quality first) now, as the server last said (dynacast, also
    /// reported as [`RoomEvent::PublisherLayers`](super::RoomEvent::PublisherLayers)).
    /// `true` until the server says otherwise, and for a plain track. An
    /// app may stop encoding an inactive encoding until it is active again;
    /// when it becomes active, start it with a keyframe.
    pub fn encoding_active(&self, encoding: usize) -> bool {
        self.slot
            .active
            .get(encoding)
            .is_some_and(|a| a.load(Ordering::Relaxed))
    }

    /// Encrypts one encoded frame under the current epoch's key and sends
    /// it. `timestamp` is in the codec's clock rate; `keyframe` marks a
    /// frame a decoder can start from (ignored for audio). The frame must be
    /// in the codec's format as far as the media format reads it: a VP8
    /// frame starts with its frame tag, whose keyframe bit must agree with
    /// `keyframe`.
    ///
    /// On a simulcast track this sends on the lowest encoding; use
    /// [`send_frame_on`](Self::send_frame_on). Call it from one task per
    /// track, so packets follow the frame order.
    pub async fn send_frame(
        &self,
        frame: &[u8],
        timestamp: u32,
        keyframe: bool,
    ) -> Result<(), SendFrameError> {
        self.send_frame_on(0, frame, timestamp, keyframe).await
    }

    /// Like [`send_frame`](Self::send_frame), on simulcast encoding
    /// `encoding` (an index into the encodings given at publish, lowest
    /// quality first). Each encoding is its own stream of frames: give
    /// each its own encoder output, with the same `timestamp` for the
    /// same captured picture. The SDK does not skip inactive encodings
    /// (see [`encoding_active`](Self::encoding_active)); the app decides.
    pub async fn send_frame_on(
        &self,
        encoding: usize,
        frame: &[u8],
        timestamp: u32,
        keyframe: bool,
    ) -> Result<(), SendFrameError> {
        if encoding >= self.encoding_count() {
            return Err(SendFrameError::NoEncoding(encoding));
        }
        let audio = self.slot.spec.kind() == TrackKind::Audio;
        if audio && frame.len() > MAX_RTP_PAYLOAD {
            return Err(SendFrameError::AudioTooLarge(frame.len()));
        }
        let Sealed {
            ciphertext,
            frame_number,
        } = self.sealer.seal(frame, keyframe)?;
        let track = self.slot.current();
        if audio {
            if ciphertext.len() > MAX_RTP_PAYLOAD {
                return Err(SendFrameError::AudioTooLarge(frame.len()));
            }
            track.write_rtp(ciphertext, timestamp, true).await?;
            return Ok(());
        }
        // One buffer for the frame's packets, each a descriptor and a piece
        // of the ciphertext; every payload is a view of it.
        let chunks = packetize(&ciphertext, MAX_RTP_PAYLOAD - vp8_payload::DESCRIPTOR_LEN);
        let mut packets =
            Vec::with_capacity(ciphertext.len() + chunks.len() * vp8_payload::DESCRIPTOR_LEN);
        let mut bounds = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let start = packets.len();
            packets.extend_from_slice(&vp8_payload::descriptor(chunk.start, frame_number));
            packets.extend_from_slice(chunk.payload);
            bounds.push((start..packets.len(), chunk.start, chunk.end));
        }
        let packets = bytes::Bytes::from(packets);
        let mut dd = [0u8; rtp_dd::MAX_LEN];
        for (range, start, end) in bounds {
            let mark = rtp_dd::FrameMark {
                start_of_frame: start,
                end_of_frame: end,
                frame_number,
                keyframe,
            };
            let len = rtp_dd::write(&mark, &mut dd);
            track
                .outbound()
                .write_stream_rtp(
                    encoding,
                    packets.slice(range),
                    timestamp,
                    end,
                    Some(&dd[..len]),
                )
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use e2ee::frame::{DecryptConfig, Suite};
    use e2ee::group::Member;
    use std::collections::HashSet;
    use std::time::Instant;

    fn sealer() -> Sealer {
        let keys = Keys::new(Suite::default(), DecryptConfig::default());
        let me = Member {
            leaf: 0,
            identity: "alice".into(),
            signature_key: Vec::new(),
        };
        keys.install_epoch(Instant::now(), 0, &[0x5e; 16], 0, &[me]);
        Sealer {
            codec: MediaCodec::Vp8,
            keys: Arc::new(keys),
            frame_number: AtomicU16::new(0),
        }
    }

    /// The CTR of the SFrame header (RFC 9605 §4.3) at the start of `h`.
    fn ctr(h: &[u8]) -> u64 {
        let config = h[0];
        let kid_len = if config & 0x80 != 0 {
            usize::from((config >> 4) & 0x07) + 1
        } else {
            0
        };
        if config & 0x08 == 0 {
            return u64::from(config & 0x07);
        }
        let len = usize::from(config & 0x07) + 1;
        h[1 + kid_len..1 + kid_len + len]
            .iter()
            .fold(0, |v, b| (v << 8) | u64::from(*b))
    }

    /// Simulcast frames, three encodings interleaved as an encoder emits
    /// them: every frame has its own SFrame counter (a shared one would
    /// reuse a nonce under the same key), and the frame numbers run on
    /// across encodings without repeating.
    #[test]
    fn encodings_share_neither_counter_nor_frame_number() {
        let sealer = sealer();
        let mut ctrs = HashSet::new();
        let mut numbers = Vec::new();
        for picture in 0..20u8 {
            for encoding in 0..3u8 {
                let keyframe = picture % 10 == 0;
                let frame = testkit::vp8::frame(keyframe, &[encoding, picture]);
                let sealed = sealer.seal(&frame, keyframe).expect("sealed");
                let prefix = MediaCodec::Vp8.clear_prefix_len(&sealed.ciphertext);
                let ctr = ctr(&sealed.ciphertext[prefix..]);
                assert!(ctrs.insert(ctr), "counter {ctr} used twice");
                numbers.push(sealed.frame_number);
            }
        }
        assert_eq!(ctrs.len(), 60);
        let expected: Vec<u16> = (0..60).collect();
        assert_eq!(numbers, expected, "one frame number space for the track");
    }
}
