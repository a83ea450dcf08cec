//! Who is speaking, from the audio level header extension (RFC 6464).
//!
//! The extension is in the clear by design: each audio packet says how
//! loud it is (0 to -127 dBov) and, usually, whether it holds voice. That
//! is metadata an end-to-end encrypted call still reveals to the SFU (who
//! speaks when, not what); `docs/e2ee.md` says so. The SFU uses it to make
//! the active speaker's video the first to get bandwidth, and to tell
//! clients who is speaking.
//!
//! Per audio track a [`SpeechMeter`] sums what each interval (the
//! allocator's 500 ms) heard into a score, smoothed over about a second.
//! Per room a [`DominantSpeaker`] picks the loudest track, with hysteresis:
//! a new speaker takes over only when louder than the current one by a
//! margin for two intervals in a row, or when the current one fell silent,
//! so a cough or a laugh does not swap the featured video.

/// A packet at least this loud (dBov) counts as voice when the packet
/// does not say. Speech is typically -20 to -40 dBov, room noise below
/// -60.
const VOICE_FLOOR_DBOV: i8 = -50;

/// A smoothed score below this is silence.
const SPEAKING: f32 = 10.0;

/// A challenger must be this much louder than the current speaker.
const TAKEOVER_MARGIN: f32 = 1.25;

/// Intervals in a row a challenger must lead to take over.
const TAKEOVER_INTERVALS: u8 = 2;

/// One audio track's speech over the current interval.
#[derive(Debug, Clone, Default)]
pub struct SpeechMeter {
    packets: u32,
    voiced: u32,
    loudness: u64,
    smoothed: f32,
}

impl SpeechMeter {
    /// Counts one packet's level (0 loudest, -127 silence) and its voice
    /// activity flag, if it has one.
    pub fn count(&mut self, level_dbov: i8, voice: Option<bool>) {
        let level = level_dbov.clamp(-127, 0);
        self.packets += 1;
        if voice.unwrap_or(level >= VOICE_FLOOR_DBOV) {
            self.voiced += 1;
            self.loudness += u64::from((127 + i16::from(level)) as u16);
        }
    }

    /// Ends the interval: its score (the share of voiced packets times
    /// their mean loudness, 0 to 127) joins the smoothed one, which is
    /// returned. An interval with no packets at all (muted, or the track
    /// stopped) counts as silence.
    pub fn close(&mut self) -> f32 {
        let score = if self.packets == 0 || self.voiced == 0 {
            0.0
        } else {
            let share = self.voiced as f32 / self.packets as f32;
            share * (self.loudness as f32 / self.voiced as f32)
        };
        self.smoothed = 0.5 * self.smoothed + 0.5 * score;
        (self.packets, self.voiced, self.loudness) = (0, 0, 0);
        self.smoothed
    }

    /// The smoothed score as of the last interval.
    pub fn score(&self) -> f32 {
        self.smoothed
    }
}

/// A room's dominant speaker, keyed by whatever identifies a speaker.
#[derive(Debug, Clone)]
pub struct DominantSpeaker<K> {
    current: Option<K>,
    challenger: Option<(K, u8)>,
}

impl<K> Default for DominantSpeaker<K> {
    fn default() -> Self {
        Self {
            current: None,
            challenger: None,
        }
    }
}

impl<K: Copy + PartialEq> DominantSpeaker<K> {
    /// The dominant speaker, if anyone speaks.
    pub fn current(&self) -> Option<K> {
        self.current
    }

    /// One interval's scores (each speaker once). Returns whether the
    /// dominant speaker changed.
    pub fn update(&mut self, scores: impl IntoIterator<Item = (K, f32)>) -> bool {
        let mut loudest: Option<(K, f32)> = None;
        let mut current_score = 0.0;
        for (k, s) in scores {
            if Some(k) == self.current {
                current_score = s;
            }
            if s >= SPEAKING && loudest.is_none_or(|(_, best)| s > best) {
                loudest = Some((k, s));
            }
        }
        let before = self.current;
        match loudest {
            None => {
                // Everyone fell silent: keep showing the last speaker.
                self.challenger = None;
            }
            Some((k, _)) if Some(k) == self.current => self.challenger = None,
            Some((k, s)) => {
                let silent = current_score < SPEAKING;
                let louder = s >= current_score * TAKEOVER_MARGIN;
                if self.current.is_none() || silent {
                    self.current = Some(k);
                    self.challenger = None;
                } else if louder {
                    let n = match self.challenger {
                        Some((c, n)) if c == k => n + 1,
                        _ => 1,
                    };
                    if n >= TAKEOVER_INTERVALS {
                        self.current = Some(k);
                        self.challenger = None;
                    } else {
                        self.challenger = Some((k, n));
                    }
                } else {
                    self.challenger = None;
                }
            }
        }
        before != self.current
    }

    /// Forgets `k` (it left or stopped publishing audio).
    pub fn forget(&mut self, k: K) {
        if self.current == Some(k) {
            self.current = None;
        }
        if self.challenger.is_some_and(|(c, _)| c == k) {
            self.challenger = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One 500 ms interval of 25 packets at `level`, voice flag as given.
    fn interval(m: &mut SpeechMeter, level: i8, voice: Option<bool>) -> f32 {
        for _ in 0..25 {
            m.count(level, voice);
        }
        m.close()
    }

    #[test]
    fn speech_scores_above_silence_and_noise() {
        let mut talk = SpeechMeter::default();
        let mut noise = SpeechMeter::default();
        let mut flagged = SpeechMeter::default();
        for _ in 0..4 {
            interval(&mut talk, -30, None);
            interval(&mut noise, -70, None);
            interval(&mut flagged, -70, Some(true));
        }
        assert!(talk.score() > 80.0, "{}", talk.score());
        assert_eq!(noise.score(), 0.0, "below the voice floor, unflagged");
        assert!(flagged.score() > SPEAKING, "the sender said it is voice");
        // Muted: no packets, the score decays.
        let before = talk.score();
        assert!(talk.close() < before && talk.close() < before / 2.0);
    }

    #[test]
    fn a_new_speaker_takes_over_only_when_clearly_louder_for_a_while() {
        let mut d = DominantSpeaker::default();
        assert!(d.update([(1, 60.0), (2, 0.0)]));
        assert_eq!(d.current(), Some(1));
        // 2 is a little louder: no change.
        assert!(!d.update([(1, 60.0), (2, 70.0)]));
        // Clearly louder, once: not yet; twice: yes.
        assert!(!d.update([(1, 60.0), (2, 80.0)]));
        assert!(d.update([(1, 60.0), (2, 80.0)]));
        assert_eq!(d.current(), Some(2));
        // A single loud interval of 1 (a laugh) does not swap back.
        assert!(!d.update([(1, 110.0), (2, 80.0)]));
        assert!(!d.update([(1, 20.0), (2, 80.0)]));
        assert_eq!(d.current(), Some(2));
        // 2 falls silent and 1 speaks: at once.
        assert!(d.update([(1, 40.0), (2, 2.0)]));
        assert_eq!(d.current(), Some(1));
        // Everyone silent: the last speaker stays.
        assert!(!d.update([(1, 1.0), (2, 1.0)]));
        assert_eq!(d.current(), Some(1));
        d.forget(1);
        assert_eq!(d.current(), None);
    }
}
