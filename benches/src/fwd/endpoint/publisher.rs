//! The generator's publishing side: even pacing, and packets carrying a
//! [`Stamp`] either through a str0m peer of the SFU or as plain RTP to the
//! baseline forwarder.

use super::{PLAIN_PT, PumpCtx};
use crate::fwd::batch;
use crate::fwd::rtp::{self, Stamp};
use rtp_dd::FrameMark;
use sfu_core::dd::DdBytes;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::Rtc;
use str0m::format::Codec;
use str0m::media::{Mid, Pt};
use str0m::rtp::{ExtensionValues, RtpWrite, SeqNo};

/// Even pacing from an anchor, restarted when the rate changes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pacing {
    epoch: u64,
    anchor: Instant,
    pub(super) sent: u64,
}

impl Pacing {
    /// Packets due at `now` (at most `max_burst`; the rest count as
    /// `behind` and are skipped). `phase` in [0, 1) staggers publishers
    /// across one packet interval so they do not all send at once.
    pub(super) fn due(
        &mut self,
        now: Instant,
        rate: f64,
        phase: f64,
        epoch: u64,
        max_burst: u64,
        behind: &mut u64,
    ) -> u64 {
        if epoch != self.epoch {
            let offset = if rate > 0.0 {
                phase.clamp(0.0, 1.0) / rate
            } else {
                0.0
            };
            *self = Self {
                epoch,
                anchor: now + Duration::from_secs_f64(offset.min(1.0)),
                sent: 0,
            };
        }
        let target = (now.saturating_duration_since(self.anchor).as_secs_f64() * rate) as u64;
        let mut n = target.saturating_sub(self.sent);
        if n > max_burst {
            *behind += n - max_burst;
            self.sent += n - max_burst;
            n = max_burst;
        }
        n
    }

    pub(super) fn restart(&mut self, now: Instant) {
        self.anchor = now;
        self.sent = 0;
    }
}

/// A publishing endpoint.
#[derive(Debug)]
pub struct Publisher {
    pub(super) index: u32,
    pub(super) fanout: u32,
    pub(super) mid: Option<Mid>,
    pt: Option<Pt>,
    seq: u64,
    pub(super) want_keyframe: bool,
    last_keyframe: Option<Instant>,
    pub(super) pacing: Pacing,
    payload: Vec<u8>,
    /// Baseline mode: plain RTP straight to this address with this SSRC.
    pub(super) plain: Option<(SocketAddr, u32)>,
}

impl Publisher {
    pub(super) fn new(
        index: u32,
        fanout: u32,
        payload: usize,
        plain: Option<(SocketAddr, u32)>,
        now: Instant,
    ) -> Self {
        Self {
            index,
            fanout,
            mid: None,
            pt: None,
            seq: 1,
            want_keyframe: true,
            last_keyframe: None,
            pacing: Pacing {
                epoch: u64::MAX,
                anchor: now,
                sent: 0,
            },
            payload: vec![0xa5; payload.max(rtp::STAMP_LEN)],
            plain,
        }
    }

