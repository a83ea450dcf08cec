//! A stand-in for the real SFU, good for one participant: it speaks the
//! signaling protocol over a real WebSocket on loopback, answers the
//! publisher transport with a bare [`Peer`], and sends each published track
//! straight back on the subscriber transport as if another participant
//! ("p0") had published it. PLI from the subscriber is passed up to the
//! publisher, as the SFU does.
//!
//! Through [`Control`] a test can also make it reuse an m-line as the real
//! SFU does: `unsubscribed` plus an offer with the m-line `inactive`, later
//! `subscribed` for another track id on the same mid plus an offer with it
//! `sendonly` again, the media going on with the same SSRC.

use super::LIMIT;
use client_sdk::transport::{InboundTrack, OutboundTrack, Peer, PeerConfig, PeerEvent, PeerEvents};
use client_sdk::{Codec, TrackSpec};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use signaling::proto::{ClientMessage, ServerMessage, Target, TrackInfo};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The id the mock gives the connecting participant.
pub const PARTICIPANT: &str = "p1";
/// The participant the reflected tracks are attributed to.
pub const OTHER: &str = "p0";

/// The server track id for a client `cid`.
pub fn track_id(cid: &str) -> String {
    format!("TR_{cid}")
}

fn track_info(cid: &str, kind: &str, codec: &str) -> TrackInfo {
    track_info_with_id(&track_id(cid), kind, codec)
}

fn track_info_with_id(track_id: &str, kind: &str, codec: &str) -> TrackInfo {
    serde_json::from_value(json!({
        "track_id": track_id,
        "participant_id": OTHER,
        "kind": kind,
        "codec": codec,
        "simulcast": [],
        "e2ee": false,
    }))
    .expect("track info")
}

/// What the mock saw the client do.
#[derive(Debug, Default)]
pub struct Log {
    pub joined_with: Option<(u32, String)>,
    pub published: Vec<String>,
    pub client_candidates: usize,
    pub pings: usize,
    pub left: bool,
}

/// A change to the subscriber transport.
#[derive(Debug)]
enum Request {
    /// Reflect the published track `cid` as `TR_{cid}` on a new m-line.
    Add(String, Codec),
    /// `unsubscribed` for what the m-line of `cid` carries, and an offer
    /// with that m-line `inactive`.
    Retire(String),
    /// Announce `track_id` (as published by [`OTHER`]), send `subscribed`
    /// for it on the m-line of `cid`, and an offer with it `sendonly`.
    Reassign(String, String),
}

/// Drives the mock's m-line reuse.
#[derive(Debug, Clone)]
pub struct Control(mpsc::UnboundedSender<Request>);

impl Control {
    /// Ends the subscription carried on `cid`'s m-line; the m-line goes
    /// `inactive` (not stopped).
    pub fn retire(&self, cid: &str) {
        let _ = self.0.send(Request::Retire(cid.to_owned()));
    }

    /// Reuses `cid`'s m-line for a new track `track_id`: whatever the client
    /// publishes as `cid` arrives there from now on, as that track.
    pub fn reassign(&self, cid: &str, track_id: &str) {
        let _ = self
            .0
            .send(Request::Reassign(cid.to_owned(), track_id.to_owned()));
    }
}

/// Starts the mock; returns its `ws://` URL and what it records.
pub async fn start() -> (String, Arc<Mutex<Log>>) {
    let (url, log, _) = start_controlled().await;
    (url, log)
}

/// Starts the mock; returns its `ws://` URL, what it records, and the
/// handle that drives m-line reuse.
pub async fn start_controlled() -> (String, Arc<Mutex<Log>>, Control) {
    let (renegotiate, renegotiate_rx) = mpsc::unbounded_channel::<Request>();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let log = Arc::new(Mutex::new(Log::default()));
    let task_log = Arc::clone(&log);
    let renegotiate_task = renegotiate.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let ws = tokio_tungstenite::accept_async(tcp).await.expect("ws");
        serve(ws, task_log, renegotiate_task, renegotiate_rx).await;
    });
    (format!("ws://{addr}/rtc"), log, Control(renegotiate))
}

type Send = mpsc::UnboundedSender<ServerMessage>;

