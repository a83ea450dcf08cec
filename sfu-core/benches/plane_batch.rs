//! The whole media plane per forwarded packet, with real str0m transports on
//! both sides: SRTP unprotect on the publisher transport, routing, and
//! write + SRTP protect on every subscriber transport.
//!
//! - `plane_fanout50/batchN`: one publisher, fifty subscribers. Each
//!   iteration feeds N publisher datagrams (taken in one batch, as a
//!   recvmmsg shell would) and polls every output. Throughput is counted in
//!   output datagrams, so criterion reports forwarded packets/s.
//! - `plane_meeting10/batch10`: ten publishers, each subscribed to by the
//!   other nine; one packet from each publisher per iteration (90 outputs).
//!
//! Only the plane is timed: the publishers' own packet writing and the
//! periodic keep-alive exchange with the lean peers happen outside the
//! measurement. Run with `cargo bench -p sfu-core --bench plane_batch`.
//!
//! On a shared machine wall time is noisy. `PLANE_BATCH_COUNT=N` skips
//! criterion and runs N measured iterations of each case through
//! [`counted_batch`], for an instruction count that does not depend on
//! the neighbours:
//!
//! ```text
//! PLANE_BATCH_COUNT=200 valgrind --tool=callgrind \
//!     --toggle-collect='*counted_batch*' target/release/deps/plane_batch-*
//! ```
//!
//! and divide the instructions by the outputs it prints. Add
//! `PLANE_BATCH_ONLY=fanout50/batch32` (any part of a case's name) to count
//! one case alone.
#![allow(missing_docs, unreachable_pub)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use sfu_core::{Input, Output};
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use testkit::plane_world::World;

/// Payload of one video packet.
const PAYLOAD: usize = 1200;

/// Virtual time between two packets of one publisher (1000 packets/s).
const PACKET_GAP: Duration = Duration::from_millis(1);

/// Every this many iterations, the lean peers get to answer (untimed), so
/// ICE consent and RTCP keep flowing as in a live room.
const KEEPALIVE_EVERY: u64 = 200;

struct Bench {
    w: World,
    publishers: Vec<usize>,
    ts: u32,
    iters: u64,
    batch: Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
}

impl Bench {
    /// `n` participants in one room; the first `publishers` publish audio
    /// and video (only video is sent), everyone auto-subscribes.
    fn new(n: usize, publishers: usize) -> Self {
        let mut w = World::new(42);
        for i in 0..n {
            w.join("bench");
            if i < publishers {
                w.publish_av(i);
            }
        }
        w.advance(Duration::from_secs(2));
        let s = w.plane.stats();
        assert_eq!(
            s.subscriptions as usize,
            publishers * 2 * (n - 1),
            "every subscription negotiated"
        );
        for c in &mut w.clients {
            // The test world keeps every received payload; the bench never
            // delivers media, but keep memory flat regardless.
            c.subscriber.keep_payloads = false;
        }
        Self {
            w,
            publishers: (0..publishers).collect(),
            ts: 0,
            iters: 0,
            batch: Vec::new(),
        }
    }

    /// Untimed: each publisher writes `per_publisher` video packets; their
    /// datagrams are collected for the plane.
    fn make_batch(&mut self, per_publisher: usize) {
        self.batch.clear();
        let payload = [0x5Au8; PAYLOAD];
        for _ in 0..per_publisher {
            self.w.now += PACKET_GAP;
            self.ts = self.ts.wrapping_add(90);
            let now = self.w.now;
            for &i in &self.publishers {
                let mid = self.w.video_mid(i);
                let p = &mut self.w.clients[i].publisher;
                assert!(p.send_rtp(now, mid, self.ts, true, &payload));
            }
        }
        let now = self.w.now;
        for &i in &self.publishers {
            let p = &mut self.w.clients[i].publisher;
            p.poll(now);
            for o in p.outbox.drain(..) {
                self.batch.push((o.source, o.destination, o.contents));
            }
        }
    }

