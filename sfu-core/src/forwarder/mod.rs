//! The forwarding core: rooms, participants, tracks and subscriptions as
//! forwarding sees them, and the decision for each packet.
//!
//! It knows nothing about WebRTC transports. The [`crate::MediaPlane`] tells
//! it who joined and what was negotiated, asks it where each packet goes, and
//! does what it says. This keeps the decision testable and benchmarkable on
//! its own.
//!
//! **Ownership** (see "Who owns what" in `docs/architecture.md`). The
//! forwarder is the truth for subscriptions (who receives which track, and
//! on which subscriber m-line once it is live) and for the per-stream
//! forwarding state: rewriting, keyframe throttling and gating. Its rooms
//! and participants are integer keys derived from the plane's joins and
//! leaves, kept to find a room's tracks for auto-subscription; the cached
//! route in each subscription is the plane's, only held here so the
//! per-packet loop finds it without a lookup.
//!
//! **Keyframe gating.** A track whose packets carry the dependency
//! descriptor is *gated*: a subscriber that starts on it (new subscription,
//! reused m-line) or would switch to a new source of it gets nothing until a
//! packet that starts a keyframe ([`DdSignal::KeyframeStart`]). Forwarding
//! delta frames it cannot decode would only waste its bandwidth and make it
//! ask for a keyframe anyway. Tracks that never carried a descriptor are not
//! gated: nothing tells the SFU where their keyframes are.

mod allocation;
pub use allocation::{AUDIO_BPS, AllocationRun, LayerState, Spend};
mod layered;
mod preferences;
pub use preferences::{Notice, Preferences};

use crate::api::{LayerSize, TrackKind};
use crate::keyframe::{KeyframeAsk, KeyframeBudget, KeyframeRetry, KeyframeThrottle};
use crate::layers::rates::LayerRates;
use crate::layers::{Layer, LayerSelector, Layering};
use crate::resend::SentLog;
use crate::rewrite::{Rewriter, Rewritten};
use crate::speaker::{DominantSpeaker, SpeechMeter};
use crate::transport::CachedRoute;
use rtp_dd::DdError;
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use str0m::media::Mid;

/// A participant's key inside one media plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantKey(pub u64);

/// A published track's key inside one media plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackKey(pub u64);

#[derive(Debug)]
struct Subscription {
    subscriber: ParticipantKey,
    /// The subscriber-side m-line, once negotiated.
    out_mid: Option<Mid>,
    rewriter: Rewriter,
    /// Nothing forwarded on the current m-line yet.
    fresh: bool,
    /// The plane's cache of where this subscription's packets go; the
    /// forwarder only keeps it, and forgets it when the m-line changes.
    route: Option<CachedRoute>,
    /// What it sent, for resends: kept with the subscription for the plane
    /// like `route`, and forgotten with the m-line.
    sent: SentLog,
    /// This subscriber's own keyframe requests for the track.
    keyframe_budget: KeyframeBudget,
    /// Which layers it gets, once the track turns out to be layered (its
    /// packets carry descriptors); reset with the m-line.
    selector: Option<LayerSelector>,
    /// The allocator paused it: even its lowest layer does not fit.
    paused_for_bandwidth: bool,
    /// Allocation runs in a row that found the lowest layer too dear: a
    /// pause is applied only after several.
    pause_wanted: u8,
    /// A higher target the last allocation run wanted: a raise is applied
    /// only when two runs in a row want it.
    raise_wanted: Option<Layer>,
    /// How the subscriber displays the track.
    prefs: Preferences,
    /// It was hidden and is shown again: the next raise is applied at once.
    shown_again: bool,
}

impl Subscription {
    fn new(subscriber: ParticipantKey) -> Self {
        Self {
            subscriber,
            out_mid: None,
            rewriter: Rewriter::default(),
            fresh: true,
            route: None,
            sent: SentLog::default(),
            keyframe_budget: KeyframeBudget::default(),
            selector: None,
            paused_for_bandwidth: false,
            pause_wanted: 0,
            raise_wanted: None,
            prefs: Preferences::default(),
            shown_again: false,
        }
    }
}

