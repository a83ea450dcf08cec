//! Grouping outgoing datagrams into sendmmsg calls, and into GSO trains
//! within a call.
//!
//! A train is a run of consecutive datagrams to one destination that the
//! kernel can cut apart again: all of one size `S` except the last, which
//! may be shorter. It goes out as one message with `UDP_SEGMENT = S`.
//!
//! nix puts the same control messages on every message of a sendmmsg call,
//! so a call carries one segment size. That suits the kernel: a datagram no
//! longer than `S` with `UDP_SEGMENT = S` is sent as a plain datagram, so
//! single datagrams can ride in a GSO call as long as they are not longer
//! than its `S`. A call ends where the next train needs another size.
//! Order is kept: datagrams leave in the order the plane produced them.

use std::net::SocketAddr;

/// Most segments in one GSO message (the kernel's `UDP_MAX_SEGMENTS` before
/// 6.x raised it).
pub(super) const MAX_SEGMENTS: usize = 64;
/// Most bytes in one GSO message: an IP packet's 64 KiB less headers, with
/// margin for IPv6.
pub(super) const MAX_GSO_BYTES: usize = 64_000;
/// Largest segment put in a train: a full 1500-byte Ethernet frame over
/// IPv6. The kernel refuses GSO (EINVAL) when a segment would not fit the
/// route's MTU; that turns GSO off, so bigger datagrams go plain (and are
/// fragmented by IP, as without GSO).
pub(super) const MAX_SEGMENT: usize = 1500 - 40 - 8;

/// One message of a sendmmsg call: `count` consecutive queued datagrams
/// from index `first`, to one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Msg {
    /// Index of its first datagram in the queue.
    pub(super) first: usize,
    /// How many datagrams it carries (more than one only with GSO).
    pub(super) count: usize,
}

/// Plans the next sendmmsg call over the queued datagrams `start..len`,
/// where `at(i)` gives datagram `i`'s destination and length. Fills `msgs`
/// with at most `batch` messages and returns the call's segment size, or
/// `None` for a call without GSO. With `gso` false every message is one
/// datagram. Always plans at least one message when `start < len`.
pub(super) fn plan_call(
    len: usize,
    at: impl Fn(usize) -> (SocketAddr, usize),
    start: usize,
    batch: usize,
    gso: bool,
    msgs: &mut Vec<Msg>,
) -> Option<u16> {
    msgs.clear();
    let mut segment: Option<usize> = None;
    let mut longest_single = 0;
    let mut i = start;
    while i < len && msgs.len() < batch {
        let count = if gso { train_len(len, &at, i) } else { 1 };
        let size = at(i).1;
        if count > 1 {
            match segment {
                Some(s) if s == size => {}
                None if size >= longest_single => segment = Some(size),
                _ => break,
            }
        } else {
            if segment.is_some_and(|s| size > s) {
                break;
            }
            longest_single = longest_single.max(size);
        }
        msgs.push(Msg { first: i, count });
        i += count;
    }
    // MAX_SEGMENT keeps every train's size well inside u16.
    segment.and_then(|s| u16::try_from(s).ok())
}

