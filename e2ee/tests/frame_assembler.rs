//! FrameAssembler: packets of SFrame ciphertexts back into whole frames.

use e2ee::frame::{AssembledFrame, FrameAssembler, packetize};

/// One frame's packets: (seq, ts, start, end, payload).
type Pkt = (u16, u32, bool, bool, Vec<u8>);

fn packets(first_seq: u16, ts: u32, data: &[u8], max_payload: usize) -> Vec<Pkt> {
    packetize(data, max_payload)
        .enumerate()
        .map(|(i, c)| {
            (
                first_seq.wrapping_add(i as u16),
                ts,
                c.start,
                c.end,
                c.payload.to_vec(),
            )
        })
        .collect()
}

fn push_all(a: &mut FrameAssembler, pkts: &[Pkt]) -> Vec<AssembledFrame> {
    pkts.iter()
        .filter_map(|(seq, ts, s, e, p)| a.push(*seq, *ts, *s, *e, p))
        .collect()
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(7) ^ seed).collect()
}

#[test]
fn in_order_frames() {
    let mut a = FrameAssembler::new(100_000);
    let (f1, f2, f3) = (data(3000, 1), data(1, 2), data(0, 3));
    let mut pkts = packets(10, 1000, &f1, 1200);
    pkts.extend(packets(13, 4000, &f2, 1200));
    pkts.extend(packets(14, 7000, &f3, 1200));
    let out = push_all(&mut a, &pkts);
    assert_eq!(out.len(), 3);
    assert_eq!(
        (
            out[0].data.as_slice(),
            out[0].timestamp,
            out[0].first_seq,
            out[0].last_seq
        ),
        (&f1[..], 1000, 10, 12)
    );
    assert_eq!(
        (out[1].data.as_slice(), out[1].first_seq, out[1].last_seq),
        (&f2[..], 13, 13)
    );
    assert_eq!((out[2].data.as_slice(), out[2].first_seq), (&f3[..], 14));
    assert_eq!(a.discarded(), 0);
}

#[test]
fn reordered_within_and_across_frames() {
    let mut a = FrameAssembler::new(100_000);
    let (f1, f2) = (data(5000, 1), data(2500, 2));
    let p1 = packets(100, 1000, &f1, 1000); // seqs 100..=104
    let p2 = packets(105, 4000, &f2, 1000); // seqs 105..=107
    // f2's packets interleave with f1's tail; f1 completes last.
    let order = [
        &p1[4], &p1[0], &p2[1], &p1[2], &p2[0], &p1[1], &p2[2], &p1[3],
    ];
    let mut out = Vec::new();
    for (seq, ts, s, e, p) in order {
        if let Some(f) = a.push(*seq, *ts, *s, *e, p) {
            out.push(f);
        }
    }
    // f2 completed first (its last packet came before f1's), which
    // supersedes f1: per the contract an incomplete older frame is dropped
    // once a newer one is complete.
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data, f2);
    assert_eq!(a.discarded(), 1);

    // When the older frame completes first, both come out in order.
    let mut a = FrameAssembler::new(100_000);
    let order = [
        &p1[3], &p2[0], &p1[1], &p1[0], &p1[4], &p1[2], &p2[2], &p2[1],
    ];
    let mut out = Vec::new();
    for (seq, ts, s, e, p) in order {
        if let Some(f) = a.push(*seq, *ts, *s, *e, p) {
            out.push(f);
        }
    }
    assert_eq!(
        out.iter().map(|f| f.data.clone()).collect::<Vec<_>>(),
        [f1, f2]
    );
    assert_eq!(a.discarded(), 0);
}

#[test]
fn duplicates_are_ignored() {
    let mut a = FrameAssembler::new(100_000);
    let f1 = data(3000, 1);
    let p = packets(7, 90, &f1, 1200);
    assert!(a.push(p[0].0, p[0].1, p[0].2, p[0].3, &p[0].4).is_none());
    assert!(a.push(p[0].0, p[0].1, p[0].2, p[0].3, &p[0].4).is_none());
    assert!(a.push(p[1].0, p[1].1, p[1].2, p[1].3, &p[1].4).is_none());
    let f = a
        .push(p[2].0, p[2].1, p[2].2, p[2].3, &p[2].4)
        .expect("complete");
    assert_eq!(f.data, f1);
    // Copies after the frame went out change nothing.
    assert!(push_all(&mut a, &p).is_empty());
    // A duplicated single-packet frame comes out once.
    let audio = packets(10, 960, b"opus", 1200);
    assert_eq!(push_all(&mut a, &audio).len(), 1);
    assert!(push_all(&mut a, &audio).is_empty());
    assert_eq!(a.discarded(), 0);
}

#[test]
fn lost_middle_packet_is_counted_once_superseded() {
    let mut a = FrameAssembler::new(100_000);
    let (f1, f2) = (data(3600, 1), data(2400, 2));
    let mut p1 = packets(200, 3000, &f1, 1200);
    let lost = p1.remove(1);
    assert!(push_all(&mut a, &p1).is_empty(), "incomplete");
    assert_eq!(
        a.discarded(),
        0,
        "not given up before a newer frame completes"
    );
    let out = push_all(&mut a, &packets(203, 6000, &f2, 1200));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data, f2);
    assert_eq!(a.discarded(), 1);
    // The retransmission arrives too late: ignored, not counted again.
    assert!(a.push(lost.0, lost.1, lost.2, lost.3, &lost.4).is_none());
    assert_eq!(a.discarded(), 1);
}

