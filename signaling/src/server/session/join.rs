//! `join`: token checks, then a fresh join or a resume.

use super::{Flow, Out, Session, State};
use crate::media::EVENT_QUEUE;
use crate::proto::{ErrorCode, PROTOCOL_VERSION, Resume, ServerMessage};
use crate::server::metrics::Cap;
use crate::server::outbox::{Bound, Outbox};
use crate::server::quota::Refusal;
use crate::server::rooms::{JoinRequest, ResumeError, ResumeRequest, RoomError};
use crate::token::Claims;
use axum::extract::ws::close_code;
use tokio::sync::mpsc;

impl Session {
    pub(super) fn join(
        &mut self,
        protocol: u32,
        token: &str,
        resume: Option<Resume>,
        out: &mut Out,
    ) -> Flow {
        if protocol != PROTOCOL_VERSION {
            self.reject(
                out,
                ErrorCode::ProtocolVersion,
                format!("server speaks protocol {PROTOCOL_VERSION}, client sent {protocol}"),
            );
            return Flow::Close(close_code::POLICY);
        }
        if self.shared.is_shutting_down() {
            self.reject(out, ErrorCode::Unavailable, "server shutting down");
            return Flow::Close(close_code::AWAY);
        }
        let claims = match self.shared.config.keys.verify(token) {
            Ok(c) => c,
            Err(e) => {
                self.reject(out, ErrorCode::Unauthorized, e.to_string());
                return Flow::Close(close_code::POLICY);
            }
        };
        let refusal = if claims.room.is_empty() {
            Some("token names no room")
        } else if claims.sub.is_empty() {
            Some("token names no identity")
        } else if self.url_room.as_ref().is_some_and(|r| *r != claims.room) {
            Some("token is for another room")
        } else {
            None
        };
        if let Some(why) = refusal {
            self.reject(out, ErrorCode::Unauthorized, why);
            return Flow::Close(close_code::POLICY);
        }
        // The identity's allowance, kept across its connections, replaces
        // this connection's own from here on.
        let now = std::time::Instant::now();
        match self
            .shared
            .allowances
            .identity(&claims.sub, &self.shared.config, now)
        {
            Ok(a) => self.draw_on(a),
            Err(_) => {
                self.shared.metrics.refused(Cap::Allowances);
                tracing::warn!("rate allowance map full: join refused");
                self.reject(out, ErrorCode::Unavailable, "server busy; retry later");
                return Flow::Close(close_code::AGAIN);
            }
        }
        match resume {
            None => self.join_fresh(claims, out),
            Some(r) => self.resume(claims, r, out),
        }
    }

    fn join_fresh(&mut self, claims: Claims, out: &mut Out) -> Flow {
        let cfg = &self.shared.config;
        let auto_subscribe = cfg.auto_subscribe && claims.grants.subscribe;
        let bound = Bound {
            items: cfg.outbound_queue,
            bytes: cfg.outbound_queue_bytes,
        };
        let outbox = Outbox::bounded(self.signal.clone(), bound);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let res = self.shared.rooms.join(JoinRequest {
            room: claims.room.clone(),
            identity: claims.sub,
            name: claims.name,
            grants: claims.grants,
            auto_subscribe,
            max_participants: cfg.max_participants_per_room,
            outbox: outbox.clone(),
            events: events_tx,
            addr: self.addr,
        });
        match res {
            Ok(j) => {
                tracing::info!(
                    participant = %j.participant_id,
                    room = %claims.room,
                    founder = j.mls.founder,
                    "joined"
                );
                // Media events go through the outbox, so that they queue
                // with everything else and survive a suspension.
                tokio::spawn(
                    outbox
                        .clone()
                        .forward_media(events_rx, self.shared.metrics.clone()),
                );
                out.push(ServerMessage::Joined {
                    protocol: PROTOCOL_VERSION,
                    participant_id: j.participant_id.clone(),
                    room: j.room,
                    auto_subscribe,
                    mls: j.mls,
                    resume_token: j.resume_token,
                });
                self.outbox = Some(outbox);
                self.state = State::Joined {
                    room: claims.room,
                    participant_id: j.participant_id,
                    grants: claims.grants,
                };
                Flow::Continue
            }
            Err(e) => {
                let cap = match e {
                    RoomError::TooManyParticipants(Refusal::Total) => Some(Cap::Participants),
                    RoomError::TooManyParticipants(Refusal::PerAddress) => {
                        Some(Cap::ParticipantsPerAddress)
                    }
                    RoomError::TooManyRooms(Refusal::Total) => Some(Cap::Rooms),
                    RoomError::TooManyRooms(Refusal::PerAddress) => Some(Cap::RoomsPerAddress),
                    _ => None,
                };
                let why = match cap {
                    Some(c) => {
                        self.shared.metrics.refused(c);
                        tracing::info!(cap = c.label(), "join refused by a cap");
                        match c {
                            Cap::ParticipantsPerAddress => {
                                "too many participants from your address"
                            }
                            Cap::RoomsPerAddress => "too many rooms opened from your address",
                            _ => "server is at capacity",
                        }
                    }
                    None if e == RoomError::RoomFull => "room is full",
                    None => "media plane unavailable",
                };
                self.reject(out, ErrorCode::Unavailable, why);
                Flow::Close(close_code::AGAIN)
            }
        }
    }

    /// Takes back a session: `resumed`, then the missed MLS entries (or
    /// `error{mls_gap}`), written before anything else queued for it.
    fn resume(&mut self, claims: Claims, resume: Resume, out: &mut Out) -> Flow {
        let res = self.shared.rooms.resume(ResumeRequest {
            room: &claims.room,
            identity: &claims.sub,
            participant_id: &resume.participant_id,
            resume_token: &resume.resume_token,
            mls_seq: resume.mls_seq,
            reader: self.signal.clone(),
        });
        let r = match res {
            Ok(r) => r,
            Err(e) => {
                let why = match e {
                    ResumeError::Unknown | ResumeError::Mismatch => {
                        "no such session to resume (expired, removed or wrong token)"
                    }
                    ResumeError::Lost => "messages for this session were lost",
                };
                tracing::info!(?e, "resume refused");
                self.reject(out, ErrorCode::ResumeFailed, format!("{why}; join afresh"));
                return Flow::Close(close_code::POLICY);
            }
        };
        out.push(ServerMessage::Resumed {
            participant_id: resume.participant_id.clone(),
            room: r.room,
            mls: r.mls,
        });
        match r.replay {
            Ok(entries) => {
                for e in entries {
                    out.push_mls(e.for_member(&resume.participant_id));
                }
            }
            Err(_) => self.reject(
                out,
                ErrorCode::MlsGap,
                format!(
                    "the MLS log no longer holds the entries after {}; rejoin the group",
                    resume.mls_seq
                ),
            ),
        }
        self.outbox = Some(r.outbox);
        self.state = State::Joined {
            room: claims.room,
            participant_id: resume.participant_id,
            grants: r.grants,
        };
        Flow::Continue
    }
}
