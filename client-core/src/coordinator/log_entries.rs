//! What each kind of MLS log entry does to this member's group state:
//! KeyPackages are vetted and kept for the commit policy, commits are
//! merged (our own) or processed (anyone else's), Welcomes bring us in, and
//! application messages are chat.

use super::{Coordinator, Output};
use crate::chat::ChatPayload;
use crate::commit_policy::WaitingKeyPackage;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use e2ee::group::{GroupError, Processed};
use tracing::{debug, info, warn};
use web_time::Instant;

impl Coordinator {
    pub(super) fn on_key_package(&mut self, now: Instant, pid: String, key_package: &str) {
        if pid == self.me {
            return;
        }
        let Some(claimed) = self.policy.identity_of(&pid).map(str::to_owned) else {
            debug!(%pid, "KeyPackage from a participant not in the room ignored");
            return;
        };
        let Ok(bytes) = B64.decode(key_package) else {
            warn!(%pid, "KeyPackage is not base64");
            return;
        };
        // Only parsed here: whoever commits it verifies it first (see
        // `maybe_commit`), so a big room does not make every member verify
        // every joiner's signatures.
        match self.mls.key_package_claim(&bytes) {
            Ok(member) if member.identity == claimed => {
                self.policy.key_package(
                    pid,
                    WaitingKeyPackage {
                        bytes,
                        identity: member.identity,
                        signature_key: member.signature_key,
                        arrival: self.seq,
                        received: now,
                        verified: false,
                    },
                );
            }
            Ok(member) => warn!(
                %pid, %claimed, credential = %member.identity,
                "KeyPackage credential does not match the participant's identity; refused"
            ),
            Err(error) => warn!(%pid, %error, "invalid KeyPackage refused"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_commit(
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
            self.policy.settled(pid);
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
                    self.removed(now, added, welcome);
                }
            }
            Ok(_) => debug!("non-commit in a commit entry ignored"),
            Err(GroupError::NotInGroup) => self.removed(now, added, welcome),
            Err(error) => {
                warn!(%error, "cannot process a commit");
                self.desynchronized(now);
            }
        }
    }

    /// A commit removed our leaf. If it also re-added us (a KeyPackage of
    /// this client replaces the old leaf), join from its Welcome; otherwise
    /// ask to be added again if we are still in the room.
    fn removed(&mut self, now: Instant, added: &[String], welcome: Option<String>) {
        info!("removed from the MLS group");
        self.mls.leave_group();
        self.out.push_back(Output::LeftGroup);
        if added.iter().any(|p| p == &self.me)
            && let Some(welcome) = welcome
            && self.join(now, &welcome)
        {
            return;
        }
        if self.policy.identity_of(&self.me).is_some() {
            self.rejoin_as_new_client();
        }
    }

    /// Joins from a Welcome that adds us; whether we are in the group. A
    /// Welcome we cannot process is reported (a fresh KeyPackage from the
    /// member the server thinks we are), so that we are re-added instead
    /// of waiting forever.
    fn join(&mut self, now: Instant, welcome: &str) -> bool {
        let Ok(bytes) = B64.decode(welcome) else {
            warn!("Welcome is not base64");
            self.desynchronized(now);
            return false;
        };
        match self.mls.join(&bytes) {
            Ok(true) => {
                self.entered_epoch(now);
                true
            }
            // For a KeyPackage of an earlier client of ours: the newer
            // one we sent since will be added.
            Ok(false) => {
                debug!("Welcome not for this client");
                false
            }
            Err(error) => {
                warn!(%error, "cannot join from the Welcome");
                self.desynchronized(now);
                false
            }
        }
    }

    pub(super) fn on_application(&mut self, sender: &str, message: &str) {
        if sender == self.me {
            let Some(ours) = self.chat.echoed(message) else {
                debug!("echo of a chat message from an earlier session");
                return;
            };
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
}
