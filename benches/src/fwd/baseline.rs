//! The minimal batched forwarder the SFU is compared with, measured in the
//! same run: `recvmmsg` ([`BATCH`] at a time), then per output a copy, a
//! header rewrite (sequence number and SSRC) and an AES-128-GCM seal with
//! the header as AAD and an SRTP-style IV (RFC 7714; AES-256-GCM on
//! request, see [`Cipher`]), then `sendmmsg`
//! ([`BATCH`] at a time). It uses aws-lc-rs, the library behind str0m's
//! SRTP. Its CPU time is its own thread's.

use crate::fwd::batch::{self, BATCH, RecvBatch, SLOT, SendBatch};
use crate::fwd::cpu::{self, CpuReading};
use crate::fwd::rtp;
use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use nix::poll::{PollFd, PollFlags, poll};
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::thread::JoinHandle;

/// GCM tag length.
const TAG: usize = 16;
/// Idle wait between checks of the stop flag, ms.
const IDLE_POLL_MS: u8 = 5;

/// Why the baseline cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// Socket or thread trouble.
    #[error("baseline forwarder: {0}")]
    Io(#[from] std::io::Error),
    /// aws-lc-rs refused a key (it never should at the right length).
    #[error("baseline forwarder: AES-GCM key rejected")]
    Key,
}

/// The AEAD the baseline seals with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cipher {
    /// AES-128-GCM (SRTP_AEAD_AES_128_GCM), the baseline's default.
    Aes128Gcm,
    /// AES-256-GCM (SRTP_AEAD_AES_256_GCM), what str0m peers prefer.
    Aes256Gcm,
}

/// Where one publisher's packets go.
#[derive(Debug, Clone)]
pub struct Route {
    /// The publisher's address.
    pub source: SocketAddr,
    /// Its subscribers' sink addresses.
    pub sinks: Vec<SocketAddr>,
}

/// What the forwarder counts; read by the controller.
#[derive(Debug, Default)]
pub struct BaselineStats {
    /// The forwarder thread's CPU time, ns.
    pub cpu_ns: AtomicU64,
    /// Packets received.
    pub received: AtomicU64,
    /// Packets sent.
    pub sent: AtomicU64,
    /// Outputs the kernel refused.
    pub dropped: AtomicU64,
    /// Inputs from unknown sources or not RTP.
    pub ignored: AtomicU64,
}

/// One output stream: a subscriber's copy of one publisher's stream.
struct OutStream {
    dest: SocketAddr,
    key: LessSafeKey,
    salt: [u8; 12],
    ssrc: u32,
    seq: u16,
}

impl OutStream {
    fn new(i: usize, dest: SocketAddr, cipher: Cipher) -> Result<Self, BaselineError> {
        // Keys only need to differ per stream, as SRTP session keys do.
        let mut key = [0u8; 32];
        let mut salt = [0u8; 12];
        for (j, b) in key.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(j as u8);
        }
        for (j, b) in salt.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(17) ^ (j as u8);
        }
        let unbound = match cipher {
            Cipher::Aes128Gcm => UnboundKey::new(&AES_128_GCM, &key[..16]),
            Cipher::Aes256Gcm => UnboundKey::new(&AES_256_GCM, &key),
        }
        .map_err(|_| BaselineError::Key)?;
        Ok(Self {
            dest,
            key: LessSafeKey::new(unbound),
            salt,
            ssrc: 0x5000_0000 | (i as u32),
            seq: 1000,
        })
    }

    /// RFC 7714 §8.1: the salt XOR (0, SSRC, ROC, SEQ).
    fn nonce(&self, seq: u16) -> Nonce {
        let mut iv = self.salt;
        for (b, x) in iv[2..6].iter_mut().zip(self.ssrc.to_be_bytes()) {
            *b ^= x;
        }
        for (b, x) in iv[10..12].iter_mut().zip(seq.to_be_bytes()) {
            *b ^= x;
        }
        Nonce::assume_unique_for_key(iv)
    }
}

