//! The template dependency structure (AV1 RTP spec §A.8.2
//! `template_dependency_structure()`): its types, what is derived from it,
//! and its coding in both directions.

use crate::DdError;
use crate::bits::{BitReader, BitWriter};
use crate::error::{MAX_SPATIAL_IDS, MAX_TEMPLATES, MAX_TEMPORAL_IDS};

/// Most decode targets a structure can declare (`dt_cnt_minus_one` is 5
/// bits).
pub const MAX_DECODE_TARGETS: usize = 32;
/// Most chains a structure can declare (`chain_cnt` is at most `DtCnt`).
pub const MAX_CHAINS: usize = MAX_DECODE_TARGETS;
/// Most frame diffs (referred frames) this crate accepts for one frame or
/// template. The syntax has no limit; AV1 frames refer to at most 7
/// reference frames, so 16 leaves room for other codecs.
pub const MAX_FDIFFS: usize = 16;

/// A decode target indication: how a frame relates to one decode target
/// (spec Table A.1; the discriminant is the 2-bit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dti {
    /// `-`: the frame is not part of the decode target.
    #[default]
    NotPresent = 0,
    /// `D`: part of the decode target, and no later frame of the decode
    /// target refers to it, so a forwarder may drop it under congestion.
    Discardable = 1,
    /// `S`: part of the decode target, and if this frame is decodable every
    /// later frame of the decode target is too: a forwarder can start
    /// forwarding the decode target here.
    Switch = 2,
    /// `R`: part of the decode target, neither discardable nor a switch
    /// point.
    Required = 3,
}

impl Dti {
    /// The DTI with 2-bit code `code & 3`.
    pub const fn from_code(code: u8) -> Self {
        match code & 3 {
            0 => Self::NotPresent,
            1 => Self::Discardable,
            2 => Self::Switch,
            _ => Self::Required,
        }
    }

    /// The 2-bit code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The frame is part of the decode target (any DTI but `NotPresent`).
    pub const fn is_present(self) -> bool {
        !matches!(self, Self::NotPresent)
    }
}

/// A frame dependency template: what frames that name it by id have in
/// common.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    /// Spatial layer id.
    pub spatial_id: u8,
    /// Temporal layer id.
    pub temporal_id: u8,
    /// One DTI per decode target.
    pub dtis: Vec<Dti>,
    /// Frame diffs of the referred frames: `frame_number` minus theirs,
    /// each 1..=16 in a template.
    pub fdiffs: Vec<u16>,
    /// Per chain, `frame_number` minus that of the previous frame in the
    /// chain (0: none needed), each 0..=15 in a template.
    pub chain_fdiffs: Vec<u8>,
}

/// A template dependency structure, as attached to the first packet of a
/// coded video sequence.
///
/// The fields are public so that a sender can describe any structure; the
/// writer checks that it can be coded ([`Structure::validate`]) and the
/// reader only produces structures that pass that check.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Structure {
    /// The template id of template index 0 (0..=63); ids count on from it
    /// modulo 64.
    pub template_id_offset: u8,
    /// Number of decode targets (`DtCnt`, 1..=32).
    pub decode_targets: u8,
    /// The templates (1..=64), in the order of their layers: the first is
    /// S0T0, and each next one has the same layer, the next temporal layer,
    /// or temporal layer 0 of the next spatial layer.
    pub templates: Vec<Template>,
    /// Number of chains (`chain_cnt`, 0..=`decode_targets`).
    pub chains: u8,
    /// Per decode target, the index of the chain protecting it; empty when
    /// `chains` is 0.
    pub protected_by: Vec<u8>,
    /// Per spatial id, the maximum render width and height (the coded
    /// values plus one, 1..=65536).
    pub resolutions: Option<Vec<(u32, u32)>>,
}

impl Structure {
    /// The template a frame with `template_id` uses: index
    /// `(template_id - template_id_offset) mod 64`.
    pub fn template(&self, template_id: u8) -> Option<&Template> {
        self.templates.get(self.template_index(template_id)?)
    }

    /// The index of the template with `template_id`, if there is one.
    pub fn template_index(&self, template_id: u8) -> Option<usize> {
        let cnt = MAX_TEMPLATES as usize;
        let index =
            (usize::from(template_id) + cnt - usize::from(self.template_id_offset) % cnt) % cnt;
        (index < self.templates.len()).then_some(index)
    }

    /// The template id of template `index` (what a frame following that
    /// template sends).
    pub fn template_id(&self, index: usize) -> u8 {
        ((usize::from(self.template_id_offset) + index) % MAX_TEMPLATES as usize) as u8
    }

    /// Per decode target, its `(spatial_id, temporal_id)`: the highest
    /// spatial and temporal ids among the templates present in it (spec
    /// `decode_target_layers()`).
    pub fn decode_target_layers(&self) -> Vec<(u8, u8)> {
        (0..usize::from(self.decode_targets))
            .map(|dt| self.decode_target_layer(dt))
            .collect()
    }

