//! A video track's layers as the forwarder sees them: its simulcast
//! encodings, the dependency descriptor state of each (one reader per
//! stream, since each encoding carries its own template structure), and
//! what each layer costs.

use crate::api::LayerSize;
use crate::layers::rates::{LayerRates, MAX_SPATIAL, MAX_TEMPORAL};
use crate::layers::{FrameLayers, Indication, Layer, Layering};
use rtp_dd::{DdError, Dti, FrameInfo, Reader};
use std::time::Instant;

/// Encodings told apart; a publisher offering more has the rest ignored.
pub(crate) const MAX_ENCODINGS: usize = 4;

/// No decode target for this layer.
const NONE: u8 = u8::MAX;

/// One RTP stream of the track: a simulcast encoding, or the only stream.
#[derive(Debug)]
struct Stream {
    reader: Reader,
    ssrc: Option<u32>,
    /// The spatial id this stream's frames carry: 0 when each encoding
    /// has its own one-layer structure, the encoding's index when the
    /// publisher describes all its encodings in one structure (libwebrtc's
    /// simulcast structures do, with a frame number counter shared by all
    /// encodings).
    own_spatial: u8,
    /// For each (spatial, temporal) layer a subscriber may ask for, the
    /// decode target that serves it best (the highest temporal layer not
    /// above the one asked for), or [`NONE`]. Rebuilt when a structure
    /// arrives, so the per-packet lookup is an index.
    dt_for: [[u8; MAX_TEMPORAL]; MAX_SPATIAL],
}

impl Default for Stream {
    /// No structure yet: no layer has a decode target.
    fn default() -> Self {
        Self {
            reader: Reader::default(),
            ssrc: None,
            own_spatial: 0,
            dt_for: [[NONE; MAX_TEMPORAL]; MAX_SPATIAL],
        }
    }
}

impl Stream {
    fn rebuild_targets(&mut self) {
        self.dt_for = [[NONE; MAX_TEMPORAL]; MAX_SPATIAL];
        let Some(structure) = self.reader.structure() else {
            return;
        };
        // For each layer a subscriber may ask for, the best decode target
        // within it: the highest spatial layer, then the highest temporal
        // layer, not above the ones asked for. A structure with fewer
        // layers than asked for (a publisher that changed its mode) still
        // serves its best.
        let mut best: [[Option<(u8, u8, u8)>; MAX_TEMPORAL]; MAX_SPATIAL] =
            [[None; MAX_TEMPORAL]; MAX_SPATIAL];
        for dt in 0..usize::from(structure.decode_targets).min(usize::from(NONE)) {
            let (ds, dtt) = structure.decode_target_layer(dt);
            for row in best.iter_mut().skip(usize::from(ds)) {
                for cell in row.iter_mut().skip(usize::from(dtt)) {
                    if cell.is_none_or(|(bs, bt, _)| (ds, dtt) > (bs, bt)) {
                        *cell = Some((ds, dtt, dt as u8));
                    }
                }
            }
        }
        for (s, row) in best.iter().enumerate() {
            for (t, cell) in row.iter().enumerate() {
                if let Some((_, _, dt)) = cell {
                    self.dt_for[s][t] = *dt;
                }
            }
        }
    }
}

/// The layer state of one video track whose packets carry descriptors.
#[derive(Debug)]
pub(crate) struct TrackLayers {
    pub(crate) layering: Layering,
    /// Simulcast rids, lowest quality first (empty for one stream).
    rids: Vec<String>,
    streams: [Stream; MAX_ENCODINGS],
    pub(crate) rates: LayerRates,
}

/// One packet's frame, read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Read {
    pub(crate) encoding: u8,
    pub(crate) info: FrameInfo,
}

impl TrackLayers {
    /// `rids` as the publisher listed them, highest quality first;
    /// `sizes` the picture sizes it declared, lowest layer first.
    pub(crate) fn new(rids: &[String], sizes: &[LayerSize]) -> Self {
        let layering = if rids.len() > 1 {
            Layering::Simulcast
        } else {
            Layering::Svc
        };
        let mut layers = Self {
            layering,
            rids: rids.iter().rev().cloned().collect(),
            streams: Default::default(),
            rates: LayerRates::new(layering),
        };
        layers.declare_sizes(sizes);
        layers
    }

