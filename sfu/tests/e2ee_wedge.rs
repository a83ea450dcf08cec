//! A hostile member tries to wedge a room's encryption through the real
//! SFU: it replays an old commit (claiming the current epoch and declaring
//! everyone removed), and sends forged ones: a commit removing the present
//! members, one with a broken signature, and bytes that are no commit at
//! all. The delivery service refuses each, counts it, and changes nothing:
//! the room keeps its epoch and keys, and chat and media keep flowing for
//! the others.
//!
//! Alice and Bob are real `Room` clients sending audio; Carol is the
//! attacker, a raw signaling client with her own MLS client, added to the
//! group like anyone else.

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use client_sdk::RoomOptions;
use e2ee::group::{MlsClient, MlsConfig};
use signaling::proto::{ClientMessage, ErrorCode, MlsEntry, ServerMessage};
use signaling::token::{Grants, TokenKeys};
use support::{LIMIT, Member, Microphone};
use testkit::ws::Client;

const ROOM: &str = "e2ee-wedge";

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Carol's next MLS log entry, skipping room events.
async fn next_entry(carol: &mut Client) -> (u64, MlsEntry) {
    loop {
        match tokio::time::timeout(LIMIT, carol.recv()).await {
            Ok(ServerMessage::Mls { seq, entry }) => return (seq, entry),
            Ok(_) => {}
            Err(_) => panic!("carol: no MLS entry within {LIMIT:?}"),
        }
    }
}

/// Carol's next reply to what she sent: a rejection or an error.
async fn next_refusal(carol: &mut Client) -> ServerMessage {
    loop {
        match tokio::time::timeout(LIMIT, carol.recv()).await {
            Ok(m @ (ServerMessage::MlsCommitRejected { .. } | ServerMessage::Error { .. })) => {
                return m;
            }
            Ok(ServerMessage::Mls {
                entry: MlsEntry::Commit { .. },
                ..
            }) => panic!("a commit was accepted during the attack"),
            Ok(_) => {}
            Err(_) => panic!("carol: no refusal within {LIMIT:?}"),
        }
    }
}

/// Carol sends `commit` (base64) as a commit for `epoch` declaring
/// `removed`.
async fn send_commit(carol: &mut Client, epoch: u64, commit: String, removed: Vec<String>) {
    carol
        .send(&ClientMessage::MlsCommit {
            epoch,
            commit,
            welcome: None,
            added: Vec::new(),
            removed,
        })
        .await;
}

fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_replaying_and_forging_commits_does_not_wedge_the_room() {
    let server = support::server().await;
    let url = support::url(&server);
    let alice = Member::join(&url, ROOM, "alice", RoomOptions::loopback()).await;
    let bob = Member::join(&url, ROOM, "bob", RoomOptions::loopback()).await;

    // Carol joins without media (she only speaks MLS) and asks to be added.
    let mut carol = Client::connect(&url).await;
    let no_media = Grants {
        publish: false,
        subscribe: false,
        admin: false,
    };
    let token = testkit::token::mint(&TokenKeys::development(), ROOM, "carol", no_media);
    let ci = carol.join_full(&token).await;
    let mut mc = MlsClient::new("carol", MlsConfig::default()).expect("client");
    carol
        .send(&ClientMessage::MlsKeyPackage {
            key_package: b64(&mc.key_package().expect("kp")),
        })
        .await;
    // She keeps every commit she sees; the one that adds her brings her in.
    let mut seen_commits = Vec::new();
    loop {
        let (_, entry) = next_entry(&mut carol).await;
        if let MlsEntry::Commit {
            commit,
            welcome,
            added,
            epoch,
            ..
        } = entry
        {
            seen_commits.push((epoch, commit));
            if added.contains(&ci.pid) {
                let w = B64.decode(welcome.expect("a welcome")).expect("base64");
                assert!(mc.join(&w).expect("join"));
                break;
            }
        }
    }
    for m in [&alice, &bob] {
        m.until("a group of three", |i| {
            i.rosters.last().is_some_and(|r| r.len() == 3)
        })
        .await;
    }
    let epoch = alice.room.epoch().expect("an epoch");
    assert_eq!(mc.epoch(), Some(epoch));
    let code = alice.room.verification_code().expect("a code");
    assert_eq!(bob.room.verification_code().as_deref(), Some(code.as_str()));

    // Alice sends audio; Bob decrypts it.
    let mic = Microphone::start(&alice, &[0x11; 8]).await;
    bob.until("alice's audio", |i| !i.frames_from("alice").is_empty())
        .await;

    // The attack. 1: the oldest commit she saw, claiming the current epoch
    // and declaring everyone removed.
    let (old_epoch, old) = seen_commits.first().cloned().expect("a commit");
    assert!(old_epoch < epoch);
    send_commit(
        &mut carol,
        epoch,
        old,
        vec![
            alice.room.participant_id(),
            bob.room.participant_id(),
            ci.pid.clone(),
        ],
    )
    .await;
    assert_eq!(
        next_refusal(&mut carol).await,
        ServerMessage::MlsCommitRejected {
            epoch,
            current_epoch: epoch
        }
    );
    // 2: a real commit of hers that removes Alice and Bob, who are present.
    let members = mc.members();
    let others: Vec<u32> = members
        .iter()
        .filter(|m| m.identity != "carol")
        .map(|m| m.leaf)
        .collect();
    let purge = mc.commit(&[], &others).expect("commit");
    mc.clear_pending_commit();
    send_commit(&mut carol, epoch, b64(&purge.commit), Vec::new()).await;
    assert!(matches!(
        next_refusal(&mut carol).await,
        ServerMessage::MlsCommitRejected { .. }
    ));
    // 3: a self-update whose signature is broken (a byte of the signed
    // content changed after signing).
    let mut forged = mc.self_update().expect("commit").commit;
    mc.clear_pending_commit();
    let at = forged.len() / 2;
    forged[at] ^= 0x01;
    send_commit(&mut carol, epoch, b64(&forged), Vec::new()).await;
    assert!(matches!(
        next_refusal(&mut carol).await,
        ServerMessage::Error {
            code: ErrorCode::BadMessage,
            ..
        }
    ));
    // 4: bytes that are no MLS message.
    send_commit(&mut carol, epoch, b64(b"not a commit at all"), Vec::new()).await;
    assert!(matches!(
        next_refusal(&mut carol).await,
        ServerMessage::Error {
            code: ErrorCode::BadMessage,
            ..
        }
    ));

    // Nothing changed: same epoch and code for everyone, all still members.
    let (_, text) = testkit::http::get(server.http_addr(), "/metrics").await;
    assert_eq!(metric(&text, "sfu_signaling_mls_commits_rejected_total"), 4);
    assert_eq!(
        metric(
            &text,
            "sfu_signaling_mls_refused_total{reason=\"wrong_epoch\"}"
        ),
        1
    );
    assert_eq!(
        metric(&text, "sfu_signaling_mls_refused_total{reason=\"roster\"}"),
        1
    );
    assert_eq!(
        metric(
            &text,
            "sfu_signaling_mls_refused_total{reason=\"invalid_commit\"}"
        ),
        2
    );
    for m in [&alice, &bob] {
        assert_eq!(m.room.epoch(), Some(epoch));
        assert_eq!(m.room.verification_code().as_deref(), Some(code.as_str()));
        assert_eq!(m.room.roster().len(), 3);
    }

    // Chat keeps flowing, and so does media.
    alice.room.send_chat("still here").await.expect("queued");
    bob.until("alice's chat", |i| {
        i.chat.iter().any(|(_, t)| t == "still here")
    })
    .await;
    let frames_then = bob.inbox().frames_from("alice").len();
    bob.until("more of alice's audio", |i| {
        i.frames_from("alice").len() >= frames_then + 25
    })
    .await;
    // Carol is still a member (nothing of hers was removed either): her
    // own chat is logged like anyone's.
    let (_, entry) = {
        carol
            .send(&ClientMessage::MlsApplication {
                epoch,
                message: b64(&mc.encrypt_application(b"hi").expect("encrypt")),
            })
            .await;
        next_entry(&mut carol).await
    };
    assert!(matches!(entry, MlsEntry::Application { .. }));
    assert_eq!(bob.room.epoch(), Some(epoch));
    let sent = mic.stop().await;
    assert!(sent > 0);
}
