//! State shared between the orchestrator and the participant tasks: one
//! [`Slot`] per simulated participant, and the publishers' frame counters.

use crate::clock;
use crate::frame::MediaKind;
use crate::mls_pool::MlsPool;
use crate::report::DecryptFailureReasons;
use crate::settings::Settings;
use crate::stats::epoch_loss::NextSeqs;
use crate::stats::{ChangeLoss, EpochLoss, ReceiverStats, StreamKey};
use crate::tokens::TokenSource;
use client_sdk::{DecryptFailures, RoomOptions};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Locks, recovering from a poisoned lock (a panicked task must not take
/// the report down with it).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a participant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Token and connect in progress.
    Joining,
    /// In the room.
    Live,
    /// The session closed without being asked to.
    Lost,
    /// The join failed.
    Failed,
    /// Left when asked (churn or the end of the run), or never joined
    /// because the run ended first.
    Left,
}

impl Phase {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Live,
            2 => Self::Lost,
            3 => Self::Failed,
            4 => Self::Left,
            _ => Self::Joining,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Joining => 0,
            Self::Live => 1,
            Self::Lost => 2,
            Self::Failed => 3,
            Self::Left => 4,
        }
    }
}

/// One simulated participant.
#[derive(Debug)]
pub struct Slot {
    /// Its index in the run; also the sender index in its frames.
    pub index: u32,
    /// Its room's index.
    pub room: u32,
    /// Its identity, `p<room>-<k>`.
    pub identity: String,
    /// Publishes video.
    pub video: bool,
    /// Publishes audio.
    pub audio: bool,
    /// Someone else in its room publishes, so it should receive frames.
    pub expects_media: bool,
    /// Its downlink is limited to this many bits per second (an emulated
    /// bottleneck in front of a light listener's socket).
    pub downlink_bps: Option<u64>,
    /// What it received.
    pub stats: Mutex<ReceiverStats>,
    /// Cancelled to make it leave (churn).
    pub leave: CancellationToken,
    /// E2EE epoch changes it saw.
    pub epoch_switches: AtomicU64,
    /// Frame loss around the epoch changes it saw after joining.
    epoch_loss: Mutex<EpochLoss>,
    /// The identities in its MLS group at its latest epoch.
    roster: Mutex<Vec<String>>,
    /// Times its MLS and signaling rosters disagreed beyond the grace.
    roster_mismatches: AtomicU64,
    phase: AtomicU8,
    session_up: AtomicBool,
    failures: Mutex<DecryptFailures>,
    failures_while_joining: Mutex<Option<u64>>,
    error: Mutex<Option<String>>,
}

impl Slot {
    /// A participant whose join starts at `started_us`.
    pub fn new(
        index: u32,
        room: u32,
        identity: String,
        video: bool,
        audio: bool,
        expects_media: bool,
        started_us: u64,
    ) -> Self {
        Self {
            index,
            room,
            identity,
            video,
            audio,
            expects_media,
            downlink_bps: None,
            stats: Mutex::new(ReceiverStats::new(started_us)),
            leave: CancellationToken::new(),
            epoch_switches: AtomicU64::new(0),
            epoch_loss: Mutex::new(EpochLoss::default()),
            roster: Mutex::new(Vec::new()),
            roster_mismatches: AtomicU64::new(0),
            phase: AtomicU8::new(Phase::Joining.to_u8()),
            session_up: AtomicBool::new(false),
            failures: Mutex::new(DecryptFailures::default()),
            failures_while_joining: Mutex::new(None),
            error: Mutex::new(None),
        }
    }

