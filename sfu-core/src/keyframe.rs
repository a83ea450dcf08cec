//! Aggregation and throttling of keyframe requests.
//!
//! Every subscriber that loses a frame asks for a keyframe. Forwarding each
//! request would make a publisher with fifty subscribers send keyframes back
//! to back. Requests for one track inside a window collapse into one; a
//! request that arrives during the window is remembered and sent when the
//! window ends, so no subscriber is left waiting forever.

use std::time::{Duration, Instant};

/// Throttle state of one published track.
#[derive(Debug, Clone, Default)]
pub struct KeyframeThrottle {
    last_sent: Option<Instant>,
    pending: bool,
}

impl KeyframeThrottle {
    /// A subscriber asked. Returns `true` if the request should go to the
    /// publisher now; otherwise it is deferred (see [`Self::poll`]).
    pub fn request(&mut self, now: Instant, min_interval: Duration) -> bool {
        match self.last_sent {
            Some(at) if now.saturating_duration_since(at) < min_interval => {
                self.pending = true;
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.pending = false;
                true
            }
        }
    }

    /// When a deferred request is due, if one is waiting.
    pub fn due_at(&self, min_interval: Duration) -> Option<Instant> {
        match (self.pending, self.last_sent) {
            (true, Some(at)) => Some(at + min_interval),
            _ => None,
        }
    }

    /// Returns `true` (once) when a deferred request should be sent now.
    pub fn poll(&mut self, now: Instant, min_interval: Duration) -> bool {
        match self.due_at(min_interval) {
            Some(due) if now >= due => {
                self.pending = false;
                self.last_sent = Some(now);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_collapse_and_trailing_request_is_sent() {
        let iv = Duration::from_millis(500);
        let t0 = Instant::now();
        let mut k = KeyframeThrottle::default();
        assert!(k.request(t0, iv));
        for i in 1..50 {
            assert!(!k.request(t0 + Duration::from_millis(i), iv));
        }
        assert_eq!(k.due_at(iv), Some(t0 + iv));
        assert!(!k.poll(t0 + Duration::from_millis(499), iv));
        assert!(k.poll(t0 + iv, iv));
        assert!(!k.poll(t0 + iv, iv), "sent once");
        assert_eq!(k.due_at(iv), None);
        assert!(k.request(t0 + iv * 3, iv));
    }
}
