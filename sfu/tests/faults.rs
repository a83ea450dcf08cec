//! Faults a deployment meets, played against the real `sfu` binary on
//! loopback with real end-to-end encrypted clients:
//!
//! - the server process killed (SIGKILL) and restarted mid-call;
//! - one member's signaling connection cut while media flows;
//! - a 5 s UDP blackhole for one member;
//! - one member's process killed without leaving.
//!
//! Each test prints its figures on a `FAULT` line (run with `--nocapture`).
//! The assertions are on outcomes, bounded by the test kit's patience and
//! never on speed: every member decrypts every other again, the room moves
//! to a new epoch without a dead member, and no chat message whose sender
//! saw it acknowledged (echoed back from the room's log) is lost.

mod support;

use client_sdk::config::IceOptions;
use client_sdk::{Codec, MediaSender, RoomOptions, SignalingState, TrackSpec};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};
use support::udpcapture::UdpCapture;
use support::wsproxy::WsProxy;
use support::{Member, frame_index, video_frame};
use tokio::task::JoinHandle;

/// Camera frames per second each member sends.
const FPS: u64 = 20;
/// A keyframe every this many frames: a subscriber that starts over waits
/// at most this long for one (the SFU also asks for one).
const KEYFRAME_EVERY: u32 = 10;
/// A chat message from each member every this long while a fault plays.
const CHAT_EVERY: Duration = Duration::from_millis(250);
const MARK: &[u8] = b"fault-test";

/// One member's camera: sends numbered frames until dropped.
struct Camera {
    sent: Arc<AtomicU32>,
    task: JoinHandle<()>,
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Camera {
    async fn start(member: &Member) -> Self {
        let cam = member
            .room
            .publish(TrackSpec::new("cam", Codec::vp8()))
            .await
            .expect("publish cam");
        let name = member.room.identity().to_owned();
        let sent = Arc::new(AtomicU32::new(0));
        let task = tokio::spawn(pump(cam, name, Arc::clone(&sent)));
        Self { sent, task }
    }

    /// The index of the last frame sent.
    fn last(&self) -> u32 {
        self.sent.load(Ordering::Relaxed)
    }
}

async fn pump(cam: MediaSender, name: String, sent: Arc<AtomicU32>) {
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / FPS));
    for i in 0u32.. {
        tick.tick().await;
        // While the member is reconnecting a frame may fail; the camera goes
        // on, as a real one would.
        let _ = cam
            .send_frame(
                &video_frame(&name, "cam", i, MARK, 600, i.is_multiple_of(KEYFRAME_EVERY)),
                i * 4500,
                i.is_multiple_of(KEYFRAME_EVERY),
            )
            .await;
        sent.store(i, Ordering::Relaxed);
    }
}

/// One member's chat: `name#k` every [`CHAT_EVERY`] until stopped.
struct Chatter {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU32>,
    task: JoinHandle<()>,
}

impl Chatter {
    fn start(member: &Member) -> Self {
        let room = Arc::clone(&member.room);
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU32::new(0));
        let (stop2, sent2) = (Arc::clone(&stop), Arc::clone(&sent));
        let task = tokio::spawn(async move {
            let name = room.identity().to_owned();
            for k in 0u32.. {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                room.send_chat(&format!("{name}#{k}"))
                    .await
                    .expect("queued");
                sent2.store(k + 1, Ordering::Relaxed);
                tokio::time::sleep(CHAT_EVERY).await;
            }
        });
        Self { stop, sent, task }
    }

    async fn stop(self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("chat task");
        self.sent.load(Ordering::Relaxed)
    }
}

/// The highest frame index `m` decrypted from `other`.
fn last_from(m: &Member, other: &str) -> Option<u32> {
    m.inbox()
        .frames_from(other)
        .iter()
        .filter_map(|f| frame_index(&f.data).map(|x| x.2))
        .max()
}

/// Waits until every member decrypted, from every other member, a frame
/// sent after `marks` (the others' camera positions when the fault ended).
async fn everyone_decrypts_after(members: &[Member], marks: &HashMap<String, u32>) {
    for m in members {
        let me = m.room.identity().to_owned();
        for (other, mark) in marks.iter().filter(|(o, _)| **o != me) {
            m.until(&format!("a frame from {other} after #{mark}"), |i| {
                i.frames_from(other)
                    .iter()
                    .filter_map(|f| frame_index(&f.data))
                    .any(|x| x.2 > *mark)
            })
            .await;
        }
    }
}

fn marks(members: &[Member], cams: &[Camera]) -> HashMap<String, u32> {
    members
        .iter()
        .zip(cams)
        .map(|(m, c)| (m.room.identity().to_owned(), c.last()))
        .collect()
}

