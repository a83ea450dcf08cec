//! The whole media plane per packet: one publisher SRTP datagram into
//! `MediaPlane::handle_input`, then `poll_output` until it asks for a
//! timeout, with every subscriber's SRTP datagram coming out. Real str0m
//! peers (`testkit::LeanPeer`) on virtual time stand on the other side;
//! only the plane's part is timed (see `testkit::plane_fanout`).
//!
//! - `plane/fanout50`: 1 publisher → 50 subscribers, 50 outputs per input;
//! - `plane/meeting10`: 10 people all publishing video, turn by turn,
//!   9 outputs per input;
//! - `_dd` variants: each packet carries a dependency descriptor.
//!
//! Throughput is in outputs, so criterion's elements/s is SRTP packets out
//! per second of plane time (one core, no syscalls).
//!
//! Run with `cargo bench -p sfu-core --bench plane`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::time::{Duration, Instant};
use testkit::plane_fanout::Rig;

fn bench_rig(c: &mut Criterion, name: &str, mut rig: Rig, outputs: u64) {
    rig.warm_up(300);
    rig.reset_counts();
    rig.warm_up(100);
    assert_eq!(rig.events, 0, "{name}: unexpected plane events");
    // Integer fan-out: every subscriber got every packet (RTCP aside).
    assert!(
        (rig.fanout_ratio() - outputs as f64).abs() < 0.05,
        "{name}: {} RTP out per RTP in, want {outputs}",
        rig.fanout_ratio()
    );
    let mut g = c.benchmark_group("plane");
    g.throughput(Throughput::Elements(outputs));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                rig.prepare();
                let t = Instant::now();
                std::hint::black_box(rig.forward());
                spent += t.elapsed();
                rig.release();
            }
            spent
        })
    });
    g.finish();
}

fn plane(c: &mut Criterion) {
    for dd in [false, true] {
        let sfx = if dd { "_dd" } else { "" };
        bench_rig(c, &format!("fanout50{sfx}"), Rig::fanout(50, dd), 50);
        bench_rig(c, &format!("meeting10{sfx}"), Rig::meeting(10, dd), 9);
    }
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = plane
}
criterion_main!(benches);
