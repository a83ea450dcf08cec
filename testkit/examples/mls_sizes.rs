//! Sizes of the MLS messages real clients send, as the signaling server
//! sees them (base64): a KeyPackage, and for groups of 50 and 1000 members
//! the commit and Welcome that add everyone at once and those that add one
//! more member. The signaling size caps are chosen from these.
//!
//! `cargo run -p testkit --features mls --example mls_sizes`
//!
//! With the argument `leaves`, instead: the Welcome into groups whose every
//! leaf is as large as the delivery service's leaf cap allows (what
//! oversized leaves can do to the Welcome cap).

use e2ee::group::Commit;

/// Base64 length of `n` bytes.
fn b64(n: usize) -> usize {
    n.div_ceil(3) * 4
}

fn report(what: &str, c: &Commit) {
    let welcome = c.welcome.as_ref().map_or(0, Vec::len);
    println!(
        "{what}: commit {} B ({} base64), welcome {welcome} B ({} base64)",
        c.commit.len(),
        b64(c.commit.len()),
        b64(welcome)
    );
}

fn key_package(name: &str) -> Vec<u8> {
    testkit::mls::client(name).key_package().expect("kp")
}

/// The delivery service's leaf cap (signaling's `MAX_LEAF_NODE_BYTES`).
const LEAF_CAP: usize = 2048;
/// Padding that brings a leaf of a short identity just under the cap (an
/// honest one is under 200 bytes; the extension adds a few more).
const LEAF_PAD: usize = LEAF_CAP - 200;

/// Welcomes into groups of `n` members whose leaves are all near the cap.
fn padded_leaves() {
    use testkit::mls::RawMember;
    for n in [50usize, 150] {
        let mut founder = RawMember::new("member-0");
        founder.found(b"room", LEAF_PAD);
        let kps: Vec<Vec<u8>> = (1..n)
            .map(|i| RawMember::new(&format!("member-{i}")).key_package(LEAF_PAD))
            .collect();
        let refs: Vec<&[u8]> = kps.iter().map(Vec::as_slice).collect();
        let (commit, welcome) = founder.add(&refs);
        founder.settle(true);
        println!(
            "{n} members, leaves of about {LEAF_CAP} B, all added at once: commit {} base64, welcome {} base64",
            b64(commit.len()),
            b64(welcome.len())
        );
        let newcomer = RawMember::new("newcomer").key_package(LEAF_PAD);
        let (_, welcome) = founder.add(&[&newcomer]);
        println!(
            "{n} members, leaves of about {LEAF_CAP} B, one more added: welcome {} base64",
            b64(welcome.len())
        );
    }
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("leaves") {
        padded_leaves();
        return;
    }
    let kp = key_package("probe");
    println!("key_package: {} B ({} base64)", kp.len(), b64(kp.len()));
    for size in [50usize, 1000] {
        let mut founder = testkit::mls::client("member-0");
        founder.create_group(b"room").expect("create");
        let kps: Vec<Vec<u8>> = (1..size)
            .map(|i| key_package(&format!("member-{i}")))
            .collect();
        let refs: Vec<&[u8]> = kps.iter().map(Vec::as_slice).collect();
        let bulk = founder.commit(&refs, &[]).expect("commit");
        founder.merge_pending_commit().expect("merge");
        report(&format!("{size} members, all added at once"), &bulk);
        let one = founder
            .commit(&[&key_package("newcomer")], &[])
            .expect("commit");
        report(&format!("{size} members, one more added"), &one);
    }
}
