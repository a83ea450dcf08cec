//! Session resume: a lost connection suspends its participant for the
//! grace period; a join with its resume token takes it back with every MLS
//! entry it missed. Times are short real times; assertions on time are
//! lower bounds (the server may not act early) with generous upper bounds.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use common::mls::*;
use common::*;
use e2ee::group::MlsClient;
use signaling::proto::{
    ClientMessage, ErrorCode, LeaveReason, MlsEntry, ServerMessage, TrackKind, TrackPublish,
};
use std::time::Duration;
use tokio::time::Instant;

/// Long enough that no test waits it out by accident.
const LONG_GRACE: Duration = Duration::from_secs(30);

fn app(seq: u64, pid: &str, message: &str) -> (u64, MlsEntry) {
    (
        seq,
        MlsEntry::Application {
            participant_id: pid.to_string(),
            epoch: 1,
            message: message.to_string(),
        },
    )
}

/// Alice founds the group and adds Bob: both have read up to seq 2.
async fn alice_and_bob(srv: &Server) -> (Client, JoinedInfo, Client, JoinedInfo) {
    let (a, ai, _, b, bi) = alice_and_bob_mls(srv).await;
    (a, ai, b, bi)
}

/// [`alice_and_bob`], with Alice's MLS client (in epoch 1).
async fn alice_and_bob_mls(srv: &Server) -> (Client, JoinedInfo, MlsClient, Client, JoinedInfo) {
    let (mut a, ai) = srv.join_full(ROOM, "alice").await;
    let mut ma = found(&mut a, &ai, "alice").await;
    let (mut b, bi) = srv.join_full(ROOM, "bob").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    let kb = send_key_package(&mut b, &mut mls("bob")).await;
    a.send(&commit_msg(&mut ma, &[&kb], &[])).await;
    for x in [&mut a, &mut b] {
        assert!(matches!(
            x.recv_mls().await,
            (1, MlsEntry::KeyPackage { .. })
        ));
        assert!(matches!(x.recv_mls().await, (2, MlsEntry::Commit { .. })));
    }
    ma.merge_pending_commit().unwrap();
    (a, ai, ma, b, bi)
}

#[tokio::test]
async fn a_resume_within_the_grace_replays_exactly_what_was_missed() {
    let srv = Server::start(config().with_resume_grace(LONG_GRACE)).await;
    let (mut a, ai, b, bi) = alice_and_bob(&srv).await;

    // Bob's connection drops without `leave`: he is suspended, not gone.
    drop(b);
    srv.wait_suspended(1).await;
    assert_eq!(metric(&srv.metrics(), "sfu_participants"), 2);

    // While he is away: chat, a joiner, a track.
    for i in 0..5 {
        a.chat(1, &format!("m{i}")).await;
    }
    for i in 0..5u64 {
        assert_eq!(a.recv_mls().await, app(3 + i, &ai.pid, &format!("m{i}")));
    }
    let (_c, ci) = srv.join_full(ROOM, "carol").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    a.send(&ClientMessage::Publish {
        track: TrackPublish::new("mic", "0", TrackKind::Audio, "opus"),
    })
    .await;
    let ServerMessage::TrackAccepted { track, .. } = a.recv().await else {
        panic!("expected track_accepted")
    };

    // Bob is back, having processed up to seq 2.
    let mut b = srv.connect().await;
    b.resume_raw(&token(ROOM, "bob"), &bi.pid, &bi.resume_token, 2)
        .await;
    let ServerMessage::Resumed {
        participant_id,
        room,
        mls,
    } = b.recv().await
    else {
        panic!("expected resumed")
    };
    assert_eq!(participant_id, bi.pid);
    let mut others: Vec<&str> = room
        .participants
        .iter()
        .map(|p| p.participant_id.as_str())
        .collect();
    others.sort();
    let mut want = vec![ai.pid.as_str(), ci.pid.as_str()];
    want.sort();
    assert_eq!(others, want);
    assert_eq!(mls.seq, 7);
    assert_eq!(mls.epoch, 1);
    assert_eq!(mls.group_id, bi.mls.group_id);
    assert!(!mls.founder);
    // The missed entries, exactly once each, in order...
    for i in 0..5u64 {
        assert_eq!(b.recv_mls().await, app(3 + i, &ai.pid, &format!("m{i}")));
    }
    // ...then the room events held while he was away...
    match b.recv().await {
        ServerMessage::ParticipantJoined { participant } => {
            assert_eq!(participant.participant_id, ci.pid)
        }
        other => panic!("expected participant_joined, got {other:?}"),
    }
    assert_eq!(b.recv().await, ServerMessage::TrackPublished { track });
    // ...and nothing more.
    b.ping(1).await;

    // Live again: the next entry comes once.
    a.chat(1, "after").await;
    assert_eq!(b.recv_mls().await, app(8, &ai.pid, "after"));
    assert_eq!(a.recv_mls().await, app(8, &ai.pid, "after"));
    b.ping(2).await;

    // Nobody saw Bob leave, and the media plane was not told anything.
    a.ping(3).await;
    assert_eq!(srv.media.leaves(&bi.pid), 0);
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_signaling_resumes_total"), 1);
    assert_eq!(metric(&m, "sfu_signaling_suspended_participants"), 0);
    assert_eq!(metric(&m, "sfu_joins_total"), 3);
}

