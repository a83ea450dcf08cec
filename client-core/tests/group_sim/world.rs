//! A room on virtual time: group-key coordinators (each with its own real
//! MLS client), the server's real delivery log, and the signaling roster
//! events between them. No sockets, no sleeps.
//!
//! In the style of quinn-proto's test `Pair`: [`World::step`] moves the
//! clock to the next thing anyone has to do (a message arriving, or a
//! coordinator's next tick) and does it. Every message takes [`LATENCY`]
//! one way. The server side is the signaling server's real delivery
//! service (which validates every KeyPackage, GroupInfo and commit against
//! the group's public state and the roster), wired as its room registry
//! wires it: a participant alone in the room founds the group, the
//! earliest-joined remaining participant founds a reset one, a lost
//! connection queues what the member misses until it resumes, and a resume
//! replays the log after the last entry the member saw (or reports a gap).
//!
//! A dishonest server is played by [`World::tamper`] (rewrite or drop what
//! one member receives) and [`World::inject`].
//!
//! Every member also holds its room's [`MediaKeys`], fed as the SDK shells
//! feed them (identities from the signaling roster, each epoch's key and
//! members from the coordinator), so the media plane in `media.rs` can send
//! and receive real SFrame frames on the same clock. A member may be made
//! slow ([`World::set_lag`]): what the server sends it arrives later, in
//! order, as for a client whose CPU is behind.

mod server;

use crate::media::{Frame, Received};
use client_core::{Coordinator, CoordinatorConfig, MediaKeys, Output, Pacing};
use e2ee::frame::{DecryptConfig, Suite};
use e2ee::group::{MlsClient, MlsConfig};
use signaling::proto::{
    ClientMessage, ErrorCode, LeaveReason, ParticipantInfo, RoomState, ServerMessage,
};
use signaling::server::delivery_log::{DeliveryLog, Gap, LogLimits, Logged};

/// Why the server refused a message, as the simulation records it.
pub(crate) type Refusal = String;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One-way delay of every message.
pub(crate) const LATENCY: Duration = Duration::from_millis(10);

/// Steps in a row that may happen without the clock moving before the
/// world is declared stuck (a coordinator asking to be woken in the past
/// again and again would spin a real shell).
const MAX_STALLED_STEPS: usize = 10_000;

/// The coordinator settings tests start from.
pub(crate) fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        takeover_delay: Duration::from_secs(2),
        mismatch_grace: Duration::from_secs(5),
        self_update: None,
        sframe_nk: 16,
        mls: MlsConfig::default(),
        pacing: Pacing::default(),
    }
}

/// What a member's connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// Messages flow both ways.
    Up,
    /// The connection is lost: the server queues what the member misses,
    /// and what the member sends is lost.
    Down,
    /// The member's process froze: it does nothing at all, while the server
    /// still counts it present.
    Frozen,
    /// It left the room.
    Gone,
}

/// One epoch as a member saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Epoch {
    pub(crate) epoch: u64,
    pub(crate) code: String,
    pub(crate) base_key: Vec<u8>,
    /// Identities, by leaf (one shared list per distinct roster: a room of
    /// hundreds going through hundreds of epochs would not fit otherwise).
    pub(crate) members: Arc<Vec<String>>,
}

/// A hook that rewrites what one member receives (any number of messages
/// for one, including none).
pub(crate) type Tamper = Box<dyn FnMut(ServerMessage) -> Vec<ServerMessage>>;

/// One room member: its coordinator, and what it told its app.
pub(crate) struct Node {
    pub(crate) identity: String,
    pub(crate) pid: String,
    coordinator: Coordinator,
    pub(crate) link: Link,
    /// What the server queued while the connection was down.
    outbox: Vec<ServerMessage>,
    /// The last log entry this member received (what a resume asks after).
    seen_seq: u64,
    joined_seq: u64,
    tamper: Option<Tamper>,
    pub(crate) epochs: Vec<Epoch>,
    pub(crate) chat: Vec<(String, String)>,
    pub(crate) mismatches: Vec<(Vec<String>, Vec<String>)>,
    pub(crate) desyncs: usize,
    pub(crate) in_group: bool,
    /// Its SFrame keys, fed as an SDK shell feeds them.
    pub(crate) keys: MediaKeys<Frame>,
    /// Frames its keys opened and attributed, in order.
    pub(crate) received: Vec<Received>,
    /// Extra delay of everything the server sends it.
    lag: Duration,
}

