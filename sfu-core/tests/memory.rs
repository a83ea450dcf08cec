//! Joining and leaving frees everything: live heap bytes do not grow across
//! 1,000 join/publish/forward/leave cycles.

use std::time::Duration;
use testkit::alloc::CountingAlloc;
use testkit::plane_world::World;

/// Counts live heap bytes of the whole test process.
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::new();

/// The heap is the whole process's: tests here take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A participant joins the host's room, publishes audio and video, connects,
/// is subscribed to by the host (and subscribes to the host), and leaves.
fn cycle(w: &mut World) {
    let i = w.join("room");
    w.publish_av(i);
    // Long enough for ICE, DTLS and the subscriber negotiation to complete.
    w.advance(Duration::from_millis(150));
    w.leave(i);
    w.advance(Duration::from_millis(10));
    // The test's own records are not the SFU's memory.
    w.clients.pop();
    w.clients[0].subscriber.received.clear();
    w.clients[0].events.clear();
}

fn cycles() -> usize {
    std::env::var("MEMORY_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// One participant stays for the whole run while others come and go: the
/// demanding case, since the host's own transports live through every cycle.
#[test]
fn join_leave_cycles_do_not_grow_memory() {
    let _turn = serial();
    let mut w = World::new(9);
    let host = w.join("room");
    w.publish_av(host);
    w.advance(Duration::from_secs(1));
    // Warm up: lazily grown maps and caches reach their steady size.
    for _ in 0..100 {
        cycle(&mut w);
    }
    let before = GLOBAL.live_bytes();
    let n = cycles();
    for _ in 0..n {
        cycle(&mut w);
        let s = w.plane.stats();
        assert_eq!(
            (s.participants, s.tracks, s.subscriptions, s.rooms),
            (1, 2, 0, 1)
        );
        assert_eq!(w.plane.transport_count(), 2, "only the host's transports");
    }
    let after = GLOBAL.live_bytes();
    let growth = after - before;
    println!("live heap before {before} B, after {n} cycles {after} B, growth {growth} B");
    // A leak of even one small allocation per cycle would be >= 16 kB.
    assert!(
        growth < 16 * 1024,
        "heap grew by {growth} bytes over {n} cycles"
    );
    w.leave(host);
    let s = w.plane.stats();
    assert_eq!((s.participants, s.tracks, s.rooms), (0, 0, 0));
    assert_eq!(w.plane.transport_count(), 0);
}

/// Live heap bytes that `secs` of media from one audio+video publisher add
/// in a room where `subscribers` others receive it. Resends reach back
/// `kept` packets (the age limit is out of the way).
fn media_growth(subscribers: usize, kept: usize, secs: u64) -> isize {
    let mut w = World::with_config(3, |c| {
        c.rtx_cache_packets = kept;
        c.rtx_cache_age = Duration::from_secs(600);
    });
    let publisher = w.join("room");
    w.publish_av(publisher);
    for _ in 0..subscribers {
        w.join("room");
    }
    w.advance(Duration::from_secs(1));
    let before = GLOBAL.live_bytes();
    drop(w.send_media(Duration::from_secs(secs), &[]));
    // The test's own records are not the SFU's memory.
    for c in &mut w.clients {
        c.subscriber.received = Vec::new();
        c.events = Vec::new();
    }
    GLOBAL.live_bytes() - before
}

/// Retransmission memory is kept once per track: a further subscriber adds
/// a 16-byte log entry per kept packet, not its own record of each packet
/// (str0m's cache kept about 400 bytes per packet per subscriber stream).
#[test]
fn retransmission_memory_is_shared_by_subscribers() {
    let _turn = serial();
    // What one more subscriber costs while 12 s of video (33 packets/s)
    // fill a window of `kept` packets: buffers that grow with traffic cost
    // the same whatever the window, so the difference between two windows
    // is what each kept packet costs per subscriber (its log rounds the
    // window up to a power of two: 64 and 512 entries here).
    let per_subscriber = |kept: usize| (media_growth(5, kept, 12) - media_growth(1, kept, 12)) / 4;
    let (small, large) = (per_subscriber(64), per_subscriber(320));
    let per_packet = (large - small) / (320 - 64);
    println!(
        "per further subscriber: {small} B keeping 64 packets, {large} B keeping 320: \
         {per_packet} B per kept packet"
    );
    assert!(
        per_packet < 64,
        "{per_packet} B per kept packet and subscriber"
    );
}

/// Not a check: a fixture for heap profilers. Ten people in one meeting,
/// each publishing audio and video and receiving everyone else, connected
/// and then silent. Run it under `heaptrack` to see what a connected
/// participant holds (`docs/performance.md`, "Memory per participant").
#[test]
#[ignore = "a fixture for heap profilers; prints live bytes"]
fn connected_meeting_for_heap_profiles() {
    let _turn = serial();
    let before = GLOBAL.live_bytes();
    let mut w = World::new(5);
    for _ in 0..10 {
        let i = w.join("room");
        w.publish_av(i);
    }
    w.advance(Duration::from_secs(1));
    drop(w.send_media(Duration::from_secs(1), &[]));
    for c in &mut w.clients {
        c.subscriber.received = Vec::new();
        c.events = Vec::new();
    }
    w.advance(Duration::from_secs(4));
    let live = GLOBAL.live_bytes() - before;
    println!("live heap with 10 connected participants (SFU and their peers): {live} B");
    // Left live, so a heap profiler reports what the world holds now as
    // "leaked" at exit, rather than its peak during setup.
    std::mem::forget(w);
}
