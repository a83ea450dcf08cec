//! Relay amplification: a joined participant that is no MLS member sends
//! large KeyPackages as fast as it can into several rooms. The server
//! relays each KeyPackage to every participant of the room, so what it
//! accepts is multiplied by the room's size; what it buffers for slow
//! readers is what it holds in memory.
//!
//! The bounds asserted here are the configured ones: with the defaults a
//! KeyPackage is at most 16 KiB and an identity gets a burst of 5 then one
//! per 10 s (over all its rooms); with those opened up, the bytes queued to
//! clients stay within the rooms' budgets.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use signaling::proto::{ClientMessage, ErrorCode, ServerMessage};
use signaling::server::{MessageRates, RateLimit, SizeCaps};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

const ROOMS: usize = 4;
/// The attack's KeyPackage: just under the frame limit once in JSON.
const BIG_KP: usize = 500_000;
/// The default KeyPackage cap.
const KP_CAP: usize = 16 * 1024;

fn kp(len: usize) -> String {
    serde_json::to_string(&ClientMessage::MlsKeyPackage {
        key_package: "A".repeat(len),
    })
    .unwrap()
}

/// Per room: a founder and a listener that never read, then the attacker
/// (one identity in every room). Returns the sleepers (kept open) and the
/// attackers.
async fn rooms_with_an_attacker(srv: &Server, rooms: usize) -> (Vec<Client>, Vec<Client>) {
    let (mut sleepers, mut attackers) = (Vec::new(), Vec::new());
    for r in 0..rooms {
        let room = format!("room-{r}");
        for who in ["owner", "listener"] {
            let (c, _, _) = srv.join(&room, &format!("{who}-{r}")).await;
            sleepers.push(c);
        }
        let (c, _, _) = srv.join(&room, "mallory").await;
        attackers.push(c);
    }
    (sleepers, attackers)
}

/// Reads one connection until a pong or its end; counts errors by code.
async fn errors_until_pong(c: &mut Client, errors: &mut HashMap<ErrorCode, u64>) {
    c.send(&ClientMessage::Ping { ts: 7 }).await;
    loop {
        match c.next().await {
            Next::Msg(ServerMessage::Error { code, .. }) => *errors.entry(code).or_default() += 1,
            Next::Msg(ServerMessage::Pong { .. }) | Next::Closed => return,
            Next::Msg(_) => {}
        }
    }
}

#[tokio::test]
async fn a_non_member_flooding_key_packages_into_several_rooms_is_bounded() {
    let srv = Server::start(config()).await;
    let (_sleepers, mut attackers) = rooms_with_an_attacker(&srv, ROOMS).await;
    let start = Instant::now();

    // 45 KeyPackages per room, as fast as the socket takes them: half of
    // them near the frame limit, half exactly at the default cap.
    let (big, small) = (kp(BIG_KP), kp(KP_CAP));
    for c in &mut attackers {
        for i in 0..45 {
            let text = if i % 2 == 0 { &big } else { &small };
            // The server may close the attacker while it is still sending.
            if c.ws.feed(Message::text(text.as_str())).await.is_err() {
                break;
            }
        }
        let _ = c.ws.flush().await;
    }
    let mut errors = HashMap::new();
    for c in &mut attackers {
        errors_until_pong(c, &mut errors).await;
    }

    let m = srv.metrics();
    let appended = metric(&m, "sfu_signaling_mls_bytes_total");
    // Accepted: a burst of 5 plus one per 10 s, for the identity over all
    // its rooms; each entry is the KeyPackage plus under 256 bytes of JSON.
    let accepted = 5 + start.elapsed().as_secs() / 10 + 1;
    let bound = accepted * (KP_CAP as u64 + 256);
    assert!(
        appended <= bound,
        "appended {appended} bytes of MLS entries, bound {bound}"
    );
    // Each is relayed to the room's three participants.
    let relayed = appended * 3;
    assert!(relayed <= 3 * bound, "relayed {relayed}");
    // What is still queued (the sleepers read nothing): each shared entry
    // once, plus the room events.
    let queued = metric(&m, "sfu_signaling_outbound_bytes");
    assert!(queued <= bound + 64 * 1024, "queued {queued}");
    assert!(metric(&m, "sfu_signaling_mls_log_bytes") <= bound);
    // The big ones were refused as too large, the rest mostly as too fast.
    assert!(metric(&m, "sfu_signaling_oversize_total{field=\"key_package\"}") >= 1);
    assert!(metric(&m, "sfu_signaling_rate_limited_total{kind=\"key_package\"}") >= 1);
    assert!(
        errors.get(&ErrorCode::TooLarge).copied().unwrap_or(0) >= 1,
        "{errors:?}"
    );
}

