//! The media plane: every transport of every participant on one shard, the
//! datagram demultiplexer in front of them, and the glue between str0m's
//! events and the forwarding core.
//!
//! One state machine, its methods grouped by concept:
//!
//! - `ingress`: datagram demultiplexing and remote address learning;
//! - `forward`: polling transports, and each received RTP packet through
//!   the `Forwarder` to the subscribers' transports (the per-packet path);
//! - `timers`: the transport timer heap, keyframe retries and the sweep
//!   for silent participants;
//! - `pool`: the buffers of sent datagrams, reused for SRTP output;
//! - `membership`: the signaling commands, participants and tracks;
//! - `negotiate`: SDP offers and answers, subscriber m-lines and their reuse.
//!
//! Ownership (see "Who owns what" in `docs/architecture.md`): the plane is
//! the only owner of transports and of the WebRTC side of tracks and
//! subscriptions (m-lines, SSRCs, payload types); the `Forwarder` owns who
//! receives which track and how each stream is rewritten. Membership is
//! signaling's: the plane learns it from `MediaCommand`s.
//!
//! Variable names: `tid` is a `TransportId`, `tr` a `Transport`; `p` a
//! `ParticipantKey`, `ps` its `PState`; `track` a `TrackKey`.

mod forward;
mod ingress;
mod membership;
mod negotiate;
mod pool;
mod resend;
mod timers;

use crate::api::{MediaCommand, MediaConfig, MediaEvent, Output, TrackKind};
use crate::forwarder::{Forwarder, Notice, ParticipantKey, Spend, TrackKey};
use crate::resend::PacketStore;
use crate::rewrite::Rewriter;
use crate::stats::Stats;
use crate::transport::{Transport, TransportId};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;
use str0m::media::{Mid, Rid};

/// Input to the media plane.
#[derive(Debug)]
pub enum Input<'a> {
    /// A datagram arrived on the media port.
    Datagram {
        /// Sender.
        source: SocketAddr,
        /// Our local address it arrived at.
        destination: SocketAddr,
        /// The bytes.
        contents: &'a [u8],
    },
    /// A request from signaling.
    Command(MediaCommand),
    /// Time passed; the deadline from the last [`Output::Timeout`] is due.
    Timeout,
}

/// The negotiation side of one subscription: its subscriber m-line. That
/// the subscription exists is the forwarder's to know; this follows it
/// (added when the forwarder accepts a subscribe, removed when it reports
/// the subscription ended).
#[derive(Debug)]
struct SubState {
    track: TrackKey,
    /// The m-line's kind, fixed when the line is made.
    kind: TrackKind,
    mid: Option<Mid>,
    /// The forwarder routes to `mid` (the subscriber answered).
    live: bool,
    /// The state of a reused m-line, handed to the forwarder when it goes live.
    reused: Option<Rewriter>,
}

/// A subscriber m-line whose track went away. It is set inactive, not
/// stopped, and carries the next track of its kind: str0m appends every new
/// m-line it offers and never recycles its own stopped ones, so without reuse
/// a long-lived subscriber's SDP would grow by one m-line per track that ever
/// existed in the room.
#[derive(Debug)]
struct IdleLine {
    mid: Mid,
    kind: TrackKind,
    rewriter: Rewriter,
}

/// One participant as the plane sees it: its transports and m-lines.
/// Membership is signaling's; this exists from the participant's
/// `MediaCommand::Join` to its `Leave` (or a rejoin under the same id).
struct PState {
    id: String,
    can_publish: bool,
    publisher: Option<TransportId>,
    subscriber: Option<TransportId>,
    /// Publisher-side m-line → track.
    published: HashMap<Mid, TrackKey>,
    subs: Vec<SubState>,
    /// Subscriber m-lines free for reuse.
    idle: Vec<IdleLine>,
    /// Subscriber m-lines to set inactive in the next offer.
    deactivate: Vec<Mid>,
    timed_out: bool,
    /// The subscriber transport's latest downlink estimate, bits per
    /// second.
    estimate_bps: Option<u64>,
    /// The estimate at the last allocation run: a lower one now means the
    /// link is congested, and it is no time to probe.
    estimate_at_allocation: Option<u64>,
    /// The estimate has risen above its starting value at least once: the
    /// link has been probed. Before that a falling estimate is the
    /// estimator discounting rates it has not seen sent (it keeps an
    /// estimate near what was acknowledged), not congestion.
    estimate_probed: bool,
    /// When the estimate last fell (after the link was probed).
    fell_at: Option<Instant>,
}