async fn serve(
    ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    log: Arc<Mutex<Log>>,
    renegotiate: mpsc::UnboundedSender<Request>,
    renegotiate_rx: mpsc::UnboundedReceiver<Request>,
) {
    let (mut sink, mut stream) = ws.split();
    let (out, mut out_rx) = mpsc::unbounded_channel::<ServerMessage>();
    tokio::spawn(async move {
        while let Some(message) = out_rx.recv().await {
            let text = serde_json::to_string(&message).expect("encode");
            if sink.send(Message::Text(text.into())).await.is_err() {
                break;
            }
        }
    });

    let (publisher, publisher_events) = Peer::new(PeerConfig::loopback()).await.expect("peer");
    let (subscriber, subscriber_events) = Peer::new(PeerConfig::loopback()).await.expect("peer");
    let (publisher, subscriber) = (Arc::new(publisher), Arc::new(subscriber));
    let outbound: Arc<Mutex<HashMap<String, Arc<OutboundTrack>>>> = Arc::default();
    let plis: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<()>>>> = Arc::default();
    let (answers, answers_rx) = mpsc::unbounded_channel::<String>();

    tokio::spawn(publisher_side(
        publisher_events,
        out.clone(),
        Arc::clone(&subscriber),
        Arc::clone(&outbound),
        Arc::clone(&plis),
    ));
    tokio::spawn(subscriber_side(
        subscriber_events,
        out.clone(),
        Arc::clone(&plis),
    ));
    tokio::spawn(negotiate_subscriber(
        Arc::clone(&subscriber),
        renegotiate_rx,
        answers_rx,
        out.clone(),
        Arc::clone(&outbound),
    ));

    let mut codecs: HashMap<String, Codec> = HashMap::new();
    while let Some(Ok(frame)) = stream.next().await {
        let Message::Text(text) = frame else { continue };
        let message: ClientMessage = serde_json::from_str(&text).expect("client message");
        match message {
            ClientMessage::Join {
                protocol, token, ..
            } => {
                log.lock().expect("log").joined_with = Some((protocol, token));
                let joined = json!({
                    "type": "joined",
                    "protocol": 1,
                    "participant_id": PARTICIPANT,
                    "room": {"room": "r", "participants": [
                        {"participant_id": OTHER, "identity": "bob", "name": "Bob", "tracks": []}
                    ]},
                    "auto_subscribe": true,
                });
                let _ = out.send(serde_json::from_value(joined).expect("joined"));
            }
            ClientMessage::Publish { track } => {
                log.lock().expect("log").published.push(track.cid.clone());
                let codec = if track.codec == "opus" {
                    Codec::opus()
                } else {
                    Codec::vp8()
                };
                codecs.insert(track.cid.clone(), codec);
            }
            ClientMessage::Offer { target, sdp } => {
                assert_eq!(target, Target::Publisher);
                let answer = publisher.accept_offer(sdp).await.expect("publisher answer");
                let _ = out.send(ServerMessage::Answer {
                    target: Target::Publisher,
                    sdp: answer,
                });
                // Accept whatever was announced and not yet accepted.
                for (cid, codec) in codecs.drain() {
                    let (kind, name) = if codec.name == "opus" {
                        ("audio", "opus")
                    } else {
                        ("video", "VP8")
                    };
                    let info = track_info(&cid, kind, name);
                    let _ = out.send(ServerMessage::TrackAccepted {
                        cid: cid.clone(),
                        track: info.clone(),
                    });
                    let _ = out.send(ServerMessage::TrackPublished { track: info });
                    let _ = renegotiate.send(Request::Add(cid, codec));
                }
            }
            ClientMessage::Answer { target, sdp } => {
                assert_eq!(target, Target::Subscriber);
                let _ = answers.send(sdp);
            }
            ClientMessage::Candidate { target, candidate } => {
                log.lock().expect("log").client_candidates += 1;
                let peer = match target {
                    Target::Publisher => &publisher,
                    Target::Subscriber => &subscriber,
                };
                peer.add_remote_candidate(candidate)
                    .await
                    .expect("candidate");
            }
            ClientMessage::Ping { ts } => {
                log.lock().expect("log").pings += 1;
                let _ = out.send(ServerMessage::Pong { ts });
            }
            ClientMessage::Leave => {
                log.lock().expect("log").left = true;
            }
            _ => {}
        }
    }
    publisher.close().await;
    subscriber.close().await;
}

