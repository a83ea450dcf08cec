//! The room's group-key state machine: what this member does with each MLS
//! log entry and roster change, told the time and polled for outputs.
//!
//! It owns the MLS client. The server is only a delivery service: it orders
//! opaque messages and accepts one commit per epoch. Everything that decides
//! who is in the group happens here, on every member, deterministically:
//!
//! - **Who commits.** The member with the lowest leaf index whose identity
//!   is still present in the signaling roster commits first; the one ranked
//!   `r` steps in after `r × takeover_delay` if the change is still pending,
//!   so a vanished committer cannot stall the group. The server refuses all
//!   but the first commit per epoch; the losers process the winner's.
//! - **What a commit holds.** Adds for every KeyPackage from a present
//!   participant whose credential names that participant's identity and is
//!   not yet a member; removes for every member whose identity is gone, or
//!   whose identity rejoined with a new signature key.
//! - **Ghosts.** A member the signaling roster never announced is flagged at
//!   once; a departed member not removed, or a present participant not
//!   added, within `mismatch_grace` is flagged too.

use super::chat::{ChatDedup, ChatPayload};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use e2ee::group::{Commit, GroupError, Member, MlsClient, Processed};
use signaling::proto::{ClientMessage, MlsEntry, MlsInfo};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Tuning of the group-key protocol.
#[derive(Debug, Clone)]
pub(crate) struct CoordinatorConfig {
    /// How long the next committer in line waits before it takes over.
    pub(crate) takeover_delay: Duration,
    /// How long a roster difference may last before it is reported.
    pub(crate) mismatch_grace: Duration,
    /// Periodic self-update, if any.
    pub(crate) self_update: Option<Duration>,
    /// Base-key length for the SFrame suite in use.
    pub(crate) sframe_nk: usize,
    /// MLS settings, for the fresh client a rejoin uses.
    pub(crate) mls: e2ee::group::MlsConfig,
}

/// A participant in the signaling roster.
#[derive(Debug, Clone)]
struct Present {
    identity: String,
}

/// A validated KeyPackage waiting to be added.
#[derive(Debug, Clone)]
struct WaitingKeyPackage {
    bytes: Vec<u8>,
    identity: String,
    signature_key: Vec<u8>,
}

/// Our commit, sent and not yet echoed or refused.
#[derive(Debug, Clone)]
struct InFlightCommit {
    epoch: u64,
    message: ClientMessage,
    sent_at: Instant,
}

/// Chat messages per second this member sends at most, and its burst: well
/// inside the server's per-connection rate limit, which drops what exceeds
/// it.
const CHAT_RATE: f64 = 20.0;
const CHAT_BURST: f64 = 20.0;
/// A message sent and neither echoed nor refused after this long is sent
/// again (it may have been dropped by a rate limit or a dying socket);
/// members drop the duplicate if both copies arrive.
const RESEND_AFTER: Duration = Duration::from_secs(2);
/// Own chat ciphertexts remembered until their echo.
const MAX_OWN_SENT: usize = 1024;

/// What the coordinator asks its shell to do.
#[derive(Debug)]
pub(crate) enum Output {
    /// Send this to the server.
    Send(ClientMessage),
    /// A new epoch's SFrame base key: install it for sending and receiving.
    Epoch {
        /// The MLS epoch.
        epoch: u64,
        /// `MLS-Exporter("SFrame 1.0 Base Key", "", Nk)`.
        base_key: Vec<u8>,
        /// Our leaf index in it.
        own_leaf: u32,
        /// The members, by leaf.
        members: Vec<Member>,
        /// The verification code of the epoch.
        verification_code: String,
    },
    /// We are no longer in a group (removed, or the group was reset); keys
    /// must be forgotten until the next epoch.
    LeftGroup,
    /// A chat message, in the room's order.
    Chat {
        /// Who sent it.
        from: Member,
        /// Its text.
        text: String,
    },
    /// The MLS roster and the signaling roster disagree.
    Mismatch {
        /// Identities in the MLS group that the signaling roster lacks.
        mls_only: Vec<String>,
        /// Identities in the signaling roster missing from the MLS group.
        signaling_only: Vec<String>,
    },
    /// The group state is out of step with the log (a gap, an unreadable
    /// commit): leave the group and ask to be added again.
    Desynchronized,
}

