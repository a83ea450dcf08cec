//! This member's chat messages on their way into the room's log.
//!
//! One message is in flight at a time: the next goes out after the previous
//! one came back in the log, so a reconnect knows exactly what is missing.
//! Sending is paced well inside the server's per-connection rate limit,
//! which drops what exceeds it. A message neither echoed nor refused after
//! a while is sent again (a rate limit or a dying socket may have eaten
//! it); members drop the duplicate if both copies arrive (see
//! [`ChatDedup`](super::chat::ChatDedup)).
//!
//! MLS cannot decrypt a member's own messages, so the echo is recognised by
//! its ciphertext.
//!
//! After the server lost the session (it restarted), this member joins a
//! new group, and so do the others, one by one. A message sent before they
//! are back would be confirmed by the log yet never reach them: MLS gives a
//! joiner nothing from before it joined. So after such a rejoin the outbox
//! holds its messages until the members of the old group are back in the
//! new one, or until a deadline for those who do not come back.

use super::chat::ChatPayload;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;
use web_time::Instant;

/// One message per this long on average: 20 per second.
const SEND_INTERVAL: Duration = Duration::from_millis(50);
/// Up to this many messages back to back after a quiet spell.
const BURST: u32 = 20;
/// A message sent and neither echoed nor refused after this long is sent
/// again.
pub(crate) const RESEND_AFTER: Duration = Duration::from_secs(2);
/// Own chat ciphertexts remembered until their echo.
const MAX_OWN_SENT: usize = 1024;

/// A token bucket counted in time: each message costs [`SEND_INTERVAL`] of
/// credit, and credit accrues with time up to [`BURST`] messages. Integer
/// durations, so a wait never rounds down to zero.
#[derive(Debug)]
struct Pacer {
    credit: Duration,
    at: Instant,
}

impl Pacer {
    fn new(now: Instant) -> Self {
        Self {
            credit: SEND_INTERVAL * BURST,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.at);
        self.credit = (self.credit + earned).min(SEND_INTERVAL * BURST);
        self.at = self.at.max(now);
    }

    fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.credit < SEND_INTERVAL {
            return false;
        }
        self.credit -= SEND_INTERVAL;
        true
    }

    /// When the next message may go, if not now.
    fn ready_at(&self) -> Option<Instant> {
        (self.credit < SEND_INTERVAL).then(|| self.at + (SEND_INTERVAL - self.credit))
    }
}

/// The queue, the message in flight and the echoes awaited.
#[derive(Debug)]
pub(crate) struct ChatOutbox {
    queue: VecDeque<ChatPayload>,
    /// The message sent and not yet echoed, and when it was last sent.
    in_flight: Option<(ChatPayload, Instant)>,
    pacer: Pacer,
    next_id: u64,
    /// Our ciphertexts (base64) sent and not yet seen in the log.
    own_sent: HashMap<String, ChatPayload>,
    /// After a rejoin: identities to wait for, and until when at most.
    hold: Option<(BTreeSet<String>, Instant)>,
}

