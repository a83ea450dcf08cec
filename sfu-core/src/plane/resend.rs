//! A subscriber's NACKs, answered from its track's shared packet store
//! through the subscription's log of what it sent (see `crate::resend`).

use super::MediaPlane;
use crate::transport::TransportId;
use std::time::Instant;
use str0m::media::ResendRequest;
use str0m::rtp::RtpWrite;

impl MediaPlane {
    /// Writes every packet `req` names that is still kept to the
    /// subscriber's stream as a resend; str0m sends it on the RTX SSRC,
    /// under the same ratio cap and pacing as its own resends did.
    pub(super) fn resend(&mut self, now: Instant, tid: TransportId, req: ResendRequest) {
        self.stats.resends_requested += req.seq_nos.len() as u64;
        let answered = self.answer(now, tid, &req);
        self.stats.resends_sent += answered;
        if answered > 0 {
            self.mark_dirty(tid);
        }
    }

    fn answer(&mut self, now: Instant, tid: TransportId, req: &ResendRequest) -> u64 {
        let Some(tr) = self.transports.get_mut(&tid) else {
            return 0;
        };
        let subscriber = tr.participant;
        let Some(track) = self
            .participants
            .get(&subscriber)
            .filter(|ps| ps.subscriber == Some(tid))
            .and_then(|ps| ps.subs.iter().find(|s| s.mid == Some(req.mid)))
            .map(|s| s.track)
        else {
            return 0;
        };
        let (Some(store), Some((log, Some(route)))) = (
            self.stores.get(&track),
            self.forwarder.sent(subscriber, track),
        ) else {
            return 0;
        };
        let mut api = tr.rtc.direct_api();
        let Some(tx) = api.stream_tx(&route.ssrc) else {
            return 0;
        };
        let mut answered = 0;
        for &seq in &req.seq_nos {
            let Some((at, ts)) = log.find(*seq) else {
                continue;
            };
            // Too old, or sent under a codec the m-line no longer maps to
            // the payload type the route knows.
            let Some(p) = store.get(now, at).filter(|p| p.codec == route.codec) else {
                continue;
            };
            let write = RtpWrite::new(route.pt, seq, ts, now, p.payload.clone())
                .marker(p.marker)
                .ext_vals(p.ext.clone())
                .nackable(true);
            tx.write_resend(write);
            answered += 1;
        }
        answered
    }
}
