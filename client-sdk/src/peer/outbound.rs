//! Media leaving on a transport: one [`OutboundTrack`] per local track.

use super::PeerEvent;
use super::keyframe_tap::is_keyframe_request;
use crate::codec::Codec;
use crate::error::WriteError;
use crate::events::ConnectionState;
use bytes::Bytes;
use rtc::rtp;
use std::fmt;

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::{mpsc, watch};
use tracing::debug;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::rtp_transceiver::{RtpSender, RtpTransceiver};

/// RFC 8285 one-byte header extensions.
const EXTENSION_PROFILE_ONE_BYTE: u16 = 0xBEDE;
/// RFC 8843 §15: the m-line a packet belongs to.
pub(super) const MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
/// RFC 8852 §3.1: the simulcast stream (rid) a packet belongs to.
pub(super) const RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
/// RFC 8852 §3.2: the stream an RTX packet repairs.
pub(super) const REPAIRED_RID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";

/// The RTP streams of one track: one, or one per simulcast encoding
/// (lowest quality first), each with its own SSRC and sequence numbers.
#[derive(Debug)]
pub(super) struct Streams {
    ssrcs: Vec<u32>,
    seqs: Vec<AtomicU16>,
    /// Empty without simulcast.
    rids: Vec<Bytes>,
}

impl Streams {
    pub(super) fn new(ssrcs: Vec<u32>, rids: Vec<String>) -> Self {
        Self {
            seqs: ssrcs
                .iter()
                .map(|_| AtomicU16::new(rand::random()))
                .collect(),
            ssrcs,
            rids: rids.into_iter().map(Bytes::from).collect(),
        }
    }
}

/// What the negotiation settled for this track, looked up on first send.
#[derive(Debug, Clone)]
struct Negotiated {
    payload_type: u8,
    dd_id: Option<u8>,
    /// Simulcast only: the SFU (like any receiver of rid-based simulcast)
    /// tells the streams apart by these two extensions, since the offer
    /// carries no `a=ssrc` lines for them.
    mid: Option<(u8, Bytes)>,
    rid_id: Option<u8>,
}

/// A local track on a [`Peer`](crate::transport::Peer), sending RTP packets whose
/// payload, timestamp and marker the app chooses.
///
/// The SDK fills in the SSRC, payload type and sequence numbers, and keeps a
/// copy of recent packets to answer NACKs (with RTX where negotiated). The
/// payload is sent as given: no packetization, no inspection.
pub struct OutboundTrack {
    cid: String,
    codec: Codec,
    streams: Streams,
    sent: AtomicU64,
    negotiated: OnceLock<Negotiated>,
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
            .field("ssrcs", &self.streams.ssrcs)
            .finish_non_exhaustive()
    }
}

impl OutboundTrack {
    pub(super) fn new(
        cid: String,
        codec: Codec,
        streams: Streams,
        state: watch::Receiver<ConnectionState>,
        local: Arc<TrackLocalStaticRTP>,
        sender: Arc<dyn RtpSender>,
        transceiver: Arc<dyn RtpTransceiver>,
    ) -> Self {
        Self {
            cid,
            codec,
            streams,
            sent: AtomicU64::new(0),
            negotiated: OnceLock::new(),
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

    /// Its SSRC (the lowest encoding's, for simulcast).
    pub fn ssrc(&self) -> u32 {
        self.streams.ssrcs[0]
    }

    /// How many RTP streams it sends: its simulcast encodings, or 1.
    pub fn stream_count(&self) -> usize {
        self.streams.ssrcs.len()
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
        self.write_stream_rtp(0, payload, timestamp, marker, dependency_descriptor)
            .await
    }

    /// Like [`write_rtp_with_dd`](Self::write_rtp_with_dd), on the RTP
    /// stream of simulcast encoding `encoding` (lowest quality first; 0 on
    /// a plain track). Simulcast packets also carry the mid and rid header
    /// extensions that name their stream. Call it from one task per track.
    pub async fn write_stream_rtp(
        &self,
        encoding: usize,
        payload: impl Into<Bytes>,
        timestamp: u32,
        marker: bool,
        dependency_descriptor: Option<&[u8]>,
    ) -> Result<u16, WriteError> {
        let (Some(&ssrc), Some(seq)) = (
            self.streams.ssrcs.get(encoding),
            self.streams.seqs.get(encoding),
        ) else {
            return Err(WriteError::NoEncoding(encoding));
        };
        let state = *self.state.borrow();
        match state {
            ConnectionState::Connected => {}
            ConnectionState::Closed | ConnectionState::Failed => return Err(WriteError::Closed),
            _ => return Err(WriteError::NotConnected),
        }
        let negotiated = self.negotiated().await?;
        let sequence_number = seq.fetch_add(1, Ordering::Relaxed);
        let mut header = rtp::Header {
            version: 2,
            marker,
            payload_type: negotiated.payload_type,
            sequence_number,
            timestamp,
            ssrc,
            ..rtp::Header::default()
        };
        let mut extensions: Vec<(u8, Bytes)> = Vec::with_capacity(3);
        if let Some(dd) = dependency_descriptor
            && let Some(id) = negotiated.dd_id
        {
            extensions.push((id, Bytes::copy_from_slice(dd)));
        }
        if let Some(rid) = self.streams.rids.get(encoding) {
            if let Some((id, mid)) = &negotiated.mid {
                extensions.push((*id, mid.clone()));
            }
            if let Some(id) = negotiated.rid_id {
                extensions.push((id, rid.clone()));
            }
        }
        if !extensions.is_empty() {
            header.extension = true;
            header.extension_profile = EXTENSION_PROFILE_ONE_BYTE;
            for (id, value) in extensions {
                header
                    .set_extension(id, value)
                    .map_err(|_| WriteError::ExtensionTooLarge)?;
            }
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

    async fn negotiated(&self) -> Result<&Negotiated, WriteError> {
        if let Some(n) = self.negotiated.get() {
            return Ok(n);
        }
        let params = self
            .sender
            .get_parameters()
            .await
            .map_err(|_| WriteError::Closed)?;
        let rtp = &params.rtp_parameters;
        let extension_id = |uri: &str| {
            rtp.header_extensions
                .iter()
                .find(|e| e.uri == uri)
                .and_then(|e| u8::try_from(e.id).ok())
                .filter(|id| (1..=14).contains(id))
        };
        let payload_type = rtp
            .codecs
            .iter()
            .find(|c| self.codec.matches_rtc(&c.rtp_codec))
            .map(|c| c.payload_type)
            .unwrap_or(self.codec.payload_type);
        let mid = match (self.streams.rids.is_empty(), extension_id(MID_URI)) {
            (false, Some(id)) => self.mid().await.map(|mid| (id, Bytes::from(mid))),
            _ => None,
        };
        let negotiated = Negotiated {
            payload_type,
            dd_id: extension_id(rtp_dd::URI),
            mid,
            rid_id: extension_id(RID_URI),
        };
        Ok(self.negotiated.get_or_init(|| negotiated))
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
