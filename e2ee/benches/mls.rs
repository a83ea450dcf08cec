//! MLS commit costs in groups of 10 and 100 members.
//!
//! Each group is built once: the founder adds everyone with one commit, then
//! every member self-updates once (processed by all others), so the ratchet
//! tree has no blank parent nodes, as after a round of periodic updates.
//!
//! - `create_self_update/N`: a member creates a self-update commit (path
//!   encryption to the whole copath). Cleared right after, so every
//!   iteration starts from the same state.
//! - `create_add_remove/N`: a commit adding one KeyPackage (validated) and
//!   removing one member, as when a participant is replaced. Cleared too.
//! - `process_self_update/N`: a member processes and merges another member's
//!   self-update. The committer creates and merges a fresh commit in the
//!   (untimed) setup of each iteration, so the two stay in step.
//! - `process_add_remove/N`: the same for a commit that adds a fresh client
//!   and removes the one added before it (group size stays N).

use std::{hint::black_box, time::Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use e2ee::group::{MlsClient, Processed};
use testkit::mls::client;

fn build_group(n: usize) -> Vec<MlsClient> {
    let start = Instant::now();
    let names: Vec<String> = (0..n).map(|i| format!("member-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut members = testkit::mls::group(&names);
    for i in 0..n {
        let update = members[i].self_update().expect("update");
        members[i].merge_pending_commit().expect("merge");
        for (j, m) in members.iter_mut().enumerate() {
            if j != i {
                m.process(&update.commit).expect("process");
            }
        }
    }
    let code = members[0].verification_code();
    assert!(members.iter().all(|m| m.verification_code() == code));
    eprintln!(
        "built a warm group of {n} in {:.1?} (epoch {:?})",
        start.elapsed(),
        members[0].epoch()
    );
    members
}

fn bench_size(c: &mut Criterion, n: usize) {
    let mut members = build_group(n);
    let mut group = c.benchmark_group("mls");
    let last_leaf = (n - 1) as u32;

    {
        let committer = &mut members[2];
        group.bench_function(BenchmarkId::new("create_self_update", n), |b| {
            b.iter(|| {
                let commit = committer.self_update().expect("update");
                committer.clear_pending_commit();
                black_box(commit)
            })
        });
        let kp = client("newcomer").key_package().expect("kp");
        group.bench_function(BenchmarkId::new("create_add_remove", n), |b| {
            b.iter(|| {
                let commit = committer.commit(&[&kp], &[last_leaf]).expect("commit");
                committer.clear_pending_commit();
                black_box(commit)
            })
        });
    }

    let (head, tail) = members.split_at_mut(1);
    let committer = &mut head[0];
    let receiver = &mut tail[0];
    group.bench_function(BenchmarkId::new("process_self_update", n), |b| {
        b.iter_batched(
            || {
                let commit = committer.self_update().expect("update");
                committer.merge_pending_commit().expect("merge");
                commit.commit
            },
            |commit| match receiver.process(&commit) {
                Ok(p @ Processed::Commit { .. }) => black_box(p),
                other => panic!("unexpected {other:?}"),
            },
            BatchSize::SmallInput,
        )
    });

    let mut victim = last_leaf;
    let mut serial = 0u64;
    group.bench_function(BenchmarkId::new("process_add_remove", n), |b| {
        b.iter_batched(
            || {
                serial += 1;
                let mut newcomer = client(&format!("newcomer-{serial}"));
                let kp = newcomer.key_package().expect("kp");
                let commit = committer.commit(&[&kp], &[victim]).expect("commit");
                committer.merge_pending_commit().expect("merge");
                victim = committer
                    .members()
                    .iter()
                    .find(|m| m.signature_key == newcomer.signature_key())
                    .map(|m| m.leaf)
                    .expect("newcomer leaf");
                commit.commit
            },
            |commit| match receiver.process(&commit) {
                Ok(p @ Processed::Commit { .. }) => black_box(p),
                other => panic!("unexpected {other:?}"),
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    assert_eq!(committer.verification_code(), receiver.verification_code());
}

fn commits(c: &mut Criterion) {
    for n in [10, 100] {
        bench_size(c, n);
    }
}

criterion_group!(benches, commits);
criterion_main!(benches);