    /// The publisher's declared picture heights, until (and unless) a
    /// descriptor's render resolutions say otherwise.
    pub(crate) fn declare_sizes(&mut self, sizes: &[LayerSize]) {
        for (spatial, size) in sizes.iter().enumerate().take(MAX_SPATIAL) {
            self.rates.set_height(spatial as u8, size.height);
        }
    }

    /// The encoding index of `rid` (0 the lowest), if the track has it.
    pub(crate) fn encoding_of(&self, rid: Option<&str>) -> Option<u8> {
        match rid {
            None if self.rids.len() <= 1 => Some(0),
            None => None,
            Some(r) if self.rids.len() <= 1 => {
                (self.rids.first().is_none_or(|only| only == r)).then_some(0)
            }
            Some(r) => self
                .rids
                .iter()
                .position(|x| x == r)
                .filter(|i| *i < MAX_ENCODINGS)
                .map(|i| i as u8),
        }
    }

    /// The rid of encoding `e`, for a keyframe request.
    pub(crate) fn rid(&self, e: u8) -> Option<&str> {
        self.rids.get(usize::from(e)).map(String::as_str)
    }

    /// The highest spatial layer of the one stream's structure (SVC), if
    /// known.
    pub(crate) fn max_spatial(&self) -> Option<u8> {
        self.streams[0]
            .reader
            .structure()
            .map(rtp_dd::Structure::max_spatial_id)
    }

    /// Number of encodings (1 without simulcast).
    pub(crate) fn encodings(&self) -> u8 {
        self.rids.len().clamp(1, MAX_ENCODINGS) as u8
    }

    /// Reads one packet's descriptor on its encoding's stream and counts
    /// its bytes against its layer. A new SSRC behind an encoding (the
    /// publisher reconnected) starts that stream's state afresh.
    pub(crate) fn read(
        &mut self,
        now: Instant,
        encoding: u8,
        ssrc: u32,
        dd: &[u8],
        bytes: usize,
    ) -> Result<Read, DdError> {
        let stream = &mut self.streams[usize::from(encoding).min(MAX_ENCODINGS - 1)];
        if stream.ssrc != Some(ssrc) {
            *stream = Stream {
                ssrc: Some(ssrc),
                ..Stream::default()
            };
        }
        let info = stream.reader.read(dd)?;
        stream.own_spatial = info.spatial_id;
        if info.structure_attached {
            stream.rebuild_targets();
            if let Some((_, h)) = stream
                .reader
                .structure()
                .and_then(|s| s.resolutions.as_ref())
                .and_then(|r| r.get(usize::from(info.spatial_id)))
            {
                let spatial = match self.layering {
                    Layering::Simulcast => encoding,
                    Layering::Svc => info.spatial_id,
                };
                self.rates
                    .set_height(spatial, u16::try_from(*h).unwrap_or(u16::MAX));
            }
        }
        let layer = match self.layering {
            Layering::Simulcast => Layer::new(encoding, info.temporal_id),
            Layering::Svc => Layer::new(info.spatial_id, info.temporal_id),
        };
        self.rates.count(now, layer, bytes);
        Ok(Read { encoding, info })
    }

    /// The frame as the layer selector reads it.
    pub(crate) fn frame<'a>(&'a self, read: &'a Read) -> DdFrame<'a> {
        let stream = &self.streams[usize::from(read.encoding).min(MAX_ENCODINGS - 1)];
        DdFrame {
            read,
            dt_for: &stream.dt_for,
            own_spatial: stream.own_spatial,
            layering: self.layering,
        }
    }
}

/// [`FrameLayers`] over a read descriptor.
pub(crate) struct DdFrame<'a> {
    read: &'a Read,
    dt_for: &'a [[u8; MAX_TEMPORAL]; MAX_SPATIAL],
    own_spatial: u8,
    layering: Layering,
}

