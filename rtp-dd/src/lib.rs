//! The RTP dependency descriptor (DD) header extension, AV1 RTP spec
//! Appendix A: a reader for what an SFU needs, and a writer for a
//! single-layer stream.
//!
//! With end-to-end encryption the SFU cannot read codec headers: the payload
//! is SFrame ciphertext. The DD travels outside the ciphertext as an RTP
//! header extension and tells the SFU where frames start and end and which
//! packet starts a keyframe (the first packet of a frame that carries the
//! template dependency structure).
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
mod parse;
mod write;

pub use parse::{DdError, Descriptor, parse};
pub use write::{FrameMark, MAX_LEN, write};

/// The extension's URI in SDP `a=extmap` lines (spec §A.9).
pub const URI: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";
