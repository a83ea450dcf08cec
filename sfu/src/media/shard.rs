//! One media shard: the loop that owns the socket and the sans-IO plane.
//!
//! Each turn of the loop does a bounded amount of work, in this order:
//! 1. one recvmmsg batch, fed to the plane with one clock reading;
//! 2. up to [`COMMANDS_PER_TURN`] signaling commands, or fewer once they
//!    took [`COMMAND_TIME_PER_TURN`];
//! 3. the plane's timeout, if due;
//! 4. everything the plane wants sent, in sendmmsg batches, and its events.
//!
//! It sleeps only once the socket is empty. A busy socket therefore cannot
//! starve signaling commands or the plane's timers, which a `select!` that
//! always found the socket ready did; and a burst of costly commands cannot
//! hold back media for more than about [`COMMAND_TIME_PER_TURN`] at a time.
//!
//! Negotiation (SDP offers, answers, candidates) is charged to each
//! participant's share of shard time (see `budget`); the loop beats a
//! [`Heartbeat`] every turn for the readiness check.

use super::budget::{NegotiationBudget, ShardTime, Verdict};
use super::heartbeat::Heartbeat;
use super::io_stats::{IoCounters, IoStats};
use super::recv::RecvBatch;
use super::send::SendQueue;
use super::socket::SocketSetup;
use crate::metrics::SharedStats;
use crate::shutdown::CancellationToken;
use sfu_core::{Input, MediaCommand, MediaEvent, MediaPlane, Output};
use signaling::media::{EventSender, MediaRequest};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{self, error::TryRecvError};

/// How often the shard publishes its counters for `/metrics`.
const STATS_EVERY: Duration = Duration::from_millis(250);
/// Signaling commands taken per turn of the loop. Commands are rare next to
/// datagrams; the bound only keeps a burst of joins from delaying media.
pub(super) const COMMANDS_PER_TURN: usize = 64;
/// Once the commands of a turn have taken this long, the rest wait for
/// the next turn, after the socket has been read again.
pub(super) const COMMAND_TIME_PER_TURN: Duration = Duration::from_millis(2);

/// Batch sizes and what the socket setup found.
#[derive(Debug, Clone, Copy)]
pub(super) struct ShardIo {
    /// Datagrams per recvmmsg, messages per sendmmsg.
    pub(super) batch: usize,
    /// Outgoing datagrams queued before a write.
    pub(super) send_queue: usize,
    /// Largest datagram the plane accepts.
    pub(super) max_datagram: usize,
    /// Buffer sizes and GSO.
    pub(super) setup: SocketSetup,
    /// Each participant's share of shard time for negotiation.
    pub(super) negotiation: NegotiationBudget,
}

/// A participant's session as the shard sees it.
struct Session {
    /// Its event channel, given with its join.
    events: EventSender,
    /// Its shard time left for negotiation.
    time: ShardTime,
}

pub(super) struct Shard {
    socket: UdpSocket,
    /// The advertised address. Datagrams are handed to the core as sent
    /// to it, not to the bound address: behind a 1:1 NAT (public IP set)
    /// the two differ, and ICE only accepts packets for its own candidate.
    candidate: SocketAddr,
    plane: MediaPlane,
    commands: mpsc::Receiver<MediaRequest>,
    /// Each participant's event channel and negotiation budget, from its
    /// join.
    sessions: HashMap<String, Session>,
    negotiation: NegotiationBudget,
    /// [`COMMAND_TIME_PER_TURN`]; tests that count commands per turn lift it.
    command_time: Duration,
    heartbeat: Heartbeat,
    stats: SharedStats,
    io_stats: IoStats,
    io: IoCounters,
    recv: RecvBatch,
    send: SendQueue,
    /// When the plane next wants `Input::Timeout`.
    deadline: Instant,
    last_stats: Instant,
}

/// What one receive attempt found.
enum Received {
    /// Some datagrams; there may be more.
    Some,
    /// The socket is empty (or failed): wait before reading again.
    Drained,
}

