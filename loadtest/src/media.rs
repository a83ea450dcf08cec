//! Real encoded media to replay: VP8 frames from an IVF file and Opus
//! packets from an Ogg file, looped without end.
//!
//! The `participant` tool ([`member`](crate::member)) sends them so that a
//! browser in the same room decodes real video and audio. The committed
//! clips in `loadtest/media/` are built in ([`VideoClip::builtin`],
//! [`AudioClip::builtin`]); `scripts/media-fixtures.sh` made them and checks
//! that a fresh encode still matches.
//!
//! A loop restarts at the clip's first frame, which is a keyframe, and its
//! RTP timestamps keep counting up across restarts, as an encoder's would.

use std::io::Cursor;
use std::time::Duration;

/// The VP8 clip committed in `loadtest/media/cam.ivf`.
const BUILTIN_VIDEO: &[u8] = include_bytes!("../media/cam.ivf");
/// The Opus clip committed in `loadtest/media/mic.opus`.
const BUILTIN_AUDIO: &[u8] = include_bytes!("../media/mic.opus");

/// Bytes of the IVF file header and of each frame's header.
const IVF_HEADER_LEN: usize = 32;
const IVF_FRAME_HEADER_LEN: usize = 12;

/// The RTP clock rate of VP8 (RFC 7741).
pub const VIDEO_CLOCK: u32 = 90_000;
/// The RTP clock rate of Opus (RFC 7587), whatever the sampling rate.
pub const AUDIO_CLOCK: u32 = 48_000;

/// Why a clip could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// The container could not be read.
    #[error("{0}")]
    Container(String),
    /// The IVF file does not hold VP8.
    #[error("the IVF file holds {0:?}, not VP8")]
    NotVp8(String),
    /// The frames are not one per timebase unit, so a frame rate cannot be told.
    #[error("frame {index} has timestamp {pts}; a constant frame rate is needed")]
    VariableRate {
        /// Which frame.
        index: usize,
        /// Its timestamp.
        pts: u64,
    },
    /// The clip does not start with a keyframe, so a loop could not restart.
    #[error("the clip does not start with a keyframe")]
    NoLeadingKeyframe,
    /// A frame is not a VP8 frame (too short for its frame tag).
    #[error("frame {0} is not a VP8 frame")]
    BadFrame(usize),
    /// The Ogg stream is not Opus.
    #[error("the Ogg stream is not Opus")]
    NotOpus,
    /// An Opus packet whose table-of-contents byte is malformed.
    #[error("Opus packet {0} is malformed")]
    BadPacket(usize),
    /// The clip has no frames.
    #[error("the clip is empty")]
    Empty,
}

/// One VP8 frame of a clip.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    /// The encoded frame, starting with its VP8 frame tag.
    pub data: Vec<u8>,
    /// Whether the frame tag says keyframe (its P bit is 0).
    pub keyframe: bool,
}

/// A VP8 clip at a constant frame rate.
#[derive(Debug, Clone)]
pub struct VideoClip {
    /// The frames in order; the first is a keyframe.
    pub frames: Vec<VideoFrame>,
    /// Width and height from the IVF header.
    pub size: (u16, u16),
    /// RTP ticks (90 kHz) from one frame to the next.
    pub frame_ticks: u32,
}

/// Whether a VP8 frame is a keyframe: the P bit of its frame tag (RFC 6386
/// §9.1) is 0. `None` if it is too short to be a frame.
pub fn vp8_keyframe(frame: &[u8]) -> Option<bool> {
    let tag = frame.get(..3)?;
    let keyframe = tag[0] & 0x01 == 0;
    // A keyframe carries the start code 9d 01 2a after its 3-byte tag.
    if keyframe && frame.get(3..6) != Some(&[0x9d, 0x01, 0x2a][..]) {
        return None;
    }
    Some(keyframe)
}

