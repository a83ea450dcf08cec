//! The structures our clients publish, derived from the definitions in AV1
//! RTP spec §A.2 (DTIs), §A.5 (chains) and §A.8.3 (frame and chain diffs).
//!
//! Conventions shared by all three:
//!
//! - decode target `3 * s + t` is spatial layer `s` at temporal layer `t`:
//!   every frame with spatial id `<= s` and temporal id `<= t`. So decode
//!   targets go from the lowest fidelity up, and
//!   [`Structure::decode_target_layers`] gives `(s, t)` for index
//!   `3 * s + t` (for one spatial layer, simply `t`);
//! - temporal layers repeat in a cycle of 4 temporal units, T0 T2 T1 T2:
//!   T0 refers to the previous T0, T1 to the T0 two units back, and each
//!   T2 to the unit just before it (T0 or T1);
//! - with spatial layers, a temporal unit holds one frame per spatial
//!   layer, S0 first, each with its own `frame_number`, so one unit spans
//!   as many frame numbers as there are spatial layers;
//! - `template_id_offset` is 0 and no resolutions are given; a sender that
//!   starts a new structure mid-stream should move the offset past the old
//!   template ids (spec §A.8.3) and may fill in resolutions.
//!
//! What the DTI letters mean (spec Table A.1): `S` if this frame is
//! decodable, every later frame of the decode target is (a switch point);
//! `D` no later frame of the decode target refers to it; `R` neither;
//! `-` not part of the decode target. A frame that is both a switch point
//! and referred to by no later frame is marked `D`, as in the spec's own
//! examples (§A.10.2): dropping it under congestion matters more than
//! switching up on it, since the next frame of the lower temporal layer
//! is a switch point anyway.
//!
//! The L1T3 and L3T3 tables below agree with the spec's example tables
//! for those modes (§A.10.2.1 and §A.10.2.2), which list the decode
//! targets in the opposite order (highest fidelity first) and number the
//! templates from 1. `tests/structures.rs` checks every DTI, frame diff
//! and chain diff against the definitions on a simulated stream.

use crate::structure::{Dti, Structure, Template};

/// A template from the spec's table notation: DTIs as symbols
/// (`-`, `D`, `S`, `R`), one per decode target.
fn template(
    spatial_id: u8,
    temporal_id: u8,
    dtis: &str,
    fdiffs: &[u16],
    chains: &[u8],
) -> Template {
    Template {
        spatial_id,
        temporal_id,
        dtis: dtis
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .map(|b| match b {
                b'D' => Dti::Discardable,
                b'S' => Dti::Switch,
                b'R' => Dti::Required,
                _ => Dti::NotPresent,
            })
            .collect(),
        fdiffs: fdiffs.to_vec(),
        chain_fdiffs: chains.to_vec(),
    }
}

impl Structure {
    /// One spatial and one temporal layer: one decode target, one chain
    /// (every frame is in it).
    ///
    /// | index | frame | fdiffs | chain | DTI |
    /// |---|---|---|---|---|
    /// | 0 | keyframe | – | 0 | S |
    /// | 1 | delta | 1 | 1 | S |
    ///
    /// Both are switch points: a delta frame refers only to the frame just
    /// before it, so once it is decodable every later frame is.
    pub fn l1t1() -> Self {
        Self {
            template_id_offset: 0,
            decode_targets: 1,
            templates: vec![
                template(0, 0, "S", &[], &[0]),
                template(0, 0, "S", &[1], &[1]),
            ],
            chains: 1,
            protected_by: vec![0],
            resolutions: None,
        }
    }

    /// One spatial layer, three temporal layers (cycle T0 T2 T1 T2).
    /// Decode targets: 0 = T0, 1 = T0+T1, 2 = T0+T1+T2. One chain, the T0
    /// frames, protects all three (T1 and T2 frames are never needed to
    /// keep decoding at full rate after a loss: the next T0 or T1 refers
    /// only to T0 frames).
    ///
    /// | index | frame (position in cycle) | T | fdiffs | chain | DT0 DT1 DT2 |
    /// |---|---|---|---|---|---|
    /// | 0 | keyframe | 0 | – | 0 | S S S |
    /// | 1 | T0 delta (0) | 0 | 4 | 4 | S S S |
    /// | 2 | T1 (2) | 1 | 2 | 2 | - D S |
    /// | 3 | T2 after T0 (1) | 2 | 1 | 1 | - - D |
    /// | 4 | T2 after T1 (3) | 2 | 1 | 3 | - - D |
    ///
    /// Why: a T0 delta refers only to the previous T0, and every later
    /// frame refers to it or to frames after it, so it is a switch point
    /// for all three. The T1 frame is referred to by no later frame of
    /// DT1 (the next T0 refers to T0 only): D; for DT2 the T2 after it
    /// refers to it, and everything later refers to it, its T0 or later
    /// frames: S. No frame refers to a T2 frame: D for DT2. Chain diffs
    /// count back to the latest T0 (0 on the keyframe: nothing before it
    /// is needed).
    pub fn l1t3() -> Self {
        Self {
            template_id_offset: 0,
            decode_targets: 3,
            templates: vec![
                template(0, 0, "SSS", &[], &[0]),
                template(0, 0, "SSS", &[4], &[4]),
                template(0, 1, "-DS", &[2], &[2]),
                template(0, 2, "--D", &[1], &[1]),
                template(0, 2, "--D", &[1], &[3]),
            ],
            chains: 1,
            protected_by: vec![0, 0, 0],
            resolutions: None,
        }
    }

