//! str0m's per-packet cost in RTP mode, configured as the SFU uses it, and the
//! raw AEAD floor under it. Two `Rtc`s connected sans-IO on virtual time
//! (see `support/mod.rs`); only the calls named below are timed.
//!
//! - `str0m_send/{plain,dd}/{1,32}`: `write_rtp` ×n, one
//!   `handle_input(Timeout)`, `poll_output` until `Timeout` (n SRTP packets
//!   out), and the output buffers freed, as the SFU does per subscriber. `dd`
//!   attaches a dependency descriptor. `/32` shows str0m's fixed per-poll
//!   cost spread over a batch.
//! - `str0m_recv/{plain,dd}`: one SRTP datagram into `handle_input(Receive)`
//!   and `poll_output` until the `RtpPacket` event and `Timeout`: the
//!   publisher side of the SFU.
//! - `rtx/nack16`: a NACK for 16 packets reaches a sender whose 1024-packet
//!   cache holds them; timed until the 16 RTX packets are out.
//! - `rtx/steady_write/{1024,128}`: `str0m_send/plain/1` with a full cache of
//!   that size, which evicts one packet per write.
//! - `aead/seal_1200` and `aead/copy_seal_1200`: AES-128-GCM with aws-lc-rs
//!   (the library str0m uses) on a 1200-byte payload with a 12-byte header
//!   as AAD, in place, and after a copy into an output buffer (what a
//!   minimal forwarder does per output). The floor for one SRTP protect.
//!
//! Throughput is in packets. Run with `cargo bench -p sfu-core --bench
//! str0m_path`.

mod support;

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::rtp::ExtensionValues;
use support::{Pair, dd_ext};
use testkit::plane_fanout::is_rtp;

/// Virtual time per written packet.
const PACKET_GAP: Duration = Duration::from_micros(100);

fn payload() -> Arc<[u8]> {
    vec![0xab; 1200].into()
}

/// Lets the receiver run its timers and the two sides exchange STUN and
/// RTCP, so ICE consent holds over millions of packets. Untimed.
fn service(p: &mut Pair) {
    p.rx_timeout();
    p.deliver();
}

/// Times `write_rtp` ×`n` + one timeout + draining, per round.
fn send_rounds(p: &mut Pair, iters: u64, n: usize, dd: bool) -> Duration {
    let payload = payload();
    let ext = if dd {
        dd_ext(7, false)
    } else {
        ExtensionValues::default()
    };
    let mut sink = Vec::with_capacity(2 * n + 8);
    let mut spent = Duration::ZERO;
    for i in 0..iters {
        p.now += PACKET_GAP * n as u32;
        let t = Instant::now();
        for _ in 0..n {
            // The plane clones its per-packet extension values once per
            // subscriber; so does this.
            p.write(&payload, ext.clone());
        }
        p.tx_timeout(&mut sink);
        black_box(sink.len());
        sink.clear();
        spent += t.elapsed();
        if i % 64 == 63 {
            service(p);
        }
    }
    spent
}

/// One round unmeasured: how many RTP datagrams `n` writes produce, and the
/// SRTP overhead per packet (16 for AES-GCM, 10 for AES-CM + HMAC-SHA1-80).
fn check_send(p: &mut Pair, n: usize, dd: bool) -> (usize, usize) {
    let payload = payload();
    let ext = if dd {
        dd_ext(7, false)
    } else {
        ExtensionValues::default()
    };
    p.now += PACKET_GAP;
    for _ in 0..n {
        p.write(&payload, ext.clone());
    }
    let mut sink = Vec::new();
    p.tx_timeout(&mut sink);
    let rtp: Vec<&Vec<u8>> = sink.iter().filter(|d| is_rtp(d)).collect();
    let overhead = rtp.first().map_or(0, |d| {
        // 12-byte header, then extensions (profile 0xBEDE or 0x1000).
        let ext_words = if d[0] & 0x10 != 0 {
            usize::from(u16::from_be_bytes([d[14], d[15]]))
        } else {
            0
        };
        let hdr = 12
            + if d[0] & 0x10 != 0 {
                4 + 4 * ext_words
            } else {
                0
            };
        d.len() - hdr - payload.len()
    });
    (rtp.len(), overhead)
}

fn send(c: &mut Criterion) {
    let mut g = c.benchmark_group("str0m_send");
    for dd in [false, true] {
        let mut p = Pair::new(1024);
        for n in [1usize, 32] {
            let (rtp, overhead) = check_send(&mut p, n, dd);
            assert_eq!(rtp, n, "every write becomes one datagram");
            if !dd && n == 1 {
                let profile = match overhead {
                    16 => "AEAD_AES_128_GCM",
                    10 => "AES128_CM_HMAC_SHA1_80",
                    _ => "unknown",
                };
                println!("negotiated SRTP profile: {profile} ({overhead} bytes per packet)");
            }
            let name = if dd { "dd" } else { "plain" };
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter_custom(|iters| send_rounds(&mut p, iters, n, dd))
            });
        }
    }
    g.finish();
}