/// The WebRTC side of a published track: where the publisher sends it.
/// Set once at `MediaCommand::Publish`, together with the forwarder's
/// entry for the same key, and never changed, so the two cannot disagree.
struct TrackMeta {
    /// Signaling's track id.
    id: String,
    publisher: ParticipantKey,
    mid: Mid,
    rid: Option<Rid>,
    kind: TrackKind,
}

/// The SFU media plane as a sans-IO state machine. See the crate docs.
///
/// ```
/// use sfu_core::{MediaConfig, MediaPlane, Input, Output, MediaCommand};
/// use std::time::Instant;
/// let now = Instant::now();
/// let mut plane = MediaPlane::new(MediaConfig::new("127.0.0.1:7882".parse().unwrap()), now);
/// plane.handle_input(now, Input::Command(MediaCommand::Join {
///     participant: "PA_1".into(), room: "r".into(), can_publish: true, auto_subscribe: true,
/// }));
/// assert!(matches!(plane.poll_output(now), Output::Timeout(_)));
/// assert_eq!(plane.stats().participants, 1);
/// ```
pub struct MediaPlane {
    cfg: MediaConfig,
    forwarder: Forwarder,
    // The Fx maps are keyed by ids the plane assigns itself, or by remote
    // addresses inserted only after an authenticated STUN check and capped
    // per transport: a peer can probe them but not fill them, so SipHash's
    // collision resistance buys nothing there and costs tens of cycles.
    transports: FxHashMap<TransportId, Transport>,
    addrs: FxHashMap<TransportId, VecDeque<SocketAddr>>,
    by_addr: FxHashMap<SocketAddr, TransportId>,
    by_ufrag: HashMap<String, TransportId>,
    participants: FxHashMap<ParticipantKey, PState>,
    participant_ids: HashMap<String, ParticipantKey>,
    tracks: FxHashMap<TrackKey, TrackMeta>,
    track_ids: HashMap<String, TrackKey>,
    outputs: VecDeque<Output>,
    /// Transports to poll, one per `poll_output` that finds no output
    /// queued, in the order they were first marked; an entry whose
    /// transport is no longer `dirty` (it was polled since) is skipped.
    dirty: VecDeque<TransportId>,
    /// Each transport's `next_timeout`, earliest first. Entries are not
    /// removed when a transport re-arms or goes away; an entry counts only
    /// while it matches its transport's `next_timeout`.
    timers: BinaryHeap<Reverse<(Instant, TransportId)>>,
    /// When silent participants are looked for next.
    next_sweep: Instant,
    /// When the layer allocator runs next.
    next_allocation: Instant,
    /// Per subscriber, what its allocation costs and what it wants; kept
    /// for its allocation.
    spent: Vec<(ParticipantKey, Spend)>,
    /// What the last allocation run found, kept for the next.
    notices: Vec<Notice>,
    due: Vec<TrackKey>,
    timed_out: Vec<ParticipantKey>,
    stats: Stats,
    next_transport: u64,
    /// Per published track, the packets kept for resends (see
    /// `crate::resend`): made with the track's first forwarded video
    /// packet, dropped with the track.
    stores: FxHashMap<TrackKey, PacketStore>,
    /// Buffers of sent datagrams handed back with [`MediaPlane::recycle`],
    /// passed on to transports for their SRTP output.
    spare: Vec<Vec<u8>>,
}

