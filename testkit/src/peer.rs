//! A lean str0m client peer that publishes and subscribes raw RTP.

use rtp_dd::FrameMark;
use sfu_core::dd::{self, DdBytes};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpWrite, SeqNo};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcError};

/// One RTP packet a peer received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The m-line it arrived on.
    pub mid: Mid,
    /// The RTP sequence number as sent by the SFU.
    pub seq: u16,
    /// The RTP timestamp.
    pub ts: u32,
    /// Marker bit.
    pub marker: bool,
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// The dependency descriptor header extension's bytes, if present.
    pub dd: Option<Vec<u8>>,
    /// Virtual time it arrived.
    pub at: Instant,
}

/// A datagram the peer wants sent.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Our address.
    pub source: SocketAddr,
    /// Where to.
    pub destination: SocketAddr,
    /// Bytes.
    pub contents: Vec<u8>,
}

/// A minimal WebRTC client on str0m (full ICE, RTP mode).
pub struct LeanPeer {
    rtc: Rtc,
    addr: SocketAddr,
    next_timeout: Instant,
    pending: Option<SdpPendingOffer>,
    seq: Vec<(Mid, u64)>,
    /// Every RTP packet received, in arrival order.
    pub received: Vec<Received>,
    /// Keyframe requests that reached this peer as a publisher.
    pub keyframe_requests: u64,
    /// Datagrams to put on the network.
    pub outbox: Vec<Outgoing>,
    /// Whether ICE and DTLS completed.
    pub connected: bool,
    /// RTP packets whose SSRC maps to no m-line.
    pub unmapped: u64,
    /// Whether to keep payloads in [`Self::received`] (benches turn it off).
    pub keep_payloads: bool,
}

impl LeanPeer {
    /// A peer bound (virtually) at `addr`.
    pub fn new(addr: SocketAddr, now: Instant) -> Self {
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .set_stats_interval(None)
            .set_extension(dd::DD_EXT_ID, dd::extension())
            .build(now);
        if let Ok(c) = Candidate::host(addr, "udp") {
            rtc.add_local_candidate(c);
        }
        Self {
            rtc,
            addr,
            next_timeout: now,
            pending: None,
            seq: Vec::new(),
            received: Vec::new(),
            keyframe_requests: 0,
            outbox: Vec::new(),
            connected: false,
            keep_payloads: true,
            unmapped: 0,
        }
    }

    /// Our address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// RTP and RTCP this peer's session dropped, by reason (e.g. RTX
    /// resends of packets that had already arrived).
    pub fn inbound_drops(&self) -> str0m::stats::InboundDrops {
        self.rtc.inbound_drops()
    }

    /// When the peer next needs [`Self::poll`].
    pub fn next_timeout(&self) -> Instant {
        self.next_timeout
    }

    /// Makes an offer with one send-only m-line per kind. Returns the SDP
    /// and the mids in the same order.
    pub fn offer_tracks(&mut self, kinds: &[MediaKind]) -> (String, Vec<Mid>) {
        let mut api = self.rtc.sdp_api();
        let mids: Vec<Mid> = kinds
            .iter()
            .map(|k| api.add_media(*k, Direction::SendOnly, None, None, None))
            .collect();
        match api.apply() {
            Some((offer, pending)) => {
                self.pending = Some(pending);
                (offer.to_sdp_string(), mids)
            }
            None => (String::new(), mids),
        }
    }

    /// Applies the answer to our last offer.
    pub fn accept_answer(&mut self, sdp: &str) -> Result<(), RtcError> {
        let answer = SdpAnswer::from_sdp_string(sdp)?;
        let pending = self
            .pending
            .take()
            .ok_or_else(|| RtcError::RemoteSdp("no pending offer".into()))?;
        self.rtc.sdp_api().accept_answer(pending, answer)
    }

    /// Answers a remote offer.
    pub fn accept_offer(&mut self, sdp: &str) -> Result<String, RtcError> {
        let offer = SdpOffer::from_sdp_string(sdp)?;
        Ok(self.rtc.sdp_api().accept_offer(offer)?.to_sdp_string())
    }

