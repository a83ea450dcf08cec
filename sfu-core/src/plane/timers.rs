//! Time: each transport's str0m timeout in one heap, deferred keyframe
//! requests, and the periodic sweep for participants whose media went
//! silent.

use super::{MediaPlane, Notice, PState};
use crate::api::{MediaConfig, MediaEvent};
use crate::stats::ESTIMATE_BUCKETS_BPS;
use crate::transport::TransportId;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};
use str0m::bwe::Bitrate;

/// Longest gap between two sweeps for silent participants. A silent
/// participant is reported at most this much (or a quarter of the ICE
/// timeout, if shorter) after its deadline; in exchange the plane keeps no
/// per-participant timer.
const MAX_SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// How often each subscriber's layers are allocated anew: often enough to
/// follow a bandwidth estimate that drops (the switch down itself then
/// waits at most a frame, or a keyframe for another encoding), rarely
/// enough to cost nothing measurable.
pub(super) const ALLOCATION_PERIOD: Duration = Duration::from_millis(500);

/// The share of a subscriber's bandwidth estimate the allocator spends:
/// the rest absorbs keyframes (several times a delta frame), the
/// retransmissions that repair losses, and the estimate's own error.
const ESTIMATE_USED_PERCENT: u64 = 85;

/// No probing for this long after a subscriber's estimate last fell.
const PROBE_HOLD_AFTER_FALL: Duration = Duration::from_secs(3);

/// Stale timer entries tolerated beyond one per transport before the heap is
/// rebuilt; keeps it small when busy transports re-arm on every batch.
const TIMER_SLACK: usize = 32;

impl MediaPlane {
    pub(super) fn next_deadline(&mut self, now: Instant) -> Instant {
        let busy = !self.participants.is_empty();
        let sweep = busy.then_some(self.next_sweep);
        let allocation = busy.then_some(self.next_allocation);
        [
            self.next_transport_timeout(),
            self.forwarder
                .next_keyframe_due(self.cfg.keyframe_min_interval),
            sweep,
            allocation,
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
                .is_some_and(|tr| tr.next_timeout == Some(at))
            {
                return Some(at);
            }
            self.timers.pop();
        }
        None
    }

    /// Records what str0m asked for after a poll.
    #[inline]
    pub(super) fn arm(&mut self, tid: TransportId, at: Option<Instant>) {
        let Some(tr) = self.transports.get_mut(&tid) else {
            return;
        };
        if tr.next_timeout == at {
            // Its entry is still in the heap.
            return;
        }
        tr.next_timeout = at;
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
                .filter_map(|(id, tr)| tr.next_timeout.map(|at| Reverse((at, *id)))),
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
            .filter_map(|tid| self.transports.get(&tid))
            .map(|tr| tr.last_rx)
            .max()
            .map(|last| last + self.cfg.ice_timeout)
    }

