//! Server configuration.

use super::caps::SizeCaps;
use super::origin::AllowedOrigins;
use crate::proto::MAX_MESSAGE_BYTES;
use crate::token::TokenKeys;
use std::time::Duration;

/// How the signaling server behaves. Start from [`Default`] and adjust with
/// the `with_*` setters (the struct is `#[non_exhaustive]`, so it cannot be
/// built with a literal outside this crate).
///
/// ```
/// use signaling::server::SignalingConfig;
/// use signaling::token::TokenKeys;
/// use std::time::Duration;
/// let cfg = SignalingConfig::default()
///     .with_keys(TokenKeys::new("key", "a-secret-of-at-least-32-bytes-long!!"))
///     .with_ping_timeout(Duration::from_secs(20))
///     .with_auto_subscribe(false);
/// assert!(!cfg.auto_subscribe);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignalingConfig {
    /// Keys that verify access tokens (and admin tokens).
    pub keys: TokenKeys,
    /// Whether joiners are subscribed to every track in the room. Default
    /// `true`. A token without the subscribe grant never auto-subscribes.
    pub auto_subscribe: bool,
    /// How often the server sends a WebSocket ping frame. Default 5 s.
    pub ping_interval: Duration,
    /// A connection that sends nothing (no frame of any kind, including
    /// WebSocket pongs and protocol `ping`s) for this long is closed, and its
    /// participant is suspended (see [`Self::resume_grace`]). Also bounds
    /// every socket write. Default 15 s.
    pub ping_timeout: Duration,
    /// A connection that has not sent `join` this long after it opened is
    /// closed. Default 10 s.
    pub join_timeout: Duration,
    /// Message rate limit of each identity (token subject) once joined,
    /// and of each connection before it joins. Kept across reconnects.
    pub rate_limit: RateLimit,
    /// Rates of the kinds of message that cost more than one message, on
    /// top of [`Self::rate_limit`].
    pub message_rates: MessageRates,
    /// Size caps per message type, below [`Self::max_message_bytes`].
    pub size_caps: SizeCaps,
    /// Server-wide and per-address caps on connections, participants and
    /// rooms, and the rate of new connections per address.
    pub capacity: Capacity,
    /// Participants allowed in one room; joins beyond it get
    /// `error{unavailable}`. Default 1000.
    pub max_participants_per_room: usize,
    /// Tracks one participant may publish at once. Default 32.
    pub max_tracks_per_participant: usize,
    /// Largest accepted text frame in bytes; larger ones get
    /// `error{too_large}` and the connection is closed. Default
    /// [`MAX_MESSAGE_BYTES`].
    pub max_message_bytes: usize,
    /// Depth of each session's outbound queue (room events to one client).
    /// A session whose queue overflows is a slow consumer and is closed.
    /// Default 512.
    pub outbound_queue: usize,
    /// Bytes queued to one client at most (the messages as written); a
    /// session over it is a slow consumer and is closed. Default 8 MiB.
    pub outbound_queue_bytes: usize,
    /// Bytes a room may have queued to its members at most, each shared
    /// MLS entry counted once however many members it is queued for. A
    /// client message whose broadcast would exceed it is refused with
    /// `error{rate_limited}` instead of being buffered. Default 32 MiB.
    pub room_outbound_bytes: usize,
    /// How long a participant whose connection was lost without `leave`
    /// (socket closed or broken, ping timeout) stays in its room, waiting
    /// for a `join` with `resume`. After it, the participant leaves with
    /// reason `disconnected`. Zero turns resume off. Default 15 s.
    pub resume_grace: Duration,
    /// Messages held for a suspended participant (see
    /// [`Self::resume_grace`]); one more removes it. MLS log entries are not
    /// held (the resume replays them from the log). Default 4096.
    pub resume_buffer: usize,
    /// MLS log entries kept per room for resumes; the oldest go first.
    /// Default 16384.
    pub mls_log_max_entries: usize,
    /// Bytes of MLS log kept per room (serialized entries); the oldest go
    /// first. Default 32 MiB.
    pub mls_log_max_bytes: usize,
    /// How long the founder of a room's MLS group has to create it (send a
    /// valid epoch-0 GroupInfo). After it, if anyone else is in the room,
    /// the earliest-joined of them founds a new group instead; a founder
    /// alone is checked again after another period. Default 10 s.
    pub mls_founder_timeout: Duration,
    /// Web origins, besides the server's own, whose pages may open `/rtc`
    /// (see [`AllowedOrigins`]). Default: none (only same-origin pages, and
    /// clients that are not browsers).
    pub allowed_origins: AllowedOrigins,
}