/// Every member's camera on, until everyone decrypts everyone; then every
/// member's chat on.
async fn start_call(members: &[Member]) -> (Vec<Camera>, Vec<Chatter>) {
    let mut cams = Vec::new();
    for m in members {
        cams.push(Camera::start(m).await);
    }
    everyone_decrypts_after(members, &marks(members, &cams)).await;
    (cams, members.iter().map(Chatter::start).collect())
}

async fn join_all(url: &str, room: &str, names: &[&str]) -> Vec<Member> {
    let mut members = Vec::new();
    for n in names {
        members.push(Member::join(url, room, n, RoomOptions::loopback()).await);
    }
    members
}

async fn in_one_group(members: &[Member]) {
    let n = members.len();
    for m in members {
        m.until(&format!("a group of {n}"), |i| {
            i.rosters.last().is_some_and(|r| r.len() == n)
        })
        .await;
    }
}

/// Stops the chatters, waits until every message each sender saw
/// acknowledged has reached every member, and returns (acknowledged,
/// lost): a message is lost if its sender saw it acknowledged and some
/// member never got it.
async fn chat_outcome(members: &[Member], chatters: Vec<Chatter>) -> (usize, usize) {
    let mut sent = Vec::new();
    for c in chatters {
        sent.push(c.stop().await);
    }
    // Every queued message is eventually acknowledged: the SDK resends
    // what a dead socket or server ate and carries it over a rejoin.
    for (m, n) in members.iter().zip(&sent) {
        let me = m.room.identity().to_owned();
        let last = format!("{me}#{}", n.saturating_sub(1));
        m.until(&format!("the echo of {last}"), |i| {
            i.chat
                .iter()
                .any(|(from, text)| *from == me && *text == last)
        })
        .await;
    }
    let acked: Vec<(String, String)> = members
        .iter()
        .flat_map(|m| {
            let me = m.room.identity().to_owned();
            m.inbox()
                .chat
                .iter()
                .filter(|(from, _)| *from == me)
                .cloned()
                .collect::<Vec<_>>()
        })
        .collect();
    for m in members {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            m.until("every acknowledged message", |i| {
                acked.iter().all(|a| i.chat.contains(a))
            }),
        )
        .await;
    }
    let lost: Vec<String> = members
        .iter()
        .flat_map(|m| {
            let i = m.inbox();
            let me = m.room.identity().to_owned();
            acked
                .iter()
                .filter(|a| !i.chat.contains(a))
                .map(|(from, text)| format!("{me} lacks {from}'s {text:?}"))
                .collect::<Vec<_>>()
        })
        .collect();
    if !lost.is_empty() {
        println!("lost chat: {lost:?}");
    }
    (acked.len(), lost.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_server_is_rejoined_and_everyone_decrypts_again() {
    let mut sfu = support::sfu_process("127.0.0.1").await;
    let members = join_all(&sfu.url(), "restart", &["alice", "bob", "carol"]).await;
    in_one_group(&members).await;
    let (cams, chatters) = start_call(&members).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let killed = Instant::now();
    sfu.restart().await;
    let serving = killed.elapsed();
    let marks = marks(&members, &cams);
    everyone_decrypts_after(&members, &marks).await;
    let recovered = killed.elapsed();
    let (acked, lost) = chat_outcome(&members, chatters).await;

    for m in &members {
        assert!(
            m.inbox().signaling.contains(&SignalingState::Rejoined),
            "{} rejoined the restarted server as a new participant",
            m.room.identity()
        );
    }
    println!(
        "FAULT sfu_restart: serving again after {} ms; every member decrypts every other {} ms after the kill; chat: {acked} acknowledged, {lost} lost",
        serving.as_millis(),
        recovered.as_millis()
    );
    assert_eq!(lost, 0, "acknowledged chat messages lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_on_while_a_members_signaling_is_cut_and_resumed() {
    let sfu = support::sfu_process("127.0.0.1").await;
    let proxy = WsProxy::start(sfu.url()).await;
    let members = join_all(&proxy.url(), "cut", &["alice", "bob"]).await;
    in_one_group(&members).await;
    let (cams, chatters) = start_call(&members).await;

    let bob = &members[1];
    let conn = proxy
        .conn_of(&bob.room.participant_id())
        .expect("bob's connection");
    let cut = Instant::now();
    proxy.sever(conn);
    bob.until("a resumed session", |i| {
        i.signaling.contains(&SignalingState::Resumed)
    })
    .await;
    let resumed = cut.elapsed();
    // A second of media after the resume, to see the gap whole.
    let after = marks(&members, &cams);
    tokio::time::sleep(Duration::from_secs(1)).await;
    everyone_decrypts_after(&members, &after).await;
    let (acked, lost) = chat_outcome(&members, chatters).await;

    // The longest pause in decrypted media, either way, around the cut.
    let gap = |m: &Member, from: &str| {
        let i = m.inbox();
        let times = i.arrivals.get(from).cloned().unwrap_or_default();
        times
            .windows(2)
            .filter(|w| w[1] >= cut)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default()
    };
    let gaps = [gap(&members[0], "bob"), gap(bob, "alice")];
    println!(
        "FAULT signaling_cut: resumed after {} ms; longest media pause alice<-bob {} ms, bob<-alice {} ms; chat: {acked} acknowledged, {lost} lost",
        resumed.as_millis(),
        gaps[0].as_millis(),
        gaps[1].as_millis()
    );
    assert!(
        !bob.inbox().signaling.contains(&SignalingState::Rejoined),
        "the session was resumed, not rejoined"
    );
    assert_eq!(lost, 0, "acknowledged chat messages lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_behind_a_5s_udp_blackhole_decrypts_again_after_it() {
    const HOLE: Duration = Duration::from_secs(5);
    let bob_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
    let sfu = support::sfu_process("127.0.0.2").await;
    let public = format!("127.0.0.2:{}", sfu.media.port())
        .parse()
        .expect("addr");
    let udp = UdpCapture::start(public, sfu.media).await;
    let url = sfu.url();
    let mut bob_options = RoomOptions::loopback();
    let mut ice = IceOptions::loopback_only();
    ice.local_ips = Some(vec![bob_ip]);
    bob_options.connect = bob_options.connect.with_ice(ice);
    let members = vec![
        Member::join(&url, "hole", "alice", RoomOptions::loopback()).await,
        Member::join(&url, "hole", "bob", bob_options).await,
        Member::join(&url, "hole", "carol", RoomOptions::loopback()).await,
    ];
    in_one_group(&members).await;
    let (cams, chatters) = start_call(&members).await;

    udp.blackhole(bob_ip, true);
    tokio::time::sleep(HOLE).await;
    udp.blackhole(bob_ip, false);
    let healed = Instant::now();
    let marks = marks(&members, &cams);
    everyone_decrypts_after(&members, &marks).await;
    let recovered = healed.elapsed();
    let (acked, lost) = chat_outcome(&members, chatters).await;

    let bob_last = last_from(&members[0], "bob").unwrap_or_default();
    println!(
        "FAULT udp_blackhole_5s: every member decrypts every other {} ms after the hole closed (alice has bob up to #{bob_last}); {} datagrams cut; chat: {acked} acknowledged, {lost} lost",
        recovered.as_millis(),
        udp.dropped()
    );
    assert!(udp.dropped() > 0, "the blackhole cut traffic");
    assert_eq!(lost, 0, "acknowledged chat messages lost");
}

/// The child side of the kill test: joins as `dave` and publishes until
/// killed. Run only as a child process of the test below.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by the kill test"]
async fn fault_child_member() {
    let Ok(url) = std::env::var("FAULT_CHILD_URL") else {
        return;
    };
    let dave = Member::join(&url, "kill", "dave", RoomOptions::loopback()).await;
    let _cam = Camera::start(&dave).await;
    // The parent kills this process; this bound only stops an orphan.
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_killed_without_leaving_leaves_and_a_new_epoch_follows() {
    let sfu = support::sfu_process("127.0.0.1").await;
    let url = sfu.url();
    let members = join_all(&url, "kill", &["alice", "bob"]).await;
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--ignored", "--exact", "fault_child_member"])
        .env("FAULT_CHILD_URL", &url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the child member");
    struct Reap<'a>(&'a mut std::process::Child);
    impl Drop for Reap<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Reap(&mut child);
    for m in &members {
        m.until("dave's frames", |i| !i.frames_from("dave").is_empty())
            .await;
        m.until("a group of 3", |i| {
            i.rosters.last().is_some_and(|r| r.len() == 3)
        })
        .await;
    }
    let epoch_before = members[0].room.epoch().expect("in the group");

    let killed = Instant::now();
    child.0.kill().expect("kill the child");
    let _ = child.0.wait();
    for m in &members {
        m.until("a group without dave", |i| {
            i.rosters
                .last()
                .is_some_and(|r| r.len() == 2 && !r.iter().any(|id| id == "dave"))
        })
        .await;
    }
    let left = killed.elapsed();
    let epoch_after = members[0].room.epoch().expect("in the group");
    assert!(epoch_after > epoch_before, "a new epoch followed the leave");
    let cams = [
        Camera::start(&members[0]).await,
        Camera::start(&members[1]).await,
    ];
    everyone_decrypts_after(&members, &marks(&members, &cams)).await;
    println!(
        "FAULT client_killed: dave out of the group {} ms after the kill (epoch {epoch_before} -> {epoch_after})",
        left.as_millis()
    );
}
