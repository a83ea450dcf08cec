//! SDP negotiation: the publisher's offers, the subscriber offers the
//! plane makes and their answers, trickled candidates, and the subscriber
//! m-lines, which are reused rather than stopped when their track goes
//! away (see `IdleLine`).

use super::{IdleLine, MediaPlane, PState, SubState};
use crate::api::{MediaEvent, Output, Target, TrackKind};
use crate::forwarder::{ParticipantKey, TrackKey, Unsubscribed};
use crate::sdp::{ClientSdp, SdpRefusal};
use std::time::Instant;
use str0m::Candidate;
use str0m::error::RtcError;
use str0m::media::{Direction, MediaKind, Mid};

/// Remote ICE candidates one transport accepts. A client has a few per
/// network interface (host, server-reflexive, relayed); 50 leaves room for
/// many interfaces and both address families.
pub(crate) const MAX_REMOTE_CANDIDATES: u16 = 50;

/// The share of a subscriber stream's bytes that may be resends when its
/// downlink is estimated. Measured on the step test in
/// `tests/congestion.rs` (2.5 Mbit/s to 400 kbit/s and back): from 0.25 to
/// 0.35 no audio is lost once the layers came down and the longest freeze
/// stays under 0.5 s; 0.15 (str0m's default) drops so many resends that
/// the picture froze for 9 s, 0.5 let a freeze pass 0.5 s, and no cap
/// lost audio for 4 s.
const RTX_RATIO_CAP: f32 = 0.3;

impl MediaPlane {
    pub(super) fn publisher_offer(&mut self, now: Instant, p: ParticipantKey, sdp: ClientSdp) {
        if !self.may_publish(p) {
            return;
        }
        let Some(ps) = self.participants.get(&p) else {
            return;
        };
        let offer = match sdp.into_offer(&self.cfg.sdp) {
            Ok(o) => o,
            Err(refusal) => return self.refuse_sdp(p, "offer", refusal),
        };
        let tid = match ps.publisher {
            Some(tid) => tid,
            None => {
                let Some(tid) = self.new_transport(now, p, false) else {
                    return;
                };
                if let Some(ps) = self.participants.get_mut(&p) {
                    ps.publisher = Some(tid);
                }
                tid
            }
        };
        let Some(tr) = self.transports.get_mut(&tid) else {
            return;
        };
        match tr.rtc.sdp_api().accept_offer(offer) {
            Ok(answer) => {
                // New m-lines may map SSRCs differently; learn them again.
                tr.rx.clear();
                let sdp = answer.to_sdp_string();
                self.emit(p, MediaEvent::PublisherAnswer { sdp });
            }
            Err(e) => self.refuse_negotiation(p, "offer refused", &e),
        }
        self.mark_dirty(tid);
    }

    pub(super) fn subscriber_answer(&mut self, now: Instant, p: ParticipantKey, sdp: ClientSdp) {
        if !self.participants.contains_key(&p) {
            return;
        }
        let answer = match sdp.into_answer(&self.cfg.sdp) {
            Ok(a) => a,
            Err(refusal) => return self.refuse_sdp(p, "answer", refusal),
        };
        let Some(tid) = self.participants.get(&p).and_then(|ps| ps.subscriber) else {
            return;
        };
        let Some(tr) = self.transports.get_mut(&tid) else {
            return;
        };
        let Some(pending) = tr.pending_offer.take() else {
            self.emit(
                p,
                MediaEvent::Error {
                    message: "no subscriber offer is pending".into(),
                },
            );
            return;
        };
        if let Err(e) = tr.rtc.sdp_api().accept_answer(pending, answer) {
            self.refuse_negotiation(p, "answer refused", &e);
            return;
        }
        let renegotiate = std::mem::take(&mut tr.renegotiate);
        let (cache_packets, cache_age) = (self.cfg.rtx_cache_packets, self.cfg.rtx_cache_age);
        // With estimation on, resends are capped (str0m drops queued
        // resends while they exceed this share of what the stream sends):
        // after a link loses capacity, the receiver asks again for
        // everything the overflowing queue dropped, and resending it all
        // keeps the link overfull for seconds after the layers came down,
        // losing audio with it. Without estimation nothing adapts to the
        // link anyway, and every resend is answered as before.
        let rtx_cap = self.cfg.bandwidth_estimation.map(|_| RTX_RATIO_CAP);
        let lines = self.pending_lines(p);
        let Some(tr) = self.transports.get_mut(&tid) else {
            return;
        };
        for mid in lines {
            if let Some(tx) = tr.rtc.direct_api().stream_tx_by_mid(mid, None) {
                tx.set_rtx_cache(cache_packets, cache_age, rtx_cap);
                // The plane keeps sent packets once per track and answers
                // NACKs itself (`crate::resend`); str0m keeps no copy.
                tx.set_resends_by_app(true);
            }
        }
        self.go_live(now, p);
        self.mark_dirty(tid);
        if renegotiate {
            self.negotiate(now, p);
        }
    }

