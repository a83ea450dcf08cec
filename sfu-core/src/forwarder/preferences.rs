//! What subscribers say about how they display a track (its largest size
//! on their screen, whether it is visible at all), and what follows for
//! the track's publisher: *dynacast*, the simulcast encodings nobody wants
//! now, which the publisher may stop encoding.

use super::{Forwarder, ParticipantKey, TrackKey};
use crate::api::{LayerSize, TrackKind};
use crate::layers::Layer;

/// One subscriber's display preferences for one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    /// It shows the track at all.
    pub visible: bool,
    /// The widest picture it displays; `None` for no limit.
    pub max_width: Option<u16>,
    /// The tallest picture it displays; `None` for no limit.
    pub max_height: Option<u16>,
}

impl Default for Preferences {
    /// Visible, no size limit: what a subscriber gets until it says more.
    fn default() -> Self {
        Self {
            visible: true,
            max_width: None,
            max_height: None,
        }
    }
}

impl Preferences {
    /// The tallest layer these preferences admit, as a height for the
    /// allocator, given the layer sizes the publisher declared (lowest
    /// first). A width limit becomes a height limit through the declared
    /// sizes: the tallest layer that fits both. Without declared sizes
    /// only the height limit is known.
    pub(crate) fn height_limit(&self, sizes: &[LayerSize]) -> Option<u16> {
        if self.max_width.is_none() {
            return self.max_height;
        }
        let fits = |s: &&LayerSize| {
            self.max_width.is_none_or(|w| s.width <= w)
                && self.max_height.is_none_or(|h| s.height <= h)
        };
        match sizes.iter().filter(fits).map(|s| s.height).max() {
            Some(h) => Some(h),
            // Nothing fits: the lowest layer, as the allocator always
            // gives at least that.
            None if !sizes.is_empty() => Some(0),
            None => self.max_height,
        }
    }

    /// The highest encoding (0 the lowest) of a track with `encodings`
    /// encodings whose declared size these preferences admit; `None` if
    /// the track is not visible. Unknown sizes admit every encoding.
    fn highest_encoding(&self, encodings: u8, sizes: &[LayerSize]) -> Option<u8> {
        if !self.visible {
            return None;
        }
        let top = encodings.saturating_sub(1);
        let Some(limit) = self.height_limit(sizes) else {
            return Some(top);
        };
        let admitted = (0..encodings)
            .take_while(|e| sizes.get(usize::from(*e)).is_none_or(|s| s.height <= limit))
            .last();
        Some(admitted.unwrap_or(0))
    }
}

/// Consecutive allocation runs that must want fewer encodings before the
/// publisher is told to stop one: a subscriber that hides a tile and shows
/// it again a moment later (scrolling a grid) costs no keyframe.
const DYNACAST_LOWER_AFTER_RUNS: u8 = 6;

/// A simulcast track's dynacast state.
#[derive(Debug, Default)]
pub(super) struct Dynacast {
    /// The encodings last announced as wanted, as a bit mask (bit 0 the
    /// lowest); `None` before any announcement, when the publisher sends
    /// every encoding.
    announced: Option<u8>,
    /// Runs in a row that wanted fewer than announced.
    lower_runs: u8,
}

/// A change a subscriber or publisher must hear about, found by an
/// allocation run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A subscription was paused for bandwidth, or resumed.
    Paused {
        /// The subscriber.
        subscriber: ParticipantKey,
        /// The track.
        track: TrackKey,
        /// Paused, or resumed.
        paused: bool,
    },
    /// A room's dominant speaker changed.
    Speaker {
        /// Everyone in the room.
        participants: Vec<ParticipantKey>,
        /// The new speaker, if anyone speaks.
        speaker: Option<ParticipantKey>,
    },
    /// The encodings of a simulcast track that some subscriber wants.
    PublisherLayers {
        /// The publisher.
        publisher: ParticipantKey,
        /// The track.
        track: TrackKey,
        /// Their rids, highest quality first.
        active: Vec<String>,
    },
}