    /// Finds the payload type once the m-line is negotiated.
    pub(super) fn resolve(&mut self, rtc: &mut Rtc) -> bool {
        if self.pt.is_some() {
            return true;
        }
        let Some(mid) = self.mid else { return false };
        if rtc.media(mid).is_none() {
            return false;
        }
        self.pt = rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == Codec::Vp8)
            .map(|p| p.pt());
        self.pt.is_some()
    }

    fn next_stamp(&mut self) -> Stamp {
        let s = Stamp {
            publisher: self.index,
            seq: self.seq,
            send_us: batch::realtime_us(),
        };
        s.write(&mut self.payload);
        self.seq += 1;
        s
    }

    pub(super) fn send_rtc(
        &mut self,
        rtc: &mut Rtc,
        n: u64,
        now: Instant,
        ctx: &PumpCtx<'_>,
    ) -> u64 {
        let (Some(mid), Some(pt)) = (self.mid, self.pt) else {
            return 0;
        };
        let mut sent = 0;
        for _ in 0..n {
            let keyframe = self.want_keyframe
                || self
                    .last_keyframe
                    .is_none_or(|t| now.saturating_duration_since(t) >= ctx.keyframe_interval);
            let seq = self.seq;
            let stamp = self.next_stamp();
            let mut ext = ExtensionValues::default();
            if ctx.dd {
                // Every packet is a whole frame: the SFU starts subscribers
                // at a keyframe's first packet.
                let mark = FrameMark {
                    start_of_frame: true,
                    end_of_frame: true,
                    frame_number: seq as u16,
                    keyframe,
                };
                let mut dd = [0u8; rtp_dd::MAX_LEN];
                let len = rtp_dd::write(&mark, &mut dd);
                if let Some(dd) = DdBytes::new(&dd[..len]) {
                    ext.user_values.set(dd);
                }
            }
            let mut api = rtc.direct_api();
            let Some(tx) = api.stream_tx_by_mid(mid, None) else {
                break;
            };
            let w = RtpWrite::new(
                pt,
                SeqNo::from(seq),
                stamp.send_us as u32,
                now,
                self.payload.clone(),
            )
            .marker(true)
            .ext_vals(ext)
            .nackable(true);
            tx.write_rtp(w);
            if keyframe {
                self.want_keyframe = false;
                self.last_keyframe = Some(now);
            }
            sent += 1;
        }
        sent
    }

    pub(super) fn send_plain(
        &mut self,
        n: u64,
        dest: SocketAddr,
        ssrc: u32,
        out: &mut Vec<(Vec<u8>, SocketAddr)>,
    ) -> u64 {
        for _ in 0..n {
            let seq = self.seq as u16;
            let stamp = self.next_stamp();
            let mut pkt = Vec::with_capacity(12 + self.payload.len());
            pkt.extend([0x80, 0x80 | PLAIN_PT]);
            pkt.extend(seq.to_be_bytes());
            pkt.extend((stamp.send_us as u32).to_be_bytes());
            pkt.extend(ssrc.to_be_bytes());
            pkt.extend_from_slice(&self.payload);
            out.push((pkt, dest));
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pacing_is_even_bounded_and_restarts_on_rate_change() {
        let t0 = Instant::now();
        let mut p = Pacing {
            epoch: u64::MAX,
            anchor: t0,
            sent: 0,
        };
        let mut behind = 0;
        assert_eq!(p.due(t0, 1000.0, 0.0, 1, 64, &mut behind), 0);
        let n = p.due(
            t0 + Duration::from_millis(10),
            1000.0,
            0.0,
            1,
            64,
            &mut behind,
        );
        assert_eq!(n, 10);
        p.sent += n;
        // A long stall: at most max_burst now, the rest is reported behind.
        let n = p.due(
            t0 + Duration::from_millis(1010),
            1000.0,
            0.0,
            1,
            64,
            &mut behind,
        );
        assert_eq!((n, behind), (64, 1000 - 64));
        p.sent += n;
        assert_eq!(
            p.due(
                t0 + Duration::from_millis(1010),
                1000.0,
                0.0,
                1,
                64,
                &mut behind
            ),
            0
        );
        // New rate: counts from the new anchor.
        let t1 = t0 + Duration::from_secs(2);
        // Half a packet interval late (phase 0.5 at 10/s = 50 ms).
        assert_eq!(p.due(t1, 10.0, 0.5, 2, 64, &mut behind), 0);
        assert_eq!(
            p.due(
                t1 + Duration::from_millis(140),
                10.0,
                0.5,
                2,
                64,
                &mut behind
            ),
            0
        );
        assert_eq!(
            p.due(
                t1 + Duration::from_millis(160),
                10.0,
                0.5,
                2,
                64,
                &mut behind
            ),
            1
        );
        assert_eq!(
            p.due(
                t1 + Duration::from_millis(560),
                10.0,
                0.5,
                2,
                64,
                &mut behind
            ),
            5
        );
    }
}
