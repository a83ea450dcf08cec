//! The hostile room's relay attack: every client message whose bytes the
//! server passes on to the room's other participants, each at its size cap
//! and at the highest rate the server allows, from three participants:
//!
//! - the group's founder (its only member): chat and self-update commits,
//!   which only a member may send;
//! - a non-member: KeyPackages (a member's KeyPackage reports that it lost
//!   its group state, after which it may neither commit nor chat until
//!   re-added, so the member cannot send them itself);
//! - another: ICE candidates, which have no rate of their own, only the
//!   message rate (50/s), which the member's chat (20/s) and commits would
//!   otherwise share.
//!
//! A reading participant takes everything the room relays; a sleeping one
//! never reads, so the server buffers for it until its byte bound.

use crate::flood::{self, Bucket, Count, Frame, Rx, SETTLE, Tx, flood, parse, text};
use crate::padded_mls::Identity;
use futures_util::{SinkExt as _, StreamExt as _};
use signaling::proto::{ClientMessage, ErrorCode, IceCandidate, ServerMessage, Target};
use signaling::server::{RateLimit, SignalingConfig};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::ws::{Client, JoinedInfo};
use tokio::sync::mpsc;

/// The member's identity.
pub(crate) const MEMBER: &str = "mallory-member";
/// KeyPackages are sent this many times a second after the burst: far
/// over the allowed rate (one per 10 s), so that the limit is seen to bind.
const KEY_PACKAGES_PER_SECOND: f64 = 2.0;

/// What the member's answers say.
enum Event {
    Pong(u64),
    Refused(ErrorCode),
    OwnChat,
    OwnCommit,
    CommitRejected,
    Closed,
}

async fn member_events(mut rx: Rx, me: String, tx: mpsc::UnboundedSender<Event>) {
    while let Some(Ok(frame)) = rx.next().await {
        let ev = match parse(&frame) {
            Some(Frame::Msg(ServerMessage::Pong { ts })) => Event::Pong(ts),
            Some(Frame::Msg(ServerMessage::Error { code, .. })) => Event::Refused(code),
            Some(Frame::Msg(ServerMessage::MlsCommitRejected { .. })) => Event::CommitRejected,
            Some(Frame::Mls { kind, sender, .. }) if sender == me => match kind.as_str() {
                "application" => Event::OwnChat,
                "commit" => Event::OwnCommit,
                _ => continue,
            },
            _ => continue,
        };
        if tx.send(ev).is_err() {
            return;
        }
    }
    let _ = tx.send(Event::Closed);
}

/// A commit on its way: sent between two pings, so that a refusal
/// answered between their pongs is the commit's.
#[derive(Debug, Clone, Copy)]
struct Bracket {
    /// The pong that opens it; the next one closes it.
    open: u64,
    opened: bool,
    closed: bool,
    /// Refused already.
    refused: bool,
}

/// What the member's attack came to.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MemberReport {
    pub(crate) chat: Count,
    pub(crate) commit: Count,
    /// The server closed the member's connection.
    pub(crate) closed: bool,
}

