//! Datagram demultiplexing (RFC 7983) and remote address learning: which
//! transport a datagram is for, by STUN username for ICE checks and by
//! source address for everything else.

use super::MediaPlane;
use crate::demux::{self, Class};
use crate::stats::DropReason;
use crate::transport::TransportId;
use std::net::SocketAddr;
use std::time::Instant;
use str0m::Input as RtcInput;
use str0m::net::{DatagramRecv, Protocol, Receive};

/// Remote addresses remembered per transport. ICE may try a few pairs; more
/// than this is abuse, and the oldest mapping is forgotten.
const MAX_ADDRS_PER_TRANSPORT: usize = 4;

impl MediaPlane {
    /// Hands a datagram to its transport. Returns the transport if str0m
    /// took it, to be polled before the next datagram.
    #[inline]
    pub(super) fn on_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        buf: &[u8],
    ) -> Option<TransportId> {
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += buf.len() as u64;
        if buf.len() > self.cfg.max_datagram {
            self.stats.drop(DropReason::Oversized);
            return None;
        }
        let class = demux::classify(buf);
        let tid = match class {
            Class::Other => {
                self.stats.drop(DropReason::Unclassifiable);
                return None;
            }
            // STUN names its transport by ufrag; that is how new addresses
            // are learned, and it also keeps two transports from one host
            // port apart.
            Class::Stun => match demux::stun_local_ufrag(buf).and_then(|u| self.by_ufrag.get(u)) {
                Some(tid) => *tid,
                None => {
                    self.stats.drop(DropReason::BadStun);
                    return None;
                }
            },
            Class::Dtls | Class::Rtp => match self.by_addr.get(&source) {
                Some(tid) => *tid,
                None => {
                    self.stats.drop(DropReason::UnknownSource);
                    return None;
                }
            },
        };
        let Ok(contents) = DatagramRecv::try_from(buf) else {
            self.stats.drop(DropReason::Rejected);
            return None;
        };
        let Some(tr) = self.transports.get_mut(&tid) else {
            self.stats.drop(DropReason::UnknownSource);
            return None;
        };
        let input = RtcInput::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        if !tr.rtc.accepts(&input) {
            self.stats.drop(DropReason::Rejected);
            return None;
        }
        if let Err(e) = tr.rtc.handle_input(input) {
            tracing::trace!(error = %e, "datagram rejected");
            self.stats.drop(DropReason::Rejected);
            return None;
        }
        // str0m's ICE agent and DTLS layer discard what they cannot use
        // without an error: these count what reached them.
        match class {
            Class::Dtls => self.stats.dtls_in += 1,
            Class::Stun => self.stats.stun_in += 1,
            _ => {}
        }
        // str0m drops refused RTP and RTCP without an error; its counters
        // tell. Comparing them costs a few integer compares per datagram.
        let seen = tr.rtc.inbound_drops();
        if seen == tr.inbound_drops {
            if class == Class::Rtp && demux::is_rtcp(buf) {
                self.stats.rtcp_in += 1;
            }
            tr.last_rx = now;
        } else {
            // Refused packets do not keep a participant alive. The transport
            // is still polled: str0m may have moved a timer on the way.
            let before = std::mem::replace(&mut tr.inbound_drops, seen);
            let logged = &mut tr.logged_drops;
            self.stats.add_inbound_drops(&before, &seen, |reason| {
                log_inbound_drop(tid, reason, logged);
            });
        }
        // Safe to learn: str0m accepts a STUN message only after checking its
        // MESSAGE-INTEGRITY (indications are refused outright).
        if class == Class::Stun && tr.remote != Some(source) {
            tr.remote = Some(source);
            self.learn_addr(tid, source);
        }
        Some(tid)
    }

    fn learn_addr(&mut self, tid: TransportId, addr: SocketAddr) {
        let list = self.addrs.entry(tid).or_default();
        if !list.contains(&addr) {
            list.push_back(addr);
            if list.len() > MAX_ADDRS_PER_TRANSPORT
                && let Some(old) = list.pop_front()
                && self.by_addr.get(&old) == Some(&tid)
            {
                self.by_addr.remove(&old);
            }
        }
        self.by_addr.insert(addr, tid);
    }
}

/// Logs a packet str0m refused: at trace level each time, at debug level
/// the first time per transport and reason (the counter has the rest). Only
/// the reason and the transport: never the packet.
fn log_inbound_drop(tid: TransportId, reason: DropReason, logged: &mut u32) {
    let bit = 1u32 << (reason as u32);
    if *logged & bit == 0 {
        *logged |= bit;
        tracing::debug!(
            transport = tid.0,
            reason = reason.label(),
            "inbound packet dropped; later ones for this reason are only counted"
        );
    } else {
        tracing::trace!(
            transport = tid.0,
            reason = reason.label(),
            "inbound packet dropped"
        );
    }
}
