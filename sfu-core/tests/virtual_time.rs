#![allow(clippy::needless_range_loop)]
//! The media plane with real str0m peers on a seeded virtual-time network.

use sfu_core::{DropReason, MediaEvent};
use std::collections::HashMap;
use std::time::Duration;
use testkit::netem::Link;
use testkit::plane_world::{SFU, World};

/// Groups what client `c` received by (publisher, kind), in arrival order.
fn received_by_source(w: &World, c: usize) -> HashMap<(usize, u8), Vec<Vec<u8>>> {
    let mut out: HashMap<(usize, u8), Vec<Vec<u8>>> = HashMap::new();
    for r in &w.clients[c].subscriber.received {
        out.entry((r.payload[0] as usize, r.payload[1]))
            .or_default()
            .push(r.payload.clone());
    }
    out
}

fn assert_sequence_continuous(w: &World, c: usize) {
    let mut by_mid: HashMap<String, Vec<u16>> = HashMap::new();
    for r in &w.clients[c].subscriber.received {
        by_mid.entry(r.mid.to_string()).or_default().push(r.seq);
    }
    for (mid, seqs) in by_mid {
        for pair in seqs.windows(2) {
            assert_eq!(
                pair[1],
                pair[0].wrapping_add(1),
                "client {c} mid {mid}: sequence numbers jump"
            );
        }
    }
}

#[test]
fn three_peers_receive_each_other_byte_for_byte() {
    let mut w = World::new(1);
    for i in 0..3 {
        w.join("room");
        w.publish_av(i);
    }
    w.advance(Duration::from_secs(2));
    for c in &w.clients {
        assert!(
            c.publisher.connected && c.subscriber.connected,
            "{} connected",
            c.id
        );
        assert_eq!(
            c.subscribed.len(),
            4,
            "{} subscribed to 2 tracks x 2 peers",
            c.id
        );
    }
    let sent = w.send_media(Duration::from_secs(3), &[]);
    w.advance(Duration::from_millis(500));
    for c in 0..3 {
        let got = received_by_source(&w, c);
        assert!(
            !got.keys().any(|(src, _)| *src == c),
            "client {c} got its own media"
        );
        for ((src, kind), payloads) in &sent {
            if *src == c {
                continue;
            }
            let got = got
                .get(&(*src, *kind))
                .map(Vec::as_slice)
                .unwrap_or_default();
            assert_eq!(
                got.len(),
                payloads.len(),
                "client {c} from {src} kind {kind}: count"
            );
            assert!(
                got == payloads,
                "client {c} from {src} kind {kind}: payloads differ"
            );
        }
        assert_sequence_continuous(&w, c);
    }
    let s = w.plane.stats();
    assert_eq!(s.participants, 3);
    assert_eq!(s.tracks, 6);
    assert_eq!(s.subscriptions, 12);
    assert!(s.rtp_forwarded >= 2 * s.rtp_in - 50, "fan-out of 2: {s:?}");
}

#[test]
fn leaving_peer_stops_and_is_announced() {
    let mut w = World::new(2);
    for i in 0..3 {
        w.join("room");
        w.publish_av(i);
    }
    w.advance(Duration::from_secs(2));
    w.send_media(Duration::from_secs(1), &[]);
    w.leave(2);
    for c in 0..2 {
        let unsub = w.clients[c]
            .events
            .iter()
            .filter(|e| matches!(e, MediaEvent::Unsubscribed { .. }))
            .count();
        assert_eq!(unsub, 2, "client {c} told both tracks went away");
    }
    let before: Vec<usize> = (0..2)
        .map(|c| w.clients[c].subscriber.received.len())
        .collect();
    // Client 2 keeps sending; the SFU no longer knows its address.
    w.send_media(Duration::from_secs(1), &[]);
    w.advance(Duration::from_millis(300));
    for c in 0..2 {
        let late = w.clients[c].subscriber.received[before[c]..]
            .iter()
            .filter(|r| r.payload[0] == 2)
            .count();
        assert_eq!(late, 0, "client {c} still receives the leaver's media");
    }
    assert!(w.plane.stats().dropped(DropReason::UnknownSource) > 0);
    let s = w.plane.stats();
    assert_eq!((s.participants, s.tracks, s.subscriptions), (2, 4, 4));
    assert_eq!(w.plane.transport_count(), 4);
}

