//! The light listener's media transport: one str0m `Rtc` in RTP mode (full
//! ICE as the controlling side against the ICE-lite SFU, DTLS-SRTP, NACKs
//! and receiver reports by str0m) on one UDP socket, depacketizing and
//! decrypting with the SDK's own pieces
//! ([`client_sdk::transport::frame_piece`], the SDK's frame assembler, and
//! `client_core`'s [`MediaKeys`]).

use super::downlink::Downlink;
use client_core::{FrameOrigin, MediaKeys};
use e2ee::frame::{FrameAssembler, MediaCodec};
use sfu_core::dd::{DD_EXT_ID, DdBytes, extension};
use signaling::proto::TrackKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::media::Mid;
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::rtp::RtpPacket;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcError};
use tokio::net::UdpSocket;
use tracing::{debug, trace};

/// Largest datagram read (str0m's MTU is well below).
const DATAGRAM: usize = 2048;

/// What travels with a frame through the decryptor: the publisher the
/// SFU named for its track. An `Arc` so that it costs no allocation.
pub(super) struct Origin(Arc<str>);

impl FrameOrigin for Origin {
    fn publisher(&self) -> &str {
        &self.0
    }
}

/// The room's SFrame keys as the listener holds them.
pub(super) type Keys = MediaKeys<Origin>;

/// A track arriving on one m-line.
struct Receiving {
    track_id: String,
    publisher: Arc<str>,
    kind: TrackKind,
    /// `None`: a codec the media format does not cover (every frame
    /// counts as malformed, as in the SDK).
    codec: Option<MediaCodec>,
    assembler: FrameAssembler,
    /// Frames the assembler gave up so far (already counted).
    incomplete: u64,
}

/// One subscriber m-line.
struct Line {
    mid: Mid,
    /// The track `subscribed` last assigned to it; `None` between
    /// `unsubscribed` and the next `subscribed` (media then is dropped).
    track: Option<Receiving>,
}

/// What the track directory says about a track.
pub(super) struct TrackMeta {
    pub(super) publisher: Arc<str>,
    pub(super) kind: TrackKind,
    pub(super) codec: String,
}

/// The subscriber transport.
pub(super) struct Transport {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    lines: Vec<Line>,
    buf: Vec<u8>,
    next_timeout: Instant,
    /// ICE and DTLS are up.
    pub(super) connected: bool,
    /// ICE gave up: the transport is dead.
    pub(super) failed: bool,
    /// An emulated bottleneck every datagram passes first, if limited.
    downlink: Option<Downlink>,
}

