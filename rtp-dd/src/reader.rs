//! The stateful reader: everything a descriptor says about its frame,
//! interpreted against the latest template dependency structure of the
//! stream.

use crate::DdError;
use crate::bits::BitReader;
use crate::structure::{self, Dti, MAX_CHAINS, MAX_DECODE_TARGETS, MAX_FDIFFS, Structure};
use crate::write::MANDATORY_LEN;

/// One packet's descriptor, fully interpreted. Fixed-size arrays with a
/// length, so reading one allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// The packet carries the first byte of a frame.
    pub start_of_frame: bool,
    /// The packet carries the last byte of a frame.
    pub end_of_frame: bool,
    /// `frame_number`.
    pub frame_number: u16,
    /// `frame_dependency_template_id`.
    pub template_id: u8,
    /// The frame's spatial layer id (from its template).
    pub spatial_id: u8,
    /// The frame's temporal layer id (from its template).
    pub temporal_id: u8,
    /// Decode targets available for decoding, bit i for decode target i, as
    /// known after this packet: the latest bitmask received, or all decode
    /// targets since the latest structure if none came after it.
    pub active_decode_targets: u32,
    /// This packet carried a template dependency structure (the first
    /// packet of a coded video sequence, that is of a keyframe).
    pub structure_attached: bool,
    dtis: [Dti; MAX_DECODE_TARGETS],
    dt_cnt: u8,
    fdiffs: [u16; MAX_FDIFFS],
    fdiff_cnt: u8,
    chain_fdiffs: [u8; MAX_CHAINS],
    chain_cnt: u8,
}

impl FrameInfo {
    /// Per decode target, how the frame relates to it (the packet's custom
    /// DTIs, or its template's).
    pub fn dtis(&self) -> &[Dti] {
        &self.dtis[..usize::from(self.dt_cnt)]
    }

    /// The DTI for decode target `dt` (`NotPresent` past the last one).
    pub fn dti(&self, dt: usize) -> Dti {
        self.dtis().get(dt).copied().unwrap_or(Dti::NotPresent)
    }

    /// Frame diffs of the frames this one refers to (the packet's custom
    /// ones, or its template's).
    pub fn fdiffs(&self) -> &[u16] {
        &self.fdiffs[..usize::from(self.fdiff_cnt)]
    }

    /// The frame numbers of the frames this one refers to (`frame_number`
    /// minus each frame diff, wrapping).
    pub fn referred_frames(&self) -> impl Iterator<Item = u16> + '_ {
        self.fdiffs()
            .iter()
            .map(|&d| self.frame_number.wrapping_sub(d))
    }

    /// Per chain, `frame_number` minus that of the previous frame in the
    /// chain, 0 when none is needed (the packet's custom values, or its
    /// template's).
    pub fn chain_fdiffs(&self) -> &[u8] {
        &self.chain_fdiffs[..usize::from(self.chain_cnt)]
    }

    /// Decode target `dt` is active.
    pub fn is_active(&self, dt: usize) -> bool {
        dt < 32 && self.active_decode_targets >> dt & 1 == 1
    }

    /// `start_of_frame && structure_attached`: a point where a receiver
    /// with nothing yet can start (see
    /// [`Descriptor::is_keyframe_start`](crate::Descriptor::is_keyframe_start)).
    pub fn is_keyframe_start(&self) -> bool {
        self.start_of_frame && self.structure_attached
    }
}

/// Reads the descriptors of one RTP stream (one per incoming stream),
/// keeping what persists from packet to packet: the latest template
/// dependency structure and the active decode targets.
///
/// Give it the packets in RTP sequence number order: an update of the
/// active decode targets "is valid until the next update in RTP packet
/// sequence number order" (spec §A.4). A packet that is refused leaves the
/// reader as it was.
#[derive(Debug, Clone, Default)]
pub struct Reader {
    structure: Option<Structure>,
    active_decode_targets: u32,
}

/// The extended descriptor fields' flags (all false without them).
#[derive(Default)]
struct Flags {
    structure: bool,
    active_decode_targets: bool,
    custom_dtis: bool,
    custom_fdiffs: bool,
    custom_chains: bool,
}

impl Reader {
    /// A reader that has seen no structure yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The structure in force: the latest one a packet carried.
    pub fn structure(&self) -> Option<&Structure> {
        self.structure.as_ref()
    }

    /// The active decode targets as of the latest packet read (0 before any
    /// structure).
    pub fn active_decode_targets(&self) -> u32 {
        self.active_decode_targets
    }