fn recv(c: &mut Criterion) {
    let mut g = c.benchmark_group("str0m_recv");
    g.throughput(Throughput::Elements(1));
    for dd in [false, true] {
        let mut p = Pair::new(1024);
        let payload = payload();
        let name = if dd { "dd" } else { "plain" };
        let mut wire = Vec::new();
        let mut frame = 0u16;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for i in 0..iters {
                    p.now += PACKET_GAP;
                    frame = frame.wrapping_add(1);
                    let ext = if dd {
                        dd_ext(frame, true)
                    } else {
                        ExtensionValues::default()
                    };
                    p.write(&payload, ext);
                    p.tx_timeout(&mut wire);
                    let t = Instant::now();
                    let mut got = 0;
                    for d in wire.drain(..) {
                        got += p.rx_receive(&d);
                    }
                    spent += t.elapsed();
                    assert_eq!(got, 1, "the receiver surfaced the packet");
                    if i % 64 == 63 {
                        service(&mut p);
                    }
                }
                spent
            })
        });
    }
    g.finish();
}

/// One NACK round, untimed: 20 packets written, the middle 16 lost, and the
/// receiver's reaction (its NACK, with any RR, TWCC or STUN) collected.
fn lose_16(p: &mut Pair, payload: &Arc<[u8]>) -> Vec<Vec<u8>> {
    p.now += Duration::from_millis(1);
    for _ in 0..20 {
        p.write(payload, ExtensionValues::default());
    }
    let mut wire = Vec::new();
    p.tx_timeout(&mut wire);
    let mut k = 0;
    for d in wire {
        if is_rtp(&d) {
            k += 1;
            if (3..19).contains(&k) {
                continue;
            }
        }
        p.rx_receive(&d);
    }
    // str0m's receiver looks for losses at most every 33 ms. The sender's
    // own timers run here too, so the timed part is the NACK's work alone.
    p.now += Duration::from_millis(34);
    let mut tx_out = Vec::new();
    p.tx_timeout(&mut tx_out);
    p.to_rx.append(&mut tx_out);
    p.rx_timeout();
    p.deliver_to_rx();
    std::mem::take(&mut p.to_tx)
}

/// The timed part of a NACK round: the receiver's datagrams into the sender,
/// drained. Returns the RTX datagrams.
fn answer(p: &mut Pair, nack: &[Vec<u8>], out: &mut Vec<Vec<u8>>) -> usize {
    for d in nack {
        p.tx_receive(d, out);
    }
    out.iter().filter(|d| is_rtp(d)).count()
}

fn rtx(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtx");
    let payload = payload();
    {
        let mut p = Pair::new(1024);
        for _ in 0..1100 {
            p.write(&payload, ExtensionValues::default());
            p.step(Duration::from_micros(500));
        }
        let mut out = Vec::new();
        let nack = lose_16(&mut p, &payload);
        let resent = answer(&mut p, &nack, &mut out);
        assert_eq!(resent, 16, "16 packets resent for one NACK");
        p.to_rx.append(&mut out);
        p.deliver();
        g.throughput(Throughput::Elements(16));
        g.bench_function("nack16", |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let nack = lose_16(&mut p, &payload);
                    let t = Instant::now();
                    let n = answer(&mut p, &nack, &mut out);
                    spent += t.elapsed();
                    assert_eq!(n, 16, "one NACK, 16 resends");
                    // Repair the receiver unmeasured so it stops asking.
                    p.to_rx.append(&mut out);
                    p.deliver();
                }
                spent
            })
        });
    }
    g.throughput(Throughput::Elements(1));
    for cache in [1024usize, 128] {
        let mut p = Pair::new(cache);
        // Fill the cache so every write evicts.
        send_rounds(&mut p, cache as u64 + 100, 1, false);
        g.bench_function(BenchmarkId::new("steady_write", cache), |b| {
            b.iter_custom(|iters| send_rounds(&mut p, iters, 1, false))
        });
    }
    g.finish();
}

fn aead(c: &mut Criterion) {
    let mut g = c.benchmark_group("aead");
    g.throughput(Throughput::Elements(1));
    let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[7u8; 16]).expect("key"));
    let header = [0x80u8, 96, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
    let mut buf = vec![0xabu8; 1200];
    let mut ctr = 0u64;
    let nonce = |ctr: u64| {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&ctr.to_be_bytes());
        Nonce::assume_unique_for_key(n)
    };
    g.bench_function("seal_1200", |b| {
        b.iter(|| {
            ctr += 1;
            let tag = key
                .seal_in_place_separate_tag(nonce(ctr), Aad::from(&header), &mut buf)
                .expect("seal");
            let _ = black_box(tag);
        })
    });
    let src = vec![0xabu8; 1200];
    let mut out = vec![0u8; 12 + 1200 + 16];
    g.bench_function("copy_seal_1200", |b| {
        b.iter(|| {
            ctr += 1;
            out[..12].copy_from_slice(&header);
            out[12..12 + 1200].copy_from_slice(black_box(&src));
            let (hdr, rest) = out.split_at_mut(12);
            let (body, tag_out) = rest.split_at_mut(1200);
            let tag = key
                .seal_in_place_separate_tag(nonce(ctr), Aad::from(&*hdr), body)
                .expect("seal");
            tag_out.copy_from_slice(tag.as_ref());
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
    targets = send, recv, rtx, aead
}
criterion_main!(benches);
