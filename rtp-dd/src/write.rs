//! The writer for a single-layer stream: one spatial and one temporal layer,
//! one decode target, no chains.
//!
//! Its template dependency structure has two templates, both on layer S0T0
//! with a Switch indication for the one decode target, as libwebrtc's
//! no-layering controller declares them:
//!
//! | template id | frame | frame diffs |
//! |---|---|---|
//! | 0 | keyframe | none |
//! | 1 | delta frame | 1 (the previous frame) |
//!
//! The structure rides on the first packet of every keyframe, so a receiver
//! (or an SFU) can start at any keyframe. Every other packet carries only the
//! 3 mandatory bytes and names its template by id.

use crate::bits::BitWriter;

/// Template id of a keyframe (no references).
pub(crate) const KEY_TEMPLATE: u8 = 0;
/// Template id of a delta frame (refers to the previous frame).
pub(crate) const DELTA_TEMPLATE: u8 = 1;

/// Bytes of the mandatory fields.
pub(crate) const MANDATORY_LEN: usize = 3;

/// DTI value "Switch": the frame is present for the decode target and decoding
/// can start from it (spec Table A.1).
const DTI_SWITCH: u32 = 2;
/// next_layer_idc values (spec Table A.2).
const NEXT_SAME_LAYER: u32 = 0;
const NO_MORE_TEMPLATES: u32 = 3;

/// The longest descriptor [`write()`] produces: 3 mandatory bytes, then 5 flag
/// bits and 28 bits of structure, rounded up to whole bytes.
pub const MAX_LEN: usize = 8;

/// What the sender knows about one packet of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMark {
    /// The packet carries the first byte of the frame.
    pub start_of_frame: bool,
    /// The packet carries the last byte of the frame.
    pub end_of_frame: bool,
    /// Frame counter, the same on every packet of a frame, +1 per frame
    /// (wrapping).
    pub frame_number: u16,
    /// The frame is a keyframe (depends on no earlier frame).
    pub keyframe: bool,
}

/// Writes a DD for a single-layer stream (one spatial and one temporal
/// layer, one decode target, no chains): on the first packet of a keyframe it
/// attaches the template dependency structure (two templates: keyframe
/// template with no frame diffs, delta template with fdiff 1); other packets
/// carry the 3 mandatory bytes (template id chosen accordingly). Returns the
/// length written; `out` must be at least [`MAX_LEN`] bytes, and with a
/// shorter `out` nothing is written and 0 is returned.
///
/// ```
/// use rtp_dd::{FrameMark, MAX_LEN, parse, write};
/// let mut buf = [0u8; MAX_LEN];
/// let key = FrameMark { start_of_frame: true, end_of_frame: false, frame_number: 7, keyframe: true };
/// let n = write(&key, &mut buf);
/// assert_eq!(n, MAX_LEN);
/// assert!(parse(&buf[..n]).unwrap().is_keyframe_start());
///
/// let delta = FrameMark { keyframe: false, ..key };
/// let n = write(&delta, &mut buf);
/// assert_eq!(n, 3);
/// assert!(!parse(&buf[..n]).unwrap().is_keyframe_start());
/// ```
pub fn write(mark: &FrameMark, out: &mut [u8]) -> usize {
    let Some(out) = out.get_mut(..MAX_LEN) else {
        return 0;
    };
    let attach = mark.keyframe && mark.start_of_frame;
    let template = if mark.keyframe {
        KEY_TEMPLATE
    } else {
        DELTA_TEMPLATE
    };
    let mut w = BitWriter::new(out);
    // mandatory_descriptor_fields()
    w.put(u32::from(mark.start_of_frame), 1);
    w.put(u32::from(mark.end_of_frame), 1);
    w.put(u32::from(template), 6);
    w.put(u32::from(mark.frame_number), 16);
    if attach {
        // extended_descriptor_fields(): only the structure flag is set; the
        // frame matches its template exactly, so nothing custom follows.
        w.put(0b10000, 5);
        write_structure(&mut w);
    }
    w.len()
}

