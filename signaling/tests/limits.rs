//! Limits and timeouts: oversized frames, floods, silence, join timeout,
//! graceful shutdown. Timeouts are short real times; every assertion on
//! time is a lower bound (the server may not act early) plus a generous
//! upper bound, so the tests do not depend on machine speed.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use futures_util::SinkExt;
use sfu_core::MediaEvent;
use signaling::proto::{
    ClientMessage, ErrorCode, IceCandidate, LeaveReason, MAX_MESSAGE_BYTES, ServerMessage, Target,
    TrackKind, TrackPublish,
};
use signaling::server::{MessageRates, RateLimit, SizeCaps};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn an_oversized_message_is_too_large_and_closes_the_connection() {
    let srv = Server::start(config()).await;
    // Bob founds the MLS group, so Alice's exit resets nothing.
    let (mut b, _, _) = srv.join(ROOM, "bob").await;
    let (mut a, a_id, _) = srv.join(ROOM, "alice").await;
    assert!(matches!(
        b.recv().await,
        ServerMessage::ParticipantJoined { .. }
    ));

    // Exactly at the limit is fine (a bad message, but not too large).
    let at_limit = format!(
        "{{\"type\":\"ping\",\"ts\":1,\"pad\":\"{}\"}}",
        "x".repeat(10)
    );
    let pad = MAX_MESSAGE_BYTES - at_limit.len();
    let at_limit = format!(
        "{{\"type\":\"ping\",\"ts\":1,\"pad\":\"{}\"}}",
        "x".repeat(10 + pad)
    );
    assert_eq!(at_limit.len(), MAX_MESSAGE_BYTES);
    a.send_raw(&at_limit).await;
    assert_eq!(a.recv().await, ServerMessage::Pong { ts: 1 });

    // An SDP offer of a hundred-odd kilobytes (twenty simulcast video
    // m-lines from a browser) fits and reaches the media plane.
    let sdp = "a".repeat(120 * 1024);
    a.send(&ClientMessage::Offer {
        target: Target::Publisher,
        sdp: sdp.clone(),
    })
    .await;
    a.ping(2).await;
    assert!(
        srv.media
            .recs()
            .contains(&Rec::PublisherOffer(a_id.clone(), sdp))
    );
    // A KeyPackage of that size is over its own cap: refused, but the
    // connection stays.
    a.key_package(&"A".repeat(120 * 1024)).await;
    let m = a.expect_error(ErrorCode::TooLarge).await;
    assert!(m.contains("key_package"), "{m}");
    a.ping(3).await;

    // An MLS message over the limit is refused like any other frame.
    a.key_package(&"A".repeat(MAX_MESSAGE_BYTES)).await;
    let m = a.expect_error(ErrorCode::TooLarge).await;
    assert!(m.contains(&MAX_MESSAGE_BYTES.to_string()), "{m}");
    a.expect_closed().await;
    assert_eq!(
        b.recv().await,
        ServerMessage::ParticipantLeft {
            participant_id: a_id.clone(),
            reason: LeaveReason::Disconnected
        }
    );
    srv.wait_connections(1).await;
    assert_eq!(srv.media.leaves(&a_id), 1);
    b.ping(1).await;
    // Too large is the client's fault: no suspension, no resume.
    assert_eq!(
        metric(&srv.metrics(), "sfu_signaling_suspended_participants"),
        0
    );
}

