//! Frames that opened, from a known group member, on the track of a
//! participant whose identity the signaling roster has not named yet. The
//! media path and the signaling path are separate, so a frame can overtake
//! the roster change that names its publisher; it waits here briefly
//! instead of being taken for a spoof.

use crate::media_keys::OpenedFrame;
use std::collections::VecDeque;
use std::time::Duration;
use web_time::Instant;

/// How long a frame waits for its publisher's identity.
pub(crate) const HOLD: Duration = Duration::from_secs(1);
/// Most frames waiting at once.
pub(crate) const MAX_HELD: usize = 64;
/// Most plaintext bytes waiting at once: a few video keyframes.
pub(crate) const MAX_HELD_BYTES: usize = 4 << 20;

struct Held<C> {
    frame: OpenedFrame<C>,
    publisher: String,
    until: Option<Instant>,
}

/// The waiting frames, oldest first.
pub(crate) struct Unattributed<C> {
    held: VecDeque<Held<C>>,
    bytes: usize,
}

impl<C> Unattributed<C> {
    pub(crate) fn new() -> Self {
        Self {
            held: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Holds `frame` (sent by the member it names) until `publisher` is
    /// known. Returns how many frames it pushed out (the oldest) to stay
    /// within the bounds; they are dropped.
    pub(crate) fn hold(&mut self, now: Instant, publisher: String, frame: OpenedFrame<C>) -> u64 {
        self.bytes += frame.plaintext.len();
        self.held.push_back(Held {
            frame,
            publisher,
            until: now.checked_add(HOLD),
        });
        let mut dropped = 0;
        while self.held.len() > MAX_HELD || self.bytes > MAX_HELD_BYTES {
            self.pop_front();
            dropped += 1;
        }
        dropped
    }

    /// Takes every frame held for `publisher`, oldest first.
    pub(crate) fn take(&mut self, publisher: &str) -> Vec<OpenedFrame<C>> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.held.len());
        for h in self.held.drain(..) {
            if h.publisher == publisher {
                self.bytes -= h.frame.plaintext.len();
                taken.push(h.frame);
            } else {
                kept.push_back(h);
            }
        }
        self.held = kept;
        taken
    }

    /// Drops the frames whose wait is over; returns how many.
    pub(crate) fn expire(&mut self, now: Instant) -> u64 {
        let mut dropped = 0;
        while self
            .held
            .front()
            .is_some_and(|h| h.until.is_some_and(|t| t <= now))
        {
            self.pop_front();
            dropped += 1;
        }
        dropped
    }

    /// When the oldest frame's wait ends (all wait equally long).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.held.front().and_then(|h| h.until)
    }

    pub(crate) fn len(&self) -> usize {
        self.held.len()
    }

    fn pop_front(&mut self) {
        if let Some(h) = self.held.pop_front() {
            self.bytes -= h.frame.plaintext.len();
        }
    }
}
