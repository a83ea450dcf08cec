//! The media plane: every transport of every participant on one shard, the
//! datagram demultiplexer in front of them, and the glue between str0m's
//! events and the routing core.

use crate::api::{MediaCommand, MediaConfig, MediaEvent, Output, Target, TrackKind, Transmit};
use crate::dd;
use crate::demux::{self, Class};
use crate::forwarder::{Forwarder, PacketMeta, ParticipantKey, TrackKey, Unsubscribed};
use crate::rewrite::Rewriter;
use crate::stats::{DropReason, Stats};
use crate::transport::{CachedRoute, RxInfo, Transport, TransportId};
use rustc_hash::FxHashMap;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};
use str0m::{Candidate, Event as RtcEvent, Input as RtcInput, Output as RtcOutput};

/// Remote addresses remembered per transport. ICE may try a few pairs; more
/// than this is abuse, and the oldest mapping is forgotten.
const MAX_ADDRS_PER_TRANSPORT: usize = 4;

/// Largest incoming RTP packet (header and payload, before SRTP) that is
/// forwarded. str0m builds each outgoing packet in a 2000-byte buffer and
/// panics past it; the subscriber hop may add per-hop extensions
/// (abs-send-time, transport-cc, mid, rid), the two-byte extension form and
/// an RTX sequence number that the publisher's packet lacked, well under 64
/// bytes together.
const MAX_FORWARDED_RTP: usize = 2000 - 64;

/// Longest gap between two sweeps for silent participants. A silent
/// participant is reported at most this much (or a quarter of the ICE
/// timeout, if shorter) after its deadline; in exchange the plane keeps no
/// per-participant timer.
const MAX_SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// Stale timer entries tolerated beyond one per transport before the heap is
/// rebuilt; keeps it small when busy transports re-arm on every batch.
const TIMER_SLACK: usize = 32;

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

#[derive(Debug)]
struct SubState {
    track: TrackKey,
    kind: TrackKind,
    mid: Option<Mid>,
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
}

struct TrackMeta {
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
    due: Vec<TrackKey>,
    timed_out: Vec<ParticipantKey>,
    stats: Stats,
    next_transport: u64,
    /// Buffers of sent datagrams handed back with [`MediaPlane::recycle`],
    /// passed on to transports for their SRTP output.
    spare: Vec<Vec<u8>>,
}

/// Most buffers [`MediaPlane::recycle`] keeps; beyond it they are freed.
const MAX_SPARE: usize = 1024;
/// Spare buffers a transport holds ahead while it is polled: one more is
/// handed over for each datagram it puts out, so a long batch never runs
/// dry, and an idle transport pins no more than this.
const SPARE_AHEAD: usize = 2;
/// Largest buffer worth keeping: an MTU-sized datagram fits.
const MAX_SPARE_CAPACITY: usize = 4096;

/// Moves one buffer from the plane's pool to `rtc`'s spare list, unless
/// the pool is empty or the list full.
fn give_spare(pool: &mut Vec<Vec<u8>>, rtc: &mut str0m::Rtc) {
    if let Some(buf) = pool.pop()
        && let Some(refused) = rtc.recycle_buffer(buf)
    {
        pool.push(refused);
    }
}

