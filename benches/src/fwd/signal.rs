//! Joining through the real signaling: WebSocket JSON (`docs/protocol.md`)
//! with tokens minted from the development key, no MLS. Each participant
//! is a task that keeps its connection alive and answers the SFU's
//! subscriber offers for as long as the scenario runs.

use crate::fwd::endpoint::Endpoint;
use crate::fwd::generator::Adder;
use crate::fwd::scenario::Member;
use futures_util::{SinkExt, StreamExt};
use signaling::proto::{
    ClientMessage, PROTOCOL_VERSION, ServerMessage, Target, TrackKind, TrackPublish,
};
use signaling::token::{Grants, TokenKeys};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a join (connect, join, publish, answer) may take.
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);
/// Keepalive period (the server's ping timeout is longer).
const PING_EVERY: Duration = Duration::from_secs(4);
/// Token lifetime: longer than any run.
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Why a participant could not join.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// The WebSocket failed.
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// The token could not be minted.
    #[error("token: {0}")]
    Token(#[from] signaling::token::TokenError),
    /// The server answered with an error or closed.
    #[error("server: {0}")]
    Server(String),
    /// The SDP was refused by str0m.
    #[error("sdp: {0}")]
    Sdp(#[from] str0m::RtcError),
    /// A socket could not be opened.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The join took too long.
    #[error("join timed out")]
    Timeout,
    /// The generator has stopped.
    #[error("generator stopped")]
    Generator,
}

/// What a participant needs besides its [`Member`] entry.
#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// The SFU's signaling address.
    pub http: SocketAddr,
    /// Packet payload size.
    pub payload_bytes: usize,
    /// This participant's subscriber transport is the probe.
    pub probe: bool,
}

/// A joined participant; its task runs until the handle is dropped.
#[derive(Debug)]
pub struct Participant {
    task: JoinHandle<()>,
    /// Its publisher endpoint, if it publishes.
    pub publisher: Option<Arc<Mutex<Endpoint>>>,
}

impl Drop for Participant {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Session {
    ws: Ws,
    member: Member,
    opts: JoinOptions,
    adder: Adder,
    sink: Option<Arc<Mutex<Endpoint>>>,
}

fn text(m: &ClientMessage) -> Message {
    Message::Text(serde_json::to_string(m).unwrap_or_default().into())
}

impl Session {
    async fn send(&mut self, m: &ClientMessage) -> Result<(), SignalError> {
        self.ws.send(text(m)).await?;
        Ok(())
    }

    /// The next server message; pings and other frames are handled by
    /// tungstenite underneath.
    async fn next(&mut self) -> Result<ServerMessage, SignalError> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerMessage>(&t) {
                    Ok(m) => return Ok(m),
                    Err(e) => tracing::debug!(error = %e, "unparsed server message"),
                },
                Some(Ok(Message::Close(_))) | None => {
                    return Err(SignalError::Server("connection closed".into()));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
            }
        }
    }

    /// Handles what may come at any time. Returns the message back if it
    /// is not one of those.
    async fn common(&mut self, m: ServerMessage) -> Result<Option<ServerMessage>, SignalError> {
        match m {
            ServerMessage::Offer {
                target: Target::Subscriber,
                sdp,
            } => {
                let (sink, new) = match &self.sink {
                    Some(s) => (Arc::clone(s), false),
                    None => {
                        let ep = Endpoint::sink(
                            self.member.subscribes_to,
                            self.opts.probe,
                            Instant::now(),
                        )?;
                        let ep = Arc::new(Mutex::new(ep));
                        self.sink = Some(Arc::clone(&ep));
                        (ep, true)
                    }
                };
                let answer = {
                    let mut ep = sink
                        .lock()
                        .map_err(|_| SignalError::Server("endpoint lock poisoned".into()))?;
                    ep.accept_offer(&sdp)?
                };
                self.send(&ClientMessage::Answer {
                    target: Target::Subscriber,
                    sdp: answer,
                })
                .await?;
                // Registered after the first answer, so the generator's
                // first visit sees a negotiated peer.
                if new && !self.adder.add(sink) {
                    return Err(SignalError::Generator);
                }
                Ok(None)
            }
            ServerMessage::Error { code, message } => {
                tracing::warn!(identity = %self.member.identity, ?code, %message, "server error");
                Ok(None)
            }
            ServerMessage::Closed { reason } => {
                Err(SignalError::Server(format!("closed: {reason:?}")))
            }
            other => Ok(Some(other)),
        }
    }
}

/// Joins `member`: connects, joins, and if it publishes, publishes one
/// video track and negotiates its publisher transport. Returns once that
/// is done; the task then keeps serving the connection.
pub async fn join(
    member: Member,
    opts: JoinOptions,
    adder: Adder,
) -> Result<Participant, SignalError> {
    tokio::time::timeout(JOIN_TIMEOUT, join_inner(member, opts, adder))
        .await
        .map_err(|_| SignalError::Timeout)?
}

async fn join_inner(
    member: Member,
    opts: JoinOptions,
    adder: Adder,
) -> Result<Participant, SignalError> {
    let token = TokenKeys::development().mint(
        &member.room,
        &member.identity,
        &member.identity,
        Grants::default(),
        TOKEN_TTL,
    )?;
    let url = format!("ws://{}/rtc", opts.http);
    let (ws, _) = tokio_tungstenite::connect_async(url).await?;
    let mut s = Session {
        ws,
        member,
        opts,
        adder,
        sink: None,
    };
    s.send(&ClientMessage::Join {
        protocol: PROTOCOL_VERSION,
        token,
        resume: None,
    })
    .await?;
    loop {
        let m = s.next().await?;
        match s.common(m).await? {
            Some(ServerMessage::Joined { .. }) => break,
            Some(other) => tracing::debug!(?other, "before joined"),
            None => {}
        }
    }
    let mut publisher = None;
    if let Some(index) = s.member.publisher {
        let mut ep =
            Endpoint::publisher(index, s.member.fanout, s.opts.payload_bytes, Instant::now())?;
        let (sdp, mid) = ep
            .offer_video()
            .ok_or_else(|| SignalError::Server("no offer".into()))?;
        let ep = Arc::new(Mutex::new(ep));
        s.send(&ClientMessage::Publish {
            track: TrackPublish::new("cam", &mid, TrackKind::Video, "VP8"),
        })
        .await?;
        s.send(&ClientMessage::Offer {
            target: Target::Publisher,
            sdp,
        })
        .await?;
        loop {
            let m = s.next().await?;
            match s.common(m).await? {
                Some(ServerMessage::Answer {
                    target: Target::Publisher,
                    sdp,
                }) => {
                    ep.lock()
                        .map_err(|_| SignalError::Server("endpoint lock poisoned".into()))?
                        .accept_answer(&sdp)?;
                    break;
                }
                Some(other) => tracing::debug!(?other, "while publishing"),
                None => {}
            }
        }
        if !s.adder.add(Arc::clone(&ep)) {
            return Err(SignalError::Generator);
        }
        publisher = Some(ep);
    }
    let task = tokio::spawn(serve(s));
    Ok(Participant { task, publisher })
}

/// Answers offers and keeps the connection alive until aborted.
async fn serve(mut s: Session) {
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut ts = 0u64;
    loop {
        tokio::select! {
            _ = ping.tick() => {
                ts += 1;
                if s.send(&ClientMessage::Ping { ts }).await.is_err() {
                    break;
                }
            }
            m = s.next() => {
                let r = match m {
                    Ok(m) => s.common(m).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = r {
                    tracing::warn!(identity = %s.member.identity, error = %e, "signaling ended");
                    break;
                }
            }
        }
    }
}
