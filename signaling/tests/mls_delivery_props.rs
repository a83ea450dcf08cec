//! A property test of the MLS delivery service: random sequences of joins,
//! leaves, honest commits, replayed commits, forged commits, garbage and
//! chat, driven through the real delivery log with real MLS clients.
//!
//! After every step: nothing panicked; the epoch moved only when a valid
//! commit was accepted (by exactly one); every replayed, forged or garbage
//! message was refused; and the roster invariant holds: every leaf belongs
//! to a participant that is present or left since the last commit, no
//! participant holds two leaves, and every honest member's MLS view (epoch,
//! members by leaf) equals the delivery service's.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use e2ee::group::{MlsClient, MlsConfig};
use proptest::prelude::*;
use signaling::proto::{MlsEntry, ServerMessage};
use signaling::server::delivery_log::{CommitMsg, DeliveryLog, LogLimits, Logged};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Identities that come and go.
const PEOPLE: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Join(usize),
    Leave(usize),
    HonestCommit(usize),
    Replay(usize, usize),
    Garbage(usize, Vec<u8>),
    BitFlip(usize, usize),
    RemovePresent(usize, usize),
    SendOthers(usize, usize),
    BadKeyPackage(usize, Vec<u8>),
    BadGroupInfo(usize, Vec<u8>),
    Chat(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let who = 0..PEOPLE;
    prop_oneof![
        3 => who.clone().prop_map(Op::Join),
        1 => who.clone().prop_map(Op::Leave),
        3 => who.clone().prop_map(Op::HonestCommit),
        2 => (who.clone(), any::<usize>()).prop_map(|(a, b)| Op::Replay(a, b)),
        1 => (who.clone(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(a, b)| Op::Garbage(a, b)),
        2 => (who.clone(), any::<usize>()).prop_map(|(a, b)| Op::BitFlip(a, b)),
        1 => (who.clone(), who.clone()).prop_map(|(a, b)| Op::RemovePresent(a, b)),
        1 => (who.clone(), who.clone()).prop_map(|(a, b)| Op::SendOthers(a, b)),
        1 => (who.clone(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(a, b)| Op::BadKeyPackage(a, b)),
        1 => (who.clone(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(a, b)| Op::BadGroupInfo(a, b)),
        1 => who.prop_map(Op::Chat),
    ]
}

fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

fn identity(i: usize) -> String {
    format!("id{i}")
}

fn entry(l: &Logged) -> MlsEntry {
    match serde_json::from_str(&l.text).unwrap() {
        ServerMessage::Mls { entry, .. } => entry,
        other => panic!("{other:?}"),
    }
}

/// One person's current session.
struct Person {
    pid: String,
    mls: MlsClient,
}

struct Sim {
    log: DeliveryLog,
    present: BTreeMap<usize, Person>,
    sessions: usize,
    /// Every commit the log accepted, as sent.
    accepted: Vec<CommitMsg>,
    /// Participant ids whose latest KeyPackage awaits a commit.
    waiting: BTreeMap<String, Vec<u8>>,
}

impl Sim {
    fn new() -> Self {
        Self {
            log: DeliveryLog::new(LogLimits {
                max_entries: 10_000,
                max_bytes: 1 << 26,
            }),
            present: BTreeMap::new(),
            sessions: 0,
            accepted: Vec::new(),
            waiting: BTreeMap::new(),
        }
    }

    fn pid(&self, i: usize) -> Option<String> {
        self.present.get(&i).map(|p| p.pid.clone())
    }

    /// Handles entries the log returned (a reset makes a new group).
    fn on_entries(&mut self, entries: &[Arc<Logged>]) {
        for e in entries {
            if let MlsEntry::Reset { group_id, founder } = entry(e) {
                self.waiting.clear();
                let ids: Vec<usize> = self.present.keys().copied().collect();
                for i in &ids {
                    self.present.get_mut(i).unwrap().mls.leave_group();
                }
                let f = ids
                    .iter()
                    .copied()
                    .find(|i| self.present[i].pid == founder)
                    .unwrap();
                self.found(f, &group_id);
                for i in ids.into_iter().filter(|i| *i != f) {
                    self.send_key_package(i);
                }
            }
        }
    }

    fn found(&mut self, i: usize, group_id: &str) {
        let p = self.present.get_mut(&i).unwrap();
        p.mls.create_group(&hex::decode(group_id).unwrap()).unwrap();
        let gi = b64(&p.mls.group_info().unwrap());
        let pid = p.pid.clone();
        assert_eq!(self.log.group_info(&pid, &gi), Ok(true));
    }

    fn send_key_package(&mut self, i: usize) {
        let p = self.present.get_mut(&i).unwrap();
        let kp = p.mls.key_package().unwrap();
        let pid = p.pid.clone();
        let entries = self.log.key_package(&pid, b64(&kp)).unwrap();
        self.waiting.insert(pid, kp);
        self.on_entries(&entries);
    }

    fn join(&mut self, i: usize) {
        if self.present.contains_key(&i) {
            return;
        }
        self.sessions += 1;
        let pid = format!("p{i}-{}", self.sessions);
        let info = self.log.join(&pid, &identity(i));
        let mls = MlsClient::new(&identity(i), MlsConfig::default()).unwrap();
        self.present.insert(i, Person { pid, mls });
        if info.founder {
            self.waiting.clear();
            self.found(i, &info.group_id);
        } else {
            self.send_key_package(i);
        }
    }

    fn leave(&mut self, i: usize) {
        if let Some(p) = self.present.remove(&i) {
            self.waiting.remove(&p.pid);
            let reset = self.log.departed(&p.pid);
            self.on_entries(reset.as_slice());
        }
    }

    fn in_group(&self, i: usize) -> bool {
        self.present.get(&i).is_some_and(|p| p.mls.in_group())
    }

    /// What the roster calls for, as `i` sees the group.
    fn honest_changes(&self, i: usize) -> (Vec<String>, Vec<Vec<u8>>, Vec<u32>) {
        let owners: BTreeMap<u32, String> = self.log.leaf_owners().into_iter().collect();
        let present: BTreeSet<String> = self.present.values().map(|p| p.pid.clone()).collect();
        let removes: Vec<u32> = owners
            .iter()
            .filter(|(_, pid)| !present.contains(*pid))
            .map(|(l, _)| *l)
            .collect();
        let mine = &self.present[&i].pid;
        let (pids, kps) = self
            .waiting
            .iter()
            .filter(|(pid, _)| *pid != mine && present.contains(*pid))
            .map(|(p, k)| (p.clone(), k.clone()))
            .unzip();
        (pids, kps, removes)
    }

    fn honest_commit(&mut self, i: usize) {
        if !self.in_group(i) {
            return;
        }
        let (pids, kps, removes) = self.honest_changes(i);
        let p = self.present.get_mut(&i).unwrap();
        let epoch = p.mls.epoch().unwrap();
        let refs: Vec<&[u8]> = kps.iter().map(Vec::as_slice).collect();
        let commit = if refs.is_empty() && removes.is_empty() {
            p.mls.self_update().unwrap()
        } else {
            p.mls.commit(&refs, &removes).unwrap()
        };
        assert_eq!(commit.added.len(), refs.len());
        let msg = CommitMsg {
            epoch,
            commit: b64(&commit.commit),
            welcome: commit.welcome.as_deref().map(b64),
        };
        let pid = p.pid.clone();
        let before = self.log.epoch();
        let logged = self
            .log
            .commit(&pid, msg.clone())
            .unwrap_or_else(|e| panic!("an honest commit was refused: {e:?}"));
        assert_eq!(self.log.epoch(), before + 1);
        let MlsEntry::Commit { added, .. } = entry(&logged) else {
            panic!("a commit entry")
        };
        assert_eq!(added, pids);
        self.accepted.push(msg.clone());
        for pid in &pids {
            self.waiting.remove(pid);
        }
        let bytes = B64.decode(&msg.commit).unwrap();
        let ids: Vec<usize> = self.present.keys().copied().collect();
        for j in ids {
            let q = self.present.get_mut(&j).unwrap();
            if j == i {
                q.mls.merge_pending_commit().unwrap();
            } else if pids.contains(&q.pid) {
                let w = B64.decode(msg.welcome.as_ref().unwrap()).unwrap();
                assert!(q.mls.join(&w).unwrap());
            } else if q.mls.in_group() {
                q.mls.process(&bytes).unwrap();
            }
        }
    }

    /// A commit `make` builds with `i`'s client, discarded there (never
    /// merged), as the wire would carry it.
    fn unsent(&mut self, i: usize, make: impl FnOnce(&mut MlsClient) -> Vec<u8>) -> CommitMsg {
        let p = self.present.get_mut(&i).unwrap();
        let epoch = p.mls.epoch().unwrap();
        let commit = make(&mut p.mls);
        p.mls.clear_pending_commit();
        CommitMsg {
            epoch,
            commit: b64(&commit),
            welcome: None,
        }
    }

    /// A message that must be refused, from `i`; checks that it was and
    /// that it changed nothing.
    fn must_refuse(&mut self, i: usize, msg: CommitMsg) {
        let Some(pid) = self.pid(i) else { return };
        let before = (
            self.log.epoch(),
            self.log.last_seq(),
            self.log.leaf_owners(),
        );
        assert!(
            self.log.commit(&pid, msg).is_err(),
            "a bad commit was accepted"
        );
        assert_eq!(
            before,
            (
                self.log.epoch(),
                self.log.last_seq(),
                self.log.leaf_owners()
            )
        );
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Join(i) => self.join(i),
            Op::Leave(i) => self.leave(i),
            Op::HonestCommit(i) => self.honest_commit(i),
            Op::Replay(i, k) => {
                if !self.accepted.is_empty() {
                    let mut m = self.accepted[k % self.accepted.len()].clone();
                    m.epoch = self.log.epoch();
                    self.must_refuse(i, m);
                }
            }
            Op::Garbage(i, bytes) => {
                let m = CommitMsg {
                    epoch: self.log.epoch(),
                    commit: b64(&bytes),
                    welcome: None,
                };
                self.must_refuse(i, m);
            }
            Op::BitFlip(i, at) => {
                // A valid commit of `i`'s with one bit flipped.
                if !self.in_group(i) {
                    return;
                }
                let mut m = self.unsent(i, |c| c.self_update().unwrap().commit);
                let mut c = B64.decode(&m.commit).unwrap();
                // Only the signed part: the trailing tags (confirmation and
                // membership, about 70 bytes) are MACs under group secrets
                // the server cannot check; members refuse a bad one and
                // report (see docs/e2ee.md).
                let signed = c.len().saturating_sub(140).max(1);
                let bit = at % (signed * 8);
                c[bit / 8] ^= 1 << (bit % 8);
                m.commit = b64(&c);
                self.must_refuse(i, m);
            }
            Op::RemovePresent(i, j) => {
                if i == j || !self.in_group(i) {
                    return;
                }
                let Some(target) = self.pid(j) else { return };
                let owners = self.log.leaf_owners();
                let Some((leaf, _)) = owners.iter().find(|(_, p)| *p == target) else {
                    return;
                };
                let leaf = *leaf;
                let m = self.unsent(i, |c| c.commit(&[], &[leaf]).unwrap().commit);
                self.must_refuse(i, m);
            }
            Op::SendOthers(i, j) => {
                if i == j || !self.in_group(j) {
                    return;
                }
                let m = self.unsent(j, |c| c.self_update().unwrap().commit);
                self.must_refuse(i, m);
            }
            Op::BadKeyPackage(i, bytes) => {
                if let Some(pid) = self.pid(i) {
                    let seq = self.log.last_seq();
                    assert!(self.log.key_package(&pid, b64(&bytes)).is_err());
                    assert_eq!(self.log.last_seq(), seq);
                }
            }
            Op::BadGroupInfo(i, bytes) => {
                if let Some(pid) = self.pid(i) {
                    let created = self.log.group_created();
                    let r = self.log.group_info(&pid, &b64(&bytes));
                    assert!(r.is_err() || (created && r == Ok(false)));
                }
            }
            Op::Chat(i) => {
                if let Some(pid) = self.pid(i) {
                    let member = self.in_group(i);
                    let r = self.log.application(&pid, self.log.epoch(), "aGk=".into());
                    if member {
                        assert!(r.is_ok());
                    }
                }
            }
        }
    }

    /// The roster invariant.
    fn check(&self) {
        let owners = self.log.leaf_owners();
        let pids: Vec<&String> = owners.iter().map(|(_, p)| p).collect();
        let unique: BTreeSet<&String> = pids.iter().copied().collect();
        assert_eq!(unique.len(), pids.len(), "a participant holds two leaves");
        for p in self.present.values() {
            if !p.mls.in_group() {
                continue;
            }
            assert_eq!(p.mls.epoch(), Some(self.log.epoch()), "epochs agree");
            let theirs: Vec<(u32, String)> = p
                .mls
                .members()
                .iter()
                .map(|m| (m.leaf, m.identity.clone()))
                .collect();
            assert_eq!(theirs.len(), owners.len(), "same members");
            for ((leaf, identity), (l, _)) in theirs.iter().zip(&owners) {
                assert_eq!(leaf, l);
                assert!(identity.starts_with("id"));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_delivery_service_holds_its_invariants(ops in proptest::collection::vec(op(), 1..24)) {
        let mut sim = Sim::new();
        sim.join(0);
        for op in ops {
            sim.step(op);
            sim.check();
        }
    }
}
