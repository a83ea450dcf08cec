//! The MLS delivery service end to end: real clients on loopback. The
//! payloads are placeholders: the server never decodes them.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use signaling::proto::{ErrorCode, MlsEntry, ServerMessage};
use signaling::server::{MessageRates, RateLimit};

/// Alice founds the group, Bob and Carol join, and Alice adds both. Every
/// client has read the log up to the commit (seq 3).
async fn group_of_three(srv: &Server) -> [(Client, JoinedInfo); 3] {
    let (mut a, ai) = srv.join_full(ROOM, "alice").await;
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
    b.key_package("YmtwCg==").await;
    for x in [&mut a, &mut b, &mut c] {
        assert!(matches!(
            x.recv_mls().await,
            (1, MlsEntry::KeyPackage { .. })
        ));
    }
    c.key_package("Y2twCg==").await;
    for x in [&mut a, &mut b, &mut c] {
        assert!(matches!(
            x.recv_mls().await,
            (2, MlsEntry::KeyPackage { .. })
        ));
    }
    a.commit(0, &[&bi.pid, &ci.pid], &[]).await;
    for x in [&mut a, &mut b, &mut c] {
        let (seq, entry) = x.recv_mls().await;
        assert_eq!(seq, 3);
        let MlsEntry::Commit {
            participant_id,
            epoch,
            welcome,
            added,
            ..
        } = entry
        else {
            panic!("expected a commit, got {entry:?}")
        };
        assert_eq!(participant_id, ai.pid);
        assert_eq!(epoch, 0);
        assert!(welcome.is_some());
        assert_eq!(added, [bi.pid.clone(), ci.pid.clone()]);
    }
    [(a, ai), (b, bi), (c, ci)]
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
async fn key_packages_reach_everyone_including_the_sender() {
    let srv = Server::start(config()).await;
    let (mut a, _) = srv.join_full(ROOM, "alice").await;
    let (mut b, bi) = srv.join_full(ROOM, "bob").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    b.key_package("a3AxCg==").await;
    // The latest KeyPackage wins in the server's store; both are logged.
    b.key_package("a3AyCg==").await;
    for x in [&mut a, &mut b] {
        for (want_seq, want_kp) in [(1, "a3AxCg=="), (2, "a3AyCg==")] {
            assert_eq!(
                x.recv_mls().await,
                (
                    want_seq,
                    MlsEntry::KeyPackage {
                        participant_id: bi.pid.clone(),
                        key_package: want_kp.into()
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
    // An empty one is refused.
    b.key_package("").await;
    b.expect_error(ErrorCode::BadMessage).await;
    b.ping(1).await;
}

#[tokio::test]
async fn two_commits_for_one_epoch_the_first_wins_and_the_second_is_rejected() {
    let srv = Server::start(config()).await;
    let [(mut a, ai), (mut b, bi), (mut c, _)] = group_of_three(&srv).await;
    // Alice and Bob both commit in epoch 1, at once.
    tokio::join!(a.commit(1, &[], &[]), b.commit(1, &[], &[]));
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
    let (loser, winner) = if winners[0] == ai.pid {
        (&mut b, &mut a)
    } else {
        assert_eq!(winners[0], bi.pid);
        (&mut a, &mut b)
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
    // A commit for an epoch that is not current is rejected too.
    winner.commit(7, &[], &[]).await;
    assert_eq!(
        winner.recv().await,
        ServerMessage::MlsCommitRejected {
            epoch: 7,
            current_epoch: 2
        }
    );
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_signaling_mls_commits_rejected_total"), 2);
    assert_eq!(
        metric(&m, "sfu_signaling_mls_entries_total{kind=\"commit\"}"),
        2
    );
}

#[tokio::test]
async fn a_participant_outside_the_group_may_not_commit_or_chat() {
    let srv = Server::start(config()).await;
    let (mut a, _) = srv.join_full(ROOM, "alice").await;
    let (mut b, _) = srv.join_full(ROOM, "bob").await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));
    // Bob was never added.
    b.commit(0, &[], &[]).await;
    b.expect_error(ErrorCode::Forbidden).await;
    b.chat(0, "aGk=").await;
    b.expect_error(ErrorCode::Forbidden).await;
    // The connection survives and nothing was logged.
    b.ping(1).await;
    a.ping(2).await;
    assert_eq!(metric(&srv.metrics(), "sfu_signaling_mls_log_entries"), 0);
    // Malformed metadata is a bad message, not a commit.
    a.commit(0, &[&"x".repeat(65)], &[]).await;
    a.expect_error(ErrorCode::BadMessage).await;
    a.send_raw(r#"{"type":"mls_commit","epoch":0,"commit":""}"#)
        .await;
    a.expect_error(ErrorCode::BadMessage).await;
    a.ping(3).await;
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
    for (mut client, info) in clients {
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
