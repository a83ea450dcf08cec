//! What the layered-forwarding tests share: a publisher's simulcast
//! packets with real dependency descriptors, and a room of subscribers
//! that receives them through the forwarding core.
#![allow(dead_code)]

use sfu_core::TrackKind;
use sfu_core::forwarder::{DdSignal, Forwarder, PacketMeta, ParticipantKey, TrackKey};
use std::time::{Duration, Instant};
use str0m::media::Mid;

pub(crate) const RIDS: [&str; 3] = ["f", "h", "q"]; // highest quality first, as signaled

/// One sent packet: what the forwarder is given, owned.
pub(crate) struct Sent {
    pub(crate) encoding: u8,
    pub(crate) ssrc: u32,
    pub(crate) seq: u64,
    pub(crate) ts: u32,
    pub(crate) dd: Vec<u8>,
    pub(crate) keyframe_start: bool,
    pub(crate) bytes: usize,
    pub(crate) frame: u16,
    pub(crate) temporal: u8,
    pub(crate) spatial: u8,
}

impl Sent {
    /// The packet as the forwarder is given it, on simulcast `rid` if any.
    /// A packet with no descriptor bytes carries none.
    pub(crate) fn meta<'a>(&'a self, rid: Option<&'a str>) -> PacketMeta<'a> {
        PacketMeta {
            ssrc: self.ssrc,
            seq: self.seq,
            ts: self.ts,
            clock_rate: 90_000,
            rid,
            dd: if self.keyframe_start {
                DdSignal::KeyframeStart
            } else {
                DdSignal::Other
            },
            descriptor: (!self.dd.is_empty()).then_some(self.dd.as_slice()),
            bytes: self.bytes,
            audio_level: None,
            voice: None,
        }
    }
}

/// `frames` frames of each of three L1T3 encodings at 30 fps, a keyframe
/// every `key_every`, two packets a frame; encoding e's frames are
/// 1000 << e bytes per packet.
pub(crate) fn simulcast(frames: u16, key_every: u16) -> Vec<Sent> {
    let structure = rtp_dd::Structure::l1t3();
    let mut out = Vec::new();
    let mut seq = [0u64; 3];
    for i in 0..frames {
        for e in 0..3u8 {
            let keyframe = i % key_every == 0;
            // Template index by position in the T0 T2 T1 T2 cycle.
            let (index, temporal) = if keyframe {
                (0, 0)
            } else {
                // The cycle restarts at each keyframe, as an encoder's does.
                [(1, 0), (3, 2), (2, 1), (4, 2)][usize::from(i % key_every % 4)]
            };
            for p in 0..2 {
                let spec = rtp_dd::FrameSpec {
                    start_of_frame: p == 0,
                    end_of_frame: p == 1,
                    frame_number: i,
                    template_id: structure.template_id(index),
                };
                let mut buf = [0u8; 255];
                let n = rtp_dd::write_frame(&spec, &structure, keyframe && p == 0, None, &mut buf)
                    .expect("descriptor");
                out.push(Sent {
                    encoding: e,
                    ssrc: 100 + u32::from(e),
                    seq: seq[usize::from(e)],
                    ts: u32::from(i) * 3000,
                    dd: buf[..n].to_vec(),
                    keyframe_start: keyframe && p == 0,
                    bytes: 1000 << e,
                    frame: i,
                    temporal,
                    spatial: e,
                });
                seq[usize::from(e)] += 1;
            }
        }
    }
    out
}

pub(crate) struct Room {
    pub(crate) fwd: Forwarder,
    pub(crate) track: TrackKey,
    pub(crate) subs: Vec<ParticipantKey>,
    pub(crate) t0: Instant,
}

pub(crate) fn room(rids: &[&str], subscribers: usize) -> Room {
    let mut fwd = Forwarder::default();
    let publisher = fwd.add_participant("room", true);
    let subs: Vec<ParticipantKey> = (0..subscribers)
        .map(|_| fwd.add_participant("room", true))
        .collect();
    let (track, auto) = fwd
        .add_track(
            publisher,
            TrackKind::Video,
            rids.iter().map(|r| (*r).to_owned()).collect(),
        )
        .expect("track");
    for (i, s) in auto.iter().enumerate() {
        assert!(fwd.subscribe(*s, track));
        fwd.set_out_mid(*s, track, Mid::from(format!("{i}").as_str()));
    }
    Room {
        fwd,
        track,
        subs,
        t0: Instant::now(),
    }
}

/// What one subscriber received: (encoding, frame, temporal, out seq).
pub(crate) type Got = Vec<(u8, u16, u8, u64)>;

impl Room {
    /// Sends `packets` at 30 fps (a frame's packets of all encodings at
    /// once); runs the allocator every 500 ms with `budget`.
    pub(crate) fn run(
        &mut self,
        packets: &[Sent],
        rids: &[&str],
        budget: impl Fn(ParticipantKey) -> Option<u64>,
    ) -> Vec<Got> {
        let mut got: Vec<Got> = vec![Vec::new(); self.subs.len()];
        let mut next_alloc = self.t0;
        for p in packets {
            let now = self.t0 + Duration::from_millis(u64::from(p.frame) * 1000 / 30);
            if now >= next_alloc {
                self.fwd.allocate(now, &budget, |_, _| {});
                next_alloc = now + Duration::from_millis(500);
            }
            let rid = (rids.len() > 1).then(|| rids[rids.len() - 1 - usize::from(p.encoding)]);
            let meta = p.meta(rid);
            let subs = self.subs.clone();
            self.fwd.forward(self.track, meta, now, |f| {
                let i = subs.iter().position(|s| *s == f.subscriber).unwrap();
                got[i].push((p.spatial, p.frame, p.temporal, f.rewritten.seq));
            });
        }
        got
    }
}

/// The subscriber's sequence numbers have no gap: nothing it will ask for
/// again.
pub(crate) fn assert_contiguous(got: &Got) {
    for w in got.windows(2) {
        assert_eq!(w[1].3, w[0].3 + 1, "gap between {:?} and {:?}", w[0], w[1]);
    }
}