    pub(super) fn remote_candidate(&mut self, p: ParticipantKey, target: Target, cand: &str) {
        let Some(ps) = self.participants.get(&p) else {
            return;
        };
        let tid = match target {
            Target::Publisher => ps.publisher,
            Target::Subscriber => ps.subscriber,
        };
        let Some(tr) = tid.and_then(|tid| self.transports.get_mut(&tid)) else {
            return;
        };
        // str0m's ICE agent keeps every distinct remote candidate for the
        // transport's life and scans them all for each new one, so a client
        // sending fresh candidates would grow both without bound.
        if tr.remote_candidates >= MAX_REMOTE_CANDIDATES {
            self.stats.candidates_refused += 1;
            if tr.remote_candidates == MAX_REMOTE_CANDIDATES {
                tr.remote_candidates += 1;
                tracing::debug!(participant = ?p, "remote candidate limit reached");
                self.emit(
                    p,
                    MediaEvent::Error {
                        message: format!(
                            "candidate refused: at most {MAX_REMOTE_CANDIDATES} per transport"
                        ),
                    },
                );
            }
            return;
        }
        let line = cand.strip_prefix("a=").unwrap_or(cand);
        match Candidate::from_sdp_string(line) {
            Ok(c) => {
                tr.remote_candidates += 1;
                tr.rtc.add_remote_candidate(c);
            }
            Err(e) => {
                self.stats.candidates_refused += 1;
                tracing::debug!(error = %e, "ignoring unparsable candidate");
            }
        }
    }

    pub(super) fn subscribe(&mut self, p: ParticipantKey, track: TrackKey) -> bool {
        if !self.forwarder.subscribe(p, track) {
            return false;
        }
        let Some((kind, _)) = self.forwarder.track(track) else {
            return false;
        };
        let max = self.cfg.sdp.max_media_lines;
        if self
            .participants
            .get(&p)
            .is_some_and(|ps| lines_with(ps, kind) > max)
        {
            // Undone at once: nothing was routed or negotiated yet.
            let _ = self.forwarder.unsubscribe(p, track);
            self.stats.subscriptions_refused += 1;
            self.emit(
                p,
                MediaEvent::Error {
                    message: format!("subscription refused: at most {max} m-lines per subscriber"),
                },
            );
            return false;
        }
        if let Some(ps) = self.participants.get_mut(&p) {
            ps.subs.push(SubState {
                track,
                kind,
                mid: None,
                live: false,
                reused: None,
            });
        }
        true
    }

    /// Frees the subscriber's m-line for reuse and tells the subscriber.
    pub(super) fn end_subscription(&mut self, u: Unsubscribed) {
        let track_id = self.tracks.get(&u.track).map(|m| m.id.clone());
        let Some(ps) = self.participants.get_mut(&u.subscriber) else {
            return;
        };
        let Some(i) = ps.subs.iter().position(|s| s.track == u.track) else {
            return;
        };
        let mut s = ps.subs.swap_remove(i);
        if let Some(mid) = s.mid {
            // Not live yet: the forwarder never had the line's state.
            let rewriter = s.reused.take().filter(|_| !s.live).unwrap_or(u.rewriter);
            ps.idle.push(IdleLine {
                mid,
                kind: s.kind,
                rewriter,
            });
            ps.deactivate.push(mid);
        }
        if let Some(track_id) = track_id {
            self.emit(u.subscriber, MediaEvent::Unsubscribed { track_id });
        }
    }

