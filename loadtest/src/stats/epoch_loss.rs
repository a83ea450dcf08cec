//! Frame loss around E2EE epoch changes, per receiver. Pure: times and
//! counters are arguments.
//!
//! When a receiver sees an epoch change at time `t` (after its own join),
//! the frames of the change are those its room's publishers (itself
//! excepted) sent from `t` to `t + WINDOW`: each publisher track's
//! sequence numbers from where its counter stood at `t` to where it stood
//! at `t + WINDOW`. At `t + WINDOW + SETTLE` (time for frames in flight and
//! repairs) the receiver checks which of them it delivered. Streams it had
//! never received a frame of are left out, as in the loss figure; so are
//! changes not settled by the end of the run. The decrypt failures it
//! counted from `t` to the settling, by reason, say why frames were lost;
//! what they do not cover was never handed to the decryptor whole
//! (network loss) or is still missing.

use super::receiver::{ReceiverStats, StreamKey};
use client_sdk::DecryptFailures;
use std::collections::VecDeque;

/// The window after an epoch change whose frames count, µs.
pub const WINDOW_US: u64 = 1_000_000;
/// How long after the window its frames may still arrive, µs.
pub const SETTLE_US: u64 = 1_000_000;
/// Changes a receiver keeps open at once; a burst beyond it merges into
/// the windows already open (their ranges overlap anyway).
const MAX_OPEN: usize = 16;

/// Where each publisher track's counter stood: the next sequence number.
pub type NextSeqs = Vec<(StreamKey, u64)>;

/// The outcome of one epoch change at one receiver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChangeLoss {
    /// Frames of the change this receiver should have delivered.
    pub expected: u64,
    /// Of those, frames it did not deliver.
    pub lost: u64,
    /// Decrypt failures it counted from the change to its settling.
    pub failures: DecryptFailures,
}

#[derive(Debug)]
struct Window {
    at_us: u64,
    start: NextSeqs,
    end: Option<NextSeqs>,
    failures: DecryptFailures,
}

impl Window {
    fn deadline_us(&self) -> u64 {
        match self.end {
            None => self.at_us + WINDOW_US,
            Some(_) => self.at_us + WINDOW_US + SETTLE_US,
        }
    }
}

/// One receiver's epoch changes in progress and settled.
#[derive(Debug, Default)]
pub struct EpochLoss {
    open: VecDeque<Window>,
    done: Vec<ChangeLoss>,
}

impl EpochLoss {
    /// An epoch change at `now_us`; `start` is where the publishers'
    /// counters stand, `failures` the receiver's drop totals now.
    pub fn open(&mut self, now_us: u64, start: NextSeqs, failures: DecryptFailures) {
        if self.open.len() >= MAX_OPEN {
            return;
        }
        self.open.push_back(Window {
            at_us: now_us,
            start,
            end: None,
            failures,
        });
    }

    /// When [`tick`](Self::tick) next has something to do, µs.
    pub fn next_deadline_us(&self) -> Option<u64> {
        self.open.iter().map(Window::deadline_us).min()
    }

    /// Closes windows whose time is up (reading the counters with
    /// `counters`) and settles those whose frames had time to arrive.
    pub fn tick(
        &mut self,
        now_us: u64,
        mut counters: impl FnMut() -> NextSeqs,
        failures: DecryptFailures,
        stats: &ReceiverStats,
    ) {
        let mut read: Option<NextSeqs> = None;
        for w in &mut self.open {
            if w.end.is_none() && now_us >= w.at_us + WINDOW_US {
                w.end = Some(read.get_or_insert_with(&mut counters).clone());
            }
        }
        let (due, rest): (VecDeque<Window>, VecDeque<Window>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|w| w.end.is_some() && now_us >= w.deadline_us());
        self.open = rest;
        for w in due {
            self.done.push(settle(&w, failures, stats));
        }
    }

    /// The changes settled so far.
    pub fn settled(&self) -> &[ChangeLoss] {
        &self.done
    }
}

fn settle(w: &Window, failures: DecryptFailures, stats: &ReceiverStats) -> ChangeLoss {
    let mut out = ChangeLoss {
        failures: delta(failures, w.failures),
        ..ChangeLoss::default()
    };
    let end = w.end.as_deref().unwrap_or_default();
    for (key, from) in &w.start {
        let to = end
            .iter()
            .find(|(k, _)| k == key)
            .map_or(*from, |(_, to)| *to);
        if let Some(c) = stats.received_in(*key, *from, to) {
            out.expected += c.expected;
            out.lost += c.expected - c.received;
        }
    }
    out
}

