//! The buffer pool: buffers of sent datagrams come back through
//! [`MediaPlane::recycle`] and are handed to transports for their SRTP
//! output, so forwarding allocates nothing per output.

use super::MediaPlane;

/// Most buffers [`MediaPlane::recycle`] keeps; beyond it they are freed.
const MAX_SPARE: usize = 1024;
/// Spare buffers a transport holds ahead while it is polled: one more is
/// handed over for each datagram it puts out, so a long batch never runs
/// dry, and an idle transport pins no more than this.
pub(super) const SPARE_AHEAD: usize = 2;
/// Largest buffer worth keeping: an MTU-sized datagram fits.
const MAX_SPARE_CAPACITY: usize = 4096;

/// Moves one buffer from the plane's pool to `rtc`'s spare list, unless
/// the pool is empty or the list full.
#[inline]
pub(super) fn give_spare(pool: &mut Vec<Vec<u8>>, rtc: &mut str0m::Rtc) {
    if let Some(buf) = pool.pop()
        && let Some(refused) = rtc.recycle_buffer(buf)
    {
        pool.push(refused);
    }
}

impl MediaPlane {
    /// Takes back the buffer of a sent [`crate::Output::Transmit`], so a later
    /// datagram reuses it instead of allocating: the forwarding path then
    /// allocates nothing per output. Optional; buffers not handed back are
    /// simply freed. Keeps at most 1024 buffers of at most 4 KiB.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < MAX_SPARE && (1..=MAX_SPARE_CAPACITY).contains(&buf.capacity()) {
            self.spare.push(buf);
        }
    }
}