/// The client gives up on a connection the server still thinks is alive
/// (say, after a network change): the resume takes over and the old
/// connection closes without the participant leaving.
#[tokio::test]
async fn a_resume_takes_over_a_connection_that_still_looks_alive() {
    let srv = Server::start(config().with_resume_grace(LONG_GRACE)).await;
    let (mut a, ai, mut old, bi) = alice_and_bob(&srv).await;
    a.chat(1, "x").await;
    assert_eq!(a.recv_mls().await, app(3, &ai.pid, "x"));
    let mut b = srv.connect().await;
    // Bob processed seq 2 but not 3 (it was in flight on the old socket).
    b.resume_raw(&token(ROOM, "bob"), &bi.pid, &bi.resume_token, 2)
        .await;
    assert!(matches!(b.recv().await, ServerMessage::Resumed { .. }));
    assert_eq!(b.recv_mls().await, app(3, &ai.pid, "x"));
    b.ping(1).await;
    // The old connection gets what was already written, then closes.
    loop {
        match old.next().await {
            Next::Closed => break,
            Next::Msg(ServerMessage::Mls { .. }) => {}
            Next::Msg(other) => panic!("unexpected {other:?} on the old connection"),
        }
    }
    srv.wait_connections(2).await;
    a.ping(2).await;
    assert_eq!(srv.media.leaves(&bi.pid), 0);
    assert_eq!(metric(&srv.metrics(), "sfu_participants"), 2);
}

