//! Encrypted media received: RTP packets in, decrypted frames out, for
//! every remote track (the sending side is in `sender`).
//!
//! Every frame is one SFrame ciphertext in the media wire format
//! ([`e2ee::frame::MediaCodec`]): the codec's packetizer bytes (a VP8 frame
//! tag, and on a keyframe its start code and size) stay in the clear and are
//! authenticated, the rest is encrypted. Video is then packetized as its
//! codec's RTP payload format says (VP8: RFC 7741), exactly as a browser
//! does after its encoded-frame transform, so both kinds of clients
//! understand each other. Video packets also carry the dependency
//! descriptor with start- and end-of-frame and, on the first packet of a
//! keyframe, the template structure: that is what the SFU reads. Audio
//! frames are one packet each.
use super::keys::{FrameCtx, Keys};
use crate::rtp_packet::RtpPacket;
use crate::track::RemoteTrack;
use crate::vp8_payload;
use e2ee::frame::{FrameAssembler, MediaCodec};
use signaling::proto::TrackKind;
use std::sync::Arc;
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
    /// Whether it is a keyframe, as its authenticated clear bytes say
    /// (VP8); `false` for audio.
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
    pub(crate) codec: MediaCodec,
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

/// Starts decrypting a remote track; returns the app's end of it. A track
/// whose codec the media format does not cover has every frame counted as
/// malformed.
pub(crate) fn receive(
    track: RemoteTrack,
    dd_id: Option<u8>,
    keys: Arc<Keys>,
) -> (RemoteMedia, tokio::task::JoinHandle<()>) {
    let info = track.info().clone();
    let (tx, rx) = mpsc::channel(FRAME_QUEUE);
    let codec = MediaCodec::from_name(&info.codec);
    let media = RemoteMedia {
        rx,
        participant_id: info.participant_id.clone(),
        track_id: info.track_id.clone(),
        kind: info.kind,
    };
    let sink = codec.map(|codec| {
        Arc::new(FrameSink {
            tx,
            codec,
            participant_id: info.participant_id,
            track_id: info.track_id.clone(),
        })
    });
    let task = tokio::spawn(async move {
        match sink {
            Some(sink) => pump(track, info.kind, dd_id, sink, keys).await,
            None => {
                debug!(track = %info.track_id, codec = %info.codec, "no media format for this codec");
                let mut track = track;
                while track.recv().await.is_some() {
                    keys.count_malformed();
                }
            }
        }
    });
    (media, task)
}

/// Where a packet's piece of the frame is, and whether it starts or ends
/// the frame: from the dependency descriptor when present, else from the
/// VP8 descriptor's start bit and the RTP marker.
fn locate(packet: &RtpPacket, kind: TrackKind, dd_id: Option<u8>) -> Option<FramePiece> {
    let dd = dd_id.and_then(|id| packet.extensions.iter().find(|e| e.id == id));
    frame_piece(
        kind,
        &packet.payload,
        packet.marker,
        dd.map(|ext| &ext.data[..]),
    )
}

/// One RTP packet's share of an encrypted frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramePiece {
    /// Payload bytes before the piece (the VP8 payload descriptor).
    pub skip: usize,
    /// The packet starts a frame.
    pub start: bool,
    /// The packet ends a frame.
    pub end: bool,
}

/// Where the encrypted frame's bytes start in one received RTP `payload`
/// of a `kind` track, and whether the packet starts or ends its frame: from
/// the dependency descriptor `dd` (the header extension's bytes) when
/// present, else from the VP8 descriptor's start bit and the RTP `marker`.
/// An audio packet is one whole frame. `None` if the payload is malformed.
///
/// This is how the SDK depacketizes what it receives; feed the pieces to a
/// [`receive_assembler`] and the frames it completes to the decryptor.
pub fn frame_piece(
    kind: TrackKind,
    payload: &[u8],
    marker: bool,
    dd: Option<&[u8]>,
) -> Option<FramePiece> {
    if kind == TrackKind::Audio {
        return Some(FramePiece {
            skip: 0,
            start: true,
            end: true,
        });
    }
    let vp8 = vp8_payload::parse(payload)?;
    let (start, end) = match dd {
        Some(dd) => {
            let dd = rtp_dd::parse(dd).ok()?;
            (dd.start_of_frame, dd.end_of_frame)
        }
        None => (vp8.frame_start, marker),
    };
    Some(FramePiece {
        skip: vp8.len,
        start,
        end,
    })
}

/// The frame assembler the SDK uses per remote track: it keeps an
/// incomplete frame while a few newer ones complete, so that a packet
/// repaired by NACK/RTX after the next frame still completes it.
pub fn receive_assembler() -> FrameAssembler {
    FrameAssembler::with_reorder_depth(MAX_FRAME_BYTES, REORDER_DEPTH)
}

async fn pump(
    mut track: RemoteTrack,
    kind: TrackKind,
    dd_id: Option<u8>,
    sink: Arc<FrameSink>,
    keys: Arc<Keys>,
) {
    let mut assembler = receive_assembler();
    let mut incomplete = 0;
    while let Some(packet) = track.recv().await {
        let Some(FramePiece { skip, start, end }) = locate(&packet, kind, dd_id) else {
            keys.count_malformed();
            continue;
        };
        let Some(frame) = assembler.push(
            packet.sequence_number,
            packet.timestamp,
            start,
            end,
            &packet.payload[skip..],
        ) else {
            let discarded = assembler.discarded();
            if discarded > incomplete {
                keys.count_incomplete(discarded - incomplete);
                incomplete = discarded;
            }
            continue;
        };
        let ctx = FrameCtx {
            sink: Arc::clone(&sink),
            timestamp: frame.timestamp,
        };
        keys.decrypt(Instant::now(), sink.codec, &frame.data, ctx);
    }
    debug!(track = %sink.track_id, "remote track ended");
}