    /// Subscriptions with an m-line that the forwarder does not route to yet.
    fn pending_lines(&self, p: ParticipantKey) -> Vec<Mid> {
        self.participants
            .get(&p)
            .map(|ps| {
                ps.subs
                    .iter()
                    .filter(|s| !s.live)
                    .filter_map(|s| s.mid)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Starts routing to every negotiated m-line of `p` that is not live.
    fn go_live(&mut self, now: Instant, p: ParticipantKey) {
        let mut live = Vec::new();
        if let Some(ps) = self.participants.get_mut(&p) {
            for s in ps.subs.iter_mut().filter(|s| !s.live) {
                let Some(mid) = s.mid else { continue };
                s.live = true;
                live.push((s.track, mid, s.reused.take().unwrap_or_default()));
            }
        }
        for (track, mid, rewriter) in live {
            self.forwarder.set_out_line(p, track, mid, rewriter);
            // A new subscriber needs a keyframe to start decoding.
            self.request_keyframe(now, track);
        }
    }

    /// Makes a subscriber offer for whatever changed, or remembers to once
    /// the pending one is answered.
    pub(super) fn negotiate(&mut self, now: Instant, p: ParticipantKey) {
        let Some(ps) = self.participants.get(&p) else {
            return;
        };
        let tid = match ps.subscriber {
            Some(tid) => tid,
            None => {
                let Some(tid) = self.new_transport(now, p, true) else {
                    return;
                };
                if let Some(ps) = self.participants.get_mut(&p) {
                    ps.subscriber = Some(tid);
                }
                tid
            }
        };
        let Some(tr) = self.transports.get_mut(&tid) else {
            return;
        };
        if tr.pending_offer.is_some() {
            tr.renegotiate = true;
            return;
        }
        let Some(ps) = self.participants.get(&p) else {
            return;
        };
        // (index in subs, track id, publisher id) for each new subscription.
        let todo: Vec<(usize, String, String)> = ps
            .subs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.mid.is_none())
            .filter_map(|(i, s)| {
                let meta = self.tracks.get(&s.track)?;
                let publisher = self.participants.get(&meta.publisher)?.id.clone();
                Some((i, meta.id.clone(), publisher))
            })
            .collect();
        let Some(ps) = self.participants.get_mut(&p) else {
            return;
        };
        let mut api = tr.rtc.sdp_api();
        let mut added = Vec::new();
        for (i, track_id, publisher) in todo {
            let sub = &mut ps.subs[i];
            let mid = match ps.idle.iter().position(|l| l.kind == sub.kind) {
                Some(pos) => {
                    let line = ps.idle.swap_remove(pos);
                    ps.deactivate.retain(|m| *m != line.mid);
                    api.set_direction(line.mid, Direction::SendOnly);
                    sub.reused = Some(line.rewriter);
                    line.mid
                }
                None => api.add_media(
                    match sub.kind {
                        TrackKind::Audio => MediaKind::Audio,
                        TrackKind::Video => MediaKind::Video,
                    },
                    Direction::SendOnly,
                    Some(publisher),
                    Some(track_id.clone()),
                    None,
                ),
            };
            sub.mid = Some(mid);
            added.push((track_id, mid));
        }
        for mid in ps.deactivate.drain(..) {
            api.set_direction(mid, Direction::Inactive);
        }
        let id = ps.id.clone();
        for (track_id, mid) in added {
            self.outputs.push_back(Output::Event {
                participant: id.clone(),
                event: MediaEvent::Subscribed {
                    track_id,
                    mid: mid.to_string(),
                },
            });
        }
        match api.apply() {
            Some((offer, pending)) => {
                tr.pending_offer = Some(pending);
                self.outputs.push_back(Output::Event {
                    participant: id,
                    event: MediaEvent::SubscriberOffer {
                        sdp: offer.to_sdp_string(),
                    },
                });
            }
            // Only a still-active line changed hands: nothing to negotiate.
            None => self.go_live(now, p),
        }
        self.mark_dirty(tid);
    }

    /// A client SDP refused before it reached str0m: counted, and the
    /// client told why in a fixed message.
    fn refuse_sdp(&mut self, p: ParticipantKey, what: &str, refusal: SdpRefusal) {
        self.stats.sdp_refused += 1;
        self.emit(
            p,
            MediaEvent::Error {
                message: format!("{what} refused: {refusal}"),
            },
        );
    }

    /// str0m would not apply a parsed SDP. Its error can quote the SDP, so
    /// the client gets a fixed message and the log gets the kind of error.
    fn refuse_negotiation(&mut self, p: ParticipantKey, message: &str, e: &RtcError) {
        self.stats.sdp_refused += 1;
        let kind = match e {
            RtcError::Sdp(_) => "sdp",
            RtcError::RemoteSdp(_) => "remote_sdp",
            RtcError::ChangesOutOfOrder => "out_of_order",
            _ => "other",
        };
        tracing::debug!(kind, "client SDP not applied");
        self.emit(
            p,
            MediaEvent::Error {
                message: format!("{message}: the media server cannot use this SDP"),
            },
        );
    }
}

/// The subscriber m-lines `ps` would have once a new subscription of
/// `kind` and every pending one got a line: lines in use or idle, plus a
/// new line for each pending subscription no idle line of its kind can
/// take.
fn lines_with(ps: &PState, kind: TrackKind) -> usize {
    let placed = ps.subs.iter().filter(|s| s.mid.is_some()).count() + ps.idle.len();
    let new_lines = |k: TrackKind| {
        let pending = ps
            .subs
            .iter()
            .filter(|s| s.mid.is_none() && s.kind == k)
            .count()
            + usize::from(k == kind);
        let idle = ps.idle.iter().filter(|l| l.kind == k).count();
        pending.saturating_sub(idle)
    };
    placed + new_lines(TrackKind::Audio) + new_lines(TrackKind::Video)
}
