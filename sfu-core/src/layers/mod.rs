//! Layer selection: which frames of a layered video track one subscriber
//! receives, decided from the dependency descriptor alone.
//!
//! A track is layered in one of two ways:
//!
//! - **Simulcast**: the publisher sends several independent encodings of
//!   the same source (e.g. 180p, 360p, 720p), each its own RTP stream with
//!   its own descriptor. A subscriber receives one encoding at a time.
//! - **SVC**: one RTP stream carries spatial layers that build on each
//!   other (e.g. L3T3), and the descriptor's decode targets say which frames
//!   each resolution needs.
//!
//! Either may also have temporal layers (T0, T1, T2: each doubles the frame
//! rate and depends only on lower ones).
//!
//! The payload is end-to-end encrypted, so the selector sees no codec
//! header. What it reads (through [`FrameLayers`]) is what the descriptor
//! states in the clear: which encoding the packet came on, the frame number,
//! whether it starts a keyframe, and how the frame relates to each decode
//! target (not present, discardable, switch point, required).
//!
//! **When it switches** ([`LayerSelector`]):
//!
//! - Down in time (fewer temporal layers): at the next frame. Nothing in a
//!   lower temporal layer depends on a higher one.
//! - Up in time: at a frame that is a *switch point* for the new temporal
//!   layer: from there on, every frame the target needs is one the
//!   subscriber has or will get. With SVC the switch is made at the first
//!   frame of a temporal unit (the lowest spatial layer's), where it is a
//!   switch point for that layer: the frames above it in the unit refer to
//!   it, so switching at one of them (which the descriptor may also mark as
//!   a switch point for its own layer) would send a frame whose reference
//!   below was withheld.
//! - Down in space within one SVC stream: at the next frame; lower spatial
//!   layers never depend on higher ones.
//! - Up in space (SVC), to another simulcast encoding (either way), or from
//!   nothing (a new subscription, or resuming a paused one): at the start of
//!   a keyframe of the stream that carries the target, because only there
//!   does every chain of frames begin afresh. Until then the selector keeps
//!   the current layer flowing (at the lowest temporal layer when going
//!   down, to shed bitrate at once) and reports [`Decision::want_keyframe`]
//!   so the caller can ask the publisher for one.
//!
//! Every packet of a frame gets the same decision: a frame half-forwarded is
//! undecodable and wastes the bytes sent.

mod allocator;
pub mod rates;
mod selector;

pub use allocator::{Allocation, Class, Demand, LayerRate, allocate};
pub use selector::{Decision, LayerSelector};

/// A spatial and temporal layer: for simulcast, `spatial` is the encoding's
/// index (0 the smallest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Layer {
    /// Spatial layer (SVC) or encoding index (simulcast).
    pub spatial: u8,
    /// Temporal layer: 0 is the base frame rate.
    pub temporal: u8,
}

impl Layer {
    /// The layer `(spatial, temporal)`.
    pub const fn new(spatial: u8, temporal: u8) -> Self {
        Self { spatial, temporal }
    }
}

/// How a frame relates to a decode target (AV1 RTP specification A.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indication {
    /// The target does not use the frame.
    NotPresent,
    /// The target uses the frame, but no later frame of it depends on it.
    Discardable,
    /// The target uses the frame, and a receiver whose chain for the target
    /// is intact can start decoding the target here.
    Switch,
    /// The target uses the frame, and later frames may depend on it.
    Required,
}

impl Indication {
    /// Whether the target uses the frame.
    pub fn present(self) -> bool {
        self != Self::NotPresent
    }
}

/// How a track is layered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layering {
    /// Several encodings, each its own RTP stream; spatial = encoding index.
    Simulcast,
    /// One stream whose descriptor carries every layer.
    Svc,
}

/// What the selector reads of one packet. Implemented over the parsed
/// dependency descriptor by the forwarding path, and by tests.
pub trait FrameLayers {
    /// The simulcast encoding the packet came on; 0 for a single stream.
    fn encoding(&self) -> u8;
    /// The descriptor's frame number (per stream).
    fn frame_number(&self) -> u16;
    /// The frame's spatial layer: for simulcast its encoding, for SVC the
    /// descriptor's spatial id.
    fn spatial(&self) -> u8;
    /// The first packet of a keyframe: its descriptor starts the frame and
    /// carries the template structure.
    fn keyframe_start(&self) -> bool;
    /// How the frame relates to the decode target for `layer`. For
    /// simulcast, `layer.spatial` is the encoding, and a frame of another
    /// encoding is [`Indication::NotPresent`].
    fn indication(&self, layer: Layer) -> Indication;
}
