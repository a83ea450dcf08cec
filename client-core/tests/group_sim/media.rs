//! The media plane on the group simulation's clock: publishers send real
//! SFrame frames under their current epoch, a forwarding SFU fans each one
//! out to every member present after a seeded one-way delay, and each
//! member's [`MediaKeys`](client_core::MediaKeys) (in [`World`]) opens and
//! attributes it as an SDK shell's would.
//!
//! Every member gets a delay to the SFU and one from it, drawn once from the
//! seed, plus a little jitter per frame. [`Media::run_until`] interleaves
//! this plane's events (a frame sent, a frame arriving, a member's keys
//! timing out) with the world's, in time order.

use crate::world::{Link, World};
use client_core::FrameOrigin;
use e2ee::frame::MediaCodec;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};
use testkit::rng::Rng;

/// Bytes of every frame after its id (an Opus frame's worth).
const FILLER: usize = 56;

/// What travels with a frame through a receiver's keys.
pub(crate) struct Frame {
    /// The participant id of the track's owner, as the SFU labels it.
    publisher: Rc<str>,
    /// Which frame it is ([`Media::sent`] index).
    pub(crate) id: u64,
}

impl FrameOrigin for Frame {
    fn publisher(&self) -> &str {
        &self.publisher
    }
}

/// A frame a member's keys opened and attributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Received {
    pub(crate) id: u64,
    pub(crate) identity: String,
    pub(crate) epoch: u64,
}

/// One frame as it was sent.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    /// The member that encrypted it.
    pub(crate) from: usize,
    /// The member whose track carried it (not `from` for a spoofed frame).
    pub(crate) track_of: usize,
    /// The epoch it was encrypted under.
    pub(crate) epoch: u64,
}

/// A frame that reached a member while it was in the room.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    pub(crate) to: usize,
    pub(crate) frame: usize,
}

/// A sender's track: `node` encrypts, the SFU labels it `owner`'s.
struct Track {
    node: usize,
    publisher: Rc<str>,
    owner: usize,
    every: Duration,
    next: Instant,
}

struct InFlight {
    to: usize,
    frame: usize,
    publisher: Rc<str>,
    bytes: Vec<u8>,
}

/// The SFU and the senders.
pub(crate) struct Media {
    rng: Rng,
    /// Delay from each member to the SFU, and from the SFU to it.
    paths: Vec<(Duration, Duration)>,
    jitter: Duration,
    tracks: Vec<Track>,
    wire: BTreeMap<(Instant, u64), InFlight>,
    order: u64,
    pub(crate) sent: Vec<Sent>,
    pub(crate) arrivals: Vec<Arrival>,
    /// When each member's keys want a tick, kept up to date after
    /// everything that can change it (asking hundreds of members at every
    /// event would cost more than the rest of the simulation).
    timers: BTreeSet<(Instant, usize)>,
    timer_of: Vec<Option<Instant>>,
}

