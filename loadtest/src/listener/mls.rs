//! The listener's MLS work, done on the [`MlsPool`] instead of its own
//! task: the coordinator travels to a pool thread with the inputs queued
//! for it and comes back with its outputs waiting to be polled. While it
//! is away the task goes on with the media; what arrives for it meanwhile
//! waits here, in order, for its next trip.

use crate::mls_pool::MlsPool;
use client_core::Coordinator;
use signaling::proto::MlsEntry;
use std::collections::VecDeque;
use std::time::Instant;
use tokio::sync::oneshot;

/// One input of the group-key state machine, in the order the listener
/// saw it (the log's entries and the roster changes around them).
#[derive(Debug)]
pub(super) enum CoordInput {
    /// A log entry.
    Entry { seq: u64, entry: MlsEntry },
    /// The server refused our commit for `epoch`.
    CommitRejected { epoch: u64 },
    /// The server could not replay what we missed.
    LogGap,
    /// Someone joined the room.
    ParticipantJoined {
        participant_id: String,
        identity: String,
    },
    /// Someone left the room.
    ParticipantLeft { participant_id: String },
    /// Its timer came due (its turn to commit, a resend, a roster check).
    Tick,
}

/// What can take [`CoordInput`]s: the coordinator, or a stand-in in tests.
pub(super) trait Group: Send + 'static {
    /// Takes `input` at `now`.
    fn apply(&mut self, now: Instant, input: CoordInput);
}

impl Group for Coordinator {
    fn apply(&mut self, now: Instant, input: CoordInput) {
        match input {
            CoordInput::Entry { seq, entry } => self.entry(now, seq, entry),
            CoordInput::CommitRejected { epoch } => self.commit_rejected(now, epoch),
            CoordInput::LogGap => self.log_gap(now),
            CoordInput::ParticipantJoined {
                participant_id,
                identity,
            } => self.participant_joined(&participant_id, &identity),
            CoordInput::ParticipantLeft { participant_id } => {
                self.participant_left(&participant_id, now);
            }
            CoordInput::Tick => self.tick(now),
        }
    }
}

/// The coordinator pool thread lost (its job panicked or the pool is
/// gone): the session cannot go on.
#[derive(Debug, thiserror::Error)]
#[error("the MLS worker lost the group state")]
pub(super) struct Lost;

/// The coordinator, at home or away, and the inputs waiting for it.
pub(super) struct MlsWork<C> {
    /// `Some` while it is home (boxed: it moves to and fro).
    home: Option<Box<C>>,
    /// `Some` while it is away.
    away: Option<oneshot::Receiver<Box<C>>>,
    queue: VecDeque<CoordInput>,
}

impl<C: Group> MlsWork<C> {
    /// Starts at home with nothing queued.
    pub(super) fn new(group: C) -> Self {
        Self {
            home: Some(Box::new(group)),
            away: None,
            queue: VecDeque::new(),
        }
    }

    /// Queues `input` for the next trip.
    pub(super) fn push(&mut self, input: CoordInput) {
        self.queue.push_back(input);
    }

    /// The coordinator, if home: only then may it be polled or asked when
    /// it next needs time.
    pub(super) fn home(&mut self) -> Option<&mut C> {
        self.home.as_deref_mut()
    }

    /// Sends the coordinator with everything queued to `pool`, if it is
    /// home and something is queued. Each input is applied at the time the
    /// pool thread gets to it, as a client's MLS thread would.
    pub(super) fn dispatch(&mut self, pool: &MlsPool) {
        if self.queue.is_empty() {
            return;
        }
        let Some(mut group) = self.home.take() else {
            return;
        };
        let inputs = std::mem::take(&mut self.queue);
        self.away = Some(pool.run(move || {
            for input in inputs {
                group.apply(Instant::now(), input);
            }
            group
        }));
    }

    /// Waits for the coordinator to come back; never resolves while it is
    /// home. Cancel-safe: dropping the future leaves it away.
    pub(super) async fn back(&mut self) -> Result<(), Lost> {
        let Some(away) = &mut self.away else {
            return std::future::pending().await;
        };
        let result = away.await;
        self.away = None;
        self.home = Some(result.map_err(|_| Lost)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it was given; panics on a gap.
    #[derive(Default)]
    struct Recorder {
        seen: Vec<String>,
    }

    impl Group for Recorder {
        fn apply(&mut self, _now: Instant, input: CoordInput) {
            let label = match input {
                CoordInput::Entry { seq, .. } => format!("entry {seq}"),
                CoordInput::CommitRejected { epoch } => format!("rejected {epoch}"),
                CoordInput::LogGap => panic!("the stand-in fails on a gap"),
                CoordInput::ParticipantJoined { participant_id, .. } => {
                    format!("joined {participant_id}")
                }
                CoordInput::ParticipantLeft { participant_id } => format!("left {participant_id}"),
                CoordInput::Tick => "tick".to_owned(),
            };
            self.seen.push(label);
        }
    }

    fn entry(seq: u64) -> CoordInput {
        CoordInput::Entry {
            seq,
            entry: MlsEntry::Reset {
                group_id: "00".to_owned(),
                founder: "p".to_owned(),
            },
        }
    }

    fn joined(id: &str) -> CoordInput {
        CoordInput::ParticipantJoined {
            participant_id: id.to_owned(),
            identity: id.to_owned(),
        }
    }

    #[tokio::test]
    async fn inputs_queued_while_away_follow_in_order() {
        let pool = MlsPool::new(2, 0);
        let mut work = MlsWork::new(Recorder::default());
        work.push(joined("a"));
        work.push(entry(1));
        work.dispatch(&pool);
        assert!(work.home().is_none(), "away with the first batch");

        // Arrives while it is away: waits, and a second dispatch does not
        // send anything without it.
        work.push(entry(2));
        work.push(CoordInput::ParticipantLeft {
            participant_id: "a".to_owned(),
        });
        work.push(CoordInput::CommitRejected { epoch: 3 });
        work.dispatch(&pool);
        work.push(CoordInput::Tick);

        work.back().await.expect("came back");
        let home = work.home().expect("home");
        assert_eq!(home.seen, ["joined a", "entry 1"]);

        work.dispatch(&pool);
        work.back().await.expect("came back");
        assert_eq!(
            work.home().expect("home").seen,
            [
                "joined a",
                "entry 1",
                "entry 2",
                "left a",
                "rejected 3",
                "tick"
            ]
        );
    }

    #[tokio::test]
    async fn nothing_queued_stays_home() {
        let pool = MlsPool::new(1, 0);
        let mut work = MlsWork::new(Recorder::default());
        work.dispatch(&pool);
        assert!(work.home().is_some());
        // `back` never resolves at home.
        let waited = tokio::time::timeout(std::time::Duration::ZERO, work.back()).await;
        assert!(waited.is_err());
    }

    #[tokio::test]
    async fn a_failed_job_loses_the_group() {
        let pool = MlsPool::new(1, 0);
        let mut work = MlsWork::new(Recorder::default());
        work.push(CoordInput::LogGap);
        work.dispatch(&pool);
        assert!(work.back().await.is_err());
        assert!(work.home().is_none());
    }

    #[test]
    fn leaving_while_away_does_not_wait() {
        let pool = MlsPool::new(1, 0);
        let mut work = MlsWork::new(Recorder::default());
        work.push(entry(1));
        work.dispatch(&pool);
        drop(work);
        // The pool goes on with the next job.
        assert_eq!(pool.run(|| 5).blocking_recv().expect("ran"), 5);
    }
}
