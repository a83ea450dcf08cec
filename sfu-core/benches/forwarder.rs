//! Benchmarks of the routing core alone: no str0m, no SRTP, no sockets.
//!
//! - `fanout/N`: one publisher and N-1 negotiated subscribers in one room;
//!   one call to `Forwarder::forward` per packet. Throughput is counted in
//!   forwarded packets (one per subscriber), so criterion reports forwarded
//!   packets/s.
//! - `fanout_layered/N`: the same with an L1T3 dependency descriptor on
//!   every packet, so the track is layered and each subscriber's layer
//!   selector decides every packet.
//! - `many_to_many/10`: ten participants, each publishing one track and
//!   subscribed to the other nine; one packet per track per iteration
//!   (90 forwarded packets).
//! - `rooms/{1,20}x5`: the same 5-person meeting alone, and as one of 20
//!   such rooms; one packet per track of every room per iteration. Per
//!   forwarded packet the two must cost the same: lookups do not degrade
//!   with room count.
//! - `per_packet/*`: the per-subscriber header rewrite, the
//!   first-byte/STUN-ufrag demultiplexing of the shared media port, and the
//!   dependency descriptor parse (`rtp_dd::parse`, what `dd::signal` runs
//!   once per incoming packet).
//!
//! Run with `cargo bench -p sfu-core --bench forwarder`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sfu_core::TrackKind;
use sfu_core::demux;
use sfu_core::forwarder::{DdSignal, Forwarder, PacketMeta, ParticipantKey, TrackKey};
use sfu_core::rewrite::Rewriter;
use std::hint::black_box;
use std::time::{Duration, Instant};
use str0m::media::Mid;

/// Video clock: 30 fps at 90 kHz.
const TS_STEP: u32 = 3000;

/// A room of `n` participants; `publishers` of them publish one video track
/// each, and every participant is subscribed (and negotiated) to every track
/// but its own.
fn room(n: usize, publishers: usize) -> (Forwarder, Vec<TrackKey>) {
    let mut r = Forwarder::default();
    let tracks = add_room(&mut r, "bench", n, publishers);
    assert_eq!(r.subscription_count(), publishers * (n - 1));
    (r, tracks)
}

/// Adds room `name` to `r`, as [`room`] builds it.
fn add_room(r: &mut Forwarder, name: &str, n: usize, publishers: usize) -> Vec<TrackKey> {
    let people: Vec<ParticipantKey> = (0..n).map(|_| r.add_participant(name, true)).collect();
    let mut tracks = Vec::new();
    for p in people.iter().take(publishers) {
        let (t, auto) = r
            .add_track(*p, TrackKind::Video, vec![])
            .expect("publisher is in the room");
        for (i, s) in auto.into_iter().enumerate() {
            assert!(r.subscribe(s, t));
            r.set_out_mid(s, t, Mid::from(i.to_string().as_str()));
        }
        tracks.push(t);
    }
    tracks
}

fn meta(ssrc: u32, seq: u64) -> PacketMeta<'static> {
    PacketMeta {
        ssrc,
        seq,
        ts: (seq as u32).wrapping_mul(TS_STEP),
        clock_rate: 90_000,
        rid: None,
        dd: DdSignal::Absent,
        descriptor: None,
        bytes: 100,
        audio_level: None,
        voice: None,
    }
}