/// Applies one subscriber-transport change at a time and offers it,
/// waiting for each answer before the next offer.
async fn negotiate_subscriber(
    subscriber: Arc<Peer>,
    mut requests: mpsc::UnboundedReceiver<Request>,
    mut answers: mpsc::UnboundedReceiver<String>,
    out: Send,
    outbound: Arc<Mutex<HashMap<String, Arc<OutboundTrack>>>>,
) {
    // By cid: the m-line, and the track id it carries now.
    let mut lines: HashMap<String, (String, Option<String>)> = HashMap::new();
    while let Some(request) = requests.recv().await {
        let mut added = None;
        let mut inactive = None;
        match request {
            Request::Add(cid, codec) => {
                let track = subscriber
                    .add_track(&TrackSpec::new(cid.clone(), codec))
                    .await
                    .expect("reflected track");
                added = Some((cid, track));
            }
            Request::Retire(cid) => {
                let (mid, current) = lines.get_mut(&cid).expect("known cid");
                let track_id = current.take().expect("m-line in use");
                let _ = out.send(ServerMessage::Unsubscribed { track_id });
                inactive = Some(mid.clone());
            }
            Request::Reassign(cid, track_id) => {
                let (mid, current) = lines.get_mut(&cid).expect("known cid");
                assert!(current.is_none(), "m-line still in use");
                *current = Some(track_id.clone());
                let codec = outbound.lock().expect("map")[&cid].codec().clone();
                let (kind, name) = if codec.name == "opus" {
                    ("audio", "opus")
                } else {
                    ("video", "VP8")
                };
                let _ = out.send(ServerMessage::TrackPublished {
                    track: track_info_with_id(&track_id, kind, name),
                });
                let _ = out.send(ServerMessage::Subscribed {
                    track_id,
                    mid: mid.clone(),
                });
            }
        }
        let mut offer = subscriber.create_offer().await.expect("subscriber offer");
        if let Some((cid, track)) = &added {
            let mid = track.mid().await.expect("mid");
            let _ = out.send(ServerMessage::Subscribed {
                track_id: track_id(cid),
                mid: mid.clone(),
            });
            lines.insert(cid.clone(), (mid, Some(track_id(cid))));
        }
        if let Some(mid) = &inactive {
            // The mock's own transceiver stays `sendonly`: what the client
            // sees is what the real SFU sends, and the mock simply stops
            // writing while the m-line is unassigned.
            offer = with_direction(&offer, mid, "inactive");
        }
        let _ = out.send(ServerMessage::Offer {
            target: Target::Subscriber,
            sdp: offer,
        });
        let answer = answers.recv().await.expect("subscriber answer");
        subscriber
            .accept_answer(answer)
            .await
            .expect("apply answer");
        if let Some((cid, track)) = added {
            outbound.lock().expect("map").insert(cid, Arc::new(track));
        }
    }
}

/// `sdp` with the m-line `mid`'s direction attribute replaced by `direction`.
fn with_direction(sdp: &str, mid: &str, direction: &str) -> String {
    let mut sections: Vec<String> = sdp.split("\r\nm=").map(str::to_owned).collect();
    let tag = format!("\r\na=mid:{mid}\r\n");
    let section = sections
        .iter_mut()
        .skip(1)
        .find(|s| s.contains(&tag))
        .expect("m-line in the offer");
    for from in ["sendrecv", "sendonly", "recvonly", "inactive"] {
        *section = section.replace(
            &format!("\r\na={from}\r\n"),
            &format!("\r\na={direction}\r\n"),
        );
    }
    sections.join("\r\nm=")
}

/// Trickles the publisher transport's candidates and reflects its tracks.
async fn publisher_side(
    mut events: PeerEvents,
    out: Send,
    subscriber: Arc<Peer>,
    outbound: Arc<Mutex<HashMap<String, Arc<OutboundTrack>>>>,
    plis: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<()>>>>,
) {
    while let Some(event) = events.recv().await {
        match event {
            PeerEvent::LocalCandidate(candidate) => {
                let _ = out.send(ServerMessage::Candidate {
                    target: Target::Publisher,
                    candidate,
                });
            }
            PeerEvent::Track(inbound) => {
                let (pli_tx, pli_rx) = mpsc::unbounded_channel();
                plis.lock()
                    .expect("map")
                    .insert(inbound.track_id().to_owned(), pli_tx);
                tokio::spawn(reflect(
                    inbound,
                    pli_rx,
                    Arc::clone(&subscriber),
                    Arc::clone(&outbound),
                ));
            }
            _ => {}
        }
    }
}

/// Trickles the subscriber transport's candidates and passes PLI upstream.
async fn subscriber_side(
    mut events: PeerEvents,
    out: Send,
    plis: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<()>>>>,
) {
    while let Some(event) = events.recv().await {
        match event {
            PeerEvent::LocalCandidate(candidate) => {
                let _ = out.send(ServerMessage::Candidate {
                    target: Target::Subscriber,
                    candidate,
                });
            }
            PeerEvent::KeyframeRequested { cid } => {
                if let Some(tx) = plis.lock().expect("map").get(&cid) {
                    let _ = tx.send(());
                }
            }
            _ => {}
        }
    }
}

/// Sends one published track's packets back down, unchanged.
async fn reflect(
    mut inbound: InboundTrack,
    mut plis: mpsc::UnboundedReceiver<()>,
    subscriber: Arc<Peer>,
    outbound: Arc<Mutex<HashMap<String, Arc<OutboundTrack>>>>,
) {
    let cid = inbound.track_id().to_owned();
    let deadline = tokio::time::Instant::now() + LIMIT;
    let track = loop {
        let found = outbound.lock().expect("map").get(&cid).cloned();
        if let Some(track) = found {
            break track;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reflected track for {cid}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    subscriber
        .wait_connected(LIMIT)
        .await
        .expect("subscriber connected");
    loop {
        tokio::select! {
            packet = inbound.recv() => {
                let Some(packet) = packet else { break };
                if track
                    .write_rtp(packet.payload, packet.timestamp, packet.marker)
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Some(()) = plis.recv() => {
                let _ = inbound.request_keyframe().await;
            }
        }
    }
}
