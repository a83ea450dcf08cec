//! Counters kept by the media plane. Plain integers: the core is owned by one
//! shard thread, so counting costs an add. The shell copies a snapshot out
//! for `/metrics` a few times a second, never per packet.

use str0m::stats::InboundDrops;

/// Upper bounds of the [`Stats::subscriber_estimates`] buckets, bits per
/// second: a phone on a poor link, one video at 360p, a few videos, HD.
pub const ESTIMATE_BUCKETS_BPS: [u64; 5] = [300_000, 600_000, 1_200_000, 2_500_000, u64::MAX];

/// Why a datagram or packet was dropped.
///
/// The `Rtp*`, `Srtp*` and `Rtx*` reasons are drops inside a transport's
/// str0m session (its `Rtc::inbound_drops` counters), folded in after each
/// datagram: they were silent before str0m counted them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// From an address no transport owns, and not a STUN request we can route.
    UnknownSource,
    /// Not STUN, DTLS, RTP or RTCP by its first byte (RFC 7983 demux).
    Unclassifiable,
    /// A STUN message that did not parse or named no known ufrag.
    BadStun,
    /// A datagram str0m refused (malformed RTP/RTCP/DTLS, SRTP auth failure).
    Rejected,
    /// Larger than the receive buffer or the configured limit.
    Oversized,
    /// RTP for a track nobody publishes or that no mid maps to.
    NoTrack,
    /// The subscriber's send stream was not ready (not yet negotiated).
    NotNegotiated,
    /// Not sent to one subscriber of a track that carries the dependency
    /// descriptor: the subscriber starts on a keyframe and this packet came
    /// before one. Counted once per subscriber that skipped it.
    AwaitingKeyframe,
    /// The dependency descriptor header extension did not parse.
    BadDependencyDescriptor,
    /// Not sent to one subscriber of a layered track: a layer it does not
    /// receive (another simulcast encoding, a spatial or temporal layer
    /// above its target). Counted once per subscriber that skipped it.
    LayerNotSelected,
    /// SRTP or SRTCP that failed authentication or decryption (or was too
    /// short to carry its tag) after the DTLS handshake: forged, corrupted,
    /// or from someone without the keys.
    SrtpUnauthenticated,
    /// SRTP or SRTCP that arrived before the DTLS handshake gave keys.
    /// A few per transport are normal: media can overtake the handshake.
    SrtpNoKeys,
    /// RTP whose header does not parse, or whose authenticated payload has
    /// invalid padding.
    RtpMalformed,
    /// RTP for an SSRC or payload type the transport never negotiated.
    RtpUnknownStream,
    /// RTP whose sequence number was already received or is too old,
    /// refused before decryption: a duplicate on the network, or a replay.
    RtpDuplicate,
    /// A retransmission (RTX) of a packet that had already arrived: normal
    /// with NACK when the original was only late, not lost. Kept apart from
    /// `RtpDuplicate` so that it does not look like an attack.
    RtxRedundant,
}

impl DropReason {
    /// Every reason, for rendering all counters even at zero.
    pub const ALL: [DropReason; 16] = [
        DropReason::UnknownSource,
        DropReason::Unclassifiable,
        DropReason::BadStun,
        DropReason::Rejected,
        DropReason::Oversized,
        DropReason::NoTrack,
        DropReason::NotNegotiated,
        DropReason::AwaitingKeyframe,
        DropReason::BadDependencyDescriptor,
        DropReason::LayerNotSelected,
        DropReason::SrtpUnauthenticated,
        DropReason::SrtpNoKeys,
        DropReason::RtpMalformed,
        DropReason::RtpUnknownStream,
        DropReason::RtpDuplicate,
        DropReason::RtxRedundant,
    ];

