//! Signaling counters and their Prometheus text form.

use super::delivery_log::{EntryKind, Refused};
use crate::proto::{ErrorCode, LeaveReason};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Every [`ErrorCode`] in a stable order, with its wire name.
const ERROR_CODES: [(ErrorCode, &str); 12] = [
    (ErrorCode::BadMessage, "bad_message"),
    (ErrorCode::TooLarge, "too_large"),
    (ErrorCode::OutOfOrder, "out_of_order"),
    (ErrorCode::Unauthorized, "unauthorized"),
    (ErrorCode::Forbidden, "forbidden"),
    (ErrorCode::ProtocolVersion, "protocol_version"),
    (ErrorCode::RateLimited, "rate_limited"),
    (ErrorCode::NotFound, "not_found"),
    (ErrorCode::Media, "media"),
    (ErrorCode::Unavailable, "unavailable"),
    (ErrorCode::MlsGap, "mls_gap"),
    (ErrorCode::ResumeFailed, "resume_failed"),
];

/// Every [`LeaveReason`] in a stable order, with its wire name.
const LEAVE_REASONS: [(LeaveReason, &str); 6] = [
    (LeaveReason::Left, "left"),
    (LeaveReason::Disconnected, "disconnected"),
    (LeaveReason::MediaTimeout, "media_timeout"),
    (LeaveReason::Removed, "removed"),
    (LeaveReason::RoomClosed, "room_closed"),
    (LeaveReason::Replaced, "replaced"),
];

// Exhaustive matches: a new code or reason fails to compile until it is
// given a slot here (the tests check the slots agree with the tables).
fn error_index(code: ErrorCode) -> usize {
    match code {
        ErrorCode::BadMessage => 0,
        ErrorCode::TooLarge => 1,
        ErrorCode::OutOfOrder => 2,
        ErrorCode::Unauthorized => 3,
        ErrorCode::Forbidden => 4,
        ErrorCode::ProtocolVersion => 5,
        ErrorCode::RateLimited => 6,
        ErrorCode::NotFound => 7,
        ErrorCode::Media => 8,
        ErrorCode::Unavailable => 9,
        ErrorCode::MlsGap => 10,
        ErrorCode::ResumeFailed => 11,
    }
}

fn leave_index(reason: LeaveReason) -> usize {
    match reason {
        LeaveReason::Left => 0,
        LeaveReason::Disconnected => 1,
        LeaveReason::MediaTimeout => 2,
        LeaveReason::Removed => 3,
        LeaveReason::RoomClosed => 4,
        LeaveReason::Replaced => 5,
    }
}

/// Cheap counters, bumped off the media hot path.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    messages: AtomicU64,
    errors: [AtomicU64; ERROR_CODES.len()],
    joins: AtomicU64,
    leaves: [AtomicU64; LEAVE_REASONS.len()],
    slow_consumers: AtomicU64,
    mls_entries: [AtomicU64; EntryKind::ALL.len()],
    mls_bytes: AtomicU64,
    mls_commits_rejected: AtomicU64,
    mls_refused: [AtomicU64; Refused::ALL.len()],
    mls_founders_replaced: AtomicU64,
    resumes: AtomicU64,
}

/// Gauges read from live state at render time.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Gauges {
    pub(crate) rooms: usize,
    pub(crate) participants: usize,
    pub(crate) tracks: usize,
    pub(crate) connections: usize,
    pub(crate) suspended: usize,
    pub(crate) mls_log_entries: usize,
    pub(crate) mls_log_bytes: usize,
    pub(crate) mls_key_packages: usize,
}

