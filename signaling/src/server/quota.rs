//! Server-wide and per-address counts of held resources (connections,
//! participants, rooms). A [`Slot`] holds one unit until it drops, so the
//! counts follow the lifetime of whatever keeps the slot.

use dashmap::DashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Whose share a resource counts against: an IPv4 address, or the /64
/// prefix of an IPv6 address (one subscriber's usual allocation, so that
/// rotating through it does not multiply the allowance). IPv4-mapped IPv6
/// addresses count as their IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct AddrKey(IpAddr);

impl AddrKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !(u128::from(u64::MAX));
                    Self(IpAddr::V6(prefix.into()))
                }
            },
        }
    }
}

/// Which cap refused a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The server-wide cap.
    Total,
    /// The cap of the caller's address.
    PerAddress,
}

/// A server-wide count with a cap, and one count per address with a cap.
#[derive(Debug)]
pub(crate) struct Quota {
    total: AtomicUsize,
    max_total: usize,
    per_address: DashMap<AddrKey, usize>,
    max_per_address: usize,
}

impl Quota {
    pub(crate) fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            total: AtomicUsize::new(0),
            max_total,
            per_address: DashMap::new(),
            max_per_address,
        })
    }

    /// Takes one unit for `addr` (no per-address cap without an address),
    /// or says which cap refuses it.
    pub(crate) fn acquire(self: &Arc<Self>, addr: Option<AddrKey>) -> Result<Slot, Refusal> {
        let taken = self
            .total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_total).then_some(n + 1)
            });
        if taken.is_err() {
            return Err(Refusal::Total);
        }
        if let Some(a) = addr {
            let mut n = self.per_address.entry(a).or_insert(0);
            if *n >= self.max_per_address {
                drop(n);
                self.total.fetch_sub(1, Ordering::AcqRel);
                self.forget_if_zero(a);
                return Err(Refusal::PerAddress);
            }
            *n += 1;
        }
        Ok(Slot {
            quota: self.clone(),
            addr,
        })
    }

    fn forget_if_zero(&self, a: AddrKey) {
        self.per_address.remove_if(&a, |_, n| *n == 0);
    }

    /// Units held server-wide.
    #[cfg(test)]
    fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Addresses holding at least one unit (the map's size).
    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.per_address.len()
    }
}

/// One unit of a [`Quota`], given back on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    quota: Arc<Quota>,
    addr: Option<AddrKey>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.quota.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(a) = self.addr {
            if let Some(mut n) = self.quota.per_address.get_mut(&a) {
                *n = n.saturating_sub(1);
            }
            self.quota.forget_if_zero(a);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(s: &str) -> AddrKey {
        AddrKey::of(s.parse().unwrap())
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(ip("2001:db8:1:2:aaaa::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:192.0.2.7"), ip("192.0.2.7"));
        assert_ne!(ip("192.0.2.7"), ip("192.0.2.8"));
    }

    #[test]
    fn caps_hold_and_slots_give_back() {
        let q = Quota::new(3, 2);
        let (a, b) = (Some(ip("192.0.2.1")), Some(ip("2001:db8::1")));
        let a1 = q.acquire(a).unwrap();
        let _a2 = q.acquire(a).unwrap();
        assert_eq!(q.acquire(a).err(), Some(Refusal::PerAddress));
        assert_eq!(q.total(), 2, "a refused slot holds nothing");
        let b1 = q.acquire(b).unwrap();
        assert_eq!(q.acquire(b).err(), Some(Refusal::Total));
        assert_eq!(q.acquire(None).err(), Some(Refusal::Total));
        drop(a1);
        assert!(q.acquire(a).is_ok(), "dropped and re-taken at once");
        drop(b1);
        assert_eq!(q.addresses(), 1, "addresses holding nothing are forgotten");
        assert_eq!(q.total(), 1);
    }
}
