//! Signaling counters and their Prometheus text form.

use super::caps::Field;
use super::delivery_log::{EntryKind, Refused};
use super::limits::Costly;
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

/// What a `rate_limited` answer was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limited {
    /// The message rate.
    Message,
    /// The rate of one costly kind.
    Kind(Costly),
    /// The room's queued-bytes budget.
    RoomBytes,
}

impl Limited {
    const LABELS: [&'static str; 2 + Costly::ALL.len()] = [
        "message",
        Costly::ALL[0].1,
        Costly::ALL[1].1,
        Costly::ALL[2].1,
        Costly::ALL[3].1,
        "room_bytes",
    ];

    fn index(self) -> usize {
        match self {
            Limited::Message => 0,
            Limited::Kind(k) => 1 + k.index(),
            Limited::RoomBytes => 1 + Costly::ALL.len(),
        }
    }
}

/// Which cap refused a connection or a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cap {
    Connections,
    ConnectionsPerAddress,
    ConnectRate,
    Participants,
    ParticipantsPerAddress,
    Rooms,
    RoomsPerAddress,
    /// The map of rate allowances was full.
    Allowances,
    /// A page of an origin the server does not admit.
    Origin,
}

impl Cap {
    const ALL: [(Cap, &'static str); 9] = [
        (Cap::Connections, "connections"),
        (Cap::ConnectionsPerAddress, "connections_per_address"),
        (Cap::ConnectRate, "connect_rate"),
        (Cap::Participants, "participants"),
        (Cap::ParticipantsPerAddress, "participants_per_address"),
        (Cap::Rooms, "rooms"),
        (Cap::RoomsPerAddress, "rooms_per_address"),
        (Cap::Allowances, "allowances"),
        (Cap::Origin, "origin"),
    ];

    fn index(self) -> usize {
        match self {
            Cap::Connections => 0,
            Cap::ConnectionsPerAddress => 1,
            Cap::ConnectRate => 2,
            Cap::Participants => 3,
            Cap::ParticipantsPerAddress => 4,
            Cap::Rooms => 5,
            Cap::RoomsPerAddress => 6,
            Cap::Allowances => 7,
            Cap::Origin => 8,
        }
    }

    /// Its label.
    pub(crate) fn label(self) -> &'static str {
        Cap::ALL[self.index()].1
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
    oversize: [AtomicU64; Field::ALL.len()],
    limited: [AtomicU64; Limited::LABELS.len()],
    refused: [AtomicU64; Cap::ALL.len()],
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
    pub(crate) outbound_bytes: usize,
    pub(crate) rate_allowances: usize,
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
    /// A message had a field over its size cap.
    pub(crate) fn oversize(&self, field: Field) {
        self.oversize[field.index()].fetch_add(1, Relaxed);
    }
    /// A message was refused by a rate or the room's byte budget.
    pub(crate) fn limited(&self, what: Limited) {
        self.limited[what.index()].fetch_add(1, Relaxed);
    }
    /// A connection or join was refused by a cap.
    pub(crate) fn refused(&self, cap: Cap) {
        self.refused[cap.index()].fetch_add(1, Relaxed);
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
            (
                "sfu_signaling_outbound_bytes",
                "Bytes queued to clients over all rooms, each shared MLS entry counted once.",
                g.outbound_bytes,
            ),
            (
                "sfu_signaling_rate_allowances",
                "Rate allowances remembered across connections (identities and addresses).",
                g.rate_allowances,
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
        counter_family(
            out,
            "sfu_signaling_errors_total",
            "Error messages sent to clients, by code.",
            "code",
            &ERROR_CODES.map(|(_, l)| l),
            &self.errors,
        );
        let _ = writeln!(
            out,
            "# HELP sfu_joins_total Successful joins.\n\
             # TYPE sfu_joins_total counter\n\
             sfu_joins_total {}",
            self.joins.load(Relaxed)
        );
        counter_family(
            out,
            "sfu_leaves_total",
            "Participants that left a room, by reason.",
            "reason",
            &LEAVE_REASONS.map(|(_, l)| l),
            &self.leaves,
        );
        let _ = writeln!(
            out,
            "# HELP sfu_signaling_slow_consumers_total Sessions closed because their outbound queue overflowed.\n\
             # TYPE sfu_signaling_slow_consumers_total counter\n\
             sfu_signaling_slow_consumers_total {}",
            self.slow_consumers.load(Relaxed)
        );
        counter_family(
            out,
            "sfu_signaling_mls_entries_total",
            "MLS log entries appended and broadcast, by kind.",
            "kind",
            &EntryKind::ALL.map(|(_, l)| l),
            &self.mls_entries,
        );
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
        counter_family(
            out,
            "sfu_signaling_mls_refused_total",
            "MLS messages the delivery service refused, by reason.",
            "reason",
            &Refused::ALL.map(|(_, l)| l),
            &self.mls_refused,
        );
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
        counter_family(
            out,
            "sfu_signaling_oversize_total",
            "Client messages refused because a field was over its size cap, by field.",
            "field",
            &Field::ALL.map(|(_, l)| l),
            &self.oversize,
        );
        counter_family(
            out,
            "sfu_signaling_rate_limited_total",
            "Client messages refused by a rate or by the room's queued-bytes budget, by kind.",
            "kind",
            &Limited::LABELS,
            &self.limited,
        );
        counter_family(
            out,
            "sfu_signaling_refused_total",
            "Connections and joins refused by a server-wide or per-address cap, by cap.",
            "cap",
            &Cap::ALL.map(|(_, l)| l),
            &self.refused,
        );
    }
}

/// One labelled counter family.
fn counter_family(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    labels: &[&str],
    values: &[AtomicU64],
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for (l, n) in labels.iter().zip(values) {
        let _ = writeln!(out, "{name}{{{label}=\"{l}\"}} {}", n.load(Relaxed));
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
        for (i, (cap, _)) in Cap::ALL.iter().enumerate() {
            assert_eq!(cap.index(), i);
        }
        for (k, label) in Costly::ALL {
            assert_eq!(Limited::LABELS[Limited::Kind(k).index()], label);
        }
        assert_eq!(Limited::LABELS[Limited::RoomBytes.index()], "room_bytes");
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
        m.oversize(Field::KeyPackage);
        m.limited(Limited::Kind(Costly::KeyPackage));
        m.limited(Limited::RoomBytes);
        m.refused(Cap::RoomsPerAddress);
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
            "sfu_signaling_oversize_total{field=\"key_package\"} 1",
            "sfu_signaling_oversize_total{field=\"sdp\"} 0",
            "sfu_signaling_rate_limited_total{kind=\"key_package\"} 1",
            "sfu_signaling_rate_limited_total{kind=\"room_bytes\"} 1",
            "sfu_signaling_rate_limited_total{kind=\"message\"} 0",
            "sfu_signaling_refused_total{cap=\"rooms_per_address\"} 1",
            "sfu_signaling_outbound_bytes 0",
        ] {
            assert!(s.lines().any(|l| l == line), "missing {line:?} in\n{s}");
        }
    }
}
