//! Rate allowances that outlive a connection: one [`Allowance`] per
//! identity (token subject) and one connection bucket per address, in a
//! shared, bounded map. Closing the socket and opening another does not
//! refill them. An entry is forgotten only once nobody holds it and every
//! bucket in it has refilled, which is exactly when a fresh one would be
//! the same.

use super::config::SignalingConfig;
use super::limits::{Allowance, TokenBucket};
use super::quota::AddrKey;
use dashmap::DashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One identity's allowance, shared by its connections.
pub(crate) type Shared = Arc<Mutex<Allowance>>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Identity(String),
    Address(AddrKey),
}

#[derive(Debug, Clone)]
enum Entry {
    Identity(Shared),
    Address(Arc<Mutex<TokenBucket>>),
}

impl Entry {
    /// Nobody holds it and it is as good as new.
    fn forgettable(&self, now: Instant) -> bool {
        match self {
            Entry::Identity(a) => {
                Arc::strong_count(a) == 1 && a.lock().map(|a| a.is_idle(now)).unwrap_or(true)
            }
            Entry::Address(b) => {
                Arc::strong_count(b) == 1 && b.lock().map(|b| b.is_full(now)).unwrap_or(true)
            }
        }
    }
}

/// The map was full of allowances in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// The bounded map of allowances.
#[derive(Debug)]
pub(crate) struct Allowances {
    map: DashMap<Key, Entry>,
    max: usize,
}

impl Allowances {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            map: DashMap::new(),
            max: max.max(1),
        }
    }

    /// The entry for `key`, made by `make` if absent. When the map is full
    /// the forgettable entries go first; if none is, [`Full`].
    fn get(&self, key: Key, now: Instant, make: impl FnOnce() -> Entry) -> Result<Entry, Full> {
        if let Some(e) = self.map.get(&key) {
            return Ok(e.clone());
        }
        if self.map.len() >= self.max {
            self.map.retain(|_, e| !e.forgettable(now));
            if self.map.len() >= self.max {
                return Err(Full);
            }
        }
        Ok(self.map.entry(key).or_insert_with(make).clone())
    }

    /// The allowance of `identity`, shared with its other connections.
    pub(crate) fn identity(
        &self,
        identity: &str,
        cfg: &SignalingConfig,
        now: Instant,
    ) -> Result<Shared, Full> {
        let make = || {
            Entry::Identity(Arc::new(Mutex::new(Allowance::new(
                cfg.rate_limit,
                &cfg.message_rates,
                now,
            ))))
        };
        match self.get(Key::Identity(identity.to_string()), now, make)? {
            Entry::Identity(a) => Ok(a),
            // Keys and entries are made in pairs.
            Entry::Address(_) => Err(Full),
        }
    }

    /// Takes one new connection from `addr`'s bucket; `false` if it is
    /// empty.
    pub(crate) fn connect(
        &self,
        addr: AddrKey,
        cfg: &SignalingConfig,
        now: Instant,
    ) -> Result<bool, Full> {
        let limit = cfg.capacity.connects_per_address;
        let make = || {
            Entry::Address(Arc::new(Mutex::new(TokenBucket::new(
                limit.burst,
                limit.per_second,
                now,
            ))))
        };
        match self.get(Key::Address(addr), now, make)? {
            Entry::Address(b) => Ok(b.lock().map(|mut b| b.try_take(now)).unwrap_or(false)),
            Entry::Identity(_) => Err(Full),
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::server::config::{Capacity, RateLimit};
    use crate::server::limits::Verdict;
    use std::time::Duration;

    fn cfg() -> SignalingConfig {
        SignalingConfig::default()
            .with_rate_limit(RateLimit::new(1.0, 2))
            .with_capacity(Capacity::default().with_connects_per_address(RateLimit::new(1.0, 2)))
    }

    #[test]
    fn an_identity_keeps_its_allowance_across_connections() {
        let (cfg, t0) = (cfg(), Instant::now());
        let al = Allowances::new(10);
        let first = al.identity("alice", &cfg, t0).unwrap();
        assert_eq!(first.lock().unwrap().check(t0), Verdict::Allow);
        assert_eq!(first.lock().unwrap().check(t0), Verdict::Allow);
        drop(first);
        // A new connection of the same identity finds the bucket empty.
        let second = al.identity("alice", &cfg, t0).unwrap();
        assert_eq!(second.lock().unwrap().check(t0), Verdict::Limited);
        // Another identity has its own.
        let bob = al.identity("bob", &cfg, t0).unwrap();
        assert_eq!(bob.lock().unwrap().check(t0), Verdict::Allow);
    }

    #[test]
    fn an_address_keeps_its_connection_bucket() {
        let (cfg, t0) = (cfg(), Instant::now());
        let al = Allowances::new(10);
        let a = AddrKey::of([192, 0, 2, 1].into());
        assert_eq!(al.connect(a, &cfg, t0), Ok(true));
        assert_eq!(al.connect(a, &cfg, t0), Ok(true));
        assert_eq!(al.connect(a, &cfg, t0), Ok(false));
        assert_eq!(al.connect(a, &cfg, t0 + Duration::from_secs(1)), Ok(true));
    }

    #[test]
    fn the_map_is_bounded_and_forgets_only_idle_unheld_entries() {
        let (cfg, t0) = (cfg(), Instant::now());
        let al = Allowances::new(2);
        let held = al.identity("a", &cfg, t0).unwrap();
        let b = al.identity("b", &cfg, t0).unwrap();
        b.lock().unwrap().check(t0);
        drop(b);
        // Full: "a" is held and "b" has not refilled.
        assert_eq!(al.identity("c", &cfg, t0).err(), Some(Full));
        // Once "b" has refilled it can go.
        let later = t0 + Duration::from_secs(60);
        assert!(al.identity("c", &cfg, later).is_ok());
        assert_eq!(al.len(), 2);
        drop(held);
    }
}
