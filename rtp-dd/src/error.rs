//! Why a descriptor was refused, and the limits behind the refusals.

/// Template ids are 6 bits, so a structure holds at most 64 templates.
pub(crate) const MAX_TEMPLATES: u32 = 64;
/// Limits on layer ids in templates: AV1 has at most 4 spatial and 8
/// temporal layers (`spatial_id` and `temporal_id` are 2 and 3 bits in its
/// OBU extension header).
pub(crate) const MAX_SPATIAL_IDS: u32 = 4;
pub(crate) const MAX_TEMPORAL_IDS: u32 = 8;

/// Why a descriptor was refused (reading) or not produced (writing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DdError {
    /// Fewer than the 3 bytes of mandatory fields.
    #[error("dependency descriptor of {0} bytes is shorter than its mandatory fields")]
    TooShort(usize),
    /// A field runs past the end of the descriptor.
    #[error("dependency descriptor ends inside a field")]
    Truncated,
    /// The attached structure declares more than 64 templates.
    #[error("template dependency structure has more than {MAX_TEMPLATES} templates")]
    TooManyTemplates,
    /// The attached structure's templates exceed 4 spatial or 8 temporal
    /// layers.
    #[error("template dependency structure has too many spatial or temporal layers")]
    TooManyLayers,
    /// The frame's template id is not in the structure it refers to (the
    /// attached one, or for a [`Reader`](crate::Reader) the latest one).
    #[error("frame refers to template id {0}, which the structure lacks")]
    UnknownTemplate(u8),
    /// The descriptor needs a template dependency structure (every one does
    /// to be interpreted), and the reader has not received one yet: the
    /// packet that carried it was lost, or the stream was joined mid-way.
    #[error("dependency descriptor refers to a template structure not received yet")]
    NoStructure,
    /// A frame (custom frame diffs) or a template lists more than
    /// [`MAX_FDIFFS`](crate::MAX_FDIFFS) referred frames.
    #[error("frame or template lists more than {} frame diffs", crate::MAX_FDIFFS)]
    TooManyFdiffs,
    /// A [`Structure`](crate::Structure) given to the writer cannot be coded
    /// (the reason names the first field at fault).
    #[error("template dependency structure cannot be coded: {0}")]
    InvalidStructure(&'static str),
    /// An active decode targets bitmask given to the writer names decode
    /// targets the structure does not have.
    #[error("active decode targets bitmask {0:#x} has bits past the structure's decode targets")]
    InvalidMask(u32),
    /// The output buffer is shorter than the descriptor, which needs the
    /// given number of bytes.
    #[error("dependency descriptor needs {0} bytes, the buffer is shorter")]
    BufferTooSmall(usize),
}
