//! One WebRTC transport: a str0m `Rtc` in RTP mode with ICE-lite, plus the
//! small caches the plane needs to route its packets without asking str0m
//! twice.

use crate::api::MediaConfig;
use crate::dd;
use crate::forwarder::{ParticipantKey, TrackKey};
use std::net::SocketAddr;
use std::time::Instant;
use str0m::bwe::Bitrate;
use str0m::change::SdpPendingOffer;
use str0m::format::Codec;
use str0m::media::{Mid, Pt, Rid};
use str0m::rtp::Ssrc;
use str0m::stats::InboundDrops;
use str0m::{Candidate, Rtc};

/// A transport's key in the plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TransportId(pub(crate) u64);

/// What we learned about an incoming SSRC the first time we saw it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RxInfo {
    pub(crate) ssrc: u32,
    pub(crate) track: Option<TrackKey>,
    pub(crate) rid: Option<Rid>,
    pub(crate) pt: Pt,
    pub(crate) codec: Option<Codec>,
    pub(crate) clock_rate: u32,
}

/// The payload type a subscriber's m-line uses for a codec.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxPt {
    pub(crate) mid: Mid,
    pub(crate) codec: Codec,
    pub(crate) pt: Pt,
}

/// Where one subscription's packets go, cached with the subscription in the
/// forwarder so the forwarding loop costs one transport lookup and one str0m
/// stream lookup per subscriber. Filled on the first packet after the
/// subscription's m-line goes live, and dropped whenever the line changes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CachedRoute {
    /// The subscriber's transport.
    pub(crate) transport: TransportId,
    /// SSRC of str0m's send stream for the m-line: a direct lookup, where
    /// finding the stream by mid is a scan.
    pub(crate) ssrc: Ssrc,
    /// The last codec forwarded and the payload type the m-line uses for it.
    pub(crate) codec: Codec,
    /// See `codec`.
    pub(crate) pt: Pt,
}

/// Why a transport could not be created.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// The configured candidate address is unusable.
    #[error("bad candidate address: {0}")]
    Candidate(String),
}

pub(crate) struct Transport {
    pub(crate) rtc: Rtc,
    pub(crate) participant: ParticipantKey,
    pub(crate) ufrag: String,
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) last_rx: Instant,
    /// What str0m last asked for; the plane's timer heap holds an entry
    /// for it whenever it is `Some`.
    pub(crate) next_timeout: Option<Instant>,
    /// Subscriber side: the offer awaiting an answer.
    pub(crate) pending_offer: Option<SdpPendingOffer>,
    /// Subscriber side: changes arrived while an offer was pending.
    pub(crate) renegotiate: bool,
    /// Publisher side: per incoming SSRC.
    pub(crate) rx: Vec<RxInfo>,
    /// Subscriber side: payload type mapping per m-line and codec.
    pub(crate) tx_pts: Vec<TxPt>,
    /// Queued for a poll at the next [`crate::MediaPlane::poll_output`].
    pub(crate) dirty: bool,
    /// str0m's inbound drop counters as last counted into the plane's stats.
    pub(crate) inbound_drops: InboundDrops,
    /// Drop reasons already logged at debug level for this transport, one
    /// bit per [`crate::DropReason`], so a flood logs each reason once.
    pub(crate) logged_drops: u32,
    /// Remote candidates accepted; one past the limit once it was reported.
    pub(crate) remote_candidates: u16,
}

impl Transport {
    /// A publisher or a `subscriber` transport; the subscriber's estimates
    /// its downlink when the configuration asks for it.
    pub(crate) fn new(
        participant: ParticipantKey,
        cfg: &MediaConfig,
        now: Instant,
        subscriber: bool,
    ) -> Result<Self, TransportError> {
        let bwe = cfg
            .bandwidth_estimation
            .filter(|_| subscriber)
            .map(Bitrate::bps);
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .set_stats_interval(None)
            .set_extension(dd::DD_EXT_ID, dd::extension())
            .enable_bwe(bwe)
            // Probing pads with blank packets: a resent media packet can
            // reach a browser's SFrame decryptor twice (libwebrtc assembles
            // a frame again from a copy that arrives before the frame is
            // decoded), and each copy would count as a replay there.
            .set_spurious_padding(false)
            .build(now);
        let cand = Candidate::host(cfg.candidate_addr, "udp")
            .map_err(|e| TransportError::Candidate(e.to_string()))?;
        rtc.add_local_candidate(cand);
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        Ok(Self {
            rtc,
            participant,
            ufrag,
            remote: None,
            last_rx: now,
            // Armed by the first poll: it is queued dirty.
            next_timeout: None,
            pending_offer: None,
            renegotiate: false,
            rx: Vec::new(),
            tx_pts: Vec::new(),
            dirty: true,
            inbound_drops: InboundDrops::default(),
            logged_drops: 0,
            remote_candidates: 0,
        })
    }

    /// Payload type the subscriber's `mid` uses for `codec`, looked up once.
    pub(crate) fn tx_pt(&mut self, mid: Mid, codec: Codec) -> Option<Pt> {
        if let Some(p) = self
            .tx_pts
            .iter()
            .find(|p| p.mid == mid && p.codec == codec)
        {
            return Some(p.pt);
        }
        let media = self.rtc.media(mid)?;
        let remote = media.remote_pts();
        let pt = self
            .rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec && remote.contains(&p.pt()))?
            .pt();
        self.tx_pts.push(TxPt { mid, codec, pt });
        Some(pt)
    }
}