impl VideoClip {
    /// The committed 3 s, 320x240, 30 fps clip (keyframes at frames 0, 30, 60).
    pub fn builtin() -> Self {
        // Checked by this module's tests; the bytes are part of the binary.
        Self::from_ivf(BUILTIN_VIDEO).unwrap_or_else(|e| panic!("built-in video clip: {e}"))
    }

    /// Reads a VP8 IVF file.
    pub fn from_ivf(bytes: &[u8]) -> Result<Self, ClipError> {
        use rtc_media::io::ivf_reader::IVFReader;
        let (mut reader, header) =
            IVFReader::new(Cursor::new(bytes)).map_err(|e| ClipError::Container(e.to_string()))?;
        if &header.four_cc != b"VP80" {
            return Err(ClipError::NotVp8(
                String::from_utf8_lossy(&header.four_cc).into_owned(),
            ));
        }
        let mut frames = Vec::new();
        // The header's frame count is often left 0: read to the end, where
        // not even a frame header (12 bytes) is left.
        let mut offset = IVF_HEADER_LEN;
        while offset + IVF_FRAME_HEADER_LEN <= bytes.len() {
            // The reader allocates the size a frame header names before
            // reading it: refuse sizes past the end of the file first.
            let size = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap_or_default());
            if offset + IVF_FRAME_HEADER_LEN + size as usize > bytes.len() {
                return Err(ClipError::Container(format!(
                    "frame {} is cut short",
                    frames.len()
                )));
            }
            let (data, frame) = reader
                .parse_next_frame()
                .map_err(|e| ClipError::Container(e.to_string()))?;
            offset += IVF_FRAME_HEADER_LEN + data.len();
            let index = frames.len();
            if frame.timestamp != index as u64 {
                return Err(ClipError::VariableRate {
                    index,
                    pts: frame.timestamp,
                });
            }
            let keyframe = vp8_keyframe(&data).ok_or(ClipError::BadFrame(index))?;
            frames.push(VideoFrame {
                data: data.to_vec(),
                keyframe,
            });
        }
        match frames.first() {
            None => return Err(ClipError::Empty),
            Some(f) if !f.keyframe => return Err(ClipError::NoLeadingKeyframe),
            Some(_) => {}
        }
        // IVF: one timestamp unit is numerator/denominator seconds.
        let (num, den) = (
            u64::from(header.timebase_numerator),
            u64::from(header.timebase_denominator),
        );
        let frame_ticks = (u64::from(VIDEO_CLOCK) * num)
            .checked_div(den)
            .filter(|t| (1..=u64::from(VIDEO_CLOCK)).contains(t))
            .ok_or_else(|| ClipError::Container(format!("bad timebase {num}/{den}")))?;
        Ok(Self {
            frames,
            size: (header.width, header.height),
            frame_ticks: frame_ticks as u32,
        })
    }

    /// The indices of its keyframes.
    pub fn keyframes(&self) -> Vec<usize> {
        (0..self.frames.len())
            .filter(|&i| self.frames[i].keyframe)
            .collect()
    }

    /// Time from one frame to the next.
    pub fn frame_interval(&self) -> Duration {
        Duration::from_micros(u64::from(self.frame_ticks) * 1_000_000 / u64::from(VIDEO_CLOCK))
    }
}

/// One Opus packet of a clip.
#[derive(Debug, Clone)]
pub struct AudioPacket {
    /// The packet, as RFC 7587 puts it in an RTP payload.
    pub data: Vec<u8>,
    /// Its duration in 48 kHz samples (the RTP timestamp step after it).
    pub samples: u32,
}

/// An Opus clip.
#[derive(Debug, Clone)]
pub struct AudioClip {
    /// The audio packets in order (the Ogg Opus header packets left out).
    pub packets: Vec<AudioPacket>,
}

