//! NACK works end to end: two bare peers talk through a UDP proxy on
//! loopback that drops every tenth media packet from sender to receiver, and
//! every packet still arrives, repaired by NACK (RTX for video, plain
//! retransmission for audio).

mod common;

use client_sdk::proto::IceCandidate;
use client_sdk::transport::{Peer, PeerConfig, PeerEvent, PeerEvents};
use client_sdk::{Codec, TrackSpec};
use common::{LIMIT, collect_and_check, payload};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const PACKETS: u32 = 300;
const DROP_EVERY: u64 = 10;

/// Where the proxy forwards, learned from the candidates it rewrites.
#[derive(Default)]
struct Targets {
    sender: Option<SocketAddr>,
    receiver: Option<SocketAddr>,
}

/// Whether a datagram is RTP media (not STUN, DTLS or RTCP).
fn is_rtp(datagram: &[u8]) -> bool {
    datagram.len() > 12 && datagram[0] >> 6 == 2 && !(192..=223).contains(&datagram[1])
}

/// Rewrites `candidate:... <ip> <port> typ host ...` to point at `via`,
/// returning the original address.
fn rewrite(candidate: &mut IceCandidate, via: SocketAddr) -> SocketAddr {
    let mut fields: Vec<String> = candidate.candidate.split(' ').map(str::to_owned).collect();
    let original: SocketAddr = format!("{}:{}", fields[4], fields[5])
        .parse()
        .expect("candidate address");
    fields[4] = via.ip().to_string();
    fields[5] = via.port().to_string();
    candidate.candidate = fields.join(" ");
    original
}

struct Proxy {
    /// The receiver sends here, believing it is the sender.
    facing_receiver: Arc<UdpSocket>,
    /// The sender sends here, believing it is the receiver.
    facing_sender: Arc<UdpSocket>,
    targets: Arc<Mutex<Targets>>,
    dropped: Arc<AtomicU64>,
}

impl Proxy {
    async fn start() -> Self {
        let facing_receiver = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let facing_sender = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind"));
        let targets = Arc::new(Mutex::new(Targets::default()));
        let dropped = Arc::new(AtomicU64::new(0));
        // Receiver → sender: everything passes (RTCP, NACKs, STUN).
        tokio::spawn({
            let (from, to, targets) = (
                Arc::clone(&facing_receiver),
                Arc::clone(&facing_sender),
                Arc::clone(&targets),
            );
            async move {
                let mut buf = vec![0u8; 2048];
                while let Ok((n, _)) = from.recv_from(&mut buf).await {
                    let dest = targets.lock().expect("targets").sender;
                    if let Some(dest) = dest {
                        let _ = to.send_to(&buf[..n], dest).await;
                    }
                }
            }
        });
        // Sender → receiver: every tenth RTP packet is lost.
        tokio::spawn({
            let (from, to, targets, dropped) = (
                Arc::clone(&facing_sender),
                Arc::clone(&facing_receiver),
                Arc::clone(&targets),
                Arc::clone(&dropped),
            );
            async move {
                let mut buf = vec![0u8; 2048];
                let mut rtp = 0u64;
                while let Ok((n, _)) = from.recv_from(&mut buf).await {
                    if is_rtp(&buf[..n]) {
                        rtp += 1;
                        if rtp.is_multiple_of(DROP_EVERY) {
                            dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                    let dest = targets.lock().expect("targets").receiver;
                    if let Some(dest) = dest {
                        let _ = to.send_to(&buf[..n], dest).await;
                    }
                }
            }
        });
        Self {
            facing_receiver,
            facing_sender,
            targets,
            dropped,
        }
    }

    /// Trickles `events`' candidates to `to`, through the proxy.
    fn relay(
        &self,
        mut events: PeerEvents,
        to: Arc<Peer>,
        from_sender: bool,
    ) -> mpsc::UnboundedReceiver<PeerEvent> {
        let via = if from_sender {
            self.facing_receiver.local_addr().expect("addr")
        } else {
            self.facing_sender.local_addr().expect("addr")
        };
        let targets = Arc::clone(&self.targets);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    PeerEvent::LocalCandidate(mut candidate) => {
                        let real = rewrite(&mut candidate, via);
                        {
                            let mut t = targets.lock().expect("targets");
                            if from_sender {
                                t.sender = Some(real);
                            } else {
                                t.receiver = Some(real);
                            }
                        }
                        to.add_remote_candidate(candidate).await.expect("candidate");
                    }
                    other => {
                        let _ = tx.send(other);
                    }
                }
            }
        });
        rx
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_packets_are_recovered_by_nack() {
    common::init_tracing();
    let proxy = Proxy::start().await;
    let (sender, sender_events) = Peer::new(PeerConfig::loopback()).await.expect("sender");
    let (receiver, receiver_events) = Peer::new(PeerConfig::loopback()).await.expect("receiver");
    let (sender, receiver) = (Arc::new(sender), Arc::new(receiver));

    let mic = sender
        .add_track(&TrackSpec::new("mic", Codec::opus()))
        .await
        .expect("audio");
    let cam = sender
        .add_track(&TrackSpec::new("cam", Codec::vp8()))
        .await
        .expect("video");
    let answer = receiver
        .accept_offer(sender.create_offer().await.expect("offer"))
        .await
        .expect("answer");
    sender.accept_answer(answer).await.expect("apply answer");
    let _sender_seen = proxy.relay(sender_events, Arc::clone(&receiver), true);
    let mut receiver_seen = proxy.relay(receiver_events, Arc::clone(&sender), false);
    sender
        .wait_connected(LIMIT)
        .await
        .expect("sender connected");
    receiver
        .wait_connected(LIMIT)
        .await
        .expect("receiver connected");

    let writer = tokio::spawn(async move {
        for i in 0..PACKETS {
            mic.write_rtp(payload("mic", i), i * 960, false)
                .await
                .expect("audio");
            cam.write_rtp(payload("cam", i), i * 3000, true)
                .await
                .expect("video");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Keep a trickle going, so a loss near the end is followed by a
        // packet that reveals the gap.
        for i in PACKETS..PACKETS + 20 {
            let _ = mic.write_rtp(payload("mic", i), i * 960, false).await;
            let _ = cam.write_rtp(payload("cam", i), i * 3000, true).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    let mut tracks = Vec::new();
    while tracks.len() < 2 {
        let event = tokio::time::timeout(LIMIT, receiver_seen.recv())
            .await
            .expect("track within the limit")
            .expect("receiver running");
        if let PeerEvent::Track(track) = event {
            tracks.push(track);
        }
    }
    for track in &mut tracks {
        let cid = track.track_id().to_owned();
        collect_and_check(&cid, PACKETS, track).await;
    }
    writer.await.expect("writer");
    let dropped = proxy.dropped.load(Ordering::Relaxed);
    assert!(
        dropped >= u64::from(PACKETS) * 2 / DROP_EVERY,
        "proxy dropped only {dropped}"
    );
    sender.close().await;
    receiver.close().await;
}
