//! What goes into and comes out of the [`crate::MediaPlane`].
//!
//! [`MediaCommand`] and [`MediaEvent`] are also the boundary between
//! signaling and the media plane: signaling builds these commands and reads
//! these events directly, so they are defined once, here, free of any async
//! runtime. The enums are exhaustive on purpose: only this workspace matches
//! on them, and a new variant must fail to compile wherever it has to be
//! handled (signaling's sessions, the shard shell's dispatch) rather than be
//! dropped by a wildcard arm.

use crate::sdp::{ClientSdp, SdpLimits};
use std::net::SocketAddr;
use std::time::Duration;

/// Which of a participant's two transports (the wire protocol calls it the
/// same: `signaling::proto::Target`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Client → SFU media; the client offers.
    Publisher,
    /// SFU → client media; the SFU offers.
    Subscriber,
}

/// Audio or video, as declared at publish time (the wire protocol's
/// `signaling::proto::TrackKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

/// Media-plane settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MediaConfig {
    /// The address in our ICE host candidate: where clients send media.
    pub candidate_addr: SocketAddr,
    /// A participant whose transports receive nothing for this long is
    /// reported with [`MediaEvent::Timeout`].
    pub ice_timeout: Duration,
    /// Packets kept per outgoing stream to answer NACKs.
    pub rtx_cache_packets: usize,
    /// How long packets stay answerable to NACKs.
    pub rtx_cache_age: Duration,
    /// Minimum gap between keyframe requests sent to one publisher track.
    /// Also the first backoff interval of each subscriber's own requests.
    pub keyframe_min_interval: Duration,
    /// Longest backoff interval of one subscriber's keyframe requests for
    /// one track: a subscriber that keeps asking gets a request through at
    /// most this often (see [`crate::keyframe::KeyframeBudget`]). Equal to
    /// `keyframe_min_interval`, there is no backoff.
    pub keyframe_backoff_max: Duration,
    /// A subscriber waiting for a keyframe on a track that carries the
    /// dependency descriptor gets the request repeated (still throttled) if
    /// no keyframe started this long after the last one.
    pub keyframe_retry: Duration,
    /// Estimate each subscriber's downlink from its transport-wide
    /// congestion control feedback, starting at this many bits per second,
    /// and share the estimate across its tracks (see
    /// [`crate::layers`]); `None` forwards every layer the allocator
    /// would pick with no limit.
    pub bandwidth_estimation: Option<u64>,
    /// Largest datagram accepted.
    pub max_datagram: usize,
    /// Limits on clients' SDP, and on the subscriber m-lines the plane
    /// makes (see [`SdpLimits::max_media_lines`]).
    pub sdp: SdpLimits,
}

impl MediaConfig {
    /// Defaults for a media port at `candidate_addr`.
    pub fn new(candidate_addr: SocketAddr) -> Self {
        Self {
            candidate_addr,
            ice_timeout: Duration::from_secs(10),
            rtx_cache_packets: 1024,
            rtx_cache_age: Duration::from_secs(3),
            keyframe_min_interval: Duration::from_millis(500),
            keyframe_backoff_max: crate::keyframe::DEFAULT_KEYFRAME_BACKOFF_MAX,
            keyframe_retry: Duration::from_secs(1),
            bandwidth_estimation: None,
            max_datagram: 2048,
            sdp: SdpLimits::default(),
        }
    }
}

/// A request from signaling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCommand {
    /// A participant joined a room.
    Join {
        /// Participant id.
        participant: String,
        /// Room name.
        room: String,
        /// May publish.
        can_publish: bool,
        /// Subscribe to every track in the room, now and later.
        auto_subscribe: bool,
    },
    /// A participant left.
    Leave {
        /// Participant id.
        participant: String,
    },
    /// Publisher-transport offer.
    PublisherOffer {
        /// Participant id.
        participant: String,
        /// SDP, best prepared ([`ClientSdp::prepare_offer`]) before it is
        /// queued to the plane.
        sdp: ClientSdp,
    },
    /// Subscriber-transport answer.
    SubscriberAnswer {
        /// Participant id.
        participant: String,
        /// SDP, best prepared ([`ClientSdp::prepare_answer`]) before it is
        /// queued to the plane.
        sdp: ClientSdp,
    },
    /// A trickled remote candidate (`candidate:...`).
    Candidate {
        /// Participant id.
        participant: String,
        /// Transport.
        target: Target,
        /// The candidate attribute value.
        candidate: String,
    },
    /// A track published at publisher-side `mid`.
    Publish {
        /// Participant id.
        participant: String,
        /// Server track id.
        track_id: String,
        /// Publisher-side m-line.
        mid: String,
        /// Audio or video.
        kind: TrackKind,
        /// Simulcast rids, highest quality first.
        simulcast: Vec<String>,
        /// The picture size of each spatial layer as the publisher
        /// declared it, lowest first (the encodings of `simulcast` in
        /// reverse order, or an SVC stream's spatial layers); empty if it
        /// declared none. Used where the dependency descriptor gives no
        /// render resolutions.
        layer_sizes: Vec<LayerSize>,
    },
    /// A track was unpublished.
    Unpublish {
        /// Participant id.
        participant: String,
        /// Track id.
        track_id: String,
    },
    /// Subscribe to a track.
    Subscribe {
        /// Participant id.
        participant: String,
        /// Track id.
        track_id: String,
    },
    /// Unsubscribe from a track.
    Unsubscribe {
        /// Participant id.
        participant: String,
        /// Track id.
        track_id: String,
    },
    /// How a subscriber displays a track it receives: the layer allocator
    /// never sends it more than this.
    TrackSettings {
        /// Participant id (the subscriber).
        participant: String,
        /// Track id.
        track_id: String,
        /// The subscriber shows the track at all; `false` sends it nothing.
        visible: bool,
        /// The widest picture it displays, in pixels; `None` for no limit.
        max_width: Option<u16>,
        /// The tallest picture it displays, in pixels; `None` for no limit.
        max_height: Option<u16>,
    },
}

