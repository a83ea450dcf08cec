//! The real server, in process on loopback, with native WebRTC peers
//! (client-sdk on webrtc-rs): an interop test between two independent
//! WebRTC stacks. Every wait is bounded; only 127.0.0.1 is used.

use client_sdk::config::ConnectOptions;
use client_sdk::proto::Target;
use client_sdk::transport::{Event, Events, LocalTrack, Participant};
use client_sdk::{Codec, ConnectError, TrackSpec};
use signaling::proto::{ErrorCode, LeaveReason};
use signaling::token::{Claims, Grants, TokenKeys};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testkit::http::get as http_get;
use testkit::metrics;
use testkit::rng::Rng;
use testkit::server::url;
use testkit::token::dev_token as token;
use testkit::wait::{self, LIMIT};
const COUNTED: u32 = 100;

/// (publisher id, track id).
type TrackKey = (String, String);

/// What one peer received: per track, (seq, payload) in arrival order.
#[derive(Default)]
struct Inbox {
    packets: HashMap<TrackKey, Vec<(u16, Vec<u8>)>>,
    /// The subscriber m-line each track arrived on.
    mids: HashMap<TrackKey, String>,
    subscribed: usize,
    left: Vec<(String, LeaveReason)>,
}

struct Peer {
    participant: Participant,
    mic: LocalTrack,
    cam: LocalTrack,
    inbox: Arc<Mutex<Inbox>>,
}

/// The real server; a vanished peer is noticed after 3 s.
async fn server() -> sfu::RunningServer {
    testkit::server::sfu_with(|c| c.limits.ice_timeout = Duration::from_secs(3)).await
}

fn collect(mut events: Events, inbox: Arc<Mutex<Inbox>>) {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                Event::TrackSubscribed(mut track) => {
                    let key = (
                        track.info().participant_id.clone(),
                        track.info().track_id.clone(),
                    );
                    {
                        let mut inbox = inbox.lock().expect("lock");
                        inbox.subscribed += 1;
                        inbox.mids.insert(key.clone(), track.info().mid.clone());
                    }
                    let inbox = inbox.clone();
                    tokio::spawn(async move {
                        while let Some(p) = track.recv().await {
                            inbox
                                .lock()
                                .expect("lock")
                                .packets
                                .entry(key.clone())
                                .or_default()
                                .push((p.sequence_number, p.payload.to_vec()));
                        }
                    });
                }
                Event::ParticipantLeft {
                    participant_id,
                    reason,
                } => inbox
                    .lock()
                    .expect("lock")
                    .left
                    .push((participant_id, reason)),
                Event::Closed(_) => break,
                _ => {}
            }
        }
    });
}

async fn join(s: &sfu::RunningServer, room: &str, name: &str) -> Peer {
    let (participant, events) =
        Participant::connect(&url(s), &token(room, name), ConnectOptions::loopback())
            .await
            .expect("connect");
    let mic = participant
        .publish_track(TrackSpec::new("mic", Codec::opus()))
        .await
        .expect("publish mic");
    let cam = participant
        .publish_track(TrackSpec::new("cam", Codec::vp8()))
        .await
        .expect("publish cam");
    participant
        .wait_connected(Target::Publisher, LIMIT)
        .await
        .expect("publisher connected");
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    collect(events, inbox.clone());
    Peer {
        participant,
        mic,
        cam,
        inbox,
    }
}

fn payload(sender: &str, kind: &str, i: u32) -> Vec<u8> {
    let mut p = format!("{sender}/{kind}/{i}/").into_bytes();
    p.extend((0..(if kind == "cam" { 900 } else { 120 })).map(|x| (x as u32 ^ i) as u8));
    p
}

