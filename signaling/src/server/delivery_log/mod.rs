//! One room's MLS delivery service (RFC 9420 §3.2 "DS"): an ordered,
//! bounded log of handshake and application messages that validates what
//! it orders.
//!
//! It tracks each group incarnation's public state (openmls' public group,
//! in `public_state.rs`: credentials, public keys, the tree, no secret)
//! from the founder's epoch-0 GroupInfo on, and the room's roster. A
//! commit is accepted only if it is a `PublicMessage` commit for the
//! current epoch, signed by a current member, processes cleanly, and adds
//! and removes exactly what the roster allows (see [`DeliveryLog::commit`]);
//! the `added`/`removed` lists of the log entry are read from the commit.
//! Application messages and Welcomes stay opaque: encrypted end to end.
//!
//! Pure state: no IO, no clock, no lock. The room registry calls it under
//! the room's lock and broadcasts what it returns, so the log order is the
//! delivery order at every member; it also runs the founder timeout's
//! clock and asks [`DeliveryLog::founder_overdue`] when it expires.
//!
//! Public so that tests elsewhere in the workspace can drive clients against
//! the real delivery rules without a server.

mod leaf_cap;
mod public_state;

use super::ids;
use crate::proto::{MlsEntry, MlsInfo, ServerMessage};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use openmls::prelude::KeyPackageRef;
use openmls_rust_crypto::RustCrypto;
use public_state::{PublicState, StageError, ValidKeyPackage};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

pub use leaf_cap::{LEAF_TOO_LARGE, MAX_LEAF_NODE_BYTES};

/// How much log a room keeps for resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Entries kept at most.
    pub max_entries: usize,
    /// Bytes (of the serialized entries) kept at most.
    pub max_bytes: usize,
}

/// The kinds of log entry, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A participant's KeyPackage.
    KeyPackage,
    /// A commit that won its epoch.
    Commit,
    /// An application message (chat).
    Application,
    /// A new group incarnation.
    Reset,
}

impl EntryKind {
    /// Every kind with its label, in a stable order.
    pub(crate) const ALL: [(EntryKind, &'static str); 4] = [
        (EntryKind::KeyPackage, "key_package"),
        (EntryKind::Commit, "commit"),
        (EntryKind::Application, "application"),
        (EntryKind::Reset, "reset"),
    ];

    /// Its slot in [`EntryKind::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            EntryKind::KeyPackage => 0,
            EntryKind::Commit => 1,
            EntryKind::Application => 2,
            EntryKind::Reset => 3,
        }
    }

    fn of(entry: &MlsEntry) -> Self {
        match entry {
            MlsEntry::KeyPackage { .. } => Self::KeyPackage,
            MlsEntry::Commit { .. } => Self::Commit,
            MlsEntry::Application { .. } => Self::Application,
            MlsEntry::Reset { .. } => Self::Reset,
        }
    }
}

/// One log entry, serialized once as the `mls` message members get.
#[derive(Debug)]
pub struct Logged {
    /// Its place in the log.
    pub seq: u64,
    /// What it holds.
    pub kind: EntryKind,
    /// The JSON text of `ServerMessage::Mls { seq, entry }`.
    pub text: String,
    /// For a commit with a Welcome: the same entry without the Welcome,
    /// which is what every member but the added ones gets. The Welcome
    /// carries the whole ratchet tree (about 180 bytes a member) and is
    /// encrypted to the newcomers only, so sending it to everyone would
    /// multiply a room's signaling traffic by its size for nothing.
    lean: Option<Arc<Logged>>,
    /// The participants the Welcome is for.
    welcome_for: Box<[String]>,
}

impl Logged {
    pub(crate) fn new(seq: u64, entry: MlsEntry) -> Self {
        let (lean, welcome_for) = match &entry {
            MlsEntry::Commit {
                participant_id,
                epoch,
                commit,
                welcome: Some(_),
                added,
                removed,
            } => {
                let lean = MlsEntry::Commit {
                    participant_id: participant_id.clone(),
                    epoch: *epoch,
                    commit: commit.clone(),
                    welcome: None,
                    added: added.clone(),
                    removed: removed.clone(),
                };
                (
                    Some(Arc::new(Self::new(seq, lean))),
                    added.clone().into_boxed_slice(),
                )
            }
            _ => (None, Box::default()),
        };
        let kind = EntryKind::of(&entry);
        // Strings and integers only: serializing cannot fail.
        let mut text =
            serde_json::to_string(&ServerMessage::Mls { seq, entry }).unwrap_or_default();
        // Serializing grows the buffer by doubling, so it may hold up to
        // twice the text; the log and the room budgets count the text, and
        // the entry may be kept for as long as the log holds it.
        text.shrink_to_fit();
        Self {
            seq,
            kind,
            text,
            lean,
            welcome_for,
        }
    }

