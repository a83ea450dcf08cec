//! Shared by the str0m-level benches: two str0m `Rtc`s in RTP mode, connected
//! sans-IO on virtual time, configured the way the SFU configures its
//! subscriber transports.
//!
//! - `tx` plays the SFU's subscriber transport: ICE-lite, RTP mode, no stats,
//!   the SFU's own dependency descriptor extension (`sfu_core::dd`), one
//!   send-only video m-line, and the
//!   RTX cache set with `set_rtx_cache(n, 3 s, None)` as the plane does.
//! - `rx` plays the client: full ICE, RTP mode, receiving that m-line.
//!
//! Nothing here is timed; the benches time only the calls they name.
#![allow(dead_code, unreachable_pub)]

use sfu_core::dd::{DD_EXT_ID, DdBytes, extension};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpWrite, SeqNo};
use str0m::{Candidate, Event, Input, Output, Rtc};

/// Extension values carrying a delta-frame descriptor (3 bytes), as the
/// plane's `passthrough_extensions` builds them from a publisher packet.
pub fn dd_ext(frame: u16, start: bool) -> ExtensionValues {
    let mark = rtp_dd::FrameMark {
        start_of_frame: start,
        end_of_frame: !start,
        frame_number: frame,
        keyframe: false,
    };
    let mut buf = [0u8; rtp_dd::MAX_LEN];
    let n = rtp_dd::write(&mark, &mut buf);
    let mut ev = ExtensionValues::default();
    if let Some(dd) = DdBytes::new(&buf[..n]) {
        ev.user_values.set(dd);
    }
    ev
}

/// The pair.
pub struct Pair {
    /// Virtual time.
    pub now: Instant,
    /// The SFU-like sender.
    pub tx: Rtc,
    /// The client-like receiver.
    pub rx: Rtc,
    tx_addr: SocketAddr,
    rx_addr: SocketAddr,
    /// The sender's m-line and VP8 payload type.
    pub mid: Mid,
    pub pt: Pt,
    /// Next extended sequence number to write.
    pub seq: u64,
    /// Datagrams on their way to each side.
    pub to_tx: Vec<Vec<u8>>,
    pub to_rx: Vec<Vec<u8>>,
    /// RTP packets the receiver has surfaced.
    pub rx_rtp: u64,
    tx_connected: bool,
    rx_connected: bool,
}

fn rtc(now: Instant, lite: bool, addr: SocketAddr) -> Rtc {
    let mut rtc = Rtc::builder()
        .set_ice_lite(lite)
        .set_rtp_mode(true)
        .set_stats_interval(None)
        .set_extension(DD_EXT_ID, extension())
        .build(now);
    rtc.add_local_candidate(Candidate::host(addr, "udp").expect("host candidate"));
    rtc
}

/// Drives one side until it asks for a timeout; transmits go to `out`.
/// Returns (transmits, rtp events, connected seen).
fn drain(rtc: &mut Rtc, out: &mut Vec<Vec<u8>>) -> (usize, u64, bool) {
    let (mut n, mut rtp, mut connected) = (0, 0, false);
    loop {
        match rtc.poll_output() {
            Ok(Output::Timeout(_)) => return (n, rtp, connected),
            Ok(Output::Transmit(t)) => {
                n += 1;
                out.push(t.contents.into());
            }
            Ok(Output::Event(Event::Connected)) => connected = true,
            Ok(Output::Event(Event::RtpPacket(_))) => rtp += 1,
            Ok(Output::Event(_)) => {}
            Err(e) => panic!("rtc failed: {e}"),
        }
    }
}

impl Pair {
    /// A connected pair whose sender keeps `rtx_cache` packets for NACKs.
    pub fn new(rtx_cache: usize) -> Self {
        let now = Instant::now();
        let tx_addr: SocketAddr = "127.0.0.1:7882".parse().expect("addr");
        let rx_addr: SocketAddr = "127.0.0.1:20001".parse().expect("addr");
        let mut tx = rtc(now, true, tx_addr);
        let mut rx = rtc(now, false, rx_addr);
        let mut api = tx.sdp_api();
        let mid = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().expect("offer");
        let offer = SdpOffer::from_sdp_string(&offer.to_sdp_string()).expect("offer sdp");
        let answer = rx.sdp_api().accept_offer(offer).expect("answer");
        let answer = SdpAnswer::from_sdp_string(&answer.to_sdp_string()).expect("answer sdp");
        tx.sdp_api()
            .accept_answer(pending, answer)
            .expect("accept answer");
        let mut p = Self {
            now,
            tx,
            rx,
            tx_addr,
            rx_addr,
            mid,
            pt: Pt::from(0),
            seq: 1000,
            to_tx: Vec::new(),
            to_rx: Vec::new(),
            rx_rtp: 0,
            tx_connected: false,
            rx_connected: false,
        };
        for _ in 0..2000 {
            p.step(Duration::from_millis(5));
            if p.tx_connected && p.rx_connected {
                break;
            }
        }
        assert!(p.tx_connected && p.rx_connected, "pair did not connect");
        p.pt = p.vp8_pt();
        p.tx.direct_api()
            .stream_tx_by_mid(mid, None)
            .expect("tx stream")
            .set_rtx_cache(rtx_cache, Duration::from_secs(3), None);
        // A few packets through, so both sides are past their first-packet
        // paths.
        let payload: Arc<[u8]> = vec![0xab; 1200].into();
        for _ in 0..50 {
            self_write(&mut p, &payload, ExtensionValues::default());
            p.step(Duration::from_millis(1));
        }
        p
    }

