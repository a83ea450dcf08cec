//! The hostile SRTP peer itself: its protection is right (unmutated hostile
//! packets are authenticated and forwarded), mutated ones are counted as
//! drops, and honest media keeps flowing.

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
    assert!(out.honest_received * 10 >= out.honest_sent * 9);
}
