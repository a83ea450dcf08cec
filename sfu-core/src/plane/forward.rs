//! The per-packet path: a transport is polled, each RTP packet it yields is
//! handed to the `crate::forwarder::Forwarder`, and written to every
//! subscriber's transport with the route cached in its subscription.
//! Keyframe requests travel the other way, to the publisher.
//!
//! Nothing here allocates or takes a lock per packet: `tests/alloc_free.rs`
//! checks the first.

use super::pool::{SPARE_AHEAD, give_spare};
use super::{MediaPlane, PState};
use crate::api::{Output, TrackKind, Transmit};
use crate::dd;
use crate::forwarder::{PacketMeta, ParticipantKey, TrackKey};
use crate::keyframe::KeyframeAsk;
use crate::resend::PacketStore;
use crate::stats::DropReason;
use crate::transport::{CachedRoute, RxInfo, Transport, TransportId};
use rustc_hash::FxHashMap;
use std::time::Instant;
use str0m::bwe::BweKind;
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, Mid, Rid};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};
use str0m::{Event as RtcEvent, Input as RtcInput, Output as RtcOutput};

/// Largest incoming RTP packet (header and payload, before SRTP) that is
/// forwarded. str0m builds each outgoing packet in a 2000-byte buffer and
/// panics past it; the subscriber hop may add per-hop extensions
/// (abs-send-time, transport-cc, mid, rid), the two-byte extension form and
/// an RTX sequence number that the publisher's packet lacked, well under 64
/// bytes together.
const MAX_FORWARDED_RTP: usize = 2000 - 64;

impl MediaPlane {
    /// Polls one transport until str0m asks for a timeout. `tell_time`
    /// feeds it `now` first: queued writes go out only after str0m has seen
    /// a time (a received datagram counts as one).
    #[inline]
    pub(super) fn poll_transport(&mut self, now: Instant, tid: TransportId, tell_time: bool) {
        let Some(tr) = self.transports.get_mut(&tid) else {
            return;
        };
        // Cleared first: what polling marks again is polled again.
        tr.dirty = false;
        // SRTP output reuses sent buffers instead of allocating one each.
        for _ in 0..SPARE_AHEAD {
            give_spare(&mut self.spare, &mut tr.rtc);
        }
        if tell_time && let Err(e) = tr.rtc.handle_input(RtcInput::Timeout(now)) {
            tracing::debug!(error = %e, "transport timeout handling failed");
        }
        while let Some(tr) = self.transports.get_mut(&tid) {
            match tr.rtc.poll_output() {
                Ok(RtcOutput::Timeout(at)) => {
                    self.arm(tid, Some(at));
                    break;
                }
                Ok(RtcOutput::Transmit(tx)) => {
                    // Replaces the spare this datagram most likely used.
                    give_spare(&mut self.spare, &mut tr.rtc);
                    let contents: Vec<u8> = tx.contents.into();
                    self.stats.datagrams_out += 1;
                    self.stats.bytes_out += contents.len() as u64;
                    self.outputs.push_back(Output::Transmit(Transmit {
                        source: tx.source,
                        destination: tx.destination,
                        contents,
                    }));
                }
                Ok(RtcOutput::Event(ev)) => self.on_rtc_event(now, tid, ev),
                Err(e) => {
                    tracing::debug!(error = %e, "transport failed");
                    self.arm(tid, None);
                    break;
                }
            }
        }
    }

