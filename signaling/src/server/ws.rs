//! The WebSocket driver: one task per connection. It owns the socket and
//! the timers, feeds the [`Session`] state machine, and writes what it
//! says. Every socket write is bounded by the ping timeout.
//!
//! When the socket is lost without `leave` (closed, broken, or silent past
//! the ping timeout), the task outlives it: it holds the suspended
//! participant for the resume grace period, until a resume detaches it, a
//! kick removes it, or the grace expires and it leaves as `disconnected`.

use super::limits::Verdict;
use super::outbox::Signal;
use super::quota::{AddrKey, Slot};
use super::session::{Flow, Frame, Out, Session};
use super::state::Shared;
use crate::proto::{ErrorCode, LeaveReason};
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior, sleep_until, timeout};
use tracing::Instrument;

/// How long to wait for the client's close frame after sending ours.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The transport-level frame limit handed to the WebSocket codec. It is
/// above the protocol limit so that an oversized message can still be read
/// and answered with `error{too_large}`; frames beyond even this end the
/// connection at the transport level.
pub(crate) fn transport_limit(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_mul(4)
        .max(max_message_bytes.saturating_add(64 * 1024))
}

/// What one turn of the loop produced.
enum Step {
    Flow(Flow),
    /// The socket is closed or broken: nothing more can be written.
    PeerGone,
    /// Nothing arrived for the ping timeout.
    Silent,
}

struct Conn {
    socket: WebSocket,
    write_timeout: Duration,
}

impl Conn {
    async fn send(&mut self, msg: Message) -> bool {
        matches!(
            timeout(self.write_timeout, self.socket.send(msg)).await,
            Ok(Ok(()))
        )
    }

