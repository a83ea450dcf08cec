//! Per-frame SFrame cost with the default suite (AES_128_GCM_SHA256_128).
//!
//! - `encrypt/N`: `FrameEncryptor::encrypt` of one N-byte frame into a reused
//!   output buffer.
//! - `decrypt/N`: `FrameDecryptor::decrypt` of one N-byte frame, the sender's
//!   key already cached. Each iteration decrypts a fresh counter (encrypted in
//!   criterion's untimed setup), so the replay window accepts it.
//!
//! Sizes: 100 B (an audio frame), 1.2 KB and 30 KB (video frames). Throughput
//! is in bytes, so criterion also reports MB/s.
//!
//! Run with `cargo bench -p e2ee --bench sframe`.

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use e2ee::frame::{DecryptConfig, FrameDecryptor, FrameEncryptor, Suite, base_key_len};
use std::hint::black_box;
use std::time::Instant;

const SIZES: [usize; 3] = [100, 1200, 30_000];
const EPOCH: u64 = 7;
const LEAF: u32 = 3;

fn base_key() -> Vec<u8> {
    vec![0x5a; base_key_len(Suite::default())]
}

fn encrypt(c: &mut Criterion) {
    let mut g = c.benchmark_group("encrypt");
    for size in SIZES {
        let mut enc = FrameEncryptor::new(Suite::default(), LEAF);
        enc.set_epoch(EPOCH, &base_key()).expect("epoch");
        let frame = vec![0xab; size];
        let mut out = Vec::with_capacity(size + 64);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| {
                enc.encrypt(black_box(&frame), &[0], &mut out)
                    .expect("encrypt");
                black_box(out.len());
            })
        });
    }
    g.finish();
}

fn decrypt(c: &mut Criterion) {
    let now = Instant::now();
    let mut g = c.benchmark_group("decrypt");
    for size in SIZES {
        let mut enc = FrameEncryptor::new(Suite::default(), LEAF);
        enc.set_epoch(EPOCH, &base_key()).expect("epoch");
        let mut dec = FrameDecryptor::<()>::new(Suite::default(), DecryptConfig::default());
        dec.add_epoch(now, EPOCH, &base_key()).expect("epoch");
        let frame = vec![0xab; size];
        // Warm the key cache so the benchmark measures the steady state.
        let mut wire = Vec::new();
        enc.encrypt(&frame, &[0], &mut wire).expect("encrypt");
        dec.decrypt(now, &wire, &[0], ())
            .expect("first frame")
            .expect("decrypted");
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter_batched(
                || {
                    let mut w = Vec::new();
                    enc.encrypt(&frame, &[0], &mut w).expect("encrypt");
                    w
                },
                |w| {
                    let d = dec.decrypt(now, black_box(&w), &[0], ()).expect("decrypt");
                    black_box(d)
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, encrypt, decrypt);
criterion_main!(benches);
