//! Signaling's commands: participants joining and leaving, their
//! transports, and tracks being published and unpublished.

use super::{MediaPlane, PState, TrackMeta};
use crate::api::{MediaCommand, MediaEvent, TrackKind};
use crate::forwarder::{ParticipantKey, Preferences, TrackKey};
use crate::transport::{Transport, TransportId};
use std::collections::HashMap;
use std::time::Instant;
use str0m::media::{Mid, Rid};

impl MediaPlane {
    pub(super) fn on_command(&mut self, now: Instant, cmd: MediaCommand) {
        match cmd {
            MediaCommand::Join {
                participant,
                room,
                can_publish,
                auto_subscribe,
            } => self.join(now, participant, &room, can_publish, auto_subscribe),
            MediaCommand::Leave { participant } => {
                if let Some(p) = self.participant_ids.remove(&participant) {
                    self.remove_participant(now, p);
                }
            }
            MediaCommand::PublisherOffer { participant, sdp } => {
                if let Some(p) = self.participant_ids.get(&participant).copied() {
                    self.publisher_offer(now, p, sdp);
                }
            }
            MediaCommand::SubscriberAnswer { participant, sdp } => {
                if let Some(p) = self.participant_ids.get(&participant).copied() {
                    self.subscriber_answer(now, p, sdp);
                }
            }
            MediaCommand::Candidate {
                participant,
                target,
                candidate,
            } => {
                if let Some(p) = self.participant_ids.get(&participant).copied() {
                    self.remote_candidate(p, target, &candidate);
                }
            }
            MediaCommand::Publish {
                participant,
                track_id,
                mid,
                kind,
                simulcast,
                layer_sizes,
            } => {
                if let Some(p) = self.participant_ids.get(&participant).copied()
                    && let Some(track) = self.publish(now, p, track_id, &mid, kind, simulcast)
                {
                    self.forwarder.set_layer_sizes(track, layer_sizes);
                }
            }
            MediaCommand::Unpublish {
                participant: _,
                track_id,
            } => {
                if let Some(track) = self.track_ids.get(&track_id).copied() {
                    self.unpublish(now, track);
                }
            }
            MediaCommand::Subscribe {
                participant,
                track_id,
            } => {
                let p = self.participant_ids.get(&participant).copied();
                let track = self.track_ids.get(&track_id).copied();
                if let (Some(p), Some(track)) = (p, track)
                    && self.subscribe(p, track)
                {
                    self.negotiate(now, p);
                }
            }
            MediaCommand::Unsubscribe {
                participant,
                track_id,
            } => {
                let p = self.participant_ids.get(&participant).copied();
                let track = self.track_ids.get(&track_id).copied();
                if let (Some(p), Some(track)) = (p, track)
                    && let Some(u) = self.forwarder.unsubscribe(p, track)
                {
                    self.end_subscription(u);
                    self.negotiate(now, p);
                }
            }
            MediaCommand::TrackSettings {
                participant,
                track_id,
                visible,
                max_width,
                max_height,
            } => {
                let p = self.participant_ids.get(&participant).copied();
                let track = self.track_ids.get(&track_id).copied();
                let prefs = Preferences {
                    visible,
                    max_width,
                    max_height,
                };
                // Not (or no longer) subscribed: nothing to apply, and the
                // client learns of the unsubscription anyway.
                if let (Some(p), Some(track)) = (p, track)
                    && self.forwarder.set_preferences(p, track, prefs) == Some(true)
                {
                    self.send_keyframe_request(track);
                }
            }
        }
    }

    fn join(&mut self, now: Instant, id: String, room: &str, can_publish: bool, auto: bool) {
        if let Some(old) = self.participant_ids.remove(&id) {
            self.remove_participant(now, old);
        }
        let p = self.forwarder.add_participant(room, auto);
        self.participant_ids.insert(id.clone(), p);
        self.participants.insert(
            p,
            PState {
                id,
                can_publish,
                publisher: None,
                subscriber: None,
                published: HashMap::new(),
                subs: Vec::new(),
                idle: Vec::new(),
                deactivate: Vec::new(),
                timed_out: false,
                estimate_bps: None,
                estimate_at_allocation: None,
                estimate_probed: false,
                fell_at: None,
            },
        );
        let mut any = false;
        for track in self.forwarder.auto_subscriptions(p) {
            any |= self.subscribe(p, track);
        }
        if any {
            self.negotiate(now, p);
        }
        // A room already in conversation: who speaks now, rather than at
        // its next change.
        if let Some(speaker) = self.forwarder.dominant_speaker(p) {
            let participant_id = self.participants.get(&speaker).map(|s| s.id.clone());
            self.emit(p, MediaEvent::ActiveSpeaker { participant_id });
        }
    }