    /// Its size as the log counts it (both forms of a commit with a
    /// Welcome).
    pub fn bytes(&self) -> usize {
        self.text.len() + self.lean.as_ref().map_or(0, |l| l.bytes())
    }

    /// The form participant `pid` gets: without the Welcome unless it is
    /// for `pid`.
    pub fn for_member(self: &Arc<Self>, pid: &str) -> Arc<Self> {
        match &self.lean {
            Some(lean) if !self.welcome_for.iter().any(|p| p == pid) => lean.clone(),
            _ => self.clone(),
        }
    }
}

/// Why a message was refused, in words safe to send to its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invalid(pub &'static str);

/// Why a commit was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitRefusal {
    /// The sender is not a member of the group (or is waiting to be
    /// re-added).
    NotMember,
    /// Another commit already took that epoch, or it was never current.
    WrongEpoch {
        /// The epoch a commit must claim now.
        current: u64,
    },
    /// A well-formed commit from a member that does not add and remove
    /// what the roster calls for now (the committer's view may be behind:
    /// it may retry).
    Roster {
        /// Why.
        reason: Invalid,
        /// The current epoch (the commit's own).
        current: u64,
    },
    /// Malformed, forged, or not allowed at all.
    Invalid(Invalid),
}

/// Refusal reasons, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A commit for an epoch that is not current (a lost race, a replay).
    WrongEpoch,
    /// A commit or application message from a non-member.
    NotMember,
    /// A commit that does not match the roster.
    Roster,
    /// A malformed or forged commit.
    InvalidCommit,
    /// An invalid KeyPackage.
    InvalidKeyPackage,
    /// An invalid or misplaced GroupInfo.
    InvalidGroupInfo,
    /// A commit, KeyPackage or GroupInfo whose leaf node is over
    /// [`MAX_LEAF_NODE_BYTES`].
    LeafTooLarge,
}

impl Refused {
    /// Every reason with its label, in a stable order.
    pub(crate) const ALL: [(Refused, &'static str); 7] = [
        (Refused::WrongEpoch, "wrong_epoch"),
        (Refused::NotMember, "not_member"),
        (Refused::Roster, "roster"),
        (Refused::InvalidCommit, "invalid_commit"),
        (Refused::InvalidKeyPackage, "invalid_key_package"),
        (Refused::InvalidGroupInfo, "invalid_group_info"),
        (Refused::LeafTooLarge, "leaf_too_large"),
    ];

    /// Its slot in [`Refused::ALL`].
    pub(crate) fn index(self) -> usize {
        Self::ALL.iter().position(|(r, _)| *r == self).unwrap_or(0)
    }

    /// The reason for refusing a message as `invalid`: `otherwise`, unless
    /// it was refused for an oversized leaf.
    pub(crate) fn of(invalid: Invalid, otherwise: Refused) -> Refused {
        if invalid == LEAF_TOO_LARGE {
            Refused::LeafTooLarge
        } else {
            otherwise
        }
    }
}

impl CommitRefusal {
    /// The metric reason.
    pub fn reason(&self) -> Refused {
        match self {
            Self::NotMember => Refused::NotMember,
            Self::WrongEpoch { .. } => Refused::WrongEpoch,
            Self::Roster { .. } => Refused::Roster,
            Self::Invalid(i) => Refused::of(*i, Refused::InvalidCommit),
        }
    }
}

/// The sender is not a member of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotMember;

/// A resume asked for entries the log no longer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap;

/// A commit as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitMsg {
    /// The epoch it claims to commit from.
    pub epoch: u64,
    /// The commit (base64 MLSMessage).
    pub commit: String,
    /// The Welcome for the added members (base64, opaque), if any.
    pub welcome: Option<String>,
}

/// What the founder timeout found (see [`DeliveryLog::founder_overdue`]).
#[derive(Debug)]
pub enum FounderCheck {
    /// The group exists, or the incarnation asked about is gone: stop.
    Done,
    /// The founder is alone: nobody to hand over to; check again later.
    Wait,
    /// The founder was replaced: broadcast the `Reset` entry; the new
    /// incarnation (`group_id`) needs its own timeout.
    Replaced(Arc<Logged>),
}

