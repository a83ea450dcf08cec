//! Forward secrecy across joins and leaves, through the real SFU.
//!
//! A recorder (a plain participant, as an SFU operator could be) keeps the
//! ciphertext the SFU forwards. A fourth member joins: nothing recorded
//! before its join opens with any key it holds. A member leaves: nothing
//! sent after its removal opens with any key it held. Media keeps flowing
//! to the others across both epoch switches; the frames lost at each
//! switch are counted and bounded.

mod support;

use client_sdk::RoomOptions;
use client_sdk::config::ConnectOptions;
use client_sdk::transport::{Event, Participant};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{LIMIT, Member, Microphone, frame_index, open_by_hand, sframe_header};

const ROOM: &str = "e2ee-epochs";

fn epoch_bits(data: &[u8]) -> Option<u64> {
    sframe_header(data).map(|(kid, _, _)| kid & 0xff)
}

fn opens_with_any(data: &[u8], keys: &[(u64, Vec<u8>, Vec<u8>)]) -> bool {
    keys.iter()
        .any(|(_, k, s)| open_by_hand(data, &[], k, s).is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_leaves_rotate_keys_without_stopping_media() {
    let server = support::server().await;
    let url = support::url(&server);
    let marker = [0x5au8; 32];
    let alice = Member::join(&url, ROOM, "alice", RoomOptions::loopback()).await;
    let bob = Member::join(&url, ROOM, "bob", RoomOptions::loopback()).await;
    let carol = Member::join(&url, ROOM, "carol", RoomOptions::loopback()).await;
    for m in [&alice, &bob, &carol] {
        m.until("a group of three", |i| {
            i.rosters.last().is_some_and(|r| r.len() == 3)
        })
        .await;
    }

    // The recorder keeps every ciphertext of alice's audio, in arrival order.
    let recorded: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let (recorder, mut rec_events) = Participant::connect(
        &url,
        &support::token(ROOM, "recorder"),
        ConnectOptions::loopback(),
    )
    .await
    .expect("recorder joins");
    let alice_pid = alice.room.participant_id();
    {
        let recorded = Arc::clone(&recorded);
        tokio::spawn(async move {
            while let Some(ev) = rec_events.recv().await {
                if let Event::TrackSubscribed(mut t) = ev
                    && t.info().participant_id == alice_pid
                {
                    let recorded = Arc::clone(&recorded);
                    tokio::spawn(async move {
                        while let Some(p) = t.recv().await {
                            recorded.lock().unwrap().push(p.payload.to_vec());
                        }
                    });
                }
            }
        });
    }

    let mic = Microphone::start(&alice, &marker).await;
    for m in [&bob, &carol] {
        m.until("alice's audio", |i| !i.frames_from("alice").is_empty())
            .await;
    }
    let epoch_before = alice.room.epoch().expect("epoch");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bob_keys_before = bob.room.held_sframe_keys_for_tests();

    // A fourth member joins.
    let join_started = Instant::now();
    let dave = Member::join(&url, ROOM, "dave", RoomOptions::loopback()).await;
    dave.until("alice's audio", |i| !i.frames_from("alice").is_empty())
        .await;
    let join_to_first_frame = join_started.elapsed();
    let epoch_joined = dave.room.epoch().expect("dave has an epoch");
    assert!(epoch_joined > epoch_before);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let pre_join: Vec<Vec<u8>> = recorded
        .lock()
        .unwrap()
        .iter()
        .filter(|d| epoch_bits(d) == Some(epoch_before & 0xff))
        .cloned()
        .collect();
    assert!(
        pre_join.len() > 10,
        "recorded {} frames before the join",
        pre_join.len()
    );
    let dave_keys = dave.room.held_sframe_keys_for_tests();
    assert!(!dave_keys.is_empty());
    assert!(
        pre_join.iter().all(|d| opens_with_any(d, &bob_keys_before)),
        "control: a member of that epoch opens every recorded frame"
    );
    assert!(
        !pre_join.iter().any(|d| opens_with_any(d, &dave_keys)),
        "the joiner opened a frame from before its join"
    );

    // Carol leaves.
    let carol_keys = carol.room.held_sframe_keys_for_tests();
    assert!(!carol_keys.is_empty());
    carol.room.leave().await;
    for m in [&alice, &bob, &dave] {
        m.until("the group without carol", |i| {
            i.rosters
                .last()
                .is_some_and(|r| r.len() == 3 && !r.contains(&"carol".to_owned()))
        })
        .await;
    }
    let epoch_after = alice.room.epoch().expect("epoch");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let sent = mic.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let post_leave: Vec<Vec<u8>> = recorded
        .lock()
        .unwrap()
        .iter()
        .filter(|d| epoch_bits(d) == Some(epoch_after & 0xff))
        .cloned()
        .collect();
    assert!(
        post_leave.len() > 10,
        "recorded {} frames after the leave",
        post_leave.len()
    );
    let bob_keys_after = bob.room.held_sframe_keys_for_tests();
    assert!(
        post_leave
            .iter()
            .all(|d| opens_with_any(d, &bob_keys_after)),
        "control"
    );
    assert!(
        !post_leave.iter().any(|d| opens_with_any(d, &carol_keys)),
        "the leaver opened a frame sent after its removal"
    );

    // Media kept flowing to bob across both switches.
    let mut got: Vec<u32> = bob
        .inbox()
        .frames_from("alice")
        .iter()
        .filter_map(|f| frame_index(&f.data).map(|x| x.2))
        .collect();
    got.sort_unstable();
    got.dedup();
    let first = got[0];
    let lost = (first..sent)
        .filter(|i| got.binary_search(i).is_err())
        .count();
    let failures = bob.room.decrypt_failures();
    println!(
        "epochs {epoch_before} -> {epoch_joined} -> {epoch_after}; alice sent {sent} frames, \
         bob lost {lost} after his first ({first}); decrypt failures {failures:?}; \
         dave's join to first decrypted frame {join_to_first_frame:?}"
    );
    assert!(
        lost <= 4,
        "bob lost {lost} frames across two epoch switches"
    );
    assert_eq!(failures.total(), 0, "bob dropped frames: {failures:?}");
    recorder.leave().await;
}

/// Periodic self-updates (post-compromise security) start new epochs on
/// their own; members stay in step and keep equal verification codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_self_updates_rotate_keys() {
    let server = support::server().await;
    let url = support::url(&server);
    let mut options = RoomOptions::loopback();
    options.self_update = Some(Duration::from_millis(300));
    let alice = Member::join(&url, "self-update", "alice", options.clone()).await;
    let bob = Member::join(&url, "self-update", "bob", options).await;
    for m in [&alice, &bob] {
        m.until("several self-updates", |i| {
            i.epochs.last().is_some_and(|e| *e >= 4)
        })
        .await;
    }
    let deadline = Instant::now() + LIMIT;
    loop {
        let (a, b) = (alice.room.verification_code(), bob.room.verification_code());
        if a.is_some() && a == b && alice.room.epoch() == bob.room.epoch() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "members did not settle on one epoch"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
