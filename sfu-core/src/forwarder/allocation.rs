//! Choosing each subscriber's layers: the allocator run over the
//! subscriber's tracks with its bandwidth estimate, and the layer a new
//! subscription starts on.

use super::layered::TrackLayers;
use super::preferences::Preferences;
use super::{Forwarder, Notice, ParticipantKey, TrackKey};
use crate::api::{LayerSize, TrackKind};
use crate::layers::{
    Allocation, Class, Demand, Layer, LayerRate, LayerSelector, Layering, allocate,
};
use rustc_hash::FxHashMap;
use std::time::Instant;

/// What an audio track is assumed to cost until its rate has been
/// measured (its first 500 ms): Opus at the top of its usual speech range,
/// with headers.
pub const AUDIO_BPS: u64 = 64_000;

/// A temporal layer above any a stream has: "all of them".
const ALL_TEMPORAL: u8 = 7;

/// A new subscription starts on the best layer there is, all temporal
/// layers: the allocator corrects it at its next run, and starting high
/// spares a second keyframe when the budget allows it, which it usually
/// does when a call starts. For simulcast that is the best encoding flowing
/// now (an encoding the publisher turned off would never start; the
/// allocator moves a subscriber off one that stops); for SVC the top of the
/// structure (frames of layers not sent are simply absent).
///
/// With `start_low` it starts on the lowest spatial layer instead (all its
/// temporal layers), for a subscriber whose link is estimated: the
/// allocator raises it once the estimate (probed first) allows.
///
/// Either way it starts no higher than `cap`, the subscriber's display
/// preferences ([`spatial_cap`]), and on nothing while the track is hidden.
pub(super) fn initial_selector(
    layers: &TrackLayers,
    start_low: bool,
    cap: Option<u8>,
) -> LayerSelector {
    let mut selector = LayerSelector::new(layers.layering);
    let Some(cap) = cap else {
        return selector;
    };
    let spatial = match layers.layering {
        _ if start_low => Some(0),
        // Before the rates know anything (the track just began), the top
        // encoding: its keyframe comes with the others'.
        Layering::Simulcast if !layers.rates.measured() => Some(layers.encodings() - 1),
        Layering::Simulcast => layers.rates.highest_flowing(),
        Layering::Svc => layers.max_spatial(),
    }
    .unwrap_or(0)
    .min(cap);
    selector.set_target(Some(Layer::new(spatial, ALL_TEMPORAL)));
    selector
}

/// The highest spatial layer (or encoding) `prefs` admit on a track whose
/// publisher declared `sizes`; `None` while the track is hidden.
pub(super) fn spatial_cap(
    layers: &TrackLayers,
    prefs: &Preferences,
    sizes: &[LayerSize],
) -> Option<u8> {
    if !prefs.visible {
        return None;
    }
    Some(
        prefs
            .height_limit(sizes)
            .map_or(u8::MAX, |h| layers.rates.highest_within(h)),
    )
}

/// Consecutive allocation runs (500 ms apart) that must find even a
/// track's lowest layer too dear before it is paused. Meanwhile it keeps
/// its lowest layer and frame rate, and the link is probed for what the
/// lowest layers need: an estimate knocked down by one burst (a keyframe,
/// a probe through a short queue) settles at what was acknowledged, which
/// on a subscriber receiving only its lowest layers is below them, though
/// the link carries several times more.
const PAUSE_AFTER_RUNS: u8 = 4;

/// What one subscriber's allocation costs, in bits per second, told to
/// the caller after each allocation run so it can probe the link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spend {
    /// What the allocation costs.
    pub allocated: u64,
    /// What the subscriber would take with no limit.
    pub desired: u64,
    /// When some track's lowest layer did not fit: what the lowest layers
    /// of all its shown tracks cost together. 0 when they fit.
    pub starved_below: u64,
}

/// What one allocation run did, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllocationRun {
    /// Subscriptions whose target changed.
    pub retargeted: u32,
    /// Subscriptions paused because even their lowest layer did not fit.
    pub paused_for_bandwidth: u32,
    /// Rooms whose dominant speaker changed.
    pub speakers_changed: u32,
}