/// template_dependency_structure() for the two single-layer templates.
fn write_structure(w: &mut BitWriter<'_>) {
    // template_id_offset: template index i has id i.
    w.put(0, 6);
    // dt_cnt_minus_one: one decode target.
    w.put(0, 5);
    // template_layers(): template 1 is on the same layer as template 0.
    w.put(NEXT_SAME_LAYER, 2);
    w.put(NO_MORE_TEMPLATES, 2);
    // template_dtis(): both templates Switch for decode target 0.
    w.put(DTI_SWITCH, 2);
    w.put(DTI_SWITCH, 2);
    // template_fdiffs(): the keyframe template has none; the delta template
    // has fdiff_minus_one = 0, then the end flag.
    w.put(0, 1);
    w.put(1, 1);
    w.put(0, 4);
    w.put(0, 1);
    // template_chains(): chain_cnt = ns(DtCnt + 1) = 0, no chains.
    w.put_ns(2, 0);
    // resolutions_present_flag
    w.put(0, 1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    /// A single-layer keyframe's first packet, derived by hand from the
    /// syntax in AV1 RTP spec §A.8.2 (no public capture of this exact
    /// structure was found; the parser is also checked against captures of
    /// L1T2, L2T2 and L3T3 streams in `parse.rs`):
    ///
    /// ```text
    /// byte 0     1 1 000000          start_of_frame, end_of_frame, template id 0
    /// bytes 1-2  0x01 0x2c           frame_number 300
    /// byte 3     1 0 0 0 0 | 0 0 0   structure present, no active-DT bitmask,
    ///                                no custom dtis/fdiffs/chains | offset...
    /// byte 4     0 0 0 | 0 0 0 0 0   ...template_id_offset 0 | dt_cnt_minus_one 0
    /// byte 5     00 11 | 10 10       next_layer_idc: same layer, no more
    ///                                | template_dti: S, S
    /// byte 6     0 | 1 0000 0 | 0    fdiffs: key none | delta fdiff 1, end
    ///                                | chain_cnt ns(2) = 0
    /// byte 7     0 | 0000000         resolutions_present_flag 0 | zero padding
    /// ```
    const SINGLE_LAYER_KEYFRAME: [u8; 8] = [0xC0, 0x01, 0x2C, 0x80, 0x00, 0x3A, 0x40, 0x00];

    fn mark(sof: bool, eof: bool, n: u16, key: bool) -> FrameMark {
        FrameMark {
            start_of_frame: sof,
            end_of_frame: eof,
            frame_number: n,
            keyframe: key,
        }
    }

    #[test]
    fn keyframe_start_matches_the_hand_derived_bytes() {
        let mut buf = [0xFFu8; MAX_LEN];
        let n = write(&mark(true, true, 300, true), &mut buf);
        assert_eq!(&buf[..n], &SINGLE_LAYER_KEYFRAME);
    }

    #[test]
    fn other_packets_carry_three_bytes() {
        let mut buf = [0u8; MAX_LEN];
        assert_eq!(write(&mark(false, true, 0xBEEF, true), &mut buf), 3);
        assert_eq!(&buf[..3], &[0x40 | KEY_TEMPLATE, 0xBE, 0xEF]);
        assert_eq!(write(&mark(true, false, 2, false), &mut buf), 3);
        assert_eq!(&buf[..3], &[0x80 | DELTA_TEMPLATE, 0x00, 0x02]);
    }

    #[test]
    fn round_trip() {
        let mut buf = [0u8; MAX_LEN];
        for n in [0u16, 1, 255, 256, 0x7FFF, u16::MAX] {
            for bits in 0..8u8 {
                let m = mark(bits & 1 != 0, bits & 2 != 0, n, bits & 4 != 0);
                let len = write(&m, &mut buf);
                let d = parse(&buf[..len]).expect("own output parses");
                assert_eq!(d.start_of_frame, m.start_of_frame);
                assert_eq!(d.end_of_frame, m.end_of_frame);
                assert_eq!(d.frame_number, m.frame_number);
                let want = if m.keyframe {
                    KEY_TEMPLATE
                } else {
                    DELTA_TEMPLATE
                };
                assert_eq!(d.template_id, want);
                assert_eq!(d.structure_attached, m.keyframe && m.start_of_frame);
                assert_eq!(d.is_keyframe_start(), m.keyframe && m.start_of_frame);
            }
        }
    }

    #[test]
    fn short_buffer_writes_nothing() {
        let mut buf = [0xAAu8; MAX_LEN - 1];
        assert_eq!(write(&mark(true, true, 1, true), &mut buf), 0);
        assert_eq!(buf, [0xAA; MAX_LEN - 1]);
    }
}
