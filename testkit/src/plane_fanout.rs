//! A full `MediaPlane` in a virtual-time world ([`crate::plane_world`]),
//! split so a caller can time or count exactly one thing: one publisher
//! datagram going into the plane and every resulting output coming out.
//!
//! Used by sfu-core's `plane` bench (timing) and its `alloc_free` test
//! (counting allocations).
//!
//! Each round:
//! 1. [`Rig::prepare`] (untimed): virtual time moves on by [`STEP`], the
//!    world runs (subscribers get the previous round's packets and answer
//!    with RTCP and STUN), and the next publisher in turn writes one 1200-byte
//!    video packet. Its RTP datagram is held back for step 2.
//! 2. [`Rig::forward`] (the measured part): the datagram goes into the plane
//!    and the plane is polled until it asks for a timeout.
//! 3. [`Rig::release`] (untimed): the outputs go onto the simulated network.

use crate::plane_world::{SFU, World};
use sfu_core::{Input, Output, Transmit};
use std::net::SocketAddr;
use std::time::Duration;
use str0m::media::Mid;

/// Virtual time between two publisher packets.
pub const STEP: Duration = Duration::from_millis(1);

/// Video payload size.
pub const PAYLOAD: usize = 1200;

/// Whether a datagram is RTP rather than RTCP, STUN or DTLS.
pub fn is_rtp(d: &[u8]) -> bool {
    matches!(d.first(), Some(128..=191)) && !matches!(d.get(1), Some(192..=223))
}

/// The world plus the packet pump.
pub struct Rig {
    /// The world.
    pub w: World,
    /// Clients that publish, and each one's video mid and frame counter.
    publishers: Vec<(usize, Mid, u16)>,
    turn: usize,
    dd: bool,
    payload: Vec<u8>,
    /// Publisher datagrams held for [`Self::forward`].
    inputs: Vec<(SocketAddr, Vec<u8>)>,
    /// What the plane put out in the last [`Self::forward`].
    pub outs: Vec<Transmit>,
    /// RTP datagrams among them.
    pub rtp_out: u64,
    /// Publisher RTP datagrams fed.
    pub rtp_in: u64,
    /// Plane events seen in [`Self::forward`] (none expected once steady).
    pub events: u64,
}

impl Rig {
    /// One room: client 0 publishes, `subscribers` others only subscribe.
    pub fn fanout(subscribers: usize, dd: bool) -> Self {
        Self::build(subscribers + 1, 1, dd)
    }

    /// One room of `n` where everyone publishes and hears everyone else.
    pub fn meeting(n: usize, dd: bool) -> Self {
        Self::build(n, n, dd)
    }

    fn build(n: usize, publishers: usize, dd: bool) -> Self {
        let mut w = World::new(7);
        for _ in 0..n {
            w.join("room");
        }
        for i in 0..publishers {
            w.publish_av(i);
        }
        w.advance(Duration::from_secs(2));
        for (i, c) in w.clients.iter_mut().enumerate() {
            // A lone publisher subscribes to nothing, a pure subscriber
            // publishes nothing: those transports never negotiate.
            let expect = 2 * (publishers - usize::from(i < publishers));
            assert!(
                (c.subscriber.connected || expect == 0)
                    && (c.publisher.connected || i >= publishers),
                "client {i} not connected"
            );
            assert_eq!(c.subscribed.len(), expect, "client {i} subscriptions");
            c.subscriber.keep_payloads = false;
        }
        let publishers = (0..publishers).map(|i| (i, w.video_mid(i), 0)).collect();
        let outs = Vec::with_capacity(4 * n);
        Self {
            w,
            publishers,
            turn: 0,
            dd,
            payload: vec![0x5a; PAYLOAD],
            inputs: Vec::with_capacity(4),
            outs,
            rtp_out: 0,
            rtp_in: 0,
            events: 0,
        }
    }

    /// Runs `n` rounds unmeasured, so every stream is past its first packet,
    /// caches are full and lazily grown buffers reached their size.
    pub fn warm_up(&mut self, n: usize) {
        for _ in 0..n {
            self.prepare();
            self.forward();
            self.release();
        }
    }

