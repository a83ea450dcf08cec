//! A rough loopback measurement of the send path, not a check: run with
//! `cargo test -p sfu --release --lib -- --ignored --nocapture send_cost`.
//! Sinks are never read, so the kernel drops at their full queues; every
//! variant pays the same, and the sender's CPU time includes the loopback
//! delivery (softirq runs in its context).

use super::io_stats::IoCounters;
use super::send::SendQueue;
use sfu_core::Transmit;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

/// CPU time of this thread, from /proc (no clock syscall wrapper needed).
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

/// One round: `packets` datagrams of `size` bytes to each sink, grouped
/// by sink (what the plane's per-batch drain produces).
fn round(sinks: &[SocketAddr], packets: usize, size: usize) -> Vec<Transmit> {
    let mut out = Vec::with_capacity(sinks.len() * packets);
    for &to in sinks {
        for _ in 0..packets {
            out.push(Transmit {
                source: to,
                destination: to,
                contents: vec![0x80; size],
            });
        }
    }
    out
}

#[tokio::test(flavor = "current_thread")]
#[ignore = "measurement; run by hand"]
async fn send_cost() {
    let tx = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let sinks: Vec<std::net::UdpSocket> = (0..50)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let addrs: Vec<SocketAddr> = sinks
        .iter()
        .map(|s| s.local_addr().expect("addr"))
        .collect();
    let rounds = 1000;
    for (packets, size) in [(1, 1200), (4, 1200), (8, 1200)] {
        let per_round = addrs.len() * packets;
        let total = (rounds * per_round) as f64;
        // Building the datagrams alone, to subtract.
        let t = thread_cpu();
        for _ in 0..rounds {
            drop(std::hint::black_box(round(&addrs, packets, size)));
        }
        let build = thread_cpu() - t;
        // One send_to per datagram: the shell before batching.
        let t = thread_cpu();
        for _ in 0..rounds {
            for d in round(&addrs, packets, size) {
                let _ = tx.send_to(&d.contents, d.destination).await;
            }
        }
        let single = thread_cpu() - t;
        let mut results = Vec::new();
        for gso in [false, true] {
            let mut q = SendQueue::new(32, 256, gso);
            let mut c = IoCounters::default();
            let t = thread_cpu();
            for _ in 0..rounds {
                for d in round(&addrs, packets, size) {
                    q.push(d);
                    if q.is_full() {
                        q.flush(&tx, &mut c, drop).await;
                    }
                }
                q.flush(&tx, &mut c, drop).await;
            }
            results.push((thread_cpu() - t, c));
        }
        let ns = |d: Duration| (d.saturating_sub(build)).as_nanos() as f64 / total;
        let (plain, pc) = results[0];
        let (gso, gc) = results[1];
        println!(
            "{packets} x {size} B to each of {} sinks: per datagram send_to {:.0} ns, \
             sendmmsg {:.0} ns ({:.1} dgrams/call), sendmmsg+GSO {:.0} ns \
             ({:.1} dgrams/call, {} GSO segments, {} dropped)",
            addrs.len(),
            ns(single),
            ns(plain),
            pc.send_datagrams as f64 / pc.send_syscalls.max(1) as f64,
            ns(gso),
            gc.send_datagrams as f64 / gc.send_syscalls.max(1) as f64,
            gc.gso_segments,
            gc.send_dropped + pc.send_dropped,
        );
    }
}
