//! Media arriving on a transport: one [`InboundTrack`] per remote track.

use super::PeerEvent;
use crate::error::WriteError;
use crate::rtp_packet::RtpPacket;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::RTCRtpTransceiverId;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use signaling::proto::TrackKind;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::mpsc;
use tracing::{debug, trace, warn};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RTCRtpReceiverId;

/// Per-queue counters, shared by an [`InboundTrack`] and the pump feeding it.
#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    dropped: AtomicU64,
}

/// Where a pump's packets currently go.
struct Sink {
    tx: mpsc::Sender<RtpPacket>,
    counters: Arc<Counters>,
}

/// One remote media stream as `webrtc` delivers it (one m-line, one SSRC),
/// and the queue its packets currently go to.
///
/// The queue can be swapped while the stream lives: the SFU reuses an
/// m-line for another track after an `inactive` interval, and `webrtc` sees
/// the same stream go on. With no queue installed, packets are dropped and
/// counted as unrouted.
pub(crate) struct MediaStream {
    mid: String,
    kind: TrackKind,
    stream_id: String,
    track_id: String,
    queue: usize,
    /// SSRC of the latest packet: where keyframe requests go.
    ssrc: AtomicU32,
    unrouted: AtomicU64,
    sink: Mutex<Option<Sink>>,
    remote: Arc<dyn TrackRemote>,
}

impl fmt::Debug for MediaStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaStream")
            .field("mid", &self.mid)
            .field("kind", &self.kind)
            .field("unrouted", &self.unrouted())
            .finish_non_exhaustive()
    }
}

impl MediaStream {
    fn sink(&self) -> std::sync::MutexGuard<'_, Option<Sink>> {
        self.sink.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the current queue: its [`InboundTrack`] returns what is queued,
    /// then `None`. Packets from now on are dropped until [`open`](Self::open).
    pub(crate) fn close(&self) {
        self.sink().take();
    }

    /// Ends the current queue, if any, and starts a fresh one for the
    /// packets from now on.
    pub(crate) fn open(self: &Arc<Self>) -> InboundTrack {
        let (tx, rx) = mpsc::channel(self.queue.max(1));
        let counters = Arc::new(Counters::default());
        *self.sink() = Some(Sink {
            tx,
            counters: Arc::clone(&counters),
        });
        InboundTrack {
            stream: Arc::clone(self),
            rx,
            counters,
        }
    }

    /// Packets dropped because no queue was installed.
    pub(crate) fn unrouted(&self) -> u64 {
        self.unrouted.load(Ordering::Relaxed)
    }

    fn deliver(&self, packet: RtpPacket) {
        let sink = self.sink();
        let Some(sink) = sink.as_ref() else {
            self.unrouted.fetch_add(1, Ordering::Relaxed);
            trace!(mid = %self.mid, "packet on an unassigned m-line dropped");
            return;
        };
        sink.counters.received.fetch_add(1, Ordering::Relaxed);
        match sink.tx.try_send(packet) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                sink.counters.dropped.fetch_add(1, Ordering::Relaxed);
                trace!("inbound queue full, packet dropped");
            }
            // The app dropped the track; keep draining so `webrtc`'s queue
            // does not fill up and complain.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// One remote track arriving on a [`Peer`](crate::transport::Peer): a queue of its RTP
/// packets, and the way to ask its sender for a keyframe.
///
/// Packets are queued up to [`PeerConfig::track_queue`](crate::transport::PeerConfig::track_queue);
/// when the app falls further behind, new packets are dropped and counted.
/// RTCP (receiver reports, NACK, TWCC feedback) is handled inside the
/// transport whether or not the app reads.
pub struct InboundTrack {
    stream: Arc<MediaStream>,
    rx: mpsc::Receiver<RtpPacket>,
    counters: Arc<Counters>,
}

impl fmt::Debug for InboundTrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundTrack")
            .field("mid", &self.stream.mid)
            .field("kind", &self.stream.kind)
            .field("stream_id", &self.stream.stream_id)
            .field("track_id", &self.stream.track_id)
            .finish_non_exhaustive()
    }
}

