//! Stateless parsers: the dependency descriptor, the first-look datagram
//! demux and STUN USERNAME reader, and the signaling wire protocol.

use rtp_dd::{FrameMark, FrameSpec, MAX_LEN, Reader, Structure, write_frame};
use sfu_core::demux::{Class, classify, stun_local_ufrag};
use signaling::proto::{ClientMessage, ServerMessage};

/// The RTP dependency descriptor readers: the stateless `rtp_dd::parse`,
/// which the SFU runs on every video packet's header extension, and the
/// stateful `rtp_dd::Reader` (fresh, and primed with each built-in
/// structure, as on a stream joined at a keyframe).
///
/// Checks: the mandatory fields read as laid out on the wire; only an
/// extended descriptor can carry a structure; what the SFU routes on
/// (start, end, frame number, keyframe start) survives the writer and the
/// reader unchanged; and those of `rtp_dd_reader` below.
pub fn rtp_dd(data: &[u8]) {
    rtp_dd_reader(data);
    let Ok(d) = rtp_dd::parse(data) else {
        return;
    };
    assert!(data.len() >= 3, "parsed a descriptor shorter than 3 bytes");
    assert_eq!(d.start_of_frame, data[0] & 0x80 != 0);
    assert_eq!(d.end_of_frame, data[0] & 0x40 != 0);
    assert_eq!(d.template_id, data[0] & 0x3f);
    assert_eq!(d.frame_number, u16::from_be_bytes([data[1], data[2]]));
    if data.len() == 3 {
        assert!(!d.structure_attached, "a structure in 3 bytes");
    }
    let mark = FrameMark {
        start_of_frame: d.start_of_frame,
        end_of_frame: d.end_of_frame,
        frame_number: d.frame_number,
        keyframe: d.is_keyframe_start(),
    };
    let mut buf = [0u8; MAX_LEN];
    let n = rtp_dd::write(&mark, &mut buf);
    let back = rtp_dd::parse(&buf[..n]).expect("the writer's output parses");
    assert_eq!(
        (
            back.start_of_frame,
            back.end_of_frame,
            back.frame_number,
            back.is_keyframe_start()
        ),
        (
            mark.start_of_frame,
            mark.end_of_frame,
            mark.frame_number,
            mark.keyframe
        ),
    );
}

/// The stateful reader on one descriptor. Checks:
/// - a fresh reader accepts only a descriptor with a structure, which the
///   stateless parser accepts too with the same mandatory fields; the
///   structure passes the writer's checks, and the writer codes the frame
///   with it again into bytes a fresh reader reads back to the same
///   structure, layers and active decode targets;
/// - a reader that holds a structure reads the descriptor against it,
///   and a refused descriptor leaves its structure and active decode
///   targets as they were.
fn rtp_dd_reader(data: &[u8]) {
    let mut fresh = Reader::new();
    if let Ok(info) = fresh.read(data) {
        assert!(
            info.structure_attached,
            "a fresh reader read a frame without a structure"
        );
        let d = rtp_dd::parse(data).expect("what the reader accepts parses");
        assert_eq!(
            (
                d.start_of_frame,
                d.end_of_frame,
                d.template_id,
                d.frame_number
            ),
            (
                info.start_of_frame,
                info.end_of_frame,
                info.template_id,
                info.frame_number
            ),
        );
        let s = fresh.structure().expect("the attached structure is kept");
        assert_eq!(
            s.validate(),
            Ok(()),
            "the reader kept a structure the writer refuses"
        );
        assert_eq!(info.dtis().len(), usize::from(s.decode_targets));
        assert_eq!(info.chain_fdiffs().len(), usize::from(s.chains));
        let spec = FrameSpec {
            start_of_frame: info.start_of_frame,
            end_of_frame: info.end_of_frame,
            frame_number: info.frame_number,
            template_id: info.template_id,
        };
        let mask = Some(info.active_decode_targets);
        let mut buf = [0u8; 1024];
        let n = write_frame(&spec, s, true, mask, &mut buf).expect("an accepted structure codes");
        let mut again = Reader::new();
        let back = again.read(&buf[..n]).expect("the writer's output reads");
        assert_eq!(again.structure(), Some(s));
        assert_eq!(
            (
                back.spatial_id,
                back.temporal_id,
                back.active_decode_targets
            ),
            (
                info.spatial_id,
                info.temporal_id,
                info.active_decode_targets
            ),
        );
    }
    for s in [Structure::l1t3(), Structure::l3t3()] {
        let key = FrameSpec {
            start_of_frame: true,
            end_of_frame: true,
            frame_number: 0,
            template_id: 0,
        };
        let mut buf = [0u8; 255];
        let n = write_frame(&key, &s, true, None, &mut buf).expect("writes");
        let mut r = Reader::new();
        r.read(&buf[..n]).expect("reads");
        let active = r.active_decode_targets();
        match r.read(data) {
            Ok(info) => {
                let kept = r.structure().expect("structure");
                if !info.structure_attached {
                    assert_eq!(kept, &s);
                    let t = s.template(info.template_id).expect("template");
                    assert_eq!(
                        (info.spatial_id, info.temporal_id),
                        (t.spatial_id, t.temporal_id)
                    );
                }
                assert_eq!(info.dtis().len(), usize::from(kept.decode_targets));
            }
            Err(_) => {
                assert_eq!(
                    r.structure(),
                    Some(&s),
                    "a refused packet changed the structure"
                );
                assert_eq!(r.active_decode_targets(), active);
            }
        }
    }
}

/// The media port's first look at a datagram (`sfu_core::demux`): its class
/// (RFC 7983) and, for a STUN request, the local ufrag from USERNAME, which
/// decides whether an unknown address may become a transport.
///
/// Checks: a ufrag is only found in a STUN-class datagram, and is non-empty
/// and free of the `:` separator.
pub fn stun_demux(data: &[u8]) {
    let class = classify(data);
    if let Some(ufrag) = stun_local_ufrag(data) {
        assert_eq!(class, Class::Stun, "ufrag read from a non-STUN datagram");
        assert!(!ufrag.is_empty() && !ufrag.contains(':'), "bad ufrag");
        assert!(data.len() >= 20 + 4 + ufrag.len());
    }
}

/// Signaling message decoding: what the server reads from every WebSocket
/// text frame (`ClientMessage`) and what every client reads from the server
/// (`ServerMessage`).
///
/// Checks: whatever decodes re-encodes and decodes to the same value.
pub fn signaling_proto(data: &[u8]) {
    if let Ok(m) = serde_json::from_slice::<ClientMessage>(data) {
        let text = serde_json::to_string(&m).expect("a decoded message encodes");
        let back: ClientMessage = serde_json::from_str(&text).expect("re-decodes");
        assert_eq!(back, m, "client message changed through encode/decode");
    }
    if let Ok(m) = serde_json::from_slice::<ServerMessage>(data) {
        let text = serde_json::to_string(&m).expect("a decoded message encodes");
        let back: ServerMessage = serde_json::from_str(&text).expect("re-decodes");
        assert_eq!(back, m, "server message changed through encode/decode");
    }
}
