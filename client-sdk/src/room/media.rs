//! Encrypted media: frames in, SFrame ciphertext split into RTP packets out,
//! and the reverse for every remote track.
//!
//! One SFrame ciphertext per encoded frame (draft-ietf-avtcore-rtp-sframe,
//! per-frame mode), split across RTP packets of the track's declared payload
//! type. Video packets carry the dependency descriptor with start- and
//! end-of-frame and, on the first packet of a keyframe, the template
//! structure: that is what the SFU reads. Audio frames are one packet each.
//! The keyframe bit is also SFrame metadata, so it is authenticated: an SFU
//! that flips it makes the frame fail to decrypt.

use super::keys::{FrameCtx, Keys};
use crate::error::WriteError;
use crate::track::{LocalTrack, RemoteTrack, TrackSpec};
use e2ee::frame::{FrameAssembler, packetize};
use signaling::proto::TrackKind;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::debug;

/// RTP payload bytes per packet: leaves room for the RTP header, header
/// extensions and SRTP tag under a 1200-byte datagram.
pub(crate) const MAX_RTP_PAYLOAD: usize = 1100;
/// The largest encoded frame accepted, plaintext or ciphertext.
pub(crate) const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;
/// Newer frames that may complete before an incomplete one is given up.
const REORDER_DEPTH: usize = 8;
/// Decrypted frames queued per remote track before the app reads them.
const FRAME_QUEUE: usize = 256;

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
}

impl SenderSlot {
    pub(crate) fn new(spec: TrackSpec, track: LocalTrack) -> Self {
        Self {
            spec,
            track: Mutex::new(Arc::new(track)),
        }
    }

    pub(crate) fn replace(&self, track: LocalTrack) {
        *self.track.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(track);
    }

