//! Hostile participants must not stall the media shard an honest call
//! shares with them, nor grow the server's memory past what its limits
//! allow.
//!
//! The real `sfu` binary runs with one media shard, so every room is on
//! it. An honest pair (the load tester's participants: real client-sdk
//! members, end-to-end encrypted, audio both ways) runs a call in one
//! room. Meanwhile, in another room, hostile participants send every
//! client message that costs the server work or relay bytes, each as
//! large as its cap allows and at the highest rate the server allows:
//!
//! - SDP offers at the message rate (far over their own), alternately the
//!   largest offer the limits accept (every m-line allowed, a real str0m
//!   offer padded to the byte limit) and one far past them (1,000
//!   m-lines, as large as a signaling message may be) (`offers.rs`);
//! - chat and self-update commits from the room's MLS group member,
//!   KeyPackages from a non-member, and ICE candidates, all valid
//!   (`relay.rs`; which participant sends what, and why, is explained
//!   there).
//!
//! The room also holds a participant that reads everything relayed to it
//! and one that never reads, so that the relay and the outbound queues'
//! byte bounds are exercised. The honest pair must keep p99 latency under
//! 50 ms and loss under 1 % (the load tester's own figures), `/readyz`
//! must stay ready, and the server's resident memory must stay under the
//! bound [`rss_bound`] derives from the limits.

mod flood;
mod offers;
mod padded_mls;
mod relay;

use clap::Parser as _;
use flood::{Count, nominal};
use signaling::server::SignalingConfig;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::server::SfuProcess;

/// How long the attack lasts.
const ATTACK: Duration = Duration::from_secs(10);
/// The honest call's length once joined; the attack fits inside it.
const CALL: &str = "14s";
/// The hostile participants' room.
const ROOM: &str = "hostile";
/// The honest pair's bounds, from the issue this guards against.
const MAX_P99_MS: f64 = 50.0;
const MAX_LOSS: f64 = 0.01;

/// The server at rest with the honest pair's call (measured: 19–20 MiB),
/// with room for the allocator's slack.
const AT_REST: u64 = 32 << 20;
/// Parsing and applying one SDP offer (off the shard, then on it): the
/// offer flood alone peaked about 11 MiB over rest.
const NEGOTIATION: u64 = 16 << 20;
/// WebSocket connections open at once: the honest pair, six hostile-room
/// participants, one reconnecting.
const CONNECTIONS: u64 = 9;

/// What the server may hold during the attack, from its limits:
///
/// - the hostile room's MLS log, kept for resumes: at most
///   `mls_log_max_bytes` (32 MiB);
/// - MLS entries queued to the room's members and no longer in the log:
///   at most `room_outbound_bytes` (32 MiB; each shared entry counted
///   once, however many members it is queued for), plus the one message
///   admitted last. The sleeping participant alone may hold
///   `outbound_queue_bytes` (8 MiB) of it before it is closed as a slow
///   consumer; what is queued while the log still holds it costs nothing
///   more;
/// - a frame being read and one being written on each connection: twice
///   `max_message_bytes` (512 KiB) each;
/// - the group's public state, whose largest part is the members' leaves
///   (each at most the delivery service's 2 KiB leaf cap), and the copy
///   openmls stores of it: well under a few times `max_commit_bytes`;
/// - the remote ICE candidates the candidate sender's transport keeps
///   (the ICE agent keeps every distinct one until the transport ends, so
///   only the attack's length bounds them: message rate × candidate cap ×
///   attack);
/// - [`AT_REST`] and [`NEGOTIATION`].
///
/// With the defaults: 32 + 32 + 32.5 + 9 + 1 + 0.5 + 16 = 123 MiB. The
/// offer flood's share is one negotiation at a time: offers over their
/// rate are refused before they are parsed. In 10 s the attack fills
/// about 24 MiB of the log (the rates allow no more), and the server
/// peaked at about 61 MiB.
fn rss_bound(cfg: &SignalingConfig) -> u64 {
    let mb = cfg.max_message_bytes as u64;
    let candidates =
        cfg.rate_limit.per_second as u64 * ATTACK.as_secs() * cfg.size_caps.candidate as u64;
    AT_REST
        + cfg.mls_log_max_bytes as u64
        + cfg.room_outbound_bytes as u64
        + mb
        + CONNECTIONS * 2 * mb
        + 4 * cfg.size_caps.commit as u64
        + candidates
        + NEGOTIATION
}

