//! A thin signaling client for tests: one WebSocket speaking the JSON
//! protocol message by message, with bounded waits and helpers for the
//! messages tests send most.

use crate::wait::LIMIT;
use futures_util::{SinkExt, StreamExt};
use signaling::proto::{
    ClientMessage, ErrorCode, MlsEntry, MlsInfo, PROTOCOL_VERSION, Resume, RoomState, ServerMessage,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A signaling connection, over plain TCP unless made with
/// [`Client::from_ws`] on another stream (a TLS one).
#[derive(Debug)]
pub struct Client<S = MaybeTlsStream<TcpStream>> {
    /// The socket, for tests that need to misbehave at the frame level.
    pub ws: WebSocketStream<S>,
}

/// How a wait for the server ended.
#[derive(Debug)]
pub enum Next {
    /// A protocol message.
    Msg(ServerMessage),
    /// The connection ended.
    Closed,
}

/// What `joined` said.
#[derive(Debug, Clone)]
pub struct JoinedInfo {
    /// This participant's id.
    pub pid: String,
    /// The room as it was at the join.
    pub room: RoomState,
    /// Where the MLS log stands.
    pub mls: MlsInfo,
    /// The token to resume this session with.
    pub resume_token: String,
}

impl Client {
    /// Opens a connection to `url` (`ws://…/rtc`).
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
        Self { ws }
    }

    /// Opens a connection to `url`, or returns the HTTP status with which
    /// the server refused the upgrade (0 if it failed otherwise).
    pub async fn try_connect(url: &str) -> Result<Self, u16> {
        use tokio_tungstenite::tungstenite::Error;
        match tokio_tungstenite::connect_async(url).await {
            Ok((ws, _)) => Ok(Self { ws }),
            Err(Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(_) => Err(0),
        }
    }

    /// Like [`Client::try_connect`], with the `Origin` header a page of
    /// `origin` would send.
    pub async fn try_connect_from(url: &str, origin: &str) -> Result<Self, u16> {
        use tokio_tungstenite::tungstenite::Error;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url.into_client_request().map_err(|_| 0u16)?;
        let origin = origin.parse().map_err(|_| 0u16)?;
        req.headers_mut().insert("origin", origin);
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(Self { ws }),
            Err(Error::Http(resp)) => Err(resp.status().as_u16()),
            Err(_) => Err(0),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// A client on a WebSocket already open (e.g. over TLS).
    pub fn from_ws(ws: WebSocketStream<S>) -> Self {
        Self { ws }
    }

    /// Sends a protocol message.
    pub async fn send(&mut self, msg: &ClientMessage) {
        self.send_raw(&serde_json::to_string(msg).expect("encode"))
            .await;
    }

    /// Sends `text` as a text frame, whatever it holds.
    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    /// The next protocol message, or `Closed`. Panics after [`LIMIT`].
    pub async fn next(&mut self) -> Next {
        let fut = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        return Next::Msg(serde_json::from_str(t.as_str()).expect("decode"));
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Binary(_))) => panic!("server sent a binary frame"),
                    Some(Ok(Message::Close(_))) => {
                        // Keep reading so our client completes the close
                        // handshake, as real clients do.
                        while let Some(Ok(_)) = self.ws.next().await {}
                        return Next::Closed;
                    }
                    Some(Err(_)) | None => return Next::Closed,
                }
            }
        };
        tokio::time::timeout(LIMIT, fut)
            .await
            .expect("timed out waiting for the server")
    }

    /// The next protocol message; panics if the connection ends first.
    pub async fn recv(&mut self) -> ServerMessage {
        match self.next().await {
            Next::Msg(m) => m,
            Next::Closed => panic!("connection closed while waiting for a message"),
        }
    }

    /// Expects an error with this code; returns its message.
    pub async fn expect_error(&mut self, code: ErrorCode) -> String {
        match self.recv().await {
            ServerMessage::Error { code: c, message } if c == code => message,
            other => panic!("expected error {code:?}, got {other:?}"),
        }
    }

    /// Expects the connection to end with no further message.
    pub async fn expect_closed(&mut self) {
        match self.next().await {
            Next::Closed => {}
            Next::Msg(m) => panic!("expected close, got {m:?}"),
        }
    }

    /// Round-trips a ping: proves the connection works and that nothing
    /// else was queued before the pong.
    pub async fn ping(&mut self, ts: u64) {
        self.send(&ClientMessage::Ping { ts }).await;
        assert_eq!(self.recv().await, ServerMessage::Pong { ts });
    }

    /// Joins with `token`; returns this participant's id and the room.
    pub async fn join(&mut self, token: &str) -> (String, RoomState) {
        let joined = self.join_full(token).await;
        (joined.pid, joined.room)
    }

    /// Joins with `token`; returns all of `joined`.
    pub async fn join_full(&mut self, token: &str) -> JoinedInfo {
        self.join_raw(token).await;
        match self.recv().await {
            ServerMessage::Joined {
                participant_id,
                room,
                mls,
                resume_token,
                ..
            } => JoinedInfo {
                pid: participant_id,
                room,
                mls,
                resume_token,
            },
            other => panic!("expected joined, got {other:?}"),
        }
    }

    /// Sends a join and nothing else.
    pub async fn join_raw(&mut self, token: &str) {
        self.send(&ClientMessage::Join {
            protocol: PROTOCOL_VERSION,
            token: token.to_string(),
            resume: None,
        })
        .await;
    }

    /// Sends a join that resumes `pid`'s session.
    pub async fn resume_raw(&mut self, token: &str, pid: &str, resume_token: &str, mls_seq: u64) {
        self.send(&ClientMessage::Join {
            protocol: PROTOCOL_VERSION,
            token: token.to_string(),
            resume: Some(Resume {
                participant_id: pid.to_string(),
                resume_token: resume_token.to_string(),
                mls_seq,
            }),
        })
        .await;
    }

    /// The next message, which must be an MLS log entry.
    pub async fn recv_mls(&mut self) -> (u64, MlsEntry) {
        match self.recv().await {
            ServerMessage::Mls { seq, entry } => (seq, entry),
            other => panic!("expected mls, got {other:?}"),
        }
    }

    /// Sends an MLS application message.
    pub async fn chat(&mut self, epoch: u64, message: &str) {
        self.send(&ClientMessage::MlsApplication {
            epoch,
            message: message.to_string(),
        })
        .await;
    }

    /// Sends an MLS commit with placeholder bytes (the server relays MLS
    /// without reading it), and a Welcome when it adds anyone.
    pub async fn commit(&mut self, epoch: u64, added: &[&str], removed: &[&str]) {
        self.send(&ClientMessage::MlsCommit {
            epoch,
            commit: format!("Y29tbWl0{epoch}"),
            welcome: (!added.is_empty()).then(|| "d2VsY29tZQ==".to_string()),
            added: added.iter().map(|s| s.to_string()).collect(),
            removed: removed.iter().map(|s| s.to_string()).collect(),
        })
        .await;
    }

    /// Sends an MLS KeyPackage.
    pub async fn key_package(&mut self, kp: &str) {
        self.send(&ClientMessage::MlsKeyPackage {
            key_package: kp.to_string(),
        })
        .await;
    }
}
