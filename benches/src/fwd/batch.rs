//! Batched UDP: `recvmmsg` and `sendmmsg` of up to [`BATCH`] datagrams per
//! system call through nix, on preallocated buffers (no allocation per
//! call), with the kernel's receive timestamp of each datagram.

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrIn, recvmmsg, sendmmsg, setsockopt,
    sockopt,
};
use nix::sys::time::TimeSpec;
use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;

/// Datagrams per system call, both ways.
pub const BATCH: usize = 32;
/// Bytes per receive slot; longer datagrams are truncated (and then not
/// ours: every packet of this benchmark is shorter).
pub const SLOT: usize = 2048;
/// Socket buffer size asked for (the kernel caps it at `rmem_max`).
pub const SOCKET_BUFFER: usize = 4 << 20;

/// Why a batch call failed.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The system call failed.
    #[error("{call}: {errno}")]
    Sys {
        /// Which call.
        call: &'static str,
        /// The error.
        errno: Errno,
    },
    /// A destination that is not IPv4 (this benchmark is loopback IPv4 only).
    #[error("destination {0} is not IPv4")]
    NotIpv4(SocketAddr),
}

/// Binds a non-blocking UDP socket on 127.0.0.1 with large buffers and,
/// if `timestamps`, kernel receive timestamps (`SO_TIMESTAMPNS`).
pub fn bind_loopback(timestamps: bool) -> std::io::Result<UdpSocket> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.set_nonblocking(true)?;
    // Best effort: a smaller buffer only means earlier drops, which the
    // loss figure shows.
    let _ = setsockopt(&s, sockopt::RcvBuf, &SOCKET_BUFFER);
    let _ = setsockopt(&s, sockopt::SndBuf, &SOCKET_BUFFER);
    if timestamps {
        setsockopt(&s, sockopt::ReceiveTimestampns, &true).map_err(std::io::Error::from)?;
    }
    Ok(s)
}

/// Microseconds of the realtime clock, the clock of `SO_TIMESTAMPNS` and
/// of the send stamps.
pub fn realtime_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn timespec_us(t: &TimeSpec) -> u64 {
    let s = u64::try_from(t.tv_sec()).unwrap_or(0);
    let ns = u64::try_from(t.tv_nsec()).unwrap_or(0);
    s * 1_000_000 + ns / 1_000
}

/// One received datagram, borrowed from a [`RecvBatch`].
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    /// Its bytes.
    pub data: &'a [u8],
    /// Who sent it.
    pub source: Option<SocketAddr>,
    /// When the kernel received it (realtime µs), if timestamps are on.
    pub kernel_us: Option<u64>,
}

/// Reusable state for `recvmmsg`.
pub struct RecvBatch {
    bufs: Box<[[u8; SLOT]; BATCH]>,
    hdrs: MultiHeaders<SockaddrIn>,
    lens: [usize; BATCH],
    sources: [Option<SocketAddr>; BATCH],
    stamps: [Option<u64>; BATCH],
    n: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch").field("n", &self.n).finish()
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    /// Buffers for [`BATCH`] datagrams, with room for a timestamp each.
    pub fn new() -> Self {
        Self {
            bufs: Box::new([[0; SLOT]; BATCH]),
            hdrs: MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(TimeSpec))),
            lens: [0; BATCH],
            sources: [None; BATCH],
            stamps: [None; BATCH],
            n: 0,
        }
    }

    /// Receives what is queued on `socket`, up to [`BATCH`], without
    /// blocking. Returns how many (0 when none is queued).
    pub fn recv(&mut self, socket: &UdpSocket) -> Result<usize, BatchError> {
        self.n = 0;
        let mut slots = self.bufs.iter_mut();
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = std::array::from_fn(|_| {
            [IoSliceMut::new(match slots.next() {
                Some(b) => &mut b[..],
                None => &mut [],
            })]
        });
        let res = recvmmsg(
            socket.as_raw_fd(),
            &mut self.hdrs,
            iovs.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        );
        let msgs = match res {
            Ok(m) => m,
            Err(Errno::EAGAIN | Errno::EINTR) => return Ok(0),
            // ICMP port unreachable from an earlier send: not ours to fix.
            Err(Errno::ECONNREFUSED) => return Ok(0),
            Err(errno) => {
                return Err(BatchError::Sys {
                    call: "recvmmsg",
                    errno,
                });
            }
        };
        for (i, m) in msgs.enumerate().take(BATCH) {
            self.lens[i] = m.bytes.min(SLOT);
            self.sources[i] = m.address.map(|a| SocketAddr::V4(SocketAddrV4::from(a)));
            self.stamps[i] = m.cmsgs().ok().and_then(|mut c| {
                c.find_map(|c| match c {
                    ControlMessageOwned::ScmTimestampns(t) => Some(timespec_us(&t)),
                    _ => None,
                })
            });
            self.n = i + 1;
        }
        Ok(self.n)
    }

    /// How many datagrams the last [`Self::recv`] returned.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the last [`Self::recv`] returned nothing.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The `i`th datagram of the last [`Self::recv`].
    pub fn get(&self, i: usize) -> Option<Received<'_>> {
        if i >= self.n {
            return None;
        }
        Some(Received {
            data: &self.bufs[i][..self.lens[i]],
            source: self.sources[i],
            kernel_us: self.stamps[i],
        })
    }
}

