//! The WebSocket protocol end to end: real clients against the server on
//! loopback, with a recording media plane.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use sfu_core::MediaEvent;
use signaling::proto::{
    ClientMessage, ErrorCode, IceCandidate, LeaveReason, MlsEntry, PROTOCOL_VERSION, ServerMessage,
    Target, TrackInfo, TrackKind, TrackPublish,
};
use signaling::token::{Claims, Grants, TokenKeys};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn audio(cid: &str) -> ClientMessage {
    ClientMessage::Publish {
        track: TrackPublish::new(cid, "0", TrackKind::Audio, "opus"),
    }
}

async fn publish(c: &mut Client, cid: &str) -> TrackInfo {
    c.send(&audio(cid)).await;
    match c.recv().await {
        ServerMessage::TrackAccepted { cid: got, track } => {
            assert_eq!(got, cid);
            track
        }
        other => panic!("expected track_accepted, got {other:?}"),
    }
}

#[tokio::test]
async fn join_returns_joined_and_tells_the_media_plane() {
    let srv = Server::start(config()).await;
    let mut c = srv.connect().await;
    c.join_raw(&token(ROOM, "alice")).await;
    let ServerMessage::Joined {
        protocol,
        participant_id,
        room,
        auto_subscribe,
        mls,
        resume_token,
    } = c.recv().await
    else {
        panic!("expected joined");
    };
    assert_eq!(protocol, PROTOCOL_VERSION);
    // Alone in the room: it founds the MLS group.
    assert!(mls.founder);
    assert_eq!((mls.epoch, mls.seq), (0, 0));
    assert_eq!(mls.group_id.len(), 32);
    assert_eq!(resume_token.len(), 32);
    assert!(resume_token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(participant_id.starts_with("PA_"), "{participant_id}");
    assert_eq!(room.room, ROOM);
    assert!(room.participants.is_empty());
    assert!(auto_subscribe);
    assert_eq!(
        srv.media.recs(),
        vec![Rec::Join {
            room: ROOM.into(),
            pid: participant_id.clone(),
            can_publish: true,
            auto_subscribe: true,
        }]
    );
    c.ping(1).await;
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_rooms"), 1);
    assert_eq!(metric(&m, "sfu_participants"), 1);
    assert_eq!(metric(&m, "sfu_joins_total"), 1);
}

#[tokio::test]
async fn two_clients_see_each_others_joins_tracks_and_leave() {
    let srv = Server::start(config()).await;
    let (mut a, a_id, _) = srv.join(ROOM, "alice").await;
    let (mut b, b_id, b_room) = srv.join(ROOM, "bob").await;

    // Bob's room state shows Alice; Alice hears of Bob.
    assert_eq!(b_room.participants.len(), 1);
    assert_eq!(b_room.participants[0].participant_id, a_id);
    assert_eq!(b_room.participants[0].identity, "alice");
    match a.recv().await {
        ServerMessage::ParticipantJoined { participant } => {
            assert_eq!(participant.participant_id, b_id);
            assert_eq!(participant.identity, "bob");
            assert!(participant.tracks.is_empty());
        }
        other => panic!("expected participant_joined, got {other:?}"),
    }

    // Alice publishes: she gets track_accepted, Bob gets track_published.
    let track = publish(&mut a, "mic").await;
    assert!(track.track_id.starts_with("TR_"));
    assert_eq!(track.participant_id, a_id);
    assert_eq!(track.kind, TrackKind::Audio);
    assert_eq!(
        b.recv().await,
        ServerMessage::TrackPublished {
            track: track.clone()
        }
    );
    // Not echoed to the publisher.
    a.ping(2).await;
    assert!(srv.media.recs().contains(&Rec::Publish {
        pid: a_id.clone(),
        track_id: track.track_id.clone(),
        mid: "0".into(),
        kind: sfu_core::TrackKind::Audio,
    }));

    // The cid is unique per participant.
    a.send(&audio("mic")).await;
    a.expect_error(ErrorCode::BadMessage).await;

    // A late joiner sees the track in its room state.
    let (mut c, c_id, c_room) = srv.join(ROOM, "carol").await;
    let alice = c_room
        .participants
        .iter()
        .find(|p| p.participant_id == a_id)
        .unwrap();
    assert_eq!(alice.tracks, vec![track.clone()]);
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    assert!(matches!(
        b.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));

    // Subscribe to an existing track, an unknown one, and one's own.
    b.send(&ClientMessage::Subscribe {
        track_id: track.track_id.clone(),
    })
    .await;
    b.ping(3).await;
    assert!(
        srv.media
            .recs()
            .contains(&Rec::Subscribe(b_id.clone(), track.track_id.clone()))
    );
    b.send(&ClientMessage::Subscribe {
        track_id: "TR_nope".into(),
    })
    .await;
    b.expect_error(ErrorCode::NotFound).await;
    a.send(&ClientMessage::Subscribe {
        track_id: track.track_id.clone(),
    })
    .await;
    a.expect_error(ErrorCode::BadMessage).await;
    b.send(&ClientMessage::Unsubscribe {
        track_id: track.track_id.clone(),
    })
    .await;
    b.ping(4).await;
    assert!(
        srv.media
            .recs()
            .contains(&Rec::Unsubscribe(b_id.clone(), track.track_id.clone()))
    );

    // Unpublish.
    a.send(&ClientMessage::Unpublish { cid: "mic".into() })
        .await;
    let unpublished = ServerMessage::TrackUnpublished {
        participant_id: a_id.clone(),
        track_id: track.track_id.clone(),
    };
    assert_eq!(b.recv().await, unpublished);
    assert_eq!(c.recv().await, unpublished);
    a.send(&ClientMessage::Unpublish { cid: "mic".into() })
        .await;
    a.expect_error(ErrorCode::NotFound).await;

    // Alice leaves.
    a.send(&ClientMessage::Leave).await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Closed {
            reason: LeaveReason::Left
        }
    );
    a.expect_closed().await;
    let left = ServerMessage::ParticipantLeft {
        participant_id: a_id.clone(),
        reason: LeaveReason::Left,
    };
    assert_eq!(b.recv().await, left);
    assert_eq!(c.recv().await, left);

    drop((b, c));
    srv.idle().await;
    assert_eq!(srv.media.leaves(&a_id), 1);
    assert_eq!(srv.media.leaves(&b_id), 1);
    assert_eq!(srv.media.leaves(&c_id), 1);
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_rooms"), 0);
    assert_eq!(metric(&m, "sfu_participants"), 0);
    assert_eq!(metric(&m, "sfu_leaves_total{reason=\"left\"}"), 1);
    assert_eq!(metric(&m, "sfu_leaves_total{reason=\"disconnected\"}"), 2);
}

