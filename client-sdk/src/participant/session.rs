//! The session's long-running tasks: reading server messages, keeping the
//! connection alive, and relaying what the two transports report.

use super::Shared;
use super::connect::{self, ResumeOutcome, Ws};
use crate::events::{CloseReason, Event};
use crate::peer::{PeerEvent, PeerEvents};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use signaling::proto::{ClientMessage, ErrorCode, Resume, ServerMessage, Target};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

/// Reads and handles server messages, in order, until the session ends.
/// A lost connection is reconnected and the session resumed, if the
/// options allow and the server still holds the session.
pub(super) async fn read_loop(shared: Arc<Shared>, mut stream: SplitStream<Ws>) {
    let reason = loop {
        let lost = tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    shared.heard_from_server();
                    match serde_json::from_str::<ServerMessage>(&text) {
                        Ok(message) => {
                            if let Some(reason) = handle(&shared, message).await {
                                break reason;
                            }
                        }
                        Err(error) => warn!(%error, "malformed server message ignored"),
                    }
                    false
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => true,
                Some(Ok(_)) => {
                    shared.heard_from_server();
                    false
                }
            },
            () = shared.silence_alarm.notified() => true,
        };
        if lost {
            if shared.is_closed() {
                break CloseReason::ConnectionLost;
            }
            match reconnect(&shared).await {
                Some(next) => stream = next,
                None => break CloseReason::ConnectionLost,
            }
        }
    };
    shared.shutdown(reason).await;
}

