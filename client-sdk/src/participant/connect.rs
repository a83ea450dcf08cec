//! Opening the signaling WebSocket and joining the room.

use crate::error::{ConnectError, ProtocolError};
use futures_util::{SinkExt, StreamExt};
use signaling::proto::{ClientMessage, ErrorCode, PROTOCOL_VERSION, RoomState, ServerMessage};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::debug;

/// The signaling connection.
pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the server said when it admitted us.
pub(super) struct Joined {
    pub(super) participant_id: String,
    pub(super) room: RoomState,
}

/// Connects to `url` and joins with `token`, all within `timeout`.
pub(super) async fn open(
    url: &str,
    token: &str,
    timeout: Duration,
) -> Result<(Ws, Joined), ConnectError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("ws" | "wss")) {
        return Err(ConnectError::InvalidUrl(format!(
            "{url:?} is not a ws:// or wss:// URL"
        )));
    }
    tokio::time::timeout(timeout, async {
        let (mut ws, _response) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(handshake_error)?;
        debug!("signaling connected, joining");
        let join = ClientMessage::Join {
            protocol: PROTOCOL_VERSION,
            token: token.to_owned(),
        };
        ws.send(text(&join)).await.map_err(handshake_error)?;
        let joined = await_joined(&mut ws).await?;
        Ok((ws, joined))
    })
    .await
    .map_err(|_| ConnectError::Timeout(timeout))?
}

/// A message as a WebSocket text frame.
pub(super) fn text(message: &ClientMessage) -> Message {
    // Serializing these plain types cannot fail.
    Message::Text(serde_json::to_string(message).unwrap_or_default().into())
}

async fn await_joined(ws: &mut Ws) -> Result<Joined, ConnectError> {
    loop {
        let frame = match ws.next().await {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Err(handshake_error(e)),
            None => return Err(ProtocolError::Closed.into()),
        };
        let text = match frame {
            Message::Text(text) => text,
            Message::Close(_) => return Err(ProtocolError::Closed.into()),
            _ => continue,
        };
        let message: ServerMessage =
            serde_json::from_str(&text).map_err(|e| ProtocolError::Malformed(e.to_string()))?;
        match message {
            ServerMessage::Joined {
                protocol,
                participant_id,
                room,
                ..
            } => {
                if protocol != PROTOCOL_VERSION {
                    return Err(ConnectError::ProtocolVersion {
                        client: PROTOCOL_VERSION,
                        message: format!("server joined us with version {protocol}"),
                    });
                }
                return Ok(Joined {
                    participant_id,
                    room,
                });
            }
            ServerMessage::Error { code, message } => return Err(join_refused(code, message)),
            ServerMessage::Closed { .. } => return Err(ProtocolError::Closed.into()),
            ServerMessage::Pong { .. } => continue,
            _ => return Err(ProtocolError::Unexpected("pre-join").into()),
        }
    }
}

fn join_refused(code: ErrorCode, message: String) -> ConnectError {
    match code {
        ErrorCode::Unauthorized | ErrorCode::Forbidden => ConnectError::Unauthorized(message),
        ErrorCode::ProtocolVersion => ConnectError::ProtocolVersion {
            client: PROTOCOL_VERSION,
            message,
        },
        code => ProtocolError::Server { code, message }.into(),
    }
}

fn handshake_error(error: tungstenite::Error) -> ConnectError {
    use tungstenite::Error as E;
    match error {
        E::Io(io) => ConnectError::Unreachable(io),
        E::Http(response) => match response.status().as_u16() {
            status @ (401 | 403) => ConnectError::Unauthorized(format!("HTTP {status}")),
            status => ProtocolError::Handshake(status).into(),
        },
        E::Url(url) => ConnectError::InvalidUrl(url.to_string()),
        E::ConnectionClosed | E::AlreadyClosed => ProtocolError::Closed.into(),
        other => ConnectError::Unreachable(std::io::Error::other(other.to_string())),
    }
}