/// A publisher's mute reaches the others once per change, and a late
/// joiner sees it in the room state; a cid it does not publish is refused.
#[tokio::test]
async fn mute_is_announced_once_per_change_and_kept_in_the_room_state() {
    let srv = Server::start(config()).await;
    let (mut a, a_id, _) = srv.join(ROOM, "alice").await;
    let (mut b, _, _) = srv.join(ROOM, "bob").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    let track = publish(&mut a, "mic").await;
    assert!(!track.muted);
    assert!(matches!(
        b.recv().await,
        ServerMessage::TrackPublished { .. }
    ));

    let mute = |muted| ClientMessage::Mute {
        cid: "mic".into(),
        muted,
    };
    let muted = |muted| ServerMessage::TrackMuted {
        participant_id: a_id.clone(),
        track_id: track.track_id.clone(),
        muted,
    };
    a.send(&mute(true)).await;
    a.send(&mute(true)).await;
    assert_eq!(b.recv().await, muted(true));
    // The repeat changed nothing, so the next message bob gets is the unmute.
    a.send(&mute(false)).await;
    assert_eq!(b.recv().await, muted(false));
    a.send(&mute(true)).await;
    assert_eq!(b.recv().await, muted(true));
    // Not echoed to the publisher.
    a.ping(7).await;

    let (_c, _, c_room) = srv.join(ROOM, "carol").await;
    let alice = c_room
        .participants
        .iter()
        .find(|p| p.participant_id == a_id)
        .unwrap();
    assert!(alice.tracks[0].muted);
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));

    a.send(&ClientMessage::Mute {
        cid: "camera".into(),
        muted: true,
    })
    .await;
    a.expect_error(ErrorCode::NotFound).await;
}