    fn on_rtc_event(&mut self, now: Instant, tid: TransportId, ev: RtcEvent) {
        match ev {
            RtcEvent::RtpPacket(pkt) => self.on_rtp(now, tid, pkt),
            RtcEvent::KeyframeRequest(req) => {
                self.stats.keyframe_requests_in += 1;
                let Some(tr) = self.transports.get(&tid) else {
                    return;
                };
                let Some(ps) = self.participants.get(&tr.participant) else {
                    return;
                };
                let subscriber = tr.participant;
                if let Some(s) = ps.subs.iter().find(|s| s.mid == Some(req.mid)) {
                    let track = s.track;
                    self.subscriber_keyframe_request(now, subscriber, track);
                }
            }
            RtcEvent::ResendRequest(req) => self.resend(now, tid, req),
            RtcEvent::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                let Some(tr) = self.transports.get(&tid) else {
                    return;
                };
                if let Some(ps) = self.participants.get_mut(&tr.participant)
                    && ps.subscriber == Some(tid)
                {
                    tracing::trace!(participant = %ps.id, bps = estimate.as_u64(), "downlink estimate");
                    ps.estimate_bps = Some(estimate.as_u64());
                }
            }
            RtcEvent::IceConnectionStateChange(state) => {
                tracing::debug!(?state, "ice state");
            }
            RtcEvent::Connected => tracing::debug!("transport connected"),
            _ => {}
        }
    }

    fn on_rtp(&mut self, now: Instant, tid: TransportId, mut pkt: RtpPacket) {
        self.stats.rtp_in += 1;
        let Some(info) = self.rx_info(tid, &pkt) else {
            self.stats.drop(DropReason::NoTrack);
            return;
        };
        let (Some(track), Some(codec)) = (info.track, info.codec) else {
            self.stats.drop(DropReason::NoTrack);
            return;
        };
        if pkt.header.header_len + pkt.payload.len() > MAX_FORWARDED_RTP {
            self.stats.drop(DropReason::Oversized);
            return;
        }
        let dd = match dd::signal(&pkt.header.ext_vals) {
            Ok(s) => s,
            Err(e) => {
                tracing::trace!(error = %e, "dependency descriptor refused");
                self.stats.drop(DropReason::BadDependencyDescriptor);
                return;
            }
        };
        let rid = info.rid;
        let bytes = pkt.header.header_len + pkt.payload.len();
        let ext = passthrough_extensions(&mut pkt.header.ext_vals);
        let meta = PacketMeta {
            ssrc: info.ssrc,
            seq: *pkt.seq_no,
            ts: pkt.header.timestamp,
            clock_rate: info.clock_rate,
            rid: rid.as_ref().map(|r| r.as_ref()),
            dd,
            descriptor: ext
                .user_values
                .get::<dd::DdBytes>()
                .map(dd::DdBytes::as_slice),
            bytes,
            audio_level: ext.audio_level,
            voice: ext.voice_activity,
        };
        // Written per subscriber without going through `self`: the forwarder is
        // borrowed for the loop, the rest is reached field by field.
        let Self {
            forwarder,
            transports,
            participants,
            stats,
            dirty,
            stores,
            cfg,
            ..
        } = self;
        // Kept once for all subscribers, when the first one gets it; video
        // only, where receivers ask for resends (audio has no RTX). A
        // simulcast track keeps as many packets per encoding.
        let mut store = (codec.is_video() && cfg.rtx_cache_packets > 0).then(|| {
            stores.entry(track).or_insert_with(|| {
                let packets = cfg
                    .rtx_cache_packets
                    .saturating_mul(forwarder.encodings(track));
                PacketStore::new(packets, cfg.rtx_cache_age)
            })
        });
        let mut stored = None;
        let mut forwarded = 0u64;
        let gate = forwarder.forward_routed(track, meta, now, |f, route, sent| {
            let d = match *route {
                Some(d) if d.codec == codec => d,
                _ => match find_route(participants, transports, f.subscriber, f.mid, codec) {
                    Ok(d) => *route.insert(d),
                    Err(reason) => {
                        if let Some(r) = reason {
                            stats.drop(r);
                        }
                        return;
                    }
                },
            };
            let Some(st) = transports.get_mut(&d.transport) else {
                *route = None;
                return;
            };
            if let Some(store) = store.as_deref_mut() {
                let at = *stored.get_or_insert_with(|| {
                    store.push(
                        now,
                        pkt.payload.clone(),
                        ext.clone(),
                        pkt.header.marker,
                        codec,
                    )
                });
                let oldest = store.oldest();
                sent.record(
                    cfg.rtx_cache_packets,
                    f.rewritten.seq,
                    at,
                    f.rewritten.ts,
                    oldest,
                );
            }
            let write = RtpWrite::new(
                d.pt,
                f.rewritten.seq.into(),
                f.rewritten.ts,
                pkt.timestamp,
                pkt.payload.clone(),
            )
            .marker(pkt.header.marker)
            .ext_vals(ext.clone())
            .nackable(true);
            let mut api = st.rtc.direct_api();
            match api.stream_tx(&d.ssrc) {
                Some(tx) => tx.write_rtp(write),
                // str0m replaced the m-line's send stream: find it again.
                None => match api.stream_tx_by_mid(f.mid, None) {
                    Some(tx) => {
                        *route = Some(CachedRoute {
                            ssrc: tx.ssrc(),
                            ..d
                        });
                        tx.write_rtp(write);
                    }
                    None => {
                        *route = None;
                        stats.drop(DropReason::NotNegotiated);
                        return;
                    }
                },
            }
            forwarded += 1;
            if !st.dirty {
                st.dirty = true;
                dirty.push_back(d.transport);
            }
        });
        self.stats.rtp_forwarded += forwarded;
        match gate {
            None => self.stats.drop(DropReason::NoTrack),
            Some(gate) => {
                if let Some(s) = gate.spatial {
                    let i = usize::from(s).min(self.stats.rtp_forwarded_by_layer.len() - 1);
                    self.stats.rtp_forwarded_by_layer[i] += forwarded;
                }
                self.stats.drop_n(
                    DropReason::AwaitingKeyframe,
                    u64::from(gate.awaiting_keyframe),
                );
                self.stats
                    .drop_n(DropReason::LayerNotSelected, u64::from(gate.layer_dropped));
                if gate.bad_descriptor {
                    tracing::trace!("dependency descriptor does not fit its stream's structure");
                    self.stats.drop(DropReason::BadDependencyDescriptor);
                }
                if gate.request_keyframe {
                    self.request_keyframe(now, track);
                }
            }
        }
    }

    /// What we know about a publisher SSRC, learned once from str0m.
    fn rx_info(&mut self, tid: TransportId, pkt: &RtpPacket) -> Option<RxInfo> {
        let ssrc = *pkt.header.ssrc;
        let pt = pkt.header.payload_type;
        let tr = self.transports.get_mut(&tid)?;
        if let Some(i) = tr.rx.iter().find(|i| i.ssrc == ssrc && i.pt == pt) {
            return Some(*i);
        }
        let (mid, rid) = {
            let mut api = tr.rtc.direct_api();
            let rx = api.stream_rx(&pkt.header.ssrc)?;
            (rx.mid(), rx.rid())
        };
        let params = tr.rtc.codec_config().params().iter().find(|p| p.pt() == pt);
        let codec = params.map(|p| p.spec().codec);
        let clock_rate = params.map(|p| p.spec().clock_rate.get()).unwrap_or(90_000);
        let track = self
            .participants
            .get(&tr.participant)
            .and_then(|p| p.published.get(&mid))
            .copied();
        let info = RxInfo {
            ssrc,
            track,
            rid,
            pt,
            codec,
            clock_rate,
        };
        tr.rx.retain(|i| i.ssrc != ssrc);
        // Bound the cache: a publisher has a handful of SSRCs.
        if tr.rx.len() >= 32 {
            tr.rx.remove(0);
        }
        tr.rx.push(info);
        Some(info)
    }

    /// A subscriber's own request: charged to its budget for the track.
    fn subscriber_keyframe_request(
        &mut self,
        now: Instant,
        subscriber: ParticipantKey,
        track: TrackKey,
    ) {
        match self.forwarder.subscriber_keyframe_request(
            track,
            subscriber,
            now,
            self.cfg.keyframe_min_interval,
            self.cfg.keyframe_backoff_max,
        ) {
            KeyframeAsk::Send => self.send_keyframe_request(track),
            KeyframeAsk::OverBudget => {
                tracing::trace!("keyframe request refused: subscriber over its budget");
                self.stats.keyframe_requests_throttled += 1;
            }
            KeyframeAsk::Deferred | KeyframeAsk::Unknown => {}
        }
    }

    /// The SFU's own request, charged to no subscriber.
    pub(super) fn request_keyframe(&mut self, now: Instant, track: TrackKey) {
        if self
            .forwarder
            .keyframe_request(track, now, self.cfg.keyframe_min_interval)
        {
            self.send_keyframe_request(track);
        }
    }

    pub(super) fn send_keyframe_request(&mut self, track: TrackKey) {
        let Some(meta) = self.tracks.get(&track) else {
            return;
        };
        if meta.kind != TrackKind::Video {
            return;
        }
        let Some(ptid) = self
            .participants
            .get(&meta.publisher)
            .and_then(|p| p.publisher)
        else {
            return;
        };
        let Some(tr) = self.transports.get_mut(&ptid) else {
            return;
        };
        // A layered track asks the encodings its subscribers wait for; any
        // other its one forwarded stream.
        let awaited = self.forwarder.awaited_rids(track);
        let mut asked = 0;
        for rid in awaited
            .iter()
            .map(|r| Some(Rid::from(*r)))
            .chain(awaited.is_empty().then_some(meta.rid))
        {
            if let Some(rx) = tr.rtc.direct_api().stream_rx_by_mid(meta.mid, rid) {
                rx.request_keyframe(KeyframeRequestKind::Pli);
                asked += 1;
            }
        }
        if asked > 0 {
            self.stats.keyframe_requests_out += asked;
            self.mark_dirty(ptid);
        }
    }
}

