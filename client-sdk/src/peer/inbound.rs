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
use std::sync::{Arc, Weak};
use tokio::sync::mpsc;
use tracing::{debug, trace, warn};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;
use webrtc::rtp_transceiver::RTCRtpReceiverId;

#[derive(Debug, Default)]
struct Counters {
    /// SSRC of the latest packet: where keyframe requests go.
    ssrc: AtomicU32,
    received: AtomicU64,
    dropped: AtomicU64,
}

/// One remote track arriving on a [`Peer`](crate::Peer): a queue of its RTP
/// packets, and the way to ask its sender for a keyframe.
///
/// Packets are queued up to [`PeerConfig::track_queue`](crate::PeerConfig::track_queue);
/// when the app falls further behind, new packets are dropped and counted.
/// RTCP (receiver reports, NACK, TWCC feedback) is handled inside the
/// transport whether or not the app reads.
pub struct InboundTrack {
    mid: String,
    kind: TrackKind,
    stream_id: String,
    track_id: String,
    rx: mpsc::Receiver<RtpPacket>,
    counters: Arc<Counters>,
    remote: Arc<dyn TrackRemote>,
}

impl fmt::Debug for InboundTrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundTrack")
            .field("mid", &self.mid)
            .field("kind", &self.kind)
            .field("stream_id", &self.stream_id)
            .field("track_id", &self.track_id)
            .finish_non_exhaustive()
    }
}

impl InboundTrack {
    /// The `a=mid` of the m-line it arrives on.
    pub fn mid(&self) -> &str {
        &self.mid
    }

    /// Audio or video.
    pub fn kind(&self) -> TrackKind {
        self.kind
    }

    /// The sender's media stream id (the first `a=msid` value).
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }

    /// The sender's track id (the second `a=msid` value).
    pub fn track_id(&self) -> &str {
        &self.track_id
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

    /// Sends a Picture Loss Indication (RFC 4585) for this track, asking its
    /// sender for a keyframe.
    pub async fn request_keyframe(&self) -> Result<(), WriteError> {
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: self.counters.ssrc.load(Ordering::Relaxed),
        };
        self.remote
            .write_rtcp(vec![Box::new(pli)])
            .await
            .map_err(|_| WriteError::Closed)
    }
}

/// Reads one remote track for as long as it lives: waits for it to open,
/// announces it as a [`PeerEvent::Track`], then moves its packets into the
/// track's queue. Reading promptly matters: `webrtc` drops packets when its
/// own small per-track queue is full.
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
    let counters = Arc::new(Counters::default());
    counters.ssrc.store(init.ssrc, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(queue.max(1));
    let track = InboundTrack {
        mid,
        kind,
        stream_id: remote.stream_id().await,
        track_id: remote.track_id().await,
        rx,
        counters: Arc::clone(&counters),
        remote: Arc::clone(&remote),
    };
    debug!(mid = %track.mid, msid = %track.track_id, ssrc = init.ssrc, "remote track open");
    let _ = events.send(PeerEvent::Track(track));

    while let Some(event) = remote.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                counters.ssrc.store(packet.header.ssrc, Ordering::Relaxed);
                counters.received.fetch_add(1, Ordering::Relaxed);
                match tx.try_send(RtpPacket::from(packet)) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        counters.dropped.fetch_add(1, Ordering::Relaxed);
                        trace!("inbound queue full, packet dropped");
                    }
                    // The app dropped the track; keep draining so `webrtc`'s
                    // queue does not fill up and complain.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
    debug!("remote track ended");
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