    /// Step 1: time passes, the world runs, the next publisher writes one
    /// packet.
    pub fn prepare(&mut self) {
        self.w.advance(STEP);
        let (client, mid, frame) = self.publishers[self.turn];
        self.publishers[self.turn].2 = frame.wrapping_add(1);
        self.turn = (self.turn + 1) % self.publishers.len();
        let now = self.w.now;
        let ts = u32::from(frame).wrapping_mul(3000);
        let peer = &mut self.w.clients[client].publisher;
        // One packet per frame; the first is a keyframe so subscribers of a
        // descriptor-carrying track can start.
        let sent = if self.dd {
            let mark = rtp_dd::FrameMark {
                start_of_frame: true,
                end_of_frame: true,
                frame_number: frame,
                keyframe: frame == 0,
            };
            peer.send_frame_packet(now, mid, ts, &mark, &self.payload)
        } else {
            peer.send_rtp(now, mid, ts, true, &self.payload)
        };
        assert!(sent, "publisher {client} stream not ready");
        peer.poll(now);
        for o in peer.outbox.drain(..) {
            if is_rtp(&o.contents) {
                self.inputs.push((o.source, o.contents));
            } else {
                self.w.net.send(now, o.source, o.destination, o.contents);
            }
        }
    }

    /// Held input `i` into the plane.
    fn feed(&mut self, i: usize) {
        let (source, contents) = &self.inputs[i];
        self.w.plane.handle_input(
            self.w.now,
            Input::Datagram {
                source: *source,
                destination: SFU,
                contents,
            },
        );
        self.rtp_in += 1;
    }

    /// Step 2: the prepared datagram(s) into the plane, every output out.
    /// Returns how many datagrams came out.
    pub fn forward(&mut self) -> usize {
        let now = self.w.now;
        let mut n = 0;
        for i in 0..self.inputs.len() {
            self.feed(i);
            loop {
                match self.w.plane.poll_output(now) {
                    Output::Transmit(t) => {
                        n += 1;
                        self.outs.push(t);
                    }
                    Output::Timeout(_) => break,
                    Output::Event { .. } => self.events += 1,
                }
            }
        }
        n
    }

    /// Step 2 for a batch, as the socket shell does with a recvmmsg batch:
    /// every prepared datagram into the plane first, then every output
    /// out, each buffer handed back as soon as it is taken (the shell sends
    /// in batches, so its buffers come back somewhat later). Prepare the
    /// batch with several [`Self::prepare`] calls. Returns how many
    /// datagrams came out.
    pub fn forward_batch(&mut self) -> usize {
        let now = self.w.now;
        for i in 0..self.inputs.len() {
            self.feed(i);
        }
        let mut n = 0;
        loop {
            match self.w.plane.poll_output(now) {
                Output::Transmit(t) => {
                    n += 1;
                    if is_rtp(&t.contents) {
                        self.rtp_out += 1;
                    }
                    self.w.plane.recycle(t.contents);
                }
                Output::Timeout(_) => break,
                Output::Event { .. } => self.events += 1,
            }
        }
        self.inputs.clear();
        n
    }

    /// Step 3: outputs onto the network, held inputs dropped, receivers'
    /// records trimmed (they are the test's memory, not the SFU's).
    pub fn release(&mut self) {
        let now = self.w.now;
        for t in self.outs.drain(..) {
            if is_rtp(&t.contents) {
                self.rtp_out += 1;
            }
            // As the socket shell does: the datagram is sent (here, copied
            // onto the simulated network), then its buffer goes back to the
            // plane for a later SRTP output.
            self.w
                .net
                .send(now, t.source, t.destination, t.contents.clone());
            self.w.plane.recycle(t.contents);
        }
        self.inputs.clear();
        for c in &mut self.w.clients {
            if c.subscriber.received.len() > 256 {
                c.subscriber.received.clear();
            }
            c.events.clear();
        }
    }

    /// RTP datagrams out per RTP datagram in, since the last reset.
    pub fn fanout_ratio(&self) -> f64 {
        self.rtp_out as f64 / self.rtp_in.max(1) as f64
    }

    /// Zeroes the counters.
    pub fn reset_counts(&mut self) {
        self.rtp_in = 0;
        self.rtp_out = 0;
        self.events = 0;
    }
}