/// What the server looked like during the attack.
#[derive(Debug, Default)]
struct Watch {
    peak_rss: u64,
    /// Bytes queued to clients (`sfu_signaling_outbound_bytes`).
    peak_queued: u64,
    /// Bytes of MLS log kept (`sfu_signaling_mls_log_bytes`).
    peak_log: u64,
    readyz: Vec<u16>,
}

/// Samples the server's RSS and queued bytes every 100 ms and `/readyz`
/// every second until `stop`.
async fn watch(pid: u32, http: SocketAddr, stop: Arc<tokio::sync::Notify>) -> Watch {
    let mut w = Watch::default();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for i in 0u64.. {
        tokio::select! {
            () = stop.notified() => break,
            _ = tick.tick() => {}
        }
        if let Some(rss) = testkit::procfs::read_rss_bytes(pid) {
            w.peak_rss = w.peak_rss.max(rss);
        }
        let (_, text) = testkit::http::get(http, "/metrics").await;
        let sample = |name| testkit::metrics::sample(&text, name).unwrap_or(0);
        w.peak_queued = w.peak_queued.max(sample("sfu_signaling_outbound_bytes"));
        w.peak_log = w.peak_log.max(sample("sfu_signaling_mls_log_bytes"));
        if i % 10 == 0 {
            w.readyz.push(testkit::http::get(http, "/readyz").await.0);
        }
    }
    w
}

/// CPU seconds spent so far: by the server, by its media shard's thread,
/// and by this test process (the attackers and the honest pair).
#[derive(Debug, Clone, Copy)]
struct Cpu {
    server: f64,
    shard: f64,
    test: f64,
}

impl Cpu {
    fn now(pid: u32) -> Self {
        let shard = testkit::procfs::threads_named(pid, "sfu-shard")
            .into_iter()
            .filter_map(|tid| testkit::procfs::read_thread_cpu_s(pid, tid))
            .sum();
        Self {
            server: testkit::procfs::read_process_cpu_s(pid).unwrap_or(0.0),
            shard,
            test: testkit::procfs::read_self_cpu_s().unwrap_or(0.0),
        }
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            server: self.server - before.server,
            shard: self.shard - before.shard,
            test: self.test - before.test,
        }
    }
}

/// The attackers' runtime. Dropped, even while a failed assertion
/// unwinds, it shuts down without waiting (a runtime may not block inside
/// another).
struct Attackers(Option<tokio::runtime::Runtime>);

impl Attackers {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("attackers' runtime");
        Self(Some(rt))
    }

    fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.as_ref().expect("running").spawn(future)
    }
}

