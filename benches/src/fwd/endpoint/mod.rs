//! One UDP socket of the load generator and what drives it: a lean str0m
//! peer in RTP mode (a publisher or a subscriber transport of the SFU), or
//! a plain socket (the baseline forwarder's publishers and sinks).
//!
//! Publishers send paced packets of a fixed size whose payload starts with
//! a [`Stamp`] and whose RTP timestamp is the low 32 bits of its send time
//! in µs. Sinks count RTP from the clear header and take the latency from
//! that timestamp and the kernel's receive timestamp; they hand only STUN,
//! DTLS and RTCP to str0m, so their cost stays far below the forwarder's.
//! A *probe* sink also decrypts every packet to check that the SFU passes
//! the timestamp through unchanged and to learn the SRTP overhead.

mod publisher;
mod sink;

pub use publisher::Publisher;
pub use sink::Sink;

use crate::fwd::batch::{self, RecvBatch, SendBatch};
use crate::fwd::dtls_sniff::{self, Sniffed};
use crate::fwd::generator::Shared;
use crate::fwd::latency::LatencyHist;
use crate::fwd::rtp::{self, Class, Stamp};
use sfu_core::dd::{DD_EXT_ID, extension};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcError};

/// Batches read from one socket per visit, so one busy socket cannot
/// starve the others.
const RECV_ROUNDS: usize = 4;
/// Payload type of the baseline's plain RTP.
const PLAIN_PT: u8 = 96;

/// What the generator thread hands every endpoint on each visit.
#[derive(Debug)]
pub struct PumpCtx<'a> {
    /// Counters and controls shared with the controller.
    pub shared: &'a Shared,
    /// Receive scratch.
    pub recv: &'a mut RecvBatch,
    /// Send scratch.
    pub send: &'a mut SendBatch,
    /// Latency samples of this visit.
    pub hist: &'a mut LatencyHist,
    /// Offered packets per second per publisher.
    pub rate_per_publisher: f64,
    /// Publishers in the scenario (to stagger them).
    pub publishers: usize,
    /// Changes whenever the rate does; publishers then restart pacing.
    pub epoch: u64,
    /// Most packets one publisher sends per visit; beyond it the generator
    /// is behind and says so.
    pub max_burst: u64,
    /// Time between keyframes (the SFU starts subscribers at keyframes).
    pub keyframe_interval: Duration,
    /// Whether publishers write the dependency descriptor.
    pub dd: bool,
}

/// Publisher or sink.
#[derive(Debug)]
pub enum Role {
    /// Sends media.
    Publisher(Publisher),
    /// Receives media.
    Sink(Sink),
}

/// One socket and, for the SFU's peers, its str0m `Rtc`.
pub struct Endpoint {
    socket: UdpSocket,
    local: SocketAddr,
    rtc: Option<Rtc>,
    pending: Option<SdpPendingOffer>,
    role: Role,
    next_timeout: Instant,
    connected: bool,
    out: Vec<(Vec<u8>, SocketAddr)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("local", &self.local)
            .field("role", &self.role)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

fn new_rtc(local: SocketAddr, now: Instant) -> Rtc {
    // The descriptor extension is registered on every peer, so the SFU's
    // offers carry it and the headers have their real size.
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .set_stats_interval(None)
        .set_extension(DD_EXT_ID, extension())
        .build(now);
    if let Ok(c) = Candidate::host(local, "udp") {
        rtc.add_local_candidate(c);
    }
    rtc
}

impl Endpoint {
    fn new(role: Role, with_rtc: bool, timestamps: bool, now: Instant) -> std::io::Result<Self> {
        let socket = batch::bind_loopback(timestamps)?;
        let local = socket.local_addr()?;
        Ok(Self {
            rtc: with_rtc.then(|| new_rtc(local, now)),
            socket,
            local,
            pending: None,
            role,
            next_timeout: now,
            connected: !with_rtc,
            out: Vec::new(),
        })
    }

