//! An entry point for fuzzing the per-connection session state machine
//! (feature `fuzzing`; not a stable API).
//!
//! [`SessionHarness`] drives the real [`Session`]s of several connections,
//! the real room registry, outboxes and MLS delivery service, exactly as the
//! WebSocket driver (`ws.rs`) does, but without sockets or timers: each call
//! is one thing the driver can see (a text frame, a kick, a lost
//! connection, a media event, shutdown, the join timeout). The media plane
//! is replaced by the boundary itself: the harness keeps each participant's
//! event sender so the fuzzer can inject media events.

use super::config::SignalingConfig;
use super::outbox::Signal;
use super::session::{Flow, Frame, Out, Session};
use super::state::Shared;
use crate::media::{MediaRequest, MediaSink};
use crate::proto::LeaveReason;
use futures_util::FutureExt;
use sfu_core::{MediaCommand, MediaEvent};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The media boundary as the harness sees it: commands are accepted (or
/// refused when [`SessionHarness::set_media_refusing`] says so), and each
/// participant's event sender is kept for [`SessionHarness::media_event`].
#[derive(Default)]
struct Boundary {
    refuse: std::sync::atomic::AtomicBool,
    events: Mutex<HashMap<String, mpsc::Sender<MediaEvent>>>,
}

impl MediaSink for Boundary {
    fn command(&self, request: MediaRequest) -> bool {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        match request.command {
            MediaCommand::Join { participant, .. } => {
                if let Some(tx) = request.events {
                    events.insert(participant, tx);
                }
            }
            MediaCommand::Leave { participant } => {
                events.remove(&participant);
            }
            _ => {}
        }
        !self.refuse.load(std::sync::atomic::Ordering::Relaxed)
    }
}

struct Conn {
    session: Session,
    signal: Arc<Signal>,
    /// The driver stopped reading this connection (closed or lost).
    done: bool,
}

/// Several connections to one signaling server, driven one step at a time.
pub struct SessionHarness {
    rt: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    media: Arc<Boundary>,
    conns: Vec<Conn>,
    /// Every frame written, serialized, with its connection, in order.
    pub written: Vec<(usize, String)>,
}

impl std::fmt::Debug for SessionHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHarness")
            .field("conns", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl SessionHarness {
    /// A server with `config`, no connections yet.
    ///
    /// # Panics
    /// If a current-thread tokio runtime cannot be built.
    pub fn new(config: SignalingConfig) -> Self {
        // Timers on (the server arms some, e.g. the MLS founder timeout), on
        // real time: an input runs in microseconds, so none of them fires
        // and the outcome does not depend on the clock.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("current-thread runtime");
        let media = Arc::new(Boundary::default());
        let shared = Arc::new(Shared::new(config, media.clone()));
        Self {
            rt,
            shared,
            media,
            conns: Vec::new(),
            written: Vec::new(),
        }
    }

    /// Opens a connection (`/rtc?room=…` when `url_room` is set); returns
    /// its index.
    pub fn connect(&mut self, url_room: Option<String>) -> usize {
        let signal = Signal::new();
        // No client address: only the server-wide caps apply, as for a
        // server whose HTTP layer cannot tell one.
        let session = Session::new(self.shared.clone(), signal.clone(), url_room, None);
        self.conns.push(Conn {
            session,
            signal,
            done: false,
        });
        self.conns.len() - 1
    }

    /// Connections opened so far.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Whether connection `c` has joined and is still in its room.
    pub fn is_joined(&self, c: usize) -> bool {
        self.conns.get(c).is_some_and(|c| c.session.is_joined())
    }

    /// The participant id of connection `c`, once joined.
    pub fn participant_id(&self, c: usize) -> Option<String> {
        self.conns
            .get(c)?
            .session
            .participant_id()
            .map(str::to_string)
    }

    /// Makes the media boundary refuse (or accept) commands.
    pub fn set_media_refusing(&self, refuse: bool) {
        self.media
            .refuse
            .store(refuse, std::sync::atomic::Ordering::Relaxed);
    }

    /// One text frame on connection `c` (ignored once it is done).
    pub fn text(&mut self, c: usize, text: &str) {
        self.step(c, |s, out| s.on_text(text, out));
    }

    /// A media event for connection `c`'s participant, through the same
    /// per-participant channel the media plane uses.
    pub fn media_event(&mut self, c: usize, event: MediaEvent) {
        let Some(pid) = self.participant_id(c) else {
            return;
        };
        let tx = {
            let events = self.media.events.lock().unwrap_or_else(|e| e.into_inner());
            events.get(&pid).cloned()
        };
        if let Some(tx) = tx {
            let _ = tx.try_send(event);
        }
        self.pump();
    }

    /// Drops the media plane's event queue of connection `c`'s participant,
    /// as the plane does when the participant falls behind.
    pub fn media_gone(&mut self, c: usize) {
        if let Some(pid) = self.participant_id(c) {
            self.media
                .events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&pid);
        }
        self.pump();
    }

    /// Connection `c`'s socket is lost without `leave`.
    pub fn lose(&mut self, c: usize) {
        let Some(conn) = self.conns.get_mut(c).filter(|c| !c.done) else {
            return;
        };
        conn.done = true;
        if !conn.session.suspend() {
            conn.session.end(LeaveReason::Disconnected);
        }
        self.pump();
    }

    /// The resume grace of a lost connection `c` runs out.
    pub fn grace_expired(&mut self, c: usize) {
        if let Some(conn) = self.conns.get_mut(c).filter(|c| c.done) {
            conn.session.end(LeaveReason::Disconnected);
        }
        self.pump();
    }

    /// Connection `c` sent no join in time.
    pub fn join_timeout(&mut self, c: usize) {
        if self.conns.get(c).is_some_and(|c| !c.session.is_joined()) {
            self.step(c, |s, out| s.on_join_timeout(out));
        }
    }

    /// The server shuts down: every open session is told.
    pub fn shutdown(&mut self) {
        self.shared.shutdown();
        for c in 0..self.conns.len() {
            self.step(c, |s, out| s.on_shutdown(out));
        }
    }

    /// Runs spawned tasks and delivers everything queued (outbox items,
    /// kicks) to every open connection, as the driver's select loop does.
    pub fn pump(&mut self) {
        // A bounded number of rounds: every round either delivers something
        // or ends the loop, and outboxes are bounded.
        for _ in 0..64 {
            self.rt.block_on(async {
                for _ in 0..4 {
                    tokio::task::yield_now().await;
                }
            });
            let mut progressed = false;
            for c in 0..self.conns.len() {
                // Outboxes are bounded, so this ends.
                while self.deliver(c) {
                    progressed = true;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn deliver(&mut self, c: usize) -> bool {
        let conn = &mut self.conns[c];
        let mut out = Out::default();
        let flow = if conn.done {
            // A suspended participant's task only waits for kicks.
            if conn.session.participant_id().is_none() {
                return false;
            }
            return match conn.signal.kicked().now_or_never() {
                Some(k) => {
                    conn.session.on_suspended_kick(k);
                    true
                }
                None => false,
            };
        } else if let Some(k) = conn.signal.kicked().now_or_never() {
            conn.session.on_kick(k, &mut out)
        } else {
            let _guard = self.rt.enter();
            match conn.session.next_queued().now_or_never() {
                Some(item) => conn.session.on_queued(item, &mut out),
                None => return false,
            }
        };
        self.finish(c, flow, out);
        true
    }

    fn step(&mut self, c: usize, f: impl FnOnce(&mut Session, &mut Out) -> Flow) {
        let Some(conn) = self.conns.get_mut(c).filter(|c| !c.done) else {
            return;
        };
        let mut out = Out::default();
        let flow = {
            let _guard = self.rt.enter();
            f(&mut conn.session, &mut out)
        };
        self.finish(c, flow, out);
        self.pump();
    }

    fn finish(&mut self, c: usize, flow: Flow, mut out: Out) {
        for frame in out.drain() {
            let text = match frame {
                Frame::Mls(entry) => entry.text.clone(),
                Frame::Msg(msg) => serde_json::to_string(&msg).expect("server messages serialize"),
            };
            self.written.push((c, text));
        }
        if let Flow::Close(_) = flow {
            let conn = &mut self.conns[c];
            conn.session.end(LeaveReason::Disconnected);
            conn.done = true;
        }
    }
}

impl Drop for SessionHarness {
    fn drop(&mut self) {
        // Sessions leave their rooms on drop; that may spawn nothing, but
        // keep the runtime entered so it could.
        let _guard = self.rt.enter();
        self.conns.clear();
    }
}
