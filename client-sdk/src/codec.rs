//! Codecs as the SDK negotiates them.
//!
//! The SDK never encodes or decodes media. A codec only names the payload
//! format in SDP (so that the other side, and browsers, accept the m-line)
//! and fixes the RTP clock rate the app's timestamps run on.

use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters};
use signaling::proto::TrackKind;

/// A codec a [`Peer`](crate::transport::Peer) offers and accepts.
///
/// Every codec negotiates `transport-cc` and generic NACK (RFC 4585); video
/// codecs also negotiate PLI and FIR keyframe requests. Audio NACK is not
/// what browsers do by default, but it costs nothing here and lets the SFU
/// recover lost audio packets, whose SFrame ciphertext cannot be concealed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Codec {
    /// Audio or video.
    pub kind: TrackKind,
    /// MIME subtype, as in SDP and in the signaling protocol: `opus`, `VP8`.
    pub name: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels; 0 for video.
    pub channels: u16,
    /// The `a=fmtp` parameters, without the payload type.
    pub fmtp: String,
    /// The RTP payload type this side offers.
    pub payload_type: u8,
    /// The payload type of its RTX (RFC 4588) retransmission format, if any.
    pub rtx_payload_type: Option<u8>,
}

impl Codec {
    /// Opus, 48 kHz stereo, payload type 111.
    pub fn opus() -> Self {
        Self {
            kind: TrackKind::Audio,
            name: "opus".into(),
            clock_rate: 48_000,
            channels: 2,
            fmtp: "minptime=10;useinbandfec=1".into(),
            payload_type: 111,
            rtx_payload_type: None,
        }
    }

    /// VP8, 90 kHz, payload type 96 with RTX on 97.
    pub fn vp8() -> Self {
        Self {
            kind: TrackKind::Video,
            name: "VP8".into(),
            clock_rate: 90_000,
            channels: 0,
            fmtp: String::new(),
            payload_type: 96,
            rtx_payload_type: Some(97),
        }
    }

    /// The full MIME type, e.g. `audio/opus`.
    pub fn mime_type(&self) -> String {
        format!("{}/{}", kind_str(self.kind), self.name)
    }

    /// Whether `other` names the same format (kind, name and clock rate),
    /// whatever payload type either side picked.
    pub fn same_format(&self, other: &Codec) -> bool {
        self.kind == other.kind
            && self.name.eq_ignore_ascii_case(&other.name)
            && self.clock_rate == other.clock_rate
    }

    /// Whether an `rtc` codec (e.g. from negotiated parameters) is this format.
    pub(crate) fn matches_rtc(&self, codec: &RTCRtpCodec) -> bool {
        codec.mime_type.eq_ignore_ascii_case(&self.mime_type())
            && codec.clock_rate == self.clock_rate
    }

    /// The codec as the `webrtc` media engine registers it.
    pub(crate) fn rtc_codec(&self) -> RTCRtpCodec {
        let fb = |typ: &str, parameter: &str| RTCPFeedback {
            typ: typ.into(),
            parameter: parameter.into(),
        };
        let mut rtcp_feedback = vec![fb("transport-cc", ""), fb("nack", "")];
        if self.kind == TrackKind::Video {
            rtcp_feedback.push(fb("nack", "pli"));
            rtcp_feedback.push(fb("ccm", "fir"));
        }
        RTCRtpCodec {
            mime_type: self.mime_type(),
            clock_rate: self.clock_rate,
            channels: self.channels,
            sdp_fmtp_line: self.fmtp.clone(),
            rtcp_feedback,
        }
    }

    /// The codec and, when it has one, its RTX format, ready to register.
    pub(crate) fn rtc_parameters(&self) -> Vec<RTCRtpCodecParameters> {
        let mut out = vec![RTCRtpCodecParameters {
            rtp_codec: self.rtc_codec(),
            payload_type: self.payload_type,
        }];
        if let Some(rtx) = self.rtx_payload_type {
            out.push(RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: format!("{}/rtx", kind_str(self.kind)),
                    clock_rate: self.clock_rate,
                    channels: 0,
                    sdp_fmtp_line: format!("apt={}", self.payload_type),
                    rtcp_feedback: Vec::new(),
                },
                payload_type: rtx,
            });
        }
        out
    }
}

pub(crate) fn kind_str(kind: TrackKind) -> &'static str {
    match kind {
        TrackKind::Audio => "audio",
        TrackKind::Video => "video",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_describe_their_formats() {
        assert_eq!(Codec::opus().mime_type(), "audio/opus");
        assert_eq!(Codec::vp8().mime_type(), "video/VP8");
        let mut other = Codec::vp8();
        other.payload_type = 100;
        other.name = "vp8".into();
        assert!(Codec::vp8().same_format(&other));
        assert!(!Codec::vp8().same_format(&Codec::opus()));
    }

    #[test]
    fn video_registers_rtx_and_keyframe_feedback() {
        let params = Codec::vp8().rtc_parameters();
        assert_eq!(params.len(), 2);
        assert_eq!(params[1].rtp_codec.sdp_fmtp_line, "apt=96");
        let fb = &params[0].rtp_codec.rtcp_feedback;
        assert!(fb.iter().any(|f| f.typ == "nack" && f.parameter == "pli"));
        assert_eq!(Codec::opus().rtc_parameters().len(), 1);
    }
}