impl ChatOutbox {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            queue: VecDeque::new(),
            in_flight: None,
            pacer: Pacer::new(now),
            next_id: 1,
            own_sent: HashMap::new(),
            hold: None,
        }
    }

    /// Holds new messages until every identity in `members` is among the
    /// group's members (see [`ChatOutbox::held`]) or until `until`.
    pub(crate) fn hold_until_back(&mut self, members: BTreeSet<String>, until: Instant) {
        self.hold = (!members.is_empty()).then_some((members, until));
    }

    /// Whether a hold is set (cheap; [`ChatOutbox::held`] decides).
    pub(crate) fn holding(&self) -> bool {
        self.hold.is_some()
    }

    /// Whether the hold still applies at `now`, given the identities in the
    /// group now. Once released it stays released.
    pub(crate) fn held<'a>(
        &mut self,
        now: Instant,
        in_group: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        let Some((waiting, until)) = &mut self.hold else {
            return false;
        };
        for identity in in_group {
            waiting.remove(identity);
        }
        if waiting.is_empty() || now >= *until {
            self.hold = None;
            return false;
        }
        true
    }

    /// Queues a message.
    pub(crate) fn push(&mut self, text: String) {
        let id = self.next_id;
        self.next_id += 1;
        self.queue.push_back(ChatPayload { id, text });
    }

    /// The message to encrypt and send now, if any: the one in flight when
    /// its resend is due, else (when `can_send`: we are in the group) the
    /// next queued one if the pace allows.
    pub(crate) fn poll_send(&mut self, now: Instant, can_send: bool) -> Option<ChatPayload> {
        if let Some((chat, sent_at)) = &mut self.in_flight {
            if now.saturating_duration_since(*sent_at) < RESEND_AFTER {
                return None;
            }
            *sent_at = now;
            return Some(chat.clone());
        }
        // Credit accrues whether or not we may send, so a wait never ends
        // in the past.
        self.pacer.refill(now);
        if !can_send || self.queue.is_empty() || !self.pacer.take(now) {
            return None;
        }
        let chat = self.queue.pop_front()?;
        self.in_flight = Some((chat.clone(), now));
        Some(chat)
    }

    /// After a resumed connection: the message in flight, to send again at
    /// once (it may have died with the old socket).
    pub(crate) fn resend_now(&mut self, now: Instant) -> Option<ChatPayload> {
        let (chat, sent_at) = self.in_flight.as_mut()?;
        *sent_at = now;
        Some(chat.clone())
    }

    /// `chat` went out as `ciphertext`.
    pub(crate) fn sent(&mut self, ciphertext: String, chat: ChatPayload) {
        if self.own_sent.len() >= MAX_OWN_SENT {
            // Bounded: only a server that never echoes fills it.
            self.own_sent.clear();
        }
        self.own_sent.insert(ciphertext, chat);
    }

    /// One of our messages came back in the log: which one, if it is from
    /// this session. After a resend both copies may come back; each is
    /// recognised, and the caller's duplicate filter keeps the first.
    pub(crate) fn echoed(&mut self, ciphertext: &str) -> Option<ChatPayload> {
        let chat = self.own_sent.remove(ciphertext)?;
        if self
            .in_flight
            .as_ref()
            .is_some_and(|(c, _)| c.id == chat.id)
        {
            self.in_flight = None;
        }
        Some(chat)
    }

    /// Messages not yet confirmed by the log, oldest first: a rejoin
    /// carries them to the new session.
    pub(crate) fn take_unsent(&mut self) -> Vec<String> {
        self.in_flight
            .take()
            .map(|(c, _)| c)
            .into_iter()
            .chain(self.queue.drain(..))
            .map(|c| c.text)
            .collect()
    }

    /// When [`ChatOutbox::poll_send`] next has something to do (a resend,
    /// or the pace allowing the next message).
    pub(crate) fn next_wakeup(&self) -> Option<Instant> {
        match &self.in_flight {
            Some((_, sent_at)) => Some(*sent_at + RESEND_AFTER),
            None if !self.queue.is_empty() => {
                let hold_ends = self.hold.as_ref().map(|(_, until)| *until);
                self.pacer.ready_at().max(hold_ends)
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i}")).collect()
    }

    #[test]
    fn one_in_flight_until_its_echo() {
        let t0 = Instant::now();
        let mut o = ChatOutbox::new(t0);
        o.push("a".into());
        o.push("b".into());
        assert_eq!(o.poll_send(t0, false), None, "not in the group yet");
        let a = o.poll_send(t0, true).expect("first goes");
        assert_eq!((a.id, a.text.as_str()), (1, "a"));
        assert_eq!(o.poll_send(t0, true), None, "b waits for a's echo");
        o.sent("ct-a".into(), a.clone());
        assert_eq!(o.echoed("ct-a"), Some(a));
        assert_eq!(o.echoed("ct-a"), None, "echo matched once");
        let b = o.poll_send(t0, true).expect("then b");
        assert_eq!(b.id, 2);
        o.sent("ct-b".into(), b);
        o.echoed("ct-b");
        assert_eq!(o.next_wakeup(), None);
    }

    #[test]
    fn an_unanswered_message_is_sent_again_and_both_echoes_are_recognised() {
        let t0 = Instant::now();
        let mut o = ChatOutbox::new(t0);
        o.push("a".into());
        let a = o.poll_send(t0, true).expect("sent");
        o.sent("ct-1".into(), a.clone());
        assert_eq!(o.next_wakeup(), Some(t0 + RESEND_AFTER));
        assert_eq!(o.poll_send(t0 + RESEND_AFTER / 2, true), None);
        let t1 = t0 + RESEND_AFTER;
        assert_eq!(o.poll_send(t1, true), Some(a.clone()), "resent");
        o.sent("ct-2".into(), a.clone());
        assert_eq!(o.next_wakeup(), Some(t1 + RESEND_AFTER));
        assert_eq!(o.echoed("ct-1"), Some(a.clone()));
        assert_eq!(o.echoed("ct-2"), Some(a), "the late copy is still ours");
        // A resume resends what is in flight, at once.
        o.push("b".into());
        let b = o.poll_send(t1, true).expect("b");
        assert_eq!(o.resend_now(t1), Some(b));
    }

    #[test]
    fn sending_is_paced_after_a_burst() {
        let t0 = Instant::now();
        let mut o = ChatOutbox::new(t0);
        for t in texts(BURST as usize + 2) {
            o.push(t);
        }
        let mut now = t0;
        for i in 0..BURST {
            let c = o
                .poll_send(now, true)
                .unwrap_or_else(|| panic!("burst {i}"));
            o.sent(format!("ct{i}"), c);
            o.echoed(&format!("ct{i}"));
        }
        assert_eq!(o.poll_send(now, true), None, "burst spent");
        let ready = o.next_wakeup().expect("a wakeup");
        assert_eq!(ready, t0 + SEND_INTERVAL);
        now = ready - Duration::from_nanos(1);
        assert_eq!(o.poll_send(now, true), None);
        assert!(
            o.next_wakeup().is_some_and(|at| at > now),
            "never a wakeup in the past"
        );
        assert!(o.poll_send(ready, true).is_some());
    }

    #[test]
    fn after_a_rejoin_messages_wait_for_the_old_members_or_the_deadline() {
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs(10);
        let old: BTreeSet<String> = ["bob".to_owned(), "carol".to_owned()].into();
        let mut o = ChatOutbox::new(t0);
        o.hold_until_back(old.clone(), until);
        o.push("m".into());
        assert!(o.held(t0, ["alice"]), "alone in the new group");
        assert_eq!(o.next_wakeup(), Some(until), "wakes when the hold ends");
        assert!(o.held(t0, ["alice", "bob"]), "carol is not back");
        assert!(!o.held(t0, ["alice", "carol"]), "bob was seen already");
        assert!(!o.held(t0, ["alice"]), "released for good");

        let mut o = ChatOutbox::new(t0);
        o.hold_until_back(old, until);
        assert!(o.held(until - Duration::from_millis(1), ["alice"]));
        assert!(!o.held(until, ["alice"]), "nobody came back in time");
    }

    #[test]
    fn unsent_messages_are_handed_over_in_order() {
        let t0 = Instant::now();
        let mut o = ChatOutbox::new(t0);
        for t in texts(3) {
            o.push(t);
        }
        o.poll_send(t0, true).expect("m0 in flight");
        assert_eq!(o.take_unsent(), texts(3));
        assert_eq!(o.next_wakeup(), None);
        assert_eq!(o.poll_send(t0 + RESEND_AFTER, true), None);
    }
}
