//! A hostile participant after a completed ICE + DTLS handshake with the
//! real media plane: it sends mutated RTP and RTCP, each correctly
//! protected with the SRTP keys the handshake negotiated, next to an honest
//! pair in the same room.
//!
//! The keys come from a tap on str0m's DTLS provider (installed as the
//! process default before any peer exists; it forwards every call and
//! copies the exported keying material). Packets are protected with
//! webrtc-rs's SRTP (`rtc-srtp`), an implementation independent of the
//! plane's, so the plane sees exactly what a hostile client could send.

use crate::input::Input;
use crate::rig::run_tapped;
use sfu_core::{DropReason, Input as PlaneInput, Stats};
use std::net::SocketAddr;
use std::sync::{Mutex, Once};
use std::time::Duration;
use testkit::netem::Datagram;
use testkit::plane_world::{SFU, World};

mod keytap {
    use std::sync::Mutex;
    use std::time::Instant;
    use str0m::crypto::CryptoError;
    use str0m::crypto::dtls::{
        DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion,
        ProtocolVersion, SrtpProfile,
    };

    /// Keying material exported by one DTLS instance.
    #[derive(Debug, Clone)]
    pub(super) struct Tapped {
        pub(super) material: Vec<u8>,
        pub(super) profile: SrtpProfile,
    }

    pub(super) static TAPPED: Mutex<Vec<Tapped>> = Mutex::new(Vec::new());

    #[derive(Debug)]
    struct Provider(&'static dyn DtlsProvider);

    #[derive(Debug)]
    struct Instance(Box<dyn DtlsInstance>);

    impl DtlsProvider for Provider {
        fn generate_certificate(&self) -> Option<DtlsCert> {
            self.0.generate_certificate()
        }

        fn new_dtls(
            &self,
            cert: &DtlsCert,
            now: Instant,
            dtls_version: DtlsVersion,
            mtu: Option<usize>,
        ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
            let inner = self.0.new_dtls(cert, now, dtls_version, mtu)?;
            Ok(Box::new(Instance(inner)))
        }

        fn is_test(&self) -> bool {
            self.0.is_test()
        }
    }

    impl DtlsInstance for Instance {
        fn set_active(&mut self, active: bool) {
            self.0.set_active(active);
        }

        fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
            self.0.handle_packet(packet)
        }

        fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
            let out = self.0.poll_output(buf);
            if let DtlsOutput::KeyingMaterial(material, profile) = &out {
                TAPPED
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Tapped {
                        material: material.to_vec(),
                        profile: *profile,
                    });
            }
            out
        }

        fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
            self.0.handle_timeout(now)
        }

        fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
            self.0.send_application_data(data)
        }

        fn is_active(&self) -> bool {
            self.0.is_active()
        }

        fn protocol_version(&self) -> Option<ProtocolVersion> {
            self.0.protocol_version()
        }

        fn is_closing(&self) -> bool {
            self.0.is_closing()
        }

        fn is_closed(&self) -> bool {
            self.0.is_closed()
        }

        fn close(&mut self) -> Result<(), DtlsImplError> {
            self.0.close()
        }
    }

    /// Makes the tapping provider the process default. Must run before the
    /// first `Rtc` of the process is built.
    pub(super) fn install() {
        let mut p = str0m::crypto::from_feature_flags();
        p.dtls_provider = Box::leak(Box::new(Provider(p.dtls_provider)));
        p.install_process_default();
    }
}

/// Serializes runs: the key tap is process-wide.
static RUN: Mutex<()> = Mutex::new(());
static INSTALL: Once = Once::new();

/// Most packets one input injects.
const MAX_INJECTED: usize = 48;
/// Most mutations per packet.
const MAX_MUTATIONS: u8 = 8;

