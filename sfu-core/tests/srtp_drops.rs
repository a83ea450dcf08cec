//! A participant whose ICE and DTLS handshake completed sends broken SRTP,
//! SRTCP and RTP: each datagram is dropped and counted under its reason,
//! and the same packets unbroken are still accepted.

use sfu_core::{DropReason, Input, Stats};
use std::net::SocketAddr;
use std::time::Duration;
use testkit::plane_world::{SFU, World};

/// RTP or RTCP by RFC 5761's payload type rule (RTCP types 64..=95 after
/// the marker bit).
fn is_rtcp(d: &[u8]) -> bool {
    d.len() > 1 && (64..96).contains(&(d[1] & 0x7f))
}

fn is_rtp_class(d: &[u8]) -> bool {
    matches!(d.first(), Some(128..=191))
}

/// Client 0 publishes, client 1 subscribes; both handshakes complete.
fn connected() -> World {
    let mut w = World::new(12);
    w.join("room");
    w.join("room");
    w.publish_av(0);
    w.advance(Duration::from_secs(1));
    let c = &w.clients;
    assert!(c[0].publisher.connected && c[1].subscriber.connected);
    w
}

/// Runs the world until a datagram from `from` to the plane matches `want`,
/// and takes it off the network; everything else is delivered as usual.
fn intercept(w: &mut World, from: SocketAddr, want: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    // Steps shorter than the link's 1 ms delay: nothing sent from `from`
    // is delivered before it is looked at.
    for _ in 0..20_000 {
        let now = w.now;
        let mut held = Vec::new();
        while let Some(d) = w.net.pop_due(now + Duration::from_secs(3600)) {
            held.push(d);
        }
        let mut found = None;
        for d in held {
            if found.is_none() && d.source == from && d.destination == SFU && want(&d.contents) {
                found = Some(d.contents);
            } else {
                w.net.send(now, d.source, d.destination, d.contents);
            }
        }
        if let Some(f) = found {
            return f;
        }
        w.advance(Duration::from_micros(500));
    }
    panic!("no such datagram from {from} within 10 s");
}

/// Feeds `contents` from `from` straight to the plane; returns the stats
/// before and after.
fn deliver(w: &mut World, from: SocketAddr, contents: &[u8]) -> (Stats, Stats) {
    let before = w.plane.stats();
    w.plane.handle_input(
        w.now,
        Input::Datagram {
            source: from,
            destination: SFU,
            contents,
        },
    );
    w.flush();
    (before, w.plane.stats())
}

fn total_drops(s: &Stats) -> u64 {
    s.dropped_all().map(|(_, n)| n).sum()
}

/// One more drop in all, and it is `reason`'s.
fn assert_one_drop(before: &Stats, after: &Stats, reason: DropReason, what: &str) {
    assert_eq!(
        total_drops(after),
        total_drops(before) + 1,
        "{what}: not counted as one drop"
    );
    assert_eq!(
        after.dropped(reason),
        before.dropped(reason) + 1,
        "{what}: not counted as {}",
        reason.label()
    );
}

/// A fresh SRTP packet of client 0's audio, taken off the wire.
fn srtp_packet(w: &mut World, ts: u32) -> Vec<u8> {
    let mid = w.clients[0].published[0].0;
    let now = w.now;
    assert!(
        w.clients[0]
            .publisher
            .send_rtp(now, mid, ts, true, &[0x42; 80])
    );
    w.clients[0].publisher.poll(now);
    w.flush();
    let from = w.clients[0].publisher.addr();
    intercept(w, from, |d| is_rtp_class(d) && !is_rtcp(d) && d.len() > 80)
}

#[test]
fn srtp_with_a_broken_auth_tag_is_counted_as_unauthenticated() {
    let mut w = connected();
    let from = w.clients[0].publisher.addr();
    let good = srtp_packet(&mut w, 960);
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let (before, after) = deliver(&mut w, from, &bad);
    assert_one_drop(&before, &after, DropReason::SrtpUnauthenticated, "SRTP tag");
    assert_eq!(after.rtp_in, before.rtp_in, "a forgery reached forwarding");

    // The same packet unbroken authenticates: the framing was right.
    let (before, after) = deliver(&mut w, from, &good);
    assert_eq!(
        after.rtp_in,
        before.rtp_in + 1,
        "the real packet is accepted"
    );
    assert_eq!(total_drops(&after), total_drops(&before));

    // Sent again, it is a replay.
    let (before, after) = deliver(&mut w, from, &good);
    assert_one_drop(&before, &after, DropReason::RtpDuplicate, "replayed SRTP");
}

#[test]
fn srtcp_with_a_broken_auth_tag_is_counted_as_unauthenticated() {
    let mut w = connected();
    let from = w.clients[0].publisher.addr();
    // Once it sends media, the publisher sends sender reports.
    w.send_media(Duration::from_millis(300), &[]);
    let good = intercept(&mut w, from, |d| is_rtp_class(d) && is_rtcp(d));
    let mut bad = good.clone();
    // Inside the encrypted, authenticated part, whatever the profile.
    bad[10] ^= 0x80;
    let (before, after) = deliver(&mut w, from, &bad);
    assert_one_drop(
        &before,
        &after,
        DropReason::SrtpUnauthenticated,
        "SRTCP tag",
    );
    assert_eq!(after.rtcp_in, before.rtcp_in);

    let (before, after) = deliver(&mut w, from, &good);
    assert_eq!(total_drops(&after), total_drops(&before));
    assert_eq!(after.rtcp_in, before.rtcp_in + 1, "the real report is read");
}

#[test]
fn truncated_rtp_headers_are_counted_as_malformed() {
    let mut w = connected();
    let from = w.clients[0].publisher.addr();
    let good = srtp_packet(&mut w, 960);
    // Shorter than the fixed header; then the fixed header with the
    // extension bit set and the extension block cut off.
    let mut cut_ext = good[..14].to_vec();
    cut_ext[0] |= 0x10;
    for (bad, what) in [(&good[..8], "8 bytes"), (&cut_ext[..], "extension cut")] {
        let (before, after) = deliver(&mut w, from, bad);
        assert_one_drop(&before, &after, DropReason::RtpMalformed, what);
        assert_eq!(after.rtp_in, before.rtp_in);
    }
    // The transport still works.
    let (before, after) = deliver(&mut w, from, &good);
    assert_eq!(after.rtp_in, before.rtp_in + 1);
}

#[test]
fn an_honest_call_counts_no_refused_packets() {
    // The new reasons must not fire on ordinary traffic, or they would
    // hide an attack in noise.
    let mut w = connected();
    w.send_media(Duration::from_secs(2), &[]);
    w.advance(Duration::from_millis(300));
    let s = w.plane.stats();
    for r in [
        DropReason::SrtpUnauthenticated,
        DropReason::RtpMalformed,
        DropReason::RtpUnknownStream,
        DropReason::RtpDuplicate,
    ] {
        assert_eq!(s.dropped(r), 0, "{}", r.label());
    }
    assert!(s.rtp_in > 100 && s.rtcp_in > 0, "{s:?}");
}
