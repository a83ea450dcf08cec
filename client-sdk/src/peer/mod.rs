//! One WebRTC transport, independent of any signaling.

mod candidates;
mod handler;
mod inbound;
mod keyframe_tap;
mod nack;
mod outbound;
mod runtime;
mod setup;

pub use inbound::InboundTrack;
pub(crate) use inbound::MediaStream;
pub use outbound::OutboundTrack;

use crate::codec::Codec;
use crate::error::PeerError;
use crate::events::ConnectionState;
use crate::options::PeerConfig;
use crate::track::TrackSpec;
use candidates::RemoteCandidates;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind,
};
use signaling::proto::{IceCandidate, TrackKind};
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, watch};
use tracing::trace;
use webrtc::media_stream::MediaStreamTrack;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::peer_connection::{PeerConnection, RTCSessionDescription};
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};

/// Something a [`Peer`] reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum PeerEvent {
    /// A local ICE candidate to trickle to the other side.
    LocalCandidate(IceCandidate),
    /// The transport changed state.
    ConnectionState(ConnectionState),
    /// A remote track's first packet arrived.
    Track(InboundTrack),
    /// The other side asked for a keyframe on an [`OutboundTrack`].
    KeyframeRequested {
        /// The track's `cid`.
        cid: String,
    },
}

/// The receiving end of a [`Peer`]'s events. Unbounded: they are few, and
/// media is queued per [`InboundTrack`].
#[derive(Debug)]
pub struct PeerEvents {
    rx: mpsc::UnboundedReceiver<PeerEvent>,
}

impl PeerEvents {
    /// The next event, or `None` once the peer is gone.
    pub async fn recv(&mut self) -> Option<PeerEvent> {
        self.rx.recv().await
    }

    /// The next event if one is queued.
    pub fn try_recv(&mut self) -> Option<PeerEvent> {
        self.rx.try_recv().ok()
    }
}

