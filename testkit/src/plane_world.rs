//! A virtual-time world: a whole [`MediaPlane`], lean str0m peers
//! ([`LeanPeer`]) as its clients, and a seeded network ([`SimNet`]) between
//! them. Time only moves when the world steps it, so a run is the same on
//! any machine. sfu-core's integration tests and benches build on it.

use crate::netem::{Link, SimNet};
use crate::peer::{LeanPeer, Received};
use sfu_core::{Input, MediaCommand, MediaConfig, MediaEvent, MediaPlane, Output, TrackKind};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::media::{MediaKind, Mid};

/// The media plane's address: its ICE candidate.
pub const SFU: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7882);

/// One participant: a peer per transport, and what it was told.
pub struct Client {
    /// Participant id, `PA_<index>`.
    pub id: String,
    /// Its publisher transport's peer.
    pub publisher: LeanPeer,
    /// Its subscriber transport's peer.
    pub subscriber: LeanPeer,
    /// Our publisher mids and the track ids we gave them.
    pub published: Vec<(Mid, String)>,
    /// Subscriber mid → track id.
    pub subscribed: HashMap<String, String>,
    /// Every event the plane sent it, in order.
    pub events: Vec<MediaEvent>,
}

/// The plane, its clients and the network, on one virtual clock.
pub struct World {
    /// Virtual time.
    pub now: Instant,
    /// The media plane under test.
    pub plane: MediaPlane,
    plane_timeout: Instant,
    /// The network between the plane and the clients.
    pub net: SimNet,
    /// Clients, in join order.
    pub clients: Vec<Client>,
    next_port: u16,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl World {
    /// An empty world whose network draws from `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with_config(seed, |_| {})
    }

    /// A world whose media plane settings `tune` adjusts.
    pub fn with_config(seed: u64, tune: impl FnOnce(&mut MediaConfig)) -> Self {
        let now = Instant::now();
        let mut cfg = MediaConfig::new(SFU);
        cfg.ice_timeout = Duration::from_secs(5);
        tune(&mut cfg);
        Self {
            now,
            plane: MediaPlane::new(cfg, now),
            plane_timeout: now,
            net: SimNet::new(seed, Link::default()),
            clients: Vec::new(),
            next_port: 20_000,
        }
    }

    /// Feeds a command to the plane and carries out what follows.
    pub fn command(&mut self, cmd: MediaCommand) {
        self.plane.handle_input(self.now, Input::Command(cmd));
        self.flush();
    }

    /// Joins a participant; returns its index.
    pub fn join(&mut self, room: &str) -> usize {
        let i = self.clients.len();
        let id = format!("PA_{i}");
        let (pa, sa) = (addr(self.next_port), addr(self.next_port + 1));
        self.next_port += 2;
        self.clients.push(Client {
            id: id.clone(),
            publisher: LeanPeer::new(pa, self.now),
            subscriber: LeanPeer::new(sa, self.now),
            published: Vec::new(),
            subscribed: HashMap::new(),
            events: Vec::new(),
        });
        self.command(MediaCommand::Join {
            participant: id,
            room: room.into(),
            can_publish: true,
            auto_subscribe: true,
        });
        i
    }

    /// Publishes audio + video for client `i`.
    pub fn publish_av(&mut self, i: usize) {
        let (sdp, mids) = self.clients[i]
            .publisher
            .offer_tracks(&[MediaKind::Audio, MediaKind::Video]);
        let id = self.clients[i].id.clone();
        for (mid, kind) in mids.iter().zip([TrackKind::Audio, TrackKind::Video]) {
            let track_id = format!("TR_{i}_{mid}");
            self.clients[i].published.push((*mid, track_id.clone()));
            self.command(MediaCommand::Publish {
                participant: id.clone(),
                track_id,
                mid: mid.to_string(),
                kind,
                simulcast: vec![],
                layer_sizes: vec![],
            });
        }
        self.command(MediaCommand::PublisherOffer {
            participant: id,
            sdp: sdp.into(),
        });
    }

    /// Client `i` leaves.
    pub fn leave(&mut self, i: usize) {
        let id = self.clients[i].id.clone();
        self.command(MediaCommand::Leave { participant: id });
    }

    fn client_by_addr(&mut self, a: SocketAddr) -> Option<&mut LeanPeer> {
        self.clients.iter_mut().find_map(|c| {
            if c.publisher.addr() == a {
                Some(&mut c.publisher)
            } else if c.subscriber.addr() == a {
                Some(&mut c.subscriber)
            } else {
                None
            }
        })
    }