#[derive(Debug)]
struct Track {
    publisher: ParticipantKey,
    room: u64,
    kind: TrackKind,
    /// Simulcast rids, highest quality first (empty without simulcast).
    /// A track without descriptors forwards only the first: nothing tells
    /// the SFU where another encoding's keyframes are.
    rids: Vec<String>,
    /// Its layers, from its first packet with a descriptor (video only).
    layers: Option<layered::TrackLayers>,
    /// How much speech it carried lately (audio only).
    speech: SpeechMeter,
    /// What it costs a subscriber, measured (audio only; video measures
    /// each layer in `layers`).
    audio_rates: Option<LayerRates>,
    subs: Vec<Subscription>,
    keyframes: KeyframeThrottle,
    retry: KeyframeRetry,
    /// Some packet carried a dependency descriptor: subscribers start on
    /// keyframes.
    gated: bool,
    /// Picture sizes the publisher declared, lowest layer first.
    sizes: Vec<LayerSize>,
    /// Which encodings the publisher was told are wanted (simulcast only).
    dynacast: preferences::Dynacast,
}

#[derive(Debug)]
struct Participant {
    room: u64,
    auto_subscribe: bool,
    published: Vec<TrackKey>,
    subscribed: Vec<TrackKey>,
}

#[derive(Debug, Default)]
struct Room {
    participants: Vec<ParticipantKey>,
    tracks: Vec<TrackKey>,
    speaker: DominantSpeaker<ParticipantKey>,
}

/// One packet as the forwarder sees it: only what routing and rewriting need.
#[derive(Debug, Clone, Copy)]
pub struct PacketMeta<'a> {
    /// Publisher-side SSRC.
    pub ssrc: u32,
    /// Publisher-side extended sequence number.
    pub seq: u64,
    /// Publisher-side RTP timestamp.
    pub ts: u32,
    /// Clock rate of the payload type.
    pub clock_rate: u32,
    /// Simulcast rid, if any.
    pub rid: Option<&'a str>,
    /// What its dependency descriptor says.
    pub dd: DdSignal,
    /// The descriptor's bytes, if it has one.
    pub descriptor: Option<&'a [u8]>,
    /// Its size (header and payload), for the layer rates.
    pub bytes: usize,
    /// Its audio level (RFC 6464: 0 loudest, -127 silence), if it carries
    /// one.
    pub audio_level: Option<i8>,
    /// Its voice activity flag, if it carries one.
    pub voice: Option<bool>,
}

/// What a packet's dependency descriptor says about where a receiver may
/// start decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DdSignal {
    /// No descriptor on this packet.
    Absent,
    /// A descriptor, not on the first packet of a keyframe.
    Other,
    /// The first packet of a keyframe: the frame starts here and the
    /// template structure needed to read later descriptors is attached.
    KeyframeStart,
}

/// What [`Forwarder::forward`] held back, besides what it forwarded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gate {
    /// Subscribers that did not get the packet because they wait for a
    /// keyframe start.
    pub awaiting_keyframe: u32,
    /// Someone waits, and no keyframe request went out within the retry
    /// interval (none yet, or it was lost or ignored): ask the publisher
    /// (through [`Forwarder::keyframe_request`], which throttles).
    pub request_keyframe: bool,
    /// Packets withheld from subscribers by layer selection (a layer they
    /// do not get), once per subscriber.
    pub layer_dropped: u32,
    /// The descriptor parsed but does not fit its stream's structure (a
    /// template the structure lacks, more frame diffs than allowed): the
    /// packet went to no subscriber of the layered track.
    pub bad_descriptor: bool,
    /// The packet's spatial layer (its simulcast encoding, or its SVC
    /// spatial id), on a layered track.
    pub spatial: Option<u8>,
}

/// Where a forwarded packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// The subscriber.
    pub subscriber: ParticipantKey,
    /// Its m-line for this track.
    pub mid: Mid,
    /// Rewritten sequence number and timestamp.
    pub rewritten: Rewritten,
}

/// What removing a track means for its subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribed {
    /// The track.
    pub track: TrackKey,
    /// The subscriber.
    pub subscriber: ParticipantKey,
    /// Its m-line, if it was negotiated.
    pub mid: Option<Mid>,
    /// The m-line's rewriting state, so a later track reusing the m-line
    /// continues its sequence numbers and timestamps.
    pub rewriter: Rewriter,
}

/// How long a waiting subscriber waits before a keyframe request is repeated,
/// unless configured otherwise.
pub const DEFAULT_KEYFRAME_RETRY: Duration = Duration::from_secs(1);