impl MediaPlane {
    /// Takes back the buffer of a sent [`Output::Transmit`], so a later
    /// datagram reuses it instead of allocating: the forwarding path then
    /// allocates nothing per output. Optional; buffers not handed back are
    /// simply freed. Keeps at most 1024 buffers of at most 4 KiB.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < MAX_SPARE && (1..=MAX_SPARE_CAPACITY).contains(&buf.capacity()) {
            self.spare.push(buf);
        }
    }

    /// A media plane with no participants.
    pub fn new(cfg: MediaConfig, now: Instant) -> Self {
        Self {
            forwarder: Forwarder::new(cfg.keyframe_retry),
            next_sweep: now + sweep_period(&cfg),
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
        }
    }

    /// Counters and gauges, as of now.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.rooms = self.forwarder.room_count() as u64;
        s.participants = self.participants.len() as u64;
        s.tracks = self.forwarder.track_count() as u64;
        s.subscriptions = self.forwarder.subscription_count() as u64;
        s
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
            if self.transports.get(&tid).is_some_and(|t| t.dirty) {
                self.poll_transport(now, tid, true);
            }
        }
    }

    fn next_deadline(&mut self, now: Instant) -> Instant {
        let sweep = (!self.participants.is_empty()).then_some(self.next_sweep);
        [
            self.next_transport_timeout(),
            self.forwarder
                .next_keyframe_due(self.cfg.keyframe_min_interval),
            sweep,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + self.cfg.ice_timeout)
    }

    /// The earliest live timer entry, dropping stale ones on top.
    fn next_transport_timeout(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, tid))) = self.timers.peek() {
            if self
                .transports
                .get(&tid)
                .is_some_and(|t| t.next_timeout == Some(at))
            {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// Records what str0m asked for after a poll.
    fn arm(&mut self, tid: TransportId, at: Option<Instant>) {
        let Some(t) = self.transports.get_mut(&tid) else {
            return;
        };
        if t.next_timeout == at {
            // Its entry is still in the heap.
            return;
        }
        t.next_timeout = at;
        if let Some(at) = at {
            self.timers.push(Reverse((at, tid)));
            if self.timers.len() > 2 * self.transports.len() + TIMER_SLACK {
                self.rebuild_timers();
            }
        }
    }

    /// Drops every stale timer entry, keeping the heap's allocation.
    fn rebuild_timers(&mut self) {
        let mut v = std::mem::take(&mut self.timers).into_vec();
        v.clear();
        v.extend(
            self.transports
                .iter()
                .filter_map(|(id, t)| t.next_timeout.map(|at| Reverse((at, *id)))),
        );
        self.timers = BinaryHeap::from(v);
    }

    fn media_deadline(&self, p: &PState) -> Option<Instant> {
        if p.timed_out {
            return None;
        }
        [p.publisher, p.subscriber]
            .into_iter()
            .flatten()
            .filter_map(|t| self.transports.get(&t))
            .map(|t| t.last_rx)
            .max()
            .map(|last| last + self.cfg.ice_timeout)
    }

    fn emit(&mut self, p: ParticipantKey, event: MediaEvent) {
        if let Some(ps) = self.participants.get(&p) {
            self.outputs.push_back(Output::Event {
                participant: ps.id.clone(),
                event,
            });
        }
    }

    fn mark_dirty(&mut self, t: TransportId) {
        if let Some(tr) = self.transports.get_mut(&t)
            && !tr.dirty
        {
            tr.dirty = true;
            self.dirty.push_back(t);
        }
    }

    // ---------------------------------------------------------------- datagrams

    /// Hands a datagram to its transport. Returns the transport if str0m
    /// took it, to be polled before the next datagram.
    fn on_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        buf: &[u8],
    ) -> Option<TransportId> {
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += buf.len() as u64;
        if buf.len() > self.cfg.max_datagram {
            self.stats.drop(DropReason::Oversized);
            return None;
        }
        let class = demux::classify(buf);
        let tid = match class {
            Class::Other => {
                self.stats.drop(DropReason::Unclassifiable);
                return None;
            }
            // STUN names its transport by ufrag; that is how new addresses
            // are learned, and it also keeps two transports from one host
            // port apart.
            Class::Stun => match demux::stun_local_ufrag(buf).and_then(|u| self.by_ufrag.get(u)) {
                Some(t) => *t,
                None => {
                    self.stats.drop(DropReason::BadStun);
                    return None;
                }
            },
            Class::Dtls | Class::Rtp => match self.by_addr.get(&source) {
                Some(t) => *t,
                None => {
                    self.stats.drop(DropReason::UnknownSource);
                    return None;
                }
            },
        };
        let Ok(contents) = DatagramRecv::try_from(buf) else {
            self.stats.drop(DropReason::Rejected);
            return None;
        };
        let Some(t) = self.transports.get_mut(&tid) else {
            self.stats.drop(DropReason::UnknownSource);
            return None;
        };
        let input = RtcInput::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        if !t.rtc.accepts(&input) {
            self.stats.drop(DropReason::Rejected);
            return None;
        }
        if let Err(e) = t.rtc.handle_input(input) {
            tracing::trace!(error = %e, "datagram rejected");
            self.stats.drop(DropReason::Rejected);
            return None;
        }
        t.last_rx = now;
        // Safe to learn: str0m accepts a STUN message only after checking its
        // MESSAGE-INTEGRITY (indications are refused outright).
        if class == Class::Stun && t.remote != Some(source) {
            t.remote = Some(source);
            self.learn_addr(tid, source);
        }
        Some(tid)
    }

    fn learn_addr(&mut self, tid: TransportId, addr: SocketAddr) {
        let list = self.addrs.entry(tid).or_default();
        if !list.contains(&addr) {
            list.push_back(addr);
            if list.len() > MAX_ADDRS_PER_TRANSPORT
                && let Some(old) = list.pop_front()
                && self.by_addr.get(&old) == Some(&tid)
            {
                self.by_addr.remove(&old);
            }
        }
        self.by_addr.insert(addr, tid);
    }

    // ------------------------------------------------------------------ polling

    /// Polls one transport until str0m asks for a timeout. `tell_time`
    /// feeds it `now` first: queued writes go out only after str0m has seen
    /// a time (a received datagram counts as one).
    fn poll_transport(&mut self, now: Instant, tid: TransportId, tell_time: bool) {
        let Some(t) = self.transports.get_mut(&tid) else {
            return;
        };
        // Cleared first: what polling marks again is polled again.
        t.dirty = false;
        // SRTP output reuses sent buffers instead of allocating one each.
        for _ in 0..SPARE_AHEAD {
            give_spare(&mut self.spare, &mut t.rtc);
        }
        if tell_time && let Err(e) = t.rtc.handle_input(RtcInput::Timeout(now)) {
            tracing::debug!(error = %e, "transport timeout handling failed");
        }
        while let Some(t) = self.transports.get_mut(&tid) {
            match t.rtc.poll_output() {
                Ok(RtcOutput::Timeout(at)) => {
                    self.arm(tid, Some(at));
                    break;
                }
                Ok(RtcOutput::Transmit(tx)) => {
                    // Replaces the spare this datagram most likely used.
                    give_spare(&mut self.spare, &mut t.rtc);
                    let contents: Vec<u8> = tx.contents.into();
                    self.stats.datagrams_out += 1;
                    self.stats.bytes_out += contents.len() as u64;
                    self.outputs.push_back(Output::Transmit(Transmit {
                        source: tx.source,
                        destination: tx.destination,
                        contents,
                    }));
                }
                Ok(RtcOutput::Event(ev)) => self.on_rtc_event(now, tid, ev),
                Err(e) => {
                    tracing::debug!(error = %e, "transport failed");
                    self.arm(tid, None);
                    break;
                }
            }
        }
    }

    fn on_rtc_event(&mut self, now: Instant, tid: TransportId, ev: RtcEvent) {
        match ev {
            RtcEvent::RtpPacket(pkt) => self.on_rtp(now, tid, pkt),
            RtcEvent::KeyframeRequest(req) => {
                self.stats.keyframe_requests_in += 1;
                let Some(t) = self.transports.get(&tid) else {
                    return;
                };
                let Some(ps) = self.participants.get(&t.participant) else {
                    return;
                };
                if let Some(s) = ps.subs.iter().find(|s| s.mid == Some(req.mid)) {
                    let track = s.track;
                    self.request_keyframe(now, track);
                }
            }
            RtcEvent::IceConnectionStateChange(state) => {
                tracing::debug!(?state, "ice state");
            }
            RtcEvent::Connected => tracing::debug!("transport connected"),
            _ => {}
        }
    }

    fn on_rtp(&mut self, now: Instant, tid: TransportId, mut pkt: RtpPacket) {
        self.stats.rtp_in += 1;
        let Some(info) = self.rx_info(tid, &pkt) else {
            self.stats.drop(DropReason::NoTrack);
            return;
        };
        let (Some(track), Some(codec)) = (info.track, info.codec) else {
            self.stats.drop(DropReason::NoTrack);
            return;
        };
        if pkt.header.header_len + pkt.payload.len() > MAX_FORWARDED_RTP {
            self.stats.drop(DropReason::Oversized);
            return;
        }
        let dd = match dd::signal(&pkt.header.ext_vals) {
            Ok(s) => s,
            Err(e) => {
                tracing::trace!(error = %e, "dependency descriptor refused");
                self.stats.drop(DropReason::BadDependencyDescriptor);
                return;
            }
        };
        let rid = info.rid;
        let meta = PacketMeta {
            ssrc: info.ssrc,
            seq: *pkt.seq_no,
            ts: pkt.header.timestamp,
            clock_rate: info.clock_rate,
            rid: rid.as_ref().map(|r| r.as_ref()),
            dd,
        };
        let ext = passthrough_extensions(&mut pkt.header.ext_vals);
        // Written per subscriber without going through `self`: the forwarder is
        // borrowed for the loop, the rest is reached field by field.
        let Self {
            forwarder,
            transports,
            participants,
            stats,
            dirty,
            ..
        } = self;
        let gate = forwarder.forward_routed(track, meta, now, |f, route| {
            let d = match *route {
                Some(d) if d.codec == codec => d,
                _ => match find_route(participants, transports, f.subscriber, f.mid, codec) {
                    Ok(d) => *route.insert(d),
                    Err(reason) => {
                        if let Some(r) = reason {
                            stats.drop(r);
                        }
                        return;
                    }
                },
            };
            let Some(st) = transports.get_mut(&d.transport) else {
                *route = None;
                return;
            };
            let write = RtpWrite::new(
                d.pt,
                f.rewritten.seq.into(),
                f.rewritten.ts,
                pkt.timestamp,
                pkt.payload.clone(),
            )
            .marker(pkt.header.marker)
            .ext_vals(ext.clone())
            .nackable(true);
            let mut api = st.rtc.direct_api();
            match api.stream_tx(&d.ssrc) {
                Some(tx) => tx.write_rtp(write),
                // str0m replaced the m-line's send stream: find it again.
                None => match api.stream_tx_by_mid(f.mid, None) {
                    Some(tx) => {
                        *route = Some(CachedRoute {
                            ssrc: tx.ssrc(),
                            ..d
                        });
                        tx.write_rtp(write);
                    }
                    None => {
                        *route = None;
                        stats.drop(DropReason::NotNegotiated);
                        return;
                    }
                },
            }
            stats.rtp_forwarded += 1;
            if !st.dirty {
                st.dirty = true;
                dirty.push_back(d.transport);
            }
        });
        match gate {
            None => self.stats.drop(DropReason::NoTrack),
            Some(gate) => {
                self.stats
                    .drop_n(DropReason::AwaitingKeyframe, gate.awaiting_keyframe);
                if gate.request_keyframe {
                    self.request_keyframe(now, track);
                }
            }
        }
    }

    /// What we know about a publisher SSRC, learned once from str0m.
    fn rx_info(&mut self, tid: TransportId, pkt: &RtpPacket) -> Option<RxInfo> {
        let ssrc = *pkt.header.ssrc;
        let pt = pkt.header.payload_type;
        let t = self.transports.get_mut(&tid)?;
        if let Some(i) = t.rx.iter().find(|i| i.ssrc == ssrc && i.pt == pt) {
            return Some(*i);
        }
        let (mid, rid) = {
            let mut api = t.rtc.direct_api();
            let rx = api.stream_rx(&pkt.header.ssrc)?;
            (rx.mid(), rx.rid())
        };
        let params = t.rtc.codec_config().params().iter().find(|p| p.pt() == pt);
        let codec = params.map(|p| p.spec().codec);
        let clock_rate = params.map(|p| p.spec().clock_rate.get()).unwrap_or(90_000);
        let track = self
            .participants
            .get(&t.participant)
            .and_then(|p| p.published.get(&mid))
            .copied();
        let info = RxInfo {
            ssrc,
            track,
            rid,
            pt,
            codec,
            clock_rate,
        };
        t.rx.retain(|i| i.ssrc != ssrc);
        // Bound the cache: a publisher has a handful of SSRCs.
        if t.rx.len() >= 32 {
            t.rx.remove(0);
        }
        t.rx.push(info);
        Some(info)
    }

    fn request_keyframe(&mut self, now: Instant, track: TrackKey) {
        if self
            .forwarder
            .keyframe_request(track, now, self.cfg.keyframe_min_interval)
        {
            self.send_keyframe_request(track);
        }
    }

    fn send_keyframe_request(&mut self, track: TrackKey) {
        let Some(meta) = self.tracks.get(&track) else {
            return;
        };
        if meta.kind != TrackKind::Video {
            return;
        }
        let Some(ptid) = self
            .participants
            .get(&meta.publisher)
            .and_then(|p| p.publisher)
        else {
            return;
        };
        let Some(t) = self.transports.get_mut(&ptid) else {
            return;
        };
        if let Some(rx) = t.rtc.direct_api().stream_rx_by_mid(meta.mid, meta.rid) {
            rx.request_keyframe(KeyframeRequestKind::Pli);
            self.stats.keyframe_requests_out += 1;
            self.mark_dirty(ptid);
        }
    }

    // ------------------------------------------------------------------ timeouts

    fn on_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, tid))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(t) = self.transports.get_mut(&tid)
                && t.next_timeout == Some(at)
            {
                // Re-armed when polled.
                t.next_timeout = None;
                if !t.dirty {
                    t.dirty = true;
                    self.dirty.push_back(tid);
                }
            }
        }
        let mut tracks = std::mem::take(&mut self.due);
        self.forwarder
            .due_keyframe_requests(now, self.cfg.keyframe_min_interval, &mut tracks);
        for t in tracks.drain(..) {
            self.send_keyframe_request(t);
        }
        self.due = tracks;
        if now >= self.next_sweep {
            self.next_sweep = now + sweep_period(&self.cfg);
            self.sweep_silent(now);
        }
    }

    /// Reports participants whose transports have been silent past the ICE
    /// timeout.
    fn sweep_silent(&mut self, now: Instant) {
        let mut timed_out = std::mem::take(&mut self.timed_out);
        timed_out.extend(
            self.participants
                .iter()
                .filter(|(_, p)| self.media_deadline(p).is_some_and(|d| d <= now))
                .map(|(k, _)| *k),
        );
        for p in timed_out.drain(..) {
            if let Some(ps) = self.participants.get_mut(&p) {
                ps.timed_out = true;
            }
            tracing::info!("participant media timed out");
            self.emit(p, MediaEvent::Timeout);
        }
        self.timed_out = timed_out;
    }

    // ------------------------------------------------------------------ commands

    fn on_command(&mut self, now: Instant, cmd: MediaCommand) {
        match cmd {
            MediaCommand::Join {
                participant,
                room,
                can_publish,
                auto_subscribe,
            } => self.join(now, participant, &room, can_publish, auto_subscribe),
            MediaCommand::Leave { participant } => {
                if let Some(p) = self.participant_ids.remove(&participant) {
                    self.remove_participant(now, p);
                }
            }
            MediaCommand::PublisherOffer { participant, sdp } => {
                if let Some(p) = self.participant_ids.get(&participant).copied() {
                    self.publisher_offer(now, p, &sdp);
                }
            }
            MediaCommand::SubscriberAnswer { participant, sdp } => {
                if let Some(p) = self.participant_ids.get(&participant).copied() {
                    self.subscriber_answer(now, p, &sdp);
                }
            }
            MediaCommand::Candidate {
                participant,
                target,
                candidate,
            } => {
                if let Some(p) = self.participant_ids.get(&participant).copied() {
                    self.remote_candidate(p, target, &candidate);
                }
            }
            MediaCommand::Publish {
                participant,
                track_id,
                mid,
                kind,
                simulcast,
            } => {
                if let Some(p) = self.participant_ids.get(&participant).copied() {
                    self.publish(now, p, track_id, &mid, kind, simulcast);
                }
            }
            MediaCommand::Unpublish {
                participant: _,
                track_id,
            } => {
                if let Some(t) = self.track_ids.get(&track_id).copied() {
                    self.unpublish(now, t);
                }
            }
            MediaCommand::Subscribe {
                participant,
                track_id,
            } => {
                let p = self.participant_ids.get(&participant).copied();
                let t = self.track_ids.get(&track_id).copied();
                if let (Some(p), Some(t)) = (p, t)
                    && self.subscribe(p, t)
                {
                    self.negotiate(now, p);
                }
            }
            MediaCommand::Unsubscribe {
                participant,
                track_id,
            } => {
                let p = self.participant_ids.get(&participant).copied();
                let t = self.track_ids.get(&track_id).copied();
                if let (Some(p), Some(t)) = (p, t)
                    && let Some(u) = self.forwarder.unsubscribe(p, t)
                {
                    self.end_subscription(u);
                    self.negotiate(now, p);
                }
            }
        }
    }

    fn join(&mut self, now: Instant, id: String, room: &str, can_publish: bool, auto: bool) {
        if let Some(old) = self.participant_ids.remove(&id) {
            self.remove_participant(now, old);
        }
        let p = self.forwarder.add_participant(room, auto);
        self.participant_ids.insert(id.clone(), p);
        self.participants.insert(
            p,
            PState {
                id,
                can_publish,
                publisher: None,
                subscriber: None,
                published: HashMap::new(),
                subs: Vec::new(),
                idle: Vec::new(),
                deactivate: Vec::new(),
                timed_out: false,
            },
        );
        let mut any = false;
        for t in self.forwarder.auto_subscriptions(p) {
            any |= self.subscribe(p, t);
        }
        if any {
            self.negotiate(now, p);
        }
    }

    fn new_transport(&mut self, now: Instant, p: ParticipantKey) -> Option<TransportId> {
        let t = match Transport::new(p, &self.cfg, now) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create transport");
                return None;
            }
        };
        self.next_transport += 1;
        let id = TransportId(self.next_transport);
        self.by_ufrag.insert(t.ufrag.clone(), id);
        self.transports.insert(id, t);
        self.dirty.push_back(id);
        Some(id)
    }

    fn remove_transport(&mut self, id: TransportId) {
        if let Some(t) = self.transports.remove(&id) {
            self.by_ufrag.remove(&t.ufrag);
        }
        for a in self.addrs.remove(&id).unwrap_or_default() {
            if self.by_addr.get(&a) == Some(&id) {
                self.by_addr.remove(&a);
            }
        }
    }

    /// Whether `p` exists and may publish; tells it why not otherwise.
    fn may_publish(&mut self, p: ParticipantKey) -> bool {
        match self.participants.get(&p) {
            None => false,
            Some(ps) if ps.can_publish => true,
            Some(_) => {
                self.emit(
                    p,
                    MediaEvent::Error {
                        message: "not allowed to publish".into(),
                    },
                );
                false
            }
        }
    }

    fn publisher_offer(&mut self, now: Instant, p: ParticipantKey, sdp: &str) {
        if !self.may_publish(p) {
            return;
        }
        let Some(ps) = self.participants.get(&p) else {
            return;
        };
        let tid = match ps.publisher {
            Some(t) => t,
            None => {
                let Some(t) = self.new_transport(now, p) else {
                    return;
                };
                if let Some(ps) = self.participants.get_mut(&p) {
                    ps.publisher = Some(t);
                }
                t
            }
        };
        let offer = match SdpOffer::from_sdp_string(sdp) {
            Ok(o) => o,
            Err(e) => {
                self.emit(
                    p,
                    MediaEvent::Error {
                        message: format!("unparsable offer: {e}"),
                    },
                );
                return;
            }
        };
        let Some(t) = self.transports.get_mut(&tid) else {
            return;
        };
        match t.rtc.sdp_api().accept_offer(offer) {
            Ok(answer) => {
                // New m-lines may map SSRCs differently; learn them again.
                t.rx.clear();
                let sdp = answer.to_sdp_string();
                self.emit(p, MediaEvent::PublisherAnswer { sdp });
            }
            Err(e) => self.emit(
                p,
                MediaEvent::Error {
                    message: format!("offer refused: {e}"),
                },
            ),
        }
        self.mark_dirty(tid);
    }

    fn subscriber_answer(&mut self, now: Instant, p: ParticipantKey, sdp: &str) {
        let Some(tid) = self.participants.get(&p).and_then(|ps| ps.subscriber) else {
            return;
        };
        let Some(t) = self.transports.get_mut(&tid) else {
            return;
        };
        let Some(pending) = t.pending_offer.take() else {
            self.emit(
                p,
                MediaEvent::Error {
                    message: "no subscriber offer is pending".into(),
                },
            );
            return;
        };
        let answer = match SdpAnswer::from_sdp_string(sdp) {
            Ok(a) => a,
            Err(e) => {
                t.pending_offer = Some(pending);
                self.emit(
                    p,
                    MediaEvent::Error {
                        message: format!("unparsable answer: {e}"),
                    },
                );
                return;
            }
        };
        if let Err(e) = t.rtc.sdp_api().accept_answer(pending, answer) {
            self.emit(
                p,
                MediaEvent::Error {
                    message: format!("answer refused: {e}"),
                },
            );
            return;
        }
        let renegotiate = std::mem::take(&mut t.renegotiate);
        let (cache_packets, cache_age) = (self.cfg.rtx_cache_packets, self.cfg.rtx_cache_age);
        let lines = self.pending_lines(p);
        let Some(t) = self.transports.get_mut(&tid) else {
            return;
        };
        for mid in lines {
            if let Some(tx) = t.rtc.direct_api().stream_tx_by_mid(mid, None) {
                tx.set_rtx_cache(cache_packets, cache_age, None);
            }
        }
        self.go_live(now, p);
        self.mark_dirty(tid);
        if renegotiate {
            self.negotiate(now, p);
        }
    }

    fn remote_candidate(&mut self, p: ParticipantKey, target: Target, cand: &str) {
        let Some(ps) = self.participants.get(&p) else {
            return;
        };
        let tid = match target {
            Target::Publisher => ps.publisher,
            Target::Subscriber => ps.subscriber,
        };
        let Some(t) = tid.and_then(|t| self.transports.get_mut(&t)) else {
            return;
        };
        let line = cand.strip_prefix("a=").unwrap_or(cand);
        match Candidate::from_sdp_string(line) {
            Ok(c) => t.rtc.add_remote_candidate(c),
            Err(e) => tracing::debug!(error = %e, "ignoring unparsable candidate"),
        }
    }

    fn publish(
        &mut self,
        now: Instant,
        p: ParticipantKey,
        track_id: String,
        mid: &str,
        kind: TrackKind,
        simulcast: Vec<String>,
    ) {
        if !self.may_publish(p) {
            return;
        }
        let Some(ps) = self.participants.get(&p) else {
            return;
        };
        let mid = Mid::from(mid);
        if self.track_ids.contains_key(&track_id) || ps.published.contains_key(&mid) {
            self.emit(
                p,
                MediaEvent::Error {
                    message: "track already published".into(),
                },
            );
            return;
        }
        let rid = simulcast.first().cloned();
        let Some((t, auto)) = self.forwarder.add_track(p, kind, rid.clone()) else {
            return;
        };
        self.tracks.insert(
            t,
            TrackMeta {
                id: track_id.clone(),
                publisher: p,
                mid,
                rid: rid.as_deref().map(Rid::from),
                kind,
            },
        );
        self.track_ids.insert(track_id, t);
        if let Some(ps) = self.participants.get_mut(&p) {
            ps.published.insert(mid, t);
            if let Some(pt) = ps.publisher.and_then(|id| self.transports.get_mut(&id)) {
                pt.rx.clear();
            }
        }
        for s in auto {
            if self.subscribe(s, t) {
                self.negotiate(now, s);
            }
        }
    }

    fn unpublish(&mut self, now: Instant, t: TrackKey) {
        // Subscribers first, while the track id is still known.
        for u in self.forwarder.remove_track(t) {
            let subscriber = u.subscriber;
            self.end_subscription(u);
            self.negotiate(now, subscriber);
        }
        let Some(meta) = self.tracks.remove(&t) else {
            return;
        };
        self.track_ids.remove(&meta.id);
        if let Some(ps) = self.participants.get_mut(&meta.publisher) {
            ps.published.remove(&meta.mid);
        }
    }

    fn subscribe(&mut self, p: ParticipantKey, t: TrackKey) -> bool {
        if !self.forwarder.subscribe(p, t) {
            return false;
        }
        let Some((kind, _)) = self.forwarder.track(t) else {
            return false;
        };
        if let Some(ps) = self.participants.get_mut(&p) {
            ps.subs.push(SubState {
                track: t,
                kind,
                mid: None,
                live: false,
                reused: None,
            });
        }
        true
    }

    /// Frees the subscriber's m-line for reuse and tells the subscriber.
    fn end_subscription(&mut self, u: Unsubscribed) {
        let track_id = self.tracks.get(&u.track).map(|m| m.id.clone());
        let Some(ps) = self.participants.get_mut(&u.subscriber) else {
            return;
        };
        let Some(i) = ps.subs.iter().position(|s| s.track == u.track) else {
            return;
        };
        let mut s = ps.subs.swap_remove(i);
        if let Some(mid) = s.mid {
            // Not live yet: the forwarder never had the line's state.
            let rewriter = s.reused.take().filter(|_| !s.live).unwrap_or(u.rewriter);
            ps.idle.push(IdleLine {
                mid,
                kind: s.kind,
                rewriter,
            });
            ps.deactivate.push(mid);
        }
        if let Some(track_id) = track_id {
            self.emit(u.subscriber, MediaEvent::Unsubscribed { track_id });
        }
    }

    /// Subscriptions with an m-line that the forwarder does not route to yet.
    fn pending_lines(&self, p: ParticipantKey) -> Vec<Mid> {
        self.participants
            .get(&p)
            .map(|ps| {
                ps.subs
                    .iter()
                    .filter(|s| !s.live)
                    .filter_map(|s| s.mid)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Starts routing to every negotiated m-line of `p` that is not live.
    fn go_live(&mut self, now: Instant, p: ParticipantKey) {
        let mut live = Vec::new();
        if let Some(ps) = self.participants.get_mut(&p) {
            for s in ps.subs.iter_mut().filter(|s| !s.live) {
                let Some(mid) = s.mid else { continue };
                s.live = true;
                live.push((s.track, mid, s.reused.take().unwrap_or_default()));
            }
        }
        for (track, mid, rewriter) in live {
            self.forwarder.set_out_line(p, track, mid, rewriter);
            // A new subscriber needs a keyframe to start decoding.
            self.request_keyframe(now, track);
        }
    }

    /// Makes a subscriber offer for whatever changed, or remembers to once
    /// the pending one is answered.
    fn negotiate(&mut self, now: Instant, p: ParticipantKey) {
        let Some(ps) = self.participants.get(&p) else {
            return;
        };
        let tid = match ps.subscriber {
            Some(t) => t,
            None => {
                let Some(t) = self.new_transport(now, p) else {
                    return;
                };
                if let Some(ps) = self.participants.get_mut(&p) {
                    ps.subscriber = Some(t);
                }
                t
            }
        };
        let Some(t) = self.transports.get_mut(&tid) else {
            return;
        };
        if t.pending_offer.is_some() {
            t.renegotiate = true;
            return;
        }
        let Some(ps) = self.participants.get(&p) else {
            return;
        };
        // (index in subs, track id, publisher id) for each new subscription.
        let todo: Vec<(usize, String, String)> = ps
            .subs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.mid.is_none())
            .filter_map(|(i, s)| {
                let meta = self.tracks.get(&s.track)?;
                let publisher = self.participants.get(&meta.publisher)?.id.clone();
                Some((i, meta.id.clone(), publisher))
            })
            .collect();
        let Some(ps) = self.participants.get_mut(&p) else {
            return;
        };
        let mut api = t.rtc.sdp_api();
        let mut added = Vec::new();
        for (i, track_id, publisher) in todo {
            let sub = &mut ps.subs[i];
            let mid = match ps.idle.iter().position(|l| l.kind == sub.kind) {
                Some(pos) => {
                    let line = ps.idle.swap_remove(pos);
                    ps.deactivate.retain(|m| *m != line.mid);
                    api.set_direction(line.mid, Direction::SendOnly);
                    sub.reused = Some(line.rewriter);
                    line.mid
                }
                None => api.add_media(
                    match sub.kind {
                        TrackKind::Audio => MediaKind::Audio,
                        TrackKind::Video => MediaKind::Video,
                    },
                    Direction::SendOnly,
                    Some(publisher),
                    Some(track_id.clone()),
                    None,
                ),
            };
            sub.mid = Some(mid);
            added.push((track_id, mid));
        }
        for mid in ps.deactivate.drain(..) {
            api.set_direction(mid, Direction::Inactive);
        }
        let id = ps.id.clone();
        for (track_id, mid) in added {
            self.outputs.push_back(Output::Event {
                participant: id.clone(),
                event: MediaEvent::Subscribed {
                    track_id,
                    mid: mid.to_string(),
                },
            });
        }
        match api.apply() {
            Some((offer, pending)) => {
                t.pending_offer = Some(pending);
                self.outputs.push_back(Output::Event {
                    participant: id,
                    event: MediaEvent::SubscriberOffer {
                        sdp: offer.to_sdp_string(),
                    },
                });
            }
            // Only a still-active line changed hands: nothing to negotiate.
            None => self.go_live(now, p),
        }
        self.mark_dirty(tid);
    }

    fn remove_participant(&mut self, now: Instant, p: ParticipantKey) {
        let ended = self.forwarder.remove_participant(p);
        // Tell subscribers first, while the track ids are still known.
        let subscribers: Vec<ParticipantKey> = ended.iter().map(|u| u.subscriber).collect();
        for u in ended {
            self.end_subscription(u);
        }
        let Some(ps) = self.participants.remove(&p) else {
            return;
        };
        self.participant_ids.remove(&ps.id);
        for t in ps.published.values() {
            if let Some(meta) = self.tracks.remove(t) {
                self.track_ids.remove(&meta.id);
            }
        }
        for t in [ps.publisher, ps.subscriber].into_iter().flatten() {
            self.remove_transport(t);
        }
        for s in subscribers {
            self.negotiate(now, s);
        }
    }
}

/// How often silent participants are looked for.
fn sweep_period(cfg: &MediaConfig) -> Duration {
    (cfg.ice_timeout / 4)
        .min(MAX_SWEEP_PERIOD)
        .max(Duration::from_millis(1))
}

/// Where a subscription's packets go, looked up the slow way: on its first
/// packet, or when its codec changes. The error is the drop to count, if
/// any (a subscriber that is going away is not counted).
fn find_route(
    participants: &FxHashMap<ParticipantKey, PState>,
    transports: &mut FxHashMap<TransportId, Transport>,
    subscriber: ParticipantKey,
    mid: Mid,
    codec: Codec,
) -> Result<CachedRoute, Option<DropReason>> {
    let tid = participants
        .get(&subscriber)
        .and_then(|p| p.subscriber)
        .ok_or(None)?;
    let st = transports.get_mut(&tid).ok_or(None)?;
    let pt = st
        .tx_pt(mid, codec)
        .ok_or(Some(DropReason::NotNegotiated))?;
    let ssrc = st
        .rtc
        .direct_api()
        .stream_tx_by_mid(mid, None)
        .ok_or(Some(DropReason::NotNegotiated))?
        .ssrc();
    Ok(CachedRoute {
        transport: tid,
        ssrc,
        codec,
        pt,
    })
}

/// Header extensions that carry end-to-end meaning and pass to subscribers.
/// The per-hop ones (transport-cc, abs-send-time, mid, rid) are written anew
/// by each subscriber transport. `user_values` holds the dependency
/// descriptor, the only user extension registered, and it is passed on as
/// received: moved out of the received packet, which is done with it, rather
/// than copied. Extensions the transports do not register never reach this
/// point: str0m drops them while parsing, deliberately.
fn passthrough_extensions(e: &mut ExtensionValues) -> ExtensionValues {
    ExtensionValues {
        audio_level: e.audio_level,
        voice_activity: e.voice_activity,
        video_orientation: e.video_orientation,
        video_content_type: e.video_content_type,
        abs_capture_time: e.abs_capture_time,
        frame_mark: e.frame_mark,
        user_values: std::mem::take(&mut e.user_values),
        ..Default::default()
    }
}