#[tokio::test]
async fn a_flood_is_rate_limited_then_closed() {
    let limit = RateLimit::new(1.0, 10).with_max_violations(5);
    let srv = Server::start(config().with_rate_limit(limit)).await;
    let mut c = srv.connect().await;
    let start = Instant::now();
    for ts in 0..40u64 {
        let text = serde_json::to_string(&ClientMessage::Ping { ts }).unwrap();
        // The server may close while we are still sending.
        if c.ws.feed(Message::text(text)).await.is_err() {
            break;
        }
    }
    let _ = c.ws.flush().await;

    let (mut pongs, mut limited) = (0u64, 0u64);
    loop {
        match c.next().await {
            Next::Msg(ServerMessage::Pong { .. }) => pongs += 1,
            Next::Msg(ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            }) => limited += 1,
            Next::Msg(other) => panic!("unexpected {other:?}"),
            Next::Closed => break,
        }
    }
    // Burst of 10, plus at most one token per second of test time.
    let refill = start.elapsed().as_secs() + 1;
    assert!(pongs >= 10 && pongs <= 10 + refill, "pongs={pongs}");
    // Five tolerated violations, then the one that closes.
    assert!(limited >= 6 && limited <= 6 + refill, "limited={limited}");
    assert!(pongs + limited < 40, "the connection was not closed early");
    let m = srv.metrics();
    assert_eq!(
        metric(&m, "sfu_signaling_errors_total{code=\"rate_limited\"}"),
        limited
    );
    // Other connections are unaffected.
    let mut d = srv.connect().await;
    d.ping(1).await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_ping_timeout() {
    let timeout = Duration::from_millis(500);
    let cfg = config()
        .with_ping_interval(Duration::from_millis(100))
        .with_ping_timeout(timeout);
    let srv = Server::start(cfg).await;
    let (mut b, _, _) = srv.join(ROOM, "bob").await;

    // Alice joins, then neither reads nor writes: she answers no WS ping.
    let mut a = srv.connect().await;
    let last_sent = Instant::now();
    let (a_id, _) = a.join(&token(ROOM, "alice")).await;
    // Bob only reads (his client answers WS pings), which keeps him alive.
    match b.recv().await {
        ServerMessage::ParticipantJoined { participant } => {
            assert_eq!(participant.participant_id, a_id)
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        b.recv().await,
        ServerMessage::ParticipantLeft {
            participant_id: a_id.clone(),
            reason: LeaveReason::Disconnected
        }
    );
    assert!(
        last_sent.elapsed() >= timeout,
        "closed after {:?}",
        last_sent.elapsed()
    );
    a.expect_closed().await;
    assert_eq!(srv.media.leaves(&a_id), 1);
    b.ping(1).await;
}

#[tokio::test]
async fn protocol_pings_alone_keep_a_connection_alive() {
    let timeout = Duration::from_millis(800);
    let cfg = config()
        .with_ping_interval(Duration::from_millis(100))
        .with_ping_timeout(timeout);
    let srv = Server::start(cfg).await;
    let (mut c, c_id, _) = srv.join(ROOM, "carol").await;
    // Carol sends a protocol ping every 50 ms for three timeouts, without
    // reading, so her client never answers the server's WS pings.
    let n = 48u64;
    for ts in 0..n {
        c.send(&ClientMessage::Ping { ts }).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for ts in 0..n {
        assert_eq!(c.recv().await, ServerMessage::Pong { ts });
    }
    assert_eq!(srv.media.leaves(&c_id), 0);
    assert_eq!(metric(&srv.metrics(), "sfu_participants"), 1);
}

#[tokio::test]
async fn a_connection_that_never_joins_is_closed() {
    let join_timeout = Duration::from_millis(300);
    let srv = Server::start(config().with_join_timeout(join_timeout)).await;
    let start = Instant::now();
    let mut c = srv.connect().await;
    let m = c.expect_error(ErrorCode::Unauthorized).await;
    assert!(m.contains("join"), "{m}");
    c.expect_closed().await;
    assert!(start.elapsed() >= join_timeout);
    // Pings do not extend the join deadline.
    let start = Instant::now();
    let mut c = srv.connect().await;
    let mut ts = 0;
    let msg = loop {
        c.send(&ClientMessage::Ping { ts }).await;
        match c.recv().await {
            ServerMessage::Pong { .. } => {}
            other => break other,
        }
        ts += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        matches!(
            msg,
            ServerMessage::Error {
                code: ErrorCode::Unauthorized,
                ..
            }
        ),
        "{msg:?}"
    );
    assert!(start.elapsed() >= join_timeout);
}

#[tokio::test]
async fn shutdown_closes_every_session() {
    let srv = Server::start(config()).await;
    let (mut a, a_id, _) = srv.join(ROOM, "alice").await;
    let (mut b, b_id, _) = srv.join("room-2", "bob").await;
    let mut idle = srv.connect().await;
    srv.sig.shutdown();
    for c in [&mut a, &mut b] {
        c.expect_error(ErrorCode::Unavailable).await;
        assert_eq!(
            c.recv().await,
            ServerMessage::Closed {
                reason: LeaveReason::RoomClosed
            }
        );
        c.expect_closed().await;
    }
    idle.expect_error(ErrorCode::Unavailable).await;
    idle.expect_closed().await;
    srv.idle().await;
    assert_eq!(srv.media.leaves(&a_id), 1);
    assert_eq!(srv.media.leaves(&b_id), 1);
    let m = srv.metrics();
    assert_eq!(metric(&m, "sfu_participants"), 0);
    assert_eq!(metric(&m, "sfu_leaves_total{reason=\"room_closed\"}"), 2);
    // New connections are refused.
    let url = format!("ws://{}/rtc", srv.addr);
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

#[tokio::test]
async fn each_message_type_has_its_size_cap() {
    let srv = Server::start(config()).await;
    let (mut a, _, _) = srv.join(ROOM, "alice").await;
    let caps = SizeCaps::default();
    let over = |n: usize| "A".repeat(n + 1);
    let cases = [
        (
            "sdp",
            ClientMessage::Offer {
                target: Target::Publisher,
                sdp: over(caps.sdp),
            },
        ),
        (
            "candidate",
            ClientMessage::Candidate {
                target: Target::Publisher,
                candidate: IceCandidate {
                    candidate: over(caps.candidate),
                    sdp_mid: None,
                    sdp_m_line_index: None,
                },
            },
        ),
        (
            "key_package",
            ClientMessage::MlsKeyPackage {
                key_package: over(caps.key_package),
            },
        ),
        (
            "commit",
            ClientMessage::MlsCommit {
                epoch: 0,
                commit: over(caps.commit),
                welcome: None,
                added: vec![],
                removed: vec![],
            },
        ),
        (
            "welcome",
            ClientMessage::MlsCommit {
                epoch: 0,
                commit: "Yw==".into(),
                welcome: Some(over(caps.welcome)),
                added: vec![],
                removed: vec![],
            },
        ),
        (
            "application",
            ClientMessage::MlsApplication {
                epoch: 0,
                message: over(caps.application),
            },
        ),
        (
            "name",
            ClientMessage::Publish {
                track: TrackPublish::new(&over(caps.name), "0", TrackKind::Audio, "opus"),
            },
        ),
        (
            "name",
            ClientMessage::Unsubscribe {
                track_id: over(caps.name),
            },
        ),
    ];
    for (field, msg) in &cases {
        a.send(msg).await;
        // An overlong name is malformed; a payload over its cap too large.
        let code = if *field == "name" {
            ErrorCode::BadMessage
        } else {
            ErrorCode::TooLarge
        };
        let m = a.expect_error(code).await;
        assert!(m.starts_with(field), "{field}: {m}");
    }
    // The connection stays, nothing reached the media plane or the log.
    a.ping(1).await;
    let m = srv.metrics();
    for field in [
        "sdp",
        "candidate",
        "key_package",
        "commit",
        "welcome",
        "application",
    ] {
        let series = format!("sfu_signaling_oversize_total{{field=\"{field}\"}}");
        assert_eq!(metric(&m, &series), 1, "{series}");
    }
    assert_eq!(
        metric(&m, "sfu_signaling_oversize_total{field=\"name\"}"),
        2
    );
    assert_eq!(
        metric(&m, "sfu_signaling_errors_total{code=\"too_large\"}"),
        6
    );
    assert_eq!(metric(&m, "sfu_signaling_mls_bytes_total"), 0);
    assert!(
        !srv.media
            .recs()
            .iter()
            .any(|r| matches!(r, Rec::PublisherOffer(..) | Rec::Candidate(..)))
    );
}

/// Sends a ping and counts the `rate_limited` errors that arrive before its
/// pong; anything else is unexpected.
async fn rate_limited_before_pong(a: &mut Client) -> u64 {
    a.send(&ClientMessage::Ping { ts: 1 }).await;
    let mut limited = 0;
    loop {
        match a.recv().await {
            ServerMessage::Pong { .. } => return limited,
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            } => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn sdp_negotiations_have_their_own_rate() {
    let rates = MessageRates::default().with_sdp(RateLimit::new(0.5, 3));
    let srv = Server::start(config().with_message_rates(rates)).await;
    let (mut a, a_id, _) = srv.join(ROOM, "alice").await;
    let start = Instant::now();
    for _ in 0..6 {
        a.send(&ClientMessage::Offer {
            target: Target::Publisher,
            sdp: "v=0".into(),
        })
        .await;
    }
    let limited = rate_limited_before_pong(&mut a).await;
    let offers = srv
        .media
        .recs()
        .iter()
        .filter(|r| matches!(r, Rec::PublisherOffer(p, _) if *p == a_id))
        .count() as u64;
    let refill = start.elapsed().as_secs() / 2 + 1;
    assert!(offers >= 3 && offers <= 3 + refill, "offers={offers}");
    assert_eq!(offers + limited, 6);
    let m = srv.metrics();
    assert_eq!(
        metric(&m, "sfu_signaling_rate_limited_total{kind=\"sdp\"}"),
        6 - offers
    );
}

/// A mute goes to the whole room, so toggling it is charged to the chat
/// allowance: past it, toggles are refused and not relayed.
#[tokio::test]
async fn mutes_share_the_chat_rate() {
    let rates = MessageRates::default().with_chat(RateLimit::new(0.01, 3));
    let srv = Server::start(config().with_message_rates(rates)).await;
    let (mut a, _, _) = srv.join(ROOM, "alice").await;
    a.send(&ClientMessage::Publish {
        track: TrackPublish::new("mic", "0", TrackKind::Audio, "opus"),
    })
    .await;
    assert!(matches!(
        a.recv().await,
        ServerMessage::TrackAccepted { .. }
    ));
    for i in 0..6 {
        a.send(&ClientMessage::Mute {
            cid: "mic".into(),
            muted: i % 2 == 0,
        })
        .await;
    }
    assert_eq!(rate_limited_before_pong(&mut a).await, 3);
    let m = srv.metrics();
    assert_eq!(
        metric(&m, "sfu_signaling_rate_limited_total{kind=\"chat\"}"),
        3
    );
}

/// The server decides how many subscriber offers a client gets (every
/// join, leave and publish in the room brings one); answering each is never
/// rate limited, or churn in a room would leave m-lines unnegotiated. An
/// answer beyond the offers sent is charged like any SDP.
#[tokio::test]
async fn answers_to_the_servers_offers_are_not_rate_limited() {
    let rates = MessageRates::default().with_sdp(RateLimit::new(0.01, 2));
    let srv = Server::start(config().with_message_rates(rates)).await;
    let (mut a, a_id, _) = srv.join(ROOM, "alice").await;
    const OFFERS: usize = 10;
    for _ in 0..OFFERS {
        srv.media
            .push(&a_id, MediaEvent::SubscriberOffer { sdp: "v=0".into() })
            .await;
        loop {
            if let ServerMessage::Offer { .. } = a.recv().await {
                break;
            }
        }
        a.send(&ClientMessage::Answer {
            target: Target::Subscriber,
            sdp: "v=0".into(),
        })
        .await;
    }
    // Unsolicited answers draw on the SDP rate: a burst of 2, then refused.
    for _ in 0..3 {
        a.send(&ClientMessage::Answer {
            target: Target::Subscriber,
            sdp: "v=0".into(),
        })
        .await;
    }
    let limited = rate_limited_before_pong(&mut a).await;
    assert_eq!(limited, 1);
    let answers = srv
        .media
        .recs()
        .iter()
        .filter(|r| matches!(r, Rec::SubscriberAnswer(p, _) if *p == a_id))
        .count() as u64;
    assert_eq!(answers, OFFERS as u64 + 2);
}
