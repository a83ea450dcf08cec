//! Reading the media socket in batches: one recvmmsg fills up to a batch of
//! slots of one buffer that lives as long as the shard, so receiving
//! allocates nothing.

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Most datagrams one call may read; the batch size is capped to it so the
/// per-call slice array can live on the stack.
pub(crate) const MAX_BATCH: usize = crate::config::MAX_MEDIA_IO_BATCH;

/// One received datagram: its length in its slot and who sent it (`None`
/// if not an IP address, which a UDP socket never reports).
#[derive(Debug, Clone, Copy)]
struct Slot {
    len: usize,
    source: Option<SocketAddr>,
}

/// The receive pool and the kernel headers for recvmmsg.
pub(super) struct RecvBatch {
    /// `batch` slots of `slot` bytes each, reused by every call.
    buf: Vec<u8>,
    slot: usize,
    batch: usize,
    headers: MultiHeaders<SockaddrStorage>,
    /// What the last call read, in order.
    got: Vec<Slot>,
    /// Datagrams of the last call whose source was not an IP address.
    pub(super) unaddressed: usize,
}

impl RecvBatch {
    /// Room for `batch` datagrams (capped to [`MAX_BATCH`]) of up to
    /// `max_datagram` bytes. Each slot is one byte longer, so a datagram
    /// that does not fit arrives cut to `max_datagram + 1` bytes and the
    /// plane refuses it as oversized (the kernel drops the rest).
    pub(super) fn new(batch: usize, max_datagram: usize) -> Self {
        let batch = batch.clamp(1, MAX_BATCH);
        let slot = max_datagram + 1;
        Self {
            buf: vec![0; batch * slot],
            slot,
            batch,
            headers: MultiHeaders::preallocate(batch, None),
            got: Vec::with_capacity(batch),
            unaddressed: 0,
        }
    }

    /// Most datagrams one [`Self::recv`] reads.
    pub(super) fn batch(&self) -> usize {
        self.batch
    }

    /// One recvmmsg on the non-blocking `fd`. Returns how many datagrams it
    /// read, or `WouldBlock` if none were waiting.
    pub(super) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let Self {
            buf,
            slot,
            batch,
            headers,
            got,
            unaddressed,
        } = self;
        got.clear();
        *unaddressed = 0;
        let mut chunks = buf.chunks_mut(*slot);
        // A fresh array per call: the kernel writes through these slices,
        // so they borrow the pool only for this call.
        let mut iovs: [[IoSliceMut<'_>; 1]; MAX_BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
        let results = recvmmsg(
            fd,
            headers,
            iovs[..*batch].iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        for msg in results {
            let source = msg.address.as_ref().and_then(to_std);
            *unaddressed += usize::from(source.is_none());
            got.push(Slot {
                len: msg.bytes.min(*slot),
                source,
            });
        }
        Ok(got.len())
    }

    /// The datagrams the last [`Self::recv`] read, in arrival order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> + '_ {
        self.got.iter().enumerate().filter_map(|(i, s)| {
            let start = i * self.slot;
            Some((s.source?, &self.buf[start..start + s.len]))
        })
    }
}

fn to_std(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    addr.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn reads_a_batch_in_order_and_cuts_oversized_datagrams() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        rx.set_nonblocking(true).expect("nonblocking");
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut batch = RecvBatch::new(4, 100);
        assert_eq!(
            batch.recv(rx.as_raw_fd()).map_err(|e| e.kind()),
            Err(io::ErrorKind::WouldBlock)
        );
        for i in 0..6u8 {
            tx.send_to(&[i; 10], rx.local_addr().expect("addr"))
                .expect("send");
        }
        tx.send_to(&[9; 300], rx.local_addr().expect("addr"))
            .expect("send");
        let first = batch.recv(rx.as_raw_fd()).expect("reads");
        assert_eq!(first, 4, "a full batch");
        let got: Vec<(SocketAddr, Vec<u8>)> = batch.iter().map(|(a, b)| (a, b.to_vec())).collect();
        for (i, (from, bytes)) in got.iter().enumerate() {
            assert_eq!(*from, tx.local_addr().expect("addr"));
            assert_eq!(bytes, &vec![i as u8; 10]);
        }
        assert_eq!(batch.recv(rx.as_raw_fd()).expect("reads"), 3);
        let lens: Vec<usize> = batch.iter().map(|(_, b)| b.len()).collect();
        assert_eq!(lens, [10, 10, 101], "the oversized one is cut to max + 1");
        assert!(batch.recv(rx.as_raw_fd()).is_err(), "drained");
    }
}