#[tokio::test]
async fn sdp_and_media_events_flow_both_ways() {
    let srv = Server::start(config()).await;
    let (mut a, a_id, _) = srv.join(ROOM, "alice").await;
    let (mut b, b_id, _) = srv.join(ROOM, "bob").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));

    // Client → media.
    a.send(&ClientMessage::Offer {
        target: Target::Publisher,
        sdp: "v=0 pub".into(),
    })
    .await;
    a.send(&ClientMessage::Answer {
        target: Target::Subscriber,
        sdp: "v=0 sub".into(),
    })
    .await;
    a.send(&ClientMessage::Candidate {
        target: Target::Publisher,
        candidate: IceCandidate {
            candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
            sdp_mid: Some("0".into()),
            sdp_m_line_index: Some(0),
        },
    })
    .await;
    a.ping(1).await;
    let recs = srv.media.recs();
    assert!(recs.contains(&Rec::PublisherOffer(a_id.clone(), "v=0 pub".into())));
    assert!(recs.contains(&Rec::SubscriberAnswer(a_id.clone(), "v=0 sub".into())));
    assert!(recs.contains(&Rec::Candidate(a_id.clone(), sfu_core::Target::Publisher)));

    // Wrong directions.
    a.send(&ClientMessage::Offer {
        target: Target::Subscriber,
        sdp: "x".into(),
    })
    .await;
    a.expect_error(ErrorCode::OutOfOrder).await;
    a.send(&ClientMessage::Answer {
        target: Target::Publisher,
        sdp: "x".into(),
    })
    .await;
    a.expect_error(ErrorCode::OutOfOrder).await;

    // Media → client.
    srv.media
        .push(&a_id, MediaEvent::PublisherAnswer { sdp: "ans".into() })
        .await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Answer {
            target: Target::Publisher,
            sdp: "ans".into()
        }
    );
    srv.media
        .push(&a_id, MediaEvent::SubscriberOffer { sdp: "off".into() })
        .await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Offer {
            target: Target::Subscriber,
            sdp: "off".into()
        }
    );
    srv.media
        .push(
            &a_id,
            MediaEvent::Subscribed {
                track_id: "TR_x".into(),
                mid: "3".into(),
            },
        )
        .await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Subscribed {
            track_id: "TR_x".into(),
            mid: "3".into()
        }
    );
    srv.media
        .push(
            &a_id,
            MediaEvent::Unsubscribed {
                track_id: "TR_x".into(),
            },
        )
        .await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Unsubscribed {
            track_id: "TR_x".into()
        }
    );
    srv.media
        .push(
            &a_id,
            MediaEvent::Error {
                message: "bad sdp".into(),
            },
        )
        .await;
    assert_eq!(a.expect_error(ErrorCode::Media).await, "bad sdp");
    a.ping(2).await;

    // A media timeout removes the participant.
    srv.media.push(&a_id, MediaEvent::Timeout).await;
    assert_eq!(
        a.recv().await,
        ServerMessage::Closed {
            reason: LeaveReason::MediaTimeout
        }
    );
    a.expect_closed().await;
    assert_eq!(
        b.recv().await,
        ServerMessage::ParticipantLeft {
            participant_id: a_id.clone(),
            reason: LeaveReason::MediaTimeout
        }
    );
    // Alice was the MLS group's only member: Bob founds a new one.
    assert!(matches!(
        b.recv_mls().await,
        (1, MlsEntry::Reset { founder, .. }) if founder == b_id
    ));
    b.ping(3).await;
    assert_eq!(srv.media.leaves(&a_id), 1);
    assert_eq!(srv.media.leaves(&b_id), 0);
}

/// When the media plane drops a participant's event queue (it fell behind
/// and its media was freed), the participant leaves as on a media timeout.
#[tokio::test]
async fn a_dropped_media_queue_removes_the_participant() {
    let srv = Server::start(config()).await;
    let (mut a, a_id, _) = srv.join("room", "alice").await;
    let (mut b, _, _) = srv.join("room", "bob").await;
    let _ = a.recv().await; // bob joined
    srv.media.drop_queue(&a_id);
    assert_eq!(
        a.recv().await,
        ServerMessage::Closed {
            reason: LeaveReason::MediaTimeout
        }
    );
    assert_eq!(
        b.recv().await,
        ServerMessage::ParticipantLeft {
            participant_id: a_id.clone(),
            reason: LeaveReason::MediaTimeout
        }
    );
    assert_eq!(srv.media.leaves(&a_id), 1);
}

async fn refused(srv: &Server, url_suffix: &str, join: ClientMessage, code: ErrorCode) -> String {
    let mut c = Client::connect(&format!("ws://{}/rtc{url_suffix}", srv.addr)).await;
    c.send(&join).await;
    let msg = c.expect_error(code).await;
    c.expect_closed().await;
    msg
}