/// What one run did, for tests and reports.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Hostile packets sent (protected, or raw where they could not be).
    pub injected: u64,
    /// Of those, how many could be correctly protected.
    pub protected: u64,
    /// Hostile RTP packets the honest subscriber received: proof that the
    /// protection was right and the plane authenticated them.
    pub hostile_forwarded: u64,
    /// Datagrams the plane counted as dropped during the run, by reason.
    pub drops: Vec<(&'static str, u64)>,
    /// What became of each hostile datagram, in the order sent.
    pub fates: Vec<Fate>,
    /// The hostile datagrams that were [`Fate::Uncounted`], described
    /// (class, whether protected, length, first bytes) for the report.
    pub uncounted: Vec<String>,
    /// Honest packets sent after the attack, and how many the honest
    /// subscriber received.
    pub honest_sent: u64,
    /// See `honest_sent`.
    pub honest_received: u64,
}

/// What became of one hostile datagram, as the plane's counters show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Counted as dropped, under any reason.
    Dropped,
    /// Authenticated and handed to forwarding as an RTP packet (counted in
    /// `rtp_in`), which forwards it or counts why not.
    Received,
    /// Authenticated SRTCP that str0m read.
    RtcpRead,
    /// Authenticated RTP that str0m consumes itself and never hands on:
    /// padding only (bandwidth probing, RTX padding) or SSRC 0 (probes).
    Padding,
    /// STUN or DTLS by its first byte (RFC 7983): handed to str0m's ICE
    /// agent or DTLS layer and counted in `stun_in` or `dtls_in`.
    HandshakeClass,
    /// None of these: dropped without being counted.
    Uncounted,
}

impl Outcome {
    /// How many hostile datagrams met `fate`.
    pub fn count(&self, fate: Fate) -> u64 {
        self.fates.iter().filter(|f| **f == fate).count() as u64
    }
}

/// RTCP by RFC 5761's rule, as str0m's demultiplexer applies it.
fn is_rtcp_class(p: &[u8]) -> bool {
    matches!(p.first(), Some(128..=191)) && p.len() > 2 && (64..96).contains(&(p[1] & 0x7f))
}

/// Plaintext RTP that str0m consumes without handing it on once it
/// authenticates: SSRC 0, or a payload that is all padding.
fn is_padding_or_probe(plain: &[u8]) -> bool {
    let Some(h) = header_len(plain) else {
        return false;
    };
    let probe = plain.get(8..12) == Some(&[0u8; 4][..]);
    let padding = plain[0] & 0x20 != 0
        && plain.len() > h
        && usize::from(plain[plain.len() - 1]) == plain.len() - h;
    probe || padding
}

fn total_drops(s: &Stats) -> u64 {
    s.dropped_all().map(|(_, n)| n).sum()
}

/// Reads one hostile datagram's fate off the plane's counters before and
/// after it was handled. `plain` is what was protected, if it could be.
fn fate(before: &Stats, after: &Stats, wire: &[u8], plain: Option<&[u8]>) -> Fate {
    if after.rtp_in > before.rtp_in {
        Fate::Received
    } else if total_drops(after) > total_drops(before) {
        Fate::Dropped
    } else if is_rtcp_class(wire) && after.rtcp_in > before.rtcp_in {
        Fate::RtcpRead
    } else if after.dtls_in > before.dtls_in || after.stun_in > before.stun_in {
        Fate::HandshakeClass
    } else if !is_rtcp_class(wire) && plain.is_some_and(is_padding_or_probe) {
        Fate::Padding
    } else {
        Fate::Uncounted
    }
}

struct Attacker {
    addr: SocketAddr,
    srtp: rtc_srtp::context::Context,
    /// Plaintext RTP packets the attacker's own stack sent: real headers
    /// with the negotiated SSRCs, payload types and header extensions.
    rtp: Vec<Vec<u8>>,
    rtcp: Vec<Vec<u8>>,
    seq: u16,
}

fn header_len(p: &[u8]) -> Option<usize> {
    let cc = usize::from(*p.first()? & 0x0f);
    let mut len = 12 + 4 * cc;
    if p[0] & 0x10 != 0 {
        let words = u16::from_be_bytes([*p.get(len + 2)?, *p.get(len + 3)?]);
        len += 4 + 4 * usize::from(words);
    }
    (len <= p.len()).then_some(len)
}

fn is_rtcp(p: &[u8]) -> bool {
    matches!(p.get(1), Some(192..=223))
}

