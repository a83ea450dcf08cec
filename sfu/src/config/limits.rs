//! The signaling limits among the settings: rates written as text, and
//! how the settings of [`Limits`] become signaling's configuration.

use super::Limits;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use signaling::server::{Capacity, MessageRates, RateLimit, SignalingConfig, SizeCaps};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A rate allowance written `BURST/INTERVAL`: up to `BURST` at once, then
/// one more per `INTERVAL` ("5/10s": five, then one every ten seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many may come at once.
    pub burst: u32,
    /// The time it takes to earn one more.
    pub every: Duration,
}

impl Rate {
    /// `burst`, then one per `every`.
    pub const fn new(burst: u32, every: Duration) -> Self {
        Self { burst, every }
    }

    /// Signaling's form of it.
    pub fn limit(self) -> RateLimit {
        RateLimit::new(1.0 / self.every.as_secs_f64(), self.burst)
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?}: expected BURST/INTERVAL, such as 5/10s or 20/500ms");
        let (burst, every) = text.trim().split_once('/').ok_or_else(bad)?;
        let burst: u32 = burst.trim().parse().map_err(|_| bad())?;
        let every = humantime::parse_duration(every.trim()).map_err(|_| bad())?;
        if burst == 0 || every.is_zero() {
            return Err(format!(
                "{text:?}: the burst and the interval must not be zero"
            ));
        }
        Ok(Self { burst, every })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}",
            self.burst,
            humantime::format_duration(self.every)
        )
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Limits {
    /// The first signaling cap set to zero (which would refuse everything).
    pub(super) fn zero_cap(&self) -> Option<&'static str> {
        [
            ("max_connections", self.max_connections),
            (
                "max_connections_per_address",
                self.max_connections_per_address,
            ),
            ("max_participants", self.max_participants),
            (
                "max_participants_per_address",
                self.max_participants_per_address,
            ),
            ("max_rooms", self.max_rooms),
            ("max_rooms_per_address", self.max_rooms_per_address),
            ("outbound_queue_bytes", self.outbound_queue_bytes),
            ("room_outbound_bytes", self.room_outbound_bytes),
            ("max_sdp_bytes", self.max_sdp_bytes),
            ("max_key_package_bytes", self.max_key_package_bytes),
            ("max_commit_bytes", self.max_commit_bytes),
            ("max_welcome_bytes", self.max_welcome_bytes),
            ("max_chat_bytes", self.max_chat_bytes),
        ]
        .into_iter()
        .find_map(|(name, v)| (v == 0).then_some(name))
    }

    /// `base` with this group's signaling limits applied.
    pub fn apply_to(&self, base: SignalingConfig) -> SignalingConfig {
        let capacity = Capacity::default()
            .with_connections(self.max_connections, self.max_connections_per_address)
            .with_participants(self.max_participants, self.max_participants_per_address)
            .with_rooms(self.max_rooms, self.max_rooms_per_address);
        let sizes = SizeCaps::default()
            .with_sdp(self.max_sdp_bytes)
            .with_key_package(self.max_key_package_bytes)
            .with_commit(self.max_commit_bytes)
            .with_welcome(self.max_welcome_bytes)
            .with_application(self.max_chat_bytes);
        let rates = MessageRates::default()
            .with_key_package(self.key_package_rate.limit())
            .with_mls_commit(self.commit_rate.limit())
            .with_chat(self.chat_rate.limit())
            .with_sdp(self.sdp_rate.limit());
        base.with_capacity(capacity)
            .with_size_caps(sizes)
            .with_message_rates(rates)
            .with_outbound_queue_bytes(self.outbound_queue_bytes)
            .with_room_outbound_bytes(self.room_outbound_bytes)
            .with_max_participants_per_room(self.max_participants_per_room)
            .with_mls_founder_timeout(self.mls_founder_timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_and_write_back() {
        let r: Rate = "5/10s"
            .parse()
            .unwrap_or(Rate::new(1, Duration::from_secs(1)));
        assert_eq!(r, Rate::new(5, Duration::from_secs(10)));
        assert_eq!(r.to_string(), "5/10s");
        assert!((r.limit().per_second - 0.1).abs() < 1e-9);
        for bad in ["5", "x/1s", "5/soon", "0/1s", "5/0s", ""] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_defaults_are_signalings_defaults() {
        let ours = Limits::default().apply_to(SignalingConfig::default());
        let theirs = SignalingConfig::default();
        assert_eq!(ours.capacity, theirs.capacity);
        assert_eq!(ours.size_caps, theirs.size_caps);
        assert_eq!(ours.message_rates, theirs.message_rates);
        assert_eq!(ours.outbound_queue_bytes, theirs.outbound_queue_bytes);
        assert_eq!(ours.room_outbound_bytes, theirs.room_outbound_bytes);
    }
}