    pub(super) fn new_transport(
        &mut self,
        now: Instant,
        p: ParticipantKey,
        subscriber: bool,
    ) -> Option<TransportId> {
        let tr = match Transport::new(p, &self.cfg, now, subscriber) {
            Ok(tr) => tr,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create transport");
                return None;
            }
        };
        self.next_transport += 1;
        let id = TransportId(self.next_transport);
        self.by_ufrag.insert(tr.ufrag.clone(), id);
        self.transports.insert(id, tr);
        self.dirty.push_back(id);
        Some(id)
    }

    fn remove_transport(&mut self, id: TransportId) {
        if let Some(tr) = self.transports.remove(&id) {
            self.by_ufrag.remove(&tr.ufrag);
        }
        for a in self.addrs.remove(&id).unwrap_or_default() {
            if self.by_addr.get(&a) == Some(&id) {
                self.by_addr.remove(&a);
            }
        }
    }

    /// Whether `p` exists and may publish; tells it why not otherwise.
    pub(super) fn may_publish(&mut self, p: ParticipantKey) -> bool {
        match self.participants.get(&p) {
            None => false,
            Some(ps) if ps.can_publish => true,
            Some(_) => {
                self.emit(
                    p,
                    MediaEvent::Error {
                        message: "not allowed to publish".into(),
                    },
                );
                false
            }
        }
    }

    fn publish(
        &mut self,
        now: Instant,
        p: ParticipantKey,
        track_id: String,
        mid: &str,
        kind: TrackKind,
        simulcast: Vec<String>,
    ) -> Option<TrackKey> {
        if !self.may_publish(p) {
            return None;
        }
        let ps = self.participants.get(&p)?;
        let mid = Mid::from(mid);
        if self.track_ids.contains_key(&track_id) || ps.published.contains_key(&mid) {
            self.emit(
                p,
                MediaEvent::Error {
                    message: "track already published".into(),
                },
            );
            return None;
        }
        let rid = simulcast.first().cloned();
        let (track, auto) = self.forwarder.add_track(p, kind, simulcast)?;
        self.tracks.insert(
            track,
            TrackMeta {
                id: track_id.clone(),
                publisher: p,
                mid,
                rid: rid.as_deref().map(Rid::from),
                kind,
            },
        );
        self.track_ids.insert(track_id, track);
        if let Some(ps) = self.participants.get_mut(&p) {
            ps.published.insert(mid, track);
            if let Some(tr) = ps.publisher.and_then(|tid| self.transports.get_mut(&tid)) {
                tr.rx.clear();
            }
        }
        for s in auto {
            if self.subscribe(s, track) {
                self.negotiate(now, s);
            }
        }
        Some(track)
    }

    fn unpublish(&mut self, now: Instant, track: TrackKey) {
        // Subscribers first, while the track id is still known.
        for u in self.forwarder.remove_track(track) {
            let subscriber = u.subscriber;
            self.end_subscription(u);
            self.negotiate(now, subscriber);
        }
        self.stores.remove(&track);
        let Some(meta) = self.tracks.remove(&track) else {
            return;
        };
        self.track_ids.remove(&meta.id);
        if let Some(ps) = self.participants.get_mut(&meta.publisher) {
            ps.published.remove(&meta.mid);
        }
    }

    fn remove_participant(&mut self, now: Instant, p: ParticipantKey) {
        let ended = self.forwarder.remove_participant(p);
        // Tell subscribers first, while the track ids are still known.
        let subscribers: Vec<ParticipantKey> = ended.iter().map(|u| u.subscriber).collect();
        for u in ended {
            self.end_subscription(u);
        }
        let Some(ps) = self.participants.remove(&p) else {
            return;
        };
        self.participant_ids.remove(&ps.id);
        for track in ps.published.values() {
            self.stores.remove(track);
            if let Some(meta) = self.tracks.remove(track) {
                self.track_ids.remove(&meta.id);
            }
        }
        for tid in [ps.publisher, ps.subscriber].into_iter().flatten() {
            self.remove_transport(tid);
        }
        for s in subscribers {
            self.negotiate(now, s);
        }
    }
}