impl Default for SignalingConfig {
    fn default() -> Self {
        Self {
            keys: TokenKeys::development(),
            auto_subscribe: true,
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(15),
            join_timeout: Duration::from_secs(10),
            rate_limit: RateLimit::default(),
            message_rates: MessageRates::default(),
            size_caps: SizeCaps::default(),
            capacity: Capacity::default(),
            max_participants_per_room: 1000,
            max_tracks_per_participant: 32,
            max_message_bytes: MAX_MESSAGE_BYTES,
            outbound_queue: 512,
            outbound_queue_bytes: 8 * 1024 * 1024,
            room_outbound_bytes: 32 * 1024 * 1024,
            resume_grace: Duration::from_secs(15),
            resume_buffer: 4096,
            mls_log_max_entries: 16384,
            mls_log_max_bytes: 32 * 1024 * 1024,
            mls_founder_timeout: Duration::from_secs(10),
            allowed_origins: AllowedOrigins::default(),
        }
    }
}

impl SignalingConfig {
    /// Sets the token keys.
    pub fn with_keys(mut self, keys: TokenKeys) -> Self {
        self.keys = keys;
        self
    }

    /// Sets [`Self::allowed_origins`].
    pub fn with_allowed_origins(mut self, origins: AllowedOrigins) -> Self {
        self.allowed_origins = origins;
        self
    }

    /// Sets [`Self::auto_subscribe`].
    pub fn with_auto_subscribe(mut self, on: bool) -> Self {
        self.auto_subscribe = on;
        self
    }
    /// Sets [`Self::ping_interval`].
    pub fn with_ping_interval(mut self, d: Duration) -> Self {
        self.ping_interval = d;
        self
    }
    /// Sets [`Self::ping_timeout`].
    pub fn with_ping_timeout(mut self, d: Duration) -> Self {
        self.ping_timeout = d;
        self
    }
    /// Sets [`Self::join_timeout`].
    pub fn with_join_timeout(mut self, d: Duration) -> Self {
        self.join_timeout = d;
        self
    }
    /// Sets [`Self::rate_limit`].
    pub fn with_rate_limit(mut self, r: RateLimit) -> Self {
        self.rate_limit = r;
        self
    }
    /// Sets [`Self::message_rates`].
    pub fn with_message_rates(mut self, r: MessageRates) -> Self {
        self.message_rates = r;
        self
    }
    /// Sets [`Self::size_caps`].
    pub fn with_size_caps(mut self, c: SizeCaps) -> Self {
        self.size_caps = c;
        self
    }
    /// Sets [`Self::capacity`].
    pub fn with_capacity(mut self, c: Capacity) -> Self {
        self.capacity = c;
        self
    }
    /// Sets [`Self::outbound_queue_bytes`] (at least 1).
    pub fn with_outbound_queue_bytes(mut self, n: usize) -> Self {
        self.outbound_queue_bytes = n.max(1);
        self
    }
    /// Sets [`Self::room_outbound_bytes`] (at least 1).
    pub fn with_room_outbound_bytes(mut self, n: usize) -> Self {
        self.room_outbound_bytes = n.max(1);
        self
    }
    /// Sets [`Self::max_participants_per_room`].
    pub fn with_max_participants_per_room(mut self, n: usize) -> Self {
        self.max_participants_per_room = n;
        self
    }
    /// Sets [`Self::max_tracks_per_participant`].
    pub fn with_max_tracks_per_participant(mut self, n: usize) -> Self {
        self.max_tracks_per_participant = n;
        self
    }
    /// Sets [`Self::max_message_bytes`].
    pub fn with_max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }
    /// Sets [`Self::outbound_queue`] (at least 1).
    pub fn with_outbound_queue(mut self, n: usize) -> Self {
        self.outbound_queue = n.max(1);
        self
    }
    /// Sets [`Self::resume_grace`].
    pub fn with_resume_grace(mut self, d: Duration) -> Self {
        self.resume_grace = d;
        self
    }
    /// Sets [`Self::resume_buffer`] (at least 1).
    pub fn with_resume_buffer(mut self, n: usize) -> Self {
        self.resume_buffer = n.max(1);
        self
    }
    /// Sets [`Self::mls_log_max_entries`] (at least 1).
    pub fn with_mls_log_max_entries(mut self, n: usize) -> Self {
        self.mls_log_max_entries = n.max(1);
        self
    }
    /// Sets [`Self::mls_founder_timeout`] (at least 1 ms).
    pub fn with_mls_founder_timeout(mut self, d: Duration) -> Self {
        self.mls_founder_timeout = d.max(Duration::from_millis(1));
        self
    }
    /// Sets [`Self::mls_log_max_bytes`].
    pub fn with_mls_log_max_bytes(mut self, n: usize) -> Self {
        self.mls_log_max_bytes = n;
        self
    }
}

/// A token bucket: `per_second` messages on average, bursts of up to
/// `burst`. A message over the limit is dropped and answered with
/// `error{rate_limited}`. Each such answer uses one of `max_violations`
/// strikes (which come back at one per second); with none left the
/// connection is closed. In [`MessageRates`] only `per_second` and `burst`
/// count: every kind draws on the strikes of [`SignalingConfig::rate_limit`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Sustained messages per second. Default 50.
    pub per_second: f64,
    /// Bucket size. Default 100.
    pub burst: u32,
    /// Rejected messages tolerated before the connection is closed.
    /// Default 50.
    pub max_violations: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self {
            per_second: 50.0,
            burst: 100,
            max_violations: 50,
        }
    }
}

