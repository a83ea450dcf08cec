//! Caps per client address and server-wide, and rate allowances that
//! survive reconnects. Every client here connects from 127.0.0.1, so they
//! all count against one address.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use signaling::proto::{ClientMessage, ErrorCode, ServerMessage};
use signaling::server::{Capacity, RateLimit};
use std::time::Duration;
use tokio::time::Instant;

/// Default caps per address.
const CONNECTIONS_PER_ADDRESS: usize = 1000;
const ROOMS_PER_ADDRESS: usize = 250;

/// Idle sockets should not be closed by the join timeout while the test
/// opens the rest.
fn patient() -> signaling::server::SignalingConfig {
    config().with_join_timeout(Duration::from_secs(120))
}

fn url(srv: &Server) -> String {
    format!("ws://{}/rtc", srv.addr)
}

#[tokio::test]
async fn idle_sockets_from_one_address_stop_at_the_default_cap() {
    let srv = Server::start(patient()).await;
    let mut idle = Vec::new();
    for _ in 0..CONNECTIONS_PER_ADDRESS {
        idle.push(srv.connect().await);
    }
    srv.wait_connections(CONNECTIONS_PER_ADDRESS).await;
    // One more from the same address is refused before the upgrade.
    assert_eq!(Client::try_connect(&url(&srv)).await.err(), Some(429));
    let m = srv.metrics();
    assert_eq!(
        metric(
            &m,
            "sfu_signaling_refused_total{cap=\"connections_per_address\"}"
        ),
        1
    );
    assert_eq!(
        metric(&m, "sfu_signaling_connections"),
        CONNECTIONS_PER_ADDRESS as u64
    );
    // Closing one frees its place.
    drop(idle.pop());
    srv.wait_connections(CONNECTIONS_PER_ADDRESS - 1).await;
    let mut c = srv.connect().await;
    c.ping(1).await;
}

#[tokio::test]
async fn rooms_opened_from_one_address_stop_at_the_default_cap() {
    let srv = Server::start(patient()).await;
    let mut held = Vec::new();
    for r in 0..ROOMS_PER_ADDRESS {
        let (c, _, _) = srv.join(&format!("room-{r}"), "squatter").await;
        held.push(c);
    }
    let mut c = srv.connect().await;
    c.join_raw(&token("one-room-too-many", "squatter")).await;
    let m = c.expect_error(ErrorCode::Unavailable).await;
    assert!(m.contains("rooms"), "{m}");
    c.expect_closed().await;
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_rooms"), ROOMS_PER_ADDRESS as u64);
    assert_eq!(
        metric(&m, "sfu_signaling_refused_total{cap=\"rooms_per_address\"}"),
        1
    );
    // Joining a room that exists opens none and is fine.
    let (mut d, _, _) = srv.join("room-0", "guest").await;
    d.ping(1).await;
}

#[tokio::test]
async fn participant_and_server_wide_caps_refuse_clearly() {
    let cap = Capacity::default()
        .with_participants(100, 3)
        .with_connections(6, 100);
    let srv = Server::start(patient().with_capacity(cap)).await;
    let mut held = Vec::new();
    for who in ["a", "b", "c"] {
        held.push(srv.join(ROOM, who).await.0);
    }
    let mut d = srv.connect().await;
    d.join_raw(&token(ROOM, "d")).await;
    let m = d.expect_error(ErrorCode::Unavailable).await;
    assert!(m.contains("participants"), "{m}");
    d.expect_closed().await;
    srv.wait_connections(3).await;
    // Three more sockets reach the server-wide cap of six.
    for _ in 0..3 {
        held.push(srv.connect().await);
    }
    assert_eq!(Client::try_connect(&url(&srv)).await.err(), Some(503));
    let m = srv.metrics();
    for (cap, n) in [("participants_per_address", 1), ("connections", 1)] {
        let series = format!("sfu_signaling_refused_total{{cap=\"{cap}\"}}");
        assert_eq!(metric(&m, &series), n, "{series}");
    }
}

#[tokio::test]
async fn reconnecting_does_not_refill_the_rate_allowance() {
    let limit = RateLimit::new(1.0, 10).with_max_violations(100);
    let srv = Server::start(config().with_rate_limit(limit)).await;
    let start = Instant::now();
    let mut pongs = 0u64;
    let mut limited = 0u64;
    // Three connections in a row of the same identity, each sending ten
    // pings after its join. A fresh bucket per connection would answer all
    // thirty.
    for _ in 0..3 {
        let (mut c, _, _) = srv.join(ROOM, "flooder").await;
        for ts in 0..10 {
            c.send(&ClientMessage::Ping { ts }).await;
        }
        for _ in 0..10 {
            match c.recv().await {
                ServerMessage::Pong { .. } => pongs += 1,
                ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    ..
                } => limited += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        // Gone without `leave` (which the limit could refuse); the next
        // join replaces the suspended session.
        drop(c);
    }
    // The burst of ten, spent by the first join and pings, plus one token
    // per second of test time.
    let refill = start.elapsed().as_secs() + 1;
    assert!(
        pongs <= 10 + refill,
        "pongs={pongs} in {:?}",
        start.elapsed()
    );
    assert!(limited >= 30 - 10 - refill, "limited={limited}");
}

#[tokio::test]
async fn reconnecting_does_not_refill_the_key_package_allowance() {
    let srv = Server::start(config()).await;
    let start = Instant::now();
    // Bob founds the group and stays, reading nothing.
    let (_bob, _, _) = srv.join(ROOM, "bob").await;
    let mut accepted = 0;
    let mut limited = 0;
    // The default: a burst of five KeyPackages, then one per 10 s.
    for _ in 0..4 {
        let (mut c, _, _) = srv.join(ROOM, "mallory").await;
        for _ in 0..3 {
            c.key_package("a3A=").await;
        }
        c.send(&ClientMessage::Ping { ts: 9 }).await;
        loop {
            match c.recv().await {
                ServerMessage::Mls { .. } => accepted += 1,
                ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    ..
                } => limited += 1,
                ServerMessage::Pong { .. } => break,
                _ => {}
            }
        }
        drop(c);
    }
    // Twelve sent; fresh allowances would have taken them all.
    let allowed = 5 + start.elapsed().as_secs() / 10 + 1;
    assert!(accepted <= allowed, "accepted {accepted} KeyPackages");
    assert!(limited >= 12 - allowed, "limited {limited}");
}
