//! Writing the media socket in batches: queued datagrams leave through
//! sendmmsg, runs to one destination as UDP GSO trains (see `train`).
//!
//! Failure handling, per call:
//! - some messages sent: carry on from the first one that was not;
//! - `EAGAIN` (send buffer full): the caller waits for the socket to become
//!   writable and retries, a bounded number of times, then drops the rest
//!   and counts it;
//! - `EIO`, `EINVAL` or `EMSGSIZE` on a GSO call (the route's device or MTU
//!   cannot take it; kernels differ in which they return): turn GSO off for
//!   the socket and send the same datagrams plain;
//! - anything else (`EMSGSIZE`, `ENETUNREACH`, `EPERM` from a firewall, ...):
//!   drop the first message of the call, count it, go on.

use super::io_stats::IoCounters;
use super::train::{Msg, plan_call};
use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};
use sfu_core::Transmit;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Waits for writability before a full send buffer drops what is queued.
const MAX_WAITS: u32 = 3;
/// Longest single wait for writability. Loopback and a NIC drain far
/// faster; a buffer still full after this is overload, and dropping keeps
/// the shard's other work going.
const WAIT: Duration = Duration::from_millis(5);

/// Outgoing datagrams waiting for sendmmsg.
pub(super) struct SendQueue {
    queue: Vec<Transmit>,
    /// Index of the first datagram the kernel has not taken yet.
    sent: usize,
    batch: usize,
    capacity: usize,
    gso: bool,
    msgs: Vec<Msg>,
    addrs: Vec<Option<SockaddrStorage>>,
    /// Always empty between calls; kept for its allocation (see `recycle`).
    iov_store: Vec<IoSlice<'static>>,
    /// Same, for the per-message slices of `iov_store`.
    msg_store: Vec<&'static [IoSlice<'static>]>,
    plain: MultiHeaders<SockaddrStorage>,
    segmented: MultiHeaders<SockaddrStorage>,
    /// Makes the next GSO call fail with this error, to test the fallback.
    #[cfg(test)]
    fail_next_gso: Option<Errno>,
}

impl SendQueue {
    /// A queue that writes when `capacity` datagrams wait, `batch` messages
    /// per call, with GSO if `gso`.
    pub(super) fn new(batch: usize, capacity: usize, gso: bool) -> Self {
        let batch = batch.max(1);
        let capacity = capacity.max(batch);
        Self {
            queue: Vec::with_capacity(capacity),
            sent: 0,
            batch,
            capacity,
            gso,
            msgs: Vec::with_capacity(batch),
            addrs: Vec::with_capacity(batch),
            iov_store: Vec::with_capacity(capacity),
            msg_store: Vec::with_capacity(batch),
            plain: MultiHeaders::preallocate(batch, None),
            segmented: MultiHeaders::preallocate(batch, Some(nix::cmsg_space!(u16))),
            #[cfg(test)]
            fail_next_gso: None,
        }
    }

    /// Whether GSO is (still) in use.
    pub(super) fn gso(&self) -> bool {
        self.gso
    }

    /// Queues a datagram.
    pub(super) fn push(&mut self, t: Transmit) {
        self.queue.push(t);
    }

    /// Whether enough is queued that it should be written now.
    pub(super) fn is_full(&self) -> bool {
        self.queue.len() - self.sent >= self.capacity
    }

    /// Whether nothing waits.
    pub(super) fn is_empty(&self) -> bool {
        self.queue.len() == self.sent
    }