impl Forwarder {
    /// Records how `subscriber` displays `track`. Returns `None` if it is
    /// not subscribed to it, else whether the publisher should be asked
    /// for a keyframe now: a track without layers that is shown again
    /// resumes mid-stream otherwise. On a layered track a smaller size (or
    /// hiding it) lowers the target at once; a larger one waits for the
    /// next allocation run, where a track shown again goes up at once,
    /// not after the two runs a raise otherwise waits for.
    pub fn set_preferences(
        &mut self,
        subscriber: ParticipantKey,
        track: TrackKey,
        prefs: Preferences,
    ) -> Option<bool> {
        let t = self.tracks.get_mut(&track)?;
        let layered = t.layers.is_some();
        let s = t.subs.iter_mut().find(|s| s.subscriber == subscriber)?;
        let shown_again = !s.prefs.visible && prefs.visible;
        s.shown_again |= shown_again;
        s.prefs = prefs;
        // Smaller or hidden applies at once, as any move down does; the
        // allocator's next run raises what may be raised.
        if let (Some(layers), Some(selector)) = (t.layers.as_ref(), s.selector.as_mut()) {
            let cap = super::allocation::spatial_cap(layers, &prefs, &t.sizes);
            match (cap, selector.target()) {
                (None, Some(_)) => selector.set_target(None),
                (Some(cap), Some(l)) if l.spatial > cap => {
                    selector.set_target(Some(Layer::new(cap, l.temporal)));
                }
                _ => {}
            }
        }
        Some(shown_again && !layered && t.kind == TrackKind::Video)
    }

    /// Records the picture sizes the publisher declared for `track`'s
    /// spatial layers, lowest first.
    pub fn set_layer_sizes(&mut self, track: TrackKey, sizes: Vec<LayerSize>) {
        if let Some(t) = self.tracks.get_mut(&track) {
            t.sizes = sizes;
            if let Some(layers) = t.layers.as_mut() {
                layers.declare_sizes(&t.sizes);
            }
        }
    }

    /// Dynacast: for each simulcast track, the encodings its subscribers'
    /// preferences admit. More encodings are announced at once; fewer only
    /// after [`DYNACAST_LOWER_AFTER_RUNS`] runs in a row want fewer.
    pub(super) fn update_dynacast(&mut self, notices: &mut Vec<Notice>) {
        for (key, t) in &mut self.tracks {
            if t.rids.len() < 2 {
                continue;
            }
            let encodings = t.rids.len().min(super::layered::MAX_ENCODINGS) as u8;
            let wanted = t
                .subs
                .iter()
                .filter_map(|s| s.prefs.highest_encoding(encodings, &t.sizes))
                .max()
                .map_or(0u8, |top| ((1u16 << (top + 1)) - 1) as u8);
            let announced = t
                .dynacast
                .announced
                .unwrap_or((1u16 << encodings) as u8 - 1);
            if wanted == announced {
                t.dynacast.lower_runs = 0;
                continue;
            }
            if wanted & !announced == 0 {
                t.dynacast.lower_runs += 1;
                if t.dynacast.lower_runs < DYNACAST_LOWER_AFTER_RUNS {
                    continue;
                }
            }
            t.dynacast.lower_runs = 0;
            t.dynacast.announced = Some(wanted);
            // `rids` lists the highest quality first; bit 0 is the lowest.
            let active = t
                .rids
                .iter()
                .take(usize::from(encodings))
                .rev()
                .enumerate()
                .filter(|(e, _)| wanted & (1 << e) != 0)
                .map(|(_, r)| r.clone())
                .rev()
                .collect();
            notices.push(Notice::PublisherLayers {
                publisher: t.publisher,
                track: *key,
                active,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes() -> Vec<LayerSize> {
        [(320, 180), (640, 360), (1280, 720)]
            .into_iter()
            .map(|(width, height)| LayerSize { width, height })
            .collect()
    }

    #[test]
    fn a_width_limit_becomes_the_tallest_declared_layer_that_fits() {
        let p = Preferences {
            max_width: Some(700),
            ..Preferences::default()
        };
        assert_eq!(p.height_limit(&sizes()), Some(360));
        assert_eq!(p.highest_encoding(3, &sizes()), Some(1));
        let tiny = Preferences {
            max_width: Some(100),
            max_height: Some(50),
            ..Preferences::default()
        };
        assert_eq!(tiny.highest_encoding(3, &sizes()), Some(0));
        assert_eq!(
            Preferences::default().highest_encoding(3, &sizes()),
            Some(2)
        );
    }

    #[test]
    fn without_declared_sizes_only_a_height_limit_counts() {
        let p = Preferences {
            max_width: Some(320),
            max_height: Some(180),
            ..Preferences::default()
        };
        assert_eq!(p.height_limit(&[]), Some(180));
        // Unknown sizes admit every encoding.
        assert_eq!(p.highest_encoding(3, &[]), Some(2));
    }

    #[test]
    fn a_hidden_track_wants_no_encoding() {
        let p = Preferences {
            visible: false,
            ..Preferences::default()
        };
        assert_eq!(p.highest_encoding(3, &sizes()), None);
    }
}