    fn current(&self) -> Arc<LocalTrack> {
        Arc::clone(&self.track.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A published, end-to-end encrypted track. Send encoded frames with
/// [`send_frame`](Self::send_frame).
#[derive(Debug)]
pub struct MediaSender {
    slot: Arc<SenderSlot>,
    kind: TrackKind,
    keys: Arc<Keys>,
    frame_number: AtomicU16,
}

impl MediaSender {
    pub(crate) fn new(slot: Arc<SenderSlot>, keys: Arc<Keys>) -> Self {
        Self {
            kind: slot.spec.kind(),
            slot,
            keys,
            frame_number: AtomicU16::new(0),
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

    /// Encrypts one encoded frame under the current epoch's key and sends
    /// it. `timestamp` is in the codec's clock rate; `keyframe` marks a
    /// frame a decoder can start from (always `false` for audio).
    ///
    /// Call it from one task per track, so packets follow the frame order.
    pub async fn send_frame(
        &self,
        frame: &[u8],
        timestamp: u32,
        keyframe: bool,
    ) -> Result<(), SendFrameError> {
        if frame.len() > MAX_FRAME_BYTES {
            return Err(SendFrameError::TooLarge(frame.len()));
        }
        let keyframe = keyframe && self.kind == TrackKind::Video;
        let ciphertext = self.keys.encrypt(frame, keyframe)?;
        let track = self.slot.current();
        if self.kind == TrackKind::Audio {
            if ciphertext.len() > MAX_RTP_PAYLOAD {
                return Err(SendFrameError::AudioTooLarge(frame.len()));
            }
            track.write_rtp(ciphertext, timestamp, true).await?;
            return Ok(());
        }
        let frame_number = self.frame_number.fetch_add(1, Ordering::Relaxed);
        let mut dd = [0u8; rtp_dd::MAX_LEN];
        // One buffer for the frame; each packet's payload is a view of it.
        let ciphertext = bytes::Bytes::from(ciphertext);
        for chunk in packetize(&ciphertext, MAX_RTP_PAYLOAD) {
            let mark = rtp_dd::FrameMark {
                start_of_frame: chunk.start,
                end_of_frame: chunk.end,
                frame_number,
                keyframe,
            };
            let len = rtp_dd::write(&mark, &mut dd);
            track
                .outbound()
                .write_rtp_with_dd(
                    ciphertext.slice_ref(chunk.payload),
                    timestamp,
                    chunk.end,
                    Some(&dd[..len]),
                )
                .await?;
        }
        Ok(())
    }
}

/// One decrypted frame from another member.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DecryptedFrame {
    /// The sender's participant id.
    pub participant_id: String,
    /// The sender's MLS identity (checked against the track's publisher).
    pub identity: String,
    /// The server's id for the track.
    pub track_id: String,
    /// The RTP timestamp of the frame (as rewritten by the SFU).
    pub timestamp: u32,
    /// Whether the sender marked it as a keyframe (authenticated).
    pub keyframe: bool,
    /// The MLS epoch whose key it was encrypted under.
    pub epoch: u64,
    /// The encoded frame, exactly as the sender passed it.
    pub data: Vec<u8>,
}

/// Where one remote track's decrypted frames go.
#[derive(Debug)]
pub(crate) struct FrameSink {
    pub(crate) tx: mpsc::Sender<DecryptedFrame>,
    pub(crate) participant_id: String,
    pub(crate) track_id: String,
}

/// Another member's track, as decrypted frames.
#[derive(Debug)]
pub struct RemoteMedia {
    rx: mpsc::Receiver<DecryptedFrame>,
    participant_id: String,
    track_id: String,
    kind: TrackKind,
}

impl RemoteMedia {
    /// The publisher's participant id.
    pub fn participant_id(&self) -> &str {
        &self.participant_id
    }

    /// The server's id for the track.
    pub fn track_id(&self) -> &str {
        &self.track_id
    }

    /// Audio or video.
    pub fn kind(&self) -> TrackKind {
        self.kind
    }

    /// The next decrypted frame, or `None` once the track has ended.
    pub async fn recv(&mut self) -> Option<DecryptedFrame> {
        self.rx.recv().await
    }

    /// The next frame if one is queued.
    pub fn try_recv(&mut self) -> Option<DecryptedFrame> {
        self.rx.try_recv().ok()
    }
}

/// Starts decrypting a remote track; returns the app's end of it.
pub(crate) fn receive(
    track: RemoteTrack,
    dd_id: Option<u8>,
    keys: Arc<Keys>,
) -> (RemoteMedia, tokio::task::JoinHandle<()>) {
    let info = track.info().clone();
    let (tx, rx) = mpsc::channel(FRAME_QUEUE);
    let sink = Arc::new(FrameSink {
        tx,
        participant_id: info.participant_id.clone(),
        track_id: info.track_id.clone(),
    });
    let media = RemoteMedia {
        rx,
        participant_id: info.participant_id.clone(),
        track_id: info.track_id.clone(),
        kind: info.kind,
    };
    let task = tokio::spawn(pump(track, info.kind, dd_id, sink, keys));
    (media, task)
}

/// Keyframe bits of the last few frame starts, by RTP timestamp: the bit
/// arrives on a frame's first packet and is needed once the frame is whole.
#[derive(Default)]
struct StartMarks(VecDeque<(u32, bool)>);

impl StartMarks {
    fn note(&mut self, timestamp: u32, keyframe: bool) {
        if self.0.len() >= 32 {
            self.0.pop_front();
        }
        self.0.push_back((timestamp, keyframe));
    }

    fn keyframe(&self, timestamp: u32) -> bool {
        self.0
            .iter()
            .rev()
            .find(|(ts, _)| *ts == timestamp)
            .is_some_and(|(_, k)| *k)
    }
}

async fn pump(
    mut track: RemoteTrack,
    kind: TrackKind,
    dd_id: Option<u8>,
    sink: Arc<FrameSink>,
    keys: Arc<Keys>,
) {
    // Keep an incomplete frame while a few newer ones complete, so that a
    // packet repaired by NACK/RTX after the next frame still completes it.
    let mut assembler = FrameAssembler::with_reorder_depth(MAX_FRAME_BYTES, REORDER_DEPTH);
    let mut marks = StartMarks::default();
    let mut incomplete = 0;
    while let Some(packet) = track.recv().await {
        let (start, end) = match kind {
            TrackKind::Audio => (true, true),
            TrackKind::Video => {
                let dd = dd_id.and_then(|id| {
                    packet
                        .extensions
                        .iter()
                        .find(|e| e.id == id)
                        .and_then(|e| rtp_dd::parse(&e.data).ok())
                });
                match dd {
                    Some(dd) => {
                        if dd.start_of_frame {
                            marks.note(packet.timestamp, dd.is_keyframe_start());
                        }
                        (dd.start_of_frame, dd.end_of_frame)
                    }
                    None => {
                        keys.count_malformed();
                        continue;
                    }
                }
            }
        };
        let Some(frame) = assembler.push(
            packet.sequence_number,
            packet.timestamp,
            start,
            end,
            &packet.payload,
        ) else {
            let discarded = assembler.discarded();
            if discarded > incomplete {
                keys.count_incomplete(discarded - incomplete);
                incomplete = discarded;
            }
            continue;
        };
        let keyframe = marks.keyframe(frame.timestamp);
        let ctx = FrameCtx {
            sink: Arc::clone(&sink),
            timestamp: frame.timestamp,
            keyframe,
        };
        keys.decrypt(Instant::now(), &frame.data, ctx);
    }
    debug!(track = %sink.track_id, "remote track ended");
}