impl Node {
    /// The last epoch it entered, if it is in the group.
    pub(crate) fn epoch(&self) -> Option<&Epoch> {
        self.epochs.last().filter(|_| self.in_group)
    }
}

/// A commit the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitSeen {
    pub(crate) at: Instant,
    pub(crate) from: String,
    pub(crate) epoch: u64,
    pub(crate) accepted: bool,
    pub(crate) added: Vec<String>,
    pub(crate) removed: Vec<String>,
}

enum Packet {
    /// Client to server.
    Up(usize, ClientMessage),
    /// Server to client.
    Down(usize, ServerMessage),
}

/// The room, the wire and the clock.
pub(crate) struct World {
    pub(crate) start: Instant,
    pub(crate) now: Instant,
    log: DeliveryLog,
    pub(crate) nodes: Vec<Node>,
    /// In flight, by arrival time then sending order.
    wire: BTreeMap<(Instant, u64), Packet>,
    sent: u64,
    /// Steps in a row at one instant.
    stalled: usize,
    pub(crate) commits: Vec<CommitSeen>,
    /// KeyPackages, GroupInfos and commits the server refused as invalid.
    pub(crate) refused: Vec<Refusal>,
    /// Member lists seen so far, by epoch.
    rosters: HashMap<u64, Vec<Arc<Vec<String>>>>,
    /// When each awake coordinator wants its next tick (kept up to date
    /// after everything that can change it, so that a step does not ask
    /// hundreds of members).
    ticks: BTreeSet<(Instant, usize)>,
    tick_of: Vec<Option<Instant>>,
    /// Members whose coordinator or keys did something since the media
    /// plane last looked ([`World::take_touched`]).
    touched: Vec<usize>,
}

impl World {
    pub(crate) fn new() -> Self {
        Self::with_log(LogLimits {
            max_entries: 100_000,
            max_bytes: 1 << 30,
        })
    }

    pub(crate) fn with_log(limits: LogLimits) -> Self {
        let now = Instant::now();
        Self {
            start: now,
            now,
            log: DeliveryLog::new(limits),
            nodes: Vec::new(),
            wire: BTreeMap::new(),
            sent: 0,
            stalled: 0,
            commits: Vec::new(),
            refused: Vec::new(),
            rosters: HashMap::new(),
            ticks: BTreeSet::new(),
            tick_of: Vec::new(),
            touched: Vec::new(),
        }
    }

    /// Virtual time since the start.
    pub(crate) fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// `identity` joins with the default settings; returns its node.
    pub(crate) fn join(&mut self, identity: &str) -> usize {
        self.join_with(identity, config())
    }

    /// `identity` joins with `cfg`, as the registry's join does: an earlier
    /// session of the same identity is replaced, a participant alone in the
    /// room founds the group, the others hear of the newcomer.
    pub(crate) fn join_with(&mut self, identity: &str, cfg: CoordinatorConfig) -> usize {
        let old = self.present().find(|&i| self.nodes[i].identity == identity);
        if let Some(old) = old {
            self.leave(old, LeaveReason::Replaced);
        }
        let pid = format!("PA_{identity}_{}", self.nodes.len());
        let info = self.log.join(&pid, identity);
        let mut others: Vec<(String, String)> = self
            .present()
            .map(|i| (self.nodes[i].pid.clone(), self.nodes[i].identity.clone()))
            .collect();
        others.sort();
        let joined = ServerMessage::ParticipantJoined {
            participant: participant(&pid, identity),
        };
        self.broadcast(&joined);
        let mls = MlsClient::new(identity, cfg.mls.clone()).expect("MLS client");
        // As the shells do on `joined`: the roster names every publisher
        // present, and we are one of them.
        let mut keys = MediaKeys::new(Suite::default(), DecryptConfig::default());
        keys.learn_identity(&pid, identity);
        for (other, id) in &others {
            keys.learn_identity(other, id);
        }
        let coordinator = Coordinator::new(cfg, mls, &pid, others, &info, self.now);
        self.nodes.push(Node {
            identity: identity.to_owned(),
            pid,
            coordinator,
            link: Link::Up,
            outbox: Vec::new(),
            seen_seq: info.seq,
            joined_seq: info.seq,
            tamper: None,
            epochs: Vec::new(),
            chat: Vec::new(),
            mismatches: Vec::new(),
            desyncs: 0,
            in_group: false,
            keys,
            received: Vec::new(),
            lag: Duration::ZERO,
        });
        let node = self.nodes.len() - 1;
        self.drain(node);
        node
    }

