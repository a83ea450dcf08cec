//! The responder driven directly through its interceptor interface.

use super::*;
use rtc::interceptor::RTCPFeedback;
use rtc::rtcp::transport_feedbacks::transport_layer_nack::NackPair;
use rtc::shared::marshal::{Marshal, Unmarshal};

const SSRC: u32 = 0x1111;
const RTX_SSRC: u32 = 0x2222;
const PT: u8 = 96;
const RTX_PT: u8 = 97;
/// The dependency descriptor's extension id in these tests.
const DD_ID: u8 = 5;

fn info(ssrc: u32, rtx: bool, nack: bool) -> StreamInfo {
    let fb = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.into(),
        parameter: parameter.into(),
    };
    let mut rtcp_feedback = vec![fb("nack", "pli"), fb("transport-cc", "")];
    if nack {
        rtcp_feedback.push(fb("nack", ""));
    }
    StreamInfo {
        ssrc,
        ssrc_rtx: rtx.then_some(RTX_SSRC),
        payload_type: PT,
        payload_type_rtx: rtx.then_some(RTX_PT),
        rtcp_feedback,
        ..Default::default()
    }
}

/// A video packet as the SDK sends it: marker on the last packet of a
/// frame, a dependency descriptor and a second extension.
fn packet(ssrc: u32, seq: u16) -> rtp::Packet {
    rtp::Packet {
        header: rtp::header::Header {
            version: 2,
            marker: seq.is_multiple_of(3),
            payload_type: PT,
            sequence_number: seq,
            timestamp: 90_000 + u32::from(seq) * 10,
            ssrc,
            csrc: vec![7],
            extension: true,
            extension_profile: rtp::header::EXTENSION_PROFILE_ONE_BYTE,
            extensions: vec![
                rtp::header::Extension {
                    id: 1,
                    payload: vec![b'0'].into(),
                },
                rtp::header::Extension {
                    id: DD_ID,
                    payload: vec![0x80, seq as u8, (seq >> 8) as u8].into(),
                },
            ],
            ..Default::default()
        },
        payload: (0..100u16)
            .map(|i| i.wrapping_add(seq) as u8)
            .collect::<Vec<u8>>()
            .into(),
    }
}

fn tagged(packet: Packet) -> TaggedPacket {
    TaggedPacket {
        now: Instant::now(),
        transport: TransportContext::default(),
        message: AttributedPacket::new(packet),
    }
}

fn nack(media_ssrc: u32, nacks: Vec<NackPair>) -> TransportLayerNack {
    TransportLayerNack {
        sender_ssrc: 9,
        media_ssrc,
        nacks,
    }
}

fn pair(packet_id: u16, lost_packets: u16) -> NackPair {
    NackPair {
        packet_id,
        lost_packets,
    }
}

/// A responder with `stream` bound and `seqs` sent on it, the sent packets
/// already drained.
fn sent(stream: &StreamInfo, history: usize, seqs: impl IntoIterator<Item = u16>) -> NackResponder {
    let mut r = NackResponder::with_history(history);
    r.bind_local_stream(stream);
    for seq in seqs {
        r.handle_write(tagged(Packet::Rtp(packet(stream.ssrc, seq))))
            .unwrap();
    }
    while r.poll_write().is_some() {}
    r
}

/// Feeds `nacks` in one RTCP compound and returns what the responder sends,
/// checking each is tagged as a retransmission and the RTCP passes on.
fn answers(r: &mut NackResponder, nacks: Vec<TransportLayerNack>) -> Vec<rtp::Packet> {
    let rtcp: Vec<Box<dyn rtc::rtcp::Packet>> = nacks
        .into_iter()
        .map(|n| Box::new(n) as Box<dyn rtc::rtcp::Packet>)
        .collect();
    let count = rtcp.len();
    r.handle_read(tagged(Packet::Rtcp(rtcp))).unwrap();
    match r.poll_read().map(|m| m.message.packet) {
        Some(Packet::Rtcp(p)) => assert_eq!(p.len(), count, "RTCP passed on whole"),
        other => panic!("RTCP not passed on: {other:?}"),
    }
    assert!(r.poll_read().is_none());
    std::iter::from_fn(|| r.poll_write())
        .map(|m| {
            assert!(m.message.has(&Attribute::Retransmission));
            match m.message.packet {
                Packet::Rtp(p) => p,
                other => panic!("not RTP: {other:?}"),
            }
        })
        .collect()
}

