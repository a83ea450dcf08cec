//! One simulated participant: a real `client_sdk` room member (signaling,
//! WebRTC, MLS, SFrame) that receives everyone's frames into its
//! [`Slot`]'s statistics and, if it is a publisher, sends its own.

use crate::clock::now_us;
use crate::publisher;
use crate::state::{Phase, Shared, Slot, lock};
use client_sdk::{CloseReason, RemoteMedia, RoomEvent};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tracing::debug;

/// Limit on token, signaling, WebRTC setup and admission together.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(20);
/// How long after its first epoch a participant still counts as joining:
/// frames the others sent under earlier epochs arrive until they switch.
pub const JOIN_WINDOW: Duration = Duration::from_secs(2);
/// Limit on a clean leave.
pub const LEAVE_LIMIT: Duration = Duration::from_secs(3);

enum End {
    /// The orchestrator asked it to leave.
    Asked,
    /// The session ended on its own.
    Lost(String),
}

/// Runs `slot` from join to leave. Never panics on what the network does;
/// every wait is bounded or ends with the run's shutdown.
pub async fn run(shared: Arc<Shared>, slot: Arc<Slot>) {
    let url = shared.settings.target.url.clone();
    let options = shared.options.clone();
    let joined = admit(&shared, &slot, |token| async move {
        client_sdk::connect(&url, &token, options).await
    });
    let Some((room, mut events)) = joined.await else {
        return;
    };
    slot.set_phase(Phase::Live);
    debug!(identity = %slot.identity, "joined");
    let room = Arc::new(room);
    // Cancelled when this participant stops: ends its senders.
    let ended = shared.shutdown.child_token();
    let keyframe = Arc::new(AtomicBool::new(true));
    let mut tasks = JoinSet::new();
    if slot.publishes() {
        tasks.spawn(publisher::run(
            Arc::clone(&shared),
            Arc::clone(&slot),
            Arc::clone(&room),
            Arc::clone(&keyframe),
            ended.clone(),
        ));
    }
    // When this participant stops counting as joining (set at its first epoch).
    let mut joined_at: Option<tokio::time::Instant> = None;
    let mut join_marked = false;
    let end = loop {
        tokio::select! {
            event = events.recv() => match event {
                None => break End::Lost("the room's event stream ended".to_owned()),
                Some(RoomEvent::TrackSubscribed(media)) => {
                    tasks.spawn(receive(media, Arc::clone(&shared), Arc::clone(&slot)));
                }
                Some(RoomEvent::EpochChanged { .. }) => {
                    slot.epoch_switches.fetch_add(1, Ordering::Relaxed);
                    joined_at.get_or_insert_with(|| tokio::time::Instant::now() + JOIN_WINDOW);
                    if join_marked {
                        slot.epoch_changed(&shared.senders, Instant::now(), room.decrypt_failures());
                    }
                }
                Some(RoomEvent::RosterChanged(members)) => {
                    slot.set_roster(members.into_iter().map(|m| m.identity).collect());
                }
                Some(RoomEvent::RosterMismatch { .. }) => slot.note_roster_mismatch(),
                Some(RoomEvent::DecryptFailures(f)) => slot.set_failures(f),
                Some(RoomEvent::KeyframeNeeded { cid }) => {
                    if cid == publisher::VIDEO_CID {
                        keyframe.store(true, Ordering::Relaxed);
                    }
                }
                Some(RoomEvent::Closed(reason)) => {
                    break match reason {
                        CloseReason::Left => End::Asked,
                        other => End::Lost(format!("session closed: {other:?}")),
                    };
                }
                Some(_) => {}
            },
            () = sleep_until_some(joined_at), if !join_marked => {
                slot.mark_joined(room.decrypt_failures().total());
                join_marked = true;
            }
            () = sleep_until_some(slot.epoch_loss_deadline().map(Into::into)) => {
                slot.epoch_loss_tick(&shared.senders, Instant::now(), room.decrypt_failures());
            }
            () = slot.leave.cancelled() => break End::Asked,
            () = shared.shutdown.cancelled() => break End::Asked,
        }
        // Reap finished receivers so the set does not grow.
        while tasks.try_join_next().is_some() {}
    };
    slot.set_failures(room.decrypt_failures());
    ended.cancel();
    match end {
        End::Asked => {
            let _ = tokio::time::timeout(LEAVE_LIMIT, room.leave()).await;
            slot.set_phase(Phase::Left);
        }
        End::Lost(why) => {
            debug!(identity = %slot.identity, %why, "session lost");
            slot.note_error(why);
            slot.set_phase(Phase::Lost);
        }
    }
    tasks.abort_all();
}

/// Gets `slot` its token and runs `connect` with it within
/// [`CONNECT_LIMIT`], unless it is told to leave or the run ends first.
/// `None` when it did not get in: its phase and error say why.
pub(crate) async fn admit<T, E, F>(
    shared: &Shared,
    slot: &Slot,
    connect: impl FnOnce(String) -> F,
) -> Option<T>
where
    E: std::fmt::Display,
    F: Future<Output = Result<T, E>>,
{
    let room_name = shared.settings.room_name(slot.room);
    let token = match shared.tokens.token(&room_name, &slot.identity) {
        Ok(t) => t,
        Err(e) => {
            slot.note_error(format!("join failed: {e}"));
            slot.set_phase(Phase::Failed);
            return None;
        }
    };
    let joined = tokio::select! {
        r = tokio::time::timeout(CONNECT_LIMIT, connect(token)) => r,
        () = shared.shutdown.cancelled() => {
            slot.set_phase(Phase::Left);
            return None;
        }
        () = slot.leave.cancelled() => {
            slot.set_phase(Phase::Left);
            return None;
        }
    };
    match joined {
        Ok(Ok(joined)) => Some(joined),
        Ok(Err(e)) => {
            slot.note_error(format!("join failed: {e}"));
            slot.set_phase(Phase::Failed);
            None
        }
        Err(_) => {
            slot.note_error(format!(
                "join failed: no admission within {} s",
                CONNECT_LIMIT.as_secs()
            ));
            slot.set_phase(Phase::Failed);
            None
        }
    }
}

/// Accounts every decrypted frame of one remote track.
async fn receive(mut media: RemoteMedia, shared: Arc<Shared>, slot: Arc<Slot>) {
    while let Some(frame) = media.recv().await {
        let now = now_us();
        // A frame that is not ours is counted by the stats as malformed.
        let _ = lock(&slot.stats).on_frame(&frame.data, now);
        shared.frames_received.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sleeps until `at`, or forever when there is no `at` yet.
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