    /// Moves plane outputs and peer outboxes onto the network; answers
    /// plane events the way a client would.
    pub fn flush(&mut self) {
        loop {
            let mut progressed = false;
            loop {
                match self.plane.poll_output(self.now) {
                    Output::Transmit(t) => {
                        self.net.send(self.now, t.source, t.destination, t.contents);
                    }
                    Output::Event { participant, event } => {
                        progressed = true;
                        self.on_plane_event(&participant, event);
                    }
                    Output::Timeout(t) => {
                        self.plane_timeout = t.max(self.now + Duration::from_micros(100));
                        break;
                    }
                }
            }
            for c in &mut self.clients {
                for p in [&mut c.publisher, &mut c.subscriber] {
                    for o in p.outbox.drain(..) {
                        self.net.send(self.now, o.source, o.destination, o.contents);
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn on_plane_event(&mut self, participant: &str, event: MediaEvent) {
        let Some(i) = self.clients.iter().position(|c| c.id == participant) else {
            return;
        };
        let now = self.now;
        match &event {
            MediaEvent::PublisherAnswer { sdp } => {
                self.clients[i]
                    .publisher
                    .accept_answer(sdp)
                    .expect("answer");
                self.clients[i].publisher.poll(now);
            }
            MediaEvent::SubscriberOffer { sdp } => {
                let answer = self.clients[i].subscriber.accept_offer(sdp).expect("offer");
                self.clients[i].subscriber.poll(now);
                let id = self.clients[i].id.clone();
                self.plane.handle_input(
                    now,
                    Input::Command(MediaCommand::SubscriberAnswer {
                        participant: id,
                        sdp: answer.into(),
                    }),
                );
            }
            MediaEvent::Subscribed { track_id, mid } => {
                self.clients[i]
                    .subscribed
                    .insert(mid.clone(), track_id.clone());
            }
            _ => {}
        }
        self.clients[i].events.push(event);
    }

    /// Runs the world until `target`, processing everything due on the way.
    pub fn advance_to(&mut self, target: Instant) {
        loop {
            let peers = self
                .clients
                .iter()
                .flat_map(|c| [c.publisher.next_timeout(), c.subscriber.next_timeout()])
                .min();
            let next = [Some(self.plane_timeout), peers, self.net.next_delivery()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(target);
            if next > target {
                self.now = target;
                return;
            }
            self.now = self.now.max(next);
            let now = self.now;
            while let Some(d) = self.net.pop_due(now) {
                if d.destination == SFU {
                    self.plane.handle_input(
                        now,
                        Input::Datagram {
                            source: d.source,
                            destination: d.destination,
                            contents: &d.contents,
                        },
                    );
                } else if let Some(p) = self.client_by_addr(d.destination) {
                    p.receive(now, d.source, &d.contents);
                }
            }
            if self.plane_timeout <= now {
                self.plane.handle_input(now, Input::Timeout);
            }
            for c in &mut self.clients {
                for p in [&mut c.publisher, &mut c.subscriber] {
                    if p.next_timeout() <= now {
                        p.poll(now);
                    }
                }
            }
            self.flush();
        }
    }

    /// Runs the world for `d`.
    pub fn advance(&mut self, d: Duration) {
        let t = self.now + d;
        self.advance_to(t);
    }

    /// Sends audio every 20 ms and video every 33 ms from every publishing
    /// client for `dur`. Payloads are `[client, kind, n_hi, n_lo, filler...]`.
    pub fn send_media(
        &mut self,
        dur: Duration,
        skip: &[usize],
    ) -> HashMap<(usize, u8), Vec<Vec<u8>>> {
        let mut sent: HashMap<(usize, u8), Vec<Vec<u8>>> = HashMap::new();
        let end = self.now + dur;
        let mut n: u32 = 0;
        while self.now < end {
            let t_ms = n * 10;
            for i in 0..self.clients.len() {
                if skip.contains(&i) {
                    continue;
                }
                let published = self.clients[i].published.clone();
                for (k, (mid, _)) in published.iter().enumerate() {
                    let (period, clock) = if k == 0 { (20, 48) } else { (30, 90) };
                    if !t_ms.is_multiple_of(period) {
                        continue;
                    }
                    let count = sent.get(&(i, k as u8)).map_or(0, |v| v.len()) as u16;
                    let mut payload = vec![i as u8, k as u8];
                    payload.extend_from_slice(&count.to_be_bytes());
                    payload.extend((0..(100 + 300 * k)).map(|x| (x as u8) ^ (count as u8)));
                    let now = self.now;
                    if self.clients[i]
                        .publisher
                        .send_rtp(now, *mid, t_ms * clock, true, &payload)
                    {
                        sent.entry((i, k as u8)).or_default().push(payload);
                    }
                }
                let now = self.now;
                self.clients[i].publisher.poll(now);
            }
            self.flush();
            self.advance(Duration::from_millis(10));
            n += 1;
        }
        sent
    }
}

/// A publisher's video track sending frames with a dependency descriptor:
/// one frame every 30 ms, two packets per frame, written by `rtp_dd::write`.
pub struct DdVideo {
    /// The publishing client.
    pub client: usize,
    frame: u16,
    /// Send a keyframe this many frames from now (0: the next frame).
    key_in: Option<u32>,
    /// Answer keyframe requests, with a keyframe two frames later (an
    /// encoder does not react within the frame it is encoding).
    pub answer_requests: bool,
    requests_seen: u64,
    tick: u32,
    /// Every packet sent: (descriptor, payload). Payloads are
    /// `[client, 1, frame_hi, frame_lo, packet, keyframe, filler...]`.
    pub sent: Vec<(Vec<u8>, Vec<u8>)>,
}

impl DdVideo {
    /// Starts with a keyframe.
    pub fn new(client: usize, answer_requests: bool) -> Self {
        Self {
            client,
            frame: 0,
            key_in: Some(0),
            answer_requests,
            requests_seen: 0,
            tick: 0,
            sent: Vec::new(),
        }
    }

    /// Makes the next frame a keyframe.
    pub fn keyframe_next(&mut self) {
        self.key_in = Some(0);
    }

    /// Starts with delta frames, as a stream joined in the middle.
    pub fn mid_stream(mut self) -> Self {
        self.key_in = None;
        self
    }
}

impl World {
    /// The mid of client `i`'s published video.
    pub fn video_mid(&self, i: usize) -> Mid {
        self.clients[i].published[1].0
    }

    /// Video packets client `c` received from client `src` (payloads of
    /// [`World::send_media`] and [`DdVideo`]), in arrival order.
    pub fn video_from(&self, c: usize, src: usize) -> impl Iterator<Item = &Received> {
        self.clients[c]
            .subscriber
            .received
            .iter()
            .filter(move |r| r.payload[..2] == [src as u8, 1])
    }

    /// The subscriber m-line on which client `c` receives client `src`'s
    /// video, once subscribed.
    pub fn video_line(&self, c: usize, src: usize) -> Option<Mid> {
        let track = &self.clients[src].published.get(1)?.1;
        self.clients[c]
            .subscribed
            .iter()
            .find(|(_, t)| *t == track)
            .map(|(m, _)| Mid::from(m.as_str()))
    }

    /// Runs the world for `dur`, sending `v`'s frames.
    pub fn send_dd_video(&mut self, v: &mut DdVideo, dur: Duration) {
        let end = self.now + dur;
        let i = v.client;
        let mid = self.video_mid(i);
        while self.now < end {
            let requests = self.clients[i].publisher.keyframe_requests;
            if requests > v.requests_seen {
                v.requests_seen = requests;
                if v.answer_requests && v.key_in.is_none() {
                    v.key_in = Some(2);
                }
            }
            if v.tick.is_multiple_of(3) {
                let keyframe = v.key_in == Some(0);
                v.key_in = v.key_in.and_then(|k| k.checked_sub(1));
                for packet in 0..2u8 {
                    let mark = rtp_dd::FrameMark {
                        start_of_frame: packet == 0,
                        end_of_frame: packet == 1,
                        frame_number: v.frame,
                        keyframe,
                    };
                    let mut dd = [0u8; rtp_dd::MAX_LEN];
                    let n = rtp_dd::write(&mark, &mut dd);
                    let mut payload = vec![i as u8, 1];
                    payload.extend_from_slice(&v.frame.to_be_bytes());
                    payload.extend([packet, u8::from(keyframe)]);
                    payload.extend((0..200u8).map(|x| x ^ v.frame as u8));
                    let now = self.now;
                    let ts = u32::from(v.frame) * 3000;
                    if self.clients[i].publisher.send_rtp_dd(
                        now,
                        mid,
                        ts,
                        mark.end_of_frame,
                        &payload,
                        Some(&dd[..n]),
                    ) {
                        v.sent.push((dd[..n].to_vec(), payload));
                    }
                }
                v.frame = v.frame.wrapping_add(1);
                let now = self.now;
                self.clients[i].publisher.poll(now);
            }
            v.tick += 1;
            self.flush();
            self.advance(Duration::from_millis(10));
        }
    }
}
