//! Sharing one subscriber's bandwidth estimate across the tracks it
//! receives.
//!
//! Order of service, each class fully before the next:
//!
//! 1. **Audio**: always, and first. Speech is what a meeting cannot lose,
//!    and it costs little.
//! 2. **Screen shares**: a slide that cannot be read is worse than a face
//!    at low resolution.
//! 3. **Featured video**: the active speaker and the tracks the subscriber
//!    pinned.
//! 4. **Other video.**
//!
//! Two passes. The first gives each track, in that order, its lowest layer
//! if the budget still holds it; a video track whose lowest layer does not
//! fit is *paused for bandwidth* (the client is told, so it can show an
//! avatar instead of a frozen frame). The second spends what is left on
//! upgrades, class by class; within a class one step at a time, round
//! robin, so equal tracks share the headroom instead of the first taking it
//! all. Frame rate comes before resolution: above the lowest encoding only
//! the top two temporal layers are used. A track never gets a layer taller
//! than the subscriber said it displays, and a track it said is not
//! visible gets nothing.

use super::Layer;

/// How much a track matters to this subscriber (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// An audio track.
    Audio,
    /// A screen share.
    Screen,
    /// The active speaker's video, or a track the subscriber pinned.
    Featured,
    /// Any other video.
    Other,
}

/// One layer a track offers, with what it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerRate {
    /// The layer.
    pub layer: Layer,
    /// What receiving it costs, in bits per second, lower layers included
    /// (a temporal layer needs the ones below it; an SVC spatial layer the
    /// ones below it; a simulcast encoding only itself).
    pub bps: u64,
    /// Its picture height in pixels (0 for audio or when unknown).
    pub height: u16,
}

/// What one track asks of the allocator.
#[derive(Debug, Clone, Copy)]
pub struct Demand<'a> {
    /// Its class.
    pub class: Class,
    /// The layers it offers now, lowest quality first (spatial, then
    /// temporal); empty if the publisher sends nothing (yet).
    pub layers: &'a [LayerRate],
    /// The tallest picture the subscriber displays it at; `None` for no
    /// limit.
    pub max_height: Option<u16>,
    /// The subscriber shows it at all.
    pub visible: bool,
}

/// What one track gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allocation {
    /// The layer to forward; `None` pauses the track.
    pub target: Option<Layer>,
    /// What that layer costs.
    pub bps: u64,
    /// Paused because even its lowest layer did not fit (not because the
    /// subscriber hid it, nor because the publisher sends nothing).
    pub paused_for_bandwidth: bool,
}

/// Shares `budget_bps` across `demands`; `out[i]` is what `demands[i]`
/// gets. Allocates only to grow `out` and its own index list.
pub fn allocate(budget_bps: u64, demands: &[Demand<'_>], out: &mut Vec<Allocation>) {
    out.clear();
    out.resize(demands.len(), Allocation::default());
    // Index into each track's layers of what it got so far.
    let mut got: Vec<Option<usize>> = vec![None; demands.len()];
    let mut order: Vec<usize> = (0..demands.len()).collect();
    order.sort_by_key(|i| demands[*i].class);
    let mut left = budget_bps;

    for &i in &order {
        let d = &demands[i];
        let Some(lowest) = d.layers.first() else {
            continue;
        };
        if !d.visible && d.class != Class::Audio {
            continue;
        }
        if d.class == Class::Audio || lowest.bps <= left {
            left = left.saturating_sub(lowest.bps);
            got[i] = Some(0);
        } else {
            out[i].paused_for_bandwidth = true;
        }
    }

    let mut start = 0;
    while start < order.len() {
        let class = demands[order[start]].class;
        let end = start
            + order[start..]
                .iter()
                .take_while(|i| demands[**i].class == class)
                .count();
        // Round robin within the class: one step per track per round.
        loop {
            let mut stepped = false;
            for &i in &order[start..end] {
                let Some(at) = got[i] else { continue };
                let d = &demands[i];
                let now = d.layers[at].bps;
                let Some(next) = next_affordable(d, at, left.saturating_add(now)) else {
                    continue;
                };
                left = left.saturating_add(now).saturating_sub(d.layers[next].bps);
                got[i] = Some(next);
                stepped = true;
            }
            if !stepped {
                break;
            }
        }
        start = end;
    }

    for (i, g) in got.iter().enumerate() {
        if let Some(at) = *g {
            let l = demands[i].layers[at];
            out[i].target = Some(l.layer);
            out[i].bps = l.bps;
        }
    }
}

/// The next layer up from `at` that is worth having, within the
/// subscriber's size limit, and costs at most `can_spend` in all: layers in
/// between that cost more are skipped (a higher encoding may cost less
/// than a lower one at full rate).
fn next_affordable(d: &Demand<'_>, at: usize, can_spend: u64) -> Option<usize> {
    (at + 1..d.layers.len())
        .take_while(|j| d.max_height.is_none_or(|max| d.layers[*j].height <= max))
        .find(|j| worth_having(d.layers, *j) && d.layers[*j].bps <= can_spend)
}

/// Frame rate before resolution: above the lowest spatial layer (or
/// encoding), only its top two temporal layers are offered (at least half
/// its frame rate, 15 of 30 frames a second with three temporal layers).
/// A sharper picture at a quarter of the frame rate looks worse in a call
/// than a smaller one that moves; only the lowest layer goes that far down,
/// as the last step before pausing.
fn worth_having(layers: &[LayerRate], j: usize) -> bool {
    let l = layers[j].layer;
    let lowest = layers[0].layer.spatial;
    let top = layers
        .iter()
        .filter(|x| x.layer.spatial == l.spatial)
        .map(|x| x.layer.temporal)
        .max()
        .unwrap_or(0);
    l.spatial == lowest || l.temporal + 1 >= top
}

#[cfg(test)]
#[path = "allocator_tests.rs"]
mod tests;