/// A spatial layer's picture size, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerSize {
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
}

impl MediaCommand {
    /// Checks and parses the client SDP this command carries, if any (see
    /// [`ClientSdp`]): the costly part of negotiation, done wherever this
    /// is called rather than on the media plane's thread.
    pub fn prepare(&mut self, limits: &SdpLimits) {
        match self {
            Self::PublisherOffer { sdp, .. } => sdp.prepare_offer(limits),
            Self::SubscriberAnswer { sdp, .. } => sdp.prepare_answer(limits),
            Self::Join { .. }
            | Self::Leave { .. }
            | Self::Candidate { .. }
            | Self::Publish { .. }
            | Self::Unpublish { .. }
            | Self::Subscribe { .. }
            | Self::Unsubscribe { .. }
            | Self::TrackSettings { .. } => {}
        }
    }

    /// The participant the command is about. Every command names one: the
    /// media plane, and a shell that spreads participants over several
    /// planes, find where it goes by this id.
    pub fn participant(&self) -> &str {
        // No wildcard: a new command must say whom it is about.
        match self {
            Self::Join { participant, .. }
            | Self::Leave { participant }
            | Self::PublisherOffer { participant, .. }
            | Self::SubscriberAnswer { participant, .. }
            | Self::Candidate { participant, .. }
            | Self::Publish { participant, .. }
            | Self::Unpublish { participant, .. }
            | Self::Subscribe { participant, .. }
            | Self::Unsubscribe { participant, .. }
            | Self::TrackSettings { participant, .. } => participant,
        }
    }
}

/// Something one participant's signaling session must hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    /// Answer to its publisher offer.
    PublisherAnswer {
        /// SDP.
        sdp: String,
    },
    /// A subscriber-transport offer.
    SubscriberOffer {
        /// SDP.
        sdp: String,
    },
    /// A track will arrive at `mid` on the subscriber transport.
    Subscribed {
        /// Track id.
        track_id: String,
        /// Subscriber-side m-line.
        mid: String,
    },
    /// A track no longer arrives.
    Unsubscribed {
        /// Track id.
        track_id: String,
    },
    /// A track it receives was paused because its bandwidth estimate
    /// cannot hold even the lowest layer (`paused`), or resumed (not
    /// `paused`). The client can show an avatar instead of a frozen frame.
    TrackPaused {
        /// Track id.
        track_id: String,
        /// Paused, or resumed.
        paused: bool,
    },
    /// Its room's dominant speaker changed (`None`: nobody speaks).
    ActiveSpeaker {
        /// The speaker's participant id.
        participant_id: Option<String>,
    },
    /// Dynacast, to a publisher: the simulcast encodings of its track that
    /// some subscriber wants now. It may stop encoding the others until
    /// they are listed again.
    PublisherLayers {
        /// Track id.
        track_id: String,
        /// The wanted encodings' rids, highest quality first.
        active: Vec<String>,
    },
    /// Its media has been silent past the ICE timeout.
    Timeout,
    /// A request failed.
    Error {
        /// Safe to show the client.
        message: String,
    },
    /// A negotiation request was refused because the participant has used
    /// up its share of the shard's time; it may retry later.
    RateLimited {
        /// Safe to show the client.
        message: String,
    },
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Local address to send from.
    pub source: SocketAddr,
    /// Remote address.
    pub destination: SocketAddr,
    /// The datagram.
    pub contents: Vec<u8>,
}

/// What [`crate::MediaPlane::poll_output`] returns.
#[derive(Debug)]
pub enum Output {
    /// Send a datagram.
    Transmit(Transmit),
    /// Tell a participant something.
    Event {
        /// Participant id.
        participant: String,
        /// What.
        event: MediaEvent,
    },
    /// Nothing more until this time, or until new input.
    Timeout(std::time::Instant),
}