    /// Writes everything queued, waiting a bounded time for a full send
    /// buffer; what still cannot go is dropped and counted. Each sent
    /// buffer is then handed to `recycle`, so the plane can reuse it for a
    /// later datagram instead of allocating.
    pub(super) async fn flush(
        &mut self,
        socket: &UdpSocket,
        c: &mut IoCounters,
        recycle: impl FnMut(Vec<u8>),
    ) {
        let fd = socket.as_raw_fd();
        let mut waits = 0;
        while !self.is_empty() {
            // `try_io` clears tokio's readiness when the closure reports
            // WouldBlock, so the wait below sleeps until the kernel says
            // the buffer has room.
            match socket.try_io(Interest::WRITABLE, || self.send_some(fd, c)) {
                Ok(()) => {}
                Err(_) if waits < MAX_WAITS => {
                    waits += 1;
                    c.send_waits += 1;
                    let _ = tokio::time::timeout(WAIT, socket.writable()).await;
                }
                Err(_) => {
                    let left = self.queue.len() - self.sent;
                    tracing::debug!(left, "media send buffer stayed full; dropping");
                    c.send_dropped += left as u64;
                    self.sent = self.queue.len();
                }
            }
        }
        self.clear(recycle);
    }

    /// Hands the sent buffers back and empties the queue.
    fn clear(&mut self, recycle: impl FnMut(Vec<u8>)) {
        self.queue.drain(..).map(|t| t.contents).for_each(recycle);
        self.sent = 0;
    }

