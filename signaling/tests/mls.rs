//! The MLS delivery service end to end: real clients on loopback, speaking
//! real MLS (the server checks KeyPackages, GroupInfos and commits; chat
//! payloads stay opaque placeholders, the server never reads them).
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use common::mls::*;
use common::*;
use e2ee::group::MlsClient;
use signaling::proto::{ClientMessage, ErrorCode, MlsEntry, ServerMessage};
use signaling::server::{MessageRates, RateLimit};
use std::time::Duration;

/// One participant: its socket, its join answer and its MLS client.
type Member = (Client, JoinedInfo, MlsClient);

/// Alice founds the group, Bob and Carol join, and Alice adds both. Every
/// client has read the log up to the commit (seq 3) and is in epoch 1.
async fn group_of_three(srv: &Server) -> [Member; 3] {
    group_of_three_and_its_commit(srv).await.0
}

/// [`group_of_three`], and the epoch-0 commit as the log carried it.
async fn group_of_three_and_its_commit(srv: &Server) -> ([Member; 3], String) {
    let (mut a, ai) = srv.join_full(ROOM, "alice").await;
    let mut ma = found(&mut a, &ai, "alice").await;
    let (mut b, bi) = srv.join_full(ROOM, "bob").await;
    let (mut c, ci) = srv.join_full(ROOM, "carol").await;
    for _ in 0..2 {
        assert!(matches!(
            a.recv().await,
            ServerMessage::ParticipantJoined { .. }
        ));
    }
    assert!(matches!(
        b.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    let (mut mb, mut mc) = (mls("bob"), mls("carol"));
    let kb = send_key_package(&mut b, &mut mb).await;
    for x in [&mut a, &mut b, &mut c] {
        assert!(matches!(
            x.recv_mls().await,
            (1, MlsEntry::KeyPackage { .. })
        ));
    }
    let kc = send_key_package(&mut c, &mut mc).await;
    for x in [&mut a, &mut b, &mut c] {
        assert!(matches!(
            x.recv_mls().await,
            (2, MlsEntry::KeyPackage { .. })
        ));
    }
    a.send(&commit_msg(&mut ma, &[&kb, &kc], &[])).await;
    let mut welcome_seen = None;
    let mut commit_seen = String::new();
    for x in [&mut a, &mut b, &mut c] {
        let (seq, entry) = x.recv_mls().await;
        assert_eq!(seq, 3);
        let MlsEntry::Commit {
            participant_id,
            epoch,
            welcome,
            added,
            commit,
            ..
        } = entry
        else {
            panic!("expected a commit, got {entry:?}")
        };
        assert_eq!(participant_id, ai.pid);
        assert_eq!(epoch, 0);
        assert_eq!(added, [bi.pid.clone(), ci.pid.clone()]);
        welcome_seen = welcome;
        commit_seen = commit;
    }
    ma.merge_pending_commit().unwrap();
    let welcome = welcome_seen.expect("a welcome");
    join_from(&mut mb, &welcome);
    join_from(&mut mc, &welcome);
    ([(a, ai, ma), (b, bi, mb), (c, ci, mc)], commit_seen)
}

#[tokio::test]
async fn the_first_participant_founds_the_group_and_later_ones_join_it() {
    let srv = Server::start(config()).await;
    let (_a, ai) = srv.join_full(ROOM, "alice").await;
    assert!(ai.mls.founder);
    assert_eq!((ai.mls.epoch, ai.mls.seq), (0, 0));
    assert_eq!(ai.mls.group_id.len(), 32);
    let (_b, bi) = srv.join_full(ROOM, "bob").await;
    assert!(!bi.mls.founder);
    assert_eq!(bi.mls.group_id, ai.mls.group_id);
    assert_ne!(bi.resume_token, ai.resume_token);
    // Another room is another group.
    let (_c, ci) = srv.join_full("room-2", "carol").await;
    assert!(ci.mls.founder);
    assert_ne!(ci.mls.group_id, ai.mls.group_id);
}

#[tokio::test]
async fn key_packages_are_checked_and_reach_everyone_including_the_sender() {
    let srv = Server::start(config()).await;
    let (mut a, ai) = srv.join_full(ROOM, "alice").await;
    let _ma = found(&mut a, &ai, "alice").await;
    let (mut b, bi) = srv.join_full(ROOM, "bob").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    let mut mb = mls("bob");
    let first = send_key_package(&mut b, &mut mb).await;
    // The latest KeyPackage wins in the server's store; both are logged.
    let second = send_key_package(&mut b, &mut mb).await;
    for x in [&mut a, &mut b] {
        for (want_seq, want_kp) in [(1, &first), (2, &second)] {
            assert_eq!(
                x.recv_mls().await,
                (
                    want_seq,
                    MlsEntry::KeyPackage {
                        participant_id: bi.pid.clone(),
                        key_package: want_kp.clone()
                    }
                )
            );
        }
    }
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_signaling_mls_key_packages"), 1);
    assert_eq!(
        metric(&m, "sfu_signaling_mls_entries_total{kind=\"key_package\"}"),
        2
    );
    assert_eq!(metric(&m, "sfu_signaling_mls_log_entries"), 2);
    // An empty one, garbage, and one naming another identity are refused,
    // and neither kept nor logged.
    let mut mallory = mls("mallory");
    for bad in [
        String::new(),
        "a3AxCg==".to_string(),
        b64(&mallory.key_package().unwrap()),
    ] {
        b.send(&ClientMessage::MlsKeyPackage { key_package: bad })
            .await;
        b.expect_error(ErrorCode::BadMessage).await;
    }
    b.ping(1).await;
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_signaling_mls_log_entries"), 2);
    assert_eq!(
        metric(
            &m,
            "sfu_signaling_mls_refused_total{reason=\"invalid_key_package\"}"
        ),
        2
    );
}

#[tokio::test]
async fn two_commits_for_one_epoch_the_first_wins_and_the_second_is_rejected() {
    let srv = Server::start(config()).await;
    let [(mut a, ai, mut ma), (mut b, bi, mut mb), (mut c, _, _)] = group_of_three(&srv).await;
    // Alice and Bob both commit in epoch 1, at once.
    let (ca, cb) = (commit_msg(&mut ma, &[], &[]), commit_msg(&mut mb, &[], &[]));
    tokio::join!(a.send(&ca), b.send(&cb));
    // Everyone sees exactly one commit for epoch 1, the same one.
    let mut winners = Vec::new();
    for x in [&mut a, &mut b, &mut c] {
        match x.recv_mls().await {
            (
                4,
                MlsEntry::Commit {
                    participant_id,
                    epoch: 1,
                    ..
                },
            ) => winners.push(participant_id),
            other => panic!("expected the winning commit, got {other:?}"),
        }
    }
    assert!(winners.iter().all(|w| *w == winners[0]), "{winners:?}");
    // The loser hears of it after the winner's entry; the winner hears
    // nothing more.
    let (loser, winner, winner_commit) = if winners[0] == ai.pid {
        (&mut b, &mut a, ca)
    } else {
        assert_eq!(winners[0], bi.pid);
        (&mut a, &mut b, cb)
    };
    assert_eq!(
        loser.recv().await,
        ServerMessage::MlsCommitRejected {
            epoch: 1,
            current_epoch: 2
        }
    );
    loser.ping(1).await;
    winner.ping(2).await;
    c.ping(3).await;
    // The winning commit replayed is stale too.
    winner.send(&winner_commit).await;
    assert_eq!(
        winner.recv().await,
        ServerMessage::MlsCommitRejected {
            epoch: 1,
            current_epoch: 2
        }
    );
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_signaling_mls_commits_rejected_total"), 2);
    assert_eq!(
        metric(
            &m,
            "sfu_signaling_mls_refused_total{reason=\"wrong_epoch\"}"
        ),
        2
    );
    assert_eq!(
        metric(&m, "sfu_signaling_mls_entries_total{kind=\"commit\"}"),
        2
    );
}

#[tokio::test]
async fn a_participant_outside_the_group_may_not_commit_or_chat() {
    let srv = Server::start(config()).await;
    let (mut a, ai) = srv.join_full(ROOM, "alice").await;
    let mut ma = found(&mut a, &ai, "alice").await;
    let (mut b, _) = srv.join_full(ROOM, "bob").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    // Bob was never added; he sends Alice's own valid commit.
    let alices = commit_msg(&mut ma, &[], &[]);
    b.send(&alices).await;
    b.expect_error(ErrorCode::Forbidden).await;
    b.chat(0, "aGk=").await;
    b.expect_error(ErrorCode::Forbidden).await;
    // The connection survives and nothing was logged.
    b.ping(1).await;
    a.ping(2).await;
    assert_eq!(metric(&srv.metrics(), "sfu_signaling_mls_log_entries"), 0);
    // Garbage from a member is a bad message, not a commit.
    a.commit(0, &[], &[]).await;
    a.expect_error(ErrorCode::BadMessage).await;
    a.send_raw(r#"{"type":"mls_commit","epoch":0,"commit":""}"#)
        .await;
    a.expect_error(ErrorCode::BadMessage).await;
    a.ping(3).await;
}

/// Finding: a member replayed an old commit declaring everyone removed; the
/// server took it (it trusted the declared lists and any bytes), and from
/// then on every commit and chat message from anyone got `forbidden`.
/// Now the replay is refused, changes nothing, and the others' commits and
/// chat go on.
#[tokio::test]
async fn a_replayed_commit_declaring_everyone_removed_is_refused_and_the_room_goes_on() {
    let srv = Server::start(config()).await;
    let (members, first) = group_of_three_and_its_commit(&srv).await;
    // Carol kept the epoch-0 commit from the log and sends it again,
    // claiming the current epoch and declaring everyone removed.
    let (
        [
            (mut a, ai, mut ma),
            (mut b, bi, mut mb),
            (mut c, ci, mut mc),
        ],
        first,
    ) = (members, first);
    c.send(&ClientMessage::MlsCommit {
        epoch: 1,
        commit: first.clone(),
        welcome: None,
        added: vec![],
        removed: vec![ai.pid.clone(), bi.pid.clone(), ci.pid.clone()],
    })
    .await;
    assert_eq!(
        c.recv().await,
        ServerMessage::MlsCommitRejected {
            epoch: 1,
            current_epoch: 1
        }
    );
    // Bytes that are no commit at all, and a commit of hers that removes
    // Alice and Bob, who are present.
    c.commit(1, &[], &[]).await;
    c.expect_error(ErrorCode::BadMessage).await;
    c.send(&commit_msg(&mut mc, &[], &[0, 1])).await;
    assert_eq!(
        c.recv().await,
        ServerMessage::MlsCommitRejected {
            epoch: 1,
            current_epoch: 1
        }
    );
    mc.clear_pending_commit();
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_signaling_mls_commits_rejected_total"), 3);
    assert_eq!(
        metric(&m, "sfu_signaling_mls_entries_total{kind=\"commit\"}"),
        1
    );
    // Bob commits, and all three chat: accepted, in epoch 2.
    let commit = send_self_update(&mut b, &mut mb).await;
    for x in [&mut a, &mut b, &mut c] {
        assert!(matches!(
            x.recv_mls().await,
            (4, MlsEntry::Commit { epoch: 1, .. })
        ));
    }
    mb.merge_pending_commit().unwrap();
    process_commit(&mut ma, &commit);
    process_commit(&mut mc, &commit);
    for x in [&mut a, &mut b, &mut c] {
        x.chat(2, "aGk=").await;
    }
    for x in [&mut a, &mut b, &mut c] {
        for seq in 5..8 {
            assert!(matches!(
                x.recv_mls().await,
                (s, MlsEntry::Application { .. }) if s == seq
            ));
        }
    }
    // Alice's next commit goes through too.
    let alices = commit_msg(&mut ma, &[], &[]);
    a.send(&alices).await;
    assert!(matches!(
        a.recv_mls().await,
        (8, MlsEntry::Commit { epoch: 2, .. })
    ));
    assert_eq!(ma.epoch(), Some(2));
}

/// Finding: the first joiner becomes the founder; if it never creates the
/// group, nothing times it out and nobody else can ever get keys. Now the
/// next participant is named founder after the timeout, and the others get
/// keys from it.
#[tokio::test]
async fn a_founder_that_never_creates_the_group_is_replaced_and_the_others_get_keys() {
    let srv = Server::start(config().with_mls_founder_timeout(Duration::from_millis(100))).await;
    let (mut squatter, si) = srv.join_full(ROOM, "squatter").await;
    assert!(si.mls.founder);
    let (mut b, bi) = srv.join_full(ROOM, "bob").await;
    let (mut c, ci) = srv.join_full(ROOM, "carol").await;
    let (mut mb, mut mc) = (mls("bob"), mls("carol"));
    // Bob and Carol send KeyPackages to the group that never comes.
    send_key_package(&mut b, &mut mb).await;
    send_key_package(&mut c, &mut mc).await;
    // The timeout names Bob founder of a new group.
    let reset = loop {
        match b.recv().await {
            ServerMessage::Mls {
                entry: MlsEntry::Reset { group_id, founder },
                ..
            } => break (group_id, founder),
            ServerMessage::Mls { .. } | ServerMessage::ParticipantJoined { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(reset.1, bi.pid);
    assert_ne!(reset.0, si.mls.group_id);
    let mut mb = mls("bob");
    mb.create_group(&hex::decode(&reset.0).unwrap()).unwrap();
    b.send(&ClientMessage::MlsGroupInfo {
        group_info: b64(&mb.group_info().unwrap()),
    })
    .await;
    // Carol sees the reset and sends a new KeyPackage; Bob adds her.
    let kc = loop {
        if let ServerMessage::Mls {
            entry: MlsEntry::Reset { .. },
            ..
        } = c.recv().await
        {
            break send_key_package(&mut c, &mut mc).await;
        }
    };
    let add = commit_msg(&mut mb, &[&kc], &[]);
    // The squatter cannot commit in the new group, and its late GroupInfo
    // is refused.
    let mut ms = mls("squatter");
    ms.create_group(&hex::decode(&reset.0).unwrap()).unwrap();
    squatter
        .send(&ClientMessage::MlsGroupInfo {
            group_info: b64(&ms.group_info().unwrap()),
        })
        .await;
    loop {
        match squatter.recv().await {
            ServerMessage::Error { code, .. } => {
                assert_eq!(code, ErrorCode::BadMessage);
                break;
            }
            _ => continue,
        }
    }
    b.send(&add).await;
    let welcome = loop {
        if let ServerMessage::Mls {
            entry: MlsEntry::Commit { added, welcome, .. },
            ..
        } = c.recv().await
        {
            assert_eq!(added, std::slice::from_ref(&ci.pid));
            break welcome.unwrap();
        }
    };
    mb.merge_pending_commit().unwrap();
    join_from(&mut mc, &welcome);
    assert_eq!(mc.epoch(), Some(1));
    assert_eq!(
        mc.sframe_base_key(16).unwrap(),
        mb.sframe_base_key(16).unwrap()
    );
    assert_eq!(
        metric(&srv.metrics(), "sfu_signaling_mls_founders_replaced_total"),
        1
    );
}

/// Three members send 200 chat messages each, at the same time. Every
/// member receives all 600 (its own included) with contiguous sequence
/// numbers, in one and the same order, and each sender's messages in the
/// order it sent them. Several worker threads, so the server handles the
/// three connections in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_log_order_is_the_same_everywhere_under_concurrent_senders() {
    const N: usize = 200;
    let unlimited = RateLimit::new(100_000.0, 100_000);
    let cfg = config()
        .with_rate_limit(unlimited)
        .with_message_rates(MessageRates::default().with_chat(unlimited))
        .with_outbound_queue(4096);
    let srv = Server::start(cfg).await;
    let clients = group_of_three(&srv).await;
    let mut tasks = Vec::new();
    for (mut client, info, _) in clients {
        tasks.push(tokio::spawn(async move {
            let send = async {
                for i in 0..N {
                    client.chat(1, &format!("{}-{i}", info.pid)).await;
                }
            };
            send.await;
            let mut log = Vec::new();
            while log.len() < 3 * N {
                match client.recv_mls().await {
                    (
                        seq,
                        MlsEntry::Application {
                            participant_id,
                            message,
                            ..
                        },
                    ) => log.push((seq, participant_id, message)),
                    other => panic!("unexpected {other:?}"),
                }
            }
            client.ping(1).await;
            (info.pid, log)
        }));
    }
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await.unwrap());
    }
    let (_, first) = &logs[0];
    let seqs: Vec<u64> = first.iter().map(|(s, _, _)| *s).collect();
    let want: Vec<u64> = (4..4 + 3 * N as u64).collect();
    assert_eq!(seqs, want, "contiguous, starting after the commit");
    for (_, log) in &logs[1..] {
        assert_eq!(log, first, "every member sees one order");
    }
    for (pid, _) in &logs {
        let mine: Vec<&str> = first
            .iter()
            .filter(|(_, p, _)| p == pid)
            .map(|(_, _, m)| m.as_str())
            .collect();
        let sent: Vec<String> = (0..N).map(|i| format!("{pid}-{i}")).collect();
        assert_eq!(mine, sent, "a sender's messages keep their order");
    }
    let m = srv.metrics();
    assert_eq!(
        metric(&m, "sfu_signaling_mls_entries_total{kind=\"application\"}"),
        3 * N as u64
    );
    assert_eq!(metric(&m, "sfu_signaling_slow_consumers_total"), 0);
}

/// Sends a commit made with openmls directly (and its Welcome).
async fn send_raw_commit(ws: &mut Client, epoch: u64, commit: &[u8], welcome: Option<&[u8]>) {
    ws.send(&ClientMessage::MlsCommit {
        epoch,
        commit: b64(commit),
        welcome: welcome.map(b64),
        added: vec![],
        removed: vec![],
    })
    .await;
}

/// Each of `clients` gets the commit for `epoch` as log entry `seq`.
async fn expect_commit(clients: [&mut Client; 2], seq: u64, epoch: u64) {
    for x in clients {
        let (s, entry) = x.recv_mls().await;
        assert!(
            s == seq && matches!(entry, MlsEntry::Commit { epoch: e, .. } if e == epoch),
            "expected commit {seq} for epoch {epoch}, got {s}: {entry:?}"
        );
    }
}

/// Finding: a member's commit could carry its own leaf padded to most of
/// the commit cap; it stayed in the tree that every Welcome carries, so a
/// few such leaves pushed every Welcome over its cap (nobody could join),
/// and checking it was costly under the room's lock. Now a commit whose
/// new leaf is over the leaf cap is refused before it is processed; the
/// epoch stays, and the others' commits go on.
#[tokio::test]
async fn a_commit_with_an_oversized_leaf_is_refused_and_the_room_goes_on() {
    use signaling::server::delivery_log::MAX_LEAF_NODE_BYTES;
    use testkit::mls::RawMember;
    let srv = Server::start(config()).await;
    // Alice (openmls directly, so she can pad her leaf) founds; Bob (the
    // client SDK's group code) joins.
    let (mut a, ai) = srv.join_full(ROOM, "alice").await;
    let mut ma = RawMember::new("alice");
    ma.found(&hex::decode(&ai.mls.group_id).unwrap(), 0);
    a.send(&ClientMessage::MlsGroupInfo {
        group_info: b64(&ma.group_info()),
    })
    .await;
    let (mut b, _bi) = srv.join_full(ROOM, "bob").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    let mut mb = mls("bob");
    let kb = send_key_package(&mut b, &mut mb).await;
    for x in [&mut a, &mut b] {
        assert!(matches!(
            x.recv_mls().await,
            (1, MlsEntry::KeyPackage { .. })
        ));
    }
    let (commit, welcome) = ma.add(&[&unb64(&kb)]);
    send_raw_commit(&mut a, 0, &commit, Some(&welcome)).await;
    expect_commit([&mut a, &mut b], 2, 0).await;
    ma.settle(true);
    join_from(&mut mb, &b64(&welcome));
    // Alice's self-update with her leaf padded over the cap (well within
    // the commit cap): refused as a bad message, naming the cap.
    let padded = ma.self_update(MAX_LEAF_NODE_BYTES * 4);
    assert!(b64(&padded).len() < 256 * 1024);
    send_raw_commit(&mut a, 1, &padded, None).await;
    let reason = a.expect_error(ErrorCode::BadMessage).await;
    assert!(reason.contains("leaf node"), "{reason}");
    ma.settle(false);
    let m = srv.metrics();
    assert_eq!(
        metric(
            &m,
            "sfu_signaling_mls_refused_total{reason=\"leaf_too_large\"}"
        ),
        1
    );
    assert_eq!(
        metric(&m, "sfu_signaling_mls_entries_total{kind=\"commit\"}"),
        1
    );
    // The epoch did not move: Bob's honest commit for epoch 1 wins, and
    // Alice follows it and commits honestly in epoch 2.
    let commit = send_self_update(&mut b, &mut mb).await;
    expect_commit([&mut a, &mut b], 3, 1).await;
    mb.merge_pending_commit().unwrap();
    ma.process_commit(&unb64(&commit));
    let alices = ma.self_update(0);
    send_raw_commit(&mut a, 2, &alices, None).await;
    expect_commit([&mut a, &mut b], 4, 2).await;
    ma.settle(true);
    process_commit(&mut mb, &b64(&alices));
    assert_eq!(mb.epoch(), Some(3));
}