fn srtp_context(
    material: &[u8],
    profile: str0m::crypto::dtls::SrtpProfile,
    we_are_client: bool,
) -> rtc_srtp::context::Context {
    use rtc_srtp::protection_profile::ProtectionProfile as P;
    use str0m::crypto::dtls::SrtpProfile as S;
    let (p, key, salt) = match profile {
        S::AEAD_AES_128_GCM => (P::AeadAes128Gcm, 16, 12),
        S::AEAD_AES_256_GCM => (P::AeadAes256Gcm, 32, 12),
        _ => (P::Aes128CmHmacSha1_80, 16, 14),
    };
    // RFC 5764 §4.2: client key, server key, client salt, server salt.
    let (k, s) = if we_are_client {
        (&material[..key], &material[2 * key..2 * key + salt])
    } else {
        (
            &material[key..2 * key],
            &material[2 * key + salt..2 * key + 2 * salt],
        )
    };
    rtc_srtp::context::Context::new(
        k,
        s,
        p,
        None,
        None,
        &rtc_srtp::crypto::providers::RingCrypto,
    )
    .expect("srtp context from negotiated keys")
}

/// Hand-written RTCP from the attacker's SSRC about `media`: SR, RR, PLI,
/// NACK, transport-wide feedback, SDES, BYE, and a compound packet.
fn rtcp_templates(ssrc: u32, media: u32) -> Vec<Vec<u8>> {
    let s = ssrc.to_be_bytes();
    let m = media.to_be_bytes();
    let cat = |parts: &[&[u8]]| parts.concat();
    let sr = cat(&[
        &[0x80, 200, 0, 6],
        &s,
        &[0; 8],
        &[0, 0, 0x0b, 0xb8],
        &[0, 0, 0, 9],
        &[0, 0, 4, 0],
    ]);
    let rr = cat(&[
        &[0x81, 201, 0, 7],
        &s,
        &m,
        &[0x10, 0, 0, 2],
        &[0, 0, 0, 50],
        &[0; 12],
    ]);
    let pli = cat(&[&[0x81, 206, 0, 2], &s, &m]);
    let nack = cat(&[&[0x81, 205, 0, 3], &s, &m, &[0, 1, 0xff, 0xff]]);
    let twcc = cat(&[
        &[0x8f, 205, 0, 5],
        &s,
        &m,
        &[0, 1, 0, 3, 0, 0, 1, 0],
        &[0x20, 3, 4, 4],
        &[4, 0, 0, 0],
    ]);
    let sdes = cat(&[
        &[0x81, 202, 0, 3],
        &s,
        &[1, 4, b'n', b'a', b'm', b'e', 0, 0],
    ]);
    let bye = cat(&[&[0x81, 203, 0, 1], &s]);
    let compound = cat(&[&sr, &sdes]);
    vec![sr, rr, pli, nack, twcc, sdes, bye, compound]
}

fn mutate(inp: &mut Input<'_>, p: &mut Vec<u8>) {
    for _ in 0..inp.u8() % MAX_MUTATIONS {
        let at = |inp: &mut Input<'_>, len: usize| usize::from(inp.u16()) % len.max(1);
        match inp.u8() % 6 {
            0 if !p.is_empty() => {
                let i = at(inp, p.len());
                p[i] ^= 1 << (inp.u8() % 8);
            }
            1 if !p.is_empty() => {
                let i = at(inp, p.len());
                p[i] = inp.u8();
            }
            2 => {
                let n = at(inp, p.len() + 1);
                p.truncate(n);
            }
            3 => p.extend_from_slice(inp.short()),
            4 => {
                let i = at(inp, p.len() + 1).min(p.len());
                let bytes = inp.short().to_vec();
                p.splice(i..i, bytes);
            }
            _ => {
                let i = at(inp, p.len() + 1).min(p.len());
                let bytes = inp.short();
                let end = (i + bytes.len()).min(p.len());
                p[i..end].copy_from_slice(&bytes[..end - i]);
            }
        }
    }
}