impl Metrics {
    pub(crate) fn message(&self) {
        self.messages.fetch_add(1, Relaxed);
    }
    pub(crate) fn error(&self, code: ErrorCode) {
        self.errors[error_index(code)].fetch_add(1, Relaxed);
    }
    pub(crate) fn join(&self) {
        self.joins.fetch_add(1, Relaxed);
    }
    pub(crate) fn leave(&self, reason: LeaveReason) {
        self.leaves[leave_index(reason)].fetch_add(1, Relaxed);
    }
    pub(crate) fn slow_consumer(&self) {
        self.slow_consumers.fetch_add(1, Relaxed);
    }
    /// One MLS log entry appended (and broadcast), `bytes` serialized.
    pub(crate) fn mls_entry(&self, kind: EntryKind, bytes: usize) {
        self.mls_entries[kind.index()].fetch_add(1, Relaxed);
        self.mls_bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Relaxed);
    }
    pub(crate) fn mls_commit_rejected(&self) {
        self.mls_commits_rejected.fetch_add(1, Relaxed);
    }
    /// One MLS message the delivery service refused, by reason.
    pub(crate) fn mls_refused(&self, reason: Refused) {
        self.mls_refused[reason.index()].fetch_add(1, Relaxed);
    }
    /// A founder replaced for not creating its group in time.
    pub(crate) fn mls_founder_replaced(&self) {
        self.mls_founders_replaced.fetch_add(1, Relaxed);
    }
    pub(crate) fn resume(&self) {
        self.resumes.fetch_add(1, Relaxed);
    }

    /// Appends the Prometheus text exposition of these counters and `g`.
    pub(crate) fn render(&self, g: Gauges, out: &mut String) {
        let mut w = |name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        w("sfu_rooms", "gauge", "Rooms with at least one participant.");
        w(
            "sfu_participants",
            "gauge",
            "Participants joined to a room.",
        );
        w(
            "sfu_signaling_tracks",
            "gauge",
            "Tracks published, as signaling sees them.",
        );
        w(
            "sfu_signaling_connections",
            "gauge",
            "Open signaling WebSocket connections.",
        );
        let _ = writeln!(out, "sfu_rooms {}", g.rooms);
        let _ = writeln!(out, "sfu_participants {}", g.participants);
        let _ = writeln!(out, "sfu_signaling_tracks {}", g.tracks);
        let _ = writeln!(out, "sfu_signaling_connections {}", g.connections);
        for (name, help, v) in [
            (
                "sfu_signaling_suspended_participants",
                "Participants whose connection was lost, waiting for a resume.",
                g.suspended,
            ),
            (
                "sfu_signaling_mls_log_entries",
                "MLS log entries held for resumes, over all rooms.",
                g.mls_log_entries,
            ),
            (
                "sfu_signaling_mls_log_bytes",
                "Bytes of MLS log held for resumes, over all rooms.",
                g.mls_log_bytes,
            ),
            (
                "sfu_signaling_mls_key_packages",
                "KeyPackages of participants not yet added to their room's group.",
                g.mls_key_packages,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }

        let _ = writeln!(
            out,
            "# HELP sfu_signaling_messages_total Signaling messages received from clients.\n\
             # TYPE sfu_signaling_messages_total counter\n\
             sfu_signaling_messages_total {}",
            self.messages.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP sfu_signaling_errors_total Error messages sent to clients, by code.\n\
             # TYPE sfu_signaling_errors_total counter"
        );
        for ((_, name), n) in ERROR_CODES.iter().zip(&self.errors) {
            let _ = writeln!(
                out,
                "sfu_signaling_errors_total{{code=\"{name}\"}} {}",
                n.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sfu_joins_total Successful joins.\n\
             # TYPE sfu_joins_total counter\n\
             sfu_joins_total {}",
            self.joins.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP sfu_leaves_total Participants that left a room, by reason.\n\
             # TYPE sfu_leaves_total counter"
        );
        for ((_, name), n) in LEAVE_REASONS.iter().zip(&self.leaves) {
            let _ = writeln!(
                out,
                "sfu_leaves_total{{reason=\"{name}\"}} {}",
                n.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sfu_signaling_slow_consumers_total Sessions closed because their outbound queue overflowed.\n\
             # TYPE sfu_signaling_slow_consumers_total counter\n\
             sfu_signaling_slow_consumers_total {}",
            self.slow_consumers.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP sfu_signaling_mls_entries_total MLS log entries appended and broadcast, by kind.\n\
             # TYPE sfu_signaling_mls_entries_total counter"
        );
        for ((_, name), n) in EntryKind::ALL.iter().zip(&self.mls_entries) {
            let _ = writeln!(
                out,
                "sfu_signaling_mls_entries_total{{kind=\"{name}\"}} {}",
                n.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sfu_signaling_mls_bytes_total Bytes of MLS log entries appended (each broadcast to every member).\n\
             # TYPE sfu_signaling_mls_bytes_total counter\n\
             sfu_signaling_mls_bytes_total {}",
            self.mls_bytes.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP sfu_signaling_mls_commits_rejected_total MLS commits refused (epoch taken or not current, not a member, roster mismatch, malformed or forged).\n\
             # TYPE sfu_signaling_mls_commits_rejected_total counter\n\
             sfu_signaling_mls_commits_rejected_total {}",
            self.mls_commits_rejected.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP sfu_signaling_mls_refused_total MLS messages the delivery service refused, by reason.\n\
             # TYPE sfu_signaling_mls_refused_total counter"
        );
        for ((_, name), n) in Refused::ALL.iter().zip(&self.mls_refused) {
            let _ = writeln!(
                out,
                "sfu_signaling_mls_refused_total{{reason=\"{name}\"}} {}",
                n.load(Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sfu_signaling_mls_founders_replaced_total MLS founders replaced for not creating their group in time.\n\
             # TYPE sfu_signaling_mls_founders_replaced_total counter\n\
             sfu_signaling_mls_founders_replaced_total {}",
            self.mls_founders_replaced.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP sfu_signaling_resumes_total Sessions taken back by a join with resume.\n\
             # TYPE sfu_signaling_resumes_total counter\n\
             sfu_signaling_resumes_total {}",
            self.resumes.load(Relaxed)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_match_the_wire_names() {
        for (i, (code, _)) in ERROR_CODES.iter().enumerate() {
            assert_eq!(error_index(*code), i);
        }
        for (i, (reason, _)) in LEAVE_REASONS.iter().enumerate() {
            assert_eq!(leave_index(*reason), i);
        }
        for (code, name) in ERROR_CODES {
            assert_eq!(
                serde_json::to_string(&code).ok(),
                Some(format!("\"{name}\""))
            );
        }
        for (i, (kind, _)) in EntryKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
        for (i, (reason, _)) in Refused::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
        for (reason, name) in LEAVE_REASONS {
            assert_eq!(
                serde_json::to_string(&reason).ok(),
                Some(format!("\"{name}\""))
            );
        }
    }

    #[test]
    fn renders_counters_with_labels() {
        let m = Metrics::default();
        m.message();
        m.message();
        m.error(ErrorCode::RateLimited);
        m.join();
        m.leave(LeaveReason::Replaced);
        m.mls_entry(EntryKind::Commit, 100);
        m.mls_entry(EntryKind::Commit, 20);
        m.mls_commit_rejected();
        m.mls_refused(Refused::Roster);
        m.mls_founder_replaced();
        let mut s = String::new();
        m.render(
            Gauges {
                rooms: 1,
                participants: 2,
                tracks: 3,
                connections: 4,
                mls_log_bytes: 5,
                ..Gauges::default()
            },
            &mut s,
        );
        for line in [
            "sfu_rooms 1",
            "sfu_participants 2",
            "sfu_signaling_messages_total 2",
            "sfu_signaling_errors_total{code=\"rate_limited\"} 1",
            "sfu_signaling_errors_total{code=\"bad_message\"} 0",
            "sfu_joins_total 1",
            "sfu_leaves_total{reason=\"replaced\"} 1",
            "# TYPE sfu_leaves_total counter",
            "sfu_signaling_mls_entries_total{kind=\"commit\"} 2",
            "sfu_signaling_mls_entries_total{kind=\"reset\"} 0",
            "sfu_signaling_mls_bytes_total 120",
            "sfu_signaling_mls_commits_rejected_total 1",
            "sfu_signaling_mls_refused_total{reason=\"roster\"} 1",
            "sfu_signaling_mls_refused_total{reason=\"wrong_epoch\"} 0",
            "sfu_signaling_mls_founders_replaced_total 1",
            "sfu_signaling_mls_log_bytes 5",
            "sfu_signaling_suspended_participants 0",
            "sfu_signaling_errors_total{code=\"resume_failed\"} 0",
        ] {
            assert!(s.lines().any(|l| l == line), "missing {line:?} in\n{s}");
        }
    }
}