impl RateLimit {
    /// A limit of `per_second` with bursts of `burst` and the default
    /// number of tolerated violations.
    pub fn new(per_second: f64, burst: u32) -> Self {
        Self {
            per_second,
            burst,
            ..Self::default()
        }
    }
    /// Sets [`Self::max_violations`].
    pub fn with_max_violations(mut self, n: u32) -> Self {
        self.max_violations = n;
        self
    }
}

/// Rates of the message kinds that cost more than their count: each is
/// relayed to a whole room or parsed by the media plane. A participant
/// over one gets `error{rate_limited}` for that message (a strike).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct MessageRates {
    /// `mls_key_package`: one is needed per join or re-add. Default a
    /// burst of 5, then one per 10 s.
    pub key_package: RateLimit,
    /// `mls_commit`. Default a burst of 20, then 2/s.
    pub mls_commit: RateLimit,
    /// `mls_application` (chat) and `mute`, which share it. Default a burst
    /// of 30, then 20/s (the client SDK paces its chat at 20/s).
    pub chat: RateLimit,
    /// `offer` and `answer` (SDP negotiations). Default a burst of 20,
    /// then 2/s.
    pub sdp: RateLimit,
}

impl Default for MessageRates {
    fn default() -> Self {
        Self {
            key_package: RateLimit::new(0.1, 5),
            mls_commit: RateLimit::new(2.0, 20),
            chat: RateLimit::new(20.0, 30),
            sdp: RateLimit::new(2.0, 20),
        }
    }
}

impl MessageRates {
    /// Sets [`Self::key_package`].
    pub fn with_key_package(mut self, r: RateLimit) -> Self {
        self.key_package = r;
        self
    }
    /// Sets [`Self::mls_commit`].
    pub fn with_mls_commit(mut self, r: RateLimit) -> Self {
        self.mls_commit = r;
        self
    }
    /// Sets [`Self::chat`].
    pub fn with_chat(mut self, r: RateLimit) -> Self {
        self.chat = r;
        self
    }
    /// Sets [`Self::sdp`].
    pub fn with_sdp(mut self, r: RateLimit) -> Self {
        self.sdp = r;
        self
    }
}

/// Server-wide and per-address caps. An address is an IPv4 address or an
/// IPv6 /64 (one subscriber's usual allocation). Over a connection cap the
/// WebSocket upgrade is refused (HTTP 503 server-wide, 429 per address);
/// over a participant or room cap the join gets `error{unavailable}` and the
/// connection closes with 1013 (try again later). Every refusal is counted.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Capacity {
    /// Open WebSocket connections. Default 10000.
    pub connections: usize,
    /// Open WebSocket connections per address. Default 1000.
    pub connections_per_address: usize,
    /// Participants in all rooms (suspended ones included). Default 10000.
    pub participants: usize,
    /// Participants joined from one address. Default 1000.
    pub participants_per_address: usize,
    /// Rooms. Default 5000.
    pub rooms: usize,
    /// Rooms opened (first joined) from one address that still exist.
    /// Default 250.
    pub rooms_per_address: usize,
    /// New connections per address: `burst`, then `per_second`. Kept per
    /// address, so reconnecting does not refill it. Default a burst of
    /// 1000, then 100/s.
    pub connects_per_address: RateLimit,
    /// Rate allowances remembered (identities plus addresses); idle ones
    /// (every bucket full again) are forgotten first. When all are in use,
    /// new connections are refused. Default 100000.
    pub tracked_allowances: usize,
}

impl Default for Capacity {
    fn default() -> Self {
        Self {
            connections: 10_000,
            connections_per_address: 1000,
            participants: 10_000,
            participants_per_address: 1000,
            rooms: 5000,
            rooms_per_address: 250,
            connects_per_address: RateLimit::new(100.0, 1000),
            tracked_allowances: 100_000,
        }
    }
}

impl Capacity {
    /// Sets [`Self::connections`] and [`Self::connections_per_address`].
    pub fn with_connections(mut self, total: usize, per_address: usize) -> Self {
        self.connections = total;
        self.connections_per_address = per_address;
        self
    }
    /// Sets [`Self::participants`] and [`Self::participants_per_address`].
    pub fn with_participants(mut self, total: usize, per_address: usize) -> Self {
        self.participants = total;
        self.participants_per_address = per_address;
        self
    }
    /// Sets [`Self::rooms`] and [`Self::rooms_per_address`].
    pub fn with_rooms(mut self, total: usize, per_address: usize) -> Self {
        self.rooms = total;
        self.rooms_per_address = per_address;
        self
    }
    /// Sets [`Self::connects_per_address`].
    pub fn with_connects_per_address(mut self, r: RateLimit) -> Self {
        self.connects_per_address = r;
        self
    }
    /// Sets [`Self::tracked_allowances`] (at least 1).
    pub fn with_tracked_allowances(mut self, n: usize) -> Self {
        self.tracked_allowances = n.max(1);
        self
    }
}