/// Sends `n` packets per track from every peer, 20 ms apart.
async fn send_round(peers: &[&Peer], tag: &str, n: u32) {
    for i in 0..n {
        for p in peers {
            let id = p.participant.participant_id();
            // Before a transport is connected writes are refused; that is fine
            // for warm-up rounds, and counted rounds start after connection.
            let _ = p
                .mic
                .write_rtp(payload(&format!("{id}{tag}"), "mic", i), i * 960, false)
                .await;
            let _ = p
                .cam
                .write_rtp(payload(&format!("{id}{tag}"), "cam", i), i * 3000, true)
                .await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_exchange_media_through_the_sfu() {
    let s = server().await;
    let a = join(&s, "room", "alice").await;
    let b = join(&s, "room", "bob").await;
    let c = join(&s, "room", "carol").await;
    let peers = [&a, &b, &c];
    // Warm up until every peer receives both tracks of both others.
    let warm = async {
        loop {
            send_round(&peers, "w", 10).await;
            if peers
                .iter()
                .all(|p| p.inbox.lock().expect("lock").subscribed >= 4)
            {
                break;
            }
        }
    };
    if tokio::time::timeout(LIMIT, warm).await.is_err() {
        let got: Vec<(usize, usize)> = peers
            .iter()
            .map(|p| {
                let i = p.inbox.lock().expect("lock");
                (i.subscribed, i.packets.values().map(Vec::len).sum())
            })
            .collect();
        let (_, m) = http_get(s.http_addr(), "/metrics").await;
        let m: Vec<&str> = m.lines().filter(|l| l.starts_with("sfu_")).collect();
        panic!("not all subscribed: (tracks, packets) per peer {got:?}\n{m:#?}");
    }
    send_round(&peers, "", COUNTED).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    for me in &peers {
        let my_id = me.participant.participant_id().to_string();
        let inbox = me.inbox.lock().expect("lock");
        assert!(
            !inbox.packets.keys().any(|(from, _)| *from == my_id),
            "{my_id} received its own media"
        );
        for other in peers
            .iter()
            .filter(|p| p.participant.participant_id() != my_id)
        {
            let oid = other.participant.participant_id();
            for (track, kind) in [(&other.mic, "mic"), (&other.cam, "cam")] {
                let key = (oid.to_string(), track.info().track_id.clone());
                let got = inbox.packets.get(&key).expect("track received");
                // The whole stream, warm-up included, has continuous seqs.
                for w in got.windows(2) {
                    assert_eq!(
                        w[1].0,
                        w[0].0.wrapping_add(1),
                        "{my_id} from {oid} {kind}: seq gap"
                    );
                }
                let counted: Vec<&Vec<u8>> = got
                    .iter()
                    .map(|(_, p)| p)
                    .filter(|p| p.starts_with(format!("{oid}/").as_bytes()))
                    .collect();
                let expected: Vec<Vec<u8>> = (0..COUNTED).map(|i| payload(oid, kind, i)).collect();
                assert_eq!(
                    counted.len(),
                    expected.len(),
                    "{my_id} from {oid} {kind}: count"
                );
                assert!(
                    counted.iter().zip(&expected).all(|(g, e)| *g == e),
                    "{my_id} from {oid} {kind}: payload bytes differ"
                );
            }
        }
    }

    // Carol leaves: the others hear it and get nothing more from her.
    let carol = c.participant.participant_id().to_string();
    c.participant.leave().await;
    for p in [&a, &b] {
        wait::until("participant_left", || {
            p.inbox
                .lock()
                .expect("lock")
                .left
                .contains(&(carol.clone(), LeaveReason::Left))
        })
        .await;
    }
    let counts = |p: &Peer| -> usize {
        let inbox = p.inbox.lock().expect("lock");
        inbox
            .packets
            .iter()
            .filter(|((from, _), _)| *from == carol)
            .map(|(_, v)| v.len())
            .sum()
    };
    let before = (counts(&a), counts(&b));
    send_round(&[&c], "late", 20).await;
    send_round(&[&a, &b], "after", 20).await;
    assert_eq!((counts(&a), counts(&b)), before, "media after leave");

    // Bob vanishes without leaving: Alice is told he is gone.
    let bob = b.participant.participant_id().to_string();
    drop(b);
    wait::until("vanished peer removed", || {
        a.inbox
            .lock()
            .expect("lock")
            .left
            .iter()
            .any(|(id, _)| *id == bob)
    })
    .await;
    s.shutdown();
    tokio::time::timeout(LIMIT, s.join())
        .await
        .expect("stops")
        .expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_is_refused_and_the_server_stays_healthy() {
    let s = server().await;

    // Tokens: forged, expired, wrong room.
    let forged = TokenKeys::new("devkey", "not-the-secret-not-the-secret-00000")
        .mint(
            "room",
            "eve",
            "Eve",
            Grants::default(),
            Duration::from_secs(60),
        )
        .expect("mint");
    let r = Participant::connect(&url(&s), &forged, ConnectOptions::loopback()).await;
    assert!(
        matches!(r, Err(ConnectError::Unauthorized(_))),
        "forged: {r:?}"
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let expired = TokenKeys::development()
        .sign(&Claims {
            iss: "devkey".into(),
            sub: "eve".into(),
            exp: now - 60,
            nbf: now - 120,
            room: "room".into(),
            name: "Eve".into(),
            grants: Grants::default(),
        })
        .expect("sign");
    let r = Participant::connect(&url(&s), &expired, ConnectOptions::loopback()).await;
    assert!(
        matches!(r, Err(ConnectError::Unauthorized(_))),
        "expired: {r:?}"
    );
    let wrong_room = format!("{}?room=other", url(&s));
    let r = Participant::connect(
        &wrong_room,
        &token("room", "eve"),
        ConnectOptions::loopback(),
    )
    .await;
    assert!(
        matches!(r, Err(ConnectError::Unauthorized(_))),
        "wrong room: {r:?}"
    );

    // Malformed and oversized signaling messages.
    let mut ws = testkit::ws::Client::connect(&url(&s)).await;
    for (text, code) in [
        ("{not json".to_string(), ErrorCode::BadMessage),
        (
            "x".repeat(signaling::proto::MAX_MESSAGE_BYTES + 1024),
            ErrorCode::TooLarge,
        ),
    ] {
        ws.send_raw(&text).await;
        ws.expect_error(code).await;
    }

    // Garbage datagrams: random bytes, fake STUN, fake RTP, fake DTLS, huge.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("udp");
    let mut rng = Rng::new(0x1234_5678);
    for i in 0..1000u32 {
        let len = rng.below(1500) + 1;
        let mut d = rng.bytes(len);
        d[0] = match i % 5 {
            0 => 0x00,
            1 => 0x80,
            2 => 22,
            3 => 0x90,
            _ => d[0],
        };
        udp.send_to(&d, s.media_addr()).await.expect("send");
        // Pace the flood so the kernel's receive buffer never overflows and
        // every datagram reaches the SFU to be counted.
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    udp.send_to(&vec![0x80; 3000], s.media_addr())
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, _) = http_get(s.http_addr(), "/healthz").await;
    assert_eq!(status, 200);
    let (_, metrics) = http_get(s.http_addr(), "/metrics").await;
    let dropped = metrics::sum(&metrics, "sfu_packets_dropped_total");
    let received = metrics::sum(&metrics, "sfu_media_datagrams_received_total");
    assert_eq!(received, 1001, "all garbage reached the SFU\n{metrics}");
    assert_eq!(
        dropped, 1001,
        "every garbage datagram counted as dropped\n{metrics}"
    );

    // A new pair of peers still joins and exchanges media.
    let a = join(&s, "after", "alice").await;
    let b = join(&s, "after", "bob").await;
    let pair = [&a, &b];
    let warm = async {
        loop {
            send_round(&pair, "", 10).await;
            if pair
                .iter()
                .all(|p| p.inbox.lock().expect("lock").subscribed >= 2)
            {
                break;
            }
        }
    };
    tokio::time::timeout(LIMIT, warm)
        .await
        .expect("media flows after the garbage");
    s.shutdown();
}

/// Alice stays while Bob publishes and leaves, then Carol publishes: Carol's
/// tracks reach Alice on the m-lines Bob's used (the SFU reuses them), as
/// new tracks with their own ids and byte-exact payloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_reuses_the_mlines_of_one_who_left() {
    let s = server().await;
    let a = join(&s, "room", "alice").await;
    let mut lines: Vec<Vec<String>> = Vec::new();
    for name in ["bob", "carol"] {
        let p = join(&s, "room", name).await;
        let id = p.participant.participant_id().to_string();
        let pair = [&a, &p];
        let warm = async {
            loop {
                send_round(&pair, "w", 10).await;
                let ok = a
                    .inbox
                    .lock()
                    .expect("lock")
                    .packets
                    .keys()
                    .filter(|(from, _)| *from == id)
                    .count()
                    == 2;
                if ok {
                    break;
                }
            }
        };
        tokio::time::timeout(LIMIT, warm)
            .await
            .unwrap_or_else(|_| panic!("alice receives {name}'s two tracks"));
        send_round(&[&p], "", COUNTED).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        {
            let inbox = a.inbox.lock().expect("lock");
            for (track, kind) in [(&p.mic, "mic"), (&p.cam, "cam")] {
                let key = (id.clone(), track.info().track_id.clone());
                let got: Vec<&Vec<u8>> = inbox
                    .packets
                    .get(&key)
                    .expect("track received")
                    .iter()
                    .map(|(_, p)| p)
                    .filter(|p| p.starts_with(format!("{id}/").as_bytes()))
                    .collect();
                let expected: Vec<Vec<u8>> = (0..COUNTED).map(|i| payload(&id, kind, i)).collect();
                assert_eq!(got.len(), expected.len(), "{name} {kind}: count");
                assert!(
                    got.iter().zip(&expected).all(|(g, e)| *g == e),
                    "{name} {kind}: payload bytes differ"
                );
            }
        }
        {
            let inbox = a.inbox.lock().expect("lock");
            lines.push(
                [&p.mic, &p.cam]
                    .iter()
                    .map(|t| inbox.mids[&(id.clone(), t.info().track_id.clone())].clone())
                    .collect(),
            );
        }
        p.participant.leave().await;
        wait::until("participant_left", || {
            a.inbox
                .lock()
                .expect("lock")
                .left
                .iter()
                .any(|(l, _)| *l == id)
        })
        .await;
    }
    assert_eq!(lines[0], lines[1], "carol's tracks arrive on bob's m-lines");
    s.shutdown();
}
