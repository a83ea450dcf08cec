//! Sizes of the MLS messages real clients send, as the signaling server
//! sees them (base64): a KeyPackage, and for groups of 50 and 1000 members
//! the commit and Welcome that add everyone at once and those that add one
//! more member. The signaling size caps are chosen from these.
//!
//! `cargo run -p testkit --features mls --example mls_sizes`

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

fn main() {
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
