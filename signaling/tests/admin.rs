//! The admin REST API in process via `oneshot`, against a server whose
//! rooms are filled by real WebSocket clients.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::{Body, to_bytes};
use axum::http::{Method, Request, StatusCode, header};
use common::*;
use serde_json::Value;
use signaling::proto::{LeaveReason, MlsEntry, ServerMessage};
use signaling::server::app;
use signaling::token::{Grants, TokenKeys};
use std::time::Duration;
use tower::ServiceExt;

async fn call(
    srv: &Server,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let resp = app(srv.sig.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let unauth_header = resp.headers().get(header::WWW_AUTHENTICATE).is_some();
    assert_eq!(status == StatusCode::UNAUTHORIZED, unauth_header);
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, body)
}

#[tokio::test]
async fn healthz_is_ok() {
    let srv = Server::start(config()).await;
    let (status, body) = call(&srv, Method::GET, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, Value::String("ok".into()));
}

#[tokio::test]
async fn admin_requests_need_a_valid_admin_token() {
    let srv = Server::start(config()).await;
    let admin = admin_token("");

    let (s, body) = call(&srv, Method::GET, "/admin/rooms", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");

    let (s, _) = call(&srv, Method::GET, "/admin/rooms", Some("garbage")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let forged = TokenKeys::new(keys().api_key(), "not-the-server-secret-not-the-server")
        .mint(
            "",
            "admin",
            "",
            Grants {
                publish: false,
                subscribe: false,
                admin: true,
            },
            Duration::from_secs(60),
        )
        .unwrap();
    let (s, body) = call(&srv, Method::GET, "/admin/rooms", Some(&forged)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(body["message"].as_str().unwrap().contains("signature"));

    let user = token(ROOM, "alice");
    let (s, body) = call(&srv, Method::GET, "/admin/rooms", Some(&user)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "forbidden");

    let (s, body) = call(&srv, Method::GET, "/admin/rooms", Some(&admin)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, serde_json::json!([]));

    let (s, body) = call(
        &srv,
        Method::GET,
        "/admin/rooms/nope/participants",
        Some(&admin),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let (s, _) = call(&srv, Method::DELETE, "/admin/rooms/nope", Some(&admin)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = call(
        &srv,
        Method::DELETE,
        "/admin/rooms/nope/participants/PA_x",
        Some(&admin),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn admin_lists_rooms_and_participants_and_removes_one() {
    let srv = Server::start(config()).await;
    let admin = admin_token("");
    let (mut a, a_id, _) = srv.join(ROOM, "alice").await;
    let (mut b, b_id, _) = srv.join(ROOM, "bob").await;
    let (_c, _, _) = srv.join("room-2", "carol").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    a.send(&signaling::proto::ClientMessage::Publish {
        track: signaling::proto::TrackPublish::new(
            "cam",
            "1",
            signaling::proto::TrackKind::Video,
            "VP8",
        ),
    })
    .await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::TrackAccepted { .. }
    ));
    assert!(matches!(
        b.recv().await,
        ServerMessage::TrackPublished { .. }
    ));

    let (s, body) = call(&srv, Method::GET, "/admin/rooms", Some(&admin)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body,
        serde_json::json!([
            {"name": ROOM, "participants": 2, "tracks": 1},
            {"name": "room-2", "participants": 1, "tracks": 0},
        ])
    );

    let (s, body) = call(
        &srv,
        Method::GET,
        &format!("/admin/rooms/{ROOM}/participants"),
        Some(&admin),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let list = body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let alice = list
        .iter()
        .find(|p| p["participant_id"] == a_id.as_str())
        .unwrap();
    assert_eq!(alice["identity"], "alice");
    assert_eq!(alice["tracks"][0]["kind"], "video");
    assert!(list.iter().any(|p| p["participant_id"] == b_id.as_str()));

    // A room-scoped admin token manages only its room.
    let scoped = admin_token("room-2");
    let (s, body) = call(&srv, Method::GET, "/admin/rooms", Some(&scoped)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 1);
    let path = format!("/admin/rooms/{ROOM}/participants/{a_id}");
    let (s, _) = call(&srv, Method::DELETE, &path, Some(&scoped)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Remove Alice.
    let (s, _) = call(&srv, Method::DELETE, &path, Some(&admin)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        a.recv().await,
        ServerMessage::Closed {
            reason: LeaveReason::Removed
        }
    );
    a.expect_closed().await;
    assert_eq!(
        b.recv().await,
        ServerMessage::ParticipantLeft {
            participant_id: a_id.clone(),
            reason: LeaveReason::Removed
        }
    );
    // Alice founded the MLS group and was its only member: Bob founds anew.
    match b.recv_mls().await {
        (1, MlsEntry::Reset { founder, .. }) => assert_eq!(founder, b_id),
        other => panic!("expected a reset, got {other:?}"),
    }
    // Removing again: gone.
    let (s, _) = call(&srv, Method::DELETE, &path, Some(&admin)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    srv.wait_connections(2).await;
    assert_eq!(srv.media.leaves(&a_id), 1);

    let (_, body) = call(&srv, Method::GET, "/admin/rooms", Some(&admin)).await;
    assert_eq!(
        body[0],
        serde_json::json!({"name": ROOM, "participants": 1, "tracks": 0})
    );
    b.ping(1).await;
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_leaves_total{reason=\"removed\"}"), 1);
    assert_eq!(metric(&m, "sfu_leaves_total{reason=\"disconnected\"}"), 0);
}

#[tokio::test]
async fn admin_closes_a_room() {
    let srv = Server::start(config()).await;
    let admin = admin_token("");
    let (mut a, a_id, _) = srv.join(ROOM, "alice").await;
    let (mut b, b_id, _) = srv.join(ROOM, "bob").await;
    let (mut c, c_id, _) = srv.join("room-2", "carol").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));

    let (s, _) = call(
        &srv,
        Method::DELETE,
        &format!("/admin/rooms/{ROOM}"),
        Some(&admin),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    for x in [&mut a, &mut b] {
        assert_eq!(
            x.recv().await,
            ServerMessage::Closed {
                reason: LeaveReason::RoomClosed
            }
        );
        x.expect_closed().await;
    }
    srv.wait_connections(1).await;
    assert_eq!(srv.media.leaves(&a_id), 1);
    assert_eq!(srv.media.leaves(&b_id), 1);
    assert_eq!(srv.media.leaves(&c_id), 0);
    let (_, body) = call(&srv, Method::GET, "/admin/rooms", Some(&admin)).await;
    assert_eq!(
        body,
        serde_json::json!([{"name": "room-2", "participants": 1, "tracks": 0}])
    );
    let (s, _) = call(
        &srv,
        Method::GET,
        &format!("/admin/rooms/{ROOM}/participants"),
        Some(&admin),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    c.ping(1).await;
    // The room can be joined afresh.
    srv.join(ROOM, "alice").await;
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_leaves_total{reason=\"room_closed\"}"), 2);
    assert_eq!(metric(&m, "sfu_rooms"), 2);
}
