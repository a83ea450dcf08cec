//! Benchmarks of the routing core alone: no str0m, no SRTP, no sockets.
//!
//! - `fanout/N`: one publisher and N-1 negotiated subscribers in one room;
//!   one call to `Router::forward` per packet. Throughput is counted in
//!   forwarded packets (one per subscriber), so criterion reports forwarded
//!   packets/s.
//! - `many_to_many/10`: ten participants, each publishing one track and
//!   subscribed to the other nine; one packet per track per iteration
//!   (90 forwarded packets).
//! - `rewrite` and `demux`: the per-subscriber header rewrite and the
//!   first-byte/STUN-ufrag demultiplexing of the shared media port.
//!
//! Run with `cargo bench -p sfu-core --bench router`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sfu_core::demux;
use sfu_core::rewrite::Rewriter;
use sfu_core::router::{DdSignal, Kind, PacketMeta, ParticipantKey, Router, TrackKey};
use std::hint::black_box;
use std::time::{Duration, Instant};
use str0m::media::Mid;

/// Video clock: 30 fps at 90 kHz.
const TS_STEP: u32 = 3000;

/// A room of `n` participants; `publishers` of them publish one video track
/// each, and every participant is subscribed (and negotiated) to every track
/// but its own.
fn room(n: usize, publishers: usize) -> (Router, Vec<TrackKey>) {
    let mut r = Router::default();
    let people: Vec<ParticipantKey> = (0..n).map(|_| r.add_participant("bench", true)).collect();
    let mut tracks = Vec::new();
    for p in people.iter().take(publishers) {
        let (t, auto) = r
            .add_track(*p, Kind::Video, None)
            .expect("publisher is in the room");
        for (i, s) in auto.into_iter().enumerate() {
            assert!(r.subscribe(s, t));
            r.set_out_mid(s, t, Mid::from(i.to_string().as_str()));
        }
        tracks.push(t);
    }
    assert_eq!(r.subscription_count(), publishers * (n - 1));
    (r, tracks)
}

fn meta(ssrc: u32, seq: u64) -> PacketMeta<'static> {
    PacketMeta {
        ssrc,
        seq,
        ts: (seq as u32).wrapping_mul(TS_STEP),
        clock_rate: 90_000,
        rid: None,
        dd: DdSignal::Absent,
    }
}

fn fanout(c: &mut Criterion) {
    let now = Instant::now();
    let mut g = c.benchmark_group("fanout");
    for n in [2usize, 10, 50] {
        let (mut r, tracks) = room(n, 1);
        let track = tracks[0];
        let mut seq = 10_000u64;
        g.throughput(Throughput::Elements((n - 1) as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                seq += 1;
                r.forward(track, black_box(meta(0x1234, seq)), now, |f| {
                    black_box(f);
                })
            })
        });
    }
    g.finish();
}

fn many_to_many(c: &mut Criterion) {
    let now = Instant::now();
    let n = 10usize;
    let (mut r, tracks) = room(n, n);
    let mut seq = 10_000u64;
    let mut g = c.benchmark_group("many_to_many");
    g.throughput(Throughput::Elements((n * (n - 1)) as u64));
    g.bench_function(BenchmarkId::from_parameter(n), |b| {
        b.iter(|| {
            seq += 1;
            for (i, t) in tracks.iter().enumerate() {
                r.forward(*t, black_box(meta(i as u32 + 1, seq)), now, |f| {
                    black_box(f);
                });
            }
        })
    });
    g.finish();
}

/// A STUN binding request with a USERNAME attribute, as ICE clients send.
fn stun_request(user: &[u8]) -> Vec<u8> {
    let mut attrs = Vec::new();
    // PRIORITY first, so the parser has to skip an attribute.
    attrs.extend_from_slice(&[0x00, 0x24, 0x00, 0x04, 0x6e, 0x7f, 0x1e, 0xff]);
    attrs.extend_from_slice(&0x0006u16.to_be_bytes());
    attrs.extend_from_slice(&(user.len() as u16).to_be_bytes());
    attrs.extend_from_slice(user);
    while attrs.len() % 4 != 0 {
        attrs.push(0);
    }
    let mut m = vec![0x00, 0x01];
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    m.extend_from_slice(&[7; 12]);
    m.extend_from_slice(&attrs);
    m
}

fn rewrite_and_demux(c: &mut Criterion) {
    let now = Instant::now();
    let mut g = c.benchmark_group("per_packet");
    g.throughput(Throughput::Elements(1));

    let mut rw = Rewriter::default();
    let mut seq = 70_000u64;
    g.bench_function("rewrite", |b| {
        b.iter(|| {
            seq += 1;
            rw.rewrite(
                black_box(0x1234),
                black_box(seq),
                (seq as u32).wrapping_mul(TS_STEP),
                90_000,
                now,
            )
        })
    });

    let mut rtp = vec![0x80, 96, 0x12, 0x34];
    rtp.resize(1200, 0xab);
    g.bench_function("classify_rtp", |b| {
        b.iter(|| demux::classify(black_box(&rtp)))
    });

    let stun = stun_request(b"Xk3pQ9sLw2Rt7uVb:clientufrag");
    assert_eq!(demux::stun_local_ufrag(&stun), Some("Xk3pQ9sLw2Rt7uVb"));
    g.bench_function("classify_and_ufrag_stun", |b| {
        b.iter(|| {
            let buf = black_box(&stun[..]);
            match demux::classify(buf) {
                demux::Class::Stun => demux::stun_local_ufrag(buf).map(str::len),
                _ => None,
            }
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = fanout, many_to_many, rewrite_and_demux
}
criterion_main!(benches);