    /// A publisher peer of the SFU: publisher number `index`, whose track
    /// has `fanout` subscribers, sending `payload`-byte packets.
    pub fn publisher(
        index: u32,
        fanout: u32,
        payload: usize,
        now: Instant,
    ) -> std::io::Result<Self> {
        Self::new(
            Role::Publisher(Publisher::new(index, fanout, payload, None, now)),
            true,
            false,
            now,
        )
    }

    /// A subscriber peer of the SFU that expects `expect` tracks; a `probe`
    /// decrypts every packet.
    pub fn sink(expect: u32, probe: bool, now: Instant) -> std::io::Result<Self> {
        Self::new(Role::Sink(Sink::new(expect, probe)), true, true, now)
    }

    /// A baseline publisher: plain RTP with `ssrc` to `dest`.
    pub fn plain_publisher(
        index: u32,
        fanout: u32,
        payload: usize,
        dest: SocketAddr,
        ssrc: u32,
        now: Instant,
    ) -> std::io::Result<Self> {
        let role = Role::Publisher(Publisher::new(
            index,
            fanout,
            payload,
            Some((dest, ssrc)),
            now,
        ));
        Self::new(role, false, false, now)
    }

    /// A baseline sink expecting `expect` streams.
    pub fn plain_sink(expect: u32, now: Instant) -> std::io::Result<Self> {
        Self::new(Role::Sink(Sink::new(expect, false)), false, true, now)
    }

    /// The socket's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Whether ICE and DTLS completed (always true for plain endpoints).
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Offers one send-only video m-line. Returns the SDP and the mid.
    pub fn offer_video(&mut self) -> Option<(String, String)> {
        let rtc = self.rtc.as_mut()?;
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply()?;
        self.pending = Some(pending);
        if let Role::Publisher(p) = &mut self.role {
            p.mid = Some(mid);
        }
        Some((offer.to_sdp_string(), mid.to_string()))
    }

    /// Applies the SFU's answer to [`Self::offer_video`].
    pub fn accept_answer(&mut self, sdp: &str) -> Result<(), RtcError> {
        let answer = SdpAnswer::from_sdp_string(sdp)?;
        let pending = self
            .pending
            .take()
            .ok_or_else(|| RtcError::RemoteSdp("no pending offer".into()))?;
        let rtc = self
            .rtc
            .as_mut()
            .ok_or_else(|| RtcError::RemoteSdp("plain endpoint".into()))?;
        rtc.sdp_api().accept_answer(pending, answer)?;
        // Drive at once: the answer may start ICE.
        self.next_timeout = Instant::now();
        Ok(())
    }

    /// Answers an SFU subscriber offer.
    pub fn accept_offer(&mut self, sdp: &str) -> Result<String, RtcError> {
        let offer = SdpOffer::from_sdp_string(sdp)?;
        let rtc = self
            .rtc
            .as_mut()
            .ok_or_else(|| RtcError::RemoteSdp("plain endpoint".into()))?;
        let answer = rtc.sdp_api().accept_offer(offer)?.to_sdp_string();
        self.next_timeout = Instant::now();
        Ok(answer)
    }

    /// One visit of the generator: receive what is queued, send what is
    /// due, run timers. Returns whether anything happened.
    pub fn pump(&mut self, now: Instant, ctx: &mut PumpCtx<'_>) -> bool {
        let mut active = self.receive(now, ctx);
        active |= self.publish(now, ctx);
        if self.rtc.is_some() && now >= self.next_timeout {
            if let Some(rtc) = self.rtc.as_mut()
                && rtc.handle_input(Input::Timeout(now)).is_err()
            {
                ctx.shared.rtc_errors.fetch_add(1, Relaxed);
            }
            self.drain(now, ctx.shared);
        }
        active |= !self.out.is_empty();
        self.flush(ctx);
        active
    }

