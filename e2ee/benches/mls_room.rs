//! MLS costs of joins and leaves against room size (10, 100, 300, 1,000).
//!
//! The group is shaped the way our rooms form: the committer (leaf 0, the
//! lowest present leaf, see `client-core`'s commit policy) added everyone
//! else, so only its own direct path holds keys and the rest of the tree's
//! parent nodes are blank. One member (`receiver`, leaf 1) processes what
//! the committer sends; the other members exist only as the KeyPackages
//! they were added with, since nothing here depends on their state.
//!
//! - `create_add_1/N`, `create_add_10/N`: the committer creates a commit
//!   (and Welcome) adding 1 or 10 KeyPackages. Cleared after each.
//! - `create_remove_1/N`: a commit removing one member (a path is required).
//! - `process_add_1/N`, `process_remove_1/N`: the receiver processes and
//!   merges them. One member is added, then removed again, so the group
//!   size stays N; only the receiver's processing is timed.
//! - `join_welcome_1/N`: a newcomer joins from the Welcome of a commit
//!   adding it (the Welcome carries the ratchet tree).
//!
//! Sizes of the messages are printed as `sizes/N` lines before the timings.
//!
//! `cargo bench -p e2ee --bench mls_room` (one size: append `-- /300`).

use std::{hint::black_box, time::Duration, time::Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use e2ee::group::{MlsClient, Processed};
use testkit::mls::client;

const SIZES: [usize; 4] = [10, 100, 300, 1000];

struct Room {
    committer: MlsClient,
    receiver: MlsClient,
    size: usize,
}

/// A room of `n` members, all added by the committer in one commit.
fn build_room(n: usize) -> Room {
    let start = Instant::now();
    let mut committer = client("member-0");
    committer.create_group(b"room").expect("create");
    let mut receiver = client("member-1");
    let mut kps = vec![receiver.key_package().expect("kp")];
    kps.extend((2..n).map(|i| client(&format!("member-{i}")).key_package().expect("kp")));
    let refs: Vec<&[u8]> = kps.iter().map(Vec::as_slice).collect();
    let commit = committer.commit(&refs, &[]).expect("commit");
    committer.merge_pending_commit().expect("merge");
    assert!(
        receiver
            .join(&commit.welcome.expect("welcome"))
            .expect("join")
    );
    eprintln!("built a room of {n} in {:.1?}", start.elapsed());
    Room {
        committer,
        receiver,
        size: n,
    }
}

fn fresh_key_packages(count: usize, serial: &mut u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|_| {
            *serial += 1;
            client(&format!("newcomer-{serial}"))
                .key_package()
                .expect("kp")
        })
        .collect()
}

fn print_sizes(room: &mut Room, serial: &mut u64) {
    let n = room.size;
    let one = fresh_key_packages(1, serial);
    let ten = fresh_key_packages(10, serial);
    let add_1 = room.committer.commit(&[&one[0]], &[]).expect("commit");
    room.committer.clear_pending_commit();
    let refs: Vec<&[u8]> = ten.iter().map(Vec::as_slice).collect();
    let add_10 = room.committer.commit(&refs, &[]).expect("commit");
    room.committer.clear_pending_commit();
    let remove = room
        .committer
        .commit(&[], &[(n - 1) as u32])
        .expect("commit");
    room.committer.clear_pending_commit();
    let len = |w: &Option<Vec<u8>>| w.as_ref().map_or(0, Vec::len);
    eprintln!(
        "sizes/{n}: add_1 commit {} B, Welcome {} B; add_10 commit {} B, Welcome {} B; remove_1 commit {} B",
        add_1.commit.len(),
        len(&add_1.welcome),
        add_10.commit.len(),
        len(&add_10.welcome),
        remove.commit.len(),
    );
}

fn process(receiver: &mut MlsClient, commit: &[u8]) -> Duration {
    let start = Instant::now();
    match receiver.process(commit) {
        Ok(p @ Processed::Commit { .. }) => {
            black_box(p);
        }
        other => panic!("unexpected {other:?}"),
    }
    start.elapsed()
}

fn bench_size(c: &mut Criterion, n: usize) {
    let mut room = build_room(n);
    let mut serial = 0u64;
    print_sizes(&mut room, &mut serial);
    let mut group = c.benchmark_group("mls_room");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));

    for count in [1, 10] {
        let kps = fresh_key_packages(count, &mut serial);
        let refs: Vec<&[u8]> = kps.iter().map(Vec::as_slice).collect();
        let committer = &mut room.committer;
        group.bench_function(BenchmarkId::new(format!("create_add_{count}"), n), |b| {
            b.iter(|| {
                let commit = committer.commit(&refs, &[]).expect("commit");
                committer.clear_pending_commit();
                black_box(commit)
            })
        });
    }
    {
        let committer = &mut room.committer;
        let last = (n - 1) as u32;
        group.bench_function(BenchmarkId::new("create_remove_1", n), |b| {
            b.iter(|| {
                let commit = committer.commit(&[], &[last]).expect("commit");
                committer.clear_pending_commit();
                black_box(commit)
            })
        });
    }

    // Adds one member and removes it again; `timed` says which of the two
    // processings count.
    let add_then_remove = |room: &mut Room, serial: &mut u64, timed_add: bool| {
        let kp = fresh_key_packages(1, serial).remove(0);
        let add = room.committer.commit(&[&kp], &[]).expect("add");
        room.committer.merge_pending_commit().expect("merge");
        let add_time = process(&mut room.receiver, &add.commit);
        let leaf = (room.size) as u32;
        let remove = room.committer.commit(&[], &[leaf]).expect("remove");
        assert_eq!(remove.removed, [leaf]);
        room.committer.merge_pending_commit().expect("merge");
        let remove_time = process(&mut room.receiver, &remove.commit);
        if timed_add { add_time } else { remove_time }
    };
    for (name, timed_add) in [("process_add_1", true), ("process_remove_1", false)] {
        group.bench_function(BenchmarkId::new(name, n), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| add_then_remove(&mut room, &mut serial, timed_add))
                    .sum()
            })
        });
    }

    group.bench_function(BenchmarkId::new("join_welcome_1", n), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                serial += 1;
                let mut newcomer = client(&format!("newcomer-{serial}"));
                let kp = newcomer.key_package().expect("kp");
                let commit = room.committer.commit(&[&kp], &[]).expect("commit");
                room.committer.clear_pending_commit();
                let welcome = commit.welcome.expect("welcome");
                let start = Instant::now();
                assert!(newcomer.join(&welcome).expect("join"));
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
    assert_eq!(
        room.committer.verification_code(),
        room.receiver.verification_code()
    );
}

fn rooms(c: &mut Criterion) {
    for n in SIZES {
        bench_size(c, n);
    }
}

criterion_group!(benches, rooms);
criterion_main!(benches);