    /// [`decode_target_layers`](Self::decode_target_layers) for one decode
    /// target, without allocating; `(0, 0)` for one no template is part of.
    pub fn decode_target_layer(&self, dt: usize) -> (u8, u8) {
        self.templates
            .iter()
            .filter(|t| t.dtis.get(dt).is_some_and(|d| d.is_present()))
            .fold((0, 0), |(s, t), tpl| {
                (s.max(tpl.spatial_id), t.max(tpl.temporal_id))
            })
    }

    /// The highest spatial id of any template.
    pub fn max_spatial_id(&self) -> u8 {
        self.templates
            .iter()
            .map(|t| t.spatial_id)
            .max()
            .unwrap_or(0)
    }

    /// All decode targets active: `decode_targets` low bits set.
    pub fn all_decode_targets(&self) -> u32 {
        all_active(u32::from(self.decode_targets))
    }

    /// Whether `chain` protects a decode target that is active in `mask`:
    /// chains that protect none must be ignored (spec §A.5,
    /// `ChainHasActiveDecodeTarget`).
    pub fn chain_has_active_decode_target(&self, chain: u8, mask: u32) -> bool {
        self.protected_by
            .iter()
            .enumerate()
            .any(|(dt, &c)| c == chain && dt < 32 && mask >> dt & 1 == 1)
    }

    /// Checks that the structure can be coded and is consistent, with the
    /// same limits the reader applies (so whatever this crate writes, it
    /// reads back).
    pub fn validate(&self) -> Result<(), DdError> {
        use DdError::InvalidStructure as bad;
        if self.template_id_offset >= MAX_TEMPLATES as u8 {
            return Err(bad("template_id_offset past 63"));
        }
        let dt_cnt = usize::from(self.decode_targets);
        if dt_cnt == 0 || dt_cnt > MAX_DECODE_TARGETS {
            return Err(bad("decode target count outside 1..=32"));
        }
        if self.templates.is_empty() || self.templates.len() > MAX_TEMPLATES as usize {
            return Err(bad("template count outside 1..=64"));
        }
        let chain_cnt = usize::from(self.chains);
        if chain_cnt > dt_cnt {
            return Err(bad("more chains than decode targets"));
        }
        let mut prev: Option<(u8, u8)> = None;
        for t in &self.templates {
            let layer = (t.spatial_id, t.temporal_id);
            next_layer_idc(prev, layer).ok_or(bad("templates out of layer order"))?;
            if u32::from(t.spatial_id) >= MAX_SPATIAL_IDS
                || u32::from(t.temporal_id) >= MAX_TEMPORAL_IDS
            {
                return Err(DdError::TooManyLayers);
            }
            prev = Some(layer);
            if t.dtis.len() != dt_cnt {
                return Err(bad("a template's DTI count is not the decode target count"));
            }
            if t.fdiffs.len() > MAX_FDIFFS {
                return Err(DdError::TooManyFdiffs);
            }
            if t.fdiffs.iter().any(|&f| !(1..=16).contains(&f)) {
                return Err(bad("a template's frame diff outside 1..=16"));
            }
            if t.chain_fdiffs.len() != chain_cnt {
                return Err(bad("a template's chain diff count is not the chain count"));
            }
            if t.chain_fdiffs.iter().any(|&f| f > 15) {
                return Err(bad("a template's chain diff past 15"));
            }
        }
        let want_protected = if chain_cnt == 0 { 0 } else { dt_cnt };
        if self.protected_by.len() != want_protected {
            return Err(bad(
                "protected_by needs one chain per decode target (none without chains)",
            ));
        }
        if self.protected_by.iter().any(|&c| c >= self.chains) {
            return Err(bad(
                "a decode target protected by a chain that does not exist",
            ));
        }
        if let Some(res) = &self.resolutions {
            if res.len() != usize::from(self.max_spatial_id()) + 1 {
                return Err(bad("resolutions need one entry per spatial id"));
            }
            if res
                .iter()
                .any(|&(w, h)| !(1..=65536).contains(&w) || !(1..=65536).contains(&h))
            {
                return Err(bad("a resolution outside 1..=65536"));
            }
        }
        Ok(())
    }
}

/// `(1 << dt_cnt) - 1` without overflowing at 32.
pub(crate) fn all_active(dt_cnt: u32) -> u32 {
    match dt_cnt {
        0 => 0,
        n => u32::MAX >> (32 - n.min(32)),
    }
}

/// next_layer_idc values (spec Table A.2).
const SAME_LAYER: u32 = 0;
const NEXT_TEMPORAL: u32 = 1;
const NEXT_SPATIAL: u32 = 2;
const NO_MORE_TEMPLATES: u32 = 3;

/// The `next_layer_idc` that leads from template layer `prev` to `next`
/// (for the first template, from nothing to S0T0), or `None` when the
/// syntax cannot express the step.
fn next_layer_idc(prev: Option<(u8, u8)>, next: (u8, u8)) -> Option<u32> {
    let Some((s, t)) = prev else {
        return (next == (0, 0)).then_some(SAME_LAYER);
    };
    if next == (s, t) {
        Some(SAME_LAYER)
    } else if next == (s, t.wrapping_add(1)) {
        Some(NEXT_TEMPORAL)
    } else if next == (s.wrapping_add(1), 0) {
        Some(NEXT_SPATIAL)
    } else {
        None
    }
}