    fn receive(&mut self, now: Instant, ctx: &mut PumpCtx<'_>) -> bool {
        let mut active = false;
        for _ in 0..RECV_ROUNDS {
            let n = match ctx.recv.recv(&self.socket) {
                Ok(n) => n,
                Err(e) => {
                    ctx.shared.io_errors.fetch_add(1, Relaxed);
                    tracing::debug!(error = %e, "receive failed");
                    break;
                }
            };
            if n == 0 {
                break;
            }
            active = true;
            let fallback_us = batch::realtime_us();
            let mut rtp_count = 0u64;
            for i in 0..n {
                let Some(d) = ctx.recv.get(i) else { break };
                match rtp::classify(d.data) {
                    Class::Rtp => {
                        let Role::Sink(sink) = &mut self.role else {
                            continue;
                        };
                        let Some(v) = rtp::view(d.data) else {
                            continue;
                        };
                        rtp_count += 1;
                        sink.note_ssrc(v.ssrc, ctx.shared);
                        if let Some(age) = rtp::age_us(v.ts, d.kernel_us.unwrap_or(fallback_us)) {
                            ctx.hist.record(age);
                        }
                        if sink.probe {
                            sink.last_len = d.data.len();
                            self.feed(now, d.data, d.source, ctx.shared);
                        }
                    }
                    Class::Stun | Class::Dtls | Class::Rtcp => {
                        self.feed(now, d.data, d.source, ctx.shared);
                    }
                    Class::Other => {}
                }
            }
            ctx.shared.received.fetch_add(rtp_count, Relaxed);
            if n < batch::BATCH {
                break;
            }
        }
        active
    }

    /// Hands one datagram to str0m and collects what it produces. In RTP
    /// mode str0m holds one received packet until polled, so this polls.
    fn feed(&mut self, now: Instant, data: &[u8], source: Option<SocketAddr>, shared: &Shared) {
        let (Some(rtc), Some(source)) = (self.rtc.as_mut(), source) else {
            return;
        };
        if rtp::classify(data) == Class::Dtls {
            sniff(data, shared);
        }
        let Ok(contents) = DatagramRecv::try_from(data) else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        if rtc.handle_input(input).is_err() {
            shared.rtc_errors.fetch_add(1, Relaxed);
        }
        self.drain(now, shared);
    }

    fn drain(&mut self, now: Instant, shared: &Shared) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    // str0m may ask for "now" again; step a little so the
                    // loop makes progress.
                    self.next_timeout = t.max(now + Duration::from_micros(200));
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    let bytes: Vec<u8> = t.contents.into();
                    if rtp::classify(&bytes) == Class::Dtls {
                        sniff(&bytes, shared);
                    }
                    self.out.push((bytes, t.destination));
                }
                Ok(Output::Event(e)) => match e {
                    Event::Connected if !self.connected => {
                        self.connected = true;
                        shared.connected.fetch_add(1, Relaxed);
                    }
                    Event::KeyframeRequest(_) => {
                        if let Role::Publisher(p) = &mut self.role {
                            p.want_keyframe = true;
                        }
                    }
                    Event::RtpPacket(pkt) => {
                        if let Role::Sink(sink) = &mut self.role {
                            shared.probe_packets.fetch_add(1, Relaxed);
                            match Stamp::read(&pkt.payload) {
                                Some(s) if s.send_us as u32 == pkt.header.timestamp => {}
                                _ => {
                                    shared.probe_ts_mismatch.fetch_add(1, Relaxed);
                                }
                            }
                            let overhead = sink
                                .last_len
                                .saturating_sub(pkt.header.header_len + pkt.payload.len());
                            shared.srtp_overhead.store(overhead as u64, Relaxed);
                            let ssrc = pkt.header.ssrc;
                            if !sink.suppressed.contains(&ssrc) {
                                // Loss at the probe is the generator's, not
                                // the SFU's: no NACKs, no retransmissions.
                                if let Some(rx) = rtc.direct_api().stream_rx(&ssrc) {
                                    rx.suppress_nack(true);
                                }
                                sink.suppressed.push(ssrc);
                            }
                        }
                    }
                    _ => {}
                },
                Err(e) => {
                    shared.rtc_errors.fetch_add(1, Relaxed);
                    tracing::debug!(error = %e, "rtc failed");
                    self.next_timeout = now + Duration::from_secs(1);
                    return;
                }
            }
        }
    }

    fn publish(&mut self, now: Instant, ctx: &mut PumpCtx<'_>) -> bool {
        let Self {
            rtc,
            role,
            out,
            connected,
            ..
        } = self;
        let Role::Publisher(p) = role else {
            return false;
        };
        let mut behind = 0;
        let publishers = ctx.publishers.max(1);
        let phase = (p.index as usize % publishers) as f64 / publishers as f64;
        let n = p.pacing.due(
            now,
            ctx.rate_per_publisher,
            phase,
            ctx.epoch,
            ctx.max_burst,
            &mut behind,
        );
        ctx.shared.behind.fetch_add(behind, Relaxed);
        if n == 0 {
            return false;
        }
        let sent = match (rtc.as_mut(), p.plain) {
            (_, Some((dest, ssrc))) => p.send_plain(n, dest, ssrc, out),
            (Some(rtc), None) => {
                if !*connected || !p.resolve(rtc) {
                    p.pacing.restart(now);
                    return false;
                }
                let sent = p.send_rtc(rtc, n, now, ctx);
                if rtc.handle_input(Input::Timeout(now)).is_err() {
                    ctx.shared.rtc_errors.fetch_add(1, Relaxed);
                }
                sent
            }
            (None, None) => 0,
        };
        p.pacing.sent += n;
        ctx.shared.sent.fetch_add(sent, Relaxed);
        ctx.shared
            .expected
            .fetch_add(sent * u64::from(p.fanout), Relaxed);
        if self.rtc.is_some() {
            self.drain(now, ctx.shared);
        }
        true
    }

    fn flush(&mut self, ctx: &mut PumpCtx<'_>) {
        if self.out.is_empty() {
            return;
        }
        match ctx.send.send(&self.socket, &self.out) {
            Ok(s) => {
                ctx.shared.send_dropped.fetch_add(s.dropped as u64, Relaxed);
            }
            Err(e) => {
                ctx.shared.io_errors.fetch_add(1, Relaxed);
                tracing::debug!(error = %e, "send failed");
            }
        }
        self.out.clear();
    }
}

