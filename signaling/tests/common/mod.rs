//! Test kit for the signaling server: a recording media plane, a server on
//! loopback, and a thin WebSocket client.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use futures_util::{SinkExt, StreamExt};
use sfu_core::{MediaCommand, MediaEvent};
use signaling::media::{MediaRequest, MediaSink};
use signaling::proto::{
    ClientMessage, ErrorCode, MlsEntry, MlsInfo, PROTOCOL_VERSION, Resume, RoomState, ServerMessage,
};
use signaling::server::{Signaling, SignalingConfig, app};
use signaling::token::{Grants, TokenKeys};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Upper bound for anything a test waits for. Generous: tests must not
/// depend on machine speed, and a passing test never waits this long.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub const ROOM: &str = "room-1";

pub fn keys() -> TokenKeys {
    TokenKeys::new("test-key", "test-secret-test-secret-test-secret!!")
}

/// The test default: a short resume grace, so that a dropped client leaves
/// soon after (tests about resume set their own).
pub fn config() -> SignalingConfig {
    SignalingConfig::default()
        .with_keys(keys())
        .with_resume_grace(Duration::from_millis(200))
}

pub fn token(room: &str, identity: &str) -> String {
    token_with(room, identity, Grants::default())
}

pub fn token_with(room: &str, identity: &str, grants: Grants) -> String {
    keys()
        .mint(room, identity, identity, grants, Duration::from_secs(600))
        .unwrap()
}

pub fn admin_token(room: &str) -> String {
    let g = Grants {
        publish: false,
        subscribe: false,
        admin: true,
    };
    token_with(room, "admin", g)
}

/// What the media plane was asked, without the channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rec {
    Join {
        room: String,
        pid: String,
        can_publish: bool,
        auto_subscribe: bool,
    },
    Leave(String),
    PublisherOffer(String, String),
    SubscriberAnswer(String, String),
    Candidate(String, sfu_core::Target),
    Publish {
        pid: String,
        track_id: String,
        mid: String,
        kind: sfu_core::TrackKind,
    },
    Unpublish(String, String),
    Subscribe(String, String),
    Unsubscribe(String, String),
}

/// A media plane double: records commands, keeps each participant's event
/// sender so the test can push events.
#[derive(Default)]
pub struct RecordingMedia {
    recs: Mutex<Vec<Rec>>,
    events: Mutex<HashMap<String, mpsc::Sender<MediaEvent>>>,
}

impl RecordingMedia {
    pub fn recs(&self) -> Vec<Rec> {
        self.recs.lock().unwrap().clone()
    }

    pub fn leaves(&self, pid: &str) -> usize {
        self.recs()
            .iter()
            .filter(|r| **r == Rec::Leave(pid.to_string()))
            .count()
    }

    /// Drops the participant's event queue, as the media plane does when the
    /// participant falls behind.
    pub fn drop_queue(&self, pid: &str) {
        self.events.lock().unwrap().remove(pid);
    }

    pub async fn push(&self, pid: &str, ev: MediaEvent) {
        let tx = self.events.lock().unwrap().get(pid).cloned().unwrap();
        tx.send(ev).await.unwrap();
    }
}

impl MediaSink for RecordingMedia {
    fn command(&self, request: MediaRequest) -> bool {
        let rec = match request.command {
            MediaCommand::Join {
                participant,
                room,
                can_publish,
                auto_subscribe,
            } => {
                let events = request.events.expect("a join comes with its event channel");
                self.events
                    .lock()
                    .unwrap()
                    .insert(participant.clone(), events);
                Rec::Join {
                    room,
                    pid: participant,
                    can_publish,
                    auto_subscribe,
                }
            }
            MediaCommand::Leave { participant } => Rec::Leave(participant),
            MediaCommand::PublisherOffer { participant, sdp } => {
                Rec::PublisherOffer(participant, sdp)
            }
            MediaCommand::SubscriberAnswer { participant, sdp } => {
                Rec::SubscriberAnswer(participant, sdp)
            }
            MediaCommand::Candidate {
                participant,
                target,
                ..
            } => Rec::Candidate(participant, target),
            MediaCommand::Publish {
                participant,
                track_id,
                mid,
                kind,
                ..
            } => Rec::Publish {
                pid: participant,
                track_id,
                mid,
                kind,
            },
            MediaCommand::Unpublish {
                participant,
                track_id,
            } => Rec::Unpublish(participant, track_id),
            MediaCommand::Subscribe {
                participant,
                track_id,
            } => Rec::Subscribe(participant, track_id),
            MediaCommand::Unsubscribe {
                participant,
                track_id,
            } => Rec::Unsubscribe(participant, track_id),
        };
        self.recs.lock().unwrap().push(rec);
        true
    }
}

