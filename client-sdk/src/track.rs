//! Tracks as a [`Participant`](crate::transport::Participant) sees them: what it
//! publishes, and what it receives from the others.

use crate::codec::Codec;
use crate::error::WriteError;
use crate::peer::{InboundTrack, OutboundTrack};
use crate::rtp_packet::RtpPacket;
use bytes::Bytes;
use signaling::proto::{TrackInfo, TrackKind};

/// What to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackSpec {
    /// The app's name for the track, unique among its tracks.
    pub cid: String,
    /// Its codec; must be one of the configured codecs (matched by format,
    /// not payload type).
    pub codec: Codec,
    /// Whether its payload is SFrame ciphertext (announced to the server).
    pub e2ee: bool,
    /// Simulcast encodings, lowest quality first; empty for one stream.
    pub encodings: Vec<Encoding>,
}

/// One simulcast encoding of a video track: its own RTP stream, named by
/// its rid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Encoding {
    /// The RTP stream id (`a=rid`): 1–16 ASCII letters and digits, unique
    /// within the track.
    pub rid: String,
    /// The picture width it is encoded at, in pixels.
    pub width: u16,
    /// The picture height it is encoded at, in pixels.
    pub height: u16,
}

impl Encoding {
    /// The encoding `rid` at `width` × `height`.
    pub fn new(rid: impl Into<String>, width: u16, height: u16) -> Self {
        Self {
            rid: rid.into(),
            width,
            height,
        }
    }
}

impl TrackSpec {
    /// A track named `cid` carrying `codec`.
    pub fn new(cid: impl Into<String>, codec: Codec) -> Self {
        Self {
            cid: cid.into(),
            codec,
            e2ee: false,
            encodings: Vec::new(),
        }
    }

    /// Sends the track as simulcast: one RTP stream per encoding, listed
    /// lowest quality first. It is negotiated as `a=rid`/`a=simulcast` in
    /// the publisher offer and announced with its rids (highest first) and
    /// sizes. Only for video; at most 4 encodings (the server's limit). One
    /// encoding, or none, is a plain track.
    pub fn with_simulcast(mut self, encodings: Vec<Encoding>) -> Self {
        self.encodings = encodings;
        self
    }

    /// Whether it is sent as more than one simulcast encoding.
    pub fn is_simulcast(&self) -> bool {
        self.encodings.len() > 1
    }

    /// How many RTP streams carry it (1 without simulcast).
    pub fn stream_count(&self) -> usize {
        self.encodings.len().max(1)
    }

    /// Marks the payload as SFrame ciphertext.
    pub fn with_e2ee(mut self, e2ee: bool) -> Self {
        self.e2ee = e2ee;
        self
    }

    /// Audio or video, from the codec.
    pub fn kind(&self) -> TrackKind {
        self.codec.kind
    }
}

/// How this client displays a remote video track; the server sends no
/// larger layer, and nothing while the track is not visible. See
/// [`Room::set_track_settings`](crate::Room::set_track_settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrackSettings {
    /// Whether the track is shown at all.
    pub visible: bool,
    /// The widest picture displayed, in pixels; `None` for no limit.
    pub max_width: Option<u16>,
    /// The tallest picture displayed, in pixels; `None` for no limit.
    pub max_height: Option<u16>,
}

impl Default for TrackSettings {
    /// Visible, no size limit: what the server assumes without settings.
    fn default() -> Self {
        Self {
            visible: true,
            max_width: None,
            max_height: None,
        }
    }
}

impl TrackSettings {
    /// Shown at most `max_width` × `max_height` pixels.
    pub fn max_size(max_width: u16, max_height: u16) -> Self {
        Self {
            max_width: Some(max_width),
            max_height: Some(max_height),
            ..Self::default()
        }
    }

    /// Not shown: the server sends none of the track's video.
    pub fn hidden() -> Self {
        Self {
            visible: false,
            ..Self::default()
        }
    }
}

/// A published track. Dropping it does not unpublish it; see
/// [`Participant::unpublish_track`](crate::transport::Participant::unpublish_track).
#[derive(Debug)]
pub struct LocalTrack {
    outbound: OutboundTrack,
    info: TrackInfo,
}

impl LocalTrack {
    pub(crate) fn new(outbound: OutboundTrack, info: TrackInfo) -> Self {
        Self { outbound, info }
    }

    pub(crate) fn outbound(&self) -> &OutboundTrack {
        &self.outbound
    }

    /// The app's name for it.
    pub fn cid(&self) -> &str {
        self.outbound.cid()
    }

    /// The server's id for it, as other participants see it.
    pub fn track_id(&self) -> &str {
        &self.info.track_id
    }

    /// The track as the server accepted it.
    pub fn info(&self) -> &TrackInfo {
        &self.info
    }

    /// Its SSRC on the publisher transport (of the lowest encoding, for
    /// simulcast).
    pub fn ssrc(&self) -> u32 {
        self.outbound.ssrc()
    }

    /// Packets sent so far.
    pub fn sent(&self) -> u64 {
        self.outbound.sent()
    }

    /// Sends one RTP packet with this payload, byte for byte; see
    /// [`OutboundTrack::write_rtp`].
    pub async fn write_rtp(
        &self,
        payload: impl Into<Bytes>,
        timestamp: u32,
        marker: bool,
    ) -> Result<u16, WriteError> {
        self.outbound.write_rtp(payload, timestamp, marker).await
    }
}

/// Who sent a [`RemoteTrack`], and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteTrackInfo {
    /// The server's id for the track.
    pub track_id: String,
    /// Its publisher; empty if the server never announced the track.
    pub participant_id: String,
    /// Audio or video.
    pub kind: TrackKind,
    /// Codec MIME subtype as the publisher declared it; empty if unknown.
    pub codec: String,
    /// Whether the payload is SFrame ciphertext.
    pub e2ee: bool,
    /// The subscriber-transport m-line it arrives on.
    pub mid: String,
}

/// Another participant's track, arriving on the subscriber transport.
#[derive(Debug)]
pub struct RemoteTrack {
    inbound: InboundTrack,
    info: RemoteTrackInfo,
}

impl RemoteTrack {
    pub(crate) fn new(inbound: InboundTrack, info: RemoteTrackInfo) -> Self {
        Self { inbound, info }
    }

    /// Who sent it, and what it is.
    pub fn info(&self) -> &RemoteTrackInfo {
        &self.info
    }

    /// The next packet, or `None` once the track has ended.
    pub async fn recv(&mut self) -> Option<RtpPacket> {
        self.inbound.recv().await
    }

    /// The next packet if one is queued.
    pub fn try_recv(&mut self) -> Option<RtpPacket> {
        self.inbound.try_recv()
    }

    /// Asks the publisher, through the SFU, for a keyframe (PLI).
    pub async fn request_keyframe(&self) -> Result<(), WriteError> {
        self.inbound.request_keyframe().await
    }

    /// Packets received so far, including dropped ones.
    pub fn received(&self) -> u64 {
        self.inbound.received()
    }

    /// Packets dropped because the app did not read fast enough.
    pub fn dropped(&self) -> u64 {
        self.inbound.dropped()
    }
}