/// The group-key state machine of one room member.
pub(crate) struct Coordinator {
    cfg: CoordinatorConfig,
    me: String,
    mls: MlsClient,
    group_id: String,
    /// The last log entry processed.
    seq: u64,
    roster: BTreeMap<String, Present>,
    /// Identities the signaling roster has ever named.
    announced: BTreeSet<String>,
    key_packages: HashMap<String, WaitingKeyPackage>,
    commit: Option<InFlightCommit>,
    /// Since when a roster change has been waiting for a commit.
    change_pending_since: Option<Instant>,
    /// Since when each identity has been on one side only.
    differing_since: BTreeMap<String, Instant>,
    reported_mismatch: (Vec<String>, Vec<String>),
    last_epoch_at: Option<Instant>,
    chat_queue: VecDeque<ChatPayload>,
    chat_in_flight: Option<ChatPayload>,
    chat_sent_at: Option<Instant>,
    chat_tokens: f64,
    chat_tokens_at: Instant,
    next_chat_id: u64,
    chat_dedup: ChatDedup,
    /// Our chat ciphertexts (base64) sent and not yet seen in the log.
    own_sent: HashMap<String, ChatPayload>,
    out: VecDeque<Output>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("me", &self.me)
            .field("epoch", &self.mls.epoch())
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    /// Starts from a `joined` (or `resumed` after a failed group state): we
    /// are `me`, the room holds `roster` (participant id, identity) besides
    /// us, and the log stands at `info.seq`.
    pub(crate) fn new(
        cfg: CoordinatorConfig,
        mls: MlsClient,
        me: &str,
        roster: impl IntoIterator<Item = (String, String)>,
        info: &MlsInfo,
        now: Instant,
    ) -> Self {
        let mut coordinator = Self {
            cfg,
            me: me.to_owned(),
            group_id: String::new(),
            seq: info.seq,
            roster: BTreeMap::new(),
            announced: BTreeSet::new(),
            key_packages: HashMap::new(),
            commit: None,
            change_pending_since: None,
            differing_since: BTreeMap::new(),
            reported_mismatch: (Vec::new(), Vec::new()),
            last_epoch_at: None,
            chat_queue: VecDeque::new(),
            chat_in_flight: None,
            chat_sent_at: None,
            chat_tokens: CHAT_BURST,
            chat_tokens_at: now,
            next_chat_id: 1,
            chat_dedup: ChatDedup::default(),
            own_sent: HashMap::new(),
            out: VecDeque::new(),
            mls,
        };
        let identity = coordinator.mls.identity().to_owned();
        coordinator.participant_joined(me, &identity);
        for (pid, identity) in roster {
            coordinator.participant_joined(&pid, &identity);
        }
        coordinator.start_group(&info.group_id, info.founder, now);
        coordinator
    }

    /// The next thing to do.
    pub(crate) fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// A participant appeared in the signaling roster.
    pub(crate) fn participant_joined(&mut self, pid: &str, identity: &str) {
        self.roster.insert(
            pid.to_owned(),
            Present {
                identity: identity.to_owned(),
            },
        );
        self.announced.insert(identity.to_owned());
    }

    /// A participant left the signaling roster.
    pub(crate) fn participant_left(&mut self, pid: &str, now: Instant) {
        self.roster.remove(pid);
        self.key_packages.remove(pid);
        self.maybe_commit(now);
    }

    /// Queues a chat message; it goes out once we are in the group, one at
    /// a time (each after the previous one came back in the log), so that a
    /// reconnect can resend exactly what is missing.
    pub(crate) fn send_chat(&mut self, now: Instant, text: String) {
        let id = self.next_chat_id;
        self.next_chat_id += 1;
        self.chat_queue.push_back(ChatPayload { id, text });
        self.pump_chat(now);
    }