/// template_dependency_structure(). Every count is bounded before anything
/// is allocated (64 templates of at most 32 DTIs, 16 frame diffs and 32
/// chain diffs), so hostile input cannot make it allocate much.
pub(crate) fn read(r: &mut BitReader<'_>) -> Result<Structure, DdError> {
    let template_id_offset = r.bits(6)? as u8;
    let dt_cnt = r.bits(5)? + 1;
    // template_layers()
    let mut templates: Vec<Template> = Vec::new();
    let (mut spatial, mut temporal) = (0u32, 0u32);
    loop {
        if templates.len() == MAX_TEMPLATES as usize {
            return Err(DdError::TooManyTemplates);
        }
        templates.push(Template {
            spatial_id: spatial as u8,
            temporal_id: temporal as u8,
            ..Template::default()
        });
        match r.bits(2)? {
            NEXT_TEMPORAL => temporal += 1,
            NEXT_SPATIAL => {
                temporal = 0;
                spatial += 1;
            }
            NO_MORE_TEMPLATES => break,
            _ => {}
        }
        if spatial >= MAX_SPATIAL_IDS || temporal >= MAX_TEMPORAL_IDS {
            return Err(DdError::TooManyLayers);
        }
    }
    let max_spatial_id = spatial;
    // template_dtis()
    for t in &mut templates {
        t.dtis = Vec::with_capacity(dt_cnt as usize);
        for _ in 0..dt_cnt {
            t.dtis.push(Dti::from_code(r.bits(2)? as u8));
        }
    }
    // template_fdiffs()
    for t in &mut templates {
        while r.flag()? {
            if t.fdiffs.len() == MAX_FDIFFS {
                return Err(DdError::TooManyFdiffs);
            }
            t.fdiffs.push(r.bits(4)? as u16 + 1);
        }
    }
    // template_chains()
    let chains = r.ns(dt_cnt + 1)?;
    let mut protected_by = Vec::new();
    if chains > 0 {
        protected_by.reserve(dt_cnt as usize);
        for _ in 0..dt_cnt {
            protected_by.push(r.ns(chains)? as u8);
        }
        for t in &mut templates {
            t.chain_fdiffs = Vec::with_capacity(chains as usize);
            for _ in 0..chains {
                t.chain_fdiffs.push(r.bits(4)? as u8);
            }
        }
    }
    // decode_target_layers() is derived (Structure::decode_target_layers).
    let resolutions = if r.flag()? {
        // render_resolutions()
        let mut v = Vec::with_capacity(max_spatial_id as usize + 1);
        for _ in 0..=max_spatial_id {
            let w = r.bits(16)? + 1;
            let h = r.bits(16)? + 1;
            v.push((w, h));
        }
        Some(v)
    } else {
        None
    };
    Ok(Structure {
        template_id_offset,
        decode_targets: dt_cnt as u8,
        templates,
        chains: chains as u8,
        protected_by,
        resolutions,
    })
}

/// template_dependency_structure() for a structure that passed
/// [`Structure::validate`].
pub(crate) fn write(s: &Structure, w: &mut BitWriter<'_>) {
    let dt_cnt = u32::from(s.decode_targets);
    w.put(u32::from(s.template_id_offset), 6);
    w.put(dt_cnt - 1, 5);
    // template_layers(): the step from each template to the next, then the
    // end mark after the last.
    for pair in s.templates.windows(2) {
        let prev = (pair[0].spatial_id, pair[0].temporal_id);
        let next = (pair[1].spatial_id, pair[1].temporal_id);
        let idc = next_layer_idc(Some(prev), next).unwrap_or(SAME_LAYER);
        w.put(idc, 2);
    }
    w.put(NO_MORE_TEMPLATES, 2);
    // template_dtis()
    for t in &s.templates {
        for d in &t.dtis {
            w.put(u32::from(d.code()), 2);
        }
    }
    // template_fdiffs()
    for t in &s.templates {
        for &f in &t.fdiffs {
            w.put(1, 1);
            w.put(u32::from(f) - 1, 4);
        }
        w.put(0, 1);
    }
    // template_chains()
    w.put_ns(dt_cnt + 1, u32::from(s.chains));
    if s.chains > 0 {
        for &c in &s.protected_by {
            w.put_ns(u32::from(s.chains), u32::from(c));
        }
        for t in &s.templates {
            for &c in &t.chain_fdiffs {
                w.put(u32::from(c), 4);
            }
        }
    }
    match &s.resolutions {
        Some(res) => {
            w.put(1, 1);
            for &(width, height) in res {
                w.put(width - 1, 16);
                w.put(height - 1, 16);
            }
        }
        None => w.put(0, 1),
    }
}
