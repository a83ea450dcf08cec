//! The reader: the mandatory fields an SFU routes on, and a syntax check of
//! an attached template dependency structure.
//!
//! It is stateless. A descriptor without an attached structure refers to one
//! sent earlier, so the parts whose size depends on that structure (active
//! decode targets bitmask, custom DTIs and chains) cannot be checked here and
//! are left unread. With a structure attached, everything up to the padding
//! is read, so truncated or inconsistent structures are refused.

use crate::bits::BitReader;
use crate::write::MANDATORY_LEN;

use crate::DdError;
use crate::error::{MAX_SPATIAL_IDS, MAX_TEMPLATES, MAX_TEMPORAL_IDS};

/// What an SFU reads from one packet's descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// The packet carries the first byte of a frame.
    pub start_of_frame: bool,
    /// The packet carries the last byte of a frame.
    pub end_of_frame: bool,
    /// `frame_dependency_template_id`.
    pub template_id: u8,
    /// `frame_number`.
    pub frame_number: u16,
    /// A template dependency structure is attached. Senders attach it on the
    /// first packet of a coded video sequence, that is of a keyframe.
    pub structure_attached: bool,
}

impl Descriptor {
    /// `start_of_frame && structure_attached`: what the SFU treats as a
    /// decodable entry point. A receiver that has nothing yet can start here,
    /// because the structure it needs to read every later descriptor comes
    /// with this packet.
    pub fn is_keyframe_start(&self) -> bool {
        self.start_of_frame && self.structure_attached
    }
}

/// Sizes from an attached structure that the rest of the descriptor needs.
struct Shape {
    template_id_offset: u32,
    dt_cnt: u32,
    template_cnt: u32,
    chain_cnt: u32,
}

/// Reads what an SFU needs (mandatory fields + whether a template structure
/// is attached) and validates the structure's syntax enough to reject
/// garbage; never panics.
///
/// ```
/// use rtp_dd::{parse, DdError};
/// // A delta frame's middle packet: template 1, frame 258.
/// let d = parse(&[0x01, 0x01, 0x02]).unwrap();
/// assert_eq!((d.template_id, d.frame_number), (1, 258));
/// assert!(!d.start_of_frame && !d.is_keyframe_start());
/// assert_eq!(parse(&[0x80, 0x00]), Err(DdError::TooShort(2)));
/// ```
pub fn parse(buf: &[u8]) -> Result<Descriptor, DdError> {
    let [b0, b1, b2, ext @ ..] = buf else {
        return Err(DdError::TooShort(buf.len()));
    };
    let mut d = Descriptor {
        start_of_frame: b0 & 0x80 != 0,
        end_of_frame: b0 & 0x40 != 0,
        template_id: b0 & 0x3F,
        frame_number: u16::from_be_bytes([*b1, *b2]),
        structure_attached: false,
    };
    debug_assert_eq!(buf.len() - ext.len(), MANDATORY_LEN);
    if ext.is_empty() {
        return Ok(d);
    }
    let mut r = BitReader::new(ext);
    // extended_descriptor_fields()
    d.structure_attached = r.flag()?;
    let active_decode_targets_present = r.flag()?;
    let custom_dtis = r.flag()?;
    let custom_fdiffs = r.flag()?;
    let custom_chains = r.flag()?;
    if !d.structure_attached {
        return Ok(d);
    }
    let shape = read_structure(&mut r)?;
    if active_decode_targets_present {
        r.skip(shape.dt_cnt as usize)?;
    }
    // frame_dependency_definition()
    let index =
        (u32::from(d.template_id) + MAX_TEMPLATES - shape.template_id_offset) % MAX_TEMPLATES;
    if index >= shape.template_cnt {
        return Err(DdError::UnknownTemplate(d.template_id));
    }
    if custom_dtis {
        r.skip(2 * shape.dt_cnt as usize)?;
    }
    if custom_fdiffs {
        // Ends at a zero size; each round consumes bits, so a descriptor
        // without one runs out and is refused.
        loop {
            let size = r.bits(2)?;
            if size == 0 {
                break;
            }
            r.skip(4 * size as usize)?;
        }
    }
    if custom_chains {
        r.skip(8 * shape.chain_cnt as usize)?;
    }
    // The rest is zero_padding, which receivers ignore.
    Ok(d)
}