    /// Reads one packet's descriptor.
    ///
    /// Allocates only when the packet attaches a structure (to keep it);
    /// every other packet is read against the kept structure in place.
    ///
    /// # Errors
    /// [`DdError::NoStructure`] when no structure was received yet (every
    /// descriptor needs one), [`DdError::UnknownTemplate`] when the frame's
    /// template is not in the structure (typically a new structure was
    /// lost), [`DdError::TooManyFdiffs`] past [`MAX_FDIFFS`] referred
    /// frames, and the syntax errors of [`parse`](crate::parse).
    pub fn read(&mut self, buf: &[u8]) -> Result<FrameInfo, DdError> {
        let [b0, b1, b2, ext @ ..] = buf else {
            return Err(DdError::TooShort(buf.len()));
        };
        debug_assert_eq!(buf.len() - ext.len(), MANDATORY_LEN);
        let mut r = BitReader::new(ext);
        let mut flags = Flags::default();
        if !ext.is_empty() {
            // extended_descriptor_fields()
            flags.structure = r.flag()?;
            flags.active_decode_targets = r.flag()?;
            flags.custom_dtis = r.flag()?;
            flags.custom_fdiffs = r.flag()?;
            flags.custom_chains = r.flag()?;
        }
        // Only a packet with a structure allocates; the others borrow the
        // kept one.
        let attached = if flags.structure {
            Some(structure::read(&mut r)?)
        } else {
            None
        };
        let structure = attached
            .as_ref()
            .or(self.structure.as_ref())
            .ok_or(DdError::NoStructure)?;
        let dt_cnt = u32::from(structure.decode_targets);
        let mut active = if attached.is_some() {
            structure.all_decode_targets()
        } else {
            self.active_decode_targets
        };
        if flags.active_decode_targets {
            active = r.bits(dt_cnt)?;
        }
        let template_id = b0 & 0x3F;
        let mut info = FrameInfo {
            start_of_frame: b0 & 0x80 != 0,
            end_of_frame: b0 & 0x40 != 0,
            frame_number: u16::from_be_bytes([*b1, *b2]),
            template_id,
            spatial_id: 0,
            temporal_id: 0,
            active_decode_targets: active,
            structure_attached: attached.is_some(),
            dtis: [Dti::NotPresent; MAX_DECODE_TARGETS],
            dt_cnt: structure.decode_targets,
            fdiffs: [0; MAX_FDIFFS],
            fdiff_cnt: 0,
            chain_fdiffs: [0; MAX_CHAINS],
            chain_cnt: structure.chains,
        };
        frame_dependency_definition(&mut r, structure, &flags, &mut info)?;
        // The rest is zero_padding, which receivers ignore.
        if let Some(s) = attached {
            self.structure = Some(s);
        }
        self.active_decode_targets = active;
        Ok(info)
    }
}

/// frame_dependency_definition(): the template's values, each replaced by
/// the packet's custom ones where its flag says so.
fn frame_dependency_definition(
    r: &mut BitReader<'_>,
    s: &Structure,
    flags: &Flags,
    info: &mut FrameInfo,
) -> Result<(), DdError> {
    let template = s
        .template(info.template_id)
        .ok_or(DdError::UnknownTemplate(info.template_id))?;
    info.spatial_id = template.spatial_id;
    info.temporal_id = template.temporal_id;
    let dt_cnt = usize::from(s.decode_targets);
    if flags.custom_dtis {
        for d in &mut info.dtis[..dt_cnt] {
            *d = Dti::from_code(r.bits(2)? as u8);
        }
    } else {
        info.dtis[..dt_cnt].copy_from_slice(&template.dtis);
    }
    if flags.custom_fdiffs {
        // frame_fdiffs(): each diff in 4, 8 or 12 bits, until a zero size.
        let mut n = 0;
        loop {
            let size = r.bits(2)?;
            if size == 0 {
                break;
            }
            let fdiff = r.bits(4 * size)? + 1;
            let slot = info.fdiffs.get_mut(n).ok_or(DdError::TooManyFdiffs)?;
            *slot = fdiff as u16;
            n += 1;
        }
        info.fdiff_cnt = n as u8;
    } else {
        info.fdiffs[..template.fdiffs.len()].copy_from_slice(&template.fdiffs);
        info.fdiff_cnt = template.fdiffs.len() as u8;
    }
    let chain_cnt = usize::from(s.chains);
    if flags.custom_chains {
        for c in &mut info.chain_fdiffs[..chain_cnt] {
            *c = r.bits(8)? as u8;
        }
    } else {
        info.chain_fdiffs[..chain_cnt].copy_from_slice(&template.chain_fdiffs);
    }
    Ok(())
}
