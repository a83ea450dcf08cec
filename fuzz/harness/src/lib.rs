//! Fuzz targets for every parser and state machine that takes input from
//! the network, as plain functions of a byte slice.
//!
//! Each target panics only on a bug: a crash of the code under test, or a
//! broken invariant it checks (documented on each function). The same
//! functions are run three ways:
//!
//! - by `cargo test` (`tests/corpus.rs`), over every file of the seed corpus
//!   in `fuzz/corpus/<target>/`;
//! - coverage-guided by libFuzzer through `fuzz/libfuzzer` (`scripts/fuzz.sh`);
//! - by any other engine that can call a function on bytes.
//!
//! See `fuzz/README.md` and `docs/fuzzing.md`.

pub mod frame;
pub mod input;
pub mod parsers;
pub mod rig;
pub mod session;
pub mod srtp;

/// A fuzz target: runs one input.
pub type Target = fn(&[u8]);

/// Every target by name; the name is also its corpus directory and its
/// libFuzzer binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("rtp_dd", parsers::rtp_dd),
    ("stun_demux", parsers::stun_demux),
    ("signaling_proto", parsers::signaling_proto),
    ("sframe_open", frame::sframe_open),
    ("sframe_decryptor", frame::sframe_decryptor),
    ("frame_assembler", frame::frame_assembler),
    ("token", session::token),
    ("signaling_session", session::signaling_session),
    ("srtp_after_dtls", srtp::srtp_after_dtls),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}
