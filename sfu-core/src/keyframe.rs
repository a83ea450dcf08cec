//! Aggregation and throttling of keyframe requests.
//!
//! Every subscriber that loses a frame asks for a keyframe. Forwarding each
//! request would make a publisher with fifty subscribers send keyframes back
//! to back. Requests for one track inside a window collapse into one; a
//! request that arrives during the window is remembered and sent when the
//! window ends, so no subscriber is left waiting forever.
//!
//! A request can also be lost, or ignored by the publisher. A subscriber
//! that waits for a keyframe start ([`crate::forwarder::DdSignal`]) gets nothing
//! until one arrives, so for it the request is repeated: [`KeyframeRetry`]
//! remembers when the last request went out, and a packet held back after
//! the retry interval asks again. No timer is needed: with no packets
//! flowing there is nothing to hold back, and the first packet that is held
//! back asks.

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

/// When a keyframe request for one published track may be repeated.
#[derive(Debug, Clone, Default)]
pub struct KeyframeRetry {
    until: Option<Instant>,
}

impl KeyframeRetry {
    /// A request went to the publisher at `now`; it is answered, or given up
    /// on, `retry` later.
    pub fn sent(&mut self, now: Instant, retry: Duration) {
        self.until = Some(now + retry);
    }

    /// Whether the last request may still be answered, so asking again now
    /// would be premature.
    pub fn outstanding(&self, now: Instant) -> bool {
        self.until.is_some_and(|until| now < until)
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

    #[test]
    fn a_request_is_outstanding_for_the_retry_interval() {
        let t0 = Instant::now();
        let retry = Duration::from_secs(1);
        let mut r = KeyframeRetry::default();
        assert!(!r.outstanding(t0), "none sent yet");
        r.sent(t0, retry);
        assert!(r.outstanding(t0 + Duration::from_millis(999)));
        assert!(!r.outstanding(t0 + retry));
    }
}