impl FrameLayers for DdFrame<'_> {
    fn encoding(&self) -> u8 {
        self.read.encoding
    }

    fn frame_number(&self) -> u16 {
        self.read.info.frame_number
    }

    fn spatial(&self) -> u8 {
        match self.layering {
            Layering::Simulcast => self.read.encoding,
            Layering::Svc => self.read.info.spatial_id,
        }
    }

    fn keyframe_start(&self) -> bool {
        self.read.info.is_keyframe_start()
    }

    fn indication(&self, layer: Layer) -> Indication {
        let (s, t) = match self.layering {
            Layering::Simulcast if layer.spatial != self.read.encoding => {
                return Indication::NotPresent;
            }
            Layering::Simulcast => (self.own_spatial, layer.temporal),
            Layering::Svc => (layer.spatial, layer.temporal),
        };
        let (s, t) = (usize::from(s), usize::from(t).min(MAX_TEMPORAL - 1));
        let Some(dt) = self.dt_for.get(s).map(|row| row[t]) else {
            return Indication::NotPresent;
        };
        if dt == NONE {
            return Indication::NotPresent;
        }
        match self.read.info.dti(usize::from(dt)) {
            Dti::NotPresent => Indication::NotPresent,
            Dti::Discardable => Indication::Discardable,
            Dti::Switch => Indication::Switch,
            Dti::Required => Indication::Required,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::LayerSelector;
    use std::collections::HashSet;

    /// An L3T3 stream's descriptors: frame numbers 3u + s, a keyframe
    /// every `key_every` units, the temporal cycle restarting at each.
    fn l3t3(units: u16, key_every: u16) -> Vec<Vec<u8>> {
        let structure = rtp_dd::Structure::l3t3();
        let mut out = Vec::new();
        for u in 0..units {
            let keyframe = u % key_every == 0;
            for s in 0..3usize {
                let within = if keyframe {
                    0
                } else {
                    [1, 3, 2, 4][usize::from(u % key_every % 4)]
                };
                let spec = rtp_dd::FrameSpec {
                    start_of_frame: true,
                    end_of_frame: true,
                    frame_number: u * 3 + s as u16,
                    template_id: structure.template_id(5 * s + within),
                };
                let mut buf = [0u8; 255];
                let n = rtp_dd::write_frame(&spec, &structure, keyframe && s == 0, None, &mut buf)
                    .unwrap();
                out.push(buf[..n].to_vec());
            }
        }
        out
    }

    /// Every target change the selector can be given, on the real L3T3
    /// structure (whose upper-layer T1 frames are switch points for their
    /// own layer although they refer to the T1 frame below): whatever the
    /// order of targets, the receiver can decode every frame it gets.
    #[test]
    fn any_target_sequence_on_l3t3_forwards_only_decodable_frames() {
        let stream = l3t3(2400, 300);
        let targets: Vec<Layer> = (0..3)
            .flat_map(|s| (0..3).map(move |t| Layer::new(s, t)))
            .collect();
        let now = Instant::now();
        let mut layers = TrackLayers::new(&[], &[]);
        let mut sel = LayerSelector::new(Layering::Svc);
        sel.set_target(Some(Layer::new(2, 2)));
        let mut rng: u64 = 0x1234_5678_9ABC_DEF1;
        let (mut receiver, mut have) = (Reader::new(), HashSet::new());
        let mut forwarded = 0;
        for (i, dd) in stream.iter().enumerate() {
            if i % 17 == 0 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                sel.set_target(Some(targets[(rng % 9) as usize]));
            }
            let read = layers.read(now, 0, 1, dd, 100).unwrap();
            if !sel.decide(&layers.frame(&read)).forward {
                continue;
            }
            forwarded += 1;
            let info = receiver.read(dd).unwrap();
            for r in info.referred_frames() {
                assert!(have.contains(&r), "frame {} needs {r}", info.frame_number);
            }
            have.insert(info.frame_number);
        }
        assert!(forwarded > 1000, "{forwarded}");
    }
}