/// Reconnects and resumes the session, retrying with backoff within the
/// reconnect window. `None` if the window passes or the server refuses.
async fn reconnect(shared: &Shared) -> Option<SplitStream<Ws>> {
    let window = shared.options.reconnect_window;
    if window.is_zero() {
        return None;
    }
    info!("signaling connection lost; reconnecting");
    shared.emit(Event::Reconnecting);
    let deadline = Instant::now() + window;
    let mut backoff = Duration::from_millis(50);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            warn!("could not reconnect within the window");
            return None;
        }
        let resume = Resume {
            participant_id: shared.participant_id.clone(),
            resume_token: shared.resume_token.clone(),
            mls_seq: shared.mls_seq.load(Ordering::Acquire),
        };
        let limit = shared.options.connect_timeout.min(remaining);
        match connect::resume(&shared.url, &shared.token, resume, limit).await {
            ResumeOutcome::Resumed { ws, log_gap } => {
                let (sink, stream) = (*ws).split();
                shared.signal.reconnected(sink);
                shared.heard_from_server();
                info!("session resumed");
                shared.emit(Event::Resumed { log_gap });
                return Some(stream);
            }
            ResumeOutcome::Refused => {
                warn!("the server no longer holds this session");
                return None;
            }
            ResumeOutcome::Failed => {
                tokio::time::sleep(backoff.min(remaining)).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Handles one message; returns why the session ends, if it does.
async fn handle(shared: &Shared, message: ServerMessage) -> Option<CloseReason> {
    match message {
        ServerMessage::Offer {
            target: Target::Subscriber,
            sdp,
        } => match shared.subscriber.accept_offer(sdp).await {
            Ok(answer) => {
                let answer = ClientMessage::Answer {
                    target: Target::Subscriber,
                    sdp: answer,
                };
                shared.signal.send_description(Target::Subscriber, answer);
            }
            Err(error) => shared.emit(Event::NegotiationFailed {
                target: Target::Subscriber,
                error: error.to_string(),
            }),
        },
        ServerMessage::Answer {
            target: Target::Publisher,
            sdp,
        } => shared.on_publisher_answer(sdp),
        ServerMessage::Candidate { target, candidate } => {
            if let Err(error) = shared.peer(target).add_remote_candidate(candidate).await {
                shared.emit(Event::NegotiationFailed {
                    target,
                    error: error.to_string(),
                });
            }
        }
        ServerMessage::TrackAccepted { cid, track } => shared.on_track_accepted(&cid, track),
        ServerMessage::ParticipantJoined { participant } => {
            let mut subs = shared.subscriptions();
            for track in &participant.tracks {
                subs.learn(track);
            }
            drop(subs);
            shared.emit(Event::ParticipantJoined(participant));
        }
        ServerMessage::ParticipantLeft {
            participant_id,
            reason,
        } => {
            let gone = shared.subscriptions().forget_participant(&participant_id);
            let mut settings = shared.settings();
            for track_id in &gone {
                settings.forget(track_id);
            }
            drop(settings);
            shared.emit(Event::ParticipantLeft {
                participant_id,
                reason,
            });
        }
        ServerMessage::TrackPublished { track } => {
            shared.subscriptions().learn(&track);
            shared.emit(Event::TrackPublished(track));
        }
        ServerMessage::TrackUnpublished {
            participant_id,
            track_id,
        } => {
            shared.subscriptions().forget(&track_id);
            shared.settings().forget(&track_id);
            shared.emit(Event::TrackUnpublished {
                participant_id,
                track_id,
            });
        }
        ServerMessage::TrackMuted {
            participant_id,
            track_id,
            muted,
        } => shared.emit(Event::TrackMuted {
            participant_id,
            track_id,
            muted,
        }),
        ServerMessage::Subscribed { track_id, mid } => {
            // Before the offer that follows it is answered, so the settings
            // apply from the subscription's first packet.
            if let Some(message) = shared.settings().subscribed(&track_id) {
                shared.signal.send(message);
            }
            let track = shared.subscriptions().subscribed(track_id, mid);
            if let Some(track) = track {
                shared.emit(Event::TrackSubscribed(track));
            }
        }
        ServerMessage::Unsubscribed { track_id } => {
            shared.settings().unsubscribed(&track_id);
            shared.subscriptions().unsubscribed(&track_id);
            shared.emit(Event::TrackUnsubscribed { track_id });
        }
        ServerMessage::Mls { seq, entry } => {
            shared.mls_seq.fetch_max(seq, Ordering::AcqRel);
            shared.emit(Event::Mls { seq, entry });
        }
        ServerMessage::MlsCommitRejected { epoch, .. } => {
            shared.emit(Event::MlsCommitRejected { epoch });
        }
        ServerMessage::Error {
            code: ErrorCode::MlsGap,
            ..
        } => shared.emit(Event::Resumed { log_gap: true }),
        ServerMessage::TrackPaused { track_id, paused } => {
            shared.emit(Event::TrackPaused { track_id, paused })
        }
        ServerMessage::ActiveSpeaker { participant_id } => {
            shared.emit(Event::ActiveSpeaker { participant_id })
        }
        ServerMessage::PublisherLayers { track_id, active } => {
            shared.emit(Event::PublisherLayers { track_id, active })
        }
        ServerMessage::Pong { .. } => {}
        ServerMessage::Closed { reason } => return Some(CloseReason::Server(reason)),
        ServerMessage::Error { code, message } => {
            if !shared.fail_in_flight(code, &message) {
                warn!(?code, %message, "server error");
                shared.emit(Event::ServerError { code, message });
            }
        }
        ServerMessage::Offer { target, .. } | ServerMessage::Answer { target, .. } => {
            warn!(
                ?target,
                "server sent a description the protocol does not allow"
            );
            shared.emit(Event::NegotiationFailed {
                target,
                error: "unexpected description from the server".into(),
            });
        }
        _ => debug!("ignoring server message"),
    }
    None
}

/// Pings the server every interval, and ends the session after three
/// intervals of silence.
pub(super) async fn keepalive(shared: Arc<Shared>) {
    let interval = shared
        .options
        .ping_interval
        .max(std::time::Duration::from_millis(10));
    let start = Instant::now();
    let mut ticks = tokio::time::interval(interval);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if shared.is_closed() {
            return;
        }
        if shared.silence() > interval * 3 {
            warn!("server stopped answering pings");
            // The read loop reconnects or ends the session.
            shared.heard_from_server();
            shared.silence_alarm.notify_one();
            continue;
        }
        let ts = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        shared.signal.send(ClientMessage::Ping { ts });
    }
}

/// Relays one transport's events: candidates to the server, tracks and
/// states to the app.
pub(super) async fn relay_peer_events(shared: Arc<Shared>, target: Target, mut events: PeerEvents) {
    while let Some(event) = events.recv().await {
        match event {
            PeerEvent::LocalCandidate(candidate) => shared.signal.send_candidate(target, candidate),
            PeerEvent::ConnectionState(state) => {
                shared.emit(Event::ConnectionStateChanged { target, state })
            }
            PeerEvent::Track(inbound) if target == Target::Subscriber => {
                let track = shared.subscriptions().arrived(inbound);
                if let Some(track) = track {
                    shared.emit(Event::TrackSubscribed(track));
                }
            }
            PeerEvent::Track(inbound) => {
                warn!(mid = %inbound.mid(), "media arrived on the publisher transport; ignored");
            }
            PeerEvent::KeyframeRequested { cid } => shared.emit(Event::KeyframeRequested { cid }),
        }
    }
}
