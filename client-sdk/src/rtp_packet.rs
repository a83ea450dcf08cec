//! A received RTP packet, as the app sees it.

use bytes::Bytes;
use rtc::rtp;

/// One RTP header extension element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpExtension {
    /// Its id, as negotiated by `a=extmap` on the receiving transport.
    pub id: u8,
    /// Its value.
    pub data: Bytes,
}

/// A received RTP packet: the header fields an app needs and the payload,
/// byte for byte as the sender wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RtpPacket {
    /// Sequence number (as rewritten by the SFU, if any).
    pub sequence_number: u16,
    /// RTP timestamp, in the codec's clock rate.
    pub timestamp: u32,
    /// SSRC of the stream it arrived on.
    pub ssrc: u32,
    /// Marker bit.
    pub marker: bool,
    /// Payload type.
    pub payload_type: u8,
    /// Header extensions present on the packet.
    pub extensions: Vec<RtpExtension>,
    /// The payload, padding removed.
    pub payload: Bytes,
}

impl From<rtp::Packet> for RtpPacket {
    fn from(packet: rtp::Packet) -> Self {
        let header = packet.header;
        Self {
            sequence_number: header.sequence_number,
            timestamp: header.timestamp,
            ssrc: header.ssrc,
            marker: header.marker,
            payload_type: header.payload_type,
            extensions: header
                .extensions
                .into_iter()
                .map(|e| RtpExtension {
                    id: e.id,
                    data: e.payload,
                })
                .collect(),
            payload: packet.payload,
        }
    }
}
