//! The media plane with real str0m peers on virtual time
//! ([`testkit::plane_world::World`]), with a tap on the network: every
//! datagram is shown to the caller before delivery, and the caller may
//! add its own.

use std::time::Duration;
use testkit::netem::Datagram;
use testkit::plane_world::World;

/// Runs `world` for `dur` in 1 ms steps. Every datagram in flight is shown
/// to `tap` once, before it is delivered; `tap` returns `false` to drop it.
pub fn run_tapped(world: &mut World, dur: Duration, mut tap: impl FnMut(&Datagram) -> bool) {
    let end = world.now + dur;
    let horizon = Duration::from_secs(3600);
    while world.now < end {
        let now = world.now;
        let mut held = Vec::new();
        while let Some(d) = world.net.pop_due(now + horizon) {
            held.push(d);
        }
        for d in held {
            if tap(&d) {
                world.net.send(now, d.source, d.destination, d.contents);
            }
        }
        world.advance(Duration::from_millis(1));
    }
}

/// Two new participants in room `room`: the first publishes audio and
/// video, the second subscribes to everything. Returns their indices once
/// the publisher's and the subscriber's transports are connected (ICE and
/// DTLS done), or after 5 s of virtual time.
pub fn honest_pair(
    world: &mut World,
    room: &str,
    tap: &mut impl FnMut(&Datagram) -> bool,
) -> (usize, usize) {
    let a = world.join(room);
    let b = world.join(room);
    world.publish_av(a);
    for _ in 0..50 {
        run_tapped(world, Duration::from_millis(100), &mut *tap);
        let up = |c: &testkit::plane_world::Client| c.publisher.connected;
        if up(&world.clients[a]) && world.clients[b].subscriber.connected {
            break;
        }
    }
    (a, b)
}
