//! The clear header every synthetic frame starts with, inside the
//! encryption: receivers read it after decryption, which gives end-to-end
//! latency, loss, reordering and duplicates without any codec.
//!
//! Layout (big-endian), [`HEADER_LEN`] bytes, then filler to the frame size:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | [`MAGIC`] |
//! | 4..8 | sender index (u32) |
//! | 8 | low 4 bits: track kind, 0 audio, 1 video; high 4 bits: the simulcast encoding the frame was sent on, 0 the lowest |
//! | 9..17 | frame sequence number per (sender, kind), from 0 (u64) |
//! | 17..25 | send time, µs since the process epoch ([`crate::clock`]) (u64) |
//!
//! A video frame has a synthetic VP8 header in front ([`testkit::vp8`]):
//! the media format reads a VP8 frame's first bytes (its keyframe bit), and
//! leaves them in the clear.

/// Marks a frame as made by this tool.
pub const MAGIC: [u8; 4] = *b"LTF1";
/// The highest layer a header can carry.
pub const MAX_LAYER: u8 = 15;
/// Bytes of the header; the smallest frame the tool sends.
pub const HEADER_LEN: usize = 25;

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaKind {
    /// An Opus-like audio frame.
    Audio,
    /// A VP8-like video frame.
    Video,
}

impl MediaKind {
    fn to_byte(self) -> u8 {
        match self {
            Self::Audio => 0,
            Self::Video => 1,
        }
    }

    fn from_byte(b: u8) -> Result<Self, FrameError> {
        match b {
            0 => Ok(Self::Audio),
            1 => Ok(Self::Video),
            other => Err(FrameError::UnknownKind(other)),
        }
    }
}

/// Why a decrypted frame is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Shorter than [`HEADER_LEN`].
    #[error("frame of {0} bytes is shorter than the header")]
    TooShort(usize),
    /// The first bytes are not [`MAGIC`].
    #[error("frame does not start with the load-test magic")]
    BadMagic,
    /// The kind byte is neither audio nor video.
    #[error("unknown track kind {0}")]
    UnknownKind(u8),
}

/// What a frame says about itself.
///
/// ```
/// use loadtest::frame::{FrameBuf, FrameHeader, MediaKind};
/// let header = FrameHeader { sender: 7, kind: MediaKind::Audio, layer: 0, seq: 42, send_us: 1_000 };
/// let mut buf = FrameBuf::new(80);
/// let frame = buf.frame(&header, 80);
/// assert_eq!(frame.len(), 80);
/// assert_eq!(FrameHeader::parse(frame), Ok(header));
/// assert!(FrameHeader::parse(b"garbage").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The sending participant's index in the run.
    pub sender: u32,
    /// The track it came from.
    pub kind: MediaKind,
    /// The simulcast encoding it was sent on (0 the lowest, and the only
    /// one without simulcast); at most [`MAX_LAYER`]. All encodings of one
    /// captured frame share its sequence number.
    pub layer: u8,
    /// Its sequence number on that track; consecutive for sent frames.
    pub seq: u64,
    /// When it was handed to the SDK, µs since the process epoch.
    pub send_us: u64,
}

impl FrameHeader {
    /// Writes the header at the start of `out`. Returns `false` (and
    /// writes nothing) if `out` is shorter than [`HEADER_LEN`].
    pub fn write(&self, out: &mut [u8]) -> bool {
        let Some(h) = out.get_mut(..HEADER_LEN) else {
            return false;
        };
        h[0..4].copy_from_slice(&MAGIC);
        h[4..8].copy_from_slice(&self.sender.to_be_bytes());
        h[8] = self.kind.to_byte() | (self.layer.min(MAX_LAYER) << 4);
        h[9..17].copy_from_slice(&self.seq.to_be_bytes());
        h[17..25].copy_from_slice(&self.send_us.to_be_bytes());
        true
    }