/// One WebRTC peer connection with byte-transparent RTP in both directions,
/// and no opinion on signaling: the caller carries SDP and candidates.
///
/// It runs the `webrtc` default interceptors (NACK generator and responder,
/// sender and receiver reports, transport-wide congestion control feedback),
/// uses max-bundle, and gathers candidates as [`IceOptions`](crate::config::IceOptions)
/// say. A [`Participant`](crate::transport::Participant) has two of them.
///
/// ```no_run
/// use client_sdk::transport::{Peer, PeerConfig, PeerEvent};
/// use client_sdk::{Codec, TrackSpec};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let (alice, _alice_events) = Peer::new(PeerConfig::loopback()).await?;
/// let (bob, mut bob_events) = Peer::new(PeerConfig::loopback()).await?;
/// let track = alice.add_track(&TrackSpec::new("cam", Codec::vp8())).await?;
/// let answer = bob.accept_offer(alice.create_offer().await?).await?;
/// alice.accept_answer(answer).await?;
/// // ... trickle candidates both ways, wait for `ConnectionState::Connected` ...
/// track.write_rtp(vec![1, 2, 3], 0, true).await?;
/// while let Some(event) = bob_events.recv().await {
///     if let PeerEvent::Track(mut incoming) = event {
///         let packet = incoming.recv().await;
///         assert_eq!(packet.map(|p| p.payload.to_vec()), Some(vec![1, 2, 3]));
///         break;
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub struct Peer {
    pc: Arc<dyn PeerConnection>,
    codecs: Vec<Codec>,
    /// The `a=msid` stream id of every local track.
    stream_id: String,
    state: watch::Receiver<ConnectionState>,
    remote: Mutex<RemoteCandidates>,
    events: mpsc::UnboundedSender<PeerEvent>,
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Peer")
            .field("stream_id", &self.stream_id)
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl Peer {
    /// Creates a peer connection and binds its UDP sockets. Must run inside
    /// a tokio runtime.
    pub async fn new(config: PeerConfig) -> Result<(Self, PeerEvents), PeerError> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (state_tx, state_rx) = watch::channel(ConnectionState::New);
        let pc_slot = Arc::new(OnceLock::new());
        let handler = Arc::new(handler::Handler {
            events: events_tx.clone(),
            state: state_tx,
            pc: Arc::clone(&pc_slot),
            track_queue: config.track_queue,
        });
        let pc = setup::build(&config, handler).await?;
        let _ = pc_slot.set(Arc::downgrade(&pc));
        let peer = Self {
            pc,
            codecs: config.codecs,
            stream_id: format!("{:016x}", rand::random::<u64>()),
            state: state_rx,
            remote: Mutex::new(RemoteCandidates::default()),
            events: events_tx,
        };
        Ok((peer, PeerEvents { rx: events_rx }))
    }

    /// Adds a send-only track. It is negotiated by the next offer.
    pub async fn add_track(&self, spec: &TrackSpec) -> Result<OutboundTrack, PeerError> {
        let codec = self
            .codecs
            .iter()
            .find(|c| c.same_format(&spec.codec))
            .cloned()
            .ok_or_else(|| PeerError::CodecNotConfigured(spec.codec.mime_type()))?;
        // One RTP stream per simulcast encoding, each named by its rid
        // (webrtc writes `a=rid:<rid> send` and `a=simulcast:send` for
        // them); a plain track has one stream and no rid.
        let rids: Vec<String> = if spec.is_simulcast() {
            spec.encodings.iter().map(|e| e.rid.clone()).collect()
        } else {
            vec![String::new()]
        };
        let ssrcs: Vec<u32> = rids.iter().map(|_| nonzero_random()).collect();
        let codings = rids
            .iter()
            .zip(&ssrcs)
            .map(|(rid, ssrc)| RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    rid: rid.clone(),
                    ssrc: Some(*ssrc),
                    rtx: codec.rtx_payload_type.map(|_| RTCRtpRtxParameters {
                        ssrc: nonzero_random(),
                    }),
                    ..RTCRtpCodingParameters::default()
                },
                active: true,
                codec: codec.rtc_codec(),
                ..RTCRtpEncodingParameters::default()
            })
            .collect();
        let kind = match codec.kind {
            TrackKind::Audio => RtpCodecKind::Audio,
            TrackKind::Video => RtpCodecKind::Video,
        };
        let local = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
            self.stream_id.clone(),
            spec.cid.clone(),
            spec.cid.clone(),
            kind,
            codings,
        )));
        let init = RTCRtpTransceiverInit {
            direction: RTCRtpTransceiverDirection::Sendonly,
            streams: vec![self.stream_id.clone()],
            send_encodings: Vec::new(),
        };
        let transceiver = self
            .pc
            .add_transceiver_from_track(Arc::clone(&local) as Arc<dyn TrackLocal>, Some(init))
            .await?;
        let sender = transceiver.sender().await?.ok_or(PeerError::Closed)?;
        tokio::spawn(outbound::feedback_pump(
            Arc::clone(&local),
            spec.cid.clone(),
            self.events.clone(),
        ));
        let rids = if spec.is_simulcast() {
            rids
        } else {
            Vec::new()
        };
        Ok(OutboundTrack::new(
            spec.cid.clone(),
            codec,
            outbound::Streams::new(ssrcs, rids),
            self.state.clone(),
            local,
            sender,
            transceiver,
        ))
    }

    /// Stops sending a track. The next offer renegotiates its m-line.
    pub async fn remove_track(&self, track: &OutboundTrack) -> Result<(), PeerError> {
        self.pc.remove_track(&track.sender).await?;
        Ok(())
    }

    /// Creates an offer, applies it locally and returns its SDP. Candidates
    /// follow as [`PeerEvent::LocalCandidate`].
    pub async fn create_offer(&self) -> Result<String, PeerError> {
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer.clone()).await?;
        trace!(sdp = %offer.sdp, "local offer");
        Ok(offer.sdp)
    }

    /// Applies the answer to this peer's offer.
    pub async fn accept_answer(&self, sdp: String) -> Result<(), PeerError> {
        trace!(%sdp, "remote answer");
        let answer = RTCSessionDescription::answer(sdp)?;
        self.set_remote(answer).await
    }

    /// Applies a remote offer, then creates, applies and returns the answer.
    pub async fn accept_offer(&self, sdp: String) -> Result<String, PeerError> {
        trace!(%sdp, "remote offer");
        let offer = RTCSessionDescription::offer(sdp)?;
        self.set_remote(offer).await?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer.clone()).await?;
        trace!(sdp = %answer.sdp, "local answer");
        Ok(answer.sdp)
    }

    /// Adds a candidate trickled by the other side. One that arrives before
    /// the remote description is held until it is applied.
    pub async fn add_remote_candidate(&self, candidate: IceCandidate) -> Result<(), PeerError> {
        let init = candidates::from_wire(candidate);
        let mut remote = self.remote.lock().await;
        if remote.ready {
            self.pc.add_ice_candidate(init).await?;
        } else {
            remote.pending.push(init);
        }
        Ok(())
    }

    /// The id the remote description gave the header extension `uri`
    /// (`a=extmap`), if it negotiated one. Ids are per transport and per
    /// negotiation, so callers ask after the description is applied.
    pub async fn remote_extension_id(&self, uri: &str) -> Option<u8> {
        let sdp = self.pc.remote_description().await?.sdp;
        sdp.lines().find_map(|line| {
            let rest = line.strip_prefix("a=extmap:")?;
            let (id, rest) = rest.split_once(' ')?;
            let id = id.split('/').next()?.parse::<u8>().ok()?;
            (rest.split_whitespace().next()? == uri).then_some(id)
        })
    }

    /// The transport's current state.
    pub fn connection_state(&self) -> ConnectionState {
        *self.state.borrow()
    }

    /// Waits until the transport is connected.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), PeerError> {
        let mut state = self.state.clone();
        let wait = state.wait_for(|s| {
            matches!(
                s,
                ConnectionState::Connected | ConnectionState::Failed | ConnectionState::Closed
            )
        });
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(s)) if *s == ConnectionState::Connected => Ok(()),
            Ok(_) => Err(PeerError::Closed),
            Err(_) => Err(PeerError::Timeout(timeout)),
        }
    }

    /// Closes the connection and stops its driver. Idempotent.
    pub async fn close(&self) {
        if let Err(error) = self.pc.close().await {
            tracing::debug!(%error, "closing peer connection");
        }
    }

    async fn set_remote(&self, desc: RTCSessionDescription) -> Result<(), PeerError> {
        // Held across the apply, so no candidate slips in between.
        let mut remote = self.remote.lock().await;
        self.pc.set_remote_description(desc).await?;
        remote.ready = true;
        for candidate in std::mem::take(&mut remote.pending) {
            if let Err(error) = self.pc.add_ice_candidate(candidate).await {
                tracing::debug!(%error, "dropping unusable remote candidate");
            }
        }
        Ok(())
    }
}

impl Drop for Peer {
    /// `webrtc` keeps a connection's driver running after its handle is
    /// dropped unless it was closed, so a peer dropped without
    /// [`close`](Peer::close) is closed in the background.
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pc = Arc::clone(&self.pc);
            runtime.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

fn nonzero_random() -> u32 {
    loop {
        let v = rand::random::<u32>();
        if v != 0 {
            return v;
        }
    }
}
