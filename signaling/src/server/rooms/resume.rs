//! Suspension and resume: a participant whose connection is lost stays in
//! its room for a grace period, and a new connection that presents its
//! resume token takes it back, with every MLS log entry it missed.

use super::Rooms;
use crate::proto::{MlsInfo, RoomState};
use crate::server::delivery_log::{Gap, Logged};
use crate::server::ids;
use crate::server::outbox::{Outbox, Signal};
use crate::token::Grants;
use std::sync::Arc;

/// A `join` with `resume`, after its token was verified.
#[derive(Debug)]
pub(crate) struct ResumeRequest<'a> {
    pub(crate) room: &'a str,
    /// From the new token: it must match the session's.
    pub(crate) identity: &'a str,
    pub(crate) participant_id: &'a str,
    pub(crate) resume_token: &'a str,
    pub(crate) mls_seq: u64,
    /// The resuming connection.
    pub(crate) reader: Arc<Signal>,
}

/// A resumed session.
#[derive(Debug)]
pub(crate) struct Resumed {
    pub(crate) room: RoomState,
    pub(crate) mls: MlsInfo,
    /// The entries after the client's `mls_seq` (up to `mls.seq`), or a gap.
    pub(crate) replay: Result<Vec<Arc<Logged>>, Gap>,
    /// The participant's outbox, now read by the resuming connection.
    pub(crate) outbox: Outbox,
    /// The grants the session joined with (the media plane has them).
    pub(crate) grants: Grants,
}

/// Why a resume was refused. Deliberately not more precise on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResumeError {
    /// No such participant in that room (never was, expired, removed).
    Unknown,
    /// The participant exists but the identity or token does not match.
    Mismatch,
    /// Messages for it were lost (its outbox overflowed).
    Lost,
}

impl Rooms {
    /// Connection `conn` of `pid` is lost: keep the participant, buffering
    /// up to `buffer` messages, until a resume or [`Rooms::leave`]. Returns
    /// `false` if it is gone or another connection already owns it.
    pub(crate) fn suspend(&self, room: &str, pid: &str, conn: u64, buffer: usize) -> bool {
        let Some(r) = self.map.get(room) else {
            return false;
        };
        let suspended = r
            .members
            .get(pid)
            .is_some_and(|m| m.outbox.suspend(conn, buffer));
        if suspended {
            tracing::info!(participant = %pid, "connection lost: participant suspended");
        }
        suspended
    }

