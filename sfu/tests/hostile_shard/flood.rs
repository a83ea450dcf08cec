//! The pieces every hostile sender of the relay attack shares: a mirror of
//! the server's token bucket (sending whenever it has a token is the
//! highest rate the server allows), what each kind of message came to, and
//! one connection flooding one kind at a steady pace.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use signaling::proto::{ClientMessage, ErrorCode, ServerMessage};
use signaling::server::RateLimit;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::ws::{Client, JoinedInfo};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub(crate) type Tx = SplitSink<Ws, Message>;
pub(crate) type Rx = SplitStream<Ws>;

/// How long a sender waits, once the attack is over, for the answers to
/// what it sent.
pub(crate) const SETTLE: Duration = Duration::from_secs(5);

/// What one kind of message came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Count {
    /// Sent by the attacker.
    pub(crate) sent: u64,
    /// Taken by the server (relayed, or applied).
    pub(crate) accepted: u64,
    /// Refused with `rate_limited`.
    pub(crate) rate_limited: u64,
    /// Refused otherwise.
    pub(crate) refused: u64,
}

impl Count {
    /// Whether every message sent has had its answer.
    pub(crate) fn settled(&self) -> bool {
        self.accepted + self.rate_limited + self.refused >= self.sent
    }

    pub(crate) fn add(&mut self, other: Count) {
        self.sent += other.sent;
        self.accepted += other.accepted;
        self.rate_limited += other.rate_limited;
        self.refused += other.refused;
    }

    /// Counts a refusal.
    pub(crate) fn refusal(&mut self, code: ErrorCode) {
        if code == ErrorCode::RateLimited {
            self.rate_limited += 1;
        } else {
            self.refused += 1;
        }
    }
}

/// A token bucket like the server's: full at first, `burst` tokens,
/// refilled at `per_second`.
#[derive(Debug)]
pub(crate) struct Bucket {
    cap: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Self {
        let cap = f64::from(limit.burst);
        Self {
            cap,
            per_second: limit.per_second,
            tokens: cap,
            last: now,
        }
    }

    /// Takes a token if the bucket has one at `now`.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.per_second).min(self.cap);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Waits for a token and takes it.
    pub(crate) async fn next(&mut self) {
        loop {
            let now = Instant::now();
            if self.take(now) {
                return;
            }
            let missing = (1.0 - self.tokens) / self.per_second;
            tokio::time::sleep(Duration::from_secs_f64(missing.max(0.001))).await;
        }
    }
}

/// The nominal count of a bucket over `secs` seconds: the burst, then the
/// rate.
pub(crate) fn nominal(limit: RateLimit, secs: f64) -> u64 {
    (f64::from(limit.burst) + limit.per_second * secs) as u64
}

/// A server frame as the hostile clients need it.
pub(crate) enum Frame {
    /// An MLS log entry: its kind and sender (empty for a reset) and its
    /// length as written. Read from the frame's head only: the server
    /// writes both before the payload, so payloads of up to 256 KiB are
    /// not parsed, which would cost this process (where the honest pair is
    /// measured) more than the server.
    Mls {
        kind: String,
        sender: String,
        len: usize,
    },
    /// Any other message.
    Msg(ServerMessage),
}

/// The string value of field `name` in `head`, if it is there.
fn field<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    let key = format!("\"{name}\":\"");
    let start = head.find(&key)? + key.len();
    let len = head[start..].find('"')?;
    Some(&head[start..start + len])
}

/// The frame `msg` holds, if it is a server message.
pub(crate) fn parse(msg: &Message) -> Option<Frame> {
    const MLS: &str = r#"{"type":"mls","#;
    let Message::Text(text) = msg else {
        return None;
    };
    let text = text.as_str();
    if text.starts_with(MLS) {
        let mut end = text.len().min(512);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let head = &text[..end];
        return Some(Frame::Mls {
            kind: field(head, "kind")?.to_string(),
            sender: field(head, "participant_id").unwrap_or("").to_string(),
            len: text.len(),
        });
    }
    serde_json::from_str(text).ok().map(Frame::Msg)
}

pub(crate) fn text(msg: &ClientMessage) -> Message {
    Message::text(serde_json::to_string(msg).expect("encode"))
}

/// A new participant `identity` in `room`.
pub(crate) async fn join(url: &str, room: &str, identity: &str) -> (Client, JoinedInfo) {
    let mut c = Client::connect(url).await;
    let joined = c
        .join_full(&testkit::token::dev_token(room, identity))
        .await;
    (c, joined)
}

/// Sends a ping whose pong, answered in order after every earlier message,
/// marks that the server has judged them all.
pub(crate) async fn ping(tx: &mut Tx, ts: u64) -> bool {
    tx.send(text(&ClientMessage::Ping { ts })).await.is_ok()
}

/// Which answer means a flooded message was taken.
pub(crate) type Accepts = Box<dyn Fn(&Frame) -> bool + Send>;

/// What a flood's answers say.
#[derive(Debug, Default)]
struct Seen {
    count: Count,
    last_pong: u64,
    closed: bool,
}

/// One connection sending `make(i)` for i = 0, 1, … as fast as `pace`
/// allows (its burst at once, then its rate), until `end` or until the
/// server closes it.
/// `accepted` says which answer means a message was taken; without one
/// (`None`), what was not refused by the final pong was taken. Returns
/// the counts and whether the server closed the connection.
pub(crate) async fn flood(
    c: Client,
    end: Instant,
    pace: RateLimit,
    mut make: impl FnMut(u64) -> ClientMessage,
    accepted: Option<Accepts>,
) -> (Count, bool) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (mut tx, rx) = c.ws.split();
    let echo = accepted.is_some();
    let reader = tokio::spawn(read(rx, seen.clone(), accepted));
    let mut sent = 0u64;
    let mut bucket = Bucket::new(pace, Instant::now());
    loop {
        bucket.next().await;
        if Instant::now() >= end {
            break;
        }
        if tx.send(text(&make(sent))).await.is_err() {
            break;
        }
        sent += 1;
    }
    seen.lock().expect("seen").count.sent = sent;
    let pinged = ping(&mut tx, u64::MAX).await;
    let deadline = Instant::now() + SETTLE;
    let done = || {
        let s = seen.lock().expect("seen");
        let answered = s.last_pong == u64::MAX && (!echo || s.count.settled());
        answered || s.closed
    };
    while pinged && !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = tx.close().await;
    reader.abort();
    let (mut count, closed) = {
        let s = seen.lock().expect("seen");
        (s.count, s.closed)
    };
    if !echo {
        // Every refusal came before the final pong.
        count.accepted = count
            .sent
            .saturating_sub(count.rate_limited + count.refused);
    }
    (count, closed)
}

async fn read(mut rx: Rx, seen: Arc<Mutex<Seen>>, accepted: Option<Accepts>) {
    while let Some(Ok(frame)) = rx.next().await {
        let Some(msg) = parse(&frame) else { continue };
        let mut s = seen.lock().expect("seen");
        match &msg {
            Frame::Msg(ServerMessage::Pong { ts }) => s.last_pong = *ts,
            Frame::Msg(ServerMessage::Error { code, .. }) => s.count.refusal(*code),
            m if accepted.as_ref().is_some_and(|f| f(m)) => s.count.accepted += 1,
            _ => {}
        }
    }
    seen.lock().expect("seen").closed = true;
}