impl Attacker {
    /// Protects `plain` as RTP or RTCP; where that is impossible (it no
    /// longer parses as either), sends it as is, with a tag's worth of
    /// zeros, which the plane must refuse like any forgery.
    fn protect(&mut self, plain: &[u8], rtcp: bool) -> (Vec<u8>, bool) {
        let sealed = if rtcp {
            self.srtp.encrypt_rtcp(plain).ok()
        } else {
            use rtc_shared::marshal::{MarshalSize, Unmarshal};
            let mut buf = plain;
            match rtc_rtp::header::Header::unmarshal(&mut buf) {
                Ok(h) if h.marshal_size() <= plain.len() => self.srtp.encrypt_rtp(plain).ok(),
                _ => None,
            }
        };
        match sealed {
            Some(b) => (b.to_vec(), true),
            None => {
                let mut raw = plain.to_vec();
                raw.extend_from_slice(&[0; 16]);
                (raw, false)
            }
        }
    }
}

fn drops(world: &World) -> Vec<(&'static str, u64)> {
    let stats = world.plane.stats();
    DropReason::ALL
        .iter()
        .map(|r| (r.label(), stats.dropped(*r)))
        .collect()
}

/// Joins the attacker and completes its handshake; returns its keys and
/// the plaintext of a few packets its own stack sent.
fn attacker(world: &mut World, room: &str) -> Option<(usize, Attacker)> {
    keytap::TAPPED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    let m = world.join(room);
    world.publish_av(m);
    let addr = world.clients[m].publisher.addr();
    // Its own RTCP never reaches the plane, so the SRTCP indexes we use
    // are fresh.
    let mut drop_own_rtcp = |d: &Datagram| !(d.source == addr && is_rtcp(&d.contents));
    for _ in 0..30 {
        run_tapped(world, Duration::from_millis(100), &mut drop_own_rtcp);
        if world.clients[m].publisher.connected {
            break;
        }
    }
    let tapped = keytap::TAPPED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .first()
        .cloned()?;
    let answer = world.clients[m].events.iter().find_map(|e| match e {
        sfu_core::MediaEvent::PublisherAnswer { sdp } => Some(sdp.clone()),
        _ => None,
    })?;
    // The plane answered `active` (it is the DTLS client) or `passive`.
    let we_are_client = !answer.contains("a=setup:active");
    let srtp = srtp_context(&tapped.material, tapped.profile, we_are_client);

    // Let its own stack send an audio packet and a keyframe and a delta
    // frame of video; keep their clear headers as templates.
    let (audio, video) = (world.clients[m].published[0].0, world.video_mid(m));
    let now = world.now;
    let p = &mut world.clients[m].publisher;
    p.send_rtp(now, audio, 960, true, &[0xa0; 40]);
    for (n, key) in [(0u16, true), (1, false)] {
        let mark = rtp_dd::FrameMark {
            start_of_frame: true,
            end_of_frame: true,
            frame_number: n,
            keyframe: key,
        };
        p.send_frame_packet(now, video, u32::from(n) * 3000, &mark, &[0xb0; 120]);
    }
    p.poll(now);
    world.flush();
    let mut headers = Vec::new();
    run_tapped(world, Duration::from_millis(20), |d| {
        if d.source == addr
            && !is_rtcp(&d.contents)
            && matches!(d.contents.first(), Some(128..=191))
            && let Some(h) = header_len(&d.contents)
        {
            headers.push(d.contents[..h].to_vec());
        }
        !(d.source == addr && is_rtcp(&d.contents))
    });
    let ssrc = |h: &[u8]| u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
    let first = headers.first()?;
    let rtcp = rtcp_templates(ssrc(first), ssrc(headers.last()?));
    let rtp = headers
        .iter()
        .map(|h| [h.as_slice(), &[0x5a; 100]].concat())
        .collect();
    Some((
        m,
        Attacker {
            addr,
            srtp,
            rtp,
            rtcp,
            seq: 100,
        },
    ))
}

/// The hostile participant (see the module doc). Input: per packet, RTP or
/// RTCP, which template, and up to 8 mutations (bit flips, byte sets,
/// truncation, appends, inserts, overwrites); the honest publisher sends
/// between hostile packets.
///
/// Each hostile datagram goes straight to the plane, and the plane's
/// counters before and after it give its [`Fate`]. Checks: no panic; every
/// hostile datagram is received, and none is [`Fate::Uncounted`]; after the
/// attack the honest subscriber still gets the honest publisher's media (at
/// least 90 % of what it sent in the last 500 ms).
pub fn srtp_after_dtls(data: &[u8]) {
    let _ = run(data);
}