    pub(super) fn on_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, tid))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(tr) = self.transports.get_mut(&tid)
                && tr.next_timeout == Some(at)
            {
                // Re-armed when polled.
                tr.next_timeout = None;
                if !tr.dirty {
                    tr.dirty = true;
                    self.dirty.push_back(tid);
                }
            }
        }
        let mut tracks = std::mem::take(&mut self.due);
        self.forwarder
            .due_keyframe_requests(now, self.cfg.keyframe_min_interval, &mut tracks);
        for track in tracks.drain(..) {
            self.send_keyframe_request(track);
        }
        self.due = tracks;
        if now >= self.next_sweep {
            self.next_sweep = now + sweep_period(&self.cfg);
            self.sweep_silent(now);
        }
        if now >= self.next_allocation {
            self.next_allocation = now + ALLOCATION_PERIOD;
            self.allocate_layers(now);
        }
    }

    /// Shares each subscriber's bandwidth estimate across its tracks.
    /// With bandwidth estimation on, each subscriber transport is then told
    /// what it sends and what it would like to: str0m probes the link (with
    /// padding) toward the wanted rate, so the estimate can rise before a
    /// higher layer is switched to.
    fn allocate_layers(&mut self, now: Instant) {
        let participants = &self.participants;
        let mut spent = std::mem::take(&mut self.spent);
        spent.clear();
        let run = self.forwarder.allocate(
            now,
            |p| {
                participants
                    .get(&p)
                    .and_then(|ps| ps.estimate_bps)
                    .map(|e| e / 100 * ESTIMATE_USED_PERCENT)
            },
            |p, spend| spent.push((p, spend)),
        );
        self.stats.layer_retargets += u64::from(run.retargeted);
        self.stats.paused_for_bandwidth = u64::from(run.paused_for_bandwidth);
        let mut buckets = [0u64; ESTIMATE_BUCKETS_BPS.len()];
        for e in self.participants.values().filter_map(|p| p.estimate_bps) {
            for (n, bound) in buckets.iter_mut().zip(ESTIMATE_BUCKETS_BPS) {
                *n += u64::from(e <= bound);
            }
        }
        self.stats.subscriber_estimates = buckets;
        if let Some(initial) = self.cfg.bandwidth_estimation {
            for (p, spend) in spent.drain(..) {
                let Some(ps) = self.participants.get_mut(&p) else {
                    continue;
                };
                // Probing toward more while the estimate falls would only
                // add to the congestion it is measuring; until the link
                // has been probed once, though, a fall is no sign of
                // congestion (a new subscription starts on its lowest
                // layers and sends too little to hold the starting
                // estimate), and probing is what lifts it. After a fall
                // it waits a while before probing again: the
                // estimate settles in steps, and a probe into a link that
                // has just lost capacity only adds to its queue (measured
                // on the step test in `tests/congestion.rs`, the way back
                // up took 2.2 s without the wait, 1.2 s with it).
                ps.estimate_probed |= ps.estimate_bps.is_some_and(|e| e > initial);
                let fell = matches!(
                    (ps.estimate_bps, ps.estimate_at_allocation),
                    (Some(e), Some(then)) if e < then
                );
                if fell && ps.estimate_probed {
                    ps.fell_at = Some(now);
                }
                let falling = ps
                    .fell_at
                    .is_some_and(|t| now.saturating_duration_since(t) < PROBE_HOLD_AFTER_FALL);
                ps.estimate_at_allocation = ps.estimate_bps;
                // A subscriber whose lowest layers do not fit is probed
                // for what they need, falling or not: that decides
                // between a pause and a picture.
                let need = spend.starved_below / ESTIMATE_USED_PERCENT * 100;
                let allocated = spend.allocated;
                let desired = if falling { allocated } else { spend.desired }.max(need);
                let Some(tid) = ps.subscriber else {
                    continue;
                };
                if let Some(tr) = self.transports.get_mut(&tid) {
                    tr.rtc
                        .bwe()
                        .set_bitrate(Bitrate::bps(allocated.min(desired)), Bitrate::bps(desired));
                    self.mark_dirty(tid);
                }
            }
        }
        self.spent = spent;
        self.announce_notices();
    }

    /// Tells subscribers and publishers what the allocation run changed:
    /// paused and resumed tracks, the dominant speaker, and the encodings
    /// wanted of each simulcast track.
    fn announce_notices(&mut self) {
        let mut notices = std::mem::take(&mut self.notices);
        self.forwarder.take_notices(&mut notices);
        for n in notices.drain(..) {
            match n {
                Notice::Paused {
                    subscriber,
                    track,
                    paused,
                } => {
                    if let Some(meta) = self.tracks.get(&track) {
                        let track_id = meta.id.clone();
                        self.emit(subscriber, MediaEvent::TrackPaused { track_id, paused });
                    }
                }
                Notice::Speaker {
                    participants,
                    speaker,
                } => {
                    let participant_id = speaker
                        .and_then(|s| self.participants.get(&s))
                        .map(|s| s.id.clone());
                    for p in participants {
                        let participant_id = participant_id.clone();
                        self.emit(p, MediaEvent::ActiveSpeaker { participant_id });
                    }
                }
                Notice::PublisherLayers {
                    publisher,
                    track,
                    active,
                } => {
                    if let Some(meta) = self.tracks.get(&track) {
                        let track_id = meta.id.clone();
                        self.stats.dynacast_updates += 1;
                        self.emit(publisher, MediaEvent::PublisherLayers { track_id, active });
                    }
                }
            }
        }
        self.notices = notices;
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
}

/// How often silent participants are looked for.
pub(super) fn sweep_period(cfg: &MediaConfig) -> Duration {
    (cfg.ice_timeout / 4)
        .min(MAX_SWEEP_PERIOD)
        .max(Duration::from_millis(1))
}
