//! The light listener's signaling: the same WebSocket protocol as
//! `client_sdk` (`docs/protocol.md`), reduced to what a member that only
//! receives needs: join, answer subscriber offers, relay MLS, ping, leave.

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use signaling::proto::{ClientMessage, MlsInfo, PROTOCOL_VERSION, RoomState, ServerMessage};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::warn;

/// The signaling connection.
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// Its sending half.
pub(super) type WsSink = SplitSink<Ws, Message>;
/// Its receiving half.
pub(super) type WsStream = SplitStream<Ws>;

/// Why the join did not succeed.
#[derive(Debug, thiserror::Error)]
pub(super) enum JoinError {
    /// The WebSocket could not be opened or broke during the join.
    #[error("signaling unreachable: {0}")]
    Unreachable(String),
    /// The server refused the join.
    #[error("join refused: {0}")]
    Refused(String),
    /// The server answered with something the protocol does not allow here.
    #[error("unexpected answer to join")]
    Unexpected,
}

/// What the server said when it admitted us.
pub(super) struct Joined {
    pub(super) participant_id: String,
    pub(super) room: RoomState,
    pub(super) mls: MlsInfo,
}

/// Opens the WebSocket at `url` and joins with `token`.
pub(super) async fn join(url: &str, token: &str) -> Result<(WsSink, WsStream, Joined), JoinError> {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| JoinError::Unreachable(e.to_string()))?;
    let (mut sink, mut stream) = ws.split();
    let join = ClientMessage::Join {
        protocol: PROTOCOL_VERSION,
        token: token.to_owned(),
        resume: None,
    };
    sink.send(text(&join))
        .await
        .map_err(|e| JoinError::Unreachable(e.to_string()))?;
    loop {
        let message = match stream.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(_))) | None => {
                return Err(JoinError::Unreachable("closed during join".into()));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(JoinError::Unreachable(e.to_string())),
        };
        match serde_json::from_str::<ServerMessage>(&message) {
            Ok(ServerMessage::Joined {
                participant_id,
                room,
                mls,
                ..
            }) => {
                return Ok((
                    sink,
                    stream,
                    Joined {
                        participant_id,
                        room,
                        mls,
                    },
                ));
            }
            Ok(ServerMessage::Error { code, message }) => {
                return Err(JoinError::Refused(format!("{code:?}: {message}")));
            }
            Ok(ServerMessage::Pong { .. }) => {}
            _ => return Err(JoinError::Unexpected),
        }
    }
}

/// A message as a WebSocket text frame.
pub(super) fn text(message: &ClientMessage) -> Message {
    // Serializing these plain types cannot fail.
    Message::Text(serde_json::to_string(message).unwrap_or_default().into())
}

/// Reads server messages until the connection ends, handing each parsed
/// one to `to`; dropping `to` tells the session the connection is gone.
pub(super) async fn read(mut stream: WsStream, to: mpsc::UnboundedSender<ServerMessage>) {
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(Message::Text(text)) => match serde_json::from_str::<ServerMessage>(&text) {
                Ok(message) => {
                    if to.send(message).is_err() {
                        return;
                    }
                }
                Err(e) => warn!(error = %e, "malformed server message ignored"),
            },
            Ok(Message::Close(_)) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
