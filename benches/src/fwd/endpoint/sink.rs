//! The generator's receiving side: which streams a sink has seen, so the
//! controller knows when every subscriber is ready.

use crate::fwd::generator::Shared;
use std::sync::atomic::Ordering::Relaxed;
use str0m::rtp::Ssrc;

/// A receiving endpoint.
#[derive(Debug)]
pub struct Sink {
    pub(super) probe: bool,
    expect: u32,
    seen: Vec<u32>,
    ready: bool,
    pub(super) suppressed: Vec<Ssrc>,
    pub(super) last_len: usize,
}

impl Sink {
    pub(super) fn new(expect: u32, probe: bool) -> Self {
        Self {
            probe,
            expect,
            seen: Vec::new(),
            ready: false,
            suppressed: Vec::new(),
            last_len: 0,
        }
    }

    pub(super) fn note_ssrc(&mut self, ssrc: u32, shared: &Shared) {
        if self.ready || self.seen.contains(&ssrc) {
            return;
        }
        self.seen.push(ssrc);
        if self.seen.len() >= self.expect as usize {
            self.ready = true;
            shared.sinks_ready.fetch_add(1, Relaxed);
        }
    }
}