#[tokio::test]
async fn a_resume_beyond_the_retained_log_is_a_gap_but_still_resumes() {
    let cfg = config()
        .with_resume_grace(LONG_GRACE)
        .with_mls_log_max_entries(4);
    let srv = Server::start(cfg).await;
    let (mut a, ai, mut ma, b, bi) = alice_and_bob_mls(&srv).await;
    drop(b);
    srv.wait_suspended(1).await;
    for i in 0..10 {
        a.chat(1, &format!("m{i}")).await;
    }
    for i in 0..10u64 {
        assert_eq!(a.recv_mls().await, app(3 + i, &ai.pid, &format!("m{i}")));
    }
    assert_eq!(metric(&srv.metrics(), "sfu_signaling_mls_log_entries"), 4);

    // The log holds 9..=12; Bob needs 3 onwards.
    let mut b = srv.connect().await;
    b.resume_raw(&token(ROOM, "bob"), &bi.pid, &bi.resume_token, 2)
        .await;
    let ServerMessage::Resumed { mls, .. } = b.recv().await else {
        panic!("expected resumed")
    };
    assert_eq!(mls.seq, 12);
    let m = b.expect_error(ErrorCode::MlsGap).await;
    assert!(m.contains("rejoin"), "{m}");
    // Nothing is replayed: the client rejoins the group from `mls.seq`.
    b.ping(1).await;
    a.chat(1, "live").await;
    assert_eq!(b.recv_mls().await, app(13, &ai.pid, "live"));
    assert_eq!(a.recv_mls().await, app(13, &ai.pid, "live"));
    // Still the same session.
    assert_eq!(srv.media.leaves(&bi.pid), 0);
    assert_eq!(
        metric(
            &srv.metrics(),
            "sfu_signaling_errors_total{code=\"mls_gap\"}"
        ),
        1
    );
    // Bob lost his group state, so he is no member until re-added...
    b.chat(1, "lost").await;
    b.expect_error(ErrorCode::Forbidden).await;
    // ...by a commit that replaces his old leaf with a new one.
    let kb = send_key_package(&mut b, &mut common::mls::mls("bob")).await;
    assert!(matches!(
        b.recv_mls().await,
        (14, MlsEntry::KeyPackage { .. })
    ));
    assert!(matches!(
        a.recv_mls().await,
        (14, MlsEntry::KeyPackage { .. })
    ));
    a.send(&commit_msg(&mut ma, &[&kb], &[1])).await;
    match b.recv_mls().await {
        (15, MlsEntry::Commit { added, removed, .. }) => {
            assert_eq!(
                (added, removed),
                (vec![bi.pid.clone()], vec![bi.pid.clone()])
            );
        }
        other => panic!("expected the re-adding commit, got {other:?}"),
    }
    b.chat(2, "back").await;
    assert!(matches!(
        b.recv_mls().await,
        (16, MlsEntry::Application { .. })
    ));
}

/// The group's only member resumes past the log: it will rejoin, so no
/// member is left and the group resets, founded by the earliest-joined
/// participant (here, itself).
#[tokio::test]
async fn a_lone_member_resuming_past_the_log_resets_the_group() {
    // Six KeyPackages in a row fill the log: more than the default rate.
    let kps = signaling::server::MessageRates::default()
        .with_key_package(signaling::server::RateLimit::new(100.0, 100));
    let cfg = config()
        .with_resume_grace(LONG_GRACE)
        .with_mls_log_max_entries(4)
        .with_message_rates(kps);
    let srv = Server::start(cfg).await;
    let (a, ai) = srv.join_full(ROOM, "alice").await;
    let (mut b, bi) = srv.join_full(ROOM, "bob").await;
    drop(a);
    srv.wait_suspended(1).await;
    let mut mb = mls("bob");
    for i in 1..=6u64 {
        send_key_package(&mut b, &mut mb).await;
        assert_eq!(b.recv_mls().await.0, i);
    }
    let mut a = srv.connect().await;
    a.resume_raw(&token(ROOM, "alice"), &ai.pid, &ai.resume_token, 0)
        .await;
    let ServerMessage::Resumed { mls, .. } = a.recv().await else {
        panic!("expected resumed")
    };
    assert_eq!(
        (mls.seq, mls.group_id.as_str()),
        (6, ai.mls.group_id.as_str())
    );
    a.expect_error(ErrorCode::MlsGap).await;
    let mut new_group = String::new();
    for x in [&mut a, &mut b] {
        let (seq, entry) = x.recv_mls().await;
        assert_eq!(seq, 7);
        let MlsEntry::Reset { group_id, founder } = entry else {
            panic!("expected a reset, got {entry:?}")
        };
        assert_eq!(founder, ai.pid);
        assert_ne!(group_id, ai.mls.group_id);
        new_group = group_id;
    }
    // Bob, still outside the group, waits to be added: Alice founds the new
    // group, Bob sends a new KeyPackage and Alice adds it.
    b.chat(0, "eA==").await;
    b.expect_error(ErrorCode::Forbidden).await;
    let refounded = JoinedInfo {
        mls: signaling::proto::MlsInfo {
            group_id: new_group,
            founder: true,
            ..mls
        },
        ..ai.clone()
    };
    let mut ma = found(&mut a, &refounded, "alice").await;
    let kb = send_key_package(&mut b, &mut mb).await;
    assert!(matches!(
        b.recv_mls().await,
        (8, MlsEntry::KeyPackage { .. })
    ));
    a.send(&commit_msg(&mut ma, &[&kb], &[])).await;
    assert!(matches!(b.recv_mls().await, (9, MlsEntry::Commit { .. })));
    let _ = bi;
}