    fn vp8_pt(&self) -> Pt {
        let remote = self.tx.media(self.mid).expect("media").remote_pts();
        self.tx
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == Codec::Vp8 && remote.contains(&p.pt()))
            .expect("vp8 negotiated")
            .pt()
    }

    /// Queues one RTP packet on the sender (no time passes, nothing polled).
    pub fn write(&mut self, payload: &Arc<[u8]>, ext: ExtensionValues) {
        self_write(self, payload, ext);
    }

    /// Feeds the sender the current time and drains it; transmits go to
    /// `sink`. Returns how many.
    pub fn tx_timeout(&mut self, sink: &mut Vec<Vec<u8>>) -> usize {
        let _ = self.tx.handle_input(Input::Timeout(self.now));
        let (n, _, c) = drain(&mut self.tx, sink);
        self.tx_connected |= c;
        n
    }

    /// Feeds one datagram to the sender and drains it into `sink`.
    pub fn tx_receive(&mut self, d: &[u8], sink: &mut Vec<Vec<u8>>) -> usize {
        let contents = DatagramRecv::try_from(d).expect("datagram");
        let _ = self.tx.handle_input(Input::Receive(
            self.now,
            Receive {
                proto: Protocol::Udp,
                source: self.rx_addr,
                destination: self.tx_addr,
                contents,
            },
        ));
        let (n, _, c) = drain(&mut self.tx, sink);
        self.tx_connected |= c;
        n
    }

    /// Feeds one datagram to the receiver; its output goes to `to_tx`.
    /// Returns the RTP packets it surfaced.
    pub fn rx_receive(&mut self, d: &[u8]) -> u64 {
        let Ok(contents) = DatagramRecv::try_from(d) else {
            return 0;
        };
        let _ = self.rx.handle_input(Input::Receive(
            self.now,
            Receive {
                proto: Protocol::Udp,
                source: self.tx_addr,
                destination: self.rx_addr,
                contents,
            },
        ));
        let (_, rtp, c) = drain(&mut self.rx, &mut self.to_tx);
        self.rx_connected |= c;
        self.rx_rtp += rtp;
        rtp
    }

    /// Feeds the receiver the current time; its output goes to `to_tx`.
    pub fn rx_timeout(&mut self) {
        let _ = self.rx.handle_input(Input::Timeout(self.now));
        let (_, rtp, c) = drain(&mut self.rx, &mut self.to_tx);
        self.rx_connected |= c;
        self.rx_rtp += rtp;
    }

    /// Delivers everything in flight both ways until both sides are quiet.
    pub fn deliver(&mut self) {
        for _ in 0..100 {
            if self.to_tx.is_empty() && self.to_rx.is_empty() {
                return;
            }
            let mut to_rx = std::mem::take(&mut self.to_rx);
            for d in to_rx.drain(..) {
                self.rx_receive(&d);
            }
            let mut to_tx = std::mem::take(&mut self.to_tx);
            let mut back = Vec::new();
            for d in to_tx.drain(..) {
                self.tx_receive(&d, &mut back);
            }
            self.to_rx.append(&mut back);
        }
    }

    /// Delivers what is in flight to the receiver only; its answers stay
    /// in `to_tx`.
    pub fn deliver_to_rx(&mut self) {
        let mut to_rx = std::mem::take(&mut self.to_rx);
        for d in to_rx.drain(..) {
            self.rx_receive(&d);
        }
    }

    /// Moves time on by `d`, runs both sides' timers and delivers.
    pub fn step(&mut self, d: Duration) {
        self.now += d;
        let mut out = std::mem::take(&mut self.to_rx);
        self.tx_timeout(&mut out);
        self.to_rx = out;
        self.rx_timeout();
        self.deliver();
    }
}

fn self_write(p: &mut Pair, payload: &Arc<[u8]>, ext: ExtensionValues) {
    let (pt, seq, now) = (p.pt, p.seq, p.now);
    p.seq += 1;
    let ts = (seq as u32).wrapping_mul(3000);
    // Looked up per write, as the plane does.
    let mut api = p.tx.direct_api();
    let tx = api.stream_tx_by_mid(p.mid, None).expect("tx stream");
    tx.write_rtp(
        RtpWrite::new(pt, SeqNo::from(seq), ts, now, payload.clone())
            .marker(true)
            .ext_vals(ext)
            .nackable(true),
    );
}