impl Shard {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        socket: UdpSocket,
        candidate: SocketAddr,
        plane: MediaPlane,
        commands: mpsc::Receiver<MediaRequest>,
        stats: SharedStats,
        io_stats: IoStats,
        cfg: ShardIo,
        heartbeat: Heartbeat,
        now: Instant,
    ) -> Self {
        let io = IoCounters {
            gso_enabled: u64::from(cfg.setup.gso),
            recv_buffer_bytes: cfg.setup.recv_buffer as u64,
            send_buffer_bytes: cfg.setup.send_buffer as u64,
            ..IoCounters::default()
        };
        io_stats.publish(&io);
        Self {
            socket,
            candidate,
            plane,
            commands,
            sessions: HashMap::new(),
            negotiation: cfg.negotiation,
            command_time: COMMAND_TIME_PER_TURN,
            heartbeat,
            stats,
            io_stats,
            io,
            recv: RecvBatch::new(cfg.batch, cfg.max_datagram),
            send: SendQueue::new(cfg.batch, cfg.send_queue, cfg.setup.gso),
            deadline: now,
            last_stats: now,
        }
    }

    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            // One clock reading per turn: every datagram of the batch, and
            // what it causes, happen "now" as far as the plane knows.
            let now = Instant::now();
            self.heartbeat.beat(now);
            match self.turn(now).await {
                None => break,
                Some(Received::Some) => continue,
                Some(Received::Drained) => {}
            }
            // Wake at least every STATS_EVERY so /metrics stays fresh on an
            // idle shard.
            let wake = self.deadline.min(now + STATS_EVERY);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.command(Instant::now(), cmd),
                    None => break,
                },
                r = self.socket.readable() => {
                    if let Err(e) = r {
                        tracing::trace!(error = %e, "media socket readiness error");
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {}
            }
        }
        self.publish_stats(Instant::now(), true);
        let c = self.io;
        tracing::info!(
            recv_syscalls = c.recv_syscalls,
            recv_datagrams = c.recv_datagrams,
            send_syscalls = c.send_syscalls,
            send_datagrams = c.send_datagrams,
            gso_segments = c.gso_segments,
            send_dropped = c.send_dropped,
            "media shard stopped"
        );
    }

    /// One turn of the loop (see the module docs). `None` once signaling
    /// has gone away.
    async fn turn(&mut self, now: Instant) -> Option<Received> {
        let received = self.receive(now);
        if !self.take_commands(now) {
            return None;
        }
        if now >= self.deadline {
            self.plane.handle_input(now, Input::Timeout);
        }
        self.deadline = self.flush(now).await;
        self.publish_stats(now, false);
        Some(received)
    }

    /// One recvmmsg; feeds what it read to the plane.
    fn receive(&mut self, now: Instant) -> Received {
        let fd = self.socket.as_raw_fd();
        let (recv, io) = (&mut self.recv, &mut self.io);
        let result = self.socket.try_io(Interest::READABLE, || {
            io.recv_syscalls += 1;
            recv.recv(fd)
        });
        match result {
            Ok(n) => {
                self.io.recv_datagrams += n as u64;
                if n == self.recv.batch() {
                    self.io.recv_full_batches += 1;
                }
                for (source, contents) in self.recv.iter() {
                    self.plane.handle_input(
                        now,
                        Input::Datagram {
                            source,
                            destination: self.candidate,
                            contents,
                        },
                    );
                }
                Received::Some
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Also when tokio did not know the socket ready and made no
                // call; the wait then learns it.
                self.io.recv_empty += 1;
                Received::Drained
            }
            // ICMP errors from a gone peer can surface here; nothing to do
            // but not spin on them.
            Err(e) => {
                self.io.recv_errors += 1;
                tracing::trace!(error = %e, "media recv error");
                Received::Drained
            }
        }
    }

    /// Handles up to [`COMMANDS_PER_TURN`] queued commands, and no more
    /// once they took [`COMMAND_TIME_PER_TURN`]. False once signaling has
    /// gone away.
    fn take_commands(&mut self, now: Instant) -> bool {
        let started = Instant::now();
        for _ in 0..COMMANDS_PER_TURN {
            match self.commands.try_recv() {
                Ok(cmd) => self.command(now, cmd),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
            if started.elapsed() >= self.command_time {
                break;
            }
        }
        true
    }

    /// Carries out everything the plane has queued; returns its next
    /// deadline.
    async fn flush(&mut self, now: Instant) -> Instant {
        loop {
            match self.plane.poll_output(now) {
                Output::Transmit(t) => {
                    self.send.push(t);
                    if self.send.is_full() {
                        let plane = &mut self.plane;
                        self.send
                            .flush(&self.socket, &mut self.io, |b| plane.recycle(b))
                            .await;
                    }
                }
                Output::Event { participant, event } => self.deliver(now, participant, event),
                Output::Timeout(at) => {
                    if !self.send.is_empty() {
                        let plane = &mut self.plane;
                        self.send
                            .flush(&self.socket, &mut self.io, |b| plane.recycle(b))
                            .await;
                    }
                    return at;
                }
            }
        }
    }

    fn deliver(&mut self, now: Instant, participant: String, event: MediaEvent) {
        let Some(session) = self.sessions.get(&participant) else {
            return;
        };
        if session.events.try_send(event).is_err() {
            // The session is gone or cannot keep up: drop its queue, which
            // signaling sees as the media plane closing on it, and free its
            // media state.
            tracing::warn!(%participant, "participant event queue full or closed; removing");
            self.sessions.remove(&participant);
            self.plane
                .handle_input(now, Input::Command(MediaCommand::Leave { participant }));
        }
    }

    /// Hands a signaling request to the plane, keeping the participant's
    /// event channel on a join and dropping it on a leave. Negotiation is
    /// timed and charged to the participant, or refused while its share of
    /// shard time is used up; an answer the server waits for is neither.
    fn command(&mut self, now: Instant, request: MediaRequest) {
        let MediaRequest { command, events } = request;
        // Deliberately without a wildcard arm: a new command must be looked
        // at here, in case it carries or ends a participant's session or
        // costs shard time, and the build fails until it is.
        let negotiation = match &command {
            MediaCommand::Join { participant, .. } => {
                match events {
                    Some(events) => {
                        let time = ShardTime::new(&self.negotiation, now);
                        self.sessions
                            .insert(participant.clone(), Session { events, time });
                    }
                    None => tracing::warn!(%participant, "join without an event channel"),
                }
                false
            }
            MediaCommand::Leave { participant } => {
                self.sessions.remove(participant);
                false
            }
            MediaCommand::PublisherOffer { .. }
            | MediaCommand::SubscriberAnswer { .. }
            | MediaCommand::Candidate { .. } => true,
            MediaCommand::Publish { .. }
            | MediaCommand::Unpublish { .. }
            | MediaCommand::Subscribe { .. }
            | MediaCommand::Unsubscribe { .. }
            | MediaCommand::TrackSettings { .. } => false,
        };
        if !negotiation {
            self.plane.handle_input(now, Input::Command(command));
            return;
        }
        let budget = self.negotiation;
        let Some(session) = self.sessions.get_mut(command.participant()) else {
            // Not (or no longer) here: the plane drops it as well.
            return;
        };
        // An answer to the server's own offer is neither refused nor charged:
        // refusing it would leave the subscriber without its new m-lines, and
        // the server, not the client, decides how many offers there are (each
        // is caused by a join, leave or publish charged where it came from).
        let owed = matches!(&command, MediaCommand::SubscriberAnswer { participant, .. }
            if self.plane.awaits_subscriber_answer(participant));
        let verdict = if owed {
            Verdict::Allow
        } else {
            session.time.ask(&budget, now)
        };
        if let Verdict::Refuse { first } = verdict {
            self.io.negotiations_limited += 1;
            let participant = command.participant().to_string();
            if first {
                tracing::warn!(%participant, "negotiation refused: shard time share used up");
            } else {
                tracing::debug!(%participant, "negotiation refused: shard time share used up");
            }
            let message = "too much negotiation; slow down".to_string();
            // Through the plane, behind the answers to earlier commands.
            self.plane
                .push_event(participant, MediaEvent::RateLimited { message });
            return;
        }
        let participant = command.participant().to_string();
        let started = Instant::now();
        self.plane.handle_input(now, Input::Command(command));
        let cost = started.elapsed();
        self.io.negotiation_micros += u64::try_from(cost.as_micros()).unwrap_or(u64::MAX);
        if let Some(session) = self.sessions.get_mut(&participant).filter(|_| !owed) {
            session.time.charge(cost);
        }
    }

    fn publish_stats(&mut self, now: Instant, force: bool) {
        if !force && now.saturating_duration_since(self.last_stats) < STATS_EVERY {
            return;
        }
        self.last_stats = now;
        let snapshot = self.plane.stats();
        if let Ok(mut s) = self.stats.lock() {
            *s = snapshot;
        }
        self.io.gso_enabled = u64::from(self.send.gso());
        self.io_stats.publish(&self.io);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GsoMode;
    use crate::metrics::shared_stats;
    use sfu_core::MediaConfig;

    /// A shard on a socket already holding `backlog` junk datagrams, with
    /// `commands` queued, and signaling's end of the command queue.
    async fn busy_shard(
        backlog: usize,
        commands: Vec<MediaRequest>,
    ) -> (Shard, mpsc::Sender<MediaRequest>) {
        budgeted_shard(backlog, commands, NegotiationBudget::default()).await
    }

    /// [`busy_shard`] with a negotiation budget of its own.
    async fn budgeted_shard(
        backlog: usize,
        commands: Vec<MediaRequest>,
        negotiation: NegotiationBudget,
    ) -> (Shard, mpsc::Sender<MediaRequest>) {
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        std_socket.set_nonblocking(true).expect("nonblocking");
        let setup = super::super::socket::configure(&std_socket, 1 << 20, GsoMode::Auto);
        let addr = std_socket.local_addr().expect("addr");
        let flood = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        for _ in 0..backlog {
            flood.send_to(&[0xff; 64], addr).expect("send");
        }
        let (tx, rx) = mpsc::channel(256);
        for c in commands {
            tx.try_send(c).expect("queued");
        }
        let now = Instant::now();
        let cfg = ShardIo {
            batch: 32,
            send_queue: 256,
            max_datagram: 2048,
            setup,
            negotiation,
        };
        let shard = Shard::new(
            UdpSocket::from_std(std_socket).expect("register"),
            addr,
            MediaPlane::new(MediaConfig::new(addr), now),
            rx,
            shared_stats(),
            IoStats::new(),
            cfg,
            Heartbeat::new(now),
            now,
        );
        if backlog > 0 {
            // Let tokio learn that the socket is readable, as the loop's
            // wait would.
            shard.socket.readable().await.expect("readable");
        }
        (shard, tx)
    }

    /// The starvation fix: a turn that finds the socket busy still handles
    /// signaling commands, and the next turn reads on without waiting.
    #[tokio::test]
    async fn a_busy_socket_does_not_hold_back_commands() {
        let (events, mut rx) = mpsc::channel(8);
        let commands = vec![
            MediaRequest::join(
                MediaCommand::Join {
                    participant: "p".into(),
                    room: "r".into(),
                    can_publish: false,
                    auto_subscribe: false,
                },
                events,
            ),
            MediaCommand::PublisherOffer {
                participant: "p".into(),
                sdp: "v=0".into(),
            }
            .into(),
        ];
        let (mut shard, _signaling) = busy_shard(200, commands).await;
        shard.command_time = Duration::MAX;
        let turn = shard.turn(Instant::now()).await;
        assert!(matches!(turn, Some(Received::Some)), "more to read");
        assert_eq!(shard.io.recv_datagrams, 32, "one batch read");
        match rx.try_recv() {
            Ok(MediaEvent::Error { message }) => {
                assert!(message.contains("not allowed to publish"), "{message}")
            }
            other => panic!("command not handled in the busy turn: {other:?}"),
        }
        assert_eq!(shard.plane.stats().participants, 1);

        // The rest drains in whole batches, then the socket reads empty.
        let mut turns = 1;
        while let Some(Received::Some) = shard.turn(Instant::now()).await {
            turns += 1;
        }
        assert_eq!(shard.io.recv_datagrams, 200);
        assert_eq!(turns, 7, "ceil(200 / 32)");
        assert_eq!(shard.io.recv_full_batches, 6);
        assert_eq!(shard.plane.stats().datagrams_in, 200);
    }

    /// At most COMMANDS_PER_TURN commands per turn, the rest next turn.
    #[tokio::test]
    async fn commands_per_turn_are_bounded() {
        let n = COMMANDS_PER_TURN + 5;
        let (events, _rx) = mpsc::channel(8);
        let commands = (0..n)
            .map(|i| {
                let join = MediaCommand::Join {
                    participant: format!("p{i}"),
                    room: "r".into(),
                    can_publish: true,
                    auto_subscribe: false,
                };
                MediaRequest::join(join, events.clone())
            })
            .collect();
        let (mut shard, _signaling) = busy_shard(0, commands).await;
        // Only the count bounds this turn, however slow the machine.
        shard.command_time = Duration::MAX;
        shard.turn(Instant::now()).await;
        assert_eq!(shard.plane.stats().participants, COMMANDS_PER_TURN as u64);
        shard.turn(Instant::now()).await;
        assert_eq!(shard.plane.stats().participants, n as u64);
    }

    /// A participant that has used up its share of shard time gets
    /// `rate_limited` for its next offer, at no cost; the refusal is
    /// counted. Others keep their own share.
    #[tokio::test]
    async fn negotiation_past_the_share_is_refused() {
        let (events, mut rx) = mpsc::channel(16);
        let (other_events, mut other_rx) = mpsc::channel(16);
        let join = |who: &str, events| {
            let join = MediaCommand::Join {
                participant: who.into(),
                room: "r".into(),
                can_publish: true,
                auto_subscribe: false,
            };
            MediaRequest::join(join, events)
        };
        let offer = |who: &str| -> MediaRequest {
            MediaCommand::PublisherOffer {
                participant: who.into(),
                sdp: testkit::sdp::offer(2, 1, 0).into(),
            }
            .into()
        };
        // One microsecond, never refilled: any applied offer costs more.
        let budget = NegotiationBudget {
            per_second: Duration::ZERO,
            burst: Duration::from_micros(1),
        };
        let commands = vec![
            join("p", events),
            join("q", other_events),
            offer("p"),
            offer("p"),
            offer("q"),
        ];
        let (mut shard, _signaling) = budgeted_shard(0, commands, budget).await;
        shard.command_time = Duration::MAX;
        shard.turn(Instant::now()).await;
        let first = rx.try_recv();
        assert!(
            matches!(first, Ok(MediaEvent::PublisherAnswer { .. })),
            "{first:?}"
        );
        match rx.try_recv() {
            Ok(MediaEvent::RateLimited { message }) => assert!(message.contains("slow down")),
            other => panic!("expected rate_limited, got {other:?}"),
        }
        assert!(matches!(
            other_rx.try_recv(),
            Ok(MediaEvent::PublisherAnswer { .. })
        ));
        assert_eq!(shard.io.negotiations_limited, 1);
        assert!(shard.io.negotiation_micros > 0);
    }

    /// An answer to the server's own subscriber offer goes through with the
    /// participant's share of shard time used up (refused, the subscriber
    /// would never get its m-line); an answer nobody waits for is refused.
    #[tokio::test]
    async fn an_answer_the_server_waits_for_is_never_refused() {
        let (pub_events, _pub_rx) = mpsc::channel(16);
        let (sub_events, mut rx) = mpsc::channel(16);
        let join = |who: &str, can_publish, auto_subscribe, events| {
            let join = MediaCommand::Join {
                participant: who.into(),
                room: "r".into(),
                can_publish,
                auto_subscribe,
            };
            MediaRequest::join(join, events)
        };
        // No share at all: every negotiation step the budget rules is refused.
        let budget = NegotiationBudget {
            per_second: Duration::ZERO,
            burst: Duration::ZERO,
        };
        let commands = vec![
            join("pub", true, false, pub_events),
            join("sub", false, true, sub_events),
            MediaCommand::Publish {
                participant: "pub".into(),
                track_id: "t".into(),
                mid: "0".into(),
                kind: sfu_core::TrackKind::Video,
                simulcast: vec![],
                layer_sizes: vec![],
            }
            .into(),
        ];
        let (mut shard, signaling) = budgeted_shard(0, commands, budget).await;
        shard.command_time = Duration::MAX;
        shard.turn(Instant::now()).await;
        let offer = std::iter::from_fn(|| rx.try_recv().ok())
            .find_map(|e| match e {
                MediaEvent::SubscriberOffer { sdp } => Some(sdp),
                _ => None,
            })
            .expect("the server offers the subscriber its track");
        assert!(shard.plane.awaits_subscriber_answer("sub"));

        let mut peer = testkit::peer::LeanPeer::new("127.0.0.1:9".parse().unwrap(), Instant::now());
        let answer = peer.accept_offer(&offer).expect("answer");
        for _ in 0..2 {
            let command = MediaCommand::SubscriberAnswer {
                participant: "sub".into(),
                sdp: answer.clone().into(),
            };
            signaling.try_send(command.into()).expect("queued");
        }
        shard.turn(Instant::now()).await;
        assert!(
            !shard.plane.awaits_subscriber_answer("sub"),
            "answer accepted"
        );
        let events: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert!(
            matches!(events.as_slice(), [MediaEvent::RateLimited { .. }]),
            "only the second, unasked-for answer is refused: {events:?}"
        );
        assert_eq!(shard.io.negotiations_limited, 1);
    }
}
