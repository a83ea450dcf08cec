//! Aggregation and throttling of keyframe requests, and each subscriber's
//! backoff.
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
//!
//! Aggregation bounds what all subscribers together cost a publisher, but
//! not what one of them costs: a receiver that can never decode (it has the
//! wrong key, or was removed from the E2EE group) asks again after every
//! keyframe, and would get one per window for as long as it stays.
//! [`KeyframeBudget`] backs off each subscriber's requests for a track on its
//! own, so one such receiver costs a handful of keyframes and then one per
//! [`DEFAULT_KEYFRAME_BACKOFF_MAX`], while others' requests are untouched.

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

/// What became of a subscriber's keyframe request
/// ([`crate::forwarder::Forwarder::subscriber_keyframe_request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeAsk {
    /// Send a request to the publisher now.
    Send,
    /// Merged into the track's next request, sent when its throttle window
    /// ends ([`crate::forwarder::Forwarder::due_keyframe_requests`]).
    Deferred,
    /// Refused: this subscriber asked again before its backoff interval
    /// for the track ended.
    OverBudget,
    /// No such subscription.
    Unknown,
}

/// Longest a subscriber that keeps asking waits between two of its
/// keyframe requests that reach the publisher, unless configured otherwise.
pub const DEFAULT_KEYFRAME_BACKOFF_MAX: Duration = Duration::from_secs(16);

/// A subscriber that stays silent for this many times its current interval
/// starts again from the first one.
const QUIET_FACTOR: u32 = 2;

/// One subscriber's keyframe requests for one track: exponential backoff.
///
/// Its first request passes. After each request that passes, the interval
/// before the next one may pass doubles, starting at `first` and capped at
/// `max`; a request inside the interval is refused, not deferred (a
/// receiver that still needs a keyframe asks again). Silence for twice
/// the current interval resets it: the subscriber decoded, and its next
/// loss is a new one. Refused requests are not silence.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyframeBudget {
    /// When its last request passed, and the interval in force since.
    passed: Option<(Instant, Duration)>,
    /// Its last request, passed or refused.
    heard: Option<Instant>,
}

impl KeyframeBudget {
    /// The subscriber asked at `now`. Returns `true` if the request is
    /// within its budget (and then counts against it).
    pub fn request(&mut self, now: Instant, first: Duration, max: Duration) -> bool {
        let heard = self.heard.replace(now);
        let interval = match (self.passed, heard) {
            (Some((at, interval)), Some(heard))
                if now.saturating_duration_since(heard) < interval.saturating_mul(QUIET_FACTOR) =>
            {
                if now.saturating_duration_since(at) < interval {
                    return false;
                }
                interval.saturating_mul(2).min(max).max(first)
            }
            // First request, or the first after a quiet period.
            _ => first,
        };
        self.passed = Some((now, interval));
        true
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

    /// When requests every `every` for `dur` pass, as offsets from the first.
    fn passing(every: Duration, dur: Duration) -> Vec<Duration> {
        let (first, max) = (Duration::from_millis(500), DEFAULT_KEYFRAME_BACKOFF_MAX);
        let t0 = Instant::now();
        let mut b = KeyframeBudget::default();
        let mut at = Duration::ZERO;
        let mut passed = Vec::new();
        while at < dur {
            if b.request(t0 + at, first, max) {
                passed.push(at);
            }
            at += every;
        }
        passed
    }

    #[test]
    fn a_subscriber_that_keeps_asking_backs_off_to_the_cap() {
        let ms = Duration::from_millis;
        let want: Vec<_> = [0, 500, 1500, 3500, 7500, 15_500, 31_500, 47_500]
            .map(ms)
            .to_vec();
        assert_eq!(passing(ms(100), ms(60_000)), want);
        // 360 ms apart, as a browser that cannot decrypt: each pass waits
        // for the first request after the interval.
        let want: Vec<_> = [0, 720, 1800, 3960, 8280, 16_560, 32_760].map(ms).to_vec();
        assert_eq!(passing(ms(360), ms(35_000)), want);
    }

    #[test]
    fn the_budget_is_small() {
        // It lives in every subscription.
        assert!(std::mem::size_of::<KeyframeBudget>() <= 48);
    }

    #[test]
    fn requests_spaced_by_twice_the_interval_always_pass() {
        let ms = Duration::from_millis;
        assert_eq!(passing(ms(1000), ms(10_000)).len(), 10);
    }

    #[test]
    fn silence_resets_the_backoff_and_refusals_are_not_silence() {
        let (first, max) = (Duration::from_millis(500), DEFAULT_KEYFRAME_BACKOFF_MAX);
        let t0 = Instant::now();
        let mut b = KeyframeBudget::default();
        // Passes at 0, 0.5, 1.5, 3.5 and 7.5 s: the interval is now 8 s.
        for at in [0, 500, 1500, 3500, 7500] {
            assert!(b.request(t0 + Duration::from_millis(at), first, max));
        }
        // Asking every 10 s keeps it from resetting (10 < 16): the ask
        // inside the interval is refused, the next one passes and doubles
        // it to 16 s, and the one after is refused again.
        let ms = |at| t0 + Duration::from_millis(at);
        assert!(!b.request(ms(10_000), first, max), "inside 8 s");
        assert!(b.request(ms(20_000), first, max));
        assert!(!b.request(ms(30_000), first, max), "inside 16 s");
        // 32 s of silence (twice 16 s): back to the first interval.
        let quiet = ms(62_000);
        assert!(b.request(quiet, first, max));
        assert!(!b.request(quiet + Duration::from_millis(499), first, max));
        assert!(b.request(quiet + Duration::from_millis(500), first, max));
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