#[test]
fn late_single_packet_frame_is_still_delivered() {
    let mut a = FrameAssembler::new(1000);
    assert_eq!(
        a.push(11, 1920, true, true, b"b").map(|f| f.data),
        Some(b"b".to_vec())
    );
    assert_eq!(
        a.push(10, 960, true, true, b"a").map(|f| f.data),
        Some(b"a".to_vec())
    );
    assert!(a.push(10, 960, true, true, b"a").is_none(), "duplicate");
}

#[test]
fn sequence_numbers_wrap() {
    let mut a = FrameAssembler::new(100_000);
    let f1 = data(6000, 1);
    let f2 = data(10, 2);
    let p1 = packets(65533, 1, &f1, 1200); // 65533, 65534, 65535, 0, 1
    assert_eq!(p1.last().map(|p| p.0), Some(1));
    let mut rev = p1.clone();
    rev.reverse();
    let out = push_all(&mut a, &rev);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].first_seq, out[0].last_seq), (65533, 1));
    assert_eq!(out[0].data, f1);
    let out = push_all(&mut a, &packets(2, 2, &f2, 1200));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].data, f2);
    assert_eq!(a.discarded(), 0);
}

#[test]
fn oversize_frame_is_discarded() {
    let mut a = FrameAssembler::new(4000);
    let big = data(5000, 1);
    assert!(push_all(&mut a, &packets(0, 1, &big, 1000)).is_empty());
    assert_eq!(a.discarded(), 1);
    let ok = data(4000, 2);
    let out = push_all(&mut a, &packets(5, 2, &ok, 1000));
    assert_eq!(out.len(), 1, "a frame of exactly the limit passes");
    assert_eq!(a.discarded(), 1);
}

#[test]
fn frames_sharing_a_timestamp_are_told_apart_by_start_and_end() {
    // Two spatial layers of one picture: same RTP timestamp, two ciphertexts.
    let mut a = FrameAssembler::new(100_000);
    let (l0, l1) = (data(1500, 1), data(2500, 2));
    let mut pkts = packets(50, 777, &l0, 1000);
    pkts.extend(packets(52, 777, &l1, 1000));
    let out = push_all(&mut a, &pkts);
    assert_eq!(
        out.iter().map(|f| f.data.clone()).collect::<Vec<_>>(),
        [l0, l1]
    );
}

#[test]
fn garbage_never_panics_and_memory_stays_bounded() {
    let mut a = FrameAssembler::new(2000);
    let mut x = 0x1234_5678_9abc_def0u64;
    for _ in 0..50_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x >> 40) as usize % 1500;
        let payload = vec![x as u8; len];
        let _ = a.push(
            (x >> 16) as u16 % 64,
            (x >> 32) as u32 % 4,
            x & 1 == 0,
            x & 2 == 0,
            &payload,
        );
        let _ = a.push((x >> 24) as u16, 0, x & 4 == 0, x & 8 == 0, &[]);
    }
    assert!(a.discarded() > 0);
}

#[test]
fn reorder_depth_waits_for_a_retransmission() {
    let mut a = FrameAssembler::with_reorder_depth(100_000, 2);
    let frames: Vec<Vec<u8>> = (0..5).map(|i| data(2400, i)).collect();
    let pkts: Vec<Vec<Pkt>> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| packets(1000 + 2 * i as u16, 3000 * i as u32, f, 1200))
        .collect();
    // Frame 0 loses its second packet; frames 1 and 2 complete meanwhile.
    assert!(push_all(&mut a, &pkts[0][..1]).is_empty());
    assert_eq!(push_all(&mut a, &pkts[1]).len(), 1);
    assert_eq!(push_all(&mut a, &pkts[2]).len(), 1);
    // The retransmission still completes frame 0, late.
    let late = push_all(&mut a, &pkts[0][1..]);
    assert_eq!(late.len(), 1);
    assert_eq!(
        (late[0].data.as_slice(), late[0].first_seq),
        (&frames[0][..], 1000)
    );
    assert_eq!(a.discarded(), 0);
    // A copy of it is ignored.
    assert!(push_all(&mut a, &pkts[0]).is_empty());

    // Frame 3 loses a packet and three newer frames complete: given up.
    assert!(push_all(&mut a, &pkts[3][..1]).is_empty());
    assert_eq!(push_all(&mut a, &pkts[4]).len(), 1);
    for i in 5..7u16 {
        let f = data(100, i as u8);
        assert_eq!(
            push_all(
                &mut a,
                &packets(1000 + 2 * i, 3000 * u32::from(i), &f, 1200)
            )
            .len(),
            1
        );
    }
    assert_eq!(a.discarded(), 1);
    assert!(push_all(&mut a, &pkts[3][1..]).is_empty(), "too late now");
    assert_eq!(a.discarded(), 1);
}
