//! Synthetic VP8 frames for tests and the load tester, which send frames
//! no decoder will see but which must still look like VP8 to the media
//! format: the clear prefix is the VP8 frame tag, whose P bit marks a
//! keyframe (RFC 6386 §9.1).
//!
//! ```
//! let frame = testkit::vp8::frame(true, b"payload");
//! assert_eq!(frame[0] & 1, 0, "P bit 0: a keyframe");
//! assert_eq!(testkit::vp8::strip(&frame), b"payload");
//! assert_eq!(testkit::vp8::strip(b"not vp8"), b"not vp8");
//! ```

/// A keyframe's first 10 bytes: frame tag (P = 0, shown), start code,
/// 640x360.
pub const KEYFRAME_HEADER: [u8; 10] = [0x50, 0x2d, 0x01, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01];
/// A delta frame's frame tag (P = 1, shown).
pub const DELTA_HEADER: [u8; 3] = [0x31, 0x07, 0x00];

/// The VP8 header for a keyframe or a delta frame.
pub fn header(keyframe: bool) -> &'static [u8] {
    if keyframe {
        &KEYFRAME_HEADER
    } else {
        &DELTA_HEADER
    }
}

/// `body` behind a VP8 header.
pub fn frame(keyframe: bool, body: &[u8]) -> Vec<u8> {
    [header(keyframe), body].concat()
}

/// `data` without the header [`frame`] put in front, or unchanged if it
/// has none.
pub fn strip(data: &[u8]) -> &[u8] {
    data.strip_prefix(&KEYFRAME_HEADER[..])
        .or_else(|| data.strip_prefix(&DELTA_HEADER[..]))
        .unwrap_or(data)
}
