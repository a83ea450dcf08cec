//! The hostile SRTP peer itself: its protection is right (unmutated hostile
//! packets are authenticated and forwarded), mutated ones are counted as
//! drops, and honest media keeps flowing.

use fuzz_harness::srtp::Fate;
use std::path::Path;

fn seed(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus/srtp_after_dtls")
        .join(name);
    std::fs::read(p).expect("seed")
}

#[test]
fn unmutated_packets_protected_with_the_negotiated_keys_are_forwarded() {
    let out = fuzz_harness::srtp::run(&seed("templates-unmutated"));
    println!("{out:?}");
    assert_eq!(
        out.protected, out.injected,
        "every unmutated packet protects"
    );
    assert!(out.injected >= 11);
    assert!(
        out.hostile_forwarded >= 1,
        "the plane authenticated none: wrong keys"
    );
    assert_eq!(out.honest_received, out.honest_sent);
}

#[test]
fn mutated_packets_are_dropped_and_counted_while_honest_media_flows() {
    let out = fuzz_harness::srtp::run(&seed("mutated"));
    println!("{out:?}");
    assert!(out.injected >= 10);
    let dropped: u64 = out.drops.iter().map(|(_, n)| n).sum();
    assert!(dropped > 0, "nothing counted as dropped: {:?}", out.drops);
    // Every hostile datagram is accounted for: forwarded (or counted by
    // forwarding), read as SRTCP, consumed as padding, or counted as a drop.
    assert_eq!(
        out.count(Fate::Uncounted),
        0,
        "dropped without a count: {:?}",
        out.uncounted
    );
    assert!(
        out.count(Fate::Dropped) >= 3,
        "the raw and broken packets are counted: {:?}",
        out.fates
    );
    assert!(out.honest_received * 10 >= out.honest_sent * 9);
}

#[test]
fn random_inputs_leave_no_hostile_datagram_uncounted() {
    // A bounded, seeded sweep beyond the two seeds: whatever the mutations,
    // each hostile datagram is received, read, consumed or counted (`run`
    // itself fails on one that is not).
    let mut rng = testkit::rng::Rng::new(12);
    let mut fates = [0u64; 5];
    for _ in 0..8 {
        let out = fuzz_harness::srtp::run(&rng.bytes(400));
        for (i, f) in [
            Fate::Dropped,
            Fate::Received,
            Fate::RtcpRead,
            Fate::Padding,
            Fate::Uncounted,
        ]
        .into_iter()
        .enumerate()
        {
            fates[i] += out.count(f);
        }
    }
    println!("dropped, received, rtcp read, padding, uncounted: {fates:?}");
    assert_eq!(fates[4], 0);
    assert!(fates[0] > 0 && fates[1] + fates[2] > 0, "{fates:?}");
}