fn sniff(datagram: &[u8], shared: &Shared) {
    if shared.srtp_profile.load(Relaxed) != 0 {
        return;
    }
    match dtls_sniff::sniff(datagram) {
        Some(Sniffed::Profile(id)) => shared.srtp_profile.store(u32::from(id), Relaxed),
        Some(Sniffed::Dtls13) => shared.srtp_profile.store(Shared::PROFILE_DTLS13, Relaxed),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fwd::batch::{RecvBatch, SendBatch};
    use crate::fwd::latency::LatencyHist;

    #[test]
    fn plain_publisher_reaches_plain_sink() {
        let now = Instant::now();
        let shared = Shared::default();
        let mut sink = Endpoint::plain_sink(1, now).expect("sink");
        let mut publ =
            Endpoint::plain_publisher(3, 1, 1200, sink.local_addr(), 0x1234, now).expect("pub");
        shared.set_rate(1000.0);
        let (rate, epoch) = shared.rate();
        let (mut recv, mut send, mut hist) =
            (RecvBatch::new(), SendBatch::new(), LatencyHist::new());
        let mut ctx = PumpCtx {
            shared: &shared,
            recv: &mut recv,
            send: &mut send,
            hist: &mut hist,
            rate_per_publisher: rate,
            publishers: 1,
            epoch,
            max_burst: 64,
            keyframe_interval: Duration::from_secs(1),
            dd: true,
        };
        publ.pump(now, &mut ctx);
        assert!(publ.pump(now + Duration::from_millis(20), &mut ctx));
        let sent = shared.sent.load(Relaxed);
        assert_eq!(sent, 20);
        assert_eq!(shared.expected.load(Relaxed), 20);
        for _ in 0..200 {
            sink.pump(Instant::now(), &mut ctx);
            if shared.received.load(Relaxed) == sent {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(shared.received.load(Relaxed), sent);
        assert_eq!(shared.sinks_ready.load(Relaxed), 1);
        assert_eq!(ctx.hist.count(), sent);
    }
}