impl MediaPlane {
    /// A media plane with no participants.
    pub fn new(cfg: MediaConfig, now: Instant) -> Self {
        Self {
            forwarder: {
                let mut f = Forwarder::new(cfg.keyframe_retry);
                f.start_low(cfg.bandwidth_estimation.is_some());
                f
            },
            next_sweep: now + timers::sweep_period(&cfg),
            next_allocation: now + timers::ALLOCATION_PERIOD,
            spent: Vec::new(),
            notices: Vec::new(),
            cfg,
            transports: FxHashMap::default(),
            addrs: FxHashMap::default(),
            by_addr: FxHashMap::default(),
            by_ufrag: HashMap::new(),
            participants: FxHashMap::default(),
            participant_ids: HashMap::new(),
            tracks: FxHashMap::default(),
            track_ids: HashMap::new(),
            outputs: VecDeque::new(),
            dirty: VecDeque::new(),
            timers: BinaryHeap::new(),
            due: Vec::new(),
            timed_out: Vec::new(),
            stats: Stats::default(),
            next_transport: 0,
            spare: Vec::new(),
            stores: FxHashMap::default(),
        }
    }

    /// Counters and gauges, as of now.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.rooms = self.forwarder.room_count() as u64;
        s.participants = self.participants.len() as u64;
        s.tracks = self.forwarder.track_count() as u64;
        s.subscriptions = self.forwarder.subscription_count() as u64;
        s.resend_store_packets = self.stores.values().map(|st| st.len() as u64).sum();
        s
    }

    /// Whether `participant`'s subscriber transport has an offer of the
    /// server's out, waiting for its answer. A shell that rations
    /// negotiation lets such an answer through: the server decides how many
    /// offers there are, and until one is answered the subscriber gets no
    /// new m-line.
    pub fn awaits_subscriber_answer(&self, participant: &str) -> bool {
        self.participant_ids
            .get(participant)
            .and_then(|p| self.participants.get(p))
            .and_then(|ps| ps.subscriber)
            .and_then(|tid| self.transports.get(&tid))
            .is_some_and(|tr| tr.pending_offer.is_some())
    }

    /// Number of live transports (two per participant at most).
    pub fn transport_count(&self) -> usize {
        self.transports.len()
    }

    /// Feeds one input. Afterwards, call [`Self::poll_output`] until it
    /// returns [`Output::Timeout`].
    ///
    /// Many datagrams may be fed before polling, as a batched shell reads
    /// them, all with the same `now`. The transport a datagram arrived on is
    /// polled at once (in RTP mode str0m keeps only one received packet
    /// until it is polled); the transports its packets are forwarded to are
    /// polled once per batch, at the first [`Self::poll_output`], so each
    /// subscriber pays its timer work once for the whole batch and its
    /// datagrams come out together.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Datagram {
                source,
                destination,
                contents,
            } => {
                if let Some(tid) = self.on_datagram(now, source, destination, contents) {
                    // str0m has just been told the time by the datagram.
                    self.poll_transport(now, tid, false);
                }
            }
            Input::Command(cmd) => self.on_command(now, cmd),
            Input::Timeout => self.on_timeout(now),
        }
    }

    /// The next thing to do: a datagram to send, an event for signaling, or
    /// the time of the next needed [`Input::Timeout`].
    ///
    /// Outputs come in the order they arose; the datagrams of transports
    /// that inputs since the last poll wrote to follow those, one transport
    /// after another.
    pub fn poll_output(&mut self, now: Instant) -> Output {
        loop {
            if let Some(o) = self.outputs.pop_front() {
                return o;
            }
            // One transport at a time: its datagrams can be on their way,
            // and their buffers back for the next transport's SRTP output,
            // before the rest of a large fan-out is even written.
            let Some(tid) = self.dirty.pop_front() else {
                return Output::Timeout(self.next_deadline(now));
            };
            if self.transports.get(&tid).is_some_and(|tr| tr.dirty) {
                self.poll_transport(now, tid, true);
            }
        }
    }

    /// Queues `event` for `participant` behind the outputs already queued.
    /// A shell that answers a command itself (refusing it, say) uses this
    /// so its answer keeps its place among the plane's.
    pub fn push_event(&mut self, participant: String, event: MediaEvent) {
        self.outputs.push_back(Output::Event { participant, event });
    }

    fn emit(&mut self, p: ParticipantKey, event: MediaEvent) {
        if let Some(ps) = self.participants.get(&p) {
            self.outputs.push_back(Output::Event {
                participant: ps.id.clone(),
                event,
            });
        }
    }

    fn mark_dirty(&mut self, tid: TransportId) {
        if let Some(tr) = self.transports.get_mut(&tid)
            && !tr.dirty
        {
            tr.dirty = true;
            self.dirty.push_back(tid);
        }
    }
}