    /// Chat messages not yet confirmed by the log, oldest first: a rejoin
    /// carries them to the new session.
    pub(crate) fn take_unsent_chat(&mut self) -> Vec<String> {
        self.chat_in_flight
            .take()
            .into_iter()
            .chain(self.chat_queue.drain(..))
            .map(|c| c.text)
            .collect()
    }

    /// After a resumed connection: resend what may have died with the old
    /// socket. Duplicates are harmless: the server refuses a second commit
    /// for an epoch and every member drops a repeated chat id.
    pub(crate) fn resumed(&mut self, now: Instant) {
        if let Some(commit) = &self.commit {
            self.out.push_back(Output::Send(commit.message.clone()));
        }
        if let Some(chat) = self.chat_in_flight.clone() {
            self.send_chat_now(now, &chat);
        }
        if !self.mls.in_group() {
            self.send_key_package();
        }
        self.maybe_commit(now);
    }

    /// One log entry. Entries at or below the last processed sequence
    /// number are repeats (a resume replay) and are skipped.
    pub(crate) fn entry(&mut self, now: Instant, seq: u64, entry: MlsEntry) {
        if seq <= self.seq {
            return;
        }
        if seq != self.seq + 1 {
            warn!(expected = self.seq + 1, got = seq, "MLS log gap");
            self.seq = seq;
            self.desynchronized(now);
            return;
        }
        self.seq = seq;
        match entry {
            MlsEntry::KeyPackage {
                participant_id,
                key_package,
            } => self.on_key_package(participant_id, &key_package),
            MlsEntry::Commit {
                participant_id,
                epoch,
                commit,
                welcome,
                added,
                removed,
            } => self.on_commit(
                now,
                &participant_id,
                epoch,
                &commit,
                welcome,
                &added,
                &removed,
            ),
            MlsEntry::Application {
                participant_id,
                message,
                ..
            } => self.on_application(&participant_id, &message),
            MlsEntry::Reset { group_id, founder } => {
                info!(%group_id, "MLS group reset by the server");
                let founder = founder == self.me;
                self.start_group(&group_id, founder, now);
            }
            _ => debug!("unknown MLS log entry ignored"),
        }
        self.maybe_commit(now);
        self.pump_chat(now);
    }

    /// The server could not replay everything we missed: our group state
    /// cannot be trusted to be current, so start over as a joiner.
    pub(crate) fn log_gap(&mut self, now: Instant) {
        self.desynchronized(now);
    }

    /// The server refused our commit for `epoch`.
    pub(crate) fn commit_rejected(&mut self, now: Instant, epoch: u64) {
        if self.commit.as_ref().is_some_and(|c| c.epoch == epoch) {
            debug!(epoch, "our commit lost; waiting for the winner's");
            self.commit = None;
            self.mls.clear_pending_commit();
            self.maybe_commit(now);
        }
    }

    /// Time passed: takeovers, self-updates, mismatch reports.
    pub(crate) fn tick(&mut self, now: Instant) {
        if let Some(commit) = &mut self.commit
            && now.saturating_duration_since(commit.sent_at) >= RESEND_AFTER
        {
            debug!(epoch = commit.epoch, "commit unanswered; sending it again");
            commit.sent_at = now;
            self.out.push_back(Output::Send(commit.message.clone()));
        }
        if let (Some(chat), Some(at)) = (self.chat_in_flight.clone(), self.chat_sent_at)
            && now.saturating_duration_since(at) >= RESEND_AFTER
        {
            debug!("chat message unanswered; sending it again");
            self.send_chat_now(now, &chat);
        }
        self.pump_chat(now);
        self.maybe_commit(now);
        if let (Some(every), Some(at)) = (self.cfg.self_update, self.last_epoch_at)
            && self.commit.is_none()
            && self.mls.in_group()
            && now.saturating_duration_since(at) >= every
        {
            match self.mls.self_update() {
                Ok(commit) => self.send_commit(now, commit, Vec::new(), Vec::new()),
                Err(error) => warn!(%error, "self-update failed"),
            }
        }
        self.check_rosters(now);
    }

