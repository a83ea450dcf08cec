//! What a message must pass before any work is done for it: the message
//! rate, then its size caps, then the rate of its kind, then (for what is
//! broadcast) its room's queued-bytes budget.

use super::{Flow, Out, Session};
use crate::proto::{ClientMessage, ErrorCode, Target};
use crate::server::allowances;
use crate::server::caps::Field;
use crate::server::limits::{Allowance, Costly, Verdict};
use crate::server::metrics::Limited;
use axum::extract::ws::close_code;
use std::time::Instant;

/// A broadcast MLS entry's JSON around its payload (type, kind, seq,
/// participant id, epoch): a generous round number.
const ENTRY_OVERHEAD: usize = 256;

/// Whose allowance a session draws on.
#[derive(Debug)]
pub(crate) enum Limiter {
    /// Its own, before a join.
    Connection(Box<Allowance>),
    /// Its identity's, shared with that identity's other connections and
    /// kept after they close.
    Identity(allowances::Shared),
}

impl Limiter {
    fn with<R>(&mut self, f: impl FnOnce(&mut Allowance) -> R) -> R {
        match self {
            Limiter::Connection(a) => f(a),
            Limiter::Identity(a) => match a.lock() {
                Ok(mut a) => f(&mut a),
                Err(poisoned) => f(&mut poisoned.into_inner()),
            },
        }
    }
}

/// The costly kind of `msg`, if it has one.
fn costly(msg: &ClientMessage) -> Option<Costly> {
    match msg {
        ClientMessage::MlsKeyPackage { .. } => Some(Costly::KeyPackage),
        ClientMessage::MlsCommit { .. } => Some(Costly::Commit),
        // A mute is relayed to the whole room like a chat message, so the
        // two share one allowance.
        ClientMessage::MlsApplication { .. } | ClientMessage::Mute { .. } => Some(Costly::Chat),
        ClientMessage::Offer { .. } | ClientMessage::Answer { .. } => Some(Costly::Sdp),
        _ => None,
    }
}

impl Session {
    /// The costly kind `msg` is charged as, if any. A subscriber answer to
    /// an offer the server sent is free: the server, not the client, decides
    /// how many offers there are (every join, leave and publish in the room
    /// brings one), and refusing the answer would leave the subscriber's
    /// m-lines unnegotiated. Answers beyond the offers sent are charged.
    fn charged(&mut self, msg: &ClientMessage) -> Option<Costly> {
        if let ClientMessage::Answer {
            target: Target::Subscriber,
            ..
        } = msg
            && self.offers_unanswered > 0
        {
            self.offers_unanswered -= 1;
            return None;
        }
        costly(msg)
    }

    /// The message rate, checked for every data frame before it is parsed.
    pub(crate) fn check_rate(&mut self, now: Instant) -> Verdict {
        let v = self.limiter.with(|a| a.check(now));
        if v != Verdict::Allow {
            self.shared.metrics.limited(Limited::Message);
        }
        v
    }

    /// Switches to `identity`'s allowance once joined.
    pub(super) fn draw_on(&mut self, identity: allowances::Shared) {
        self.limiter = Limiter::Identity(identity);
    }

    /// Size caps, the kind's rate and the room's byte budget. `None` lets
    /// the message through; otherwise it is refused (answered in `out`)
    /// and the connection goes on as the flow says.
    pub(super) fn admit(&mut self, msg: &ClientMessage, out: &mut Out) -> Option<Flow> {
        let relayed = match self.shared.config.size_caps.check(msg) {
            Ok(relayed) => relayed,
            Err(o) => {
                self.shared.metrics.oversize(o.field);
                tracing::info!(
                    field = o.field.label(),
                    len = o.len,
                    cap = o.cap,
                    "message over its size cap"
                );
                // An overlong name is malformed (as an empty one is); a payload
                // over its cap is too large.
                let code = match o.field {
                    Field::Name => ErrorCode::BadMessage,
                    _ => ErrorCode::TooLarge,
                };
                self.reject(
                    out,
                    code,
                    format!(
                        "{} of {} bytes exceeds the limit of {} bytes",
                        o.field.label(),
                        o.len,
                        o.cap
                    ),
                );
                return Some(Flow::Continue);
            }
        };
        if let Some(kind) = self.charged(msg) {
            let now = Instant::now();
            match self.limiter.with(|a| a.check_kind(kind, now)) {
                Verdict::Allow => {}
                Verdict::Limited => {
                    self.shared.metrics.limited(Limited::Kind(kind));
                    self.reject(
                        out,
                        ErrorCode::RateLimited,
                        format!("too many {} messages; slow down", kind.label()),
                    );
                    return Some(Flow::Continue);
                }
                Verdict::Close => {
                    self.shared.metrics.limited(Limited::Kind(kind));
                    self.reject(
                        out,
                        ErrorCode::RateLimited,
                        "rate limit exceeded repeatedly; closing",
                    );
                    return Some(Flow::Close(close_code::POLICY));
                }
            }
        }
        // What the room will queue: the shared entry, payload and JSON.
        let queued = relayed.map(|payload| payload + ENTRY_OVERHEAD);
        if let (Some(bytes), Some(room)) = (queued, self.room_name())
            && !self.shared.rooms.fits(room, bytes)
        {
            self.shared.metrics.limited(Limited::RoomBytes);
            tracing::info!(bytes, "room outbound budget full: message refused");
            self.reject(
                out,
                ErrorCode::RateLimited,
                "the room has too much queued for its members; retry later",
            );
            return Some(Flow::Continue);
        }
        None
    }
}
