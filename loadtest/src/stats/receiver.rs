//! Everything one simulated participant measures about what it receives.
//! Pure: the caller passes the decrypted bytes and the time.

use super::layers::{LAYERS, LayerSummary, LayerTrack};
use super::stream::{Arrival, StreamTracker, WindowCounts};
use crate::frame::{FrameError, FrameHeader, MediaKind};
use std::collections::HashMap;

/// Latency samples held between two [`ReceiverStats::take_window`] calls;
/// beyond this they are dropped (the sampler runs every second, so only a
/// stalled sampler reaches it).
pub const MAX_PENDING_SAMPLES: usize = 200_000;

/// A stream as a receiver tells it apart: who sent it, and which track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// The sender's index in the run.
    pub sender: u32,
    /// Its track.
    pub kind: MediaKind,
}

/// What a receiver collected since the last sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowSample {
    /// Plaintext bytes of distinct frames.
    pub bytes: u64,
    /// Loss accounting of the window.
    pub counts: WindowCounts,
    /// End-to-end latency of each frame, µs.
    pub latencies_us: Vec<u64>,
    /// Video frames received on each simulcast layer.
    pub layer_frames: [u64; LAYERS],
}

/// A receiver's totals once it stopped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiverSummary {
    /// Frames its subscriptions implied.
    pub expected: u64,
    /// Distinct frames received.
    pub received: u64,
    /// Frames received more than once.
    pub duplicates: u64,
    /// Frames that arrived after a later one of the same stream.
    pub reordered: u64,
    /// Decrypted frames without a valid load-test header.
    pub malformed: u64,
    /// Plaintext bytes of distinct frames.
    pub bytes: u64,
    /// From the first frame received to the end, µs (0 if none).
    pub subscribed_us: u64,
    /// From the join start to the first frame, µs.
    pub join_us: Option<u64>,
    /// Mean interarrival jitter over its streams, µs.
    pub jitter_us: Option<f64>,
    /// Streams it received.
    pub streams: usize,
    /// Its video streams' layers, switches and freezes.
    pub layers: LayerSummary,
}

impl ReceiverSummary {
    /// Payload bitrate while subscribed, kbit/s.
    pub fn kbps(&self) -> Option<f64> {
        (self.subscribed_us > 0)
            .then(|| self.bytes as f64 * 8.0 / 1000.0 / (self.subscribed_us as f64 / 1e6))
    }
}

/// One receiver's live accounting.
#[derive(Debug, Clone)]
pub struct ReceiverStats {
    started_us: u64,
    first_frame_us: Option<u64>,
    streams: HashMap<StreamKey, StreamTracker>,
    layers: HashMap<StreamKey, LayerTrack>,
    window_layers: [u64; LAYERS],
    malformed: u64,
    window_bytes: u64,
    pending: Vec<u64>,
    dropped_samples: u64,
    finished: Option<ReceiverSummary>,
}

impl ReceiverStats {
    /// A receiver whose join started at `started_us`.
    pub fn new(started_us: u64) -> Self {
        Self {
            started_us,
            first_frame_us: None,
            streams: HashMap::new(),
            layers: HashMap::new(),
            window_layers: [0; LAYERS],
            malformed: 0,
            window_bytes: 0,
            pending: Vec::new(),
            dropped_samples: 0,
            finished: None,
        }
    }

    /// Accounts one decrypted frame that arrived at `now_us`. Frames after
    /// [`finish`](Self::finish) are ignored (`Ok(None)`).
    pub fn on_frame(&mut self, data: &[u8], now_us: u64) -> Result<Option<Arrival>, FrameError> {
        if self.finished.is_some() {
            return Ok(None);
        }
        let h = match FrameHeader::parse(data) {
            Ok(h) => h,
            Err(e) => {
                self.malformed += 1;
                return Err(e);
            }
        };
        self.first_frame_us.get_or_insert(now_us);
        let key = StreamKey {
            sender: h.sender,
            kind: h.kind,
        };
        let arrival = match self.streams.get_mut(&key) {
            Some(s) => s.on_frame(h.seq, now_us, h.send_us, data.len()),
            None => {
                self.streams.insert(
                    key,
                    StreamTracker::new(h.seq, now_us, h.send_us, data.len()),
                );
                Arrival::InOrder
            }
        };
        if arrival != Arrival::Duplicate {
            if h.kind == MediaKind::Video {
                self.layers
                    .entry(key)
                    .or_default()
                    .on_frame(h.layer, now_us);
                self.window_layers[usize::from(h.layer).min(LAYERS - 1)] += 1;
            }
            self.window_bytes += data.len() as u64;
            if self.pending.len() < MAX_PENDING_SAMPLES {
                self.pending.push(now_us.saturating_sub(h.send_us));
            } else {
                self.dropped_samples += 1;
            }
        }
        Ok(Some(arrival))
    }

    /// When the first frame arrived, µs since the process epoch.
    pub fn first_frame_us(&self) -> Option<u64> {
        self.first_frame_us
    }

    /// From the join start to the first frame, µs.
    pub fn join_us(&self) -> Option<u64> {
        self.first_frame_us
            .map(|f| f.saturating_sub(self.started_us))
    }

    /// [`StreamTracker::received_in`] of one stream; `None` if that stream
    /// never delivered a frame here (or the range is forgotten).
    pub fn received_in(&self, key: StreamKey, from: u64, to: u64) -> Option<WindowCounts> {
        self.streams.get(&key)?.received_in(from, to)
    }