/// Reusable state for `sendmmsg`.
pub struct SendBatch {
    hdrs: MultiHeaders<SockaddrIn>,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch").finish_non_exhaustive()
    }
}

impl Default for SendBatch {
    fn default() -> Self {
        Self::new()
    }
}

/// What one [`SendBatch::send`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Datagrams the kernel took.
    pub sent: usize,
    /// Datagrams given up on (socket buffer full or an error).
    pub dropped: usize,
}

impl SendBatch {
    /// Headers for [`BATCH`] datagrams per call.
    pub fn new() -> Self {
        Self {
            hdrs: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// Sends every datagram `(bytes, destination)` of `msgs`, [`BATCH`] per
    /// system call. A datagram the kernel refuses is dropped and counted,
    /// as a real forwarder would.
    pub fn send<B: AsRef<[u8]>>(
        &mut self,
        socket: &UdpSocket,
        msgs: &[(B, SocketAddr)],
    ) -> Result<Sent, BatchError> {
        let mut done = Sent::default();
        for chunk in msgs.chunks(BATCH) {
            let mut addrs: [Option<SockaddrIn>; BATCH] = [None; BATCH];
            for (a, (_, dest)) in addrs.iter_mut().zip(chunk) {
                match dest {
                    SocketAddr::V4(v4) => *a = Some(SockaddrIn::from(*v4)),
                    SocketAddr::V6(_) => return Err(BatchError::NotIpv4(*dest)),
                }
            }
            let mut start = 0;
            while start < chunk.len() {
                let rest = &chunk[start..];
                let mut it = rest.iter();
                let iovs: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|_| {
                    [IoSlice::new(match it.next() {
                        Some((b, _)) => b.as_ref(),
                        None => &[],
                    })]
                });
                let res = sendmmsg(
                    socket.as_raw_fd(),
                    &mut self.hdrs,
                    iovs.iter().take(rest.len()),
                    &addrs[start..chunk.len()],
                    [],
                    MsgFlags::MSG_DONTWAIT,
                );
                match res {
                    Ok(r) => {
                        let n = r.count();
                        if n == 0 {
                            done.dropped += rest.len();
                            break;
                        }
                        done.sent += n;
                        start += n;
                    }
                    Err(Errno::EINTR) => {}
                    // The first datagram failed; drop it and carry on with
                    // the rest (a full buffer or a vanished sink).
                    Err(Errno::EAGAIN | Errno::ENOBUFS | Errno::ECONNREFUSED) => {
                        done.dropped += 1;
                        start += 1;
                    }
                    Err(errno) => {
                        return Err(BatchError::Sys {
                            call: "sendmmsg",
                            errno,
                        });
                    }
                }
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_goes_out_and_comes_back_with_timestamps() {
        let rx = bind_loopback(true).expect("rx");
        let tx = bind_loopback(false).expect("tx");
        let dest = rx.local_addr().expect("addr");
        let msgs: Vec<(Vec<u8>, SocketAddr)> = (0..40u8)
            .map(|i| (vec![i; 100 + usize::from(i)], dest))
            .collect();
        let before = realtime_us();
        let sent = SendBatch::new().send(&tx, &msgs).expect("send");
        assert_eq!(
            sent,
            Sent {
                sent: 40,
                dropped: 0
            }
        );
        let mut b = RecvBatch::new();
        let mut got = Vec::new();
        for _ in 0..100 {
            let n = b.recv(&rx).expect("recv");
            for i in 0..n {
                let r = b.get(i).expect("in range");
                assert_eq!(r.source, Some(tx.local_addr().expect("addr")));
                let at = r.kernel_us.expect("kernel timestamp");
                assert!(at + 1_000 >= before, "{at} vs {before}");
                got.push(r.data.to_vec());
            }
            if got.len() == 40 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(got, msgs.into_iter().map(|(b, _)| b).collect::<Vec<_>>());
        assert_eq!(b.recv(&rx).expect("empty"), 0);
        assert!(b.get(0).is_none());
    }
}
