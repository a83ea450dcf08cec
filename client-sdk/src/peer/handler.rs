//! The callbacks `webrtc` makes into a [`Peer`](super::Peer).
//!
//! They run on the connection's driver task, which is blocked until they
//! return, so they only record and forward; anything that calls back into
//! the connection runs in a task of its own.

use super::PeerEvent;
use super::candidates::to_wire;
use super::inbound;
use crate::events::ConnectionState;
use std::sync::{Arc, OnceLock, Weak};
use tokio::sync::{mpsc, watch};
use tracing::{debug, trace};
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

pub(super) struct Handler {
    pub(super) events: mpsc::UnboundedSender<PeerEvent>,
    pub(super) state: watch::Sender<ConnectionState>,
    /// Set right after the connection is built; weak, because the
    /// connection owns this handler.
    pub(super) pc: Arc<OnceLock<Weak<dyn PeerConnection>>>,
    pub(super) track_queue: usize,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Some(candidate) = to_wire(&event.candidate) {
            trace!(candidate = %candidate.candidate, "local candidate");
            let _ = self.events.send(PeerEvent::LocalCandidate(candidate));
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let state = ConnectionState::from(state);
        debug!(?state, "peer connection state");
        self.state.send_replace(state);
        let _ = self.events.send(PeerEvent::ConnectionState(state));
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        tokio::spawn(inbound::pump(
            track,
            self.pc.get().cloned(),
            self.events.clone(),
            self.track_queue,
        ));
    }
}
