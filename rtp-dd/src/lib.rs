//! The RTP dependency descriptor (DD) header extension, AV1 RTP spec
//! Appendix A: a stateful reader that interprets every field, a writer for
//! any template dependency structure, and the stateless single-layer
//! helpers the SFU and clients started with.
//!
//! With end-to-end encryption the SFU cannot read codec headers: the payload
//! is SFrame ciphertext. The DD travels outside the ciphertext as an RTP
//! header extension and is all the SFU reads to forward: where frames start
//! and end, which packet starts a keyframe (the first packet of a frame
//! that carries the template dependency structure), and, with simulcast or
//! SVC, each frame's spatial and temporal layer, its decode target
//! indications, the frames it refers to and the chains that tell whether a
//! loss broke a decode target.
//!
//! - [`Reader`] (one per incoming stream) keeps the latest [`Structure`]
//!   and the active decode targets, and turns each packet's descriptor into
//!   a [`FrameInfo`]. Packets without an attached structure are read
//!   without allocating.
//! - [`write_frame`] writes a descriptor for a frame that follows one of a
//!   structure's templates, attaching the structure and signalling the
//!   active decode targets on request. [`Structure::l1t1`],
//!   [`Structure::l1t3`] and [`Structure::l3t3`] are the structures our
//!   clients publish.
//! - [`parse`] (mandatory fields and a syntax check, stateless) and
//!   [`write()`] (single-layer stream) are the original small API.
//!
//! ```
//! use rtp_dd::{FrameSpec, Reader, Structure, write_frame};
//! let l1t3 = Structure::l1t3();
//! let mut buf = [0u8; 64];
//! let mut reader = Reader::new();
//!
//! // A keyframe's first packet carries the structure.
//! let key = FrameSpec { start_of_frame: true, end_of_frame: true, frame_number: 100, template_id: l1t3.template_id(0) };
//! let n = write_frame(&key, &l1t3, true, None, &mut buf).unwrap();
//! let f = reader.read(&buf[..n]).unwrap();
//! assert!(f.is_keyframe_start());
//! assert_eq!(reader.structure(), Some(&l1t3));
//!
//! // A T2 frame (template 3) is 3 bytes, read against the kept structure.
//! let t2 = FrameSpec { frame_number: 101, template_id: l1t3.template_id(3), ..key };
//! let n = write_frame(&t2, &l1t3, false, None, &mut buf).unwrap();
//! assert_eq!(n, 3);
//! let f = reader.read(&buf[..n]).unwrap();
//! assert_eq!((f.spatial_id, f.temporal_id), (0, 2));
//! assert_eq!(f.referred_frames().collect::<Vec<_>>(), [100]);
//! // Forward it only to receivers of decode target 2 (T0+T1+T2).
//! let wanted: Vec<bool> = f.dtis().iter().map(|d| d.is_present()).collect();
//! assert_eq!(wanted, [false, false, true]);
//!
//! // Only T0 and T1 remain active from here on.
//! let t1 = FrameSpec { frame_number: 102, template_id: l1t3.template_id(2), ..key };
//! let n = write_frame(&t1, &l1t3, false, Some(0b011), &mut buf).unwrap();
//! assert_eq!(reader.read(&buf[..n]).unwrap().active_decode_targets, 0b011);
//! ```
//!
//! The single-layer helpers:
//!
//! ```
//! use rtp_dd::{FrameMark, MAX_LEN, parse, write};
//! let mut buf = [0u8; MAX_LEN];
//! let mark = FrameMark { start_of_frame: true, end_of_frame: true, frame_number: 1, keyframe: true };
//! let n = write(&mark, &mut buf);
//! let d = parse(&buf[..n]).unwrap();
//! assert!(d.is_keyframe_start());
//! assert_eq!(d.frame_number, 1);
//! ```
#![deny(missing_docs)]

mod bits;
mod error;
mod modes;
mod parse;
mod reader;
mod structure;
mod write;
mod write_frame;

pub use error::DdError;
pub use parse::{Descriptor, parse};
pub use reader::{FrameInfo, Reader};
pub use structure::{Dti, MAX_CHAINS, MAX_DECODE_TARGETS, MAX_FDIFFS, Structure, Template};
pub use write::{FrameMark, MAX_LEN, write};
pub use write_frame::{FrameSpec, write_frame};

/// The extension's URI in SDP `a=extmap` lines (spec §A.9).
pub const URI: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";
