//! Answers the other side's NACKs by sending the lost packets again.
//!
//! Registered at `Slot::NackResponder` in place of webrtc-rs's responder,
//! because that one (rtc-interceptor 0.21) builds an RTX packet on a default
//! header and so drops every header extension of the original. Our video
//! carries the dependency descriptor in a header extension, outside the
//! SFrame ciphertext; a repaired packet without it cannot be placed in its
//! frame, so NACK could not repair E2EE video. libwebrtc keeps the
//! extensions, and so does this responder.
//!
//! The design follows webrtc-rs's `NackResponderInterceptor`
//! (rtc-interceptor, MIT/Apache-2.0): a send history per local stream that
//! negotiated generic NACK, filled on the write path and read when an RTCP
//! transport-layer NACK (RFC 4585 §6.2.1) arrives; the answers go out
//! tagged as retransmissions from this slot, so everything wire-ward of it
//! (pacing, transport-wide numbering, the send history of congestion
//! control) sees them as the new bytes they are. Where RTX was negotiated
//! the answer is an RFC 4588 packet: the stream's RTX SSRC and payload type,
//! its own sequence numbers, and the original sequence number (OSN) in the
//! first two bytes of the payload, and a simulcast original's rid moved
//! to the repaired-rid extension. Otherwise the original packet is sent
//! again unchanged.

mod history;

use super::outbound::{REPAIRED_RID_URI, RID_URI};
use bytes::{BufMut, BytesMut};
use history::SendHistory;
use rtc::interceptor::{
    Attribute, AttributedPacket, Interceptor, Packet, StreamInfo, TaggedPacket,
};
use rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
use rtc::rtp;
use rtc::sansio::Protocol;
use rtc::shared::TransportContext;
use rtc::shared::error::Error;
use std::cmp::Reverse;
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

/// Packets kept per stream: about five seconds of 2 Mbit/s video in
/// 1,200-byte packets, longer than any NACK takes to arrive.
const HISTORY_PACKETS: usize = 1024;

/// Where the answers for one local stream go when RTX was negotiated.
struct Rtx {
    ssrc: u32,
    payload_type: u8,
    /// The RTX stream's next sequence number.
    next_seq: u16,
    /// The rid extension's id, and the repaired-rid extension's (RFC 8852
    /// §3.2): a simulcast original names its stream with the first, its
    /// retransmission with the second. A receiver reading a rid on the RTX
    /// stream would take it for the encoding's new main stream.
    rid_ids: Option<(u8, Option<u8>)>,
}

/// One local stream that negotiated generic NACK.
struct Stream {
    history: SendHistory,
    rtx: Option<Rtx>,
}

/// Resends what the other side reports lost; see the module docs.
pub(super) struct NackResponder {
    history_packets: usize,
    streams: HashMap<u32, Stream>,
    reads: VecDeque<TaggedPacket>,
    writes: VecDeque<TaggedPacket>,
}

impl Default for NackResponder {
    fn default() -> Self {
        Self::with_history(HISTORY_PACKETS)
    }
}