/// `now - then`, per reason.
pub fn delta(now: DecryptFailures, then: DecryptFailures) -> DecryptFailures {
    let mut d = DecryptFailures::default();
    d.malformed = now.malformed.saturating_sub(then.malformed);
    d.auth_failed = now.auth_failed.saturating_sub(then.auth_failed);
    d.replay = now.replay.saturating_sub(then.replay);
    d.unknown_kid = now.unknown_kid.saturating_sub(then.unknown_kid);
    d.wrong_epoch = now.wrong_epoch.saturating_sub(then.wrong_epoch);
    d.before_join = now.before_join.saturating_sub(then.before_join);
    d.wrong_sender = now.wrong_sender.saturating_sub(then.wrong_sender);
    d.unknown_sender = now.unknown_sender.saturating_sub(then.unknown_sender);
    d.incomplete = now.incomplete.saturating_sub(then.incomplete);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{FrameBuf, FrameHeader, MediaKind};

    const AUDIO: StreamKey = StreamKey {
        sender: 1,
        kind: MediaKind::Audio,
    };
    const VIDEO: StreamKey = StreamKey {
        sender: 2,
        kind: MediaKind::Video,
    };

    fn deliver(r: &mut ReceiverStats, key: StreamKey, seqs: impl IntoIterator<Item = u64>) {
        for seq in seqs {
            let mut b = FrameBuf::new(100);
            let h = FrameHeader {
                sender: key.sender,
                kind: key.kind,
                layer: 0,
                seq,
                send_us: 0,
            };
            r.on_frame(b.frame(&h, 40), 1).expect("ours");
        }
    }

    fn failures(wrong_epoch: u64, incomplete: u64) -> DecryptFailures {
        let mut f = DecryptFailures::default();
        f.wrong_epoch = wrong_epoch;
        f.incomplete = incomplete;
        f
    }

    #[test]
    fn counts_the_frames_sent_in_the_window_that_never_arrived() {
        let mut r = ReceiverStats::new(0);
        deliver(&mut r, AUDIO, 0..10);
        deliver(&mut r, VIDEO, 0..5);
        let mut e = EpochLoss::default();
        e.open(5_000_000, vec![(AUDIO, 10), (VIDEO, 5)], failures(1, 0));
        assert_eq!(e.next_deadline_us(), Some(6_000_000));
        // Too early: nothing happens.
        e.tick(5_500_000, || unreachable!(), failures(1, 0), &r);
        // The window closes: audio sent 10..60, video 5..35.
        e.tick(
            6_000_000,
            || vec![(AUDIO, 60), (VIDEO, 35)],
            failures(1, 0),
            &r,
        );
        assert_eq!(e.next_deadline_us(), Some(7_000_000));
        assert!(e.settled().is_empty());
        // Audio 20..23 dropped (3 undecryptable), video 30..35 never came.
        deliver(&mut r, AUDIO, (10..70).filter(|s| !(20..23).contains(s)));
        deliver(&mut r, VIDEO, 5..30);
        e.tick(
            7_000_000,
            || vec![(AUDIO, 70), (VIDEO, 40)],
            failures(4, 2),
            &r,
        );
        assert_eq!(e.next_deadline_us(), None);
        let c = e.settled()[0];
        assert_eq!((c.expected, c.lost), (50 + 30, 3 + 5));
        assert_eq!((c.failures.wrong_epoch, c.failures.incomplete), (3, 2));
        assert_eq!(c.failures.total(), 5);
    }

    #[test]
    fn streams_never_received_and_silent_publishers_count_nothing() {
        let mut r = ReceiverStats::new(0);
        deliver(&mut r, AUDIO, 0..3);
        let mut e = EpochLoss::default();
        // Video never reached this receiver; audio sent nothing more.
        e.open(0, vec![(AUDIO, 3), (VIDEO, 0)], DecryptFailures::default());
        let counters = || vec![(AUDIO, 3), (VIDEO, 30)];
        e.tick(WINDOW_US, counters, DecryptFailures::default(), &r);
        e.tick(
            WINDOW_US + SETTLE_US,
            counters,
            DecryptFailures::default(),
            &r,
        );
        assert_eq!(e.settled(), &[ChangeLoss::default()]);
    }

    #[test]
    fn a_burst_of_changes_settles_each_and_is_bounded() {
        let r = ReceiverStats::new(0);
        let mut e = EpochLoss::default();
        for i in 0..(MAX_OPEN as u64 + 4) {
            e.open(i * 100, vec![(AUDIO, 0)], DecryptFailures::default());
        }
        let mut reads = 0;
        e.tick(
            10 * WINDOW_US,
            || {
                reads += 1;
                vec![(AUDIO, 0)]
            },
            DecryptFailures::default(),
            &r,
        );
        assert_eq!(reads, 1, "the counters are read once per tick");
        e.tick(20 * WINDOW_US, Vec::new, DecryptFailures::default(), &r);
        assert_eq!(e.settled().len(), MAX_OPEN);
        assert_eq!(e.next_deadline_us(), None);
    }

    #[test]
    fn deltas_are_per_reason_and_never_negative() {
        let d = delta(failures(5, 1), failures(2, 3));
        assert_eq!((d.wrong_epoch, d.incomplete, d.total()), (3, 0, 3));
    }
}
