//! Opening the signaling WebSocket and joining the room.

use crate::error::{ConnectError, ProtocolError};
use futures_util::{SinkExt, StreamExt};
use signaling::proto::{
    ClientMessage, ErrorCode, MlsInfo, PROTOCOL_VERSION, Resume, RoomState, ServerMessage,
};
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
    pub(super) mls: MlsInfo,
    /// Proves a later reconnect is this session; never logged.
    pub(super) resume_token: String,
}

/// How a resume attempt ended.
pub(super) enum ResumeOutcome {
    /// The session continues on this connection; `log_gap` if the server
    /// could not replay every missed MLS entry.
    Resumed { ws: Box<Ws>, log_gap: bool },
    /// The server no longer knows the session: retrying cannot help.
    Refused,
    /// The server could not be reached or answered strangely: retry.
    Failed,
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
            resume: None,
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
                mls,
                resume_token,
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
                    mls,
                    resume_token,
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

/// Reconnects to `url` and asks to resume the session `resume` names.
pub(super) async fn resume(
    url: &str,
    token: &str,
    resume: Resume,
    timeout: Duration,
) -> ResumeOutcome {
    let attempt = async {
        let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else {
            return ResumeOutcome::Failed;
        };
        let join = ClientMessage::Join {
            protocol: PROTOCOL_VERSION,
            token: token.to_owned(),
            resume: Some(resume),
        };
        if ws.send(text(&join)).await.is_err() {
            return ResumeOutcome::Failed;
        }
        loop {
            let text = match ws.next().await {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return ResumeOutcome::Failed,
                Some(Ok(_)) => continue,
            };
            match serde_json::from_str::<ServerMessage>(&text) {
                Ok(ServerMessage::Resumed { .. }) => {
                    return ResumeOutcome::Resumed {
                        ws: Box::new(ws),
                        log_gap: false,
                    };
                }
                Ok(ServerMessage::Error {
                    code: ErrorCode::ResumeFailed | ErrorCode::Unauthorized | ErrorCode::Forbidden,
                    ..
                }) => return ResumeOutcome::Refused,
                Ok(ServerMessage::Pong { .. }) => continue,
                _ => return ResumeOutcome::Failed,
            }
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(ResumeOutcome::Failed)
}

/// The identity (`sub`) the access token names. The server verified the
/// token; this only reads it, to name our MLS credential.
pub(super) fn token_identity(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_owned)
}
