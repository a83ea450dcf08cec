//! The room layouts: `fanout-N` (1 publisher → N subscribers), `meeting-N`
//! (N people, everyone publishes and subscribes to all others) and
//! `rooms-RxM` (R rooms of M, each a meeting).

/// The scenarios run when none is named.
pub const DEFAULT: [&str; 4] = ["fanout-50", "meeting-10", "rooms-20x5", "rooms-100x2"];

/// A room layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// Its name, as given on the command line.
    pub name: String,
    /// Rooms.
    pub rooms: usize,
    /// Participants per room.
    pub per_room: usize,
    /// The first `publishers_per_room` participants of each room publish
    /// one video track; everyone subscribes to every track of the others.
    pub publishers_per_room: usize,
}

/// Why a scenario name is not understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown scenario {0:?}: expected fanout-N, meeting-N or rooms-RxM (N >= 2)")]
pub struct ScenarioError(pub String);

/// One participant of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Room name.
    pub room: String,
    /// Identity in the token.
    pub identity: String,
    /// Its publisher number, if it publishes.
    pub publisher: Option<u32>,
    /// How many subscribers its track has (0 if it does not publish).
    pub fanout: u32,
    /// How many tracks it subscribes to.
    pub subscribes_to: u32,
}

const MAX_PARTICIPANTS: usize = 2000;

impl Scenario {
    /// Parses `fanout-N`, `meeting-N` or `rooms-RxM`.
    pub fn parse(name: &str) -> Result<Self, ScenarioError> {
        let err = || ScenarioError(name.to_string());
        let num = |s: &str| {
            s.parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PARTICIPANTS).contains(n))
        };
        let s = if let Some(n) = name.strip_prefix("fanout-") {
            let n = num(n).ok_or_else(err)?;
            Self {
                name: name.into(),
                rooms: 1,
                per_room: n + 1,
                publishers_per_room: 1,
            }
        } else if let Some(n) = name.strip_prefix("meeting-") {
            let n = num(n).filter(|n| *n >= 2).ok_or_else(err)?;
            Self {
                name: name.into(),
                rooms: 1,
                per_room: n,
                publishers_per_room: n,
            }
        } else if let Some(rm) = name.strip_prefix("rooms-") {
            let (r, m) = rm.split_once('x').ok_or_else(err)?;
            let (r, m) = (num(r).ok_or_else(err)?, num(m).ok_or_else(err)?);
            if m < 2 {
                return Err(err());
            }
            Self {
                name: name.into(),
                rooms: r,
                per_room: m,
                publishers_per_room: m,
            }
        } else {
            return Err(err());
        };
        if s.rooms * s.per_room > MAX_PARTICIPANTS {
            return Err(err());
        }
        Ok(s)
    }

    /// Every participant, room by room, publishers first in each room.
    pub fn members(&self) -> Vec<Member> {
        let mut out = Vec::with_capacity(self.participants());
        let mut next_pub = 0u32;
        let others = u32::try_from(self.per_room - 1).unwrap_or(u32::MAX);
        let pubs = u32::try_from(self.publishers_per_room).unwrap_or(u32::MAX);
        for r in 0..self.rooms {
            for i in 0..self.per_room {
                let publishes = i < self.publishers_per_room;
                let publisher = publishes.then(|| {
                    next_pub += 1;
                    next_pub - 1
                });
                out.push(Member {
                    room: format!("{}-r{r}", self.name),
                    identity: format!("p{r}-{i}"),
                    publisher,
                    fanout: if publishes { others } else { 0 },
                    subscribes_to: if publishes { pubs - 1 } else { pubs },
                });
            }
        }
        out
    }

    /// Participants in all rooms.
    pub fn participants(&self) -> usize {
        self.rooms * self.per_room
    }

    /// Publishers (one track each).
    pub fn publishers(&self) -> usize {
        self.rooms * self.publishers_per_room
    }

    /// Forwarded copies per published packet, summed over publishers: the
    /// number of (track, subscriber) pairs.
    pub fn subscriptions(&self) -> usize {
        self.rooms * self.publishers_per_room * (self.per_room - 1)
    }

    /// Mean copies out per packet in.
    pub fn mean_fanout(&self) -> f64 {
        self.subscriptions() as f64 / self.publishers().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_layouts() {
        let f = Scenario::parse("fanout-50").expect("fanout");
        assert_eq!(
            (f.participants(), f.publishers(), f.subscriptions()),
            (51, 1, 50)
        );
        let m = Scenario::parse("meeting-10").expect("meeting");
        assert_eq!(
            (m.participants(), m.publishers(), m.subscriptions()),
            (10, 10, 90)
        );
        let r = Scenario::parse("rooms-20x5").expect("rooms");
        assert_eq!(
            (r.participants(), r.publishers(), r.subscriptions()),
            (100, 100, 400)
        );
        assert_eq!(r.mean_fanout(), 4.0);
        for s in [&f, &m, &r] {
            let members = s.members();
            assert_eq!(members.len(), s.participants());
            let fan: u32 = members.iter().map(|m| m.fanout).sum();
            let sub: u32 = members.iter().map(|m| m.subscribes_to).sum();
            assert_eq!(fan as usize, s.subscriptions());
            assert_eq!(sub as usize, s.subscriptions());
        }
        let fm = f.members();
        assert_eq!(fm[0].publisher, Some(0));
        assert_eq!((fm[0].fanout, fm[0].subscribes_to), (50, 0));
        assert_eq!((fm[1].publisher, fm[1].subscribes_to), (None, 1));
        let rm = r.members();
        assert_eq!(rm[99].publisher, Some(99));
        assert_eq!(rm[99].room, "rooms-20x5-r19");
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for bad in [
            "",
            "fanout",
            "fanout-0",
            "fanout-x",
            "meeting-1",
            "rooms-20",
            "rooms-2x1",
            "rooms-100x100",
            "mesh-3",
        ] {
            assert_eq!(
                Scenario::parse(bad),
                Err(ScenarioError(bad.into())),
                "{bad}"
            );
        }
    }
}
