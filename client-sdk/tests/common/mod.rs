//! Helpers shared by the integration tests: wiring two bare peers together
//! on loopback, as signaling would, and driving sessions through the real
//! server (from `testkit`).
// Each test binary uses a part of this module.
#![allow(dead_code, unused_imports, unreachable_pub)]

use client_sdk::transport::{InboundTrack, Peer, PeerEvent, PeerEvents};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub use testkit::logs::init as init_tracing;
pub use testkit::wait::LIMIT;

/// Payload indices from here on are warm-up: [`collect_and_check`] skips
/// them.
const WARM_UP: u32 = 1_000_000;

/// The next session event, within [`LIMIT`].
pub async fn next_event(
    events: &mut client_sdk::transport::Events,
) -> client_sdk::transport::Event {
    tokio::time::timeout(LIMIT, events.recv())
        .await
        .expect("event within the limit")
        .expect("session still open")
}

/// Writes warm-up packets on `track` (published as `cid`) until the
/// subscriber whose `events` these are gets one on it: the server forwards
/// media only once the subscription is negotiated, and a remote track on a
/// reused m-line shows before that. Other events go to `other`. Returns
/// the remote track and how many warm-up packets were written.
pub async fn warm_up(
    track: &client_sdk::transport::LocalTrack,
    cid: &str,
    events: &mut client_sdk::transport::Events,
    mut other: impl FnMut(client_sdk::transport::Event),
) -> (client_sdk::transport::RemoteTrack, u32) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut subscribed = None;
    for k in 0.. {
        if let Some(remote) =
            subscribed.take_if(|r: &mut client_sdk::transport::RemoteTrack| r.received() > 0)
        {
            return (remote, k);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{cid} never arrived"
        );
        let i = WARM_UP + k;
        // Refused until the publisher transport is up: that is fine here.
        let _ = track
            .write_rtp(payload(cid, i), i.wrapping_mul(3000), true)
            .await;
        let wait = tokio::time::Duration::from_millis(20);
        while let Ok(event) = tokio::time::timeout(wait, events.recv()).await {
            match event.expect("session still open") {
                client_sdk::transport::Event::TrackSubscribed(remote)
                    if remote.info().track_id == track.track_id() =>
                {
                    subscribed = Some(remote);
                }
                event => other(event),
            }
        }
    }
    unreachable!()
}

/// Passes events to `other` until none has come for `quiet`.
pub async fn drain(
    events: &mut client_sdk::transport::Events,
    quiet: Duration,
    mut other: impl FnMut(client_sdk::transport::Event),
) {
    while let Ok(event) = tokio::time::timeout(quiet, events.recv()).await {
        other(event.expect("session still open"));
    }
}

/// What a peer reported, other than candidates.
#[derive(Debug)]
pub enum Seen {
    Track(InboundTrack),
    KeyframeRequested(String),
}

/// Forwards `events`' candidates to `to` (recording each candidate line in
/// `candidates`) and everything else to the returned channel.
pub fn relay(
    mut events: PeerEvents,
    to: Arc<Peer>,
    candidates: mpsc::UnboundedSender<String>,
) -> mpsc::UnboundedReceiver<Seen> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                PeerEvent::LocalCandidate(candidate) => {
                    let _ = candidates.send(candidate.candidate.clone());
                    to.add_remote_candidate(candidate)
                        .await
                        .expect("remote candidate accepted");
                }
                PeerEvent::Track(track) => {
                    let _ = tx.send(Seen::Track(track));
                }
                PeerEvent::KeyframeRequested { cid } => {
                    let _ = tx.send(Seen::KeyframeRequested(cid));
                }
                _ => {}
            }
        }
    });
    rx
}

/// The next thing seen, within [`LIMIT`].
pub async fn next_seen(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .expect("peer event within the limit")
        .expect("peer still running")
}

/// A payload that names its track and index, followed by filler covering
/// every byte value, so any change to the bytes shows.
pub fn payload(cid: &str, i: u32) -> Vec<u8> {
    let mut p = format!("{cid}/{i}/").into_bytes();
    p.extend(
        (0..=255u8)
            .rev()
            .cycle()
            .skip(i as usize % 256)
            .take(100 + (i as usize * 7) % 1000),
    );
    p
}

/// Collects packets of `cid` from `track` until indices `0..n` have all
/// arrived (in any order: NACK repairs arrive late), and checks each is
/// byte-identical to what was sent and that sequence numbers follow the
/// send order without gaps.
pub async fn collect_and_check(
    cid: &str,
    n: u32,
    track: &mut impl PacketSource,
) -> Vec<client_sdk::transport::RtpPacket> {
    let mut got: Vec<Option<client_sdk::transport::RtpPacket>> = vec![None; n as usize];
    let mut missing = n;
    while missing > 0 {
        let Ok(packet) = tokio::time::timeout(LIMIT, track.next_packet()).await else {
            let lost: Vec<usize> = (0..got.len()).filter(|&i| got[i].is_none()).collect();
            panic!("{cid}: {missing} of {n} packets never arrived: {lost:?}");
        };
        let packet = packet.expect("track still open");
        let text = String::from_utf8_lossy(&packet.payload[..24.min(packet.payload.len())]);
        let mut parts = text.split('/');
        assert_eq!(parts.next(), Some(cid), "{cid}: a packet of another track");
        let i: u32 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{cid}: unrecognizable payload {text:?}"));
        assert!(
            packet.payload.as_ref() == payload(cid, i).as_slice(),
            "{cid}: packet #{i} payload changed in transit"
        );
        let Some(slot) = got.get_mut(i as usize) else {
            continue; // sent after the checked range
        };
        if slot.is_none() {
            missing -= 1;
        }
        *slot = Some(packet);
    }
    let got: Vec<client_sdk::transport::RtpPacket> = got.into_iter().flatten().collect();
    for (i, packet) in got.iter().enumerate() {
        assert_eq!(
            packet.sequence_number,
            got[0].sequence_number.wrapping_add(i as u16),
            "{cid}: sequence numbers follow the send order"
        );
    }
    got
}

/// Anything packets can be read from.
pub trait PacketSource {
    /// The next packet, or `None` once the track ended.
    fn next_packet(
        &mut self,
    ) -> impl std::future::Future<Output = Option<client_sdk::transport::RtpPacket>>;
}

impl PacketSource for client_sdk::transport::InboundTrack {
    fn next_packet(
        &mut self,
    ) -> impl std::future::Future<Output = Option<client_sdk::transport::RtpPacket>> {
        self.recv()
    }
}

impl PacketSource for client_sdk::transport::RemoteTrack {
    fn next_packet(
        &mut self,
    ) -> impl std::future::Future<Output = Option<client_sdk::transport::RtpPacket>> {
        self.recv()
    }
}