/// A signaling server on 127.0.0.1:0.
pub struct Server {
    pub addr: SocketAddr,
    pub sig: Signaling,
    pub media: Arc<RecordingMedia>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(config: SignalingConfig) -> Self {
        let media = Arc::new(RecordingMedia::default());
        let sig = Signaling::new(config, media.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = app(sig.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            addr,
            sig,
            media,
            task,
        }
    }

    pub async fn connect(&self) -> Client {
        Client::connect(&format!("ws://{}/rtc", self.addr)).await
    }

    /// Connects and joins; returns the client, its id and the room state.
    pub async fn join(&self, room: &str, identity: &str) -> (Client, String, RoomState) {
        let mut c = self.connect().await;
        let (pid, state) = c.join(&token(room, identity)).await;
        (c, pid, state)
    }

    /// Connects and joins; returns the client and the whole `joined`.
    pub async fn join_full(&self, room: &str, identity: &str) -> (Client, JoinedInfo) {
        let mut c = self.connect().await;
        c.join_raw(&token(room, identity)).await;
        match c.recv().await {
            ServerMessage::Joined {
                participant_id,
                room,
                mls,
                resume_token,
                ..
            } => (
                c,
                JoinedInfo {
                    pid: participant_id,
                    room,
                    mls,
                    resume_token,
                },
            ),
            other => panic!("expected joined, got {other:?}"),
        }
    }

    /// Waits until exactly `n` participants are suspended.
    pub async fn wait_suspended(&self, n: u64) {
        let fut = async {
            while metric(&self.metrics(), "sfu_signaling_suspended_participants") != n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(PATIENCE, fut)
            .await
            .unwrap_or_else(|_| panic!("never {n} suspended participants"));
    }

    pub fn metrics(&self) -> String {
        let mut s = String::new();
        self.sig.render_metrics(&mut s);
        s
    }

    /// Waits until every connection has ended (so every leave happened).
    pub async fn idle(&self) {
        tokio::time::timeout(PATIENCE, self.sig.wait_idle())
            .await
            .expect("connections did not close");
    }
}

impl Server {
    /// Waits until exactly `n` connections are open.
    pub async fn wait_connections(&self, n: usize) {
        let fut = async {
            while self.sig.connections() != n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(PATIENCE, fut)
            .await
            .unwrap_or_else(|_| panic!("{} connections, expected {n}", self.sig.connections()));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The value of an unlabelled or labelled metric line.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no metric {series} in\n{text}"))
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a wait for the server ended.
#[derive(Debug)]
pub enum Next {
    Msg(ServerMessage),
    Closed,
}

impl Client {
    pub async fn connect(url: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Self { ws }
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        self.send_raw(&serde_json::to_string(msg).unwrap()).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next protocol message, or `Closed`. Panics after [`PATIENCE`].
    pub async fn next(&mut self) -> Next {
        let fut = async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Text(t))) => {
                        return Next::Msg(serde_json::from_str(t.as_str()).unwrap());
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
        tokio::time::timeout(PATIENCE, fut)
            .await
            .expect("timed out waiting for the server")
    }

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

    pub async fn join(&mut self, token: &str) -> (String, RoomState) {
        self.join_raw(token).await;
        match self.recv().await {
            ServerMessage::Joined {
                participant_id,
                room,
                ..
            } => (participant_id, room),
            other => panic!("expected joined, got {other:?}"),
        }
    }

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

    /// Sends an MLS commit.
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

/// What `joined` said.
#[derive(Debug, Clone)]
pub struct JoinedInfo {
    pub pid: String,
    pub room: RoomState,
    pub mls: MlsInfo,
    pub resume_token: String,
}
