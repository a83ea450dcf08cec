//! Media leaving on a transport: one [`OutboundTrack`] per local track.

use super::PeerEvent;
use super::keyframe_tap::is_keyframe_request;
use crate::codec::Codec;
use crate::error::WriteError;
use crate::events::ConnectionState;
use bytes::Bytes;
use rtc::rtp;
use std::fmt;

/// RFC 8285 one-byte header extensions.
const EXTENSION_PROFILE_ONE_BYTE: u16 = 0xBEDE;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, watch};
use tracing::debug;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::rtp_transceiver::{RtpSender, RtpTransceiver};

/// A local track on a [`Peer`](crate::transport::Peer), sending RTP packets whose
/// payload, timestamp and marker the app chooses.
///
/// The SDK fills in the SSRC, payload type and sequence numbers, and keeps a
/// copy of recent packets to answer NACKs (with RTX where negotiated). The
/// payload is sent as given: no packetization, no inspection.
pub struct OutboundTrack {
    cid: String,
    codec: Codec,
    ssrc: u32,
    seq: AtomicU16,
    sent: AtomicU64,
    /// The payload type the answer settled on, looked up on first send.
    payload_type: OnceLock<u8>,
    /// The negotiated id of the dependency descriptor extension, if any.
    dd_id: OnceLock<Option<u8>>,
    state: watch::Receiver<ConnectionState>,
    local: Arc<TrackLocalStaticRTP>,
    pub(super) sender: Arc<dyn RtpSender>,
    transceiver: Arc<dyn RtpTransceiver>,
}

impl fmt::Debug for OutboundTrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundTrack")
            .field("cid", &self.cid)
            .field("codec", &self.codec.mime_type())
            .field("ssrc", &self.ssrc)
            .finish_non_exhaustive()
    }
}

impl OutboundTrack {
    pub(super) fn new(
        cid: String,
        codec: Codec,
        ssrc: u32,
        state: watch::Receiver<ConnectionState>,
        local: Arc<TrackLocalStaticRTP>,
        sender: Arc<dyn RtpSender>,
        transceiver: Arc<dyn RtpTransceiver>,
    ) -> Self {
        Self {
            cid,
            codec,
            ssrc,
            seq: AtomicU16::new(rand::random()),
            sent: AtomicU64::new(0),
            payload_type: OnceLock::new(),
            dd_id: OnceLock::new(),
            state,
            local,
            sender,
            transceiver,
        }
    }

    /// The app's name for the track (also its `a=msid` track id).
    pub fn cid(&self) -> &str {
        &self.cid
    }

    /// The codec it is declared as.
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// Its SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Packets sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// The `a=mid` of its m-line, once an offer or answer has assigned one.
    pub async fn mid(&self) -> Option<String> {
        self.transceiver.mid().await.ok().flatten()
    }

    /// Sends one RTP packet carrying `payload` unchanged, and returns the
    /// sequence number it was given.
    ///
    /// `timestamp` is in the codec's clock rate; `marker` is the RTP marker
    /// bit (end of a video frame, start of a talk spurt). Call it from one
    /// task per track, so that sequence numbers follow the write order.
    ///
    /// Fails with [`WriteError::NotConnected`] until the transport is
    /// connected: nothing would carry the packet.
    pub async fn write_rtp(
        &self,
        payload: impl Into<Bytes>,
        timestamp: u32,
        marker: bool,
    ) -> Result<u16, WriteError> {
        self.write_rtp_with_dd(payload, timestamp, marker, None)
            .await
    }

    /// Like [`write_rtp`](Self::write_rtp), with a dependency descriptor
    /// header extension (see the `rtp-dd` crate) when the transport
    /// negotiated one; without it the descriptor is left out.
    pub async fn write_rtp_with_dd(
        &self,
        payload: impl Into<Bytes>,
        timestamp: u32,
        marker: bool,
        dependency_descriptor: Option<&[u8]>,
    ) -> Result<u16, WriteError> {
        let state = *self.state.borrow();
        match state {
            ConnectionState::Connected => {}
            ConnectionState::Closed | ConnectionState::Failed => return Err(WriteError::Closed),
            _ => return Err(WriteError::NotConnected),
        }
        let payload_type = self.payload_type().await?;
        let sequence_number = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut header = rtp::Header {
            version: 2,
            marker,
            payload_type,
            sequence_number,
            timestamp,
            ssrc: self.ssrc,
            ..rtp::Header::default()
        };
        if let Some(dd) = dependency_descriptor
            && let Some(id) = self.dd_id().await?
        {
            header.extension = true;
            header.extension_profile = EXTENSION_PROFILE_ONE_BYTE;
            header
                .set_extension(id, Bytes::copy_from_slice(dd))
                .map_err(|_| WriteError::ExtensionTooLarge)?;
        }
        let packet = rtp::Packet {
            header,
            payload: payload.into(),
        };
        self.local
            .write_rtp(packet)
            .await
            .map_err(|_| WriteError::Closed)?;
        self.sent.fetch_add(1, Ordering::Relaxed);
        Ok(sequence_number)
    }

    async fn dd_id(&self) -> Result<Option<u8>, WriteError> {
        if let Some(id) = self.dd_id.get() {
            return Ok(*id);
        }
        let params = self
            .sender
            .get_parameters()
            .await
            .map_err(|_| WriteError::Closed)?;
        let id = params
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|e| e.uri == rtp_dd::URI)
            .and_then(|e| u8::try_from(e.id).ok())
            .filter(|id| (1..=14).contains(id));
        Ok(*self.dd_id.get_or_init(|| id))
    }

    async fn payload_type(&self) -> Result<u8, WriteError> {
        if let Some(pt) = self.payload_type.get() {
            return Ok(*pt);
        }
        let params = self
            .sender
            .get_parameters()
            .await
            .map_err(|_| WriteError::Closed)?;
        let pt = params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| self.codec.matches_rtc(&c.rtp_codec))
            .map(|c| c.payload_type)
            .unwrap_or(self.codec.payload_type);
        Ok(*self.payload_type.get_or_init(|| pt))
    }
}

/// Forwards the keyframe requests the SFU sends about one local track, until
/// the track is removed or the connection closes.
pub(super) async fn feedback_pump(
    local: Arc<TrackLocalStaticRTP>,
    cid: String,
    events: mpsc::UnboundedSender<PeerEvent>,
) {
    loop {
        match local.poll().await {
            Some(TrackLocalEvent::OnRtcpPacket(packets)) => {
                if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                    debug!(%cid, "keyframe requested");
                    let _ = events.send(PeerEvent::KeyframeRequested { cid: cid.clone() });
                }
            }
            Some(_) => {}
            None => break,
        }
    }
}
