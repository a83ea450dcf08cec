//! The general writer: a frame that follows one of a structure's templates,
//! with the structure attached or not and the active decode targets
//! signalled or not.

use crate::DdError;
use crate::bits::BitWriter;
use crate::structure::{self, MAX_DECODE_TARGETS, Structure};
use crate::write::MANDATORY_LEN;

/// What the sender knows about one packet of a frame that follows a
/// template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpec {
    /// The packet carries the first byte of the frame.
    pub start_of_frame: bool,
    /// The packet carries the last byte of the frame.
    pub end_of_frame: bool,
    /// Frame counter, the same on every packet of a frame, +1 per frame in
    /// decode order (wrapping); with spatial layers every layer's frame has
    /// its own number.
    pub frame_number: u16,
    /// The id of the template the frame follows
    /// ([`Structure::template_id`] of its index).
    pub template_id: u8,
}

/// Writes one packet's descriptor for a frame that follows a template of
/// `structure` exactly (its DTIs, frame diffs and chain diffs; no custom
/// fields). Returns the length written.
///
/// - `attach`: attach `structure` (on the first packet of a keyframe, and
///   only there; the spec requires it on the first packet of every coded
///   video sequence);
/// - `active_decode_targets`: signal this bitmask (bit i for decode target
///   i); `None` leaves the receiver's as it is, or all active when
///   attaching.
///
/// With neither, the descriptor is the 3 mandatory bytes. `structure` is
/// needed even then, to check the template id and size the bitmask; when
/// not attaching it is not otherwise checked, so pass the one attached to
/// the keyframe.
///
/// # Errors
/// [`DdError::UnknownTemplate`] for a template id the structure lacks,
/// [`DdError::InvalidStructure`] (or `TooManyLayers`, `TooManyFdiffs`)
/// when attaching a structure that cannot be coded,
/// [`DdError::InvalidMask`] for a bitmask naming decode targets the
/// structure lacks, [`DdError::BufferTooSmall`] when `out` is shorter than
/// the descriptor (then `out` is unchanged).
pub fn write_frame(
    frame: &FrameSpec,
    structure: &Structure,
    attach: bool,
    active_decode_targets: Option<u32>,
    out: &mut [u8],
) -> Result<usize, DdError> {
    if attach {
        structure.validate()?;
    }
    if structure.template_index(frame.template_id).is_none() {
        return Err(DdError::UnknownTemplate(frame.template_id));
    }
    if let Some(mask) = active_decode_targets {
        let dt_cnt = usize::from(structure.decode_targets);
        if dt_cnt == 0 || dt_cnt > MAX_DECODE_TARGETS {
            return Err(DdError::InvalidStructure(
                "decode target count outside 1..=32",
            ));
        }
        if mask & !structure.all_decode_targets() != 0 {
            return Err(DdError::InvalidMask(mask));
        }
    }
    // First pass into nothing to learn the length, so a short buffer is
    // refused before anything is written.
    let len = encode(frame, structure, attach, active_decode_targets, &mut []);
    let Some(out) = out.get_mut(..len) else {
        return Err(DdError::BufferTooSmall(len));
    };
    let written = encode(frame, structure, attach, active_decode_targets, out);
    debug_assert_eq!(written, len);
    Ok(len)
}

/// The descriptor into `out` (bits past its end are counted, not written);
/// returns its length in bytes.
fn encode(
    frame: &FrameSpec,
    structure: &Structure,
    attach: bool,
    mask: Option<u32>,
    out: &mut [u8],
) -> usize {
    let mut w = BitWriter::new(out);
    // mandatory_descriptor_fields()
    w.put(u32::from(frame.start_of_frame), 1);
    w.put(u32::from(frame.end_of_frame), 1);
    w.put(u32::from(frame.template_id), 6);
    w.put(u32::from(frame.frame_number), 16);
    if !attach && mask.is_none() {
        debug_assert_eq!(w.len(), MANDATORY_LEN);
        return w.len();
    }
    // extended_descriptor_fields(): the frame follows its template, so
    // the three custom flags are 0.
    w.put(u32::from(attach), 1);
    w.put(u32::from(mask.is_some()), 1);
    w.put(0b000, 3);
    if attach {
        structure::write(structure, &mut w);
    }
    if let Some(mask) = mask {
        w.put(mask, u32::from(structure.decode_targets));
    }
    // frame_dependency_definition() has nothing to code; zero_padding
    // fills the last byte (BitWriter zeroed it).
    w.len()
}