    /// The earliest time `tick` has something to do.
    pub(crate) fn next_tick(&self) -> Option<Instant> {
        let mut next = self
            .change_pending_since
            .map(|at| at + self.cfg.takeover_delay);
        for at in self.differing_since.values() {
            let due = *at + self.cfg.mismatch_grace;
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        if let (Some(every), Some(at)) = (self.cfg.self_update, self.last_epoch_at) {
            let due = at + every;
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        let resends = [
            self.commit.as_ref().map(|c| c.sent_at + RESEND_AFTER),
            self.chat_sent_at.map(|at| at + RESEND_AFTER),
        ];
        for due in resends.into_iter().flatten() {
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        if self.chat_in_flight.is_none() && !self.chat_queue.is_empty() && self.chat_tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - self.chat_tokens) / CHAT_RATE);
            let due = self.chat_tokens_at + wait;
            next = Some(next.map_or(due, |n| n.min(due)));
        }
        next
    }

    fn start_group(&mut self, group_id: &str, founder: bool, now: Instant) {
        if self.mls.in_group() {
            self.mls.leave_group();
            self.out.push_back(Output::LeftGroup);
        }
        self.commit = None;
        self.key_packages.clear();
        self.group_id = group_id.to_owned();
        if founder {
            match hex::decode(group_id) {
                Ok(id) => match self.mls.create_group(&id) {
                    Ok(()) => self.entered_epoch(now),
                    Err(error) => warn!(%error, "cannot create the MLS group"),
                },
                Err(_) => warn!("server sent a group id that is not hex"),
            }
        } else {
            self.send_key_package();
        }
    }

    fn send_key_package(&mut self) {
        match self.mls.key_package() {
            Ok(kp) => {
                self.out
                    .push_back(Output::Send(ClientMessage::MlsKeyPackage {
                        key_package: B64.encode(kp),
                    }));
            }
            Err(error) => warn!(%error, "cannot make a KeyPackage"),
        }
    }

    fn desynchronized(&mut self, now: Instant) {
        if self.mls.in_group() {
            self.mls.leave_group();
            self.out.push_back(Output::LeftGroup);
        }
        self.commit = None;
        self.out.push_back(Output::Desynchronized);
        self.rejoin_as_new_client();
        self.maybe_commit(now);
    }

    /// Asks to be added again with a fresh signature key: the committer
    /// then replaces our stale leaf (same identity, old key) in one commit.
    fn rejoin_as_new_client(&mut self) {
        match MlsClient::new(self.mls.identity(), self.cfg.mls.clone()) {
            Ok(fresh) => self.mls = fresh,
            Err(error) => warn!(%error, "cannot make a fresh MLS client"),
        }
        self.send_key_package();
    }