/// The member, joined first (so it founds the room's group): it creates the
/// group, then until `end` sends chat and commits as fast as their rates
/// allow, each as large as its cap.
pub(crate) async fn member(
    mut c: Client,
    joined: JoinedInfo,
    cfg: SignalingConfig,
    end: Instant,
) -> MemberReport {
    assert!(joined.mls.founder, "the member joins first and founds");
    let group_id = hex::decode(&joined.mls.group_id).expect("group id");
    let mut m = Identity::new(MEMBER).found(&group_id);
    c.send(&ClientMessage::MlsGroupInfo {
        group_info: m.group_info(),
    })
    .await;
    // Refused, it would be answered before the pong.
    c.send(&ClientMessage::Ping { ts: 0 }).await;
    loop {
        match c.recv().await {
            ServerMessage::Pong { .. } => break,
            ServerMessage::Error { code, message } => {
                panic!("GroupInfo refused: {code:?} {message}")
            }
            _ => {}
        }
    }

    let (caps, rates) = (cfg.size_caps, cfg.message_rates);
    let (mut tx, rx) = c.ws.split();
    let (ev_tx, mut events) = mpsc::unbounded_channel();
    let reader = tokio::spawn(member_events(rx, joined.pid, ev_tx));
    let mut r = MemberReport::default();
    let now = Instant::now();
    let (mut chats, mut commits) = (
        Bucket::new(rates.chat, now),
        Bucket::new(rates.mls_commit, now),
    );
    let mut pending: Option<Bracket> = None;
    let mut pongs = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut settle_by = None;
    'attack: loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                if now >= end {
                    // Over: wait for the answers to what was sent.
                    let by = *settle_by.get_or_insert(now + SETTLE);
                    if (r.chat.settled() && pending.is_none()) || now >= by {
                        break;
                    }
                    continue;
                }
                while chats.take(now) {
                    let msg = ClientMessage::MlsApplication { epoch: m.epoch(), message: m.chat(caps.application) };
                    if tx.send(text(&msg)).await.is_err() {
                        r.closed = true;
                        break 'attack;
                    }
                    r.chat.sent += 1;
                }
                if pending.is_none() && commits.take(now) {
                    let msg = ClientMessage::MlsCommit {
                        epoch: m.epoch(),
                        commit: m.commit(caps.commit),
                        welcome: None,
                        added: Vec::new(),
                        removed: Vec::new(),
                    };
                    pongs += 2;
                    let sent = flood::ping(&mut tx, pongs - 1).await
                        && tx.send(text(&msg)).await.is_ok()
                        && flood::ping(&mut tx, pongs).await;
                    if !sent {
                        r.closed = true;
                        break 'attack;
                    }
                    r.commit.sent += 1;
                    pending = Some(Bracket { open: pongs - 1, opened: false, closed: false, refused: false });
                }
            }
            ev = events.recv() => match ev.unwrap_or(Event::Closed) {
                Event::Pong(ts) => if let Some(b) = &mut pending {
                    if ts == b.open {
                        b.opened = true;
                    } else if ts == b.open + 1 {
                        b.closed = true;
                        if b.refused {
                            m.settle(false);
                            pending = None;
                        }
                    }
                },
                Event::Refused(code) => match &mut pending {
                    Some(b) if b.opened && !b.closed && !b.refused => {
                        b.refused = true;
                        r.commit.refusal(code);
                    }
                    _ => r.chat.refusal(code),
                },
                Event::OwnChat => r.chat.accepted += 1,
                Event::OwnCommit => {
                    r.commit.accepted += 1;
                    m.settle(true);
                    pending = None;
                }
                Event::CommitRejected => {
                    r.commit.refused += 1;
                    m.settle(false);
                    pending = None;
                }
                Event::Closed => {
                    r.closed = true;
                    break;
                }
            },
        }
    }
    let _ = tx.close().await;
    reader.abort();
    r
}

/// A non-member sending valid KeyPackages as large as their cap, far
/// faster than their rate allows.
pub(crate) async fn key_packages(
    c: Client,
    joined: JoinedInfo,
    cfg: SignalingConfig,
    end: Instant,
) -> Count {
    let identity = Identity::new(KEY_PACKAGER);
    let cap = cfg.size_caps.key_package;
    let pace = RateLimit::new(KEY_PACKAGES_PER_SECOND, cfg.message_rates.key_package.burst);
    let me = joined.pid.clone();
    let own = move |f: &Frame| matches!(f, Frame::Mls { kind, sender, .. } if kind == "key_package" && *sender == me);
    let make = move |_| ClientMessage::MlsKeyPackage {
        key_package: identity.key_package(cap),
    };
    flood(c, end, pace, make, Some(Box::new(own))).await.0
}

/// The KeyPackage sender's identity.
pub(crate) const KEY_PACKAGER: &str = "mallory-kp";

/// The candidate sender's identity.
pub(crate) const CANDIDATES: &str = "mallory-ice";

