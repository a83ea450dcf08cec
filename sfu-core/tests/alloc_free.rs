//! Heap allocations on the forwarding path, counted.
//!
//! A media plane with one publisher and N subscribers (real str0m peers on
//! virtual time, `testkit::plane_world`) forwards one 1200-byte video packet per
//! round. Only the plane's part of a round is counted: the publisher's SRTP
//! datagram into `MediaPlane::handle_input`, then `poll_output` until it asks
//! for a timeout (`testkit::plane_fanout`, shared with the `plane`
//! bench). The peers, the simulated network and the test's bookkeeping run
//! with counting off.
//!
//! Runs with N = 1 and N = 8 separate the cost per input packet from the
//! cost per forwarded output: `per_output = (A8 - A1) / 7` and
//! `per_input = A1 - per_output`, where `A` is allocations per input.
//!
//! **Per output: 0 allocations**, with or without a dependency descriptor:
//! the shell hands each sent buffer back with `MediaPlane::recycle`, the
//! plane passes spares to str0m (`Rtc::recycle_buffer`, our str0m patch P2)
//! and str0m's SRTP output reuses them; header extensions are shared, not
//! cloned (patch P1). Unpatched it was 1 without a descriptor (str0m's
//! SRTP `Vec`) and 3 with one (also a 148 B extension map cloned by us and
//! one by str0m's `StreamTx::poll_packet`).
//!
//! **Per input: 1 without a descriptor, 3 with one.** What is left is
//! str0m's: it copies each received payload into a new `Arc<[u8]>`
//! (`session.rs`), and with a descriptor it also allocates the value's
//! `Arc` (our `DdBytes`, 256 B + 16) and the shared 48 B slice that holds
//! it. Unpatched it was 2 and 5 (also `Mid::from(&str)` collecting a
//! `String`, fixed by patch P3, str0m's 148 B map, and our clone of it).
//! Removing the payload copy needs an API change in str0m
//! (`RtpPacket::payload` owned by the caller).
//!
//! `ALLOC_TRACE_SIZE=N cargo test -p sfu-core --test alloc_free --
//! --nocapture` prints where the first allocations of exactly N bytes in
//! the window come from.

use std::collections::BTreeMap;
use testkit::alloc::CountingAlloc;
use testkit::plane_fanout::Rig;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::new();

/// What one steady window cost.
#[derive(Debug)]
struct Window {
    inputs: u64,
    outputs: u64,
    allocs: u64,
    bytes: u64,
    /// (size, allocations per input), most frequent first.
    sizes: Vec<(usize, f64)>,
}

impl Window {
    fn per_input(&self) -> f64 {
        self.allocs as f64 / self.inputs as f64
    }
    fn per_output(&self) -> f64 {
        self.allocs as f64 / self.outputs as f64
    }
}

/// Warms `rig` up, then counts `rounds` rounds.
fn measure(mut rig: Rig, rounds: u64) -> Window {
    // Past ICE/DTLS, the first packets of every stream, full RTX caches
    // (1024 packets) and every lazily grown buffer.
    rig.warm_up(1200);
    assert_eq!(rig.events, 0, "plane events in steady state");
    rig.reset_counts();
    if let Some(size) = std::env::var("ALLOC_TRACE_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        GLOBAL.trace_size(size);
    }
    let (mut allocs, mut bytes) = (0, 0);
    let mut by_size: BTreeMap<usize, u64> = BTreeMap::new();
    for _ in 0..rounds {
        rig.prepare();
        let (_, counts) = GLOBAL.measure(|| rig.forward());
        rig.release();
        allocs += counts.allocs;
        bytes += counts.bytes;
        for (size, n) in counts.by_size {
            *by_size.entry(size).or_default() += n;
        }
    }
    assert_eq!(rig.events, 0, "plane events in steady state");
    let inputs = rig.rtp_in;
    let mut sizes: Vec<(usize, f64)> = by_size
        .into_iter()
        .map(|(size, n)| (size, n as f64 / inputs as f64))
        .collect();
    sizes.sort_by(|a, b| b.1.total_cmp(&a.1));
    Window {
        inputs,
        outputs: rig.rtp_out,
        allocs,
        bytes,
        sizes,
    }
}

