//! The room's group-key state machine: what this member does with each MLS
//! log entry and roster change, told the time and polled for outputs.
//!
//! It owns the MLS client. The server is the delivery service: it orders
//! the log, accepts one commit per epoch, and refuses commits that are
//! forged, replayed or change other members than the room calls for (it
//! tracks the group's public state from the GroupInfo the founder sends).
//! What to commit is still decided here, on every member, deterministically:
//! which change to commit and when is the [commit policy](crate::commit_policy),
//! ghosts are caught by the [roster check](crate::roster_check), and chat
//! goes out through the [chat outbox](crate::chat_outbox). This file ties
//! them to the MLS client and the delivery log: it processes entries, keeps
//! our own commit until the log settles it, and recovers from gaps.

mod log_entries;

use crate::chat::{ChatDedup, ChatPayload};
use crate::chat_outbox::{ChatOutbox, RESEND_AFTER};
use crate::commit_policy::{Changes, CommitPolicy, Pacing};
use crate::roster_check::RosterCheck;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use e2ee::group::{Commit, Member, MlsClient};
use signaling::proto::{ClientMessage, MlsEntry, MlsInfo};
use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};
use web_time::Instant;

/// Tuning of the group-key protocol.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// How long the next committer in line waits before it takes over.
    pub takeover_delay: Duration,
    /// How long a roster difference may last before it is reported.
    pub mismatch_grace: Duration,
    /// Periodic self-update, if any.
    pub self_update: Option<Duration>,
    /// Base-key length for the SFrame suite in use.
    pub sframe_nk: usize,
    /// MLS settings, for the fresh client a rejoin uses.
    pub mls: e2ee::group::MlsConfig,
    /// How joins are gathered into commits.
    pub pacing: Pacing,
}

/// Our commit, sent and not yet echoed or refused.
#[derive(Debug, Clone)]
struct InFlightCommit {
    epoch: u64,
    message: ClientMessage,
    sent_at: Instant,
}

