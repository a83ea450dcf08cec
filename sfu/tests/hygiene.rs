//! Tokens and logs: the server refuses tokens that live too long or carry
//! oversized or control-character claims, and its debug log holds no ICE
//! password. (Guessable API secrets: tests/cli.rs.)

use signaling::proto::{ClientMessage, ErrorCode, ServerMessage, Target};
use signaling::token::{Claims, DEV_API_KEY, Grants, TokenKeys};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use str0m::media::MediaKind;
use testkit::peer::LeanPeer;
use testkit::sfu_bin::{Options, SfuBin};
use testkit::ws::Client;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn token(exp: u64, room: &str, name: &str) -> String {
    TokenKeys::development()
        .sign(&Claims {
            iss: DEV_API_KEY.into(),
            sub: "mallory".into(),
            exp,
            nbf: now() - 5,
            room: room.into(),
            name: name.into(),
            grants: Grants::default(),
        })
        .expect("signs")
}

/// Tokens that never expire, carry 100-300 KB claims, or put control
/// characters in the room or name are refused at join, so nothing of them
/// reaches the room or the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_past_the_lifetime_or_size_caps_are_refused() {
    let server = testkit::server::sfu().await;
    let url = testkit::server::url(&server);
    let cases = [
        ("exp = 2^64-1", token(u64::MAX, "standup", "M")),
        ("exp in a year", token(now() + 365 * 86400, "standup", "M")),
        (
            "100 KB name",
            token(now() + 60, "standup", &"n".repeat(100 << 10)),
        ),
        (
            "300 KB room",
            token(now() + 60, &"r".repeat(300 << 10), "M"),
        ),
        (
            "newline in room",
            token(now() + 60, "standup\nINFO forged", "M"),
        ),
        (
            "escape in name",
            token(now() + 60, "standup", "\u{1b}[2Jeve"),
        ),
    ];
    for (what, t) in cases {
        let mut client = Client::connect(&url).await;
        client.join_raw(&t).await;
        match client.recv().await {
            ServerMessage::Error {
                code: ErrorCode::Unauthorized,
                ..
            } => {}
            other => panic!("{what}: expected unauthorized, got {other:?}"),
        }
    }
    // An ordinary token still joins.
    let mut client = Client::connect(&url).await;
    client.join(&token(now() + 600, "standup", "Mallory")).await;
}

/// With the log at debug, the ICE passwords of an offer and its answer
/// appear nowhere in the server's log, while other debug lines do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_hold_no_ice_password() {
    let options = Options {
        args: vec!["--log".into(), "debug".into()],
        ..Options::default()
    };
    let sfu = SfuBin::start(env!("CARGO_BIN_EXE_sfu").as_ref(), &options);
    let mut client = Client::connect(&testkit::server::rtc_url(sfu.http)).await;
    client
        .join(&testkit::token::dev_token("standup", "alice"))
        .await;
    let mut peer = LeanPeer::new("127.0.0.1:40000".parse().expect("addr"), Instant::now());
    let (offer, _) = peer.offer_tracks(&[MediaKind::Audio, MediaKind::Video]);
    client
        .send(&ClientMessage::Offer {
            target: Target::Publisher,
            sdp: offer.clone(),
        })
        .await;
    let answer = loop {
        if let ServerMessage::Answer {
            target: Target::Publisher,
            sdp,
        } = client.recv().await
        {
            break sdp;
        }
    };
    let log = sfu.stop();
    let passwords: Vec<&str> = [offer.as_str(), answer.as_str()]
        .iter()
        .flat_map(|sdp| sdp.lines())
        .filter_map(|l| l.trim().strip_prefix("a=ice-pwd:"))
        .collect();
    assert!(passwords.len() >= 2, "offer and answer carry passwords");
    for line in &log {
        for pwd in &passwords {
            assert!(!line.contains(pwd), "ICE password logged: {line}");
        }
    }
    assert!(
        log.iter().any(|l| l.contains("\"level\":\"DEBUG\"")),
        "the log is at debug"
    );
}
