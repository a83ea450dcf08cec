//! The messages around simulcast and SVC layers end to end: declared layer
//! sizes and subscriber preferences reach the media plane; its pauses,
//! speaker changes and dynacast announcements reach the client.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use sfu_core::MediaEvent;
use signaling::proto::{
    ClientMessage, ErrorCode, LayerSize, ServerMessage, TrackInfo, TrackKind, TrackPublish,
};

const ROOM: &str = "layers";

fn size(width: u16, height: u16) -> LayerSize {
    LayerSize { width, height }
}

async fn publish(c: &mut Client, track: TrackPublish) -> TrackInfo {
    c.send(&ClientMessage::Publish { track }).await;
    match c.recv().await {
        ServerMessage::TrackAccepted { track, .. } => track,
        other => panic!("expected track_accepted, got {other:?}"),
    }
}

fn camera() -> TrackPublish {
    let mut t = TrackPublish::new("camera", "0", TrackKind::Video, "VP8");
    t.simulcast = vec!["f".into(), "h".into(), "q".into()];
    t.layers = vec![size(320, 180), size(640, 360), size(1280, 720)];
    t
}

#[tokio::test]
async fn layer_sizes_and_track_settings_reach_the_media_plane() {
    let srv = Server::start(config()).await;
    let (mut a, _a_id, _) = srv.join(ROOM, "alice").await;
    let (mut b, b_id, _) = srv.join(ROOM, "bob").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    let track = publish(&mut a, camera()).await;
    assert!(matches!(
        b.recv().await,
        ServerMessage::TrackPublished { .. }
    ));
    assert_eq!(
        srv.media.layer_sizes(&track.track_id),
        Some(
            [(320, 180), (640, 360), (1280, 720)]
                .map(|(width, height)| sfu_core::LayerSize { width, height })
                .to_vec()
        )
    );

    // Absent fields: visible, no limit.
    b.send_raw(&format!(
        r#"{{"type":"track_settings","track_id":"{}"}}"#,
        track.track_id
    ))
    .await;
    b.send(&ClientMessage::TrackSettings {
        track_id: track.track_id.clone(),
        visible: true,
        max_width: Some(320),
        max_height: Some(180),
    })
    .await;
    b.send(&ClientMessage::TrackSettings {
        track_id: track.track_id.clone(),
        visible: false,
        max_width: None,
        max_height: None,
    })
    .await;
    b.ping(1).await;
    let settings: Vec<Rec> = srv
        .media
        .recs()
        .into_iter()
        .filter(|r| matches!(r, Rec::TrackSettings { .. }))
        .collect();
    let rec = |visible, max_width, max_height| Rec::TrackSettings {
        pid: b_id.clone(),
        track_id: track.track_id.clone(),
        visible,
        max_width,
        max_height,
    };
    assert_eq!(
        settings,
        vec![
            rec(true, None, None),
            rec(true, Some(320), Some(180)),
            rec(false, None, None)
        ]
    );

    // Not for an unknown track, nor for one's own.
    b.send(&ClientMessage::TrackSettings {
        track_id: "TR_nope".into(),
        visible: true,
        max_width: None,
        max_height: None,
    })
    .await;
    b.expect_error(ErrorCode::NotFound).await;
    a.send(&ClientMessage::TrackSettings {
        track_id: track.track_id.clone(),
        visible: true,
        max_width: None,
        max_height: None,
    })
    .await;
    a.expect_error(ErrorCode::BadMessage).await;
}

#[tokio::test]
async fn unusable_layer_sizes_are_refused() {
    let srv = Server::start(config()).await;
    let (mut a, _, _) = srv.join(ROOM, "alice").await;
    let mut zero = camera();
    zero.layers[0] = size(0, 180);
    a.send(&ClientMessage::Publish { track: zero }).await;
    a.expect_error(ErrorCode::BadMessage).await;
    let mut many = camera();
    many.layers = vec![size(16, 16); 5];
    a.send(&ClientMessage::Publish { track: many }).await;
    a.expect_error(ErrorCode::BadMessage).await;
    // A width past u16 is not a message at all.
    a.send_raw(
        r#"{"type":"publish","track":{"cid":"c","mid":"0","kind":"video","codec":"VP8","layers":[{"width":70000,"height":1}]}}"#,
    )
    .await;
    a.expect_error(ErrorCode::BadMessage).await;
}

#[tokio::test]
async fn pauses_speakers_and_dynacast_reach_the_client() {
    let srv = Server::start(config()).await;
    let (mut a, a_id, _) = srv.join(ROOM, "alice").await;
    let events = [
        (
            MediaEvent::TrackPaused {
                track_id: "TR_x".into(),
                paused: true,
            },
            ServerMessage::TrackPaused {
                track_id: "TR_x".into(),
                paused: true,
            },
        ),
        (
            MediaEvent::ActiveSpeaker {
                participant_id: Some("PA_y".into()),
            },
            ServerMessage::ActiveSpeaker {
                participant_id: Some("PA_y".into()),
            },
        ),
        (
            MediaEvent::ActiveSpeaker {
                participant_id: None,
            },
            ServerMessage::ActiveSpeaker {
                participant_id: None,
            },
        ),
        (
            MediaEvent::PublisherLayers {
                track_id: "TR_z".into(),
                active: vec!["h".into(), "q".into()],
            },
            ServerMessage::PublisherLayers {
                track_id: "TR_z".into(),
                active: vec!["h".into(), "q".into()],
            },
        ),
    ];
    for (event, message) in events {
        srv.media.push(&a_id, event).await;
        assert_eq!(a.recv().await, message);
    }
}
