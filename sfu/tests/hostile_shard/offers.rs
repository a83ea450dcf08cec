//! The offer flood: SDP offers at the message rate, far over their own
//! rate, alternately the largest offer the limits accept and one far past
//! them. The sender joins again whenever the server closes it for abuse.

use futures_util::{SinkExt as _, StreamExt as _};
use signaling::proto::{ClientMessage, ErrorCode, ServerMessage, Target};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::ws::Client;
use tokio_tungstenite::tungstenite::Message;

use crate::flood::{Frame, Rx, parse};

/// The flooding participant's identity.
pub(crate) const OFFERER: &str = "mallory";
/// Offers far past the limits: as many m-lines as the finding used
/// (about 430 KB, within signaling's 512 KiB message limit).
pub(crate) const OVERSIZE_LINES: usize = 1000;

/// What the offer flood saw.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) offers_sent: u64,
    pub(crate) answers: u64,
    pub(crate) rate_limited: u64,
    pub(crate) refused: u64,
    pub(crate) other: u64,
    pub(crate) connections: u64,
}

/// The offer message, serialized once.
fn offer_message(sdp: String) -> String {
    let msg = ClientMessage::Offer {
        target: Target::Publisher,
        sdp,
    };
    serde_json::to_string(&msg).expect("encode")
}

/// Counts what the server says to the flood until the socket ends.
async fn read_replies(mut rx: Rx, tally: Arc<Mutex<Tally>>) {
    while let Some(Ok(frame)) = rx.next().await {
        let Some(frame) = parse(&frame) else { continue };
        let mut t = tally.lock().expect("tally");
        match frame {
            Frame::Msg(ServerMessage::Answer { .. }) => t.answers += 1,
            Frame::Msg(ServerMessage::Error {
                code: ErrorCode::RateLimited,
                ..
            }) => t.rate_limited += 1,
            Frame::Msg(ServerMessage::Error {
                code: ErrorCode::Media | ErrorCode::TooLarge,
                ..
            }) => t.refused += 1,
            _ => t.other += 1,
        }
    }
}

/// Offers at `per_second` into `room` until `end`, alternating `largest`
/// and `oversize`; joins again if the server closes the connection.
pub(crate) async fn flood(
    url: String,
    room: String,
    per_second: u64,
    largest: String,
    oversize: String,
    end: Instant,
) -> Tally {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let messages = [offer_message(largest), offer_message(oversize)];
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / per_second));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0usize;
    while Instant::now() < end {
        let mut c = Client::connect(&url).await;
        c.join(&testkit::token::dev_token(&room, OFFERER)).await;
        tally.lock().expect("tally").connections += 1;
        let (mut tx, rx) = c.ws.split();
        let reader = tokio::spawn(read_replies(rx, tally.clone()));
        while Instant::now() < end {
            tick.tick().await;
            let text = messages[sent % 2].clone();
            if tx.send(Message::text(text)).await.is_err() {
                break;
            }
            sent += 1;
            tally.lock().expect("tally").offers_sent += 1;
        }
        let _ = tx.close().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    }
    std::mem::take(&mut *tally.lock().expect("tally"))
}