/// A participant in the room, as the delivery service sees it.
#[derive(Debug)]
struct Participant {
    identity: String,
    /// Join order: the earliest-joined founds a new incarnation.
    order: u64,
    /// Its latest valid KeyPackage, until a commit adds it.
    key_package: Option<ValidKeyPackage>,
    /// A member that reported it lost its group state: its leaf may be
    /// removed and it re-added.
    rejoining: bool,
}

/// Who holds a leaf of the tree.
#[derive(Debug, Clone)]
struct Owner {
    pid: String,
    identity: String,
}

/// One room's group as the delivery service tracks it.
#[derive(Debug)]
pub struct DeliveryLog {
    group_id: String,
    /// The founder of the current incarnation.
    founder: Option<String>,
    /// The group's public state, from the founder's GroupInfo on.
    group: Option<PublicState>,
    /// Leaf → who holds it (a departed participant until a commit removes
    /// it).
    owners: BTreeMap<u32, Owner>,
    /// Participants in the room.
    participants: HashMap<String, Participant>,
    next_order: u64,
    /// Founders replaced for not creating their group: passed over while
    /// anyone else can found.
    timed_out: HashSet<String>,
    last_seq: u64,
    log: VecDeque<Arc<Logged>>,
    log_bytes: usize,
    limits: LogLimits,
    crypto: RustCrypto,
}

impl DeliveryLog {
    /// An empty log; the first participant to [`DeliveryLog::join`] founds
    /// the first group.
    pub fn new(limits: LogLimits) -> Self {
        Self {
            group_id: ids::random_hex128(),
            founder: None,
            group: None,
            owners: BTreeMap::new(),
            participants: HashMap::new(),
            next_order: 0,
            timed_out: HashSet::new(),
            last_seq: 0,
            log: VecDeque::new(),
            log_bytes: 0,
            limits,
            crypto: RustCrypto::default(),
        }
    }

    /// `pid` (token identity `identity`) joined the room; returns the group
    /// as it sees it. Alone in the room, it founds a new group: the old
    /// log is of no use to anyone and is dropped; sequence numbers go on.
    pub fn join(&mut self, pid: &str, identity: &str) -> MlsInfo {
        let founder = self.participants.is_empty();
        self.participants.insert(
            pid.to_string(),
            Participant {
                identity: identity.to_string(),
                order: self.next_order,
                key_package: None,
                rejoining: false,
            },
        );
        self.next_order += 1;
        if founder {
            self.timed_out.clear();
            self.new_incarnation(pid);
            self.log.clear();
            self.log_bytes = 0;
        }
        self.info(founder)
    }

    fn new_incarnation(&mut self, founder: &str) {
        self.group_id = ids::random_hex128();
        self.founder = Some(founder.to_string());
        self.group = None;
        self.owners.clear();
        for p in self.participants.values_mut() {
            p.key_package = None;
            p.rejoining = false;
        }
    }

    /// The group as a participant joining or resuming now sees it.
    pub fn info(&self, founder: bool) -> MlsInfo {
        MlsInfo {
            group_id: self.group_id.clone(),
            epoch: self.epoch(),
            seq: self.last_seq,
            founder,
        }
    }

    /// The current incarnation's group id (hex).
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// Whether the current incarnation's founder has created the group
    /// (sent a valid GroupInfo).
    pub fn group_created(&self) -> bool {
        self.group.is_some()
    }

    /// The epoch the next commit must be for.
    pub fn epoch(&self) -> u64 {
        self.group.as_ref().map_or(0, PublicState::epoch)
    }

    fn leaf_of(&self, pid: &str) -> Option<u32> {
        self.owners
            .iter()
            .find(|(_, o)| o.pid == pid)
            .map(|(leaf, _)| *leaf)
    }

    /// Whether `pid` is a member: it holds a leaf of the group (or, before
    /// the group is created, it is its founder).
    pub fn is_member(&self, pid: &str) -> bool {
        if self.group.is_none() {
            return self.founder.as_deref() == Some(pid);
        }
        self.leaf_of(pid).is_some()
    }

    /// A member that can commit: present, holding a leaf, not waiting to
    /// be re-added.
    fn healthy(&self, pid: &str) -> bool {
        self.participants.get(pid).is_some_and(|p| !p.rejoining) && self.is_member(pid)
    }