    fn on_key_package(&mut self, pid: String, key_package: &str) {
        if pid == self.me {
            return;
        }
        let Some(present) = self.roster.get(&pid) else {
            debug!(%pid, "KeyPackage from a participant not in the room ignored");
            return;
        };
        let Ok(bytes) = B64.decode(key_package) else {
            warn!(%pid, "KeyPackage is not base64");
            return;
        };
        match self.mls.key_package_identity(&bytes) {
            Ok(member) if member.identity == present.identity => {
                self.key_packages.insert(
                    pid,
                    WaitingKeyPackage {
                        bytes,
                        identity: member.identity,
                        signature_key: member.signature_key,
                    },
                );
            }
            Ok(member) => warn!(
                %pid, claimed = %present.identity, credential = %member.identity,
                "KeyPackage credential does not match the participant's identity; refused"
            ),
            Err(error) => warn!(%pid, %error, "invalid KeyPackage refused"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_commit(
        &mut self,
        now: Instant,
        sender: &str,
        epoch: u64,
        commit: &str,
        welcome: Option<String>,
        added: &[String],
        removed: &[String],
    ) {
        for pid in added.iter().chain(removed) {
            self.key_packages.remove(pid);
        }
        if sender == self.me {
            match &self.commit {
                Some(ours) if ours.epoch == epoch => {
                    self.commit = None;
                    match self.mls.merge_pending_commit() {
                        Ok(()) => self.entered_epoch(now),
                        Err(error) => {
                            warn!(%error, "merging our own commit failed");
                            self.desynchronized(now);
                        }
                    }
                }
                // An echo of a commit we already gave up on (a resend).
                _ => debug!(epoch, "stale echo of our commit"),
            }
            return;
        }
        if !self.mls.in_group() {
            if added.iter().any(|p| p == &self.me)
                && let Some(welcome) = welcome
            {
                self.join(now, &welcome);
            }
            return;
        }
        if self.commit.take().is_some() {
            self.mls.clear_pending_commit();
        }
        let Some(current) = self.mls.epoch() else {
            return;
        };
        if epoch < current {
            debug!(epoch, current, "commit for a past epoch skipped");
            return;
        }
        if epoch > current {
            warn!(epoch, current, "commit for a future epoch: we missed one");
            self.desynchronized(now);
            return;
        }
        let Ok(bytes) = B64.decode(commit) else {
            self.desynchronized(now);
            return;
        };
        match self.mls.process(&bytes) {
            Ok(Processed::Commit { .. }) => {
                if self.mls.in_group() && self.mls.own_leaf().is_some() {
                    self.entered_epoch(now);
                } else {
                    info!("removed from the MLS group");
                    self.mls.leave_group();
                    self.out.push_back(Output::LeftGroup);
                    if self.roster.contains_key(&self.me) {
                        self.rejoin_as_new_client();
                    }
                }
            }
            Ok(_) => debug!("non-commit in a commit entry ignored"),
            Err(GroupError::NotInGroup) => {
                info!("removed from the MLS group");
                self.mls.leave_group();
                self.out.push_back(Output::LeftGroup);
                self.rejoin_as_new_client();
            }
            Err(error) => {
                warn!(%error, "cannot process a commit");
                self.desynchronized(now);
            }
        }
    }

    fn join(&mut self, now: Instant, welcome: &str) {
        let Ok(bytes) = B64.decode(welcome) else {
            warn!("Welcome is not base64");
            return;
        };
        match self.mls.join(&bytes) {
            Ok(true) => self.entered_epoch(now),
            Ok(false) => debug!("Welcome not for us"),
            Err(error) => warn!(%error, "cannot join from the Welcome"),
        }
    }

    fn on_application(&mut self, sender: &str, message: &str) {
        if sender == self.me {
            // MLS cannot decrypt our own messages: recognise the echo by
            // its ciphertext. After a resend both copies may come back;
            // the first one places the message, the second is a duplicate.
            let Some(ours) = self.own_sent.remove(message) else {
                debug!("echo of a chat message from an earlier session");
                return;
            };
            if self
                .chat_in_flight
                .as_ref()
                .is_some_and(|c| c.id == ours.id)
            {
                self.chat_in_flight = None;
                self.chat_sent_at = None;
            }
            let from = self.own_member();
            if self.chat_dedup.first(&from.signature_key, ours.id) {
                self.out.push_back(Output::Chat {
                    from,
                    text: ours.text,
                });
            }
            return;
        }
        if !self.mls.in_group() {
            return;
        }
        let Ok(bytes) = B64.decode(message) else {
            warn!(%sender, "application message is not base64");
            return;
        };
        match self.mls.process(&bytes) {
            Ok(Processed::Application { sender, data }) => match ChatPayload::decode(&data) {
                Some(chat) => {
                    if self.chat_dedup.first(&sender.signature_key, chat.id) {
                        self.out.push_back(Output::Chat {
                            from: sender,
                            text: chat.text,
                        });
                    }
                }
                None => warn!("undecodable chat payload dropped"),
            },
            Ok(_) => debug!("non-application message in an application entry"),
            Err(error) => warn!(%error, "cannot decrypt an application message"),
        }
    }

    fn own_member(&self) -> Member {
        let leaf = self.mls.own_leaf().unwrap_or(u32::MAX);
        self.mls
            .members()
            .into_iter()
            .find(|m| m.leaf == leaf)
            .unwrap_or_else(|| Member {
                leaf,
                identity: self.mls.identity().to_owned(),
                signature_key: self.mls.signature_key().to_vec(),
            })
    }

    fn entered_epoch(&mut self, now: Instant) {
        let (Some(epoch), Some(own_leaf)) = (self.mls.epoch(), self.mls.own_leaf()) else {
            return;
        };
        let base_key = match self.mls.sframe_base_key(self.cfg.sframe_nk) {
            Ok(key) => key,
            Err(error) => {
                warn!(%error, "MLS exporter failed");
                return;
            }
        };
        self.last_epoch_at = Some(now);
        self.change_pending_since = None;
        self.out.push_back(Output::Epoch {
            epoch,
            base_key,
            own_leaf,
            members: self.mls.members(),
            verification_code: self.mls.verification_code().unwrap_or_default(),
        });
        self.check_rosters(now);
    }

    fn pump_chat(&mut self, now: Instant) {
        if self.chat_in_flight.is_some() || !self.mls.in_group() || self.chat_queue.is_empty() {
            return;
        }
        let elapsed = now
            .saturating_duration_since(self.chat_tokens_at)
            .as_secs_f64();
        self.chat_tokens = (self.chat_tokens + elapsed * CHAT_RATE).min(CHAT_BURST);
        self.chat_tokens_at = now;
        if self.chat_tokens < 1.0 {
            return;
        }
        self.chat_tokens -= 1.0;
        if let Some(next) = self.chat_queue.pop_front() {
            self.send_chat_now(now, &next);
            self.chat_in_flight = Some(next);
        }
    }

    fn send_chat_now(&mut self, now: Instant, chat: &ChatPayload) {
        self.chat_sent_at = Some(now);
        let Some(epoch) = self.mls.epoch() else {
            return;
        };
        match self.mls.encrypt_application(&chat.encode()) {
            Ok(message) => {
                let message = B64.encode(message);
                if self.own_sent.len() >= MAX_OWN_SENT {
                    // Bounded: only a server that never echoes fills it.
                    self.own_sent.clear();
                }
                self.own_sent.insert(message.clone(), chat.clone());
                self.out
                    .push_back(Output::Send(ClientMessage::MlsApplication {
                        epoch,
                        message,
                    }));
            }
            Err(error) => warn!(%error, "cannot encrypt a chat message"),
        }
    }

    /// The changes the roster calls for: KeyPackages to add (with their
    /// participant ids) and leaves to remove (with theirs, where known).
    fn pending_changes(&self) -> (Vec<(String, Vec<u8>)>, Vec<u32>) {
        let members = self.mls.members();
        let present: BTreeSet<&str> = self.roster.values().map(|p| p.identity.as_str()).collect();
        let mut adds = Vec::new();
        let mut removes = Vec::new();
        for (pid, kp) in &self.key_packages {
            if !self.roster.contains_key(pid) {
                continue;
            }
            if members.iter().any(|m| m.signature_key == kp.signature_key) {
                continue;
            }
            // The same identity with an old key: the participant rejoined.
            for m in members.iter().filter(|m| m.identity == kp.identity) {
                removes.push(m.leaf);
            }
            adds.push((pid.clone(), kp.bytes.clone()));
        }
        let own = self.mls.own_leaf();
        for m in &members {
            if Some(m.leaf) != own && !present.contains(m.identity.as_str()) {
                removes.push(m.leaf);
            }
        }
        removes.sort_unstable();
        removes.dedup();
        adds.sort_by(|a, b| a.0.cmp(&b.0));
        (adds, removes)
    }

    /// Our place in the line of committers: 0 commits at once.
    fn committer_rank(&self) -> Option<usize> {
        let own = self.mls.own_leaf()?;
        let present: BTreeSet<&str> = self.roster.values().map(|p| p.identity.as_str()).collect();
        let mut eligible: Vec<u32> = self
            .mls
            .members()
            .iter()
            .filter(|m| m.leaf == own || present.contains(m.identity.as_str()))
            .map(|m| m.leaf)
            .collect();
        eligible.sort_unstable();
        eligible.iter().position(|l| *l == own)
    }

    fn maybe_commit(&mut self, now: Instant) {
        if !self.mls.in_group() || self.commit.is_some() {
            return;
        }
        let (adds, removes) = self.pending_changes();
        if adds.is_empty() && removes.is_empty() {
            self.change_pending_since = None;
            return;
        }
        let since = *self.change_pending_since.get_or_insert(now);
        let Some(rank) = self.committer_rank() else {
            return;
        };
        let wait = self.cfg.takeover_delay * u32::try_from(rank).unwrap_or(u32::MAX);
        if now.saturating_duration_since(since) < wait {
            return;
        }
        let add_bytes: Vec<&[u8]> = adds.iter().map(|(_, kp)| kp.as_slice()).collect();
        let add_pids: Vec<String> = adds.iter().map(|(pid, _)| pid.clone()).collect();
        let members = self.mls.members();
        let removed_pids: Vec<String> = removes
            .iter()
            .filter_map(|leaf| members.iter().find(|m| m.leaf == *leaf))
            .filter_map(|m| self.pid_of_identity(&m.identity))
            .collect();
        match self.mls.commit(&add_bytes, &removes) {
            Ok(commit) => {
                let added: Vec<String> = commit
                    .added
                    .iter()
                    .filter_map(|i| add_pids.get(*i).cloned())
                    .collect();
                // KeyPackages the client refused are not retried.
                for (i, pid) in add_pids.iter().enumerate() {
                    if !commit.added.contains(&i) {
                        self.key_packages.remove(pid);
                    }
                }
                self.send_commit(now, commit, added, removed_pids);
            }
            Err(error) => {
                warn!(%error, "cannot create a commit");
                self.mls.clear_pending_commit();
            }
        }
    }

    fn pid_of_identity(&self, identity: &str) -> Option<String> {
        self.roster
            .iter()
            .find(|(_, p)| p.identity == identity)
            .map(|(pid, _)| pid.clone())
    }

    fn send_commit(
        &mut self,
        now: Instant,
        commit: Commit,
        added: Vec<String>,
        removed: Vec<String>,
    ) {
        let Some(epoch) = self.mls.epoch() else {
            return;
        };
        let message = ClientMessage::MlsCommit {
            epoch,
            commit: B64.encode(&commit.commit),
            welcome: commit.welcome.as_ref().map(|w| B64.encode(w)),
            added,
            removed,
        };
        self.commit = Some(InFlightCommit {
            epoch,
            message: message.clone(),
            sent_at: now,
        });
        self.out.push_back(Output::Send(message));
    }

    /// Compares the MLS roster with the signaling roster and reports a
    /// difference that is not explained by a change in progress.
    fn check_rosters(&mut self, now: Instant) {
        if !self.mls.in_group() {
            return;
        }
        let mls: BTreeSet<String> = self.mls.members().into_iter().map(|m| m.identity).collect();
        let signaling: BTreeSet<String> =
            self.roster.values().map(|p| p.identity.clone()).collect();
        let differing: BTreeSet<String> = mls.symmetric_difference(&signaling).cloned().collect();
        self.differing_since.retain(|id, _| differing.contains(id));
        for id in &differing {
            self.differing_since.entry(id.clone()).or_insert(now);
        }
        let mut mls_only = Vec::new();
        let mut signaling_only = Vec::new();
        for (id, since) in &self.differing_since {
            let never_announced = mls.contains(id) && !self.announced.contains(id);
            let overdue = now.saturating_duration_since(*since) >= self.cfg.mismatch_grace;
            if never_announced || overdue {
                if mls.contains(id) {
                    mls_only.push(id.clone());
                } else {
                    signaling_only.push(id.clone());
                }
            }
        }
        let report = (mls_only, signaling_only);
        if report != self.reported_mismatch {
            if !report.0.is_empty() || !report.1.is_empty() {
                warn!(mls_only = ?report.0, signaling_only = ?report.1, "roster mismatch");
                self.out.push_back(Output::Mismatch {
                    mls_only: report.0.clone(),
                    signaling_only: report.1.clone(),
                });
            }
            self.reported_mismatch = report;
        }
    }
}
