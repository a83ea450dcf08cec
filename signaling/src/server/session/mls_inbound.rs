//! The MLS delivery messages. The server checks only sizes and the
//! declared metadata; the payloads are opaque base64 it never decodes.

use super::{MAX_NAME_BYTES, Out, Session, bad_name};
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
            ClientMessage::MlsCommit {
                epoch,
                commit,
                welcome,
                added,
                removed,
            } => {
                let max_ids = self.shared.config.max_participants_per_room;
                let bad_ids =
                    |ids: &[String]| ids.len() > max_ids || ids.iter().any(|p| bad_name(p));
                if commit.is_empty() || welcome.as_ref().is_some_and(String::is_empty) {
                    self.reject(out, ErrorCode::BadMessage, "empty commit or welcome");
                    return;
                }
                if bad_ids(&added) || bad_ids(&removed) {
                    self.reject(
                        out,
                        ErrorCode::BadMessage,
                        format!(
                            "added and removed hold at most {max_ids} participant ids of 1 to {MAX_NAME_BYTES} bytes"
                        ),
                    );
                    return;
                }
                let msg = CommitMsg {
                    epoch,
                    commit,
                    welcome,
                    added,
                    removed,
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
                "not a member of the room's MLS group (as its commits declare)",
            ),
        }
    }
}