    /// Its phase now.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    /// Moves it to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase.to_u8(), Ordering::Release);
        if phase == Phase::Live {
            self.session_up.store(true, Ordering::Release);
        }
    }

    /// Whether its session was ever established.
    pub fn had_session(&self) -> bool {
        self.session_up.load(Ordering::Acquire)
    }

    /// Whether it counts as connected: in session, and either it received
    /// a decrypted frame or nobody else in its room publishes.
    pub fn connected(&self) -> bool {
        self.had_session() && (!self.expects_media || lock(&self.stats).first_frame_us().is_some())
    }

    /// Its publishing role.
    pub fn publishes(&self) -> bool {
        self.video || self.audio
    }

    /// Records the SDK's running drop totals.
    pub fn set_failures(&self, f: DecryptFailures) {
        *lock(&self.failures) = f;
    }

    /// The SDK's drop totals last seen.
    pub fn failures(&self) -> DecryptFailures {
        *lock(&self.failures)
    }

    /// Records the SDK's drop total at the end of its joining phase (the
    /// first call wins).
    pub fn mark_joined(&self, failures_total: u64) {
        lock(&self.failures_while_joining).get_or_insert(failures_total);
    }

    /// Drops it had while joining (all of them if it never finished).
    pub fn failures_while_joining(&self) -> u64 {
        let total = self.failures().total();
        lock(&self.failures_while_joining).map_or(total, |at| at.min(total))
    }

    /// Records its MLS group's members at a new epoch.
    pub fn set_roster(&self, identities: Vec<String>) {
        *lock(&self.roster) = identities;
    }

    /// The identities in its MLS group at its latest epoch.
    pub fn roster(&self) -> Vec<String> {
        lock(&self.roster).clone()
    }

    /// Counts a roster mismatch its group-key state machine reported.
    pub fn note_roster_mismatch(&self) {
        self.roster_mismatches.fetch_add(1, Ordering::Relaxed);
    }

    /// Roster mismatches reported.
    pub fn roster_mismatches(&self) -> u64 {
        self.roster_mismatches.load(Ordering::Relaxed)
    }

    /// It saw an epoch change at `now` after joining: the frames its room's
    /// publishers send in the next second are watched
    /// ([`crate::stats::epoch_loss`]).
    pub fn epoch_changed(&self, senders: &SenderBook, now: Instant, failures: DecryptFailures) {
        let start = senders.next_seqs(self.room, self.index);
        lock(&self.epoch_loss).open(clock::micros_at(now), start, failures);
    }

    /// When [`Self::epoch_loss_tick`] is next due.
    pub fn epoch_loss_deadline(&self) -> Option<Instant> {
        lock(&self.epoch_loss)
            .next_deadline_us()
            .map(|us| clock::epoch() + Duration::from_micros(us))
    }

    /// Closes and settles the epoch-change windows due at `now`.
    pub fn epoch_loss_tick(&self, senders: &SenderBook, now: Instant, failures: DecryptFailures) {
        let mut loss = lock(&self.epoch_loss);
        let stats = lock(&self.stats);
        loss.tick(
            clock::micros_at(now),
            || senders.next_seqs(self.room, self.index),
            failures,
            &stats,
        );
    }

    /// The epoch changes it settled.
    pub fn epoch_changes(&self) -> Vec<ChangeLoss> {
        lock(&self.epoch_loss).settled().to_vec()
    }

    /// Remembers the first thing that went wrong for it.
    pub fn note_error(&self, e: impl Into<String>) {
        lock(&self.error).get_or_insert_with(|| e.into());
    }

    /// What went wrong, if anything.
    pub fn error(&self) -> Option<String> {
        lock(&self.error).clone()
    }
}

/// Adds a participant's drops into the report's.
pub fn add_failures(into: &mut DecryptFailureReasons, slot: &Slot) {
    let f = slot.failures();
    into.while_joining += slot.failures_while_joining();
    into.malformed += f.malformed;
    into.auth_failed += f.auth_failed;
    into.replay += f.replay;
    into.unknown_kid += f.unknown_kid;
    into.wrong_epoch += f.wrong_epoch;
    into.wrong_sender += f.wrong_sender;
    into.unknown_sender += f.unknown_sender;
    into.incomplete += f.incomplete;
}

/// Frames sent per publisher track: the next sequence number to use.
#[derive(Debug, Default)]
pub struct SenderBook {
    counters: Mutex<HashMap<StreamKey, Arc<AtomicU64>>>,
    /// Each publisher's room.
    rooms: Mutex<HashMap<u32, u32>>,
}

impl SenderBook {
    /// The counter of `sender`'s `kind` track (created at 0).
    pub fn counter(&self, sender: u32, kind: MediaKind) -> Arc<AtomicU64> {
        Arc::clone(
            lock(&self.counters)
                .entry(StreamKey { sender, kind })
                .or_default(),
        )
    }

    /// The counter of `sender`'s `kind` track in `room`.
    pub fn counter_in_room(&self, sender: u32, room: u32, kind: MediaKind) -> Arc<AtomicU64> {
        lock(&self.rooms).insert(sender, room);
        self.counter(sender, kind)
    }

    /// The next sequence number of every track published in `room` (those
    /// registered with [`Self::counter_in_room`]) but `except`'s.
    pub fn next_seqs(&self, room: u32, except: u32) -> NextSeqs {
        let rooms = lock(&self.rooms);
        lock(&self.counters)
            .iter()
            .filter(|(k, _)| k.sender != except && rooms.get(&k.sender) == Some(&room))
            .map(|(k, c)| (*k, c.load(Ordering::Acquire)))
            .collect()
    }