#[tokio::test]
async fn a_bad_resume_is_refused_and_a_plain_join_replaces_the_suspended_session() {
    let srv = Server::start(config().with_resume_grace(LONG_GRACE)).await;
    let (mut a, ai, b, bi) = alice_and_bob(&srv).await;
    drop(b);
    srv.wait_suspended(1).await;

    let refused = |tok: String, pid: String, rt: String| {
        let srv = &srv;
        async move {
            let mut c = srv.connect().await;
            c.resume_raw(&tok, &pid, &rt, 2).await;
            let m = c.expect_error(ErrorCode::ResumeFailed).await;
            c.expect_closed().await;
            m
        }
    };
    // Wrong token, unknown participant, and someone else's identity.
    refused(token(ROOM, "bob"), bi.pid.clone(), "0".repeat(32)).await;
    refused(
        token(ROOM, "bob"),
        "PA_nobody".into(),
        bi.resume_token.clone(),
    )
    .await;
    refused(
        token(ROOM, "mallory"),
        bi.pid.clone(),
        bi.resume_token.clone(),
    )
    .await;
    // The same session in another room's token.
    refused(
        token("room-2", "bob"),
        bi.pid.clone(),
        bi.resume_token.clone(),
    )
    .await;
    assert_eq!(
        metric(
            &srv.metrics(),
            "sfu_signaling_errors_total{code=\"resume_failed\"}"
        ),
        4
    );
    // Bob is still suspended.
    assert_eq!(
        metric(&srv.metrics(), "sfu_signaling_suspended_participants"),
        1
    );

    // A plain join of the same identity replaces the suspended session.
    let (_b2, b2) = srv.join_full(ROOM, "bob").await;
    assert_eq!(
        a.recv().await,
        ServerMessage::ParticipantLeft {
            participant_id: bi.pid.clone(),
            reason: LeaveReason::Replaced
        }
    );
    match a.recv().await {
        ServerMessage::ParticipantJoined { participant } => {
            assert_eq!(participant.participant_id, b2.pid)
        }
        other => panic!("expected participant_joined, got {other:?}"),
    }
    srv.wait_suspended(0).await;
    assert_eq!(srv.media.leaves(&bi.pid), 1);
    // The old session cannot be resumed any more.
    refused(token(ROOM, "bob"), bi.pid.clone(), bi.resume_token.clone()).await;
    let _ = ai;
}

#[tokio::test]
async fn when_the_grace_expires_the_participant_leaves_and_the_group_resets() {
    let grace = Duration::from_millis(400);
    let srv = Server::start(config().with_resume_grace(grace)).await;
    // Alice founds the group and is its only member; Bob is not added.
    let (a, ai) = srv.join_full(ROOM, "alice").await;
    let (mut b, bi) = srv.join_full(ROOM, "bob").await;
    let lost = Instant::now();
    drop(a);
    assert_eq!(
        b.recv().await,
        ServerMessage::ParticipantLeft {
            participant_id: ai.pid.clone(),
            reason: LeaveReason::Disconnected
        }
    );
    assert!(lost.elapsed() >= grace, "left after {:?}", lost.elapsed());
    // No member is left: Bob founds a new group incarnation.
    let (seq, entry) = b.recv_mls().await;
    assert_eq!(seq, 1);
    let MlsEntry::Reset { group_id, founder } = entry else {
        panic!("expected a reset, got {entry:?}")
    };
    assert_eq!(founder, bi.pid);
    assert_ne!(group_id, ai.mls.group_id);
    assert_eq!(srv.media.leaves(&ai.pid), 1);
    // Bob founds the new group and may commit in its epoch 0.
    let refounded = JoinedInfo {
        mls: signaling::proto::MlsInfo {
            group_id,
            founder: true,
            ..bi.mls.clone()
        },
        ..bi.clone()
    };
    let mut mb = found(&mut b, &refounded, "bob").await;
    b.send(&commit_msg(&mut mb, &[], &[])).await;
    assert!(matches!(
        b.recv_mls().await,
        (2, MlsEntry::Commit { epoch: 0, .. })
    ));
    // Too late to resume.
    let mut a = srv.connect().await;
    a.resume_raw(&token(ROOM, "alice"), &ai.pid, &ai.resume_token, 0)
        .await;
    a.expect_error(ErrorCode::ResumeFailed).await;
    a.expect_closed().await;
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_leaves_total{reason=\"disconnected\"}"), 1);
    assert_eq!(
        metric(&m, "sfu_signaling_mls_entries_total{kind=\"reset\"}"),
        1
    );
}

