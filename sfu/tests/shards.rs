//! Two media shards in one real server, on loopback: each has its own UDP
//! port, the first room goes to shard 0 and the second to the less loaded
//! shard 1, every ICE candidate a room's members get names its shard's
//! port, media flows end to end in both rooms, and `/metrics` sums the
//! shards.

mod support;

use client_sdk::RoomOptions;
use client_sdk::proto::Target;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::wsproxy::{Dir, WsProxy};
use support::{LIMIT, Member, frame, frame_index, video_frame};
use testkit::metrics::sample;

const ROOMS: [(&str, [&str; 2]); 2] = [("alpha", ["alice", "bob"]), ("beta", ["carol", "dave"])];

/// The UDP ports of every ICE candidate the server sent through `proxy`, in
/// SDP offers and answers and in trickled candidates.
fn candidate_ports(proxy: &WsProxy) -> BTreeSet<u16> {
    let mut lines = Vec::new();
    for c in proxy
        .captured()
        .into_iter()
        .filter(|c| c.dir == Dir::ToClient)
    {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&c.text) else {
            continue;
        };
        if let Some(sdp) = v["sdp"].as_str() {
            lines.extend(
                sdp.lines()
                    .filter_map(|l| l.strip_prefix("a="))
                    .filter(|l| l.starts_with("candidate:"))
                    .map(str::to_string),
            );
        }
        if let Some(line) = v["candidate"]["candidate"].as_str() {
            lines.push(line.to_string());
        }
    }
    // candidate:<foundation> <component> <transport> <priority> <ip> <port> typ …
    lines
        .iter()
        .map(|l| {
            l.split_whitespace()
                .nth(5)
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("malformed candidate {l:?}"))
        })
        .collect()
}

/// Both members of a room publish; returns once each has received frames
/// from the other, decrypted, end to end.
async fn media_flows(room: &str, members: &[Member; 2], names: [&str; 2]) {
    for m in members {
        m.until("a group of two", |i| {
            i.rosters.last().is_some_and(|r| r.len() == 2)
        })
        .await;
    }
    let mut tracks = Vec::new();
    for m in members {
        tracks.push(m.publish_av().await);
        m.room
            .wait_connected(Target::Publisher, LIMIT)
            .await
            .unwrap_or_else(|e| panic!("{room}: publisher connected: {e}"));
    }
    // A remote track shows once its first packet arrives, and video starts
    // at a keyframe: send keyframes until each member has both tracks of
    // the other and a decrypted frame from it.
    let marker = [0x42u8; 32];
    let done = |m: &Member, other: &str| {
        let i = m.inbox();
        i.subscribed >= 2
            && i.frames_from(other)
                .iter()
                .filter_map(|f| frame_index(&f.data))
                .any(|(sender, _, _)| sender == other)
    };
    let deadline = Instant::now() + LIMIT;
    for round in 0u32.. {
        if done(&members[0], names[1]) && done(&members[1], names[0]) {
            break;
        }
        assert!(Instant::now() < deadline, "{room}: media did not flow");
        for (name, (mic, cam)) in names.iter().zip(&tracks) {
            let _ = cam
                .send_frame(
                    &video_frame(name, "cam", round, &marker, 1200, true),
                    round * 3000,
                    true,
                )
                .await;
            let _ = mic
                .send_frame(&frame(name, "mic", round, &marker, 100), round * 960, false)
                .await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rooms_on_two_shards_each_on_its_own_port() {
    let s = testkit::server::sfu_with(|c| c.media.shards = 2).await;
    let addrs = s.media_addrs().to_vec();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert_ne!(addrs[0].port(), addrs[1].port());
    assert_eq!(s.media_addr(), addrs[0]);
    assert!(addrs.iter().all(|a| a.ip().is_loopback()));

    // One signaling proxy per room, to tell the rooms' messages apart.
    // Joins are one at a time, so placement is fixed: alpha starts on the
    // empty shard 0, then beta on shard 1, which has fewer participants.
    let url = testkit::server::url(&s);
    let mut proxies = Vec::new();
    let mut rooms = Vec::new();
    for (room, names) in ROOMS {
        let proxy = WsProxy::start(url.clone()).await;
        let mut members = Vec::new();
        for name in names {
            members.push(Member::join(&proxy.url(), room, name, RoomOptions::loopback()).await);
        }
        let members: [Member; 2] = members.try_into().ok().expect("two members");
        proxies.push(proxy);
        rooms.push(members);
    }

    for ((room, names), members) in ROOMS.iter().zip(&rooms) {
        media_flows(room, members, *names).await;
    }

    for (shard, ((room, _), proxy)) in ROOMS.iter().zip(&proxies).enumerate() {
        let ports = candidate_ports(proxy);
        assert_eq!(
            ports,
            BTreeSet::from([addrs[shard].port()]),
            "{room}'s candidates must name shard {shard}'s port only ({addrs:?})"
        );
    }

    // The shards publish their counters a few times a second.
    testkit::wait::until_async("metrics summing both shards", || async {
        let (_, text) = testkit::http::get(s.http_addr(), "/metrics").await;
        let got = [
            "sfu_media_shards",
            "sfu_media_rooms",
            "sfu_media_participants",
        ]
        .map(|n| sample(&text, n));
        got == [Some(2), Some(2), Some(4)]
            && sample(&text, "sfu_media_rtp_packets_forwarded_total").is_some_and(|n| n > 0)
    })
    .await;

    drop(rooms);
    s.shutdown();
    tokio::time::timeout(LIMIT, s.join())
        .await
        .expect("stops")
        .expect("clean stop");
}
