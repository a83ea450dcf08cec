//! Stateless parsers: the dependency descriptor, the first-look datagram
//! demux and STUN USERNAME reader, and the signaling wire protocol.

use rtp_dd::{FrameMark, MAX_LEN};
use sfu_core::demux::{Class, classify, stun_local_ufrag};
use signaling::proto::{ClientMessage, ServerMessage};

/// The RTP dependency descriptor reader (`rtp_dd::parse`), which the SFU runs
/// on every video packet's header extension.
///
/// Checks: the mandatory fields read as laid out on the wire; only an
/// extended descriptor can carry a structure; and what the SFU routes on
/// (start, end, frame number, keyframe start) survives the writer and the
/// reader unchanged.
pub fn rtp_dd(data: &[u8]) {
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