/// The duration of an Opus packet in 48 kHz samples, from its TOC byte
/// (RFC 6716 §3.1). `None` if malformed.
pub fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame size in units of 2.5 ms (120 samples at 48 kHz).
    let units: u32 = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config % 4)],
        12..=15 => [4, 8][usize::from(config % 2)],
        _ => [1, 2, 4, 8][usize::from(config % 4)],
    };
    let frames: u32 = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    let samples = units * 120 * frames;
    // At most 120 ms per packet (RFC 6716 §3.2.5).
    (1..=5760).contains(&samples).then_some(samples)
}

impl AudioClip {
    /// The committed 3 s, 48 kHz mono clip of 20 ms packets.
    pub fn builtin() -> Self {
        Self::from_ogg_opus(BUILTIN_AUDIO).unwrap_or_else(|e| panic!("built-in audio clip: {e}"))
    }

    /// Reads the first logical stream of an Ogg Opus file (RFC 7845).
    pub fn from_ogg_opus(bytes: &[u8]) -> Result<Self, ClipError> {
        let mut reader = ogg::PacketReader::new(Cursor::new(bytes));
        let mut serial = None;
        let mut headers = 0;
        let mut packets = Vec::new();
        while let Some(packet) = reader
            .read_packet()
            .map_err(|e| ClipError::Container(e.to_string()))?
        {
            if *serial.get_or_insert(packet.stream_serial()) != packet.stream_serial() {
                continue;
            }
            // The identification header, then the comment header.
            if headers == 0 {
                if !packet.data.starts_with(b"OpusHead") {
                    return Err(ClipError::NotOpus);
                }
                headers += 1;
                continue;
            }
            if headers == 1 {
                if !packet.data.starts_with(b"OpusTags") {
                    return Err(ClipError::NotOpus);
                }
                headers += 1;
                continue;
            }
            let samples =
                opus_packet_samples(&packet.data).ok_or(ClipError::BadPacket(packets.len()))?;
            packets.push(AudioPacket {
                data: packet.data,
                samples,
            });
        }
        if packets.is_empty() {
            return Err(ClipError::Empty);
        }
        Ok(Self { packets })
    }
}

/// A video clip played in a loop: each call to [`next_frame`](Self::next_frame) gives
/// the next frame and its RTP timestamp.
#[derive(Debug)]
pub struct VideoLoop {
    clip: VideoClip,
    next: usize,
    timestamp: u32,
    /// How many times the loop went back to the start on request.
    pub restarts: u64,
}

impl VideoLoop {
    /// Starts at the clip's first frame with RTP timestamp `first_timestamp`.
    pub fn new(clip: VideoClip, first_timestamp: u32) -> Self {
        Self {
            clip,
            next: 0,
            timestamp: first_timestamp,
            restarts: 0,
        }
    }

    /// The next frame to send, its RTP timestamp and whether it is a
    /// keyframe. Timestamps advance by one frame each call, also across
    /// the wrap.
    pub fn next_frame(&mut self) -> (&[u8], u32, bool) {
        let frame = &self.clip.frames[self.next];
        let timestamp = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(self.clip.frame_ticks);
        self.next = (self.next + 1) % self.clip.frames.len();
        (&frame.data, timestamp, frame.keyframe)
    }

    /// Makes the next frame a keyframe by going back to the clip's start
    /// (a decoder can start there), unless it already is one.
    pub fn restart(&mut self) {
        if !self.clip.frames[self.next].keyframe {
            self.next = 0;
            self.restarts += 1;
        }
    }

    /// Time from one frame to the next.
    pub fn frame_interval(&self) -> Duration {
        self.clip.frame_interval()
    }
}

/// An audio clip played in a loop.
#[derive(Debug)]
pub struct AudioLoop {
    clip: AudioClip,
    next: usize,
    timestamp: u32,
}

impl AudioLoop {
    /// Starts at the clip's first packet with RTP timestamp `first_timestamp`.
    pub fn new(clip: AudioClip, first_timestamp: u32) -> Self {
        Self {
            clip,
            next: 0,
            timestamp: first_timestamp,
        }
    }