fn join_msg(token: String) -> ClientMessage {
    ClientMessage::Join {
        protocol: PROTOCOL_VERSION,
        token,
        resume: None,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn bad_tokens_and_protocol_mismatch_are_refused_and_the_server_stays_healthy() {
    let srv = Server::start(config()).await;

    let m = refused(
        &srv,
        "",
        join_msg("not.a.jwt".into()),
        ErrorCode::Unauthorized,
    )
    .await;
    assert!(m.contains("malformed"), "{m}");

    let now = unix_now();
    let expired = keys()
        .sign(&Claims {
            iss: keys().api_key().into(),
            sub: "alice".into(),
            exp: now - 10,
            nbf: now - 100,
            room: ROOM.into(),
            name: "Alice".into(),
            grants: Grants::default(),
        })
        .unwrap();
    let m = refused(&srv, "", join_msg(expired), ErrorCode::Unauthorized).await;
    assert!(m.contains("expired"), "{m}");

    let forger = TokenKeys::new(keys().api_key(), "not-the-server-secret-not-the-server");
    let forged = forger
        .mint(
            ROOM,
            "mallory",
            "M",
            Grants::default(),
            Duration::from_secs(60),
        )
        .unwrap();
    let m = refused(&srv, "", join_msg(forged), ErrorCode::Unauthorized).await;
    assert!(m.contains("signature"), "{m}");

    let m = refused(
        &srv,
        "?room=other-room",
        join_msg(token(ROOM, "alice")),
        ErrorCode::Unauthorized,
    )
    .await;
    assert!(m.contains("another room"), "{m}");

    let m = refused(&srv, "", join_msg(admin_token("")), ErrorCode::Unauthorized).await;
    assert!(m.contains("no room"), "{m}");

    let m = refused(
        &srv,
        "",
        ClientMessage::Join {
            protocol: PROTOCOL_VERSION + 1,
            token: token(ROOM, "alice"),
            resume: None,
        },
        ErrorCode::ProtocolVersion,
    )
    .await;
    assert!(m.contains(&PROTOCOL_VERSION.to_string()), "{m}");

    // Nothing joined; the server still serves a good join (with the URL
    // room matching the token).
    assert!(srv.media.recs().is_empty());
    let mut c = Client::connect(&format!("ws://{}/rtc?room={ROOM}", srv.addr)).await;
    c.join(&token(ROOM, "alice")).await;
    let m = srv.metrics();
    assert_eq!(
        metric(&m, "sfu_signaling_errors_total{code=\"unauthorized\"}"),
        5
    );
    assert_eq!(
        metric(&m, "sfu_signaling_errors_total{code=\"protocol_version\"}"),
        1
    );
}

#[tokio::test]
async fn messages_before_join_are_out_of_order_but_the_connection_survives() {
    let srv = Server::start(config()).await;
    let mut c = srv.connect().await;
    c.send(&ClientMessage::Offer {
        target: Target::Publisher,
        sdp: "v=0".into(),
    })
    .await;
    c.expect_error(ErrorCode::OutOfOrder).await;
    c.send(&audio("mic")).await;
    c.expect_error(ErrorCode::OutOfOrder).await;
    c.send(&ClientMessage::Leave).await;
    c.expect_error(ErrorCode::OutOfOrder).await;
    c.ping(7).await;
    assert!(srv.media.recs().is_empty());
    let (_, _) = c.join(&token(ROOM, "alice")).await;
    // A second join on the same connection is out of order too.
    c.join_raw(&token(ROOM, "alice")).await;
    c.expect_error(ErrorCode::OutOfOrder).await;
    c.ping(8).await;
}

#[tokio::test]
async fn malformed_and_unknown_messages_are_bad_message_and_the_connection_survives() {
    let srv = Server::start(config()).await;
    let (mut c, _, _) = srv.join(ROOM, "alice").await;
    c.send_raw("{not json").await;
    c.expect_error(ErrorCode::BadMessage).await;
    c.send_raw(r#"{"type":"dance","steps":3}"#).await;
    c.expect_error(ErrorCode::BadMessage).await;
    c.send_raw(r#"{"type":"offer","target":"sideways","sdp":"x"}"#)
        .await;
    c.expect_error(ErrorCode::BadMessage).await;
    c.send_raw("[]").await;
    c.expect_error(ErrorCode::BadMessage).await;
    use futures_util::SinkExt;
    c.ws.send(tokio_tungstenite::tungstenite::Message::binary(vec![
        1u8, 2, 3,
    ]))
    .await
    .unwrap();
    c.expect_error(ErrorCode::BadMessage).await;
    c.ping(9).await;
    // Still joined and working.
    publish(&mut c, "mic").await;
    let m = srv.metrics();
    assert_eq!(
        metric(&m, "sfu_signaling_errors_total{code=\"bad_message\"}"),
        5
    );
}

#[tokio::test]
async fn a_second_join_of_the_same_identity_replaces_the_first() {
    let srv = Server::start(config()).await;
    let (mut a1, a1_id, _) = srv.join(ROOM, "alice").await;
    let (mut b, b_id, _) = srv.join(ROOM, "bob").await;
    assert!(matches!(
        a1.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    publish(&mut a1, "mic").await;
    assert!(matches!(
        b.recv().await,
        ServerMessage::TrackPublished { .. }
    ));

    let (_a2, a2_id, a2_room) = srv.join(ROOM, "alice").await;
    assert_ne!(a1_id, a2_id);
    let ids: Vec<_> = a2_room
        .participants
        .iter()
        .map(|p| p.identity.as_str())
        .collect();
    assert_eq!(ids, ["bob"]);

    assert_eq!(
        a1.recv().await,
        ServerMessage::Closed {
            reason: LeaveReason::Replaced
        }
    );
    a1.expect_closed().await;
    assert_eq!(
        b.recv().await,
        ServerMessage::ParticipantLeft {
            participant_id: a1_id.clone(),
            reason: LeaveReason::Replaced
        }
    );
    // The old Alice founded the MLS group: Bob, now the earliest-joined,
    // founds the next one, and the new Alice is an ordinary joiner.
    assert!(matches!(
        b.recv_mls().await,
        (1, MlsEntry::Reset { founder, .. }) if founder == b_id
    ));
    match b.recv().await {
        ServerMessage::ParticipantJoined { participant } => {
            assert_eq!(participant.participant_id, a2_id);
        }
        other => panic!("expected participant_joined, got {other:?}"),
    }
    b.ping(1).await;
    // Exactly one leave for the replaced session, even after its socket closed.
    srv.wait_connections(2).await;
    assert_eq!(srv.media.leaves(&a1_id), 1);
    assert_eq!(srv.media.leaves(&a2_id), 0);
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_participants"), 2);
    assert_eq!(metric(&m, "sfu_leaves_total{reason=\"replaced\"}"), 1);
    assert_eq!(metric(&m, "sfu_leaves_total{reason=\"disconnected\"}"), 0);
}

#[tokio::test]
async fn grants_are_enforced() {
    let srv = Server::start(config()).await;
    let (mut a, _, _) = srv.join(ROOM, "alice").await;
    let track = publish(&mut a, "mic").await;

    let viewer = Grants {
        publish: false,
        subscribe: false,
        admin: false,
    };
    let mut v = srv.connect().await;
    v.join_raw(&token_with(ROOM, "viewer", viewer)).await;
    let ServerMessage::Joined {
        participant_id,
        auto_subscribe,
        ..
    } = v.recv().await
    else {
        panic!("expected joined")
    };
    assert!(!auto_subscribe);
    assert!(srv.media.recs().contains(&Rec::Join {
        room: ROOM.into(),
        pid: participant_id,
        can_publish: false,
        auto_subscribe: false,
    }));
    v.send(&audio("mic")).await;
    v.expect_error(ErrorCode::Forbidden).await;
    v.send(&ClientMessage::Subscribe {
        track_id: track.track_id,
    })
    .await;
    v.expect_error(ErrorCode::Forbidden).await;
    v.ping(1).await;
}

#[tokio::test]
async fn a_full_room_refuses_joins() {
    let srv = Server::start(config().with_max_participants_per_room(1)).await;
    let (_a, _, _) = srv.join(ROOM, "alice").await;
    let mut b = srv.connect().await;
    b.join_raw(&token(ROOM, "bob")).await;
    let m = b.expect_error(ErrorCode::Unavailable).await;
    assert!(m.contains("full"), "{m}");
    b.expect_closed().await;
    // Another room is fine; the same identity may still replace itself.
    srv.join("room-2", "bob").await;
    srv.join(ROOM, "alice").await;
}