    /// Reattaches a participant to a new connection (it may be suspended,
    /// or still live on a connection the client gave up on, which is then
    /// detached). Nothing is sent to the media plane or the other members.
    ///
    /// If the log no longer holds what the client missed, the client will
    /// rejoin the group, so it is to be re-added (its leaf may be replaced);
    /// should that leave no member able to commit, the group resets (a `Reset` entry that reaches the
    /// resumed client after its `resumed`, like any live entry).
    pub(crate) fn resume(&self, req: ResumeRequest<'_>) -> Result<Resumed, ResumeError> {
        let mut guard = self.map.get_mut(req.room).ok_or(ResumeError::Unknown)?;
        let r = &mut *guard;
        let m = r
            .members
            .get(req.participant_id)
            .ok_or(ResumeError::Unknown)?;
        let token_ok = ids::secret_eq(&m.resume_token.0, req.resume_token);
        if !token_ok || m.info.identity != req.identity {
            return Err(ResumeError::Mismatch);
        }
        if !m.outbox.attach(req.reader) {
            return Err(ResumeError::Lost);
        }
        let (outbox, grants) = (m.outbox.clone(), m.grants);
        let from = req.mls_seq.max(m.joined_seq);
        let replay = r.mls.replay_after(from);
        let mls = r.mls.info(false);
        if replay.is_err()
            && let Some(reset) = r.mls.lost_state(req.participant_id)
        {
            tracing::info!("MLS group reset after a resume gap");
            self.reset_broadcast(req.room, r, &reset);
        }
        self.metrics.resume();
        tracing::info!(participant = %req.participant_id, gap = replay.is_err(), "session resumed");
        Ok(Resumed {
            room: RoomState {
                room: req.room.to_string(),
                participants: r.others(req.participant_id),
            },
            mls,
            replay,
            outbox,
            grants,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::tests::{drain, join_with, key_package, setup};
    use super::*;
    use crate::proto::{LeaveReason, ServerMessage};
    use crate::server::outbox::{Kick, Queued};

    #[tokio::test]
    async fn a_suspended_participant_resumes_with_what_it_missed() {
        let (rooms, _, _) = setup();
        let a = join_with(&rooms, "a", 64);
        let b = join_with(&rooms, "b", 64);
        rooms
            .mls_key_package("r", &b.pid, key_package("b"))
            .unwrap();
        drain(&b).await;
        assert!(rooms.suspend("r", &b.pid, b.sig.id(), 16));
        assert_eq!(rooms.counts().suspended, 1);
        // While Bob is away: two log entries and a room event.
        rooms
            .mls_application("r", &a.pid, 0, "eA==".into())
            .unwrap();
        let c = join_with(&rooms, "c", 64);
        rooms
            .mls_key_package("r", &c.pid, key_package("c"))
            .unwrap();

        let bad = |token: &str, identity: &str, pid: &str| {
            rooms
                .resume(ResumeRequest {
                    room: "r",
                    identity,
                    participant_id: pid,
                    resume_token: token,
                    mls_seq: 1,
                    reader: Signal::new(),
                })
                .unwrap_err()
        };
        let token = b.joined.resume_token.clone();
        assert_eq!(
            bad("0".repeat(32).as_str(), "b", &b.pid),
            ResumeError::Mismatch
        );
        assert_eq!(bad(&token, "a", &b.pid), ResumeError::Mismatch);
        assert_eq!(bad(&token, "b", "PA_nobody"), ResumeError::Unknown);

        let sig = Signal::new();
        let res = rooms
            .resume(ResumeRequest {
                room: "r",
                identity: "b",
                participant_id: &b.pid,
                resume_token: &token,
                mls_seq: 1,
                reader: sig.clone(),
            })
            .unwrap();
        assert_eq!(b.sig.kicked().await, Kick::Detached);
        let seqs: Vec<u64> = res.replay.unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [2, 3]);
        assert_eq!(res.mls.seq, 3);
        assert_eq!(res.room.participants.len(), 2);
        assert_eq!(rooms.counts().suspended, 0);
        // Only the room event is left in the outbox.
        let resumed = super::super::tests::Joiner {
            pid: b.pid.clone(),
            outbox: res.outbox,
            sig,
            joined: b.joined,
        };
        let queued = drain(&resumed).await;
        assert!(
            matches!(
                queued.as_slice(),
                [Queued::Msg(ServerMessage::ParticipantJoined { .. })]
            ),
            "{queued:?}"
        );
        // The old connection can no longer remove Bob; the new one can.
        assert!(!rooms.leave("r", &b.pid, b.sig.id(), LeaveReason::Disconnected));
        assert!(rooms.leave("r", &b.pid, resumed.sig.id(), LeaveReason::Left));
    }

    #[tokio::test]
    async fn a_resume_before_the_joiners_first_entry_is_not_a_gap() {
        let (rooms, _, _) = setup();
        let a = join_with(&rooms, "a", 1024);
        // Fill the log past its bound (64) before Bob joins.
        for _ in 0..100 {
            rooms
                .mls_application("r", &a.pid, 0, "eA==".into())
                .unwrap();
        }
        let b = join_with(&rooms, "b", 1024);
        assert_eq!(b.joined.mls.seq, 100);
        rooms
            .mls_key_package("r", &b.pid, key_package("b"))
            .unwrap();
        // Bob says he processed nothing (0): he still gets only what
        // followed his join.
        let res = rooms
            .resume(ResumeRequest {
                room: "r",
                identity: "b",
                participant_id: &b.pid,
                resume_token: b.joined.resume_token.as_str(),
                mls_seq: 0,
                reader: Signal::new(),
            })
            .unwrap();
        let seqs: Vec<u64> = res.replay.unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [101]);
    }
}