#[test]
fn silent_peer_times_out() {
    let mut w = World::new(3);
    for i in 0..2 {
        w.join("room");
        w.publish_av(i);
    }
    w.advance(Duration::from_secs(2));
    // Client 1 vanishes: its packets are all lost from now on.
    let (pa, sa) = (
        w.clients[1].publisher.addr(),
        w.clients[1].subscriber.addr(),
    );
    let dead = Link {
        loss: 1.0,
        loss_media_only: false,
        ..Link::default()
    };
    w.net.set_link(pa, SFU, dead);
    w.net.set_link(sa, SFU, dead);
    w.advance(Duration::from_secs(4));
    assert!(
        !w.clients[1].events.contains(&MediaEvent::Timeout),
        "not before the timeout"
    );
    w.advance(Duration::from_secs(3));
    assert!(w.clients[1].events.contains(&MediaEvent::Timeout));
    assert!(!w.clients[0].events.contains(&MediaEvent::Timeout));
}

#[test]
fn nack_recovers_five_percent_downstream_loss() {
    let mut w = World::new(4);
    for i in 0..2 {
        w.join("room");
        w.publish_av(i);
    }
    w.advance(Duration::from_secs(2));
    // 5% of RTP/RTCP from the SFU to client 1's subscriber transport is lost.
    let lossy = Link {
        loss: 0.05,
        delay: Duration::from_millis(10),
        ..Link::default()
    };
    let sub = w.clients[1].subscriber.addr();
    w.net.set_link(SFU, sub, lossy);
    let dropped_before = w.net.dropped;
    let sent = w.send_media(Duration::from_secs(20), &[1]);
    w.advance(Duration::from_secs(1));
    let lost_on_link = w.net.dropped - dropped_before;
    let got = received_by_source(&w, 1);
    // Video negotiates NACK and RTX; audio (Opus) relies on in-band FEC
    // instead, as in browsers, so only video is expected to recover.
    let delivered = |kind: u8| {
        let payloads = &sent[&(0, kind)];
        let received: std::collections::HashSet<&Vec<u8>> = got
            .get(&(0, kind))
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        let ok = payloads.iter().filter(|p| received.contains(p)).count();
        (ok, payloads.len())
    };
    let (video_ok, video_sent) = delivered(1);
    let (audio_ok, audio_sent) = delivered(0);
    let ratio = video_ok as f64 / video_sent as f64;
    println!(
        "video {video_ok}/{video_sent} ({ratio:.4}), audio {audio_ok}/{audio_sent}, \
         datagrams lost on link {lost_on_link}"
    );
    assert!(
        lost_on_link > 50,
        "the link really lost packets: {lost_on_link}"
    );
    assert!(audio_ok < audio_sent, "audio shows the raw loss");
    assert!(ratio >= 0.99, "recovered {ratio}");
    // Answered from the track's shared store, through the subscription's
    // log: str0m keeps no copy of its own.
    let s = w.plane.stats();
    println!(
        "resends: {} asked, {} sent; {} packets kept",
        s.resends_requested, s.resends_sent, s.resend_store_packets
    );
    assert!(s.resends_sent > 0 && s.resends_sent <= s.resends_requested);
    assert!(s.resend_store_packets > 0);
}

/// A STUN Binding Indication naming `ufrag`, with no MESSAGE-INTEGRITY. It
/// routes to the transport by ufrag but must not teach the SFU a new address.
fn forged_indication(ufrag: &str) -> Vec<u8> {
    let user = format!("{ufrag}:attacker");
    let mut attrs = vec![0x00, 0x06];
    attrs.extend_from_slice(&(user.len() as u16).to_be_bytes());
    attrs.extend_from_slice(user.as_bytes());
    while attrs.len() % 4 != 0 {
        attrs.push(0);
    }
    let mut m = vec![0x00, 0x11];
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    m.extend_from_slice(&[9; 12]);
    m.extend_from_slice(&attrs);
    m
}