impl Media {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: Rng::new(seed),
            paths: Vec::new(),
            jitter: Duration::from_millis(5),
            tracks: Vec::new(),
            wire: BTreeMap::new(),
            order: 0,
            sent: Vec::new(),
            arrivals: Vec::new(),
            timers: BTreeSet::new(),
            timer_of: Vec::new(),
        }
    }

    /// `node` sends a frame every `every` from now on (whenever it holds a
    /// key) on a track the SFU labels as `owner`'s: itself, or another
    /// member when it spoofs.
    pub(crate) fn publish(&mut self, w: &World, node: usize, owner: usize, every: Duration) {
        let phase = self.random(every);
        self.tracks.push(Track {
            node,
            publisher: w.nodes[owner].pid.as_str().into(),
            owner,
            every,
            next: w.now + phase,
        });
    }

    /// Nobody sends from now on; what is on the wire still arrives.
    pub(crate) fn stop(&mut self) {
        self.tracks.clear();
    }

    /// Runs the world and this plane together until `until`.
    pub(crate) fn run_until(&mut self, w: &mut World, until: Instant) {
        loop {
            let next = self.next_due().map_or(until, |t| t.min(until));
            while w.step(next) {}
            for node in w.take_touched() {
                self.refresh_timer(w, node);
            }
            self.do_due(w);
            if w.now >= until {
                return;
            }
        }
    }

    fn next_due(&self) -> Option<Instant> {
        let sends = self.tracks.iter().map(|t| t.next).min();
        let wire = self.wire.keys().next().map(|(at, _)| *at);
        let timeouts = self.timers.first().map(|(at, _)| *at);
        [sends, wire, timeouts].into_iter().flatten().min()
    }

    /// Files `node`'s next key timeout anew (none once it left).
    fn refresh_timer(&mut self, w: &World, node: usize) {
        if self.timer_of.len() <= node {
            self.timer_of.resize(node + 1, None);
        }
        if let Some(old) = self.timer_of[node].take() {
            self.timers.remove(&(old, node));
        }
        let n = &w.nodes[node];
        if let Some(at) = n.keys.next_timeout().filter(|_| n.link != Link::Gone) {
            self.timers.insert((at, node));
            self.timer_of[node] = Some(at);
        }
    }

    fn do_due(&mut self, w: &mut World) {
        let now = w.now;
        for t in 0..self.tracks.len() {
            while self.tracks[t].next <= now {
                let track = &mut self.tracks[t];
                track.next += track.every;
                self.send(w, t);
            }
        }
        while let Some(entry) = self.wire.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let f = entry.remove();
            if w.nodes[f.to].link != Link::Up {
                continue;
            }
            self.arrivals.push(Arrival {
                to: f.to,
                frame: f.frame,
            });
            let ctx = Frame {
                publisher: f.publisher,
                id: f.frame as u64,
            };
            w.nodes[f.to]
                .keys
                .decrypt(now, MediaCodec::Opus, &f.bytes, ctx);
            w.collect_frames(f.to);
            self.refresh_timer(w, f.to);
        }
        for i in crate::world::due(&self.timers, now) {
            if w.nodes[i].link != Link::Gone {
                w.nodes[i].keys.tick(now);
                w.collect_frames(i);
            }
            self.refresh_timer(w, i);
        }
    }

    fn send(&mut self, w: &mut World, t: usize) {
        let (node, owner) = (self.tracks[t].node, self.tracks[t].owner);
        let n = &mut w.nodes[node];
        if n.link != Link::Up || !n.keys.can_send() {
            return;
        }
        let epoch = n.epochs.last().expect("a key means an epoch").epoch;
        let frame = self.sent.len();
        let mut payload = (frame as u64).to_be_bytes().to_vec();
        payload.resize(8 + FILLER, 0x5a);
        let bytes = n
            .keys
            .encrypt(MediaCodec::Opus, &payload)
            .expect("a member with a key encrypts");
        self.sent.push(Sent {
            from: node,
            track_of: owner,
            epoch,
        });
        let up = self.path(node).0;
        let receivers: Vec<usize> = w
            .present()
            .filter(|&r| r != node && r != owner && w.nodes[r].link == Link::Up)
            .collect();
        for r in receivers {
            let delay = up + self.path(r).1 + self.random(self.jitter);
            self.order += 1;
            self.wire.insert(
                (w.now + delay, self.order),
                InFlight {
                    to: r,
                    frame,
                    publisher: Rc::clone(&self.tracks[t].publisher),
                    bytes: bytes.clone(),
                },
            );
        }
    }

    /// `node`'s delays to and from the SFU: 5 to 30 ms each.
    fn path(&mut self, node: usize) -> (Duration, Duration) {
        while self.paths.len() <= node {
            let up = Duration::from_millis(5) + self.random(Duration::from_millis(25));
            let down = Duration::from_millis(5) + self.random(Duration::from_millis(25));
            self.paths.push((up, down));
        }
        self.paths[node]
    }

    /// A duration in `[0, max)`, to the microsecond.
    fn random(&mut self, max: Duration) -> Duration {
        let us = max.as_micros().max(1) as usize;
        Duration::from_micros(self.rng.below(us) as u64)
    }
}