/// Runs one input; see [`srtp_after_dtls`].
///
/// # Panics
/// On a broken check, or if the handshake cannot complete.
pub fn run(data: &[u8]) -> Outcome {
    let _serial = RUN.lock().unwrap_or_else(|e| e.into_inner());
    INSTALL.call_once(keytap::install);
    let mut world = World::new(11);
    let (m, mut atk) = attacker(&mut world, "room").expect("attacker completes ICE + DTLS");
    let pass_all = |_: &Datagram| true;
    let mut tap = pass_all;
    let (a, b) = crate::rig::honest_pair(&mut world, "room", &mut tap);
    let _ = m;
    assert!(
        world.clients[b].subscriber.connected,
        "honest subscriber connected"
    );
    let honest_audio = world.clients[a].published[0].0;

    let before = world.plane.stats();
    let mut out = Outcome::default();
    let mut inp = Input::new(data);
    let mut ts = 0u32;
    let mut honest = |world: &mut World, n: u64| {
        for _ in 0..n {
            ts = ts.wrapping_add(960);
            let now = world.now;
            world.clients[a]
                .publisher
                .send_rtp(now, honest_audio, ts, true, &[0xcc; 60]);
            world.clients[a].publisher.poll(now);
            world.flush();
            run_tapped(world, Duration::from_millis(20), pass_all);
        }
    };
    for _ in 0..MAX_INJECTED {
        if inp.is_empty() {
            break;
        }
        let rtcp = inp.bool();
        let from = if rtcp { &atk.rtcp } else { &atk.rtp };
        let mut p = from[usize::from(inp.u8()) % from.len()].clone();
        if !rtcp && p.len() >= 4 {
            atk.seq = atk.seq.wrapping_add(1);
            p[2..4].copy_from_slice(&atk.seq.to_be_bytes());
        }
        mutate(&mut inp, &mut p);
        let (wire, sealed) = atk.protect(&p, rtcp);
        out.injected += 1;
        out.protected += u64::from(sealed);
        // Straight to the plane, so the counters before and after are this
        // datagram's alone.
        let before = world.plane.stats();
        let now = world.now;
        world.plane.handle_input(
            now,
            PlaneInput::Datagram {
                source: atk.addr,
                destination: SFU,
                contents: &wire,
            },
        );
        world.flush();
        let f = fate(
            &before,
            &world.plane.stats(),
            &wire,
            sealed.then_some(&p[..]),
        );
        if f == Fate::Uncounted {
            let head = &wire[..wire.len().min(2)];
            out.uncounted.push(format!(
                "{} protected={sealed} len={} first={head:02x?}",
                if rtcp { "rtcp" } else { "rtp" },
                wire.len()
            ));
        }
        out.fates.push(f);
        if inp.u8().is_multiple_of(4) {
            honest(&mut world, 1);
        }
    }
    run_tapped(&mut world, Duration::from_millis(20), pass_all);
    let after = world.plane.stats();
    assert!(
        after.datagrams_in - before.datagrams_in >= out.injected,
        "hostile datagrams not all received"
    );
    assert!(
        out.uncounted.is_empty(),
        "hostile datagrams dropped without being counted: {:?}",
        out.uncounted
    );

    let got_before = world.clients[b].subscriber.received.len();
    out.honest_sent = 25;
    honest(&mut world, out.honest_sent);
    let got = world.clients[b]
        .subscriber
        .received
        .iter()
        .skip(got_before)
        .filter(|r| r.payload == [0xcc; 60])
        .count() as u64;
    out.honest_received = got;
    assert!(
        got * 10 >= out.honest_sent * 9,
        "honest forwarding stopped after the attack: {got} of {} arrived",
        out.honest_sent
    );
    out.hostile_forwarded = world.clients[b]
        .subscriber
        .received
        .iter()
        .filter(|r| r.payload.starts_with(&[0x5a; 16]))
        .count() as u64;
    out.drops = drops(&world);
    out
}
