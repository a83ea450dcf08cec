//! Counters kept by the media plane. Plain integers: the core is owned by one
//! shard thread, so counting costs an add. The shell copies a snapshot out
//! for `/metrics` a few times a second, never per packet.

/// Why a datagram or packet was dropped.
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
}

impl DropReason {
    /// Every reason, for rendering all counters even at zero.
    pub const ALL: [DropReason; 9] = [
        DropReason::UnknownSource,
        DropReason::Unclassifiable,
        DropReason::BadStun,
        DropReason::Rejected,
        DropReason::Oversized,
        DropReason::NoTrack,
        DropReason::NotNegotiated,
        DropReason::AwaitingKeyframe,
        DropReason::BadDependencyDescriptor,
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
        }
    }

    fn index(self) -> usize {
        self as usize
    }
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
    /// Keyframe requests (PLI/FIR) received from subscribers.
    pub keyframe_requests_in: u64,
    /// Keyframe requests sent to publishers after aggregation and throttling.
    pub keyframe_requests_out: u64,
    /// Client SDP offers and answers refused: over a size limit,
    /// unparsable, or not applicable.
    pub sdp_refused: u64,
    /// Subscriptions refused because the subscriber's SDP would pass its
    /// m-line limit.
    pub subscriptions_refused: u64,
    dropped: [u64; DropReason::ALL.len()],
}

impl Stats {
    /// Counts one drop.
    pub fn drop(&mut self, reason: DropReason) {
        self.dropped[reason.index()] += 1;
    }

    /// Counts `n` drops at once.
    pub(crate) fn drop_n(&mut self, reason: DropReason, n: u32) {
        self.dropped[reason.index()] += u64::from(n);
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