impl Transport {
    /// A transport on a fresh UDP socket at `ip`, behind a bottleneck of
    /// `downlink_bps` if given.
    pub(super) async fn bind(
        ip: std::net::IpAddr,
        now: Instant,
        downlink_bps: Option<u64>,
    ) -> std::io::Result<Self> {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).await?;
        let local = socket.local_addr()?;
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .set_stats_interval(None)
            // The SFU's own serializer for the dependency descriptor.
            .set_extension(DD_EXT_ID, extension())
            .build(now);
        let candidate =
            Candidate::host(local, "udp").map_err(|e| std::io::Error::other(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        Ok(Self {
            rtc,
            socket,
            local,
            lines: Vec::new(),
            buf: vec![0; DATAGRAM],
            next_timeout: now,
            connected: false,
            failed: false,
            downlink: downlink_bps.map(Downlink::new),
        })
    }

    /// Applies the server's subscriber offer; returns the answer's SDP.
    pub(super) fn accept_offer(&mut self, sdp: &str) -> Result<String, RtcError> {
        let offer = SdpOffer::from_sdp_string(sdp)?;
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        Ok(answer.to_sdp_string())
    }

    /// A trickled remote candidate (the ICE-lite SFU sends none today).
    pub(super) fn add_remote_candidate(&mut self, candidate: &str) {
        match Candidate::from_sdp_string(candidate) {
            Ok(c) => self.rtc.add_remote_candidate(c),
            Err(e) => debug!(error = %e, "remote candidate ignored"),
        }
    }

    /// `subscribed{track_id, mid}`: media on `mid` is `track_id` from now on.
    pub(super) fn subscribed(&mut self, track_id: String, mid: &str, meta: TrackMeta) {
        let mid = Mid::from(mid);
        let receiving = Receiving {
            track_id,
            publisher: meta.publisher,
            kind: meta.kind,
            codec: MediaCodec::from_name(&meta.codec),
            assembler: client_sdk::transport::receive_assembler(),
            incomplete: 0,
        };
        match self.lines.iter_mut().find(|l| l.mid == mid) {
            Some(line) => line.track = Some(receiving),
            None => self.lines.push(Line {
                mid,
                track: Some(receiving),
            }),
        }
    }

    /// `unsubscribed{track_id}`: its m-line carries nothing until reused.
    pub(super) fn unsubscribed(&mut self, track_id: &str) {
        for line in &mut self.lines {
            if line.track.as_ref().is_some_and(|t| t.track_id == track_id) {
                line.track = None;
            }
        }
    }

    /// When str0m next needs time.
    pub(super) fn next_timeout(&self) -> Instant {
        self.next_timeout
    }

    /// Waits until the socket has a datagram to read.
    pub(super) async fn readable(&self) -> std::io::Result<()> {
        self.socket.readable().await
    }

    /// Reads every datagram queued on the socket (str0m in RTP mode holds
    /// one received packet until the next poll, so each is polled out at
    /// once), decrypting what completes a frame into `keys`. Behind a
    /// bottleneck the datagrams queue there first.
    pub(super) fn read_all(&mut self, keys: &mut Keys) {
        loop {
            let (n, source) = match self.socket.try_recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    trace!(error = %e, "receive error");
                    break;
                }
            };
            let now = Instant::now();
            if let Some(d) = self.downlink.as_mut() {
                d.arrive(now, source, &self.buf[..n]);
                continue;
            }
            let buf = std::mem::take(&mut self.buf);
            self.receive(now, source, &buf[..n], keys);
            self.buf = buf;
        }
        self.release(Instant::now(), keys);
    }

    /// Hands str0m what left the bottleneck by `now`.
    pub(super) fn release(&mut self, now: Instant, keys: &mut Keys) {
        while let Some(held) = self.downlink.as_mut().and_then(|d| d.depart(now)) {
            self.receive(now, held.source, &held.bytes, keys);
            if let Some(d) = self.downlink.as_mut() {
                d.recycle(held);
            }
        }
    }

    /// When the bottleneck next lets a datagram through, if it holds one.
    pub(super) fn next_release(&self) -> Option<Instant> {
        self.downlink.as_ref().and_then(Downlink::next_due)
    }

    fn receive(&mut self, now: Instant, source: SocketAddr, data: &[u8], keys: &mut Keys) {
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
        if let Err(e) = self.rtc.handle_input(input) {
            trace!(error = %e, "datagram refused");
            return;
        }
        self.poll(now, keys);
    }

    /// Advances str0m's clock to `now` and carries out what it asks.
    pub(super) fn tick(&mut self, now: Instant, keys: &mut Keys) {
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            trace!(error = %e, "timeout refused");
        }
        self.poll(now, keys);
    }

    fn poll(&mut self, now: Instant, keys: &mut Keys) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.next_timeout = t.max(now + Duration::from_millis(1));
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    // UDP: a full socket buffer loses the datagram, as the
                    // network could.
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(e)) => self.on_event(now, e, keys),
                Err(e) => {
                    debug!(error = %e, "transport failed");
                    self.failed = true;
                    self.next_timeout = now + Duration::from_secs(3600);
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, now: Instant, e: Event, keys: &mut Keys) {
        match e {
            Event::Connected => self.connected = true,
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                debug!("ICE disconnected");
            }
            Event::RtpPacket(p) => self.on_rtp(now, &p, keys),
            _ => {}
        }
    }

    /// Depacketizes and decrypts exactly as the SDK's receive path does.
    fn on_rtp(&mut self, now: Instant, p: &RtpPacket, keys: &mut Keys) {
        let Some(mid) = self
            .rtc
            .direct_api()
            .stream_rx(&p.header.ssrc)
            .map(|s| s.mid())
        else {
            return;
        };
        let Some(track) = self
            .lines
            .iter_mut()
            .find(|l| l.mid == mid)
            .and_then(|l| l.track.as_mut())
        else {
            // Between `unsubscribed` and the next `subscribed`: no track.
            return;
        };
        let Some(codec) = track.codec else {
            keys.count_malformed();
            return;
        };
        let dd = p.header.ext_vals.user_values.get::<DdBytes>();
        let Some(piece) = client_sdk::transport::frame_piece(
            track.kind,
            &p.payload,
            p.header.marker,
            dd.map(DdBytes::as_slice),
        ) else {
            keys.count_malformed();
            return;
        };
        let Some(frame) = track.assembler.push(
            p.header.sequence_number,
            p.header.timestamp,
            piece.start,
            piece.end,
            p.payload.get(piece.skip..).unwrap_or_default(),
        ) else {
            let discarded = track.assembler.discarded();
            if discarded > track.incomplete {
                keys.count_incomplete(discarded - track.incomplete);
                track.incomplete = discarded;
            }
            return;
        };
        keys.decrypt(
            now,
            codec,
            &frame.data,
            Origin(Arc::clone(&track.publisher)),
        );
    }
}