    /// Distinct frames received, all streams.
    pub fn frames_received(&self) -> u64 {
        self.streams.values().map(StreamTracker::received).sum()
    }

    /// Streams (sender, track) it received frames of.
    pub fn streams_seen(&self) -> usize {
        self.streams.len()
    }

    /// Whether [`finish`](Self::finish) was called.
    pub fn is_finished(&self) -> bool {
        self.finished.is_some()
    }

    /// Latency samples dropped because nobody took them.
    pub fn dropped_samples(&self) -> u64 {
        self.dropped_samples
    }

    /// What arrived since the previous call (also after `finish`, for the
    /// samples still held).
    pub fn take_window(&mut self) -> WindowSample {
        let mut counts = WindowCounts::default();
        for s in self.streams.values_mut() {
            let w = s.take_window();
            counts.expected += w.expected;
            counts.received += w.received;
        }
        WindowSample {
            bytes: std::mem::take(&mut self.window_bytes),
            counts,
            latencies_us: std::mem::take(&mut self.pending),
            layer_frames: std::mem::take(&mut self.window_layers),
        }
    }

    /// Stops accounting. `end_us` ends the subscribed time (bitrates are
    /// over it); `last_sent` gives, per stream, the highest sequence number
    /// its sender had sent by the time this receiver stopped listening. Idempotent: a second call returns the
    /// first summary.
    pub fn finish(
        &mut self,
        end_us: u64,
        last_sent: impl Fn(StreamKey) -> Option<u64>,
    ) -> ReceiverSummary {
        if let Some(done) = &self.finished {
            return done.clone();
        }
        let mut s = ReceiverSummary {
            malformed: self.malformed,
            join_us: self.join_us(),
            subscribed_us: self.first_frame_us.map_or(0, |f| end_us.saturating_sub(f)),
            streams: self.streams.len(),
            ..ReceiverSummary::default()
        };
        let mut jitter_sum = 0.0;
        for (key, t) in &self.streams {
            s.expected += t.expected(last_sent(*key));
            s.received += t.received();
            s.duplicates += t.duplicates();
            s.reordered += t.reordered();
            s.bytes += t.bytes();
            jitter_sum += t.jitter_us();
        }
        if !self.streams.is_empty() {
            s.jitter_us = Some(jitter_sum / self.streams.len() as f64);
        }
        for t in self.layers.values() {
            s.layers.add(&t.summary());
        }
        self.finished = Some(s.clone());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameBuf;

    fn frame(sender: u32, kind: MediaKind, seq: u64, send_us: u64, len: usize) -> Vec<u8> {
        let mut b = FrameBuf::new(2000);
        b.frame(
            &FrameHeader {
                sender,
                kind,
                layer: 0,
                seq,
                send_us,
            },
            len,
        )
        .to_vec()
    }

    #[test]
    fn accounts_streams_apart_and_summarises() {
        let mut r = ReceiverStats::new(1_000);
        assert_eq!(r.join_us(), None);
        // Sender 1 audio 0..10 with 3 and 7 lost; sender 2 video 0..5.
        for seq in (0..10).filter(|s| *s != 3 && *s != 7) {
            let at = 10_000 + seq * 20_000;
            r.on_frame(&frame(1, MediaKind::Audio, seq, at - 5_000, 80), at)
                .expect("ours");
        }
        for seq in 0..5 {
            let at = 20_000 + seq * 33_000;
            r.on_frame(&frame(2, MediaKind::Video, seq, at - 8_000, 1000), at)
                .expect("ours");
        }
        // A duplicate and garbage.
        assert_eq!(
            r.on_frame(&frame(2, MediaKind::Video, 4, 0, 1000), 300_000),
            Ok(Some(Arrival::Duplicate))
        );
        assert!(r.on_frame(b"not ours", 300_000).is_err());
        assert_eq!(r.join_us(), Some(9_000));

        let w = r.take_window();
        assert_eq!(w.latencies_us.len(), 13);
        assert!(w.latencies_us.iter().all(|l| *l == 5_000 || *l == 8_000));
        assert_eq!(w.bytes, 8 * 80 + 5 * 1000);
        assert_eq!(
            w.counts,
            WindowCounts {
                expected: 15,
                received: 13
            }
        );

        // The audio sender went on to seq 11 before the end; video stopped at 4.
        let s = r.finish(1_010_000, |k| match k.kind {
            MediaKind::Audio => Some(11),
            MediaKind::Video => Some(4),
        });
        assert_eq!((s.expected, s.received), (12 + 5, 13));
        assert_eq!((s.duplicates, s.malformed, s.streams), (1, 1, 2));
        assert_eq!(s.subscribed_us, 1_000_000);
        assert_eq!(s.bytes, 8 * 80 + 5 * 1000);
        assert!((s.kbps().expect("subscribed") - 45.12).abs() < 1e-9);
        assert_eq!(s.jitter_us, Some(0.0));

        // Finished: later frames are ignored and the summary is stable.
        assert_eq!(
            r.on_frame(&frame(1, MediaKind::Audio, 12, 0, 80), 2_000_000),
            Ok(None)
        );
        assert_eq!(r.finish(5_000_000, |_| None), s);
    }

    #[test]
    fn unseen_streams_and_no_frames_summarise_to_zero() {
        let mut r = ReceiverStats::new(0);
        let s = r.finish(1_000, |_| Some(100));
        assert_eq!(s, ReceiverSummary::default());
        assert_eq!(s.kbps(), None);
    }
}