    /// The next packet, its RTP timestamp and its duration.
    pub fn next_packet(&mut self) -> (&[u8], u32, Duration) {
        let packet = &self.clip.packets[self.next];
        let timestamp = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(packet.samples);
        self.next = (self.next + 1) % self.clip.packets.len();
        let duration =
            Duration::from_micros(u64::from(packet.samples) * 1_000_000 / u64::from(AUDIO_CLOCK));
        (&packet.data, timestamp, duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_video_is_90_frames_of_vp8_with_a_keyframe_every_30() {
        let clip = VideoClip::builtin();
        assert_eq!(clip.frames.len(), 90);
        assert_eq!(clip.keyframes(), vec![0, 30, 60]);
        assert_eq!(clip.size, (320, 240));
        assert_eq!(clip.frame_ticks, 3000);
    }

    #[test]
    fn builtin_audio_is_20ms_opus_packets() {
        let clip = AudioClip::builtin();
        // 3 s plus the encoder's 312-sample pre-skip: 151 packets.
        assert_eq!(clip.packets.len(), 151);
        assert!(clip.packets.iter().all(|p| p.samples == 960));
    }

    #[test]
    fn video_loop_wraps_to_a_keyframe_and_timestamps_keep_rising() {
        let mut video = VideoLoop::new(VideoClip::builtin(), u32::MAX - 3000 * 100);
        let mut last = None;
        for i in 0..200 {
            let (_, ts, key) = video.next_frame();
            assert_eq!(key, i % 90 % 30 == 0, "frame {i}");
            if let Some(prev) = last {
                assert_eq!(ts, u32::wrapping_add(prev, 3000));
            }
            last = Some(ts);
        }
    }

    #[test]
    fn restart_goes_back_to_a_keyframe_only_when_needed() {
        let mut video = VideoLoop::new(VideoClip::builtin(), 0);
        video.restart();
        assert_eq!(video.restarts, 0, "the next frame already is a keyframe");
        for _ in 0..5 {
            video.next_frame();
        }
        video.restart();
        let (_, ts, key) = video.next_frame();
        assert!(key);
        assert_eq!(ts, 5 * 3000, "timestamps go on");
        assert_eq!(video.restarts, 1);
    }

    #[test]
    fn audio_loop_timestamps_step_by_packet_duration() {
        let mut audio = AudioLoop::new(AudioClip::builtin(), 7);
        for i in 0..400u32 {
            let (data, ts, d) = audio.next_packet();
            assert!(!data.is_empty());
            assert_eq!(ts, 7 + i * 960);
            assert_eq!(d, Duration::from_millis(20));
        }
    }

    #[test]
    fn malformed_clips_are_errors() {
        assert!(VideoClip::from_ivf(b"DKIF").is_err());
        assert!(VideoClip::from_ivf(&BUILTIN_AUDIO[..100]).is_err());
        assert!(AudioClip::from_ogg_opus(&BUILTIN_VIDEO[..100]).is_err());
        assert!(AudioClip::from_ogg_opus(b"").is_err());
        // A delta frame first: no loop could restart there.
        let mut ivf = BUILTIN_VIDEO[..32].to_vec();
        let second = VideoClip::builtin().frames[1].data.clone();
        ivf.extend_from_slice(&(second.len() as u32).to_le_bytes());
        ivf.extend_from_slice(&0u64.to_le_bytes());
        ivf.extend_from_slice(&second);
        assert!(matches!(
            VideoClip::from_ivf(&ivf),
            Err(ClipError::NoLeadingKeyframe)
        ));
    }

    #[test]
    fn opus_toc_durations() {
        assert_eq!(opus_packet_samples(&[0xfc]), Some(960)); // CELT FB 20 ms, 1 frame
        assert_eq!(opus_packet_samples(&[0x08 | 0x01]), Some(1920)); // SILK 20 ms, 2 frames
        assert_eq!(opus_packet_samples(&[0x03]), None); // code 3 without count byte
        assert_eq!(opus_packet_samples(&[]), None);
    }
}