    /// Timed: the batch into the plane, then every output out of it.
    /// Returns the number of datagrams sent.
    fn run_batch(&mut self) -> usize {
        let now = self.w.now;
        let plane = &mut self.w.plane;
        for (source, destination, contents) in &self.batch {
            plane.handle_input(
                now,
                Input::Datagram {
                    source: *source,
                    destination: *destination,
                    contents,
                },
            );
        }
        let mut sent = 0;
        let mut fed_timeout = false;
        loop {
            match plane.poll_output(now) {
                Output::Transmit(t) => {
                    sent += 1;
                    // As the socket shell does once the datagram is sent.
                    plane.recycle(black_box(t).contents);
                }
                Output::Timeout(at) if at <= now && !fed_timeout => {
                    fed_timeout = true;
                    plane.handle_input(now, Input::Timeout);
                }
                Output::Timeout(_) => break,
                other => {
                    black_box(other);
                }
            }
        }
        sent
    }

    /// Untimed: let the peers talk to the plane now and then.
    fn keepalive(&mut self) {
        self.iters += 1;
        if self.iters.is_multiple_of(KEEPALIVE_EVERY) {
            self.w.advance(Duration::from_micros(100));
            for c in &mut self.w.clients {
                c.subscriber.received.clear();
            }
        }
    }
}

/// The measured call in count mode, kept out of line so callgrind can
/// collect exactly it.
#[inline(never)]
fn counted_batch(b: &mut Bench) -> usize {
    b.run_batch()
}

/// Count mode: `iters` measured iterations after a warm-up; prints outputs.
fn count(name: &str, n: usize, publishers: usize, per_publisher: usize, iters: u64) {
    let mut b = Bench::new(n, publishers);
    for _ in 0..50 {
        b.make_batch(per_publisher);
        b.run_batch();
        b.keepalive();
    }
    let mut outputs = 0;
    let t = Instant::now();
    let mut timed = Duration::ZERO;
    for _ in 0..iters {
        b.make_batch(per_publisher);
        let t = Instant::now();
        outputs += counted_batch(&mut b);
        timed += t.elapsed();
        b.keepalive();
    }
    println!(
        "{name}/batch{}: {iters} iterations, {outputs} outputs, {:.0} ns wall per output ({:.1} s total)",
        per_publisher * publishers,
        timed.as_nanos() as f64 / outputs as f64,
        t.elapsed().as_secs_f64()
    );
}

fn measure(c: &mut Criterion, group: &str, n: usize, publishers: usize, per_publisher: usize) {
    let mut b = Bench::new(n, publishers);
    // Warm-up and sanity: every packet reaches every subscriber.
    b.make_batch(per_publisher);
    let outputs = per_publisher * publishers * (n - 1);
    let sent = b.run_batch();
    assert!(sent >= outputs, "{sent} datagrams for {outputs} forwards");
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(outputs as u64));
    g.bench_function(
        BenchmarkId::from_parameter(format!("batch{}", per_publisher * publishers)),
        |bencher| {
            bencher.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    b.make_batch(per_publisher);
                    let t = Instant::now();
                    black_box(b.run_batch());
                    total += t.elapsed();
                    b.keepalive();
                }
                total
            })
        },
    );
    g.finish();
}

fn fanout50(c: &mut Criterion) {
    measure(c, "plane_fanout50", 51, 1, 1);
    measure(c, "plane_fanout50", 51, 1, 32);
}

fn meeting10(c: &mut Criterion) {
    measure(c, "plane_meeting10", 10, 10, 1);
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = fanout50, meeting10
}

fn main() {
    if let Some(iters) = std::env::var("PLANE_BATCH_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        // `PLANE_BATCH_ONLY=fanout50/batch32` counts one case, so a
        // callgrind total belongs to it alone.
        let only = std::env::var("PLANE_BATCH_ONLY").unwrap_or_default();
        let cases = [
            ("plane_fanout50", 51, 1, 1),
            ("plane_fanout50", 51, 1, 32),
            ("plane_meeting10", 10, 10, 1),
        ];
        for (name, n, publishers, per_publisher) in cases {
            if format!("{name}/batch{}", per_publisher * publishers).contains(&only) {
                count(name, n, publishers, per_publisher, iters);
            }
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
