//! The signaling-driven path of `Participant`, against a mock SFU on
//! loopback (the real one is tested from the `sfu` crate): connect errors,
//! then a full session with publish, subscription mapping, media,
//! keyframe requests and leave.

mod common;

use client_sdk::config::ConnectOptions;
use client_sdk::proto::Target;
use client_sdk::transport::{Event, Events, Participant, RemoteTrack};
use client_sdk::{CloseReason, Codec, ConnectError, TrackSpec};
use common::{LIMIT, collect_and_check, mock_sfu, payload};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const PACKETS: u32 = 200;

async fn next_event(events: &mut Events) -> Event {
    tokio::time::timeout(LIMIT, events.recv())
        .await
        .expect("event within the limit")
        .expect("session still open")
}

/// A one-shot WebSocket server that answers `join` with `reply` (raw JSON),
/// or never answers when `reply` is `None`.
async fn scripted(reply: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let mut ws = tokio_tungstenite::accept_async(tcp).await.expect("ws");
        let _join = ws.next().await;
        match reply {
            Some(reply) => {
                let _ = ws.send(Message::Text(reply.into())).await;
                let _ = ws.next().await;
            }
            None => tokio::time::sleep(LIMIT).await,
        }
    });
    format!("ws://{addr}/rtc")
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let result =
        Participant::connect(&format!("ws://{addr}/rtc"), "t", ConnectOptions::loopback()).await;
    assert!(
        matches!(result, Err(ConnectError::Unreachable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_refused_token_is_unauthorized() {
    let url = scripted(Some(
        r#"{"type":"error","code":"unauthorized","message":"token expired"}"#,
    ))
    .await;
    let result = Participant::connect(&url, "t", ConnectOptions::loopback()).await;
    match result {
        Err(ConnectError::Unauthorized(message)) => assert_eq!(message, "token expired"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[tokio::test]
async fn an_http_401_upgrade_is_unauthorized() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 2048];
        let _ = tcp.read(&mut buf).await;
        let _ = tcp
            .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
            .await;
    });
    let result =
        Participant::connect(&format!("ws://{addr}/rtc"), "t", ConnectOptions::loopback()).await;
    assert!(
        matches!(result, Err(ConnectError::Unauthorized(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn another_protocol_version_is_reported() {
    let url = scripted(Some(
        r#"{"type":"error","code":"protocol_version","message":"speak 2"}"#,
    ))
    .await;
    let result = Participant::connect(&url, "t", ConnectOptions::loopback()).await;
    assert!(
        matches!(result, Err(ConnectError::ProtocolVersion { client: 1, .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let url = scripted(None).await;
    let options = ConnectOptions::loopback().with_connect_timeout(Duration::from_millis(300));
    let result = Participant::connect(&url, "t", options).await;
    assert!(
        matches!(result, Err(ConnectError::Timeout(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_bad_url_is_invalid() {
    let result =
        Participant::connect("http://127.0.0.1:1/rtc", "t", ConnectOptions::loopback()).await;
    assert!(
        matches!(result, Err(ConnectError::InvalidUrl(_))),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_publishes_and_receives_through_signaling() {
    common::init_tracing();
    let (url, log) = mock_sfu::start().await;
    let options = ConnectOptions::loopback().with_ping_interval(Duration::from_millis(200));
    let (me, mut events) = Participant::connect(&url, "secret-token", options)
        .await
        .expect("connect");
    assert_eq!(me.participant_id(), mock_sfu::PARTICIPANT);
    assert_eq!(me.room().participants.len(), 1);
    assert_eq!(
        log.lock().expect("log").joined_with,
        Some((1, "secret-token".to_owned()))
    );

    let mic = me
        .publish_track(TrackSpec::new("mic", Codec::opus()))
        .await
        .expect("publish audio");
    assert_eq!(mic.track_id(), mock_sfu::track_id("mic"));
    let cam = me
        .publish_track(TrackSpec::new("cam", Codec::vp8()))
        .await
        .expect("publish video");
    assert!(matches!(
        me.publish_track(TrackSpec::new("cam", Codec::vp8())).await,
        Err(client_sdk::PublishError::DuplicateCid(_))
    ));
    me.wait_connected(Target::Publisher, LIMIT)
        .await
        .expect("publisher connected");

    for i in 0..PACKETS {
        mic.write_rtp(payload("mic", i), i * 960, false)
            .await
            .expect("write audio");
        cam.write_rtp(payload("cam", i), i * 3000, true)
            .await
            .expect("write video");
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    let mut tracks: HashMap<String, RemoteTrack> = HashMap::new();
    let mut published = 0;
    while tracks.len() < 2 {
        match next_event(&mut events).await {
            Event::TrackSubscribed(track) => {
                tracks.insert(track.info().track_id.clone(), track);
            }
            Event::TrackPublished(_) => published += 1,
            Event::ConnectionStateChanged { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(published, 2);

    for (cid, kind) in [
        ("mic", client_sdk::proto::TrackKind::Audio),
        ("cam", client_sdk::proto::TrackKind::Video),
    ] {
        let track = tracks
            .get_mut(&mock_sfu::track_id(cid))
            .expect("reflected track");
        assert_eq!(track.info().participant_id, mock_sfu::OTHER);
        assert_eq!(track.info().kind, kind);
        collect_and_check(cid, PACKETS, track).await;
    }

    // PLI from this subscriber travels up to this publisher's app.
    tracks[&mock_sfu::track_id("cam")]
        .request_keyframe()
        .await
        .expect("PLI");
    loop {
        match next_event(&mut events).await {
            Event::KeyframeRequested { cid } => {
                assert_eq!(cid, "cam");
                break;
            }
            Event::ConnectionStateChanged { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    me.leave().await;
    assert!(me.is_closed());
    loop {
        match next_event(&mut events).await {
            Event::Closed(reason) => {
                assert_eq!(reason, CloseReason::Left);
                break;
            }
            Event::ConnectionStateChanged { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // The mock reads `leave` asynchronously.
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !log.lock().expect("log").left {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never got `leave`"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let log = log.lock().expect("log");
    assert_eq!(log.published, vec!["mic", "cam"]);
    assert!(log.client_candidates > 0, "client trickled candidates");
    assert!(log.pings > 0, "client pinged");
}