impl InboundTrack {
    /// The `a=mid` of the m-line it arrives on.
    pub fn mid(&self) -> &str {
        &self.stream.mid
    }

    /// Audio or video.
    pub fn kind(&self) -> TrackKind {
        self.stream.kind
    }

    /// The sender's media stream id (the first `a=msid` value).
    pub fn stream_id(&self) -> &str {
        &self.stream.stream_id
    }

    /// The sender's track id (the second `a=msid` value).
    pub fn track_id(&self) -> &str {
        &self.stream.track_id
    }

    /// The next packet, or `None` once the track has ended.
    pub async fn recv(&mut self) -> Option<RtpPacket> {
        self.rx.recv().await
    }

    /// The next packet if one is queued.
    pub fn try_recv(&mut self) -> Option<RtpPacket> {
        self.rx.try_recv().ok()
    }

    /// Packets received on this track so far, including dropped ones.
    pub fn received(&self) -> u64 {
        self.counters.received.load(Ordering::Relaxed)
    }

    /// Packets dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// The media stream it is fed from.
    pub(crate) fn stream(&self) -> &Arc<MediaStream> {
        &self.stream
    }

    /// Sends a Picture Loss Indication (RFC 4585) for this track, asking its
    /// sender for a keyframe.
    pub async fn request_keyframe(&self) -> Result<(), WriteError> {
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: self.stream.ssrc.load(Ordering::Relaxed),
        };
        self.stream
            .remote
            .write_rtcp(vec![Box::new(pli)])
            .await
            .map_err(|_| WriteError::Closed)
    }
}

/// Reads one remote track for as long as it lives: waits for it to open,
/// announces it as a [`PeerEvent::Track`], then moves its packets into
/// whichever queue its [`MediaStream`] currently has. Reading promptly
/// matters: `webrtc` drops packets when its own small per-track queue is
/// full.
pub(super) async fn pump(
    remote: Arc<dyn TrackRemote>,
    pc: Option<Weak<dyn PeerConnection>>,
    events: mpsc::UnboundedSender<PeerEvent>,
    queue: usize,
) {
    let init = loop {
        match remote.poll().await {
            Some(TrackRemoteEvent::OnOpen(init)) => break init,
            Some(_) => continue,
            None => return,
        }
    };
    let mid = match pc.as_ref().and_then(Weak::upgrade) {
        Some(pc) => find_mid(pc.as_ref(), init.receiver_id).await,
        None => None,
    };
    let mid = mid.unwrap_or_else(|| {
        warn!("remote track without a mid");
        String::new()
    });
    let kind = match remote.kind().await {
        RtpCodecKind::Audio => TrackKind::Audio,
        _ => TrackKind::Video,
    };
    let stream = Arc::new(MediaStream {
        mid,
        kind,
        stream_id: remote.stream_id().await,
        track_id: remote.track_id().await,
        queue,
        ssrc: AtomicU32::new(init.ssrc),
        unrouted: AtomicU64::new(0),
        sink: Mutex::new(None),
        remote: Arc::clone(&remote),
    });
    let track = stream.open();
    debug!(mid = %stream.mid, msid = %stream.track_id, ssrc = init.ssrc, "remote track open");
    let _ = events.send(PeerEvent::Track(track));

    while let Some(event) = remote.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                stream.ssrc.store(packet.header.ssrc, Ordering::Relaxed);
                stream.deliver(RtpPacket::from(packet));
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
    // Whoever reads the current queue sees the end once it is drained.
    stream.close();
    debug!(mid = %stream.mid, unrouted = stream.unrouted(), "remote track ended");
}

async fn find_mid(pc: &dyn PeerConnection, receiver: RTCRtpReceiverId) -> Option<String> {
    let id = RTCRtpTransceiverId::from(receiver);
    for transceiver in pc.get_transceivers().await {
        if transceiver.id() == id {
            return transceiver.mid().await.ok().flatten();
        }
    }
    None
}
