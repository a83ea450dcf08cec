//! Test kit for the signaling server: a recording media plane and a server
//! on loopback; the WebSocket client and tokens come from `testkit`.
#![allow(
    dead_code,
    unused_imports,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used
)]

pub mod mls;

use sfu_core::{MediaCommand, MediaEvent};
use signaling::media::{MediaRequest, MediaSink};
use signaling::proto::RoomState;
use signaling::server::{Signaling, SignalingConfig, app};
use signaling::token::{Grants, TokenKeys};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

pub use testkit::wait::LIMIT as PATIENCE;
use testkit::wait::{until, within};
pub use testkit::ws::{Client, JoinedInfo, Next};

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
    testkit::token::mint(&keys(), room, identity, grants)
}

pub fn admin_token(room: &str) -> String {
    token_with(room, "admin", testkit::token::admin_grants())
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
    TrackSettings {
        pid: String,
        track_id: String,
        visible: bool,
        max_width: Option<u16>,
        max_height: Option<u16>,
    },
}

/// A media plane double: records commands, keeps each participant's event
/// sender so the test can push events.
#[derive(Default)]
pub struct RecordingMedia {
    recs: Mutex<Vec<Rec>>,
    /// The layer sizes of each published track, by track id.
    sizes: Mutex<HashMap<String, Vec<sfu_core::LayerSize>>>,
    events: Mutex<HashMap<String, mpsc::Sender<MediaEvent>>>,
}

impl RecordingMedia {
    /// The layer sizes `track_id` was published with.
    pub fn layer_sizes(&self, track_id: &str) -> Option<Vec<sfu_core::LayerSize>> {
        self.sizes.lock().unwrap().get(track_id).cloned()
    }

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
                Rec::PublisherOffer(participant, sdp.into())
            }
            MediaCommand::SubscriberAnswer { participant, sdp } => {
                Rec::SubscriberAnswer(participant, sdp.into())
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
                layer_sizes,
                ..
            } => {
                self.sizes
                    .lock()
                    .unwrap()
                    .insert(track_id.clone(), layer_sizes);
                Rec::Publish {
                    pid: participant,
                    track_id,
                    mid,
                    kind,
                }
            }
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
            MediaCommand::TrackSettings {
                participant,
                track_id,
                visible,
                max_width,
                max_height,
            } => Rec::TrackSettings {
                pid: participant,
                track_id,
                visible,
                max_width,
                max_height,
            },
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
            // Client addresses, as the sfu records them, for the
            // per-address caps.
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, service).await.unwrap();
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
        let joined = c.join_full(&token(room, identity)).await;
        (c, joined)
    }

    /// Waits until exactly `n` participants are suspended.
    pub async fn wait_suspended(&self, n: u64) {
        until(&format!("{n} suspended participants"), || {
            metric(&self.metrics(), "sfu_signaling_suspended_participants") == n
        })
        .await;
    }

    pub fn metrics(&self) -> String {
        let mut s = String::new();
        self.sig.render_metrics(&mut s);
        s
    }

    /// Waits until every connection has ended (so every leave happened).
    pub async fn idle(&self) {
        within("connections to close", self.sig.wait_idle()).await;
    }

    /// Waits until exactly `n` connections are open.
    pub async fn wait_connections(&self, n: usize) {
        until(&format!("{n} connections"), || self.sig.connections() == n).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The value of an unlabelled or labelled metric line.
pub fn metric(text: &str, series: &str) -> u64 {
    testkit::metrics::sample(text, series)
        .unwrap_or_else(|| panic!("no metric {series} in\n{text}"))
}
