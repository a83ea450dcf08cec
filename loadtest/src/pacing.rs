//! Frame sizes and intervals that make synthetic media average to the
//! configured rates.

use crate::frame::HEADER_LEN;
use std::time::Duration;

/// A keyframe is this many times the size of a delta frame.
pub const KEYFRAME_FACTOR: usize = 5;
/// Audio bitrate the frame size is derived from (Opus speech is ~32 kbit/s).
pub const AUDIO_BITS_PER_S: usize = 32_000;
/// Largest audio plaintext: an audio frame must fit one RTP packet after
/// SFrame adds its header and tag.
pub const MAX_AUDIO_BYTES: usize = 1_000;
/// RTP clock rate of video.
pub const VIDEO_CLOCK_HZ: u64 = 90_000;
/// RTP clock rate of Opus.
pub const AUDIO_CLOCK_HZ: u64 = 48_000;

/// How one video publisher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoPacing {
    /// Time between frames.
    pub interval: Duration,
    /// Frames from one periodic keyframe to the next.
    pub gop_frames: u64,
    /// Size of a delta frame, bytes.
    pub delta_bytes: usize,
    /// Size of a keyframe, bytes.
    pub key_bytes: usize,
    /// RTP timestamp step per frame.
    pub rtp_step: u32,
}

impl VideoPacing {
    /// Frames of `kbps` at `fps` with a keyframe every `keyframe_interval_s`
    /// seconds; keyframes are [`KEYFRAME_FACTOR`] delta frames, and one GOP
    /// carries exactly the bitrate's bytes.
    pub fn new(kbps: u32, fps: u32, keyframe_interval_s: f64) -> Self {
        let fps = fps.max(1);
        let gop_frames = (f64::from(fps) * keyframe_interval_s).round().max(1.0) as u64;
        let bytes_per_gop = f64::from(kbps) * 125.0 * gop_frames as f64 / f64::from(fps);
        let units = gop_frames as f64 - 1.0 + KEYFRAME_FACTOR as f64;
        let delta_bytes = ((bytes_per_gop / units).round() as usize).max(HEADER_LEN);
        Self {
            interval: Duration::from_secs_f64(1.0 / f64::from(fps)),
            gop_frames,
            delta_bytes,
            key_bytes: delta_bytes * KEYFRAME_FACTOR,
            rtp_step: (VIDEO_CLOCK_HZ / u64::from(fps)) as u32,
        }
    }

    /// Average payload bitrate this pacing produces, kbit/s.
    pub fn kbps(&self) -> f64 {
        let gop_bytes = self.key_bytes + (self.gop_frames as usize - 1) * self.delta_bytes;
        let gop_s = self.interval.as_secs_f64() * self.gop_frames as f64;
        gop_bytes as f64 * 8.0 / 1000.0 / gop_s
    }
}

/// How one audio publisher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioPacing {
    /// Time between frames.
    pub interval: Duration,
    /// Size of a frame, bytes.
    pub bytes: usize,
    /// RTP timestamp step per frame.
    pub rtp_step: u32,
}

impl AudioPacing {
    /// `pps` frames per second of [`AUDIO_BITS_PER_S`].
    pub fn new(pps: u32) -> Self {
        let pps = pps.max(1);
        let bytes = (AUDIO_BITS_PER_S / 8 / pps as usize).clamp(HEADER_LEN, MAX_AUDIO_BYTES);
        Self {
            interval: Duration::from_secs_f64(1.0 / f64::from(pps)),
            bytes,
            rtp_step: (AUDIO_CLOCK_HZ / u64::from(pps)) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_frames_average_to_the_bitrate() {
        let p = VideoPacing::new(500, 30, 2.0);
        assert_eq!(p.gop_frames, 60);
        assert_eq!(p.key_bytes, 5 * p.delta_bytes);
        assert!((p.kbps() - 500.0).abs() < 1.0, "{}", p.kbps());
        assert_eq!(p.rtp_step, 3000);
        let fast = VideoPacing::new(2500, 60, 0.5);
        assert!((fast.kbps() - 2500.0).abs() < 2.0, "{}", fast.kbps());
        // Tiny bitrates still carry the header.
        assert!(VideoPacing::new(1, 30, 1.0).delta_bytes >= HEADER_LEN);
    }

    #[test]
    fn audio_frames_follow_the_packet_rate() {
        let a = AudioPacing::new(50);
        assert_eq!(a.bytes, 80);
        assert_eq!(a.interval, Duration::from_millis(20));
        assert_eq!(a.rtp_step, 960);
        assert_eq!(AudioPacing::new(1).bytes, MAX_AUDIO_BYTES);
        assert_eq!(AudioPacing::new(1000).bytes, HEADER_LEN);
    }
}