    async fn send_frame(&mut self, frame: Frame) -> bool {
        let text = match frame {
            Frame::Mls(entry) => entry.text.clone(),
            Frame::Msg(msg) => match serde_json::to_string(&msg) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot serialize server message");
                    return true;
                }
            },
        };
        self.send(Message::Text(text.into())).await
    }

    /// Sends our close frame and waits briefly for the peer's.
    async fn close(&mut self, code: u16) {
        let frame = CloseFrame {
            code,
            reason: "".into(),
        };
        if !self.send(Message::Close(Some(frame))).await {
            return;
        }
        let grace = CLOSE_GRACE.min(self.write_timeout);
        let _ = timeout(grace, async {
            while let Some(Ok(m)) = self.socket.recv().await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// Runs one connection to its end, then holds its participant through a
/// suspension if the connection was lost. `slot` is the connection's place
/// in the connection caps, given back when the socket closes.
pub(crate) async fn run(
    socket: WebSocket,
    shared: Arc<Shared>,
    url_room: Option<String>,
    addr: Option<AddrKey>,
    slot: Slot,
) {
    let span = tracing::info_span!("rtc", participant = tracing::field::Empty);
    async move {
        let _task = shared.task();
        let signal = Signal::new();
        let mut session = Session::new(shared.clone(), signal.clone(), url_room, addr);
        if let Some(since) = drive(socket, &shared, &mut session, &signal, slot).await {
            hold_suspended(&shared, &mut session, &signal, since).await;
        }
        session.end(LeaveReason::Disconnected);
        tracing::debug!("session over");
    }
    .instrument(span)
    .await;
}

/// Drives the open connection. Returns when the participant was suspended,
/// if the connection was lost and it was.
async fn drive(
    socket: WebSocket,
    shared: &Arc<Shared>,
    session: &mut Session,
    signal: &Signal,
    slot: Slot,
) -> Option<Instant> {
    let _guard = shared.connection();
    let _slot = slot;
    let cfg = shared.config.clone();
    let mut conn = Conn {
        socket,
        write_timeout: cfg.ping_timeout,
    };
    let mut shutdown = shared.shutdown_signal();

    let opened = Instant::now();
    let join_deadline = opened + cfg.join_timeout;
    let mut last_rx = opened;
    let mut ping = tokio::time::interval_at(opened + cfg.ping_interval, cfg.ping_interval);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut out = Out::default();
    let mut recorded = false;

    loop {
        let awaiting_join = !session.is_joined();
        let step = tokio::select! {
            k = signal.kicked() => Step::Flow(session.on_kick(k, &mut out)),
            () = shutting_down(&mut shutdown) => Step::Flow(session.on_shutdown(&mut out)),
            () = sleep_until(last_rx + cfg.ping_timeout) => Step::Silent,
            () = sleep_until(join_deadline), if awaiting_join => {
                Step::Flow(session.on_join_timeout(&mut out))
            }
            _ = ping.tick() => {
                if conn.send(Message::Ping(Bytes::new())).await {
                    Step::Flow(Flow::Continue)
                } else {
                    Step::PeerGone
                }
            }
            item = session.next_queued() => Step::Flow(session.on_queued(item, &mut out)),
            frame = conn.socket.recv() => match frame {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Step::PeerGone,
                Some(Ok(msg)) => {
                    let now = Instant::now();
                    last_rx = now;
                    Step::Flow(on_frame(session, &cfg, msg, now, &mut out))
                }
            },
        };
        if !recorded && let Some(pid) = session.participant_id() {
            tracing::Span::current().record("participant", pid);
            recorded = true;
        }
        let flow = match step {
            Step::PeerGone => return lost(session, "connection closed"),
            Step::Silent => {
                let suspended = lost(session, "ping timeout");
                conn.close(close_code::POLICY).await;
                return suspended;
            }
            Step::Flow(f) => f,
        };
        let mut ok = true;
        for f in out.drain() {
            if ok {
                ok = conn.send_frame(f).await;
            }
        }
        if !ok {
            return lost(session, "write failed");
        }
        if let Flow::Close(code) = flow {
            // Leave before the close handshake so others hear at once.
            session.end(LeaveReason::Disconnected);
            conn.close(code).await;
            return None;
        }
    }
}

/// The connection is gone without `leave`: suspend the participant, or
/// (resume off, shutting down, or already removed) end the session now.
fn lost(session: &mut Session, why: &'static str) -> Option<Instant> {
    let suspended = session.suspend();
    if !suspended {
        session.end(LeaveReason::Disconnected);
    }
    tracing::debug!(why, suspended, "connection lost");
    suspended.then(Instant::now)
}

/// Holds a suspended participant until a resume elsewhere, a removal, an
/// overflow, shutdown, or the end of the grace period.
async fn hold_suspended(shared: &Shared, session: &mut Session, signal: &Signal, since: Instant) {
    let mut shutdown = shared.shutdown_signal();
    tokio::select! {
        k = signal.kicked() => session.on_suspended_kick(k),
        () = shutting_down(&mut shutdown) => {
            session.end(LeaveReason::RoomClosed);
        }
        () = sleep_until(since + shared.config.resume_grace) => {
            if session.end(LeaveReason::Disconnected) {
                tracing::info!("resume grace expired");
            }
        }
    }
}

/// Resolves once shutdown is signalled (or its sender is gone).
async fn shutting_down(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// One inbound frame: size check, rate limit, then the state machine.
fn on_frame(
    session: &mut Session,
    cfg: &super::SignalingConfig,
    msg: Message,
    now: Instant,
    out: &mut Out,
) -> Flow {
    let (len, data) = match &msg {
        Message::Text(t) => (t.len(), true),
        Message::Binary(b) => (b.len(), true),
        _ => (0, false),
    };
    if len > cfg.max_message_bytes {
        session.reject(
            out,
            ErrorCode::TooLarge,
            format!(
                "message of {len} bytes exceeds the limit of {} bytes",
                cfg.max_message_bytes
            ),
        );
        return Flow::Close(close_code::SIZE);
    }
    match session.check_rate(now.into_std()) {
        Verdict::Allow => {}
        Verdict::Limited => {
            if data {
                session.reject(out, ErrorCode::RateLimited, "too many messages; slow down");
            }
            return Flow::Continue;
        }
        Verdict::Close => {
            session.reject(
                out,
                ErrorCode::RateLimited,
                "rate limit exceeded repeatedly; closing",
            );
            return Flow::Close(close_code::POLICY);
        }
    }
    match msg {
        Message::Text(t) => session.on_text(t.as_str(), out),
        Message::Binary(_) => {
            session.reject(
                out,
                ErrorCode::BadMessage,
                "binary frames are not part of the protocol",
            );
            Flow::Continue
        }
        // Pings are answered by the codec; pongs only prove liveness.
        _ => Flow::Continue,
    }
}