fn report(name: &str, w: &Window) {
    println!(
        "{name}: {} in, {} out; {:.2} allocs ({:.0} B) per input, {:.2} allocs ({:.0} B) per output",
        w.inputs,
        w.outputs,
        w.per_input(),
        w.bytes as f64 / w.inputs as f64,
        w.per_output(),
        w.bytes as f64 / w.outputs as f64,
    );
    let top: Vec<String> = w
        .sizes
        .iter()
        .take(8)
        .map(|(size, n)| format!("{size} B x{n:.2}"))
        .collect();
    println!("  sizes per input: {}", top.join(", "));
}

/// Splits allocations per input into a fixed part per input and a part per
/// output, from runs with 1 and `n` subscribers.
fn split(one: &Window, many: &Window, n: u64) -> (f64, f64) {
    let per_output = (many.per_input() - one.per_input()) / (n - 1) as f64;
    (one.per_input() - per_output, per_output)
}

const ROUNDS: u64 = 500;
const N: u64 = 8;

#[test]
fn allocations_per_forwarded_packet() {
    // (per input, per output) bounds; see the module docs.
    for (dd, bound_in, bound_out) in [(false, 1.0, 0.0), (true, 3.0, 0.0)] {
        let label = if dd { "with DD" } else { "without DD" };
        let one = measure(Rig::fanout(1, dd), ROUNDS);
        let many = measure(Rig::fanout(N as usize, dd), ROUNDS);
        assert_eq!(one.outputs, ROUNDS, "{label}: one output per input");
        assert_eq!(many.outputs, N * ROUNDS, "{label}: {N} outputs per input");
        report(&format!("fanout-1 {label}"), &one);
        report(&format!("fanout-{N} {label}"), &many);
        let (per_in, per_out) = split(&one, &many, N);
        println!("{label}: {per_in:.2} allocations per input + {per_out:.2} per output");
        // Rounding slack only: counts are deterministic, but a rare growth
        // of an amortized buffer can land inside the window.
        assert!(
            per_out <= bound_out + 0.02,
            "{label}: {per_out:.2} allocations per output, bound {bound_out}"
        );
        assert!(
            per_in <= bound_in + 0.02,
            "{label}: {per_in:.2} allocations per input, bound {bound_in}"
        );
    }
}

/// A recvmmsg-sized batch: 32 publisher packets in, then 32 × N outputs.
/// Each subscriber transport sends 32 datagrams in one poll, more than it
/// holds spare buffers for, and the plane must keep handing it recycled
/// ones: before it did, half the outputs of such a batch allocated.
#[test]
fn a_batch_allocates_nothing_per_output() {
    const BATCH: usize = 32;
    let mut rig = Rig::fanout(N as usize, false);
    rig.warm_up(1200);
    rig.reset_counts();
    // Only the payload copy per input is expected (see the module docs).
    let rounds = 20;
    let mut allocs = 0;
    for _ in 0..rounds {
        for _ in 0..BATCH {
            rig.prepare();
        }
        let (_, counts) = GLOBAL.measure(|| rig.forward_batch());
        allocs += counts.allocs;
    }
    assert_eq!(rig.events, 0, "plane events in steady state");
    assert_eq!(
        rig.rtp_out,
        N * rig.rtp_in,
        "every packet to every subscriber"
    );
    let per_out = allocs.saturating_sub(rig.rtp_in) as f64 / rig.rtp_out as f64;
    println!(
        "batch of {BATCH}, fanout-{N}: {allocs} allocations for {} in, {} out",
        rig.rtp_in, rig.rtp_out
    );
    assert!(
        per_out <= 0.02,
        "{per_out:.2} allocations per output beyond one per input"
    );
}

/// What one cached packet costs a subscriber stream, for the memory table
/// (docs/performance.md, RTX cache). The payload `Arc` is shared with the
/// publisher side and every other subscriber, so it is not counted; with
/// str0m patch P1 a descriptor adds nothing either (the header's extension
/// values are one shared slice).
#[test]
fn rtx_cache_entry_size() {
    let packet = std::mem::size_of::<str0m::rtp::RtpPacket>();
    // A slot in str0m's evicting buffer also holds the packet's position
    // and insertion time.
    let entry = packet + std::mem::size_of::<u64>() + std::mem::size_of::<std::time::Instant>();
    for cache in [1024usize, 128] {
        println!(
            "rtx cache {cache}: ~{} kB per video stream (RtpPacket {packet} B)",
            cache * entry / 1024,
        );
    }
    // str0m patch P1 shrank it from 408 B (patches/README.md); the memory
    // figures in docs/performance.md assume it stays there.
    assert!(packet <= 392, "RtpPacket grew to {packet} B");
}
