//! The per-subscription decision: forward this frame or not, and when to
//! move to the target layer (rules in the module documentation above).

use super::{FrameLayers, Indication, Layer, Layering};

/// Simulcast encodings the selector tells apart; packets of encodings past
/// this are never forwarded. Browsers send at most three.
const MAX_ENCODINGS: usize = 4;

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Decision {
    /// Send it to the subscriber.
    pub forward: bool,
    /// The layer the subscriber receives changed at this packet's frame.
    pub switched: bool,
}

/// One subscriber's layer state for one layered track.
#[derive(Debug, Clone)]
pub struct LayerSelector {
    layering: Layering,
    /// What the allocator wants this subscriber to receive; `None` pauses
    /// the track.
    target: Option<Layer>,
    /// What it receives now; `None` until an entry point of the target.
    current: Option<Layer>,
    /// Per encoding, the last frame decided and whether it was forwarded,
    /// so every packet of a frame gets the frame's decision.
    frames: [Option<(u16, bool)>; MAX_ENCODINGS],
}

impl LayerSelector {
    /// A selector that forwards nothing until it has a target.
    pub fn new(layering: Layering) -> Self {
        Self {
            layering,
            target: None,
            current: None,
            frames: [None; MAX_ENCODINGS],
        }
    }

    /// Sets what the subscriber should receive (`None` pauses the track).
    /// Takes effect at the next frame the rules allow.
    pub fn set_target(&mut self, target: Option<Layer>) {
        self.target = target;
    }

    /// What the subscriber should receive.
    pub fn target(&self) -> Option<Layer> {
        self.target
    }

    /// What the subscriber receives now.
    pub fn current(&self) -> Option<Layer> {
        self.current
    }

    /// The encoding whose next keyframe would complete a pending switch (or
    /// start the track): the caller asks the publisher for one, throttled.
    /// For SVC this is 0, the one stream.
    pub fn awaiting_keyframe(&self) -> Option<u8> {
        let target = self.target?;
        match self.current {
            None => Some(self.stream_of(target)),
            Some(cur) if self.needs_keyframe(cur, target) => Some(self.stream_of(target)),
            Some(_) => None,
        }
    }

    /// Decides one packet. Cheap and allocation-free: called for every
    /// packet of the track, once per subscriber.
    pub fn decide(&mut self, f: &impl FrameLayers) -> Decision {
        let Some(slot) = self.frames.get_mut(usize::from(f.encoding())) else {
            return Decision::default();
        };
        let number = f.frame_number();
        if let Some((n, forward)) = *slot
            && n == number
        {
            return Decision {
                forward,
                switched: false,
            };
        }
        let decision = self.decide_frame(f);
        if let Some(slot) = self.frames.get_mut(usize::from(f.encoding())) {
            *slot = Some((number, decision.forward));
        }
        decision
    }

    fn decide_frame(&mut self, f: &impl FrameLayers) -> Decision {
        let Some(target) = self.target else {
            self.current = None;
            return Decision::default();
        };
        let Some(cur) = self.current else {
            return self.enter_at_keyframe(f, target);
        };
        if cur == target {
            return keep(f, cur);
        }
        if self.needs_keyframe(cur, target) {
            if f.keyframe_start() && f.encoding() == self.stream_of(target) {
                return self.switch(f, target);
            }
            // Meanwhile the current stream sheds temporal layers at once:
            // all but the base when going down (the budget is short now),
            // those above the target's when going up.
            let shed = if target.spatial < cur.spatial {
                0
            } else {
                target.temporal
            };
            if shed < cur.temporal {
                return self.switch(f, Layer::new(cur.spatial, shed));
            }
            return keep(f, cur);
        }
        if target.spatial < cur.spatial || target.temporal < cur.temporal {
            // Down within one stream: nothing lower depends on what is
            // dropped. (A mixed move, lower in space and higher in time,
            // goes down first and climbs in time at a switch point.)
            let down = Layer::new(target.spatial, target.temporal.min(cur.temporal));
            return self.switch(f, down);
        }
        // Up in time within the stream, at the start of a temporal unit.
        let unit_start = self.layering == Layering::Simulcast || f.spatial() == 0;
        if unit_start
            && f.indication(Layer::new(f.spatial(), target.temporal)) == Indication::Switch
        {
            return self.switch(f, target);
        }
        keep(f, cur)
    }

    fn enter_at_keyframe(&mut self, f: &impl FrameLayers, target: Layer) -> Decision {
        if f.keyframe_start() && f.encoding() == self.stream_of(target) {
            self.switch(f, target)
        } else {
            Decision::default()
        }
    }

    fn switch(&mut self, f: &impl FrameLayers, to: Layer) -> Decision {
        self.current = Some(to);
        Decision {
            forward: f.indication(to).present(),
            switched: true,
        }
    }

    /// Moving from `cur` to `target` needs a keyframe of the target's
    /// stream: another simulcast encoding, or a higher SVC spatial layer
    /// whose chain the subscriber does not have.
    fn needs_keyframe(&self, cur: Layer, target: Layer) -> bool {
        match self.layering {
            Layering::Simulcast => cur.spatial != target.spatial,
            Layering::Svc => target.spatial > cur.spatial,
        }
    }

    fn stream_of(&self, layer: Layer) -> u8 {
        match self.layering {
            Layering::Simulcast => layer.spatial,
            Layering::Svc => 0,
        }
    }
}

fn keep(f: &impl FrameLayers, cur: Layer) -> Decision {
    Decision {
        forward: f.indication(cur).present(),
        switched: false,
    }
}

#[cfg(test)]
#[path = "selector_tests.rs"]
mod tests;