fn osn(p: &rtp::Packet) -> u16 {
    u16::from_be_bytes([p.payload[0], p.payload[1]])
}

#[test]
fn rtx_answers_follow_rfc_4588() {
    let mut r = sent(&info(SSRC, true, true), 64, 10..20);
    // 12, and 14 (bit 1 of the bitmap), then 17 on its own.
    let got = answers(&mut r, vec![nack(SSRC, vec![pair(12, 0b10), pair(17, 0)])]);
    assert_eq!(got.iter().map(osn).collect::<Vec<_>>(), vec![12, 14, 17]);

    let first = got[0].header.sequence_number;
    for (i, rtx) in got.iter().enumerate() {
        let original = packet(SSRC, osn(rtx));
        assert_eq!(rtx.header.ssrc, RTX_SSRC);
        assert_eq!(rtx.header.payload_type, RTX_PT);
        assert_eq!(
            rtx.header.sequence_number,
            first.wrapping_add(i as u16),
            "own, consecutive sequence numbers"
        );
        assert_eq!(rtx.header.version, 2);
        assert_eq!(rtx.header.timestamp, original.header.timestamp);
        assert_eq!(rtx.header.marker, original.header.marker);
        assert_eq!(rtx.header.csrc, original.header.csrc);
        assert_eq!(
            &rtx.payload[2..],
            &original.payload[..],
            "OSN, then the original payload"
        );
    }
    // The RTX stream's numbering continues across NACKs.
    let again = answers(&mut r, vec![nack(SSRC, vec![pair(19, 0)])]);
    assert_eq!(again[0].header.sequence_number, first.wrapping_add(3));
}

#[test]
fn rtx_answers_keep_every_header_extension_on_the_wire() {
    let mut r = sent(&info(SSRC, true, true), 64, 0..5);
    let got = answers(&mut r, vec![nack(SSRC, vec![pair(3, 0)])]);
    assert_eq!(got.len(), 1);
    // Through the wire format, as the receiver sees it.
    let wire = got[0].marshal().unwrap();
    let parsed = rtp::Packet::unmarshal(&mut &wire[..]).unwrap();
    let original = packet(SSRC, 3);
    assert!(parsed.header.extension);
    assert_eq!(
        parsed.header.extension_profile,
        original.header.extension_profile
    );
    assert_eq!(parsed.header.extensions, original.header.extensions);
    assert_eq!(
        parsed.header.get_extension(DD_ID),
        Some(vec![0x80, 3, 0].into())
    );
    assert_eq!(osn(&parsed), 3);
}

#[test]
fn without_rtx_the_original_is_sent_again_unchanged() {
    let mut r = sent(&info(SSRC, false, true), 64, 100..110);
    let got = answers(&mut r, vec![nack(SSRC, vec![pair(104, 0b1)])]);
    assert_eq!(got, vec![packet(SSRC, 104), packet(SSRC, 105)]);
}

#[test]
fn only_packets_within_the_history_are_answered() {
    let mut r = sent(&info(SSRC, true, true), 8, 0..20);
    // Every number 0..=33 asked for: only the last 8 sent come back.
    let everything = (0..2).map(|i| pair(i * 17, u16::MAX)).collect();
    let got = answers(&mut r, vec![nack(SSRC, everything)]);
    assert_eq!(
        got.iter().map(osn).collect::<Vec<_>>(),
        (12..20).collect::<Vec<_>>()
    );
}

#[test]
fn unknown_numbers_streams_and_unbound_streams_get_nothing() {
    let mut r = sent(&info(SSRC, true, true), 64, 10..20);
    // Never sent, ahead of the newest, half the space away.
    assert!(
        answers(
            &mut r,
            vec![nack(
                SSRC,
                vec![pair(5, 0), pair(20, 0xff), pair(32_778, 0)]
            )]
        )
        .is_empty()
    );
    // Another SSRC, and the RTX SSRC itself.
    assert!(
        answers(
            &mut r,
            vec![
                nack(0x3333, vec![pair(12, 0)]),
                nack(RTX_SSRC, vec![pair(0, u16::MAX)])
            ]
        )
        .is_empty()
    );

    // A stream without generic NACK keeps no history.
    let mut r = sent(&info(SSRC, true, false), 64, 10..20);
    assert!(answers(&mut r, vec![nack(SSRC, vec![pair(12, 0)])]).is_empty());

    // An unbound stream is forgotten.
    let mut r = sent(&info(SSRC, true, true), 64, 10..20);
    r.unbind_local_stream(&info(SSRC, true, true));
    assert!(answers(&mut r, vec![nack(SSRC, vec![pair(12, 0)])]).is_empty());
}