/// Where a subscription's packets go, looked up the slow way: on its first
/// packet, or when its codec changes. The error is the drop to count, if
/// any (a subscriber that is going away is not counted).
fn find_route(
    participants: &FxHashMap<ParticipantKey, PState>,
    transports: &mut FxHashMap<TransportId, Transport>,
    subscriber: ParticipantKey,
    mid: Mid,
    codec: Codec,
) -> Result<CachedRoute, Option<DropReason>> {
    let tid = participants
        .get(&subscriber)
        .and_then(|p| p.subscriber)
        .ok_or(None)?;
    let st = transports.get_mut(&tid).ok_or(None)?;
    let pt = st
        .tx_pt(mid, codec)
        .ok_or(Some(DropReason::NotNegotiated))?;
    let ssrc = st
        .rtc
        .direct_api()
        .stream_tx_by_mid(mid, None)
        .ok_or(Some(DropReason::NotNegotiated))?
        .ssrc();
    Ok(CachedRoute {
        transport: tid,
        ssrc,
        codec,
        pt,
    })
}

/// Header extensions that carry end-to-end meaning and pass to subscribers.
/// The per-hop ones (transport-cc, abs-send-time, mid, rid) are written anew
/// by each subscriber transport. `user_values` holds the dependency
/// descriptor, the only user extension registered, and it is passed on as
/// received: moved out of the received packet, which is done with it, rather
/// than copied. Extensions the transports do not register never reach this
/// point: str0m drops them while parsing, deliberately.
fn passthrough_extensions(e: &mut ExtensionValues) -> ExtensionValues {
    ExtensionValues {
        audio_level: e.audio_level,
        voice_activity: e.voice_activity,
        video_orientation: e.video_orientation,
        video_content_type: e.video_content_type,
        abs_capture_time: e.abs_capture_time,
        frame_mark: e.frame_mark,
        user_values: std::mem::take(&mut e.user_values),
        ..Default::default()
    }
}