    fn pt_for(&self, mid: Mid) -> Option<Pt> {
        let kind = self.rtc.media(mid)?.kind();
        let want = if kind == MediaKind::Audio {
            Codec::Opus
        } else {
            Codec::Vp8
        };
        self.rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == want)
            .map(|p| p.pt())
    }

    /// Sends one RTP packet on `mid` with the next sequence number.
    /// Returns `false` if the stream is not ready yet.
    pub fn send_rtp(
        &mut self,
        now: Instant,
        mid: Mid,
        ts: u32,
        marker: bool,
        payload: &[u8],
    ) -> bool {
        self.send_rtp_dd(now, mid, ts, marker, payload, None)
    }

    /// Sends one packet of a frame with a dependency descriptor written by
    /// [`rtp_dd::write`] for `mark`; the marker bit is `end_of_frame`.
    /// Returns `false` if the stream is not ready yet.
    pub fn send_frame_packet(
        &mut self,
        now: Instant,
        mid: Mid,
        ts: u32,
        mark: &FrameMark,
        payload: &[u8],
    ) -> bool {
        let mut buf = [0u8; rtp_dd::MAX_LEN];
        let n = rtp_dd::write(mark, &mut buf);
        self.send_rtp_dd(now, mid, ts, mark.end_of_frame, payload, Some(&buf[..n]))
    }

    /// Like [`Self::send_rtp`], with `dd` (any bytes, up to 255) as the
    /// dependency descriptor header extension when the m-line negotiated it.
    pub fn send_rtp_dd(
        &mut self,
        now: Instant,
        mid: Mid,
        ts: u32,
        marker: bool,
        payload: &[u8],
        dd: Option<&[u8]>,
    ) -> bool {
        let Some(pt) = self.pt_for(mid) else {
            return false;
        };
        let seq = match self.seq.iter_mut().find(|(m, _)| *m == mid) {
            Some((_, s)) => {
                *s += 1;
                *s
            }
            None => {
                self.seq.push((mid, 1));
                1
            }
        };
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, None) else {
            return false;
        };
        let mut ext = ExtensionValues::default();
        if let Some(dd) = dd.and_then(DdBytes::new) {
            ext.user_values.set(dd);
        }
        let w = RtpWrite::new(pt, SeqNo::from(seq), ts, now, payload.to_vec())
            .marker(marker)
            .ext_vals(ext)
            .nackable(true);
        tx.write_rtp(w);
        true
    }

    /// Asks the SFU for a keyframe on a subscribed m-line.
    pub fn request_keyframe(&mut self, mid: Mid) {
        if let Some(rx) = self.rtc.direct_api().stream_rx_by_mid(mid, None) {
            rx.request_keyframe(KeyframeRequestKind::Pli);
        }
    }

    /// Feeds one datagram.
    pub fn receive(&mut self, now: Instant, source: SocketAddr, contents: &[u8]) {
        let Ok(contents) = DatagramRecv::try_from(contents) else {
            return;
        };
        let _ = self.rtc.handle_input(Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.addr,
                contents,
            },
        ));
        // In RTP mode str0m holds only one received packet until the next
        // poll; poll before the next datagram or packets are lost.
        self.poll(now);
    }

    /// Advances to `now` and collects outputs until the next timeout.
    pub fn poll(&mut self, now: Instant) {
        let _ = self.rtc.handle_input(Input::Timeout(now));
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    // str0m may ask for "now" again; step at least 1 ms of
                    // virtual time to make progress.
                    self.next_timeout = t.max(now + Duration::from_micros(100));
                    return;
                }
                Ok(Output::Transmit(t)) => self.outbox.push(Outgoing {
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.into(),
                }),
                Ok(Output::Event(e)) => self.on_event(now, e),
                Err(_) => {
                    self.next_timeout = now + Duration::from_secs(3600);
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, now: Instant, e: Event) {
        match e {
            Event::Connected => self.connected = true,
            Event::RtpPacket(p) => {
                let mid = self
                    .rtc
                    .direct_api()
                    .stream_rx(&p.header.ssrc)
                    .map(|s| s.mid());
                if mid.is_none() {
                    self.unmapped += 1;
                }
                if let Some(mid) = mid {
                    self.received.push(Received {
                        mid,
                        seq: p.header.sequence_number,
                        ts: p.header.timestamp,
                        marker: p.header.marker,
                        payload: if self.keep_payloads {
                            p.payload.to_vec()
                        } else {
                            Vec::new()
                        },
                        dd: p
                            .header
                            .ext_vals
                            .user_values
                            .get::<DdBytes>()
                            .map(|dd| dd.as_slice().to_vec()),
                        at: now,
                    });
                }
            }
            Event::KeyframeRequest(_) => self.keyframe_requests += 1,
            _ => {}
        }
    }
}