/// Rooms, participants, tracks and subscriptions.
#[derive(Debug)]
pub struct Forwarder {
    room_ids: HashMap<String, u64>,
    rooms: FxHashMap<u64, Room>,
    participants: FxHashMap<ParticipantKey, Participant>,
    tracks: FxHashMap<TrackKey, Track>,
    /// Tracks that may hold a deferred keyframe request, so timers look at
    /// these rather than at every track. May hold stale keys; they are
    /// dropped when next visited.
    deferred: Vec<TrackKey>,
    next_key: u64,
    keyframe_retry: Duration,
    /// New subscriptions start on the lowest layer and climb as the
    /// subscriber's bandwidth estimate allows (set when estimates exist).
    start_low: bool,
    /// What allocation runs found that someone must hear.
    notices: Vec<Notice>,
}

impl Default for Forwarder {
    fn default() -> Self {
        Self::new(DEFAULT_KEYFRAME_RETRY)
    }
}

impl Forwarder {
    /// An empty forwarder. A subscriber that waits for a keyframe start asks
    /// for a keyframe again when `keyframe_retry` has passed since the last
    /// request (see [`Gate::request_keyframe`]).
    pub fn new(keyframe_retry: Duration) -> Self {
        Self {
            room_ids: HashMap::new(),
            rooms: FxHashMap::default(),
            participants: FxHashMap::default(),
            tracks: FxHashMap::default(),
            deferred: Vec::new(),
            next_key: 0,
            keyframe_retry,
            start_low: false,
            notices: Vec::new(),
        }
    }

    /// New subscriptions start on the lowest layer and climb as the
    /// allocator allows, instead of on the best one: for subscribers whose
    /// bandwidth is estimated, where starting high would flood a slow link
    /// before its estimate has come down.
    pub fn start_low(&mut self, yes: bool) {
        self.start_low = yes;
    }