    /// From now on, what the server sends `node` arrives `lag` later.
    pub(crate) fn set_lag(&mut self, node: usize, lag: Duration) {
        self.nodes[node].lag = lag;
    }

    /// Moves the frames `node`'s keys opened to its `received` list.
    pub(crate) fn collect_frames(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        while let Some(f) = n.keys.poll_frame() {
            n.received.push(Received {
                id: f.ctx.id,
                identity: f.identity.to_string(),
                epoch: f.epoch,
            });
        }
    }

    /// `node` leaves the room (or the server removes it): the others hear
    /// of it, and if no group member is left the earliest-joined remaining
    /// participant founds a new group.
    pub(crate) fn leave(&mut self, node: usize, reason: LeaveReason) {
        self.set_link(node, Link::Gone);
        let pid = self.nodes[node].pid.clone();
        self.broadcast(&ServerMessage::ParticipantLeft {
            participant_id: pid.clone(),
            reason,
        });
        if let Some(reset) = self.log.departed(&pid) {
            self.broadcast_logged(&reset);
        }
    }

    /// `node`'s connection breaks: what was on the wire to and from it is
    /// lost, and the server queues what follows until it resumes.
    pub(crate) fn disconnect(&mut self, node: usize) {
        self.set_link(node, Link::Down);
        self.wire.retain(|_, p| match p {
            Packet::Up(n, _) | Packet::Down(n, _) => *n != node,
        });
    }

    /// `node`'s process freezes: it neither reads, nor sends, nor ticks.
    pub(crate) fn freeze(&mut self, node: usize) {
        self.set_link(node, Link::Frozen);
    }

    /// `node` resumes its session on a new connection: `resumed`, then the
    /// log after the last entry it saw (or a gap error), then what the
    /// server queued meanwhile.
    pub(crate) fn resume(&mut self, node: usize) {
        self.set_link(node, Link::Up);
        let n = &mut self.nodes[node];
        let pid = n.pid.clone();
        let from = n.seen_seq.max(n.joined_seq);
        let queued = std::mem::take(&mut n.outbox);
        let replay = self.log.replay_after(from);
        let others: Vec<ParticipantInfo> = self
            .present()
            .filter(|&i| i != node)
            .map(|i| participant(&self.nodes[i].pid, &self.nodes[i].identity))
            .collect();
        let room: RoomState =
            serde_json::from_value(serde_json::json!({"room": "sim", "participants": others}))
                .expect("a room state");
        self.send_down(
            node,
            ServerMessage::Resumed {
                participant_id: pid.clone(),
                room,
                mls: self.log.info(false),
            },
        );
        match &replay {
            Ok(entries) => {
                for e in entries {
                    self.send_down(node, parse(e));
                }
            }
            Err(Gap) => self.send_down(
                node,
                ServerMessage::Error {
                    code: ErrorCode::MlsGap,
                    message: "the log no longer holds what you missed".into(),
                },
            ),
        }
        for m in queued {
            self.send_down(node, m);
        }
        if replay.is_err()
            && let Some(reset) = self.log.lost_state(&pid)
        {
            self.broadcast_logged(&reset);
        }
    }

    /// A compromised server puts a participant of its own making into its
    /// roster with KeyPackage `key_package` (base64), announcing it to
    /// nobody: its delivery service then takes a commit that adds it.
    pub(crate) fn server_adds_ghost(&mut self, pid: &str, identity: &str, key_package: String) {
        self.log.join(pid, identity);
        let entries = self
            .log
            .key_package(pid, key_package)
            .expect("a valid KeyPackage");
        assert_eq!(entries.len(), 1, "no reset");
    }

    /// The compromised server drops its ghost from its roster, silently.
    pub(crate) fn server_forgets(&mut self, pid: &str) {
        assert!(self.log.departed(pid).is_none(), "no reset");
    }

    /// From now on, everything the server sends `node` passes through `f`.
    pub(crate) fn tamper(&mut self, node: usize, f: Tamper) {
        self.nodes[node].tamper = Some(f);
    }

    /// Puts a message of the server's making on the wire to `node`.
    pub(crate) fn inject(&mut self, node: usize, msg: ServerMessage) {
        self.send_down(node, msg);
    }

    /// The last log entry `node` received.
    pub(crate) fn seen_seq(&self, node: usize) -> u64 {
        self.nodes[node].seen_seq
    }