#[tokio::test]
async fn a_suspended_participant_whose_buffer_overflows_is_removed_at_once() {
    let cfg = config().with_resume_grace(LONG_GRACE).with_resume_buffer(2);
    let srv = Server::start(cfg).await;
    let (mut a, _, b, bi) = alice_and_bob(&srv).await;
    drop(b);
    srv.wait_suspended(1).await;
    // MLS entries are not held (the log covers them), so chat alone never
    // overflows the buffer...
    for i in 0..5 {
        a.chat(1, &format!("m{i}")).await;
        a.recv_mls().await;
    }
    a.ping(1).await;
    assert_eq!(
        metric(&srv.metrics(), "sfu_signaling_suspended_participants"),
        1
    );
    // ...but room events are: the third one overflows.
    for cid in ["1", "2", "3"] {
        a.send(&ClientMessage::Publish {
            track: TrackPublish::new(cid, cid, TrackKind::Audio, "opus"),
        })
        .await;
        assert!(matches!(
            a.recv().await,
            ServerMessage::TrackAccepted { .. }
        ));
    }
    assert_eq!(
        a.recv().await,
        ServerMessage::ParticipantLeft {
            participant_id: bi.pid.clone(),
            reason: LeaveReason::Disconnected
        }
    );
    assert_eq!(srv.media.leaves(&bi.pid), 1);
    let mut b = srv.connect().await;
    b.resume_raw(&token(ROOM, "bob"), &bi.pid, &bi.resume_token, 2)
        .await;
    b.expect_error(ErrorCode::ResumeFailed).await;
}

#[tokio::test]
async fn a_silent_connection_is_suspended_and_can_resume() {
    let cfg = config()
        .with_resume_grace(LONG_GRACE)
        .with_ping_interval(Duration::from_millis(100))
        .with_ping_timeout(Duration::from_millis(400));
    let srv = Server::start(cfg).await;
    let (mut a, _) = srv.join_full(ROOM, "alice").await;
    // Bob joins, then neither reads nor writes: his pings time out.
    let (_silent, bi) = srv.join_full(ROOM, "bob").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    // Alice keeps talking, so only Bob goes silent.
    let deadline = Instant::now() + PATIENCE;
    let mut ts = 0;
    while metric(&srv.metrics(), "sfu_signaling_suspended_participants") == 0 {
        assert!(Instant::now() < deadline, "Bob was never suspended");
        a.ping(ts).await;
        ts += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut b = srv.connect().await;
    b.resume_raw(&token(ROOM, "bob"), &bi.pid, &bi.resume_token, 0)
        .await;
    assert!(matches!(b.recv().await, ServerMessage::Resumed { .. }));
    b.ping(1).await;
    a.ping(u64::MAX).await;
    assert_eq!(srv.media.leaves(&bi.pid), 0);
}

#[tokio::test]
async fn shutdown_ends_suspended_sessions_at_once() {
    let srv = Server::start(config().with_resume_grace(LONG_GRACE)).await;
    let (a, ai) = srv.join_full(ROOM, "alice").await;
    drop(a);
    srv.wait_suspended(1).await;
    srv.sig.shutdown();
    srv.idle().await;
    assert_eq!(srv.media.leaves(&ai.pid), 1);
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_participants"), 0);
    assert_eq!(metric(&m, "sfu_leaves_total{reason=\"room_closed\"}"), 1);
}
