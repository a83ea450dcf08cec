//! Joining and leaving frees everything: live heap bytes do not grow across
//! 1,000 join/publish/forward/leave cycles.

use std::time::Duration;
use testkit::alloc::CountingAlloc;
use testkit::plane_world::World;

/// Counts live heap bytes of the whole test process.
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::new();

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