/// A candidate line of exactly `cap` bytes with its mid "0", for a
/// loopback address of its own (`n` picks the port), so the server's ICE
/// agent keeps every one of them.
fn candidate(n: u64, cap: usize) -> IceCandidate {
    let port = 20_000 + n % 40_000;
    let tail = format!(" 1 udp 2130706431 127.0.0.1 {port} typ host generation 0");
    let head = "candidate:";
    let foundation = cap - 1 - head.len() - tail.len();
    IceCandidate {
        candidate: format!("{head}{}{tail}", "f".repeat(foundation)),
        sdp_mid: Some("0".into()),
        sdp_m_line_index: Some(0),
    }
}

/// A participant trickling ICE candidates as large as their cap, as fast
/// as the message rate allows, on a publisher transport it opened with a
/// one-line offer. The transport never connects, so the media plane ends
/// it after its ICE timeout; the sender then joins again.
pub(crate) async fn candidates(
    url: String,
    room: String,
    cfg: SignalingConfig,
    end: Instant,
) -> (Count, u64) {
    let mut total = Count::default();
    let mut connections = 0;
    let cap = cfg.size_caps.candidate;
    let mut n = 0u64;
    while Instant::now() < end {
        let (mut c, _) = flood::join(&url, &room, CANDIDATES).await;
        connections += 1;
        c.send(&ClientMessage::Offer {
            target: Target::Publisher,
            sdp: testkit::sdp::offer(1, 0, 0),
        })
        .await;
        loop {
            match c.recv().await {
                ServerMessage::Answer { .. } => break,
                ServerMessage::Error { code, message } => {
                    panic!("offer refused: {code:?} {message}")
                }
                _ => {}
            }
        }
        // The message rate, less the offer and the final ping.
        let rate = cfg.rate_limit;
        let pace = RateLimit::new(rate.per_second, rate.burst - 2);
        let start = n;
        let make = |i: u64| ClientMessage::Candidate {
            target: Target::Publisher,
            candidate: candidate(start + i, cap),
        };
        let (count, _) = flood(c, end, pace, make, None).await;
        n += count.sent;
        total.add(count);
    }
    (total, connections)
}

/// What the reading participant received from the room's log.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Received {
    pub(crate) key_packages: u64,
    pub(crate) chats: u64,
    pub(crate) commits: u64,
    /// Bytes of those entries as written.
    pub(crate) bytes: u64,
    /// The server closed the connection.
    pub(crate) closed: bool,
}

/// Reads everything the room relays to `c` into `got` until the socket
/// ends.
pub(crate) async fn listen(c: Client, got: Arc<Mutex<Received>>) {
    let (_tx, mut rx): (Tx, Rx) = c.ws.split();
    while let Some(Ok(frame)) = rx.next().await {
        let Some(Frame::Mls { kind, len, .. }) = parse(&frame) else {
            continue;
        };
        let mut g = got.lock().expect("received");
        g.bytes += len as u64;
        match kind.as_str() {
            "key_package" => g.key_packages += 1,
            "application" => g.chats += 1,
            "commit" => g.commits += 1,
            _ => {}
        }
    }
    got.lock().expect("received").closed = true;
}

/// The hostile room before the attack: the member (joined first, so that
/// it founds the group), the listener, the sleeper and the KeyPackage
/// sender.
pub(crate) struct Room {
    pub(crate) member: (Client, JoinedInfo),
    pub(crate) listener: Client,
    pub(crate) sleeper: Client,
    pub(crate) packager: (Client, JoinedInfo),
}

impl Room {
    pub(crate) async fn join(url: &str, room: &str) -> Self {
        let member = flood::join(url, room, MEMBER).await;
        let (listener, _) = flood::join(url, room, "listener").await;
        let (sleeper, _) = flood::join(url, room, "sleeper").await;
        let packager = flood::join(url, room, KEY_PACKAGER).await;
        Self {
            member,
            listener,
            sleeper,
            packager,
        }
    }
}