/// What the coordinator asks its shell to do.
#[derive(Debug)]
pub enum Output {
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
pub struct Coordinator {
    cfg: CoordinatorConfig,
    me: String,
    mls: MlsClient,
    /// The last log entry processed.
    seq: u64,
    policy: CommitPolicy,
    roster_check: RosterCheck,
    commit: Option<InFlightCommit>,
    /// The GroupInfo of the group we founded, until it moves past epoch 0:
    /// a resume sends it again in case the old socket lost it.
    group_info: Option<ClientMessage>,
    last_epoch_at: Option<Instant>,
    chat: ChatOutbox,
    chat_dedup: ChatDedup,
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
    pub fn new(
        cfg: CoordinatorConfig,
        mls: MlsClient,
        me: &str,
        roster: impl IntoIterator<Item = (String, String)>,
        info: &MlsInfo,
        now: Instant,
    ) -> Self {
        let mut coordinator = Self {
            policy: CommitPolicy::new(cfg.takeover_delay, cfg.pacing),
            roster_check: RosterCheck::new(cfg.mismatch_grace),
            cfg,
            me: me.to_owned(),
            seq: info.seq,
            commit: None,
            group_info: None,
            last_epoch_at: None,
            chat: ChatOutbox::new(now),
            chat_dedup: ChatDedup::default(),
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
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// A participant appeared in the signaling roster.
    pub fn participant_joined(&mut self, pid: &str, identity: &str) {
        self.policy.joined(pid, identity);
        self.roster_check.announced(identity);
    }

    /// A participant left the signaling roster.
    pub fn participant_left(&mut self, pid: &str, now: Instant) {
        self.policy.left(pid);
        self.maybe_commit(now);
    }

    /// Queues a chat message; it goes out once we are in the group, one at
    /// a time (each after the previous one came back in the log), so that a
    /// reconnect can resend exactly what is missing.
    pub fn send_chat(&mut self, now: Instant, text: String) {
        self.chat.push(text);
        self.send_due_chat(now);
    }

    /// Chat messages not yet confirmed by the log, oldest first: a rejoin
    /// carries them to the new session.
    pub fn take_unsent_chat(&mut self) -> Vec<String> {
        self.chat.take_unsent()
    }

    /// After a resumed connection: resend what may have died with the old
    /// socket. Duplicates are harmless: the server refuses a second commit
    /// for an epoch and every member drops a repeated chat id.
    pub fn resumed(&mut self, now: Instant) {
        if let Some(info) = &self.group_info
            && self.mls.epoch() == Some(0)
        {
            self.out.push_back(Output::Send(info.clone()));
        }
        if let Some(commit) = &self.commit {
            self.out.push_back(Output::Send(commit.message.clone()));
        }
        if let Some(chat) = self.chat.resend_now(now) {
            self.encrypt_chat(chat);
        }
        if !self.mls.in_group() {
            self.send_key_package();
        }
        self.maybe_commit(now);
    }

    /// One log entry. Entries at or below the last processed sequence
    /// number are repeats (a resume replay) and are skipped.
    pub fn entry(&mut self, now: Instant, seq: u64, entry: MlsEntry) {
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
            } => self.on_key_package(now, participant_id, &key_package),
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
        self.send_due_chat(now);
    }

    /// The server could not replay everything we missed: our group state
    /// cannot be trusted to be current, so start over as a joiner.
    pub fn log_gap(&mut self, now: Instant) {
        self.desynchronized(now);
    }

    /// The server refused our commit for `epoch`.
    pub fn commit_rejected(&mut self, now: Instant, epoch: u64) {
        if self.commit.as_ref().is_some_and(|c| c.epoch == epoch) {
            debug!(epoch, "our commit lost; waiting for the winner's");
            self.commit = None;
            self.mls.clear_pending_commit();
            // The winner has not reached us: give it time rather than
            // commit again for an epoch that is gone.
            self.policy.lost(now);
            self.last_epoch_at = self.last_epoch_at.map(|_| now);
            self.maybe_commit(now);
        }
    }

    /// Time passed: resends, takeovers, self-updates, mismatch reports.
    pub fn tick(&mut self, now: Instant) {
        if let Some(commit) = &mut self.commit
            && now.saturating_duration_since(commit.sent_at) >= RESEND_AFTER
        {
            debug!(epoch = commit.epoch, "commit unanswered; sending it again");
            commit.sent_at = now;
            self.out.push_back(Output::Send(commit.message.clone()));
        }
        self.send_due_chat(now);
        self.maybe_commit(now);
        if let Some(due) = self.self_update_due()
            && now >= due
        {
            match self.mls.self_update() {
                Ok(commit) => self.send_commit(now, commit, Vec::new(), Vec::new()),
                Err(error) => {
                    warn!(%error, "self-update failed");
                    self.last_epoch_at = Some(now);
                }
            }
        }
        self.check_rosters(now);
    }

    /// The earliest time `tick` has something to do. Never a time already
    /// handled: a shell that sleeps until it does not spin.
    pub fn next_tick(&self) -> Option<Instant> {
        let in_group = self.mls.in_group();
        [
            self.policy.next_wakeup().filter(|_| in_group),
            self.roster_check.next_wakeup().filter(|_| in_group),
            self.self_update_due(),
            self.commit.as_ref().map(|c| c.sent_at + RESEND_AFTER),
            self.chat.next_wakeup(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// When the next periodic self-update is due (none while a commit of
    /// ours is in flight: its echo starts a new period).
    fn self_update_due(&self) -> Option<Instant> {
        let every = self.cfg.self_update?;
        let at = self.last_epoch_at?;
        (self.commit.is_none() && self.mls.in_group()).then_some(at + every)
    }

    fn start_group(&mut self, group_id: &str, founder: bool, now: Instant) {
        if self.mls.in_group() {
            self.mls.leave_group();
            self.out.push_back(Output::LeftGroup);
        }
        self.commit = None;
        self.group_info = None;
        self.policy.forget_key_packages();
        if founder {
            match hex::decode(group_id) {
                Ok(id) => match self.mls.create_group(&id) {
                    Ok(()) => {
                        self.send_group_info();
                        self.entered_epoch(now);
                    }
                    Err(error) => warn!(%error, "cannot create the MLS group"),
                },
                Err(_) => warn!("server sent a group id that is not hex"),
            }
        } else {
            self.send_key_package();
        }
    }

    /// Hands the new group's public state to the delivery service, which
    /// accepts no commit before it.
    fn send_group_info(&mut self) {
        match self.mls.group_info() {
            Ok(info) => {
                let message = ClientMessage::MlsGroupInfo {
                    group_info: B64.encode(info),
                };
                self.group_info = Some(message.clone());
                self.out.push_back(Output::Send(message));
            }
            Err(error) => warn!(%error, "cannot export the GroupInfo"),
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
    /// A KeyPackage from a member is also how the server learns that we
    /// lost our group state (it then allows our old leaf to be removed).
    fn rejoin_as_new_client(&mut self) {
        match MlsClient::new(self.mls.identity(), self.cfg.mls.clone()) {
            Ok(fresh) => self.mls = fresh,
            Err(error) => warn!(%error, "cannot make a fresh MLS client"),
        }
        self.send_key_package();
    }

    fn own_member(&self) -> Member {
        let leaf = self.mls.own_leaf().unwrap_or(u32::MAX);
        self.mls
            .members()
            .iter()
            .find(|m| m.leaf == leaf)
            .cloned()
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
        self.policy.entered_epoch(now);
        self.out.push_back(Output::Epoch {
            epoch,
            base_key,
            own_leaf,
            members: self.mls.members().to_vec(),
            verification_code: self.mls.verification_code().unwrap_or_default(),
        });
        self.check_rosters(now);
    }

    /// After a rejoin: hold chat until the `identities` of the old group
    /// are back in the new one, or until `until` (see `chat_outbox`).
    pub fn hold_chat_until_back(&mut self, identities: BTreeSet<String>, until: Instant) {
        self.chat.hold_until_back(identities, until);
    }

    /// The identities of the other members of our group.
    pub fn other_member_identities(&self) -> BTreeSet<String> {
        let me = self.mls.identity();
        self.mls
            .members()
            .iter()
            .filter(|m| m.identity != me)
            .map(|m| m.identity.clone())
            .collect()
    }

    /// Sends the chat message that is due, if any.
    fn send_due_chat(&mut self, now: Instant) {
        let held = self.chat.holding()
            && self
                .chat
                .held(now, self.mls.members().iter().map(|m| m.identity.as_str()));
        if let Some(chat) = self.chat.poll_send(now, self.mls.in_group() && !held) {
            self.encrypt_chat(chat);
        }
    }

    fn encrypt_chat(&mut self, chat: ChatPayload) {
        let Some(epoch) = self.mls.epoch() else {
            return;
        };
        match self.mls.encrypt_application(&chat.encode()) {
            Ok(message) => {
                let message = B64.encode(message);
                self.chat.sent(message.clone(), chat);
                self.out
                    .push_back(Output::Send(ClientMessage::MlsApplication {
                        epoch,
                        message,
                    }));
            }
            Err(error) => warn!(%error, "cannot encrypt a chat message"),
        }
    }

    fn maybe_commit(&mut self, now: Instant) {
        if !self.mls.in_group() || self.commit.is_some() {
            self.policy.pause();
            return;
        }
        let members = self.mls.members();
        let Some(changes) = self.verified_changes(now, &members) else {
            return;
        };
        let add_bytes: Vec<&[u8]> = changes.adds.iter().map(|(_, kp)| kp.as_slice()).collect();
        let removed_pids: Vec<String> = changes
            .removes
            .iter()
            .filter_map(|leaf| members.iter().find(|m| m.leaf == *leaf))
            .filter_map(|m| self.policy.pid_of_identity(&m.identity))
            .collect();
        match self.mls.commit(&add_bytes, &changes.removes) {
            Ok(commit) => {
                let mut added = Vec::new();
                for (i, (pid, _)) in changes.adds.iter().enumerate() {
                    if commit.added.contains(&i) {
                        added.push(pid.clone());
                    } else {
                        // A KeyPackage the client refused is not retried.
                        self.policy.settled(pid);
                    }
                }
                self.send_commit(now, commit, added, removed_pids);
            }
            Err(error) => {
                // Not a passing condition (every KeyPackage invalid, say):
                // those KeyPackages are not tried again.
                warn!(%error, "cannot create a commit");
                self.mls.clear_pending_commit();
                for (pid, _) in &changes.adds {
                    self.policy.settled(pid);
                }
            }
        }
    }

    /// The changes due now, once every KeyPackage in them is verified: a
    /// forged one (its claim was only parsed) is dropped for good before
    /// it can add anyone or remove the leaf of the identity it names.
    fn verified_changes(&mut self, now: Instant, members: &Arc<[Member]>) -> Option<Changes> {
        loop {
            let changes = self.policy.due(now, members, self.mls.own_leaf())?;
            let mut forged = Vec::new();
            for (pid, _) in &changes.adds {
                let Some(kp) = self.policy.key_package_mut(pid) else {
                    continue;
                };
                if kp.verified {
                    continue;
                }
                match self.mls.key_package_identity(&kp.bytes) {
                    Ok(m) if m.identity == kp.identity && m.signature_key == kp.signature_key => {
                        kp.verified = true;
                    }
                    _ => forged.push(pid.clone()),
                }
            }
            if forged.is_empty() {
                return Some(changes);
            }
            for pid in forged {
                warn!(%pid, "KeyPackage does not verify; refused");
                self.policy.settled(&pid);
            }
        }
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

    /// Reports a roster difference that is not explained by a change in
    /// progress.
    fn check_rosters(&mut self, now: Instant) {
        if !self.mls.in_group() {
            return;
        }
        let members = self.mls.members();
        let mls: BTreeSet<&str> = members.iter().map(|m| m.identity.as_str()).collect();
        let signaling = self.policy.present_identities();
        if let Some(m) = self.roster_check.check(now, &mls, &signaling) {
            warn!(mls_only = ?m.mls_only, signaling_only = ?m.signaling_only, "roster mismatch");
            self.out.push_back(Output::Mismatch {
                mls_only: m.mls_only,
                signaling_only: m.signaling_only,
            });
        }
    }
}