impl NackResponder {
    /// A responder keeping about `packets` sent packets per stream (see
    /// [`SendHistory::new`] for the rounding).
    pub(super) fn with_history(packets: usize) -> Self {
        Self {
            history_packets: packets,
            streams: HashMap::new(),
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }

    /// Queues an answer for every packet `nack` names that is still in the
    /// stream's history, oldest first and each once, however often the
    /// NACK lists it.
    fn answer(&mut self, now: Instant, nack: &TransportLayerNack) {
        let Some(stream) = self.streams.get_mut(&nack.media_ssrc) else {
            return;
        };
        let history = &stream.history;
        // Only numbers still in the history are kept, and the dedup below
        // leaves each once: at most the history's capacity is answered,
        // however large (or repetitive) the NACK.
        let mut wanted: Vec<u16> = nack
            .nacks
            .iter()
            .flat_map(|pair| {
                let lost = pair.lost_packets;
                std::iter::once(pair.packet_id).chain(
                    (0..16u16)
                        .filter(move |bit| lost & (1 << bit) != 0)
                        .map(move |bit| pair.packet_id.wrapping_add(bit + 1)),
                )
            })
            .filter(|seq| history.get(*seq).is_some())
            .collect();
        wanted.sort_unstable_by_key(|seq| Reverse(history.age(*seq)));
        wanted.dedup();

        for seq in wanted {
            let Some(original) = stream.history.get(seq) else {
                continue;
            };
            let packet = match &mut stream.rtx {
                Some(rtx) => rtx_packet(original, rtx),
                None => original.clone(),
            };
            self.writes.push_back(TaggedPacket {
                now,
                // The ICE layer stamps the selected pair's addresses on
                // every outgoing packet.
                transport: TransportContext::default(),
                message: AttributedPacket::new(Packet::Rtp(packet)).with(Attribute::Retransmission),
            });
        }
    }
}

/// The RFC 4588 §4 retransmission of `original`: every header field and
/// extension kept except SSRC, payload type and sequence number, which are
/// the RTX stream's; the original sequence number, big-endian, before the
/// original payload. Padding is not carried over (the length changed).
fn rtx_packet(original: &rtp::Packet, rtx: &mut Rtx) -> rtp::Packet {
    let mut header = original.header.clone();
    header.ssrc = rtx.ssrc;
    header.payload_type = rtx.payload_type;
    header.sequence_number = rtx.next_seq;
    header.padding = false;
    rtx.next_seq = rtx.next_seq.wrapping_add(1);
    if let Some((rid_id, repaired_id)) = rtx.rid_ids
        && let Some(rid) = original.header.get_extension(rid_id)
    {
        header.del_extension(rid_id).ok();
        if let Some(id) = repaired_id {
            // The value fits: it was a one-byte extension already.
            header.set_extension(id, rid).ok();
        }
    }

    let mut payload = BytesMut::with_capacity(2 + original.payload.len());
    payload.put_u16(original.header.sequence_number);
    payload.put_slice(&original.payload);
    rtp::Packet {
        header,
        payload: payload.freeze(),
    }
}

/// The id `info`'s stream uses for header extension `uri`, if any.
fn extension_id(info: &StreamInfo, uri: &str) -> Option<u8> {
    info.rtp_header_extensions
        .iter()
        .find(|e| e.uri == uri)
        .and_then(|e| u8::try_from(e.id).ok())
}

/// Whether the stream negotiated generic NACK (`a=rtcp-fb:<pt> nack`, no
/// parameter; `nack pli` is a keyframe request, not loss feedback).
fn wants_nack(info: &StreamInfo) -> bool {
    info.rtcp_feedback
        .iter()
        .any(|fb| fb.typ == "nack" && fb.parameter.is_empty())
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for NackResponder {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    /// Answers the NACKs in inbound RTCP and passes everything on.
    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            for packet in packets {
                if let Some(nack) = packet.as_any().downcast_ref::<TransportLayerNack>() {
                    self.answer(msg.now, nack);
                }
            }
        }
        self.reads.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<Self::Rout> {
        self.reads.pop_front()
    }

    /// Records outbound RTP of the streams that negotiated NACK, and
    /// passes everything on.
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(packet) = &msg.message.packet
            && let Some(stream) = self.streams.get_mut(&packet.header.ssrc)
        {
            stream.history.record(packet);
        }
        self.writes.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<Self::Wout> {
        self.writes.pop_front()
    }
}

impl Interceptor for NackResponder {
    fn bind_local_stream(&mut self, info: &StreamInfo) {
        if !wants_nack(info) {
            return;
        }
        let rtx = match (info.ssrc_rtx, info.payload_type_rtx) {
            (Some(ssrc), Some(payload_type)) => Some(Rtx {
                ssrc,
                payload_type,
                // RFC 3550 §5.1: the initial sequence number is random.
                next_seq: rand::random(),
                rid_ids: extension_id(info, RID_URI)
                    .map(|rid| (rid, extension_id(info, REPAIRED_RID_URI))),
            }),
            _ => None,
        };
        self.streams.insert(
            info.ssrc,
            Stream {
                history: SendHistory::new(self.history_packets),
                rtx,
            },
        );
    }

    fn unbind_local_stream(&mut self, info: &StreamInfo) {
        self.streams.remove(&info.ssrc);
    }

    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}

    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}

#[cfg(test)]
mod tests;
