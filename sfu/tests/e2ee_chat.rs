//! End-to-end encrypted chat: 1,000 messages from three senders reach every
//! member in one order, none lost, although one member's signaling
//! connection is cut mid-way and it resumes from the delivery log.

mod support;

use client_sdk::{RoomOptions, SignalingState};
use support::Member;
use support::wsproxy::WsProxy;

const TOTAL: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_is_ordered_and_complete_across_a_reconnect() {
    let server = support::server().await;
    let proxy = WsProxy::start(support::url(&server)).await;
    let names = ["alice", "bob", "carol"];
    let mut members = Vec::new();
    for n in names {
        members.push(Member::join(&proxy.url(), "chat", n, RoomOptions::loopback()).await);
    }
    for m in &members {
        m.until("the group", |i| {
            i.rosters.last().is_some_and(|r| r.len() == 3)
        })
        .await;
    }
    for (k, m) in members.iter().enumerate() {
        let count = TOTAL / 3 + usize::from(k < TOTAL % 3);
        for i in 0..count {
            m.room
                .send_chat(&format!("{}#{i}", names[k]))
                .await
                .expect("queued");
        }
    }
    // Cut bob's connection once some of the chat has gone by.
    let bob = &members[1];
    bob.until("some chat", |i| i.chat.len() >= TOTAL / 4).await;
    let conn = proxy
        .conn_of(&bob.room.participant_id())
        .expect("bob's connection");
    proxy.sever(conn);
    bob.until("a resumed session", |i| {
        i.signaling.contains(&SignalingState::Resumed)
    })
    .await;

    for m in &members {
        m.until("every message", |i| i.chat.len() >= TOTAL).await;
    }
    let logs: Vec<Vec<(String, String)>> = members.iter().map(|m| m.inbox().chat.clone()).collect();
    for (m, log) in members.iter().zip(&logs) {
        assert_eq!(
            log.len(),
            TOTAL,
            "{} got {} messages",
            m.room.identity(),
            log.len()
        );
        assert_eq!(
            *log,
            logs[0],
            "{}'s order differs from alice's",
            m.room.identity()
        );
    }
    testkit::chat::assert_each_sender_in_order(&logs[0], &names, TOTAL);
    assert!(
        bob.inbox()
            .signaling
            .contains(&SignalingState::Reconnecting)
    );
    assert!(
        !bob.inbox()
            .signaling
            .contains(&SignalingState::RejoinedGroup),
        "resumed from the log"
    );
}

/// When the server no longer holds a member's session (here the path
/// spoils its resume token), the member joins again as a new participant,
/// is added to the group with a new leaf, publishes again and both sends
/// and decrypts again; the app is told it rejoined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_session_is_gone_rejoins_and_decrypts_again() {
    let server = support::server().await;
    let proxy = WsProxy::start(support::url(&server)).await;
    let alice = Member::join(&proxy.url(), "rejoin", "alice", RoomOptions::loopback()).await;
    let bob = Member::join(&proxy.url(), "rejoin", "bob", RoomOptions::loopback()).await;
    for m in [&alice, &bob] {
        m.until("the group", |i| {
            i.rosters.last().is_some_and(|r| r.len() == 2)
        })
        .await;
    }
    let mic = bob.publish_av().await.0;
    let old_pid = bob.room.participant_id();
    proxy.set_up_hook(Box::new(|_, text| {
        text.replace("\"resume_token\":\"", "\"resume_token\":\"spoiled")
    }));
    proxy.sever(proxy.conn_of(&old_pid).expect("bob's connection"));
    bob.until("a rejoin", |i| {
        i.signaling.contains(&SignalingState::Rejoined)
    })
    .await;
    assert_ne!(bob.room.participant_id(), old_pid, "a new participant");
    for m in [&alice, &bob] {
        m.until("the group again", |i| {
            i.rosters.last().is_some_and(|r| r.len() == 2)
                && i.epochs.last().is_some_and(|e| *e >= 3)
        })
        .await;
    }
    assert_eq!(alice.room.verification_code(), bob.room.verification_code());
    bob.room
        .wait_connected(client_sdk::proto::Target::Publisher, support::LIMIT)
        .await
        .expect("published again");
    // A remote track shows once its first packet arrives: keep sending.
    let sender = tokio::spawn(async move {
        for i in 0..1000u32 {
            let data = support::frame("bob", "mic", i, &[7; 32], 100);
            let _ = mic.send_frame(&data, i * 960, false).await;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    bob.room.send_chat("back").await.expect("chat");
    alice
        .until("bob's frames and chat", |i| {
            !i.frames_from("bob").is_empty()
                && i.chat.iter().any(|(f, t)| f == "bob" && t == "back")
        })
        .await;
    sender.abort();
}