#[tokio::test]
async fn with_caps_opened_up_queued_bytes_stay_within_the_budgets() {
    // Real KeyPackages (the delivery service refuses others) are small:
    // a small budget, so that a few dozen of them reach it.
    const ROOM_BUDGET: usize = 8 << 10;
    const ATTACK_ROOMS: usize = 2;
    let open = RateLimit::new(10_000.0, 10_000).with_max_violations(10_000);
    let cfg = config()
        .with_rate_limit(open)
        .with_message_rates(MessageRates::default().with_key_package(open))
        .with_size_caps(SizeCaps::default().with_key_package(512 * 1024))
        .with_room_outbound_bytes(ROOM_BUDGET);
    let srv = Server::start(cfg).await;
    let (_sleepers, attackers) = rooms_with_an_attacker(&srv, ATTACK_ROOMS).await;

    // Each attacker reads its socket in a task of its own (its own
    // KeyPackages come back to it) and sends 60 of 500 KB: 30 MB per room,
    // far more than the sleepers' socket buffers take.
    let errors = Arc::new(Mutex::new(HashMap::<ErrorCode, u64>::new()));
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for c in attackers {
        let (tx, mut rx) = c.ws.split();
        writers.push(tx);
        let errors = errors.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(msg)) = rx.next().await {
                let Message::Text(t) = msg else { continue };
                match serde_json::from_str(t.as_str()) {
                    Ok(ServerMessage::Error { code, .. }) => {
                        *errors.lock().unwrap().entry(code).or_default() += 1;
                    }
                    Ok(ServerMessage::Pong { .. }) => return,
                    _ => {}
                }
            }
        }));
    }
    let big = {
        use base64::Engine as _;
        let mut c = e2ee::group::MlsClient::new("mallory", e2ee::group::MlsConfig::default())
            .expect("mls client");
        let bytes = c.key_package().expect("key package");
        serde_json::to_string(&ClientMessage::MlsKeyPackage {
            key_package: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
        .unwrap()
    };
    let mut max_queued = 0;
    for _ in 0..60 {
        for tx in &mut writers {
            let _ = tx.send(Message::text(big.as_str())).await;
        }
        max_queued = max_queued.max(metric(&srv.metrics(), "sfu_signaling_outbound_bytes"));
    }
    // Each room may overshoot its budget by the one message that was
    // checked before the last charge.
    let per_room = (ROOM_BUDGET + big.len() + 64 * 1024) as u64;
    let bound = ATTACK_ROOMS as u64 * per_room;
    assert!(max_queued <= bound, "queued {max_queued} > {bound}");
    // A ping after the flood: its pong ends each reader, after every
    // answer to the flood.
    let ping = serde_json::to_string(&ClientMessage::Ping { ts: 1 }).unwrap();
    for tx in &mut writers {
        let _ = tx.send(Message::text(ping.as_str())).await;
    }
    for r in readers {
        tokio::time::timeout(PATIENCE, r).await.unwrap().unwrap();
    }

    // The room budget, not the sleepers' socket buffers or the client
    // bound (8 MiB), is what stopped the flood: the attacker was refused.
    let m = srv.metrics();
    let refused = metric(&m, "sfu_signaling_rate_limited_total{kind=\"room_bytes\"}");
    assert!(refused >= 1, "the room budget never refused");
    assert!(
        errors
            .lock()
            .unwrap()
            .get(&ErrorCode::RateLimited)
            .copied()
            .unwrap_or(0)
            >= 1
    );
    assert!(metric(&m, "sfu_signaling_outbound_bytes") <= bound);
}
