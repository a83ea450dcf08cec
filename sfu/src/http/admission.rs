//! Connection caps applied at accept: one for the whole server and one per
//! client address (IPv6 clients by /64 network, the block one subscriber
//! usually holds). A connection holds a [`Slot`] for as long as its socket
//! is open, WebSocket included, and gives it back when the socket closes.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The server holds its maximum of connections.
    ServerFull,
    /// The client's address holds its maximum of connections.
    AddressFull,
}

/// Why an HTTP connection was closed by the server before its client was
/// done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The request head did not arrive in time.
    HeaderTimeout,
    /// A WebSocket upgrade did not complete in time.
    HandshakeTimeout,
    /// No byte moved for the idle timeout.
    IdleTimeout,
}

/// The HTTP server's counters, shown on `/metrics`.
#[derive(Debug, Default)]
pub struct HttpStats {
    accepted: AtomicU64,
    refused_server: AtomicU64,
    refused_address: AtomicU64,
    header_timeouts: AtomicU64,
    handshake_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    accept_errors: AtomicU64,
}

impl HttpStats {
    pub(super) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn refused(&self, why: Refusal) {
        match why {
            Refusal::ServerFull => &self.refused_server,
            Refusal::AddressFull => &self.refused_address,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn closed(&self, why: Closed) {
        match why {
            Closed::HeaderTimeout => &self.header_timeouts,
            Closed::HandshakeTimeout => &self.handshake_timeouts,
            Closed::IdleTimeout => &self.idle_timeouts,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn accept_error(&self) {
        self.accept_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts open connections, in total and per address key.
#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    max_per_address: usize,
    state: Mutex<Counts>,
    stats: Arc<HttpStats>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// One admitted connection's place in the counts; dropping it gives the
/// place back.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    key: IpAddr,
}

impl Admission {
    /// Caps of `max_total` connections and `max_per_address` per address.
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_address,
            state: Mutex::default(),
            stats: Arc::default(),
        })
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<HttpStats> {
        &self.stats
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // The counts stay consistent even if a holder panicked.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a connection from `peer`, or why there is none.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refusal> {
        let key = address_key(peer);
        let mut counts = self.counts();
        if counts.total >= self.max_total {
            return Err(Refusal::ServerFull);
        }
        let here = counts.per_address.entry(key).or_insert(0);
        if *here >= self.max_per_address {
            return Err(Refusal::AddressFull);
        }
        *here += 1;
        counts.total += 1;
        Ok(Slot {
            admission: self.clone(),
            key,
        })
    }

    /// Open connections.
    pub fn open(&self) -> usize {
        self.counts().total
    }

    /// Appends the HTTP metrics in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let s = &self.stats;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (open, addresses) = {
            let counts = self.counts();
            (counts.total, counts.per_address.len())
        };
        let _ = write!(
            out,
            "# HELP sfu_http_connections Open HTTP and WebSocket connections.\n\
             # TYPE sfu_http_connections gauge\n\
             sfu_http_connections {open}\n\
             # HELP sfu_http_connection_addresses Client addresses (IPv6: /64 networks) with an open connection.\n\
             # TYPE sfu_http_connection_addresses gauge\n\
             sfu_http_connection_addresses {addresses}\n\
             # HELP sfu_http_connections_accepted_total HTTP connections admitted.\n\
             # TYPE sfu_http_connections_accepted_total counter\n\
             sfu_http_connections_accepted_total {}\n\
             # HELP sfu_http_connections_refused_total HTTP connections closed at accept by a cap.\n\
             # TYPE sfu_http_connections_refused_total counter\n\
             sfu_http_connections_refused_total{{reason=\"max_connections\"}} {}\n\
             sfu_http_connections_refused_total{{reason=\"max_connections_per_address\"}} {}\n\
             # HELP sfu_http_connections_timed_out_total HTTP connections closed by a timeout.\n\
             # TYPE sfu_http_connections_timed_out_total counter\n\
             sfu_http_connections_timed_out_total{{reason=\"header\"}} {}\n\
             sfu_http_connections_timed_out_total{{reason=\"handshake\"}} {}\n\
             sfu_http_connections_timed_out_total{{reason=\"idle\"}} {}\n\
             # HELP sfu_http_accept_errors_total Failed accepts (e.g. out of file descriptors).\n\
             # TYPE sfu_http_accept_errors_total counter\n\
             sfu_http_accept_errors_total {}\n",
            load(&s.accepted),
            load(&s.refused_server),
            load(&s.refused_address),
            load(&s.header_timeouts),
            load(&s.handshake_timeouts),
            load(&s.idle_timeouts),
            load(&s.accept_errors),
        );
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_address.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.per_address.remove(&self.key);
            }
        }
    }
}

/// The key an address is counted under: an IPv4 address itself (IPv4
/// mapped into IPv6 included), an IPv6 address by its /64 network.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            address_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")),
            ip("2001:db8:1:2::")
        );
        assert_ne!(address_key(ip("2001:db8:1:3::1")), ip("2001:db8:1:2::"));
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(address_key(ip("192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn caps_hold_and_slots_come_back() {
        let a = Admission::new(3, 2);
        let x1 = a.admit(ip("192.0.2.1")).expect("first");
        let _x2 = a.admit(ip("192.0.2.1")).expect("second");
        assert_eq!(a.admit(ip("192.0.2.1")).err(), Some(Refusal::AddressFull));
        let _v6a = a.admit(ip("2001:db8::1")).expect("other address");
        assert_eq!(
            a.admit(ip("2001:db8::2")).err(),
            Some(Refusal::ServerFull),
            "total cap"
        );
        drop(x1);
        assert_eq!(a.open(), 2);
        let _v6b = a.admit(ip("2001:db8::2")).expect("same /64, second slot");
        assert_eq!(a.admit(ip("2001:db8::3")).err(), Some(Refusal::ServerFull));
        let mut text = String::new();
        a.render(&mut text);
        assert!(text.contains("\nsfu_http_connections 3\n"), "{text}");
        assert!(
            text.contains("\nsfu_http_connection_addresses 2\n"),
            "{text}"
        );
    }
}