    /// Sends until the queue is empty or the socket would block (returned
    /// as `WouldBlock`).
    fn send_some(&mut self, fd: RawFd, c: &mut IoCounters) -> io::Result<()> {
        while self.sent < self.queue.len() {
            let queue = &self.queue;
            let segment = plan_call(
                queue.len(),
                |i| (queue[i].destination, queue[i].contents.len()),
                self.sent,
                self.batch,
                self.gso,
                &mut self.msgs,
            );
            c.send_syscalls += 1;
            match self.call(fd, segment) {
                Ok(n) => {
                    let n = n.min(self.msgs.len());
                    if n == 0 {
                        // Not expected from the kernel; treated as a full
                        // buffer so the wait bound applies.
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                    for m in &self.msgs[..n] {
                        c.send_messages += 1;
                        c.send_datagrams += m.count as u64;
                        if m.count > 1 {
                            c.gso_messages += 1;
                            c.gso_segments += m.count as u64;
                        }
                        self.sent += m.count;
                    }
                }
                Err(Errno::EAGAIN) => return Err(io::ErrorKind::WouldBlock.into()),
                Err(Errno::EINTR) => {}
                Err(e @ (Errno::EIO | Errno::EINVAL | Errno::EMSGSIZE)) if segment.is_some() => {
                    tracing::warn!(error = %e, "UDP GSO send failed; sending without GSO from now on");
                    self.gso = false;
                    c.gso_fallbacks += 1;
                    c.gso_enabled = 0;
                }
                Err(e) => {
                    let dropped = self.msgs.first().map_or(1, |m| m.count);
                    tracing::trace!(error = %e, dropped, "media send error");
                    c.send_dropped += dropped as u64;
                    self.sent += dropped;
                }
            }
        }
        Ok(())
    }

    /// One sendmmsg of the planned `msgs`; returns how many the kernel took.
    fn call(&mut self, fd: RawFd, segment: Option<u16>) -> Result<usize, Errno> {
        #[cfg(test)]
        if segment.is_some()
            && let Some(e) = self.fail_next_gso.take()
        {
            return Err(e);
        }
        let Self {
            queue,
            msgs,
            addrs,
            iov_store,
            msg_store,
            plain,
            segmented,
            ..
        } = self;
        let mut iov: Vec<IoSlice<'_>> = recycle(std::mem::take(iov_store));
        addrs.clear();
        for m in msgs.iter() {
            addrs.push(Some(SockaddrStorage::from(queue[m.first].destination)));
            iov.extend(
                queue[m.first..m.first + m.count]
                    .iter()
                    .map(|t| IoSlice::new(&t.contents)),
            );
        }
        let mut per_msg: Vec<&[IoSlice<'_>]> = recycle(std::mem::take(msg_store));
        let mut at = 0;
        for m in msgs.iter() {
            per_msg.push(&iov[at..at + m.count]);
            at += m.count;
        }
        // nix yields one result per message the kernel took; counting them
        // is the only way its API gives that number. (Its iterator also
        // copies an address slot that sendmmsg never fills; we ignore it.)
        let sent = match segment {
            None => sendmmsg(
                fd,
                plain,
                per_msg.iter(),
                &addrs[..],
                [],
                MsgFlags::MSG_DONTWAIT,
            )
            .map(Iterator::count),
            Some(size) => sendmmsg(
                fd,
                segmented,
                per_msg.iter(),
                &addrs[..],
                [ControlMessage::UdpGsoSegments(&size)],
                MsgFlags::MSG_DONTWAIT,
            )
            .map(Iterator::count),
        };
        *msg_store = recycle(per_msg);
        *iov_store = recycle(iov);
        sent
    }
}

/// Empties `v` and returns its allocation re-typed, so a buffer of borrowed
/// slices can outlive the borrows. The standard library collects an emptied
/// `vec::IntoIter` back in place when the layouts match, so this does not
/// allocate (`recycle_keeps_the_allocation` checks it).
fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    v.into_iter().filter_map(|_| None).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;

    #[test]
    fn recycle_keeps_the_allocation() {
        let data = [1u8, 2, 3];
        let mut v: Vec<IoSlice<'static>> = Vec::with_capacity(64);
        let ptr = v.as_ptr() as usize;
        let mut borrowed: Vec<IoSlice<'_>> = recycle(std::mem::take(&mut v));
        borrowed.push(IoSlice::new(&data));
        let back: Vec<IoSlice<'static>> = recycle(borrowed);
        assert_eq!(back.as_ptr() as usize, ptr);
        assert!(back.capacity() >= 64 && back.is_empty());
    }

    struct Rig {
        tx: UdpSocket,
        rx: std::net::UdpSocket,
        rx2: std::net::UdpSocket,
    }

    async fn rig() -> Rig {
        let tx = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let rx2 = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        for s in [&rx, &rx2] {
            s.set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
        }
        Rig { tx, rx, rx2 }
    }

    fn transmit(to: SocketAddr, contents: Vec<u8>) -> Transmit {
        Transmit {
            source: to,
            destination: to,
            contents,
        }
    }

    /// Queues, for each receiver, a train of `sizes` datagrams whose bytes
    /// say (receiver, index); returns what each receiver should get.
    fn queue_trains(q: &mut SendQueue, to: &[SocketAddr], sizes: &[usize]) -> Vec<Vec<Vec<u8>>> {
        let mut expect = vec![Vec::new(); to.len()];
        for (r, addr) in to.iter().enumerate() {
            for (i, &n) in sizes.iter().enumerate() {
                let mut d = vec![0u8; n];
                d[0] = r as u8;
                d[1] = i as u8;
                expect[r].push(d.clone());
                q.push(transmit(*addr, d));
            }
        }
        expect
    }

    fn receive(rx: &std::net::UdpSocket, n: usize) -> Vec<Vec<u8>> {
        let mut buf = [0u8; 4096];
        (0..n)
            .map(|_| {
                let (len, _) = rx.recv_from(&mut buf).expect("datagram arrives");
                buf[..len].to_vec()
            })
            .collect()
    }

    fn assert_drained(rx: &std::net::UdpSocket) {
        rx.set_nonblocking(true).expect("nonblocking");
        let mut buf = [0u8; 4096];
        assert!(rx.recv_from(&mut buf).is_err(), "no extra datagrams");
    }

    #[tokio::test]
    async fn gso_trains_arrive_as_the_original_datagrams() {
        let r = rig().await;
        if !super::super::socket::gso_supported(
            &std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"),
        ) {
            eprintln!("kernel without UDP GSO; skipping");
            return;
        }
        let to = [
            r.rx.local_addr().expect("addr"),
            r.rx2.local_addr().expect("addr"),
        ];
        let mut q = SendQueue::new(32, 256, true);
        // Audio-sized first, then a frame of three full packets and a short
        // last one, per receiver.
        let sizes = [90, 1200, 1200, 1200, 700];
        let expect = queue_trains(&mut q, &to, &sizes);
        let mut c = IoCounters::default();
        q.flush(&r.tx, &mut c, drop).await;

        assert_eq!(receive(&r.rx, sizes.len()), expect[0]);
        assert_eq!(receive(&r.rx2, sizes.len()), expect[1]);
        assert_drained(&r.rx);
        assert_drained(&r.rx2);
        assert!(q.is_empty() && q.gso());
        assert_eq!(c.send_datagrams, 10);
        assert_eq!(c.send_messages, 4, "one single and one train each");
        assert_eq!((c.gso_messages, c.gso_segments), (2, 8));
        assert_eq!(c.send_syscalls, 1);
        assert_eq!((c.send_dropped, c.gso_fallbacks), (0, 0));
    }

    #[tokio::test]
    async fn a_failing_gso_send_falls_back_to_plain_and_loses_nothing() {
        for errno in [Errno::EIO, Errno::EINVAL, Errno::EMSGSIZE] {
            let r = rig().await;
            let to = [r.rx.local_addr().expect("addr")];
            let mut q = SendQueue::new(32, 256, true);
            q.fail_next_gso = Some(errno);
            let sizes = [500, 500, 500, 120];
            let expect = queue_trains(&mut q, &to, &sizes);
            let mut c = IoCounters {
                gso_enabled: 1,
                ..IoCounters::default()
            };
            q.flush(&r.tx, &mut c, drop).await;
            assert_eq!(receive(&r.rx, sizes.len()), expect[0], "{errno}");
            assert_drained(&r.rx);
            assert!(!q.gso(), "GSO is off after {errno}");
            assert_eq!((c.gso_fallbacks, c.gso_enabled), (1, 0));
            assert_eq!((c.gso_messages, c.send_dropped), (0, 0));
            assert_eq!(c.send_datagrams, 4);
            assert_eq!(c.send_syscalls, 2, "the failed GSO call and one plain");

            // Later trains go plain straight away.
            let expect = queue_trains(&mut q, &to, &sizes);
            q.flush(&r.tx, &mut c, drop).await;
            assert_eq!(receive(&r.rx, sizes.len()), expect[0]);
            assert_eq!(c.send_syscalls, 3);
            assert_eq!(c.gso_messages, 0);
        }
    }

    #[tokio::test]
    async fn other_errors_drop_one_message_and_go_on() {
        let r = rig().await;
        let good = r.rx.local_addr().expect("addr");
        // An IPv6 destination on an IPv4 socket: the kernel refuses it.
        let bad: SocketAddr = "[::1]:9".parse().expect("addr");
        let mut q = SendQueue::new(32, 256, false);
        q.push(transmit(good, vec![1; 10]));
        q.push(transmit(bad, vec![2; 10]));
        q.push(transmit(good, vec![3; 10]));
        let mut c = IoCounters::default();
        q.flush(&r.tx, &mut c, drop).await;
        assert_eq!(receive(&r.rx, 2), vec![vec![1; 10], vec![3; 10]]);
        assert_eq!((c.send_datagrams, c.send_dropped), (2, 1));
        assert_eq!(c.send_syscalls, 3, "sent 1, failed on 1, sent the rest");
    }

    #[tokio::test]
    async fn plain_sends_batch_and_split_by_the_batch_size() {
        let r = rig().await;
        let to = r.rx.local_addr().expect("addr");
        let mut q = SendQueue::new(4, 8, false);
        for i in 0..10u8 {
            q.push(transmit(to, vec![i; 20 + usize::from(i)]));
        }
        assert!(q.is_full());
        let mut c = IoCounters::default();
        q.flush(&r.tx, &mut c, drop).await;
        let got = receive(&r.rx, 10);
        for (i, d) in got.iter().enumerate() {
            assert_eq!(d, &vec![i as u8; 20 + i]);
        }
        assert_eq!(c.send_syscalls, 3);
        assert_eq!((c.send_messages, c.send_datagrams), (10, 10));
        let _ = r.tx.as_raw_fd();
    }
}