    /// Queues a chat message at `node`.
    pub(crate) fn chat(&mut self, node: usize, text: String) {
        let now = self.now;
        self.nodes[node].coordinator.send_chat(now, text);
        self.drain(node);
    }

    /// Participants in the room (including frozen and disconnected ones).
    pub(crate) fn present(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].link != Link::Gone)
    }

    /// Whether every node in `nodes` is in the group at one epoch with the
    /// same code and exactly `identities` as members.
    pub(crate) fn agree(&self, nodes: &[usize], identities: &[&str]) -> bool {
        let mut want: Vec<&str> = identities.to_vec();
        want.sort_unstable();
        let Some(first) = self.nodes[nodes[0]].epoch() else {
            return false;
        };
        nodes.iter().all(|&i| {
            self.nodes[i].epoch().is_some_and(|e| {
                let mut got: Vec<&str> = e.members.iter().map(String::as_str).collect();
                got.sort_unstable();
                e.epoch == first.epoch && e.code == first.code && got == want
            })
        })
    }

    /// Steps until `done` holds; panics after `limit` of virtual time.
    pub(crate) fn run_until(&mut self, what: &str, limit: Duration, done: impl Fn(&World) -> bool) {
        let deadline = self.now + limit;
        while !done(self) {
            assert!(
                self.step(deadline),
                "{what}: not reached after {limit:?} of virtual time (at {:?})",
                self.elapsed()
            );
        }
    }

    /// Steps through `d` of virtual time.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        while self.step(deadline) {}
    }

    /// Does the next thing due at or before `deadline`; `false` (with the
    /// clock at `deadline`) if there is none.
    pub(crate) fn step(&mut self, deadline: Instant) -> bool {
        let next_packet = self.wire.keys().next().map(|(at, _)| *at);
        let next_tick = self.ticks.first().map(|(at, _)| *at);
        let next = [next_packet, next_tick].into_iter().flatten().min();
        let Some(next) = next.filter(|at| *at <= deadline) else {
            self.now = self.now.max(deadline);
            return false;
        };
        if next <= self.now {
            self.stalled += 1;
            assert!(
                self.stalled < MAX_STALLED_STEPS,
                "no progress: something is due at {:?} again and again",
                next - self.start
            );
        } else {
            self.stalled = 0;
            self.now = next;
        }
        let now = self.now;
        while let Some(entry) = self.wire.first_entry() {
            if entry.key().0 > now {
                break;
            }
            match entry.remove() {
                Packet::Up(node, msg) => self.at_server(node, msg),
                Packet::Down(node, msg) => self.at_client(node, msg),
            }
        }
        for i in due(&self.ticks, now) {
            self.nodes[i].coordinator.tick(now);
            self.drain(i);
        }
        true
    }

    /// Members whose coordinator or keys did something since the last call.
    pub(crate) fn take_touched(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.touched)
    }

    fn set_link(&mut self, node: usize, link: Link) {
        self.nodes[node].link = link;
        self.refresh_tick(node);
    }

    /// Files `node`'s next tick anew: its coordinator runs only while the
    /// member is present and not frozen.
    fn refresh_tick(&mut self, node: usize) {
        if self.tick_of.len() <= node {
            self.tick_of.resize(node + 1, None);
        }
        if let Some(old) = self.tick_of[node].take() {
            self.ticks.remove(&(old, node));
        }
        let n = &self.nodes[node];
        let awake = matches!(n.link, Link::Up | Link::Down);
        if let Some(at) = n.coordinator.next_tick().filter(|_| awake) {
            self.ticks.insert((at, node));
            self.tick_of[node] = Some(at);
        }
    }

    fn send_down(&mut self, node: usize, msg: ServerMessage) {
        self.sent += 1;
        let at = self.now + LATENCY + self.nodes[node].lag;
        self.wire.insert((at, self.sent), Packet::Down(node, msg));
    }

    /// What the server sends `node`: on the wire, or queued while its
    /// connection is down (a frozen member's socket buffers it unread).
    fn deliver(&mut self, node: usize, msg: ServerMessage) {
        let msgs = match &mut self.nodes[node].tamper {
            Some(f) => f(msg),
            None => vec![msg],
        };
        for msg in msgs {
            match self.nodes[node].link {
                Link::Up => self.send_down(node, msg),
                Link::Down | Link::Frozen => self.nodes[node].outbox.push(msg),
                Link::Gone => {}
            }
        }
    }

    fn broadcast(&mut self, msg: &ServerMessage) {
        let present: Vec<usize> = self.present().collect();
        for i in present {
            self.deliver(i, msg.clone());
        }
    }

    fn broadcast_logged(&mut self, logged: &Arc<Logged>) {
        let msg = parse(logged);
        self.broadcast(&msg);
    }

    /// A client gets a server message and does what its room driver does.
    fn at_client(&mut self, node: usize, msg: ServerMessage) {
        let now = self.now;
        let n = &mut self.nodes[node];
        if n.link != Link::Up {
            return;
        }
        let c = &mut n.coordinator;
        match msg {
            ServerMessage::Mls { seq, entry } => {
                n.seen_seq = n.seen_seq.max(seq);
                c.entry(now, seq, entry);
            }
            ServerMessage::MlsCommitRejected { epoch, .. } => c.commit_rejected(now, epoch),
            ServerMessage::ParticipantJoined { participant } => {
                n.keys
                    .learn_identity(&participant.participant_id, &participant.identity);
                c.participant_joined(&participant.participant_id, &participant.identity)
            }
            ServerMessage::ParticipantLeft { participant_id, .. } => {
                c.participant_left(&participant_id, now)
            }
            ServerMessage::Resumed { .. } => c.resumed(now),
            ServerMessage::Error {
                code: ErrorCode::MlsGap,
                ..
            } => c.log_gap(now),
            _ => {}
        }
        self.drain(node);
    }

    /// Carries out what `node`'s coordinator asked for.
    fn drain(&mut self, node: usize) {
        while let Some(out) = self.nodes[node].coordinator.poll() {
            let n = &mut self.nodes[node];
            match out {
                Output::Send(msg) => {
                    if n.link == Link::Up {
                        self.sent += 1;
                        self.wire
                            .insert((self.now + LATENCY, self.sent), Packet::Up(node, msg));
                    }
                }
                Output::Epoch {
                    epoch,
                    base_key,
                    own_leaf,
                    members,
                    verification_code,
                } => {
                    n.keys
                        .install_epoch(self.now, epoch, &base_key, own_leaf, &members);
                    n.in_group = true;
                    let names = members.into_iter().map(|m| m.identity).collect();
                    let members = intern(&mut self.rosters, epoch, names);
                    let n = &mut self.nodes[node];
                    n.epochs.push(Epoch {
                        epoch,
                        code: verification_code,
                        base_key,
                        members,
                    });
                }
                Output::LeftGroup => {
                    n.keys.forget();
                    n.in_group = false;
                }
                Output::Chat { from, text } => n.chat.push((from.identity, text)),
                Output::Mismatch {
                    mls_only,
                    signaling_only,
                } => n.mismatches.push((mls_only, signaling_only)),
                Output::Desynchronized => n.desyncs += 1,
            }
        }
        self.collect_frames(node);
        self.refresh_tick(node);
        if self.touched.last() != Some(&node) {
            self.touched.push(node);
        }
    }
}