impl Forwarder {
    /// Runs the allocator for every subscriber: `budget(subscriber)` is its
    /// bandwidth estimate in bits per second (`None`: no estimate, no
    /// limit). Sets each layered subscription's target.
    /// `spent(subscriber, spend)` hears, for each subscriber, what its
    /// allocation costs, what it would take with no limit, and what even
    /// its lowest layers need when they do not fit (so the caller can
    /// probe its link).
    pub fn allocate(
        &mut self,
        now: Instant,
        mut budget: impl FnMut(ParticipantKey) -> Option<u64>,
        mut spent: impl FnMut(ParticipantKey, Spend),
    ) -> AllocationRun {
        let mut run = AllocationRun {
            speakers_changed: self.update_speakers(),
            ..AllocationRun::default()
        };
        // Each track's offer, measured once for all its subscribers.
        let mut offers: FxHashMap<TrackKey, Vec<LayerRate>> = FxHashMap::default();
        for (key, t) in &mut self.tracks {
            if let Some(layers) = t.layers.as_mut() {
                let mut v = Vec::new();
                layers.rates.layers(now, &mut v);
                offers.insert(*key, v);
            } else if let Some(rates) = t.audio_rates.as_mut() {
                let mut v = Vec::new();
                rates.layers(now, &mut v);
                if !v.is_empty() {
                    offers.insert(*key, v);
                }
            }
        }
        let audio = [LayerRate {
            layer: Layer::new(0, 0),
            bps: AUDIO_BPS,
            height: 0,
        }];
        let mut out: Vec<Allocation> = Vec::new();
        for (p, part) in &self.participants {
            if part.subscribed.is_empty() {
                continue;
            }
            let tracks: Vec<TrackKey> = part.subscribed.clone();
            let speaker = self.rooms.get(&part.room).and_then(|r| r.speaker.current());
            let demands: Vec<Demand<'_>> = tracks
                .iter()
                .map(|t| {
                    let tr = self.tracks.get(t);
                    let prefs = tr
                        .and_then(|tr| tr.subs.iter().find(|s| s.subscriber == *p))
                        .map(|s| s.prefs)
                        .unwrap_or_default();
                    match tr {
                        Some(tr) if tr.kind == TrackKind::Audio => Demand {
                            class: Class::Audio,
                            layers: offers.get(t).map_or(&audio[..], Vec::as_slice),
                            max_height: None,
                            visible: true,
                        },
                        tr => Demand {
                            class: if tr.is_some_and(|tr| Some(tr.publisher) == speaker) {
                                Class::Featured
                            } else {
                                Class::Other
                            },
                            layers: offers.get(t).map_or(&[], Vec::as_slice),
                            max_height: prefs.height_limit(tr.map_or(&[], |tr| &tr.sizes)),
                            visible: prefs.visible,
                        },
                    }
                })
                .collect();
            allocate(u64::MAX, &demands, &mut out);
            let desired: u64 = out.iter().map(|a| a.bps).sum();
            let limit = budget(*p);
            allocate(limit.unwrap_or(u64::MAX), &demands, &mut out);
            let starved = out.iter().any(|a| a.paused_for_bandwidth);
            let lowest: u64 = demands
                .iter()
                .filter(|d| d.visible)
                .filter_map(|d| d.layers.first())
                .map(|l| l.bps)
                .sum();
            spent(
                *p,
                Spend {
                    allocated: out.iter().map(|a| a.bps).sum(),
                    desired,
                    starved_below: if starved { lowest } else { 0 },
                },
            );
            for (t, a) in tracks.iter().zip(out.iter_mut()) {
                let Some(s) = self
                    .tracks
                    .get_mut(t)
                    .and_then(|tr| tr.subs.iter_mut().find(|s| s.subscriber == *p))
                else {
                    continue;
                };
                // A pause freezes the picture until the estimate, probed
                // with nothing but audio flowing, climbs back: a dip of
                // fewer than `PAUSE_AFTER_RUNS` runs (a delay spike, a
                // burst of loss) keeps the lowest layer at its lowest
                // frame rate instead.
                let new_pause = a.paused_for_bandwidth && !s.paused_for_bandwidth;
                let lowest = offers.get(t).and_then(|o| o.first()).map(|l| l.layer);
                if new_pause && s.pause_wanted + 1 < PAUSE_AFTER_RUNS && lowest.is_some() {
                    s.pause_wanted += 1;
                    a.paused_for_bandwidth = false;
                    a.target = lowest;
                } else {
                    s.pause_wanted = 0;
                }
                if s.paused_for_bandwidth != a.paused_for_bandwidth {
                    self.notices.push(Notice::Paused {
                        subscriber: *p,
                        track: *t,
                        paused: a.paused_for_bandwidth,
                    });
                }
                s.paused_for_bandwidth = a.paused_for_bandwidth;
                run.paused_for_bandwidth += u32::from(a.paused_for_bandwidth);
                let Some(selector) = s.selector.as_mut() else {
                    continue;
                };
                // A track that offers nothing measurable yet keeps its
                // target: the allocator has no price for it.
                if offers.get(t).is_none_or(|o| o.is_empty()) && !a.paused_for_bandwidth {
                    continue;
                }
                if selector.target() == a.target {
                    s.raise_wanted = None;
                    continue;
                }
                // Down (or pause) at once; up only when the previous run
                // wanted the same: a single estimate that spikes (a probe
                // that measured a burst) does not cost a keyframe and a
                // switch back.
                let raise = match (a.target, selector.target()) {
                    (Some(new), Some(old)) => new > old,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                // A track shown again was wanted before it was hidden.
                if raise && s.raise_wanted != a.target && !s.shown_again {
                    s.raise_wanted = a.target;
                    continue;
                }
                s.raise_wanted = None;
                s.shown_again = false;
                tracing::debug!(
                    subscriber = ?p, track = ?t, from = ?selector.target(), to = ?a.target,
                    budget_bps = ?limit, "layer target"
                );
                selector.set_target(a.target);
                run.retargeted += 1;
            }
        }
        let mut notices = std::mem::take(&mut self.notices);
        self.update_dynacast(&mut notices);
        self.notices = notices;
        run
    }

    /// Moves what allocation runs found that someone must hear into `out`.
    pub fn take_notices(&mut self, out: &mut Vec<Notice>) {
        out.append(&mut self.notices);
    }

    /// Ends each audio track's speech interval and updates each room's
    /// dominant speaker. Returns the rooms whose speaker changed.
    fn update_speakers(&mut self) -> u32 {
        let mut scores: FxHashMap<u64, Vec<(ParticipantKey, f32)>> = FxHashMap::default();
        for t in self.tracks.values_mut() {
            if t.kind != TrackKind::Audio {
                continue;
            }
            let score = t.speech.close();
            let room = scores.entry(t.room).or_default();
            // A participant with several audio tracks speaks as its loudest.
            match room.iter_mut().find(|(p, _)| *p == t.publisher) {
                Some((_, s)) => *s = s.max(score),
                None => room.push((t.publisher, score)),
            }
        }
        let mut changed = 0;
        for (room, s) in scores {
            if let Some(r) = self.rooms.get_mut(&room)
                && r.speaker.update(s)
            {
                changed += 1;
                self.notices.push(Notice::Speaker {
                    participants: r.participants.clone(),
                    speaker: r.speaker.current(),
                });
            }
        }
        changed
    }

    /// The dominant speaker of `participant`'s room, if anyone speaks.
    pub fn dominant_speaker(&self, participant: ParticipantKey) -> Option<ParticipantKey> {
        let room = self.participants.get(&participant)?.room;
        self.rooms.get(&room)?.speaker.current()
    }

    /// The simulcast rids of `track` whose keyframe a subscriber waits for
    /// (to start, or to switch). Empty for a track without layers.
    pub fn awaited_rids(&self, track: TrackKey) -> Vec<&str> {
        let Some(tr) = self.tracks.get(&track) else {
            return Vec::new();
        };
        let Some(layers) = tr.layers.as_ref() else {
            return Vec::new();
        };
        let mut mask = 0u8;
        for s in &tr.subs {
            if let Some(e) = s
                .selector
                .as_ref()
                .and_then(LayerSelector::awaiting_keyframe)
            {
                mask |= 1 << e.min(7);
            }
        }
        (0..layers.encodings())
            .filter(|e| mask & (1 << e) != 0)
            .filter_map(|e| layers.rid(e))
            .collect()
    }

    /// The layer `subscriber` receives of `track` now, and its target.
    pub fn layer(&self, subscriber: ParticipantKey, track: TrackKey) -> Option<LayerState> {
        let s = self.subscription(subscriber, track)?;
        let sel = s.selector.as_ref()?;
        Some(LayerState {
            current: sel.current(),
            target: sel.target(),
            paused_for_bandwidth: s.paused_for_bandwidth,
        })
    }
}

/// One subscription's layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerState {
    /// What it receives now.
    pub current: Option<Layer>,
    /// What it should receive.
    pub target: Option<Layer>,
    /// Paused for want of bandwidth.
    pub paused_for_bandwidth: bool,
}