    /// The last sequence number each track had sent, now.
    pub fn snapshot(&self) -> HashMap<StreamKey, u64> {
        lock(&self.counters)
            .iter()
            .filter_map(|(k, c)| {
                c.load(Ordering::Acquire)
                    .checked_sub(1)
                    .map(|last| (*k, last))
            })
            .collect()
    }

    /// Frames sent, all tracks.
    pub fn total(&self) -> u64 {
        lock(&self.counters)
            .values()
            .map(|c| c.load(Ordering::Acquire))
            .sum()
    }
}

/// Everything the participant tasks share with the orchestrator.
#[derive(Debug)]
pub struct Shared {
    /// The run's settings.
    pub settings: Settings,
    /// Tokens.
    pub tokens: TokenSource,
    /// How participants connect.
    pub options: RoomOptions,
    /// Every participant so far, by index.
    pub slots: Mutex<Vec<Arc<Slot>>>,
    /// Their tasks.
    pub tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Publishers' counters.
    pub senders: SenderBook,
    /// Frames publishers failed to send.
    pub send_errors: AtomicU64,
    /// Frames received, all receivers (for the watchdog).
    pub frames_received: AtomicU64,
    /// Cancelled to stop every publisher.
    pub stop_media: CancellationToken,
    /// Cancelled to make everyone leave.
    pub shutdown: CancellationToken,
    /// Where the light listeners' MLS work runs, off the runtime.
    pub mls_pool: MlsPool,
}

impl Shared {
    /// State for a run of `settings`.
    pub fn new(settings: Settings, tokens: TokenSource) -> Self {
        let options = if settings.target.endpoint.is_loopback() {
            RoomOptions::loopback()
        } else {
            RoomOptions::default()
        };

        let mls_pool = MlsPool::new(settings.mls_threads, settings.mls_nice);
        Self {
            settings,
            tokens,
            options,
            slots: Mutex::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
            senders: SenderBook::default(),
            send_errors: AtomicU64::new(0),
            frames_received: AtomicU64::new(0),
            stop_media: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            mls_pool,
        }
    }

    /// A copy of the participant list.
    pub fn slots(&self) -> Vec<Arc<Slot>> {
        lock(&self.slots).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_round_trip_and_sessions_stick() {
        let s = Slot::new(0, 0, "p0-0".into(), false, false, true, 0);
        assert_eq!(s.phase(), Phase::Joining);
        assert!(!s.connected());
        s.set_phase(Phase::Live);
        assert!(s.had_session());
        assert!(!s.connected(), "no frame yet");
        s.set_phase(Phase::Lost);
        assert_eq!(s.phase(), Phase::Lost);
        assert!(s.had_session());
        let quiet = Slot::new(1, 0, "p0-1".into(), true, false, false, 0);
        quiet.set_phase(Phase::Live);
        assert!(quiet.connected(), "nobody else publishes");
        let mut f = DecryptFailures::default();
        f.wrong_epoch = 3;
        quiet.set_failures(f);
        assert_eq!(quiet.failures_while_joining(), 3);
        quiet.mark_joined(2);
        quiet.mark_joined(3);
        assert_eq!(quiet.failures_while_joining(), 2);
        let mut sum = DecryptFailureReasons::default();
        add_failures(&mut sum, &quiet);
        assert_eq!((sum.wrong_epoch, sum.while_joining), (3, 2));
        quiet.note_error("first");
        quiet.note_error("second");
        assert_eq!(quiet.error().as_deref(), Some("first"));
    }

    #[test]
    fn sender_book_snapshots_last_sequence_numbers() {
        let b = SenderBook::default();
        let v = b.counter(3, MediaKind::Video);
        let a = b.counter(3, MediaKind::Audio);
        v.store(10, Ordering::Release);
        assert!(Arc::ptr_eq(&v, &b.counter(3, MediaKind::Video)));
        let snap = b.snapshot();
        assert_eq!(
            snap.get(&StreamKey {
                sender: 3,
                kind: MediaKind::Video
            }),
            Some(&9)
        );
        assert_eq!(
            snap.get(&StreamKey {
                sender: 3,
                kind: MediaKind::Audio
            }),
            None
        );
        a.store(2, Ordering::Release);
        assert_eq!(b.total(), 12);
    }
}
