//! Publishing and unpublishing: one SDP round trip on the publisher
//! transport at a time.
//!
//! The protocol has no request ids. While a publish or unpublish is in
//! flight, the server's `answer{publisher}`, `track_accepted` and any
//! `error` belong to it; there is never more than one in flight.

use super::Shared;
use crate::error::{PeerError, ProtocolError, PublishError};
use crate::peer::OutboundTrack;
use crate::track::{LocalTrack, TrackSpec};
use signaling::proto::{
    ClientMessage, ErrorCode, LayerSize, Target, TrackInfo, TrackKind, TrackPublish,
};
use tokio::sync::oneshot;
use tracing::{debug, warn};

/// The most simulcast encodings the server accepts on one track.
const MAX_ENCODINGS: usize = 4;
/// The longest rid the SDK sends (RFC 8851 allows more; the SFU needs few).
const MAX_RID_LEN: usize = 16;

type Reply<T> = oneshot::Sender<Result<T, ProtocolError>>;

/// The replies the publish or unpublish in flight is waiting for.
#[derive(Default)]
pub(super) struct InFlight {
    answer: Option<Reply<String>>,
    accepted: Option<(String, Reply<TrackInfo>)>,
}

impl Shared {
    pub(super) async fn publish(&self, spec: TrackSpec) -> Result<LocalTrack, PublishError> {
        let _one_at_a_time = self.publish_lock.lock().await;
        if self.is_closed() {
            return Err(PublishError::Closed);
        }
        if self.published_cids().contains(&spec.cid) {
            return Err(PublishError::DuplicateCid(spec.cid));
        }
        check_simulcast(&spec)?;
        let outbound = self.publisher.add_track(&spec).await?;
        match self.negotiate_publish(&spec, &outbound).await {
            Ok(info) => {
                debug!(cid = %spec.cid, track_id = %info.track_id, "track published");
                self.published_cids().insert(spec.cid);
                Ok(LocalTrack::new(outbound, info))
            }
            Err(error) => {
                self.clear_in_flight();
                if let Err(e) = self.publisher.remove_track(&outbound).await {
                    debug!(error = %e, "removing a track that failed to publish");
                }
                Err(error)
            }
        }
    }

    async fn negotiate_publish(
        &self,
        spec: &TrackSpec,
        outbound: &OutboundTrack,
    ) -> Result<TrackInfo, PublishError> {
        let sdp = self.publisher.create_offer().await?;
        // Assigned by the offer just applied.
        let mid = outbound.mid().await.ok_or(PeerError::Closed)?;
        let (answer_tx, answer_rx) = oneshot::channel();
        let (accepted_tx, accepted_rx) = oneshot::channel();
        self.set_in_flight(InFlight {
            answer: Some(answer_tx),
            accepted: Some((spec.cid.clone(), accepted_tx)),
        });
        let mut track = TrackPublish::new(&spec.cid, &mid, spec.kind(), &spec.codec.name);
        track.e2ee = spec.e2ee;
        if spec.is_simulcast() {
            // The protocol lists rids highest quality first, sizes lowest
            // first; the spec has them lowest first.
            track.simulcast = spec.encodings.iter().rev().map(|e| e.rid.clone()).collect();
            track.layers = spec
                .encodings
                .iter()
                .map(|e| LayerSize {
                    width: e.width,
                    height: e.height,
                })
                .collect();
        }
        self.signal.send(ClientMessage::Publish { track });
        self.send_offer(sdp)?;
        let answer = self.await_reply(answer_rx).await?;
        self.publisher.accept_answer(answer).await?;
        self.await_reply(accepted_rx).await
    }

    pub(super) async fn unpublish(&self, track: LocalTrack) -> Result<(), PublishError> {
        let _one_at_a_time = self.publish_lock.lock().await;
        if self.is_closed() {
            return Err(PublishError::Closed);
        }
        self.signal.send(ClientMessage::Unpublish {
            cid: track.cid().to_owned(),
        });
        self.published_cids().remove(track.cid());
        self.publisher.remove_track(track.outbound()).await?;
        let sdp = self.publisher.create_offer().await?;
        let (answer_tx, answer_rx) = oneshot::channel();
        self.set_in_flight(InFlight {
            answer: Some(answer_tx),
            accepted: None,
        });
        self.send_offer(sdp)?;
        let result = async {
            let answer = self.await_reply(answer_rx).await?;
            self.publisher.accept_answer(answer).await?;
            Ok(())
        }
        .await;
        self.clear_in_flight();
        result
    }

    fn send_offer(&self, sdp: String) -> Result<(), PublishError> {
        let offer = ClientMessage::Offer {
            target: Target::Publisher,
            sdp,
        };
        if self.signal.send_description(Target::Publisher, offer) {
            Ok(())
        } else {
            Err(PublishError::Closed)
        }
    }