    /// Full SVC, three spatial × three temporal layers ("L3T3"): every
    /// frame of spatial layer `s > 0` refers to the frame of layer `s - 1`
    /// in the same temporal unit (inter-layer prediction on every frame,
    /// not only on keyframes as in "L3T3_KEY"), and, except on the
    /// keyframe, to its own layer's frame per the temporal cycle
    /// (T0 T2 T1 T2). A temporal unit is 3 frame numbers (S0, S1, S2), so
    /// the cycle is 12: the previous T0 of the same layer is 12 back, the
    /// T0 before a T1 is 6 back, the frame before a T2 is 3 back, the
    /// lower layer is 1 back.
    ///
    /// Nine decode targets, index `3 * s + t`. Three chains: chain `c`
    /// holds the T0 frames of spatial layers `0..=c` (decode order S0, S1,
    /// S2 within a unit) and protects the decode targets of spatial layer
    /// `c`, which need exactly those frames to keep decoding (an S1 T0
    /// frame also needs the S0 T0 frame below it).
    ///
    /// | index | S | T | fdiffs | chains 0 1 2 | S0: T0 T1 T2 | S1: T0 T1 T2 | S2: T0 T1 T2 |
    /// |---|---|---|---|---|---|---|---|
    /// | 0 | 0 | 0 | – (keyframe) | 0 0 0 | S S S | S S S | S S S |
    /// | 1 | 0 | 0 | 12 | 12 11 10 | S S S | R R R | R R R |
    /// | 2 | 0 | 1 | 6 | 6 5 4 | - D S | - R R | - R R |
    /// | 3 | 0 | 2 | 3 (after T0) | 3 2 1 | - - D | - - R | - - R |
    /// | 4 | 0 | 2 | 3 (after T1) | 9 8 7 | - - D | - - R | - - R |
    /// | 5 | 1 | 0 | 1 (keyframe unit) | 1 1 1 | - - - | S S S | S S S |
    /// | 6 | 1 | 0 | 12, 1 | 1 1 1 | - - - | S S S | R R R |
    /// | 7 | 1 | 1 | 6, 1 | 7 6 5 | - - - | - D S | - R R |
    /// | 8 | 1 | 2 | 3, 1 (after T0) | 4 3 2 | - - - | - - D | - - R |
    /// | 9 | 1 | 2 | 3, 1 (after T1) | 10 9 8 | - - - | - - D | - - R |
    /// | 10 | 2 | 0 | 1 (keyframe unit) | 2 1 1 | - - - | - - - | S S S |
    /// | 11 | 2 | 0 | 12, 1 | 2 1 1 | - - - | - - - | S S S |
    /// | 12 | 2 | 1 | 6, 1 | 8 7 6 | - - - | - - - | - D S |
    /// | 13 | 2 | 2 | 3, 1 (after T0) | 5 4 3 | - - - | - - - | - - D |
    /// | 14 | 2 | 2 | 3, 1 (after T1) | 11 10 9 | - - - | - - - | - - D |
    ///
    /// Why the DTIs: within spatial layer 0 the pattern is that of
    /// [`l1t3`](Self::l1t3). A frame is `R` for the decode targets of the
    /// layers above, because the frame above it in the same unit refers to
    /// it, yet it is no switch point for them: that frame also refers to
    /// an earlier frame of its own layer, which this one does not vouch
    /// for. A delta T0 frame of layer `s` is a switch point for layer
    /// `s`'s decode targets: it refers to the previous T0 of its layer and
    /// the frame below, and every later frame of those decode targets
    /// refers to it, to frames below it in its unit, or to later frames.
    /// On the keyframe unit S1 and S2 refer only to the layer below, so
    /// they are switch points for every decode target they are part of.
    /// T1 and T2 frames of layer `s` are `D`/`S`/`D` for layer `s` exactly
    /// as in L1T3, and `R` above.
    ///
    /// Chain diffs count back from the frame to the latest earlier frame
    /// in each chain; the S1 and S2 frames of a keyframe unit have nonzero
    /// diffs, pointing at the keyframe (and S1) of their own unit.
    pub fn l3t3() -> Self {
        Self {
            template_id_offset: 0,
            decode_targets: 9,
            templates: vec![
                template(0, 0, "SSS SSS SSS", &[], &[0, 0, 0]),
                template(0, 0, "SSS RRR RRR", &[12], &[12, 11, 10]),
                template(0, 1, "-DS -RR -RR", &[6], &[6, 5, 4]),
                template(0, 2, "--D --R --R", &[3], &[3, 2, 1]),
                template(0, 2, "--D --R --R", &[3], &[9, 8, 7]),
                template(1, 0, "--- SSS SSS", &[1], &[1, 1, 1]),
                template(1, 0, "--- SSS RRR", &[12, 1], &[1, 1, 1]),
                template(1, 1, "--- -DS -RR", &[6, 1], &[7, 6, 5]),
                template(1, 2, "--- --D --R", &[3, 1], &[4, 3, 2]),
                template(1, 2, "--- --D --R", &[3, 1], &[10, 9, 8]),
                template(2, 0, "--- --- SSS", &[1], &[2, 1, 1]),
                template(2, 0, "--- --- SSS", &[12, 1], &[2, 1, 1]),
                template(2, 1, "--- --- -DS", &[6, 1], &[8, 7, 6]),
                template(2, 2, "--- --- --D", &[3, 1], &[5, 4, 3]),
                template(2, 2, "--- --- --D", &[3, 1], &[11, 10, 9]),
            ],
            chains: 3,
            protected_by: vec![0, 0, 0, 1, 1, 1, 2, 2, 2],
            resolutions: None,
        }
    }
}