    /// Stable metric label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::UnknownSource => "unknown_source",
            DropReason::Unclassifiable => "unclassifiable",
            DropReason::BadStun => "bad_stun",
            DropReason::Rejected => "rejected",
            DropReason::Oversized => "oversized",
            DropReason::NoTrack => "no_track",
            DropReason::NotNegotiated => "not_negotiated",
            DropReason::AwaitingKeyframe => "awaiting_keyframe",
            DropReason::BadDependencyDescriptor => "bad_dependency_descriptor",
            DropReason::LayerNotSelected => "layer_not_selected",
            DropReason::SrtpUnauthenticated => "srtp_unauthenticated",
            DropReason::SrtpNoKeys => "srtp_no_keys",
            DropReason::RtpMalformed => "rtp_malformed",
            DropReason::RtpUnknownStream => "rtp_unknown_stream",
            DropReason::RtpDuplicate => "rtp_duplicate",
            DropReason::RtxRedundant => "rtx_redundant",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// str0m's drop counters under the plane's reasons. str0m's struct is
/// `non_exhaustive`: a reason it adds later must be mapped here (a debug
/// assertion notices one that is not).
fn inbound_reasons(d: &InboundDrops) -> [(DropReason, u64); 6] {
    debug_assert_eq!(
        d.total(),
        d.unauthenticated
            + d.no_keys
            + d.malformed
            + d.unknown_stream
            + d.duplicate
            + d.redundant_repair,
        "a str0m drop reason is not mapped"
    );
    [
        (DropReason::SrtpUnauthenticated, d.unauthenticated),
        (DropReason::SrtpNoKeys, d.no_keys),
        (DropReason::RtpMalformed, d.malformed),
        (DropReason::RtpUnknownStream, d.unknown_stream),
        (DropReason::RtpDuplicate, d.duplicate),
        (DropReason::RtxRedundant, d.redundant_repair),
    ]
}

/// A snapshot of the media plane's counters and gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Rooms with at least one participant (gauge).
    pub rooms: u64,
    /// Participants (gauge).
    pub participants: u64,
    /// Published tracks (gauge).
    pub tracks: u64,
    /// Subscriptions (gauge).
    pub subscriptions: u64,
    /// UDP datagrams received.
    pub datagrams_in: u64,
    /// UDP bytes received.
    pub bytes_in: u64,
    /// UDP datagrams sent.
    pub datagrams_out: u64,
    /// UDP bytes sent.
    pub bytes_out: u64,
    /// RTP packets received from publishers.
    pub rtp_in: u64,
    /// RTP packets handed to subscriber transports.
    pub rtp_forwarded: u64,
    /// SRTCP packets a transport authenticated and read.
    pub rtcp_in: u64,
    /// DTLS datagrams handed to a transport. str0m's DTLS layer discards a
    /// record it cannot use (after the handshake: anything but an alert or
    /// a repeated final flight) without saying so; this counts them all.
    pub dtls_in: u64,
    /// STUN datagrams handed to a transport (checked by its ICE agent,
    /// which discards a request whose integrity fails without saying so).
    pub stun_in: u64,
    /// Keyframe requests (PLI/FIR) received from subscribers.
    pub keyframe_requests_in: u64,
    /// Keyframe requests sent to publishers after aggregation and throttling.
    pub keyframe_requests_out: u64,
    /// Keyframe requests from subscribers refused because the subscriber
    /// asked again within its backoff interval for the track.
    pub keyframe_requests_throttled: u64,
    /// Client SDP offers and answers refused: over a size limit,
    /// unparsable, or not applicable.
    pub sdp_refused: u64,
    /// Subscriptions refused because the subscriber's SDP would pass its
    /// m-line limit.
    pub subscriptions_refused: u64,
    /// Remote ICE candidates refused: unparsable, or past a transport's
    /// limit.
    pub candidates_refused: u64,
    /// Times the allocator changed a subscription's target layer.
    pub layer_retargets: u64,
    /// Subscriptions paused for want of bandwidth at the last allocation
    /// (gauge).
    pub paused_for_bandwidth: u64,
    /// RTP packets of layered tracks forwarded, by spatial layer (the
    /// simulcast encoding or SVC spatial layer, 0 the lowest; the last
    /// counts every higher one too).
    pub rtp_forwarded_by_layer: [u64; 4],
    /// Subscribers by bandwidth estimate at the last allocation run:
    /// `[i]` counts those at or below [`ESTIMATE_BUCKETS_BPS`]`[i]`
    /// (cumulative, as a Prometheus histogram's buckets; the last is all
    /// with an estimate). A gauge.
    pub subscriber_estimates: [u64; ESTIMATE_BUCKETS_BPS.len()],
    /// Dynacast announcements to publishers (the encodings of a simulcast
    /// track that some subscriber wants changed).
    pub dynacast_updates: u64,
    /// Packets subscribers asked to be sent again (NACK).
    pub resends_requested: u64,
    /// Of those, resent from the track's shared store.
    pub resends_sent: u64,
    /// Packets kept for resends, over all published tracks (gauge).
    pub resend_store_packets: u64,
    dropped: [u64; DropReason::ALL.len()],
}

impl Stats {
    /// Counts one drop.
    pub fn drop(&mut self, reason: DropReason) {
        self.dropped[reason.index()] += 1;
    }

    /// Counts `n` drops at once.
    pub(crate) fn drop_n(&mut self, reason: DropReason, n: u64) {
        self.dropped[reason.index()] += n;
    }

    /// Counts what str0m dropped between two readings of one transport's
    /// [`InboundDrops`]; calls `grew` with each reason that grew.
    pub(crate) fn add_inbound_drops(
        &mut self,
        before: &InboundDrops,
        after: &InboundDrops,
        mut grew: impl FnMut(DropReason),
    ) {
        for ((reason, was), (_, is)) in inbound_reasons(before)
            .into_iter()
            .zip(inbound_reasons(after))
        {
            if is > was {
                self.drop_n(reason, is - was);
                grew(reason);
            }
        }
    }

    /// Drops so far for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }

    /// All drop counters with their labels.
    pub fn dropped_all(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.dropped(*r)))
    }
}