    fn next(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    /// Number of rooms with participants.
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// Number of participants.
    pub fn participant_count(&self) -> usize {
        self.participants.len()
    }

    /// Number of published tracks.
    pub fn track_count(&self) -> usize {
        self.tracks.len()
    }

    /// Number of subscriptions.
    pub fn subscription_count(&self) -> usize {
        self.tracks.values().map(|t| t.subs.len()).sum()
    }

    /// Adds a participant to `room` (created on first use).
    pub fn add_participant(&mut self, room: &str, auto_subscribe: bool) -> ParticipantKey {
        let room_key = match self.room_ids.get(room) {
            Some(k) => *k,
            None => {
                let k = self.next();
                self.room_ids.insert(room.to_string(), k);
                self.rooms.insert(k, Room::default());
                k
            }
        };
        let key = ParticipantKey(self.next());
        self.participants.insert(
            key,
            Participant {
                room: room_key,
                auto_subscribe,
                published: Vec::new(),
                subscribed: Vec::new(),
            },
        );
        if let Some(r) = self.rooms.get_mut(&room_key) {
            r.participants.push(key);
        }
        key
    }

    /// Tracks in the participant's room that it should be auto-subscribed to.
    pub fn auto_subscriptions(&self, p: ParticipantKey) -> Vec<TrackKey> {
        let Some(part) = self.participants.get(&p) else {
            return Vec::new();
        };
        if !part.auto_subscribe {
            return Vec::new();
        }
        let Some(room) = self.rooms.get(&part.room) else {
            return Vec::new();
        };
        room.tracks
            .iter()
            .copied()
            .filter(|t| {
                self.tracks
                    .get(t)
                    .is_some_and(|tr| tr.publisher != p && !part.subscribed.contains(t))
            })
            .collect()
    }

    /// Adds a track published by `publisher`. Returns the participants in the
    /// room that auto-subscribe to it.
    pub fn add_track(
        &mut self,
        publisher: ParticipantKey,
        kind: TrackKind,
        rids: Vec<String>,
    ) -> Option<(TrackKey, Vec<ParticipantKey>)> {
        let room = self.participants.get(&publisher)?.room;
        let key = TrackKey(self.next());
        self.tracks.insert(
            key,
            Track {
                publisher,
                room,
                kind,
                rids,
                layers: None,
                speech: SpeechMeter::default(),
                audio_rates: (kind == TrackKind::Audio).then(|| LayerRates::new(Layering::Svc)),
                subs: Vec::new(),
                keyframes: KeyframeThrottle::default(),
                retry: KeyframeRetry::default(),
                gated: false,
                sizes: Vec::new(),
                dynacast: preferences::Dynacast::default(),
            },
        );
        if let Some(p) = self.participants.get_mut(&publisher) {
            p.published.push(key);
        }
        let r = self.rooms.get_mut(&room)?;
        r.tracks.push(key);
        let auto = r
            .participants
            .iter()
            .copied()
            .filter(|p| {
                *p != publisher && self.participants.get(p).is_some_and(|pp| pp.auto_subscribe)
            })
            .collect();
        Some((key, auto))
    }

    /// The track's kind and publisher.
    pub fn track(&self, t: TrackKey) -> Option<(TrackKind, ParticipantKey)> {
        self.tracks.get(&t).map(|t| (t.kind, t.publisher))
    }

    /// Subscribes `subscriber` to `track`. Returns `false` if either is
    /// unknown, they are in different rooms, the subscriber published it, or
    /// it is already subscribed.
    pub fn subscribe(&mut self, subscriber: ParticipantKey, track: TrackKey) -> bool {
        let Some(sub) = self.participants.get_mut(&subscriber) else {
            return false;
        };
        let Some(tr) = self.tracks.get_mut(&track) else {
            return false;
        };
        if tr.room != sub.room || tr.publisher == subscriber || sub.subscribed.contains(&track) {
            return false;
        }
        sub.subscribed.push(track);
        tr.subs.push(Subscription::new(subscriber));
        true
    }

    /// Records the negotiated subscriber-side m-line of a subscription.
    pub fn set_out_mid(&mut self, subscriber: ParticipantKey, track: TrackKey, mid: Mid) {
        self.set_out_line(subscriber, track, mid, Rewriter::default());
    }

    /// Like [`Self::set_out_mid`] for an m-line that carried another track
    /// before: `rewriter` is that line's state, so the subscriber's stream
    /// on it stays continuous. On a gated track the line then waits for a
    /// keyframe start.
    pub fn set_out_line(
        &mut self,
        subscriber: ParticipantKey,
        track: TrackKey,
        mid: Mid,
        rewriter: Rewriter,
    ) {
        if let Some(s) = self
            .tracks
            .get_mut(&track)
            .and_then(|t| t.subs.iter_mut().find(|s| s.subscriber == subscriber))
        {
            s.out_mid = Some(mid);
            s.rewriter = rewriter;
            s.fresh = true;
            s.route = None;
            s.sent = SentLog::default();
            s.selector = None;
        }
    }

    /// What a subscription sent, and where its packets go, for answering
    /// its resend requests.
    pub(crate) fn sent(
        &self,
        subscriber: ParticipantKey,
        track: TrackKey,
    ) -> Option<(&SentLog, Option<CachedRoute>)> {
        let s = self.subscription(subscriber, track)?;
        Some((&s.sent, s.route))
    }

    fn subscription(&self, subscriber: ParticipantKey, track: TrackKey) -> Option<&Subscription> {
        self.tracks
            .get(&track)?
            .subs
            .iter()
            .find(|s| s.subscriber == subscriber)
    }

    /// How many encodings a track's publisher sends (1 without simulcast).
    pub(crate) fn encodings(&self, track: TrackKey) -> usize {
        self.tracks.get(&track).map_or(1, |t| t.rids.len().max(1))
    }

    /// Ends one subscription. Returns its m-line if it had one.
    pub fn unsubscribe(
        &mut self,
        subscriber: ParticipantKey,
        track: TrackKey,
    ) -> Option<Unsubscribed> {
        let tr = self.tracks.get_mut(&track)?;
        let i = tr.subs.iter().position(|s| s.subscriber == subscriber)?;
        let s = tr.subs.swap_remove(i);
        if let Some(p) = self.participants.get_mut(&subscriber) {
            p.subscribed.retain(|t| *t != track);
        }
        Some(Unsubscribed {
            track,
            subscriber,
            mid: s.out_mid,
            rewriter: s.rewriter,
        })
    }

    /// Removes a track. Returns the subscriptions that ended.
    pub fn remove_track(&mut self, track: TrackKey) -> Vec<Unsubscribed> {
        let Some(tr) = self.tracks.remove(&track) else {
            return Vec::new();
        };
        if let Some(p) = self.participants.get_mut(&tr.publisher) {
            p.published.retain(|t| *t != track);
        }
        if let Some(r) = self.rooms.get_mut(&tr.room) {
            r.tracks.retain(|t| *t != track);
        }
        self.deferred.retain(|t| *t != track);
        tr.subs
            .into_iter()
            .map(|s| {
                if let Some(p) = self.participants.get_mut(&s.subscriber) {
                    p.subscribed.retain(|t| *t != track);
                }
                Unsubscribed {
                    track,
                    subscriber: s.subscriber,
                    mid: s.out_mid,
                    rewriter: s.rewriter,
                }
            })
            .collect()
    }

    /// Removes a participant, its tracks and its subscriptions. Returns the
    /// subscriptions of others that ended because its tracks went away.
    pub fn remove_participant(&mut self, p: ParticipantKey) -> Vec<Unsubscribed> {
        let Some(part) = self.participants.get(&p) else {
            return Vec::new();
        };
        let published = part.published.clone();
        let subscribed = part.subscribed.clone();
        let room = part.room;
        let mut ended = Vec::new();
        for t in published {
            ended.extend(self.remove_track(t));
        }
        for t in subscribed {
            self.unsubscribe(p, t);
        }
        self.participants.remove(&p);
        if let Some(r) = self.rooms.get_mut(&room) {
            r.participants.retain(|x| *x != p);
            r.speaker.forget(p);
            if r.participants.is_empty() {
                self.rooms.remove(&room);
                self.room_ids.retain(|_, k| *k != room);
            }
        }
        ended
    }

    /// Decides where one packet of `track` goes and rewrites it for each
    /// subscriber. Calls `out` once per destination; allocates nothing.
    /// Returns `None` for an unknown track, otherwise what was held back
    /// for want of a keyframe (see the module docs on gating).
    pub fn forward(
        &mut self,
        track: TrackKey,
        pkt: PacketMeta<'_>,
        now: Instant,
        mut out: impl FnMut(Forward),
    ) -> Option<Gate> {
        self.forward_routed(track, pkt, now, |f, _, _| out(f))
    }

    /// [`Self::forward`], also handing out each subscription's route
    /// cache for the plane to read or fill, and its log of what it sent.
    pub(crate) fn forward_routed(
        &mut self,
        track: TrackKey,
        pkt: PacketMeta<'_>,
        now: Instant,
        mut out: impl FnMut(Forward, &mut Option<CachedRoute>, &mut SentLog),
    ) -> Option<Gate> {
        let tr = self.tracks.get_mut(&track)?;
        let mut gate = Gate::default();
        if tr.kind == TrackKind::Audio
            && let Some(level) = pkt.audio_level
        {
            tr.speech.count(level, pkt.voice);
        }
        if let Some(rates) = tr.audio_rates.as_mut() {
            rates.count(now, Layer::new(0, 0), pkt.bytes);
        }
        let read = match pkt.descriptor {
            Some(dd) if tr.kind == TrackKind::Video => {
                let layers = tr
                    .layers
                    .get_or_insert_with(|| layered::TrackLayers::new(&tr.rids, &tr.sizes));
                let Some(encoding) = layers.encoding_of(pkt.rid) else {
                    return Some(gate);
                };
                match layers.read(now, encoding, pkt.ssrc, dd, pkt.bytes) {
                    Ok(read) => Some(read),
                    // Joined mid-stream (or the publisher's SSRC changed):
                    // the structure comes with the next keyframe.
                    Err(DdError::NoStructure) => None,
                    Err(_) => {
                        gate.bad_descriptor = true;
                        None
                    }
                }
            }
            _ if tr.rids.first().is_some_and(|r| Some(r.as_str()) != pkt.rid) => {
                return Some(gate);
            }
            _ => None,
        };
        gate.spatial = read
            .as_ref()
            .zip(tr.layers.as_ref())
            .map(|(r, l)| match l.layering {
                Layering::Simulcast => r.encoding,
                Layering::Svc => r.info.spatial_id,
            });
        tr.gated |= pkt.dd != DdSignal::Absent;
        let entry_point = pkt.dd == DdSignal::KeyframeStart;
        let mut wants_keyframe = false;
        for s in &mut tr.subs {
            let Some(mid) = s.out_mid else { continue };
            // A layered track that is hidden gets no target from the
            // allocator; one without layers is held back here.
            if !s.prefs.visible && tr.layers.is_none() && tr.kind == TrackKind::Video {
                s.rewriter.skip(pkt.ssrc, pkt.seq);
                gate.layer_dropped += 1;
                continue;
            }
            if let Some(layers) = tr.layers.as_ref() {
                // A layered track: the selector decides, from the frame's
                // descriptor. A packet it cannot place in a frame (no
                // descriptor, as on padding; no structure yet; a bad one)
                // is not sent, and leaves no gap in the numbering.
                let Some(read) = read.as_ref() else {
                    s.rewriter.skip(pkt.ssrc, pkt.seq);
                    if s.selector
                        .as_ref()
                        .is_none_or(|sel| sel.current().is_none())
                    {
                        gate.awaiting_keyframe += 1;
                    } else {
                        gate.layer_dropped += 1;
                    }
                    continue;
                };
                let start_low = self.start_low;
                let selector = s.selector.get_or_insert_with(|| {
                    let cap = allocation::spatial_cap(layers, &s.prefs, &tr.sizes);
                    allocation::initial_selector(layers, start_low, cap)
                });
                let decision = selector.decide(&layers.frame(read));
                wants_keyframe |= selector.awaiting_keyframe().is_some();
                if !decision.forward {
                    s.rewriter.skip(pkt.ssrc, pkt.seq);
                    if selector.current().is_none() && selector.target().is_some() {
                        gate.awaiting_keyframe += 1;
                    } else {
                        gate.layer_dropped += 1;
                    }
                    continue;
                }
            }
            // A packet from a source other than the current one is a switch;
            // on a gated track it happens only at a keyframe start, so the
            // current source keeps flowing until then.
            let starting = s.fresh || s.rewriter.source_ssrc() != Some(pkt.ssrc);
            if tr.gated && starting && !entry_point {
                gate.awaiting_keyframe += 1;
                continue;
            }
            if let Some(rewritten) =
                s.rewriter
                    .rewrite(pkt.ssrc, pkt.seq, pkt.ts, pkt.clock_rate, now)
            {
                s.fresh = false;
                out(
                    Forward {
                        subscriber: s.subscriber,
                        mid,
                        rewritten,
                    },
                    &mut s.route,
                    &mut s.sent,
                );
            }
        }
        gate.request_keyframe =
            (gate.awaiting_keyframe > 0 || wants_keyframe) && !tr.retry.outstanding(now);
        Some(gate)
    }

    /// A subscriber asked for a keyframe of `track` (a PLI or FIR). The
    /// request first has to fit that subscriber's own backoff for the track
    /// ([`KeyframeBudget`]: intervals from `min` doubling up to
    /// `backoff_max`), then joins the track's aggregation like
    /// [`Self::keyframe_request`].
    pub fn subscriber_keyframe_request(
        &mut self,
        track: TrackKey,
        subscriber: ParticipantKey,
        now: Instant,
        min: Duration,
        backoff_max: Duration,
    ) -> KeyframeAsk {
        let Some(s) = self
            .tracks
            .get_mut(&track)
            .and_then(|t| t.subs.iter_mut().find(|s| s.subscriber == subscriber))
        else {
            return KeyframeAsk::Unknown;
        };
        if !s.keyframe_budget.request(now, min, backoff_max) {
            return KeyframeAsk::OverBudget;
        }
        if self.keyframe_request(track, now, min) {
            KeyframeAsk::Send
        } else {
            KeyframeAsk::Deferred
        }
    }

    /// The SFU itself needs a keyframe of `track` (a subscription went live,
    /// or a subscriber still waits for a keyframe start); no subscriber's
    /// budget is charged. Returns `true` if the request should go to the
    /// publisher now, otherwise it is merged into the track's next one.
    pub fn keyframe_request(&mut self, track: TrackKey, now: Instant, min: Duration) -> bool {
        let retry = self.keyframe_retry;
        let Some(t) = self.tracks.get_mut(&track) else {
            return false;
        };
        let send = t.keyframes.request(now, min);
        if send {
            t.retry.sent(now, retry);
        } else if !self.deferred.contains(&track) {
            self.deferred.push(track);
        }
        send
    }

    /// Tracks whose deferred keyframe request is due now, in the order they
    /// were deferred.
    pub fn due_keyframe_requests(&mut self, now: Instant, min: Duration, out: &mut Vec<TrackKey>) {
        let retry = self.keyframe_retry;
        let tracks = &mut self.tracks;
        self.deferred.retain(|k| {
            let Some(t) = tracks.get_mut(k) else {
                return false;
            };
            if t.keyframes.poll(now, min) {
                t.retry.sent(now, retry);
                out.push(*k);
                return false;
            }
            // Still waiting for its window, or sent directly since.
            t.keyframes.due_at(min).is_some()
        });
    }

    /// The earliest deferred keyframe request.
    pub fn next_keyframe_due(&self, min: Duration) -> Option<Instant> {
        self.deferred
            .iter()
            .filter_map(|k| self.tracks.get(k)?.keyframes.due_at(min))
            .min()
    }
}

#[cfg(test)]
mod tests;