    /// The member leaves, by leaf, with the participant holding each:
    /// for tests and invariant checks.
    pub fn leaf_owners(&self) -> Vec<(u32, String)> {
        self.owners
            .iter()
            .map(|(l, o)| (*l, o.pid.clone()))
            .collect()
    }

    /// The sequence number of the last entry appended.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// (entries, bytes) held in the log.
    pub fn log_size(&self) -> (usize, usize) {
        (self.log.len(), self.log_bytes)
    }

    /// Pending KeyPackages (participants waiting to be added).
    pub fn pending_key_packages(&self) -> usize {
        self.participants
            .values()
            .filter(|p| p.key_package.is_some())
            .count()
    }

    /// A participant's KeyPackage (base64). Checked (see `docs/protocol.md`);
    /// the latest valid one replaces any earlier. From a member it reports
    /// that the member lost its group state: it is to be re-added, and if
    /// that leaves no member able to commit, the group resets. Returns the
    /// entries to broadcast, in order.
    pub fn key_package(
        &mut self,
        pid: &str,
        key_package: String,
    ) -> Result<Vec<Arc<Logged>>, Invalid> {
        let identity = match self.participants.get(pid) {
            Some(p) => p.identity.clone(),
            None => return Err(Invalid("not in the room")),
        };
        let bytes = B64
            .decode(&key_package)
            .map_err(|_| Invalid("KeyPackage is not base64"))?;
        let valid = public_state::key_package(&self.crypto, &bytes, &identity)?;
        let member = self.group.is_some() && self.leaf_of(pid).is_some();
        if let Some(p) = self.participants.get_mut(pid) {
            p.key_package = Some(valid);
            if member && !p.rejoining {
                tracing::info!(participant = %pid, "member lost its group state: to be re-added");
                p.rejoining = true;
            }
        }
        let mut out = vec![self.append(MlsEntry::KeyPackage {
            participant_id: pid.to_string(),
            key_package,
        })];
        out.extend(self.reset_if_leaderless());
        Ok(out)
    }

    /// The founder's epoch-0 GroupInfo (base64): see
    /// `ClientMessage::MlsGroupInfo`. `Ok(false)` if the group is already
    /// tracked (a repeat is ignored).
    pub fn group_info(&mut self, pid: &str, group_info: &str) -> Result<bool, Invalid> {
        if self.founder.as_deref() != Some(pid) {
            return Err(Invalid("only the founder sends the GroupInfo"));
        }
        if self.group.is_some() {
            return Ok(false);
        }
        let identity = self
            .participants
            .get(pid)
            .map(|p| p.identity.clone())
            .ok_or(Invalid("not in the room"))?;
        let bytes = B64
            .decode(group_info)
            .map_err(|_| Invalid("GroupInfo is not base64"))?;
        let group_id = hex::decode(&self.group_id).unwrap_or_default();
        let state = PublicState::from_group_info(&self.crypto, &bytes, &group_id, &identity)?;
        self.owners.insert(
            0,
            Owner {
                pid: pid.to_string(),
                identity,
            },
        );
        self.group = Some(state);
        self.timed_out.clear();
        Ok(true)
    }

