//! Trickle ICE: candidate conversions, and remote candidates that arrive
//! before the remote description.

use signaling::proto::IceCandidate;
use webrtc::peer_connection::{RTCIceCandidate, RTCIceCandidateInit};

/// A locally gathered candidate in the wire form. With max-bundle every
/// m-line shares one transport, so it is attached to the first one.
pub(super) fn to_wire(candidate: &RTCIceCandidate) -> Option<IceCandidate> {
    let init = candidate.to_json().ok()?;
    Some(IceCandidate {
        candidate: init.candidate,
        sdp_mid: None,
        sdp_m_line_index: Some(0),
    })
}

/// A remote candidate in the form `webrtc` takes.
pub(super) fn from_wire(candidate: IceCandidate) -> RTCIceCandidateInit {
    RTCIceCandidateInit {
        candidate: candidate.candidate,
        sdp_mid: candidate.sdp_mid,
        sdp_mline_index: candidate.sdp_m_line_index,
        ..RTCIceCandidateInit::default()
    }
}

/// Remote candidates cannot be added before a remote description exists;
/// until then they wait here.
#[derive(Debug, Default)]
pub(super) struct RemoteCandidates {
    /// Whether a remote description has been applied.
    pub(super) ready: bool,
    /// Candidates received before that.
    pub(super) pending: Vec<RTCIceCandidateInit>,
}
