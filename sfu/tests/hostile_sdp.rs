//! A participant sending hostile SDP, against the real server in process:
//! refusals are clear, fixed messages that quote nothing the server holds
//! (no library error text, no address), limits on bytes and m-lines are
//! enforced, the refusals are counted, and an offer within the limits
//! still gets its answer.

use signaling::proto::{ClientMessage, ErrorCode, ServerMessage, Target};
use std::net::SocketAddr;
use testkit::server::url;
use testkit::token::dev_token;
use testkit::ws::Client;

async fn joined(server: &sfu::RunningServer, room: &str, who: &str) -> Client {
    let mut c = Client::connect(&url(server)).await;
    c.join(&dev_token(room, who)).await;
    c
}

/// Waits until `/metrics` shows the counter `name` at `at_least` or more
/// (shards publish their counters a few times a second).
async fn counted(http: SocketAddr, name: &str, at_least: u64) {
    testkit::wait::until_async(name, || async {
        let (_, text) = testkit::http::get(http, "/metrics").await;
        testkit::metrics::sample(&text, name).is_some_and(|n| n >= at_least)
    })
    .await;
}

async fn offer(c: &mut Client, sdp: String) {
    c.send(&ClientMessage::Offer {
        target: Target::Publisher,
        sdp,
    })
    .await;
}

/// The next `media` error, skipping anything else the server says.
async fn media_error(c: &mut Client) -> String {
    loop {
        if let ServerMessage::Error { code, message } = c.recv().await {
            assert_eq!(code, ErrorCode::Media, "{message}");
            return message;
        }
    }
}

/// A message that could carry internal detail: a hex address, a Rust
/// `Debug` rendering, or a library's own words.
fn leaks(message: &str) -> bool {
    message.contains("0x")
        || message.contains("Err(")
        || message.contains("Some(")
        || message.contains("SDP parse")
        || message.contains("Parse error")
        || message.contains("Unexpected")
}

#[tokio::test]
async fn an_unparsable_offer_gets_a_fixed_message() {
    let server = testkit::server::sfu().await;
    let mut c = joined(&server, "r", "mallory").await;
    let cases = [
        "v=0\r\nbogus".to_string(),
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio nine".to_string(),
        "\u{1}\u{2}\u{7f}".repeat(100),
    ];
    for sdp in cases {
        offer(&mut c, sdp).await;
        let message = media_error(&mut c).await;
        // Refused by the parser, or parsed but not applicable: either way
        // one of two fixed messages.
        assert!(
            message == "offer refused: unparsable SDP"
                || message == "offer refused: the media server cannot use this SDP",
            "{message}"
        );
        assert!(!leaks(&message), "{message}");
    }
    // The subscriber side too: an answer nobody asked for that does not
    // parse is refused the same way.
    c.send(&ClientMessage::Answer {
        target: Target::Subscriber,
        sdp: "v=0\r\nbogus".into(),
    })
    .await;
    let message = media_error(&mut c).await;
    assert_eq!(message, "answer refused: unparsable SDP");
    counted(server.http_addr(), "sfu_media_sdp_refused_total", 4).await;
}

#[tokio::test]
async fn offers_past_the_limits_are_refused_and_one_within_them_is_answered() {
    let server = testkit::server::sfu().await;
    let config = sfu::config::Config::default();
    let (max_bytes, limits) = (config.limits.max_sdp_bytes, config.media);
    let mut c = joined(&server, "r", "mallory").await;

    // Too many bytes: signaling refuses it before a media shard sees it.
    offer(&mut c, testkit::sdp::offer(2, 1, max_bytes + 1)).await;
    loop {
        if let ServerMessage::Error { code, message } = c.recv().await {
            assert_eq!(code, ErrorCode::TooLarge, "{message}");
            assert!(!leaks(&message), "{message}");
            break;
        }
    }

    // Too many m-lines, within the byte limit.
    let lines = limits.sdp_max_media_lines + 1;
    offer(&mut c, testkit::sdp::offer(lines, 0, 0)).await;
    let message = media_error(&mut c).await;
    assert_eq!(
        message,
        format!(
            "offer refused: SDP with {lines} m-lines exceeds the limit of {}",
            limits.sdp_max_media_lines
        )
    );

    // More sending m-lines than a participant may publish tracks.
    let tracks = signaling::server::SignalingConfig::default().max_tracks_per_participant;
    offer(&mut c, testkit::sdp::offer(tracks + 1, tracks + 1, 0)).await;
    let message = media_error(&mut c).await;
    assert!(
        message.contains(&format!("at most {tracks} tracks")),
        "{message}"
    );

    // The largest offer the limits allow is parsed, applied and answered.
    let largest = testkit::sdp::offer(limits.sdp_max_media_lines, tracks, max_bytes);
    assert!(largest.len() <= max_bytes);
    offer(&mut c, largest).await;
    loop {
        match c.recv().await {
            ServerMessage::Answer {
                target: Target::Publisher,
                sdp,
            } => {
                assert_eq!(sdp.matches("\nm=").count(), limits.sdp_max_media_lines);
                break;
            }
            ServerMessage::Error { code, message } => panic!("{code:?}: {message}"),
            _ => {}
        }
    }
    counted(server.http_addr(), "sfu_media_sdp_refused_total", 2).await;
    counted(
        server.http_addr(),
        "sfu_signaling_oversize_total{field=\"sdp\"}",
        1,
    )
    .await;
    counted(
        server.http_addr(),
        "sfu_media_negotiation_microseconds_total",
        1,
    )
    .await;
}