    /// A commit from `sender`. The first one for the current epoch wins if
    /// it parses as a `PublicMessage` commit, is signed by a current member
    /// (`sender` itself), processes cleanly against the public state, adds
    /// only present participants' latest KeyPackages (none twice, none of a
    /// member that keeps its leaf), removes only leaves of participants
    /// that left or are to be re-added, removes every leaf of a participant
    /// that left (unless its identity is back under a new participant id),
    /// and carries a Welcome for exactly its adds (none without adds).
    pub fn commit(&mut self, sender: &str, msg: CommitMsg) -> Result<Arc<Logged>, CommitRefusal> {
        let Some(group) = &self.group else {
            return Err(if self.founder.as_deref() == Some(sender) {
                CommitRefusal::Invalid(Invalid("send the GroupInfo before any commit"))
            } else {
                CommitRefusal::NotMember
            });
        };
        if !self.healthy(sender) {
            return Err(CommitRefusal::NotMember);
        }
        let current = group.epoch();
        if msg.epoch != current {
            return Err(CommitRefusal::WrongEpoch { current });
        }
        let bytes = B64
            .decode(&msg.commit)
            .map_err(|_| CommitRefusal::Invalid(Invalid("commit is not base64")))?;
        let staged = group.stage(&self.crypto, &bytes).map_err(|e| match e {
            StageError::WrongEpoch => CommitRefusal::WrongEpoch { current },
            StageError::Invalid(i) => CommitRefusal::Invalid(i),
        })?;
        if self.owners.get(&staged.sender).map(|o| o.pid.as_str()) != Some(sender) {
            return Err(CommitRefusal::Invalid(Invalid(
                "commit signed by another member than its sender",
            )));
        }
        let roster = |reason| CommitRefusal::Roster {
            reason: Invalid(reason),
            current,
        };
        let (added, removed) = self
            .check_roster(&staged.adds, &staged.removes)
            .map_err(roster)?;
        match (&msg.welcome, staged.adds.is_empty()) {
            (None, true) => {}
            (Some(w), false) => {
                let w = B64
                    .decode(w)
                    .map_err(|_| CommitRefusal::Invalid(Invalid("Welcome is not base64")))?;
                public_state::check_welcome(&w, &staged.adds).map_err(CommitRefusal::Invalid)?;
            }
            _ => {
                return Err(CommitRefusal::Invalid(Invalid(
                    "a Welcome goes with a commit exactly when it adds someone",
                )));
            }
        }
        let keys: Vec<Vec<u8>> = added
            .iter()
            .filter_map(|pid| self.participants.get(pid))
            .filter_map(|p| p.key_package.as_ref().map(|k| k.signature_key.clone()))
            .collect();
        let removes = staged.removes.clone();
        if let Some(group) = &mut self.group {
            group.merge(staged).map_err(CommitRefusal::Invalid)?;
        }
        for leaf in &removes {
            self.owners.remove(leaf);
        }
        for (pid, key) in added.iter().zip(keys) {
            let leaf = self.group.as_ref().and_then(|g| g.leaf_with_key(&key));
            if let (Some(leaf), Some(p)) = (leaf, self.participants.get_mut(pid)) {
                p.key_package = None;
                p.rejoining = false;
                self.owners.insert(
                    leaf,
                    Owner {
                        pid: pid.clone(),
                        identity: p.identity.clone(),
                    },
                );
            }
        }
        Ok(self.append(MlsEntry::Commit {
            participant_id: sender.to_string(),
            epoch: current,
            commit: msg.commit,
            welcome: msg.welcome,
            added,
            removed,
        }))
    }