/// template_dependency_structure()
fn read_structure(r: &mut BitReader<'_>) -> Result<Shape, DdError> {
    let template_id_offset = r.bits(6)?;
    let dt_cnt = r.bits(5)? + 1;
    // template_layers()
    let mut template_cnt = 0;
    let (mut spatial, mut temporal) = (0, 0);
    loop {
        if template_cnt == MAX_TEMPLATES {
            return Err(DdError::TooManyTemplates);
        }
        template_cnt += 1;
        match r.bits(2)? {
            1 => temporal += 1,
            2 => {
                temporal = 0;
                spatial += 1;
            }
            3 => break,
            _ => {}
        }
        if spatial >= MAX_SPATIAL_IDS || temporal >= MAX_TEMPORAL_IDS {
            return Err(DdError::TooManyLayers);
        }
    }
    let max_spatial_id = spatial;
    // template_dtis()
    r.skip(2 * (template_cnt * dt_cnt) as usize)?;
    // template_fdiffs()
    for _ in 0..template_cnt {
        while r.flag()? {
            r.skip(4)?;
        }
    }
    // template_chains()
    let chain_cnt = r.ns(dt_cnt + 1)?;
    if chain_cnt > 0 {
        for _ in 0..dt_cnt {
            r.ns(chain_cnt)?;
        }
        r.skip(4 * (template_cnt * chain_cnt) as usize)?;
    }
    // decode_target_layers() is derived, not coded.
    if r.flag()? {
        // render_resolutions(): width and height minus one, 16 bits each.
        r.skip(32 * (max_spatial_id as usize + 1))?;
    }
    Ok(Shape {
        template_id_offset,
        dt_cnt,
        template_cnt,
        chain_cnt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// First packet of an L1T2 keyframe (templates 0..=2, two decode
    /// targets), from the public test suite of an AV1 SVC forwarding
    /// library (catch2 `TEST_CASE("av1")`, vector `dd1_bytes`).
    const L1T2_KEY: [u8; 15] = [
        0x80, 0x00, 0x01, 0x80, 0x01, 0x1e, 0xa8, 0x51, 0x41, 0x01, 0x0c, 0x04, 0xfc, 0x03, 0xbc,
    ];

    /// The same suite's L1T2 structure with template_id_offset 6.
    const L1T2_KEY_OFFSET_6: [u8; 15] = [
        0x86, 0x00, 0xb5, 0x80, 0xc1, 0x1e, 0xa8, 0x51, 0x41, 0x01, 0x0c, 0x09, 0xfc, 0x07, 0x7c,
    ];

    /// The same suite's L2T2 keyframe (six templates, four decode targets,
    /// chains, resolutions).
    const L2T2_KEY: [u8; 33] = [
        0xc0, 0x00, 0x01, 0x80, 0x03, 0x18, 0x7a, 0xaa, 0xf1, 0x30, 0xa0, 0xa0, 0x14, 0xd1, 0x41,
        0x38, 0x23, 0x04, 0x60, 0x08, 0x64, 0x22, 0x22, 0x26, 0x50, 0x09, 0xf0, 0x07, 0x70, 0x13,
        0xf0, 0x0e, 0xf0,
    ];

    /// An L3T3 keyframe captured from Chrome, from LiveKit's
    /// `pkg/sfu/dependencydescriptor/dependencydescriptorextension_test.go`.
    const L3T3_KEY_HEX: &str = "c1017280081485214eafffaaaa863cf0430c10c302afc0aaa0063c00430010c002a000a80006000040001d954926e082b04a0941b820ac1282503157f974000ca864330e222222eca8655304224230eca877530077004200ef008601df010d";

    #[test]
    fn public_keyframe_vectors_are_keyframe_starts() {
        let d = parse(&L1T2_KEY).expect("L1T2");
        assert_eq!(
            d,
            Descriptor {
                start_of_frame: true,
                end_of_frame: false,
                template_id: 0,
                frame_number: 1,
                structure_attached: true,
            }
        );
        assert!(d.is_keyframe_start());

        let d = parse(&L1T2_KEY_OFFSET_6).expect("L1T2 offset 6");
        assert_eq!((d.template_id, d.frame_number), (6, 181));
        assert!(d.is_keyframe_start());

        let d = parse(&L2T2_KEY).expect("L2T2");
        assert!(d.start_of_frame && d.end_of_frame && d.is_keyframe_start());
        assert_eq!((d.template_id, d.frame_number), (0, 1));

        let d = parse(&hex(L3T3_KEY_HEX)).expect("L3T3");
        assert!(d.start_of_frame && d.end_of_frame && d.is_keyframe_start());
        assert_eq!((d.template_id, d.frame_number), (1, 370));
    }

    #[test]
    fn public_packets_without_structure_are_not_keyframe_starts() {
        // From the same LiveKit capture: extended fields with an active
        // decode targets bitmask but no structure, and mandatory-only ones.
        for (h, sof, eof, tid, n) in [
            ("86017340fc", true, false, 6, 371),
            ("46017340fc", false, true, 6, 371),
            ("c30175", true, true, 3, 373),
            ("0b0174", false, false, 11, 372),
        ] {
            let d = parse(&hex(h)).expect(h);
            assert_eq!(
                (
                    d.start_of_frame,
                    d.end_of_frame,
                    d.template_id,
                    d.frame_number
                ),
                (sof, eof, tid, n),
                "{h}"
            );
            assert!(!d.structure_attached && !d.is_keyframe_start(), "{h}");
        }
        // The mandatory-fields vector of the catch2 suite.
        let d = parse(&[0x08, 0x00, 0xd8]).expect("dd3");
        assert_eq!((d.template_id, d.frame_number), (8, 216));
    }

    #[test]
    fn truncated_structures_are_refused() {
        for v in [&L1T2_KEY[..], &L2T2_KEY[..], &hex(L3T3_KEY_HEX)[..]] {
            for n in 0..v.len() {
                match parse(&v[..n]) {
                    Err(DdError::TooShort(len)) => assert!(n < 3 && len == n),
                    // Three bytes are a complete mandatory-only descriptor.
                    Ok(d) => assert!(n == 3 && !d.structure_attached, "prefix {n}"),
                    Err(e) => assert!(n > 3, "prefix {n}: {e}"),
                }
            }
        }
    }

    #[test]
    fn template_outside_the_attached_structure_is_refused() {
        let mut v = L1T2_KEY;
        // Three templates from offset 0: id 3 does not exist.
        v[0] = (v[0] & 0xC0) | 3;
        assert_eq!(parse(&v), Err(DdError::UnknownTemplate(3)));
        let mut v = L1T2_KEY_OFFSET_6;
        // Offset 6: ids 6..=8 exist, 5 wraps to index 63.
        v[0] = (v[0] & 0xC0) | 5;
        assert_eq!(parse(&v), Err(DdError::UnknownTemplate(5)));
    }

    #[test]
    fn endless_template_layers_are_refused() {
        // Structure present, offset 0, one decode target, then next_layer_idc
        // "same layer" forever: more than 64 templates.
        let mut v = vec![0x80, 0, 0, 0x80, 0x00];
        v.extend([0u8; 40]);
        assert_eq!(parse(&v), Err(DdError::TooManyTemplates));
        // next_layer_idc "next temporal" eight times: temporal id 8.
        let mut v = vec![0x80, 0, 0, 0x80, 0x00, 0x55, 0x55];
        v.extend([0u8; 8]);
        assert_eq!(parse(&v), Err(DdError::TooManyLayers));
        // "next spatial" four times: spatial id 4.
        let v = [0x80, 0, 0, 0x80, 0x00, 0xAA, 0x00, 0x00];
        assert_eq!(parse(&v), Err(DdError::TooManyLayers));
    }

    /// splitmix64: a seeded generator, so every run checks the same inputs.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn random_input_never_panics_and_mandatory_fields_are_exact() {
        let mut seed = 0x5EED_0D0Du64;
        let mut ok = 0;
        let mut attached = 0;
        for i in 0..200_000u32 {
            let len = (next(&mut seed) % 48) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next(&mut seed) as u8).collect();
            // Half the inputs claim an attached structure, to reach deep
            // into the structure reader.
            if i % 2 == 0 && len > 3 {
                buf[3] |= 0x80;
            }
            match parse(&buf) {
                Ok(d) => {
                    ok += 1;
                    attached += usize::from(d.structure_attached);
                    assert_eq!(d.start_of_frame, buf[0] & 0x80 != 0);
                    assert_eq!(d.end_of_frame, buf[0] & 0x40 != 0);
                    assert_eq!(d.template_id, buf[0] & 0x3F);
                    assert_eq!(d.frame_number, u16::from_be_bytes([buf[1], buf[2]]));
                    assert_eq!(d.structure_attached, len > 3 && buf[3] & 0x80 != 0);
                }
                Err(DdError::TooShort(n)) => assert!(n < 3 && n == len),
                Err(_) => assert!(len > 3),
            }
        }
        // The generator reaches both outcomes, including accepted structures.
        assert!(
            ok > 10_000 && attached > 100,
            "ok {ok}, attached {attached}"
        );
    }
}