    async fn await_reply<T>(
        &self,
        rx: oneshot::Receiver<Result<T, ProtocolError>>,
    ) -> Result<T, PublishError> {
        let limit = self.options.negotiation_timeout;
        match tokio::time::timeout(limit, rx).await {
            Err(_) => Err(PublishError::Timeout(limit)),
            Ok(Err(_)) => Err(PublishError::Closed),
            Ok(Ok(Err(ProtocolError::Server { code, message }))) => {
                Err(PublishError::Rejected { code, message })
            }
            Ok(Ok(Err(_))) => Err(PublishError::Closed),
            Ok(Ok(Ok(value))) => Ok(value),
        }
    }

    /// Routes `answer{publisher}`.
    pub(super) fn on_publisher_answer(&self, sdp: String) {
        match self.in_flight().answer.take() {
            Some(reply) => {
                let _ = reply.send(Ok(sdp));
            }
            None => warn!("publisher answer with no offer in flight; ignored"),
        }
    }

    /// Routes `track_accepted`.
    pub(super) fn on_track_accepted(&self, cid: &str, track: TrackInfo) {
        let mut in_flight = self.in_flight();
        match in_flight.accepted.take() {
            Some((pending, reply)) if pending == cid => {
                let _ = reply.send(Ok(track));
            }
            other => {
                in_flight.accepted = other;
                warn!(%cid, "track_accepted for a track not being published; ignored");
            }
        }
    }

    /// Hands a server error to the request in flight, if there is one.
    /// Returns whether it was taken.
    pub(super) fn fail_in_flight(&self, code: ErrorCode, message: &str) -> bool {
        let mut in_flight = self.in_flight();
        let error = || ProtocolError::Server {
            code,
            message: message.to_owned(),
        };
        let mut taken = false;
        if let Some(reply) = in_flight.answer.take() {
            let _ = reply.send(Err(error()));
            taken = true;
        }
        if let Some((_, reply)) = in_flight.accepted.take() {
            let _ = reply.send(Err(error()));
            taken = true;
        }
        taken
    }

    fn set_in_flight(&self, replies: InFlight) {
        *self.in_flight() = replies;
    }

    /// Dropping the senders wakes any waiter with `Closed`.
    pub(super) fn clear_in_flight(&self) {
        *self.in_flight() = InFlight::default();
    }
}

/// Refuses simulcast encodings the server or the SDP could not carry.
fn check_simulcast(spec: &TrackSpec) -> Result<(), PublishError> {
    if !spec.is_simulcast() {
        return Ok(());
    }
    let bad = |why| Err(PublishError::BadSimulcast(why));
    if spec.kind() != TrackKind::Video {
        return bad("simulcast is for video only");
    }
    if spec.encodings.len() > MAX_ENCODINGS {
        return bad("more than 4 encodings");
    }
    for (i, e) in spec.encodings.iter().enumerate() {
        if e.rid.is_empty()
            || e.rid.len() > MAX_RID_LEN
            || !e.rid.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return bad("a rid must be 1-16 ASCII letters and digits");
        }
        if spec.encodings[..i].iter().any(|o| o.rid == e.rid) {
            return bad("a rid is repeated");
        }
        if e.width == 0 || e.height == 0 {
            return bad("a size is zero");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Codec;
    use crate::track::Encoding;

    fn cam(encodings: &[(&str, u16)]) -> TrackSpec {
        TrackSpec::new("cam", Codec::vp8()).with_simulcast(
            encodings
                .iter()
                .map(|(rid, h)| Encoding::new(*rid, h * 16 / 9, *h))
                .collect(),
        )
    }

    #[test]
    fn usable_simulcast_passes_and_unusable_is_refused() {
        assert!(check_simulcast(&cam(&[("q", 180), ("h", 360), ("f", 720)])).is_ok());
        assert!(
            check_simulcast(&cam(&[("only", 720)])).is_ok(),
            "one is plain"
        );
        for bad in [
            cam(&[("q", 180), ("q", 360)]),
            cam(&[("q", 180), ("", 360)]),
            cam(&[("q", 180), ("h;", 360)]),
            cam(&[("q", 0), ("h", 360)]),
            cam(&[("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)]),
            TrackSpec::new("mic", Codec::opus())
                .with_simulcast(vec![Encoding::new("a", 1, 1), Encoding::new("b", 2, 2)]),
        ] {
            assert!(
                matches!(check_simulcast(&bad), Err(PublishError::BadSimulcast(_))),
                "{bad:?}"
            );
        }
    }
}