#[test]
fn each_packet_is_answered_once_per_nack_oldest_first() {
    let mut r = sent(&info(SSRC, false, true), 64, (65_530..=65_535).chain(0..3));
    // Across the wrap, 65534 and its bits 0..=2 (65535, 0, 1), listed twice,
    // and 1 and 0 again on their own.
    let repeated = vec![
        pair(1, 0),
        pair(65_534, 0b111),
        pair(65_534, 0b111),
        pair(0, 0),
    ];
    let got = answers(&mut r, vec![nack(SSRC, repeated)]);
    let seqs: Vec<u16> = got.iter().map(|p| p.header.sequence_number).collect();
    assert_eq!(seqs, vec![65_534, 65_535, 0, 1]);
    assert!(
        answers(&mut r, vec![nack(SSRC, vec![])]).is_empty(),
        "no pairs"
    );
}

/// Random NACK bodies, with lengths that lie and cut short, parsed as the
/// peer connection parses RTCP, never make the responder panic, and one
/// NACK is never answered with more than the history holds.
#[test]
fn malformed_nacks_never_panic() {
    let mut r = sent(&info(SSRC, true, true), 16, 0..40);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        // xorshift64: deterministic, no dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut parsed = 0;
    for _ in 0..5_000 {
        // RTPFB (205), FMT 1 (generic NACK), a length that may lie, the
        // sender SSRC, the media SSRC (often ours, so the pairs reach the
        // history), then up to 7 random pairs, and maybe cut short.
        let mut raw = vec![0x81, 205, 0, (next() % 10) as u8];
        raw.extend_from_slice(&(next() as u32).to_be_bytes());
        let media = if next() % 2 == 0 { SSRC } else { next() as u32 };
        raw.extend_from_slice(&media.to_be_bytes());
        for _ in 0..next() % 8 {
            raw.extend_from_slice(&(next() as u32).to_be_bytes());
        }
        if next() % 4 == 0 {
            raw.truncate((next() % raw.len() as u64) as usize);
        }
        let Ok(packets) = rtc::rtcp::packet::unmarshal(&mut &raw[..]) else {
            continue;
        };
        parsed += 1;
        let nacks = packets
            .iter()
            .filter(|p| p.as_any().is::<TransportLayerNack>())
            .count();
        r.handle_read(tagged(Packet::Rtcp(packets))).unwrap();
        while r.poll_read().is_some() {}
        let resent = std::iter::from_fn(|| r.poll_write()).count();
        assert!(
            resent <= 16 * nacks,
            "{resent} answers to {nacks} NACKs from a 16-packet history"
        );
    }
    assert!(parsed > 100, "only {parsed} inputs parsed");
}

/// A simulcast packet names its encoding with the rid extension; its
/// retransmission names it with the repaired-rid one, or a receiver would
/// take the RTX stream for the encoding's new main stream.
#[test]
fn an_rtx_answer_carries_the_rid_as_repaired_rid() {
    const RID_ID: u8 = 3;
    const RRID_ID: u8 = 4;
    let mut stream = info(SSRC, true, true);
    stream.rtp_header_extensions = [(RID_URI, RID_ID), (REPAIRED_RID_URI, RRID_ID)]
        .into_iter()
        .map(|(uri, id)| rtc::interceptor::RTPHeaderExtension {
            uri: uri.into(),
            id: id.into(),
        })
        .collect();
    let mut r = NackResponder::with_history(64);
    r.bind_local_stream(&stream);
    let mut original = packet(SSRC, 10);
    original
        .header
        .set_extension(RID_ID, bytes::Bytes::from_static(b"h"))
        .unwrap();
    r.handle_write(tagged(Packet::Rtp(original))).unwrap();
    while r.poll_write().is_some() {}
    let got = answers(&mut r, vec![nack(SSRC, vec![pair(10, 0)])]);
    assert_eq!(got.len(), 1);
    let rtx = &got[0].header;
    assert_eq!(rtx.get_extension(RID_ID), None);
    assert_eq!(rtx.get_extension(RRID_ID).as_deref(), Some(&b"h"[..]));
    assert_eq!(
        rtx.get_extension(DD_ID),
        packet(SSRC, 10).header.get_extension(DD_ID)
    );
}
