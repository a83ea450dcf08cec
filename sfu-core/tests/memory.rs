//! Joining and leaving frees everything: live heap bytes do not grow across
//! 1,000 join/publish/forward/leave cycles.

mod common;

use common::World;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

/// Counts live heap bytes of the whole test process.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One participant stays for the whole run; a second one joins, publishes,
/// exchanges media and leaves, 1,000 times. Returns the live heap bytes of
/// the plane's side after `cycles`.
fn cycle(w: &mut World) {
    let i = w.join("room");
    w.publish_av(i);
    w.advance(Duration::from_millis(300));
    w.send_media(Duration::from_millis(100), &[]);
    w.leave(i);
    w.advance(Duration::from_millis(50));
    // The test's own record of the departed client is not the SFU's memory.
    w.clients.pop();
}

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
    w.clients[host].subscriber.received.clear();
    w.clients[host].events.clear();
    let before = LIVE.load(Ordering::Relaxed);
    for n in 0..1000 {
        cycle(&mut w);
        // The host keeps receiving; its test-side log is not SFU memory.
        w.clients[host].subscriber.received.clear();
        w.clients[host].events.clear();
        if n % 250 == 0 {
            let s = w.plane.stats();
            assert_eq!((s.participants, s.tracks), (1, 2), "cycle {n}");
        }
    }
    let after = LIVE.load(Ordering::Relaxed);
    let s = w.plane.stats();
    assert_eq!((s.participants, s.tracks, s.subscriptions), (1, 2, 0));
    assert_eq!(w.plane.transport_count(), 2, "only the host's transports");
    let growth = after - before;
    println!("live heap before {before} B, after 1000 cycles {after} B, growth {growth} B");
    // A leak of even one small allocation per cycle would be >= 16 kB.
    assert!(
        growth < 16 * 1024,
        "heap grew by {growth} bytes over 1000 cycles"
    );
}