impl Drop for Attackers {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

async fn metric(http: SocketAddr, name: &str) -> u64 {
    let (_, text) = testkit::http::get(http, "/metrics").await;
    testkit::metrics::sample(&text, name).unwrap_or(0)
}

/// Checks one kind's counts: at least half the nominal count taken (the
/// sender may be slowed by the machine), never more than the limiter
/// allows over `secs`.
fn check_rate(kind: &str, c: Count, limit: signaling::server::RateLimit, secs: f64) {
    let floor = nominal(limit, ATTACK.as_secs_f64()) / 2;
    let ceiling = nominal(limit, secs + 1.0);
    assert!(
        c.accepted >= floor && c.accepted <= ceiling,
        "{kind}: {c:?}, accepted must be in {floor}..={ceiling}"
    );
    assert!(c.settled(), "{kind}: unanswered messages: {c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_participants_do_not_stall_an_honest_call_on_their_shard() {
    let sfu = SfuProcess::start(Path::new(env!("CARGO_BIN_EXE_sfu")), "127.0.0.1").await;
    let pid = sfu.child.id();
    let defaults = sfu::config::Config::default();
    let cfg = defaults.limits.apply_to(SignalingConfig::default());
    let limits = defaults.media;
    let tracks = cfg.max_tracks_per_participant;
    let max_sdp = defaults.limits.max_sdp_bytes;
    let largest = testkit::sdp::offer(limits.sdp_max_media_lines, tracks, max_sdp);
    let oversize = testkit::sdp::lean(&testkit::sdp::offer(offers::OVERSIZE_LINES, 0, 0));
    assert!(largest.len() <= max_sdp);
    let bound = rss_bound(&cfg);

    // The attackers run on a runtime of their own: their work (building
    // and reading megabytes of messages) must not hold up the honest
    // pair's tasks on this one, which would count as latency the server
    // did not cause.
    let attackers = Attackers::new();
    let url = sfu.url();
    let room = {
        let url = url.clone();
        attackers.spawn(async move { relay::Room::join(&url, ROOM).await })
    };
    let room = room.await.expect("hostile room");
    let received = Arc::new(Mutex::new(relay::Received::default()));
    let listening = attackers.spawn(relay::listen(room.listener, received.clone()));
    let (member, member_joined) = room.member;
    let (packager, packager_joined) = room.packager;
    let sleeper = room.sleeper;

    // The honest pair: two members, each publishing audio to the other.
    let args = loadtest::cli::Args::parse_from([
        "loadtest",
        "--url",
        &format!("ws://{}", sfu.http),
        "--rooms",
        "1",
        "--participants-per-room",
        "2",
        "--video-publishers",
        "0",
        "--audio-publishers",
        "2",
        "--duration",
        CALL,
        "--ramp-per-sec",
        "100",
        "--no-progress",
    ]);
    let settings = loadtest::settings::Settings::resolve(&args).expect("settings");
    let honest = tokio::spawn(loadtest::run::run(settings));
    testkit::wait::until_async("the honest pair's media flows", || async {
        metric(sfu.http, "sfu_media_rtp_packets_forwarded_total").await > 100
    })
    .await;

    let stop = Arc::new(tokio::sync::Notify::new());
    let watcher = tokio::spawn(watch(pid, sfu.http, stop.clone()));
    let rest_rss = testkit::procfs::read_rss_bytes(pid).unwrap_or(0);
    let cpu_before = Cpu::now(pid);
    let start = Instant::now();
    let end = start + ATTACK;
    let per_second = cfg.rate_limit.per_second as u64;
    let offers = attackers.spawn(offers::flood(
        url.clone(),
        ROOM.into(),
        per_second,
        largest,
        oversize,
        end,
    ));
    let chat = attackers.spawn(relay::member(member, member_joined, cfg.clone(), end));
    let kps = attackers.spawn(relay::key_packages(
        packager,
        packager_joined,
        cfg.clone(),
        end,
    ));
    let ice = attackers.spawn(relay::candidates(url, ROOM.into(), cfg.clone(), end));
    let tally = offers.await.expect("offers");
    let member = chat.await.expect("member");
    let kp = kps.await.expect("key packages");
    let (ice, ice_connections) = ice.await.expect("candidates");
    let secs = start.elapsed().as_secs_f64();
    let cpu = Cpu::now(pid).since(cpu_before);
    // The listener has everything the room took once its counts reach the
    // senders' (it may lag behind them a little).
    let deadline = Instant::now() + flood::SETTLE;
    let got = loop {
        let g = *received.lock().expect("received");
        let all = g.chats >= member.chat.accepted
            && g.commits >= member.commit.accepted
            && g.key_packages >= kp.accepted;
        if all || g.closed || Instant::now() >= deadline {
            break g;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    stop.notify_one();
    let watched = watcher.await.expect("watcher");
    let outcome = tokio::time::timeout(Duration::from_secs(60), honest)
        .await
        .expect("the honest run ends")
        .expect("the honest run does not panic");
    let shard_us = metric(sfu.http, "sfu_media_negotiation_microseconds_total").await;
    let limited = metric(sfu.http, "sfu_media_negotiations_rate_limited_total").await;
    let slow = metric(sfu.http, "sfu_signaling_slow_consumers_total").await;
    listening.abort();
    drop(sleeper);
    drop(attackers);

    let r = &outcome.report;
    println!(
        "honest pair: latency p50/p99/max {:.1}/{:.1}/{:.1} ms over {} frames, loss {:.4}, \
         connected {}/{}",
        r.latency_ms.p50,
        r.latency_ms.p99,
        r.latency_ms.max,
        r.latency_ms.count,
        r.loss_ratio,
        r.participants_connected,
        r.participants_target,
    );
    println!(
        "attack over {secs:.1} s, CPU s {cpu:.2?}: offers {tally:?}; chat {:?}; commits {:?}; key packages {kp:?}; \
         candidates {ice:?} over {ice_connections} connections; member closed: {}",
        member.chat, member.commit, member.closed
    );
    println!(
        "listener got {got:?}; slow consumers closed: {slow}; server: RSS {} MiB at rest, peak {} MiB (bound {} MiB), \
         peak queued {} KiB, peak MLS log {} KiB, /readyz {:?}, negotiation {} ms of shard time, \
         {} refused over budget",
        rest_rss >> 20,
        watched.peak_rss >> 20,
        bound >> 20,
        watched.peak_queued >> 10,
        watched.peak_log >> 10,
        watched.readyz,
        shard_us / 1000,
        limited,
    );

    // The honest call held.
    assert_eq!(r.participants_connected, 2, "{:?}", r.errors);
    assert_eq!(r.participants_lost, 0, "{:?}", r.errors);
    assert!(r.latency_ms.count > 500, "too few frames measured");
    assert!(r.latency_ms.p99 < MAX_P99_MS, "p99 {} ms", r.latency_ms.p99);
    assert!(r.loss_ratio < MAX_LOSS, "loss {}", r.loss_ratio);
    assert!(
        !watched.readyz.is_empty() && watched.readyz.iter().all(|s| *s == 200),
        "/readyz during the attack: {:?}",
        watched.readyz
    );
    // The server's memory stayed within what its limits allow.
    assert!(
        watched.peak_rss < bound,
        "peak RSS {} MiB, bound {} MiB",
        watched.peak_rss >> 20,
        bound >> 20
    );
    let queued_bound = (cfg.room_outbound_bytes + 2 * cfg.max_message_bytes) as u64;
    assert!(watched.peak_queued <= queued_bound, "{watched:?}");
    assert!(
        watched.peak_log <= (cfg.mls_log_max_bytes + cfg.size_caps.commit) as u64,
        "{watched:?}"
    );

    // The offer flood ran: offers at the message rate (its sender joins
    // again whenever the server closes it for abuse, which costs it time,
    // so half the nominal count is the floor), the largest allowed ones
    // applied, the oversized ones refused, most refused as too fast.
    assert!(
        tally.offers_sent >= ATTACK.as_secs() * per_second / 2,
        "{tally:?}"
    );
    assert!(tally.answers > 0, "{tally:?}");
    assert!(tally.refused > 0, "{tally:?}");
    assert!(tally.rate_limited > 0, "{tally:?}");

    // The relay attack ran at the rates the server allows, and the room
    // relayed what it took to the listener.
    let rates = cfg.message_rates;
    assert!(!member.closed, "the member was closed: {member:?}");
    check_rate("chat", member.chat, rates.chat, secs);
    check_rate("commit", member.commit, rates.mls_commit, secs);
    // KeyPackages were sent far faster than allowed: the burst was taken,
    // at most one more per 10 s, the rest refused as too fast.
    assert!(kp.settled(), "{kp:?}");
    assert!(kp.accepted >= u64::from(rates.key_package.burst), "{kp:?}");
    assert!(
        kp.accepted <= nominal(rates.key_package, secs + 1.0),
        "{kp:?}"
    );
    assert!(kp.rate_limited > 0, "{kp:?}");
    // Candidates have no rate of their own: the message rate's half.
    let floor = nominal(cfg.rate_limit, ATTACK.as_secs_f64()) / 2;
    assert!(ice.accepted >= floor, "candidates: {ice:?}, floor {floor}");
    assert!(
        !got.closed
            && got.chats == member.chat.accepted
            && got.commits == member.commit.accepted
            && got.key_packages == kp.accepted,
        "listener: {got:?}"
    );
}