    /// The participant ids a commit adds and removes, if the roster allows
    /// exactly these changes.
    fn check_roster(
        &self,
        adds: &[KeyPackageRef],
        removes: &[u32],
    ) -> Result<(Vec<String>, Vec<String>), &'static str> {
        let mut removed = Vec::new();
        for leaf in removes {
            let owner = self.owners.get(leaf).ok_or("removes an unknown leaf")?;
            let allowed = self
                .participants
                .get(&owner.pid)
                .is_none_or(|p| p.rejoining);
            if !allowed {
                return Err("removes a present member");
            }
            removed.push(owner.pid.clone());
        }
        let present_identities: HashSet<&str> = self
            .participants
            .values()
            .map(|p| p.identity.as_str())
            .collect();
        for (leaf, owner) in &self.owners {
            let departed = !self.participants.contains_key(&owner.pid)
                && !present_identities.contains(owner.identity.as_str());
            if departed && !removes.contains(leaf) {
                return Err("leaves a departed participant in the group");
            }
        }
        let mut added: Vec<String> = Vec::new();
        for r in adds {
            let (pid, _) = self
                .participants
                .iter()
                .find(|(_, p)| p.key_package.as_ref().is_some_and(|k| k.hash_ref == *r))
                .ok_or("adds a KeyPackage that is not a present participant's latest")?;
            if added.contains(pid) {
                return Err("adds a participant twice");
            }
            if self.leaf_of(pid).is_some_and(|l| !removes.contains(&l)) {
                return Err("adds a member that keeps its leaf");
            }
            added.push(pid.clone());
        }
        Ok((added, removed))
    }

    /// An application message from a member (not one waiting to be
    /// re-added). Its epoch is not checked: members keep past epochs'
    /// secrets for a while.
    pub fn application(
        &mut self,
        sender: &str,
        epoch: u64,
        message: String,
    ) -> Result<Arc<Logged>, NotMember> {
        // A member waiting to be re-added has no group state to encrypt
        // with.
        if !self.healthy(sender) {
            return Err(NotMember);
        }
        Ok(self.append(MlsEntry::Application {
            participant_id: sender.to_string(),
            epoch,
            message,
        }))
    }

    /// `pid` left the room. Its leaf stays until a commit removes it (the
    /// next commit must). If that leaves no member able to commit while
    /// others are present, a new group incarnation starts with the
    /// earliest-joined as founder; the returned `Reset` entry must be
    /// broadcast.
    pub fn departed(&mut self, pid: &str) -> Option<Arc<Logged>> {
        self.participants.remove(pid)?;
        self.timed_out.remove(pid);
        self.reset_if_leaderless()
    }

    /// `pid` lost its group state (its resume hit a gap): like a member's
    /// KeyPackage report, it is to be re-added. Returns a `Reset` entry to
    /// broadcast if no member able to commit is left.
    pub fn lost_state(&mut self, pid: &str) -> Option<Arc<Logged>> {
        if self.group.is_some() && self.leaf_of(pid).is_some() {
            if let Some(p) = self.participants.get_mut(pid) {
                p.rejoining = true;
            }
        } else if self.group.is_none() && self.founder.as_deref() == Some(pid) {
            // A founder that lost what it created: found afresh.
            self.founder = None;
        }
        self.reset_if_leaderless()
    }

    /// The founder timeout for incarnation `group_id` expired. If that
    /// incarnation's group still does not exist and someone else is in the
    /// room, the earliest-joined other participant becomes the founder of
    /// a new incarnation (founders that timed out before come last); the
    /// old founder becomes an ordinary joiner.
    pub fn founder_overdue(&mut self, group_id: &str) -> FounderCheck {
        if self.group_id != group_id || self.group.is_some() {
            return FounderCheck::Done;
        }
        let Some(old) = self.founder.clone() else {
            return FounderCheck::Done;
        };
        let Some(next) = self.successor(Some(&old)) else {
            return FounderCheck::Wait;
        };
        tracing::info!(founder = %old, successor = %next, "founder did not create the MLS group in time: replaced");
        self.timed_out.insert(old);
        FounderCheck::Replaced(self.reset(&next))
    }

    /// The earliest-joined participant other than `except`, passing over
    /// founders that timed out unless nobody else is left.
    fn successor(&self, except: Option<&str>) -> Option<String> {
        let candidates = || {
            self.participants
                .iter()
                .filter(move |(pid, _)| Some(pid.as_str()) != except)
        };
        candidates()
            .filter(|(pid, _)| !self.timed_out.contains(*pid))
            .min_by_key(|(_, p)| p.order)
            .or_else(|| candidates().min_by_key(|(_, p)| p.order))
            .map(|(pid, _)| pid.clone())
    }

    /// A new incarnation if nobody present can commit (or found) any more.
    fn reset_if_leaderless(&mut self) -> Option<Arc<Logged>> {
        let leader = match &self.group {
            None => self
                .founder
                .as_ref()
                .is_some_and(|f| self.participants.contains_key(f)),
            Some(_) => self.owners.values().any(|o| self.healthy(&o.pid)),
        };
        if leader {
            return None;
        }
        let founder = self.successor(None)?;
        Some(self.reset(&founder))
    }

    fn reset(&mut self, founder: &str) -> Arc<Logged> {
        self.new_incarnation(founder);
        self.append(MlsEntry::Reset {
            group_id: self.group_id.clone(),
            founder: founder.to_string(),
        })
    }

    /// Every entry after `seq`, or [`Gap`] if some of them were evicted (or
    /// `seq` is ahead of the log, which only a confused client claims).
    pub fn replay_after(&self, seq: u64) -> Result<Vec<Arc<Logged>>, Gap> {
        if seq > self.last_seq {
            return Err(Gap);
        }
        let first = self.log.front().map_or(self.last_seq + 1, |e| e.seq);
        if seq + 1 < first {
            return Err(Gap);
        }
        let skip = usize::try_from(seq + 1 - first).unwrap_or(usize::MAX);
        Ok(self.log.iter().skip(skip).cloned().collect())
    }

    fn append(&mut self, entry: MlsEntry) -> Arc<Logged> {
        self.last_seq += 1;
        let logged = Arc::new(Logged::new(self.last_seq, entry));
        self.log_bytes += logged.bytes();
        self.log.push_back(logged.clone());
        while self.log.len() > self.limits.max_entries || self.log_bytes > self.limits.max_bytes {
            match self.log.pop_front() {
                Some(old) => self.log_bytes -= old.bytes(),
                None => break,
            }
        }
        logged
    }
}

#[cfg(test)]
mod tests;