    /// Reads the header of a decrypted frame; anything else is an error,
    /// never a panic.
    pub fn parse(data: &[u8]) -> Result<Self, FrameError> {
        let data = testkit::vp8::strip(data);
        let h = data
            .get(..HEADER_LEN)
            .ok_or(FrameError::TooShort(data.len()))?;
        if h[0..4] != MAGIC {
            return Err(FrameError::BadMagic);
        }
        let kind = MediaKind::from_byte(h[8] & 0x0f)?;
        Ok(Self {
            sender: u32::from_be_bytes(array(&h[4..8])),
            kind,
            layer: h[8] >> 4,
            seq: u64::from_be_bytes(array(&h[9..17])),
            send_us: u64::from_be_bytes(array(&h[17..25])),
        })
    }
}

fn array<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// A reusable frame buffer: header, then a filler pattern, sized per frame.
#[derive(Debug, Clone)]
pub struct FrameBuf {
    buf: Vec<u8>,
}

impl FrameBuf {
    /// A buffer for frames of up to `max_len` bytes (at least the headers).
    pub fn new(max_len: usize) -> Self {
        let len = max_len.max(testkit::vp8::KEYFRAME_HEADER.len() + HEADER_LEN);
        // Varied filler, so nothing downstream can shortcut runs of zeros.
        let buf = (0..len).map(|i| (i % 251) as u8).collect();
        Self { buf }
    }

    /// The frame for `header`, `len` bytes long (clamped to the header
    /// length and the buffer's size).
    pub fn frame(&mut self, header: &FrameHeader, len: usize) -> &[u8] {
        let len = len.clamp(HEADER_LEN, self.buf.len());
        header.write(&mut self.buf);
        &self.buf[..len]
    }

    /// A video frame for `header`: a VP8 header for a keyframe or a delta
    /// frame, then as [`frame`](Self::frame), `len` bytes in all (clamped
    /// to both headers and the buffer's size).
    pub fn video_frame(&mut self, header: &FrameHeader, len: usize, keyframe: bool) -> &[u8] {
        let vp8 = testkit::vp8::header(keyframe);
        let len = len.clamp(vp8.len() + HEADER_LEN, self.buf.len());
        self.buf[..vp8.len()].copy_from_slice(vp8);
        header.write(&mut self.buf[vp8.len()..]);
        &self.buf[..len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FrameHeader {
        FrameHeader {
            sender: 0x0102_0304,
            kind: MediaKind::Video,
            layer: 2,
            seq: 0x1122_3344_5566_7788,
            send_us: 987_654_321,
        }
    }

    #[test]
    fn round_trips() {
        let mut fb = FrameBuf::new(100);
        let h = sample();
        let f = fb.frame(&h, 60);
        assert_eq!(f.len(), 60);
        assert_eq!(FrameHeader::parse(f), Ok(h));
        let audio = FrameHeader {
            kind: MediaKind::Audio,
            layer: 0,
            ..h
        };
        assert_eq!(FrameHeader::parse(fb.frame(&audio, 0)), Ok(audio));
        assert_eq!(fb.frame(&audio, 0).len(), HEADER_LEN);
        assert_eq!(fb.frame(&audio, 1000).len(), 100);
        for keyframe in [true, false] {
            let v = fb.video_frame(&h, 60, keyframe);
            assert_eq!((v.len(), v[0] & 1 == 0), (60, keyframe));
            assert_eq!(FrameHeader::parse(v), Ok(h));
        }
    }

    #[test]
    fn short_and_garbage_data_are_errors() {
        let mut out = [0u8; HEADER_LEN];
        assert!(sample().write(&mut out));
        for n in 0..HEADER_LEN {
            assert_eq!(FrameHeader::parse(&out[..n]), Err(FrameError::TooShort(n)));
        }
        let mut bad = out;
        bad[0] = b'X';
        assert_eq!(FrameHeader::parse(&bad), Err(FrameError::BadMagic));
        let mut kind = out;
        kind[8] = 7;
        assert_eq!(FrameHeader::parse(&kind), Err(FrameError::UnknownKind(7)));
        assert!(!sample().write(&mut [0u8; HEADER_LEN - 1]));
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        // A cheap deterministic generator; every prefix of every buffer.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..2000 {
            let len = round % 64;
            let mut data = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                data.push(x as u8);
            }
            if round % 3 == 0 && len >= 4 {
                data[..4].copy_from_slice(&MAGIC);
            }
            let _ = FrameHeader::parse(&data);
        }
    }
}
