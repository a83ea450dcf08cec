//! The server's side of the room: what the signaling server's room
//! registry does with each MLS message a member sends, through the real
//! delivery service.

use super::{CommitSeen, Link, World, parse};
use signaling::proto::{ClientMessage, ErrorCode, MlsEntry, ServerMessage};
use signaling::server::delivery_log::{CommitMsg, CommitRefusal};

impl World {
    /// The server handles a client's MLS message as the room registry does.
    pub(super) fn at_server(&mut self, node: usize, msg: ClientMessage) {
        if self.nodes[node].link == Link::Gone {
            return;
        }
        let pid = self.nodes[node].pid.clone();
        match msg {
            ClientMessage::MlsKeyPackage { key_package } => {
                match self.log.key_package(&pid, key_package) {
                    Ok(entries) => {
                        for e in &entries {
                            self.broadcast_logged(e);
                        }
                    }
                    Err(e) => self.refuse(node, format!("key package: {}", e.0)),
                }
            }
            ClientMessage::MlsGroupInfo { group_info } => {
                if let Err(e) = self.log.group_info(&pid, &group_info) {
                    self.refuse(node, format!("group info: {}", e.0));
                }
            }
            ClientMessage::MlsCommit {
                epoch,
                commit,
                welcome,
                ..
            } => {
                let msg = CommitMsg {
                    epoch,
                    commit,
                    welcome,
                };
                let result = self.log.commit(&pid, msg);
                let (added, removed) = match &result {
                    Ok(logged) => match parse(logged) {
                        ServerMessage::Mls {
                            entry: MlsEntry::Commit { added, removed, .. },
                            ..
                        } => (added, removed),
                        other => panic!("a commit entry, got {other:?}"),
                    },
                    Err(_) => (Vec::new(), Vec::new()),
                };
                self.commits.push(CommitSeen {
                    at: self.now,
                    from: pid,
                    epoch,
                    accepted: result.is_ok(),
                    added,
                    removed,
                });
                match result {
                    Ok(logged) => self.broadcast_logged(&logged),
                    Err(
                        CommitRefusal::WrongEpoch { current }
                        | CommitRefusal::Roster { current, .. },
                    ) => self.deliver(
                        node,
                        ServerMessage::MlsCommitRejected {
                            epoch,
                            current_epoch: current,
                        },
                    ),
                    Err(CommitRefusal::NotMember) => self.deliver(node, forbidden()),
                    Err(CommitRefusal::Invalid(e)) => {
                        self.refuse(node, format!("commit: {}", e.0));
                    }
                }
            }
            ClientMessage::MlsApplication { epoch, message } => {
                match self.log.application(&pid, epoch, message) {
                    Ok(logged) => self.broadcast_logged(&logged),
                    Err(_) => self.deliver(node, forbidden()),
                }
            }
            other => panic!("unexpected client message {other:?}"),
        }
    }

    /// Records an invalid message and answers it as the server does.
    fn refuse(&mut self, node: usize, why: String) {
        self.refused.push(why.clone());
        self.deliver(
            node,
            ServerMessage::Error {
                code: ErrorCode::BadMessage,
                message: why,
            },
        );
    }
}

fn forbidden() -> ServerMessage {
    ServerMessage::Error {
        code: ErrorCode::Forbidden,
        message: "not a member of the room's MLS group".into(),
    }
}