/// How many datagrams from `i` form one train.
fn train_len(len: usize, at: &impl Fn(usize) -> (SocketAddr, usize), i: usize) -> usize {
    let (dest, size) = at(i);
    if size == 0 || size > MAX_SEGMENT {
        return 1;
    }
    let mut count = 1;
    let mut total = size;
    while i + count < len && count < MAX_SEGMENTS {
        let (d, s) = at(i + count);
        if d != dest || s > size || s == 0 || total + s > MAX_GSO_BYTES {
            break;
        }
        count += 1;
        total += s;
        if s < size {
            // A shorter segment can only be the last one.
            break;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], n))
    }

    /// A planned call: its segment size and its messages as (first, count).
    type Call = (Option<u16>, Vec<(usize, usize)>);

    /// Plans every call over `queue`, where each entry is (destination
    /// port, length).
    fn plan_all(queue: &[(u16, usize)], batch: usize, gso: bool) -> Vec<Call> {
        let at = |i: usize| (addr(queue[i].0), queue[i].1);
        let mut msgs = Vec::new();
        let mut calls = Vec::new();
        let mut start = 0;
        while start < queue.len() {
            let seg = plan_call(queue.len(), at, start, batch, gso, &mut msgs);
            assert!(!msgs.is_empty(), "progress");
            let mut expect = start;
            for m in &msgs {
                assert_eq!(m.first, expect, "in order, no gaps");
                expect += m.count;
            }
            start = expect;
            calls.push((seg, msgs.iter().map(|m| (m.first, m.count)).collect()));
        }
        calls
    }

    #[test]
    fn fanout_trains_share_one_call() {
        // Three subscribers, each getting the same three packets of a frame
        // (1200, 1200, 700) and an audio packet first.
        let mut q = Vec::new();
        for sub in 1..=3 {
            q.extend([(sub, 90), (sub, 1200), (sub, 1200), (sub, 700)]);
        }
        let calls = plan_all(&q, 32, true);
        assert_eq!(
            calls,
            vec![(
                Some(1200),
                vec![(0, 1), (1, 3), (4, 1), (5, 3), (8, 1), (9, 3)]
            )]
        );
    }

    #[test]
    fn without_gso_every_message_is_one_datagram_and_batches_split() {
        let q: Vec<(u16, usize)> = (0..5).map(|i| (1, 100 + i)).collect();
        let calls = plan_all(&q, 2, false);
        assert_eq!(
            calls,
            vec![
                (None, vec![(0, 1), (1, 1)]),
                (None, vec![(2, 1), (3, 1)]),
                (None, vec![(4, 1)]),
            ]
        );
    }

    #[test]
    fn a_new_segment_size_or_a_longer_single_starts_a_new_call() {
        let q = [
            (1, 1000),
            (1, 1000),
            (2, 800),
            (2, 800),
            (3, 1100),
            (4, 500),
        ];
        let calls = plan_all(&q, 32, true);
        assert_eq!(
            calls,
            vec![
                (Some(1000), vec![(0, 2)]),
                // 1100 alone is longer than 800: it may not carry S=800.
                (Some(800), vec![(2, 2)]),
                (None, vec![(4, 1), (5, 1)]),
            ]
        );
        // A train after a longer single needs its own call too.
        let calls = plan_all(&[(1, 1300), (2, 900), (2, 900)], 32, true);
        assert_eq!(calls, vec![(None, vec![(0, 1)]), (Some(900), vec![(1, 2)])]);
    }

    #[test]
    fn trains_end_at_a_shorter_segment_a_longer_one_or_the_limits() {
        let q = [(1, 500), (1, 400), (1, 500), (1, 600), (1, 600)];
        let calls = plan_all(&q, 32, true);
        assert_eq!(
            calls,
            vec![(Some(500), vec![(0, 2), (2, 1)]), (Some(600), vec![(3, 2)]),]
        );
        // MAX_SEGMENTS per train.
        let q = vec![(1, 100); MAX_SEGMENTS + 3];
        let calls = plan_all(&q, 32, true);
        assert_eq!(
            calls,
            vec![(Some(100), vec![(0, MAX_SEGMENTS), (MAX_SEGMENTS, 3)])]
        );
        // MAX_GSO_BYTES per train.
        let per = MAX_GSO_BYTES / 1400;
        let q = vec![(1, 1400); per + 1];
        let calls = plan_all(&q, 32, true);
        assert_eq!(calls, vec![(Some(1400), vec![(0, per), (per, 1)])]);
        // Too big for a segment, and empty datagrams, go alone.
        let q = [(1, MAX_SEGMENT + 1), (1, MAX_SEGMENT + 1), (1, 0), (1, 0)];
        let calls = plan_all(&q, 32, true);
        assert_eq!(calls, vec![(None, vec![(0, 1), (1, 1), (2, 1), (3, 1)])]);
    }
}