/// The forwarder's socket, bound before the routes are known (publishers
/// need its address first).
#[derive(Debug)]
pub struct BaselineSocket(UdpSocket);

impl BaselineSocket {
    /// Binds on 127.0.0.1.
    pub fn bind() -> std::io::Result<Self> {
        batch::bind_loopback(false).map(Self)
    }

    /// Where publishers send.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// A running baseline forwarder thread.
#[derive(Debug)]
pub struct Baseline {
    stats: Arc<BaselineStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Baseline {
    /// Starts forwarding on `socket` along `routes` with `cipher`, pinned
    /// to `pin`.
    pub fn start(
        socket: BaselineSocket,
        routes: &[Route],
        cipher: Cipher,
        pin: Option<usize>,
    ) -> Result<Self, BaselineError> {
        let mut by_source = HashMap::new();
        let mut table = Vec::with_capacity(routes.len());
        let mut n = 0;
        for r in routes {
            let mut outs = Vec::with_capacity(r.sinks.len());
            for s in &r.sinks {
                outs.push(OutStream::new(n, *s, cipher)?);
                n += 1;
            }
            by_source.insert(r.source, table.len());
            table.push(outs);
        }
        let stats = Arc::new(BaselineStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let socket = socket.0;
        let (s, st) = (Arc::clone(&stats), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("fwd-baseline".into())
            .spawn(move || {
                if let Some(cpu) = pin
                    && let Err(e) = cpu::pin_current_thread(cpu)
                {
                    tracing::warn!(cpu, error = %e, "cannot pin the baseline forwarder");
                }
                // Built here: nix's batch headers hold raw pointers and
                // stay on the thread that uses them.
                let mut fwd = Forwarder {
                    socket,
                    by_source,
                    table,
                    out: (0..BATCH)
                        .map(|_| {
                            (
                                Vec::with_capacity(SLOT + TAG),
                                SocketAddr::from(([127, 0, 0, 1], 0)),
                            )
                        })
                        .collect(),
                    filled: 0,
                    send: SendBatch::new(),
                };
                fwd.run(&s, &st);
            })?;
        Ok(Self {
            stats,
            stop,
            thread: Some(thread),
        })
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<BaselineStats> {
        &self.stats
    }

    /// CPU time so far (whole forwarder = its hot thread).
    pub fn cpu(&self) -> CpuReading {
        let s = self.stats.cpu_ns.load(Relaxed) as f64 / 1e9;
        CpuReading {
            total_s: s,
            hot_s: s,
        }
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Baseline {
    fn drop(&mut self) {
        self.halt();
    }
}

struct Forwarder {
    socket: UdpSocket,
    by_source: HashMap<SocketAddr, usize>,
    table: Vec<Vec<OutStream>>,
    /// Output slots, reused: their capacity never changes, so nothing is
    /// allocated per packet.
    out: Vec<(Vec<u8>, SocketAddr)>,
    filled: usize,
    send: SendBatch,
}

impl Forwarder {
    fn run(&mut self, stats: &BaselineStats, stop: &AtomicBool) {
        let mut recv = RecvBatch::new();
        while !stop.load(Relaxed) {
            let n = match recv.recv(&self.socket) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "baseline receive failed");
                    0
                }
            };
            if n == 0 {
                stats.cpu_ns.store(cpu::thread_cpu_ns(), Relaxed);
                let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, IDLE_POLL_MS);
                continue;
            }
            stats.received.fetch_add(n as u64, Relaxed);
            let mut ignored = 0;
            for i in 0..n {
                let Some(d) = recv.get(i) else { break };
                let route = d.source.and_then(|s| self.by_source.get(&s)).copied();
                let (Some(route), Some(view)) = (route, rtp::view(d.data)) else {
                    ignored += 1;
                    continue;
                };
                self.forward(route, d.data, view.header_len, stats);
            }
            self.flush(stats);
            stats.ignored.fetch_add(ignored, Relaxed);
            stats.cpu_ns.store(cpu::thread_cpu_ns(), Relaxed);
        }
    }

    fn forward(&mut self, route: usize, pkt: &[u8], header_len: usize, stats: &BaselineStats) {
        let outs = self.table.get(route).map_or(0, Vec::len);
        for o in 0..outs {
            if self.filled == BATCH {
                self.flush(stats);
            }
            let (Some(stream), Some((buf, dest))) = (
                self.table.get_mut(route).and_then(|t| t.get_mut(o)),
                self.out.get_mut(self.filled),
            ) else {
                return;
            };
            buf.clear();
            buf.extend_from_slice(pkt);
            let seq = stream.seq;
            stream.seq = seq.wrapping_add(1);
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
            buf[8..12].copy_from_slice(&stream.ssrc.to_be_bytes());
            let (header, body) = buf.split_at_mut(header_len);
            match stream.key.seal_in_place_separate_tag(
                stream.nonce(seq),
                Aad::from(&*header),
                body,
            ) {
                Ok(tag) => buf.extend_from_slice(tag.as_ref()),
                Err(_) => continue,
            }
            *dest = stream.dest;
            self.filled += 1;
        }
    }

    fn flush(&mut self, stats: &BaselineStats) {
        if self.filled == 0 {
            return;
        }
        match self.send.send(&self.socket, &self.out[..self.filled]) {
            Ok(s) => {
                stats.sent.fetch_add(s.sent as u64, Relaxed);
                stats.dropped.fetch_add(s.dropped as u64, Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "baseline send failed"),
        }
        self.filled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_sealed_copies_with_rewritten_headers() {
        let sock = BaselineSocket::bind().expect("bind");
        let fwd_addr = sock.local_addr().expect("addr");
        let publisher = batch::bind_loopback(false).expect("pub");
        let sinks: Vec<UdpSocket> = (0..3)
            .map(|_| batch::bind_loopback(false).expect("sink"))
            .collect();
        let route = Route {
            source: publisher.local_addr().expect("addr"),
            sinks: sinks
                .iter()
                .map(|s| s.local_addr().expect("addr"))
                .collect(),
        };
        let b = Baseline::start(sock, std::slice::from_ref(&route), Cipher::Aes128Gcm, None)
            .expect("start");
        let mut pkt = vec![0x80, 0xe0, 0, 7, 0, 0, 1, 0, 0xaa, 0xbb, 0xcc, 0xdd];
        pkt.extend([0x42; 100]);
        publisher.send_to(&pkt, fwd_addr).expect("send");
        let mut buf = [0u8; 2048];
        for (i, s) in sinks.iter().enumerate() {
            s.set_nonblocking(false).expect("blocking");
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .expect("timeout");
            let n = s.recv(&mut buf).expect("copy arrives");
            assert_eq!(n, pkt.len() + TAG);
            let got = &mut buf[..n];
            assert_eq!(&got[..2], &pkt[..2]);
            assert_eq!(&got[4..8], &pkt[4..8], "timestamp kept");
            assert_eq!(&got[2..4], &1000u16.to_be_bytes());
            assert_eq!(&got[8..12], &(0x5000_0000u32 | i as u32).to_be_bytes());
            // It opens with the stream's key: a real seal, not a copy.
            let stream = OutStream::new(i, route.sinks[i], Cipher::Aes128Gcm).expect("key");
            let (header, rest) = got.split_at_mut(12);
            let (body, tag) = rest.split_at_mut(100);
            let tag: [u8; 16] = (&*tag).try_into().expect("tag");
            let mut sealed = body.to_vec();
            sealed.extend(tag);
            let plain = stream
                .key
                .open_in_place(stream.nonce(1000), Aad::from(&*header), &mut sealed)
                .expect("authentic");
            assert_eq!(plain, &[0x42; 100][..]);
        }
        let stats = Arc::clone(b.stats());
        b.stop();
        assert_eq!(stats.received.load(Relaxed), 1);
        assert_eq!(stats.sent.load(Relaxed), 3);
        assert!(stats.cpu_ns.load(Relaxed) > 0);
    }
}