/// The one shared copy of `epoch`'s member list `names`.
fn intern(
    rosters: &mut HashMap<u64, Vec<Arc<Vec<String>>>>,
    epoch: u64,
    names: Vec<String>,
) -> Arc<Vec<String>> {
    let seen = rosters.entry(epoch).or_default();
    if let Some(same) = seen.iter().find(|r| ***r == names) {
        return Arc::clone(same);
    }
    let fresh = Arc::new(names);
    seen.push(Arc::clone(&fresh));
    fresh
}

/// A participant as the signaling roster announces it.
/// The nodes whose timer in `timers` is due at `now`, in node order (the
/// order every run processes them in, whatever their deadlines).
pub(crate) fn due(timers: &BTreeSet<(Instant, usize)>, now: Instant) -> Vec<usize> {
    let mut due: Vec<usize> = timers
        .iter()
        .take_while(|(at, _)| *at <= now)
        .map(|(_, i)| *i)
        .collect();
    due.sort_unstable();
    due
}

pub(crate) fn participant(pid: &str, identity: &str) -> ParticipantInfo {
    serde_json::from_value(serde_json::json!({
        "participant_id": pid, "identity": identity, "name": identity, "tracks": []
    }))
    .expect("a participant")
}

/// A log entry as every member receives it: the server's own JSON.
pub(crate) fn parse(logged: &Logged) -> ServerMessage {
    serde_json::from_str(&logged.text).expect("a log entry is a server message")
}
