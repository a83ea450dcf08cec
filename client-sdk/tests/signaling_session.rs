//! The signaling-driven path of `Participant`: connect errors against
//! scripted servers that misbehave on purpose, then a full session with the
//! real server (publish, subscription mapping, media, keyframe requests and
//! leave).

mod common;

use client_sdk::config::ConnectOptions;
use client_sdk::proto::Target;
use client_sdk::transport::{Event, Participant};
use client_sdk::{CloseReason, Codec, ConnectError, TrackSpec};
use common::{LIMIT, collect_and_check, drain, next_event, payload, warm_up};
use futures_util::{SinkExt, StreamExt};
use signaling::proto::LeaveReason;
use std::time::Duration;
use testkit::token::dev_token;
use testkit::wsproxy::{Dir, WsProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const PACKETS: u32 = 200;

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

/// What the client sent through `proxy`, parsed.
fn sent(proxy: &WsProxy) -> Vec<serde_json::Value> {
    proxy
        .captured()
        .into_iter()
        .filter(|c| c.dir == Dir::ToServer)
        .map(|c| serde_json::from_str(&c.text).expect("client sends JSON"))
        .collect()
}

/// The real server; Alice's signaling goes through a recording proxy,
/// Bob receives what she publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_publishes_and_receives_through_signaling() {
    common::init_tracing();
    let server = testkit::server::sfu().await;
    let proxy = WsProxy::start(testkit::server::url(&server)).await;
    let (bob, mut bob_events) = Participant::connect(
        &testkit::server::url(&server),
        &dev_token("room", "bob"),
        ConnectOptions::loopback(),
    )
    .await
    .expect("bob connects");
    let token = dev_token("room", "alice");
    let options = ConnectOptions::loopback().with_ping_interval(Duration::from_millis(200));
    let (me, mut events) = Participant::connect(&proxy.url(), &token, options)
        .await
        .expect("connect");
    assert!(!me.participant_id().is_empty());
    assert_ne!(me.participant_id(), bob.participant_id());
    let others: Vec<&str> = me
        .room()
        .participants
        .iter()
        .map(|p| p.participant_id.as_str())
        .collect();
    assert_eq!(others, [bob.participant_id()]);
    let join = &sent(&proxy)[0];
    assert_eq!(join["type"], "join");
    assert_eq!(
        (join["protocol"].as_u64(), join["token"].as_str()),
        (Some(1), Some(token.as_str()))
    );

    let mic = me
        .publish_track(TrackSpec::new("mic", Codec::opus()))
        .await
        .expect("publish audio");
    assert!(!mic.track_id().is_empty());
    let cam = me
        .publish_track(TrackSpec::new("cam", Codec::vp8()))
        .await
        .expect("publish video");
    assert_ne!(mic.track_id(), cam.track_id());
    assert!(matches!(
        me.publish_track(TrackSpec::new("cam", Codec::vp8())).await,
        Err(client_sdk::PublishError::DuplicateCid(_))
    ));
    me.wait_connected(Target::Publisher, LIMIT)
        .await
        .expect("publisher connected");

    let mut published = 0;
    let mut count = |e: Event| match e {
        Event::TrackPublished(_) => published += 1,
        Event::ConnectionStateChanged { .. }
        | Event::ParticipantJoined(_)
        | Event::TrackUnpublished { .. }
        | Event::TrackUnsubscribed { .. } => {}
        other => panic!("unexpected {other:?}"),
    };
    let (mut mic_in, _) = warm_up(&mic, "mic", &mut bob_events, &mut count).await;
    let (mut cam_in, _) = warm_up(&cam, "cam", &mut bob_events, &mut count).await;

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
    for (local, remote, kind) in [
        (&mic, &mut mic_in, client_sdk::proto::TrackKind::Audio),
        (&cam, &mut cam_in, client_sdk::proto::TrackKind::Video),
    ] {
        assert_eq!(remote.info().track_id, local.track_id());
        assert_eq!(remote.info().participant_id, me.participant_id());
        assert_eq!(remote.info().kind, kind);
        collect_and_check(local.cid(), PACKETS, remote).await;
    }

    // PLI from the subscriber travels through the server up to this
    // publisher's app. The server asks for keyframes itself when a
    // subscription starts; once those have come, only Bob's request can
    // bring another.
    let own = |e: Event| match e {
        Event::KeyframeRequested { .. }
        | Event::ConnectionStateChanged { .. }
        | Event::TrackPublished(_) => {}
        other => panic!("unexpected {other:?}"),
    };
    drain(&mut events, Duration::from_millis(800), own).await;
    cam_in.request_keyframe().await.expect("PLI");
    loop {
        match next_event(&mut events).await {
            Event::KeyframeRequested { cid } => {
                assert_eq!(cid, "cam");
                break;
            }
            other => own(other),
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
            other => own(other),
        }
    }
    // The server got `leave`: Bob is told Alice left (not that she vanished).
    loop {
        match next_event(&mut bob_events).await {
            Event::ParticipantLeft {
                participant_id,
                reason,
            } => {
                assert_eq!(participant_id, me.participant_id());
                assert_eq!(reason, LeaveReason::Left);
                break;
            }
            other => count(other),
        }
    }
    assert_eq!(published, 2);
    let sent = sent(&proxy);
    let of = |t: &'static str| sent.iter().filter(move |m| m["type"] == t);
    let cids: Vec<&str> = of("publish")
        .filter_map(|m| m["track"]["cid"].as_str())
        .collect();
    assert_eq!(cids, ["mic", "cam"]);
    assert!(of("candidate").count() > 0, "client trickled candidates");
    assert!(of("ping").count() > 0, "client pinged");
    assert_eq!(of("leave").count(), 1);
    bob.leave().await;
}