fn fanout(c: &mut Criterion) {
    let now = Instant::now();
    let mut g = c.benchmark_group("fanout");
    for n in [2usize, 10, 50, 200] {
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

/// An L1T3 stream's descriptors, one packet a frame, a keyframe first:
/// 64 frames, replayed with frame numbers moving on.
fn l1t3_descriptors() -> Vec<(Vec<u8>, bool)> {
    let structure = rtp_dd::Structure::l1t3();
    (0..64u16)
        .map(|i| {
            let index = if i == 0 {
                0
            } else {
                [1, 3, 2, 4][usize::from(i % 4)]
            };
            let spec = rtp_dd::FrameSpec {
                start_of_frame: true,
                end_of_frame: true,
                frame_number: i,
                template_id: structure.template_id(index),
            };
            let mut buf = [0u8; 64];
            let n = rtp_dd::write_frame(&spec, &structure, i == 0, None, &mut buf).unwrap();
            (buf[..n].to_vec(), i == 0)
        })
        .collect()
}

/// `fanout` with descriptors: the track is layered, so each packet is read
/// once (descriptor state, layer rates) and decided per subscriber by its
/// layer selector. Every packet starts a new frame, the selector's most
/// expensive case.
fn fanout_layered(c: &mut Criterion) {
    let now = Instant::now();
    let dds = l1t3_descriptors();
    let mut g = c.benchmark_group("fanout_layered");
    for n in [2usize, 10, 50, 200] {
        let (mut r, tracks) = room(n, 1);
        let track = tracks[0];
        // The keyframe first, so every subscriber has started.
        let mut first = meta(0x1234, 9_999);
        first.descriptor = Some(&dds[0].0);
        first.dd = DdSignal::KeyframeStart;
        r.forward(track, first, now, |_| {});
        // Frame numbers must move on: rewrite them as the cycle repeats.
        let mut cycle: Vec<Vec<u8>> = dds[1..].iter().map(|d| d.0.clone()).collect();
        let mut seq = 10_000u64;
        let mut frame = 1u16;
        g.throughput(Throughput::Elements((n - 1) as u64));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                seq += 1;
                frame = frame.wrapping_add(1);
                let dd = &mut cycle[usize::from(frame % 60)];
                dd[1..3].copy_from_slice(&frame.to_be_bytes());
                let mut m = meta(0x1234, seq);
                m.descriptor = Some(dd);
                m.dd = DdSignal::Other;
                r.forward(track, black_box(m), now, |f| {
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

fn rooms(c: &mut Criterion) {
    let now = Instant::now();
    let size = 5usize;
    let mut g = c.benchmark_group("rooms");
    for count in [1usize, 20] {
        let mut r = Forwarder::default();
        let tracks: Vec<TrackKey> = (0..count)
            .flat_map(|i| add_room(&mut r, &format!("room{i}"), size, size))
            .collect();
        assert_eq!(r.room_count(), count);
        let mut seq = 10_000u64;
        g.throughput(Throughput::Elements((count * size * (size - 1)) as u64));
        g.bench_function(format!("{count}x{size}"), |b| {
            b.iter(|| {
                seq += 1;
                for (i, t) in tracks.iter().enumerate() {
                    r.forward(*t, black_box(meta(i as u32 + 1, seq)), now, |f| {
                        black_box(f);
                    });
                }
            })
        });
    }
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

    let mut dd = [0u8; rtp_dd::MAX_LEN];
    let mut frame = 0u16;
    for (name, keyframe) in [("dd_parse_delta", false), ("dd_parse_keyframe", true)] {
        let mark = rtp_dd::FrameMark {
            start_of_frame: true,
            end_of_frame: false,
            frame_number: 9,
            keyframe,
        };
        let n = rtp_dd::write(&mark, &mut dd);
        let bytes = dd[..n].to_vec();
        g.bench_function(name, |b| {
            b.iter(|| {
                rtp_dd::parse(black_box(&bytes))
                    .map(|d| d.is_keyframe_start())
                    .ok()
            })
        });
    }

    // What the plane does per incoming RTP datagram before str0m and per
    // subscriber after the route: classify, parse the descriptor, rewrite.
    let n = rtp_dd::write(
        &rtp_dd::FrameMark {
            start_of_frame: true,
            end_of_frame: true,
            frame_number: 0,
            keyframe: false,
        },
        &mut dd,
    );
    let bytes = dd[..n].to_vec();
    let mut rw = Rewriter::default();
    g.bench_function("classify_dd_rewrite", |b| {
        b.iter(|| {
            frame = frame.wrapping_add(1);
            seq += 1;
            let ok = demux::classify(black_box(&rtp)) == demux::Class::Rtp
                && rtp_dd::parse(black_box(&bytes)).is_ok();
            ok.then(|| {
                rw.rewrite(
                    0x1234,
                    seq,
                    u32::from(frame).wrapping_mul(TS_STEP),
                    90_000,
                    now,
                )
            })
        })
    });
    g.finish();
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
    targets = fanout, fanout_layered, many_to_many, rooms, rewrite_and_demux
}
criterion_main!(benches);