#[test]
fn forged_stun_indication_does_not_hijack_routing() {
    let mut w = World::new(5);
    w.join("room");
    w.publish_av(0);
    w.advance(Duration::from_secs(1));
    let ufrag = w.clients[0]
        .events
        .iter()
        .find_map(|e| match e {
            MediaEvent::PublisherAnswer { sdp } => sdp
                .lines()
                .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
                .map(str::to_string),
            _ => None,
        })
        .expect("answer carries our ufrag");
    let attacker: std::net::SocketAddr = "127.0.0.1:40000".parse().expect("addr");
    let before = w.plane.stats();
    for contents in [forged_indication(&ufrag), vec![0x80; 40]] {
        w.plane.handle_input(
            w.now,
            sfu_core::Input::Datagram {
                source: attacker,
                destination: SFU,
                contents: &contents,
            },
        );
    }
    let after = w.plane.stats();
    assert_eq!(
        after.dropped(DropReason::UnknownSource),
        before.dropped(DropReason::UnknownSource) + 1,
        "the attacker's RTP must come from an unknown source"
    );
    assert_eq!(
        after.dropped(DropReason::Rejected),
        before.dropped(DropReason::Rejected) + 1,
        "the unauthenticated STUN is refused by the transport"
    );
}

fn subscriber_mlines(w: &World, c: usize) -> usize {
    w.clients[c]
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            MediaEvent::SubscriberOffer { sdp } => Some(sdp.matches("\r\nm=").count()),
            _ => None,
        })
        .expect("an offer was made")
}

#[test]
fn departed_tracks_free_their_mlines_for_the_next_publisher() {
    let mut w = World::new(6);
    let host = w.join("room");
    w.publish_av(host);
    for round in 0..5u8 {
        let i = w.join("room");
        w.publish_av(i);
        w.advance(Duration::from_millis(500));
        let before = w.clients[host].subscriber.received.len();
        let sent = w.send_media(Duration::from_millis(500), &[host]);
        w.advance(Duration::from_millis(200));
        let got: Vec<&Vec<u8>> = w.clients[host].subscriber.received[before..]
            .iter()
            .map(|r| &r.payload)
            .collect();
        for kind in 0..2u8 {
            let want = &sent[&(i, kind)];
            let have: Vec<&Vec<u8>> = got
                .iter()
                .copied()
                .filter(|p| p[0] == i as u8 && p[1] == kind)
                .collect();
            assert!(
                have.len() == want.len() && have.iter().zip(want).all(|(a, b)| *a == b),
                "round {round} kind {kind}: host got {} of {} packets, or different bytes",
                have.len(),
                want.len()
            );
        }
        assert_eq!(
            subscriber_mlines(&w, host),
            2,
            "round {round}: the host's subscriber SDP reuses its two m-lines"
        );
        w.leave(i);
        w.advance(Duration::from_millis(100));
    }
    // Across five publishers on the same two m-lines, each stream stays
    // continuous for the receiver.
    assert_sequence_continuous(&w, host);
}

#[test]
fn unpublishing_tells_subscribers() {
    let mut w = World::new(7);
    w.join("room");
    w.join("room");
    w.publish_av(0);
    w.advance(Duration::from_millis(500));
    let (_, track_id) = w.clients[0].published[1].clone();
    w.command(sfu_core::MediaCommand::Unpublish {
        participant: w.clients[0].id.clone(),
        track_id: track_id.clone(),
    });
    assert!(
        w.clients[1]
            .events
            .contains(&MediaEvent::Unsubscribed { track_id }),
        "the subscriber hears the track went away"
    );
    let s = w.plane.stats();
    assert_eq!((s.tracks, s.subscriptions), (1, 1));
}

#[test]
fn packets_too_large_to_forward_are_dropped() {
    // str0m builds outgoing packets in a 2000-byte buffer; a publisher
    // packet that leaves no room for the subscriber hop's extensions is
    // refused instead of overflowing it.
    let mut w = World::new(8);
    w.join("room");
    w.join("room");
    w.publish_av(0);
    w.advance(Duration::from_secs(1));
    let mid = w.clients[0].published[1].0;
    for (n, len) in [1800usize, 1960].into_iter().enumerate() {
        let mut payload = vec![0u8, 1, n as u8];
        payload.resize(len, 0x5A);
        let now = w.now;
        assert!(w.clients[0].publisher.send_rtp(now, mid, 0, true, &payload));
        w.clients[0].publisher.poll(now);
        w.flush();
        w.advance(Duration::from_millis(50));
    }
    let got: Vec<usize> = w.clients[1]
        .subscriber
        .received
        .iter()
        .map(|r| r.payload.len())
        .collect();
    assert_eq!(got, vec![1800]);
    assert_eq!(w.plane.stats().dropped(DropReason::Oversized), 1);
}
