//! The MLS delivery messages. The session checks that payloads are not
//! empty; the room's delivery service checks their content (see
//! `delivery_log`). Refusals carry a fixed reason, never library detail.

use super::{Out, Session};
use crate::proto::{ClientMessage, ErrorCode};
use crate::server::delivery_log::CommitMsg;
use crate::server::rooms::MlsError;

impl Session {
    pub(super) fn mls_message(&mut self, room: &str, pid: &str, msg: ClientMessage, out: &mut Out) {
        let rooms = &self.shared.rooms;
        let res = match msg {
            ClientMessage::MlsKeyPackage { key_package } => {
                if key_package.is_empty() {
                    self.reject(out, ErrorCode::BadMessage, "empty key_package");
                    return;
                }
                rooms.mls_key_package(room, pid, key_package)
            }
            ClientMessage::MlsGroupInfo { group_info } => {
                if group_info.is_empty() {
                    self.reject(out, ErrorCode::BadMessage, "empty group_info");
                    return;
                }
                rooms.mls_group_info(room, pid, &group_info)
            }
            // `added` and `removed` are not trusted: the delivery service
            // reads them from the commit.
            ClientMessage::MlsCommit {
                epoch,
                commit,
                welcome,
                ..
            } => {
                if commit.is_empty() || welcome.as_ref().is_some_and(String::is_empty) {
                    self.reject(out, ErrorCode::BadMessage, "empty commit or welcome");
                    return;
                }
                let msg = CommitMsg {
                    epoch,
                    commit,
                    welcome,
                };
                // A lost race is answered through the outbox, after the
                // entry that won.
                rooms.mls_commit(room, pid, msg).map(drop)
            }
            ClientMessage::MlsApplication { epoch, message } => {
                if message.is_empty() {
                    self.reject(out, ErrorCode::BadMessage, "empty message");
                    return;
                }
                rooms.mls_application(room, pid, epoch, message)
            }
            _ => Ok(()),
        };
        match res {
            Ok(()) => {}
            // Being removed: the kick that follows closes the session.
            Err(MlsError::Gone) => {}
            Err(MlsError::NotMember) => self.reject(
                out,
                ErrorCode::Forbidden,
                "not a member of the room's MLS group",
            ),
            Err(MlsError::Invalid(reason)) => self.reject(out, ErrorCode::BadMessage, reason.0),
        }
    }
}
