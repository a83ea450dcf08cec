//! The dependency descriptor header extension on the SFU's transports.
//!
//! The SFU never rewrites a descriptor: str0m parses the extension into
//! [`DdBytes`] on the publisher transport, and the subscriber transport
//! writes the same bytes back out. `signal` reads what forwarding needs.
//!
//! Public so that the test kit's peers and the benchmarks' clients register
//! the very same extension: there is one serializer for the descriptor in
//! the workspace, this one.

use crate::forwarder::DdSignal;
use str0m::rtp::{Extension, ExtensionSerializer, ExtensionValues};

/// The extmap id the SFU proposes in its subscriber offers. In answers to
/// publisher offers str0m adopts whatever id the publisher chose.
pub const DD_EXT_ID: u8 = 12;

/// RFC 8285: the one-byte header form carries 1..=16 bytes, the two-byte
/// form 0..=255.
const ONE_BYTE_MAX: usize = 16;
const TWO_BYTE_MAX: usize = 255;

/// One packet's descriptor as received. A fixed array rather than a `Vec`,
/// so keeping it costs str0m's one allocation for the value and no more.
#[derive(Debug, Clone, Copy)]
pub struct DdBytes {
    len: u8,
    bytes: [u8; TWO_BYTE_MAX],
}

impl DdBytes {
    /// The descriptor `v`; `None` past 255 bytes, which no RTP header
    /// extension can carry.
    #[inline]
    pub fn new(v: &[u8]) -> Option<Self> {
        let len = u8::try_from(v.len()).ok()?;
        let mut bytes = [0; TWO_BYTE_MAX];
        bytes.get_mut(..v.len())?.copy_from_slice(v);
        Some(Self { len, bytes })
    }

    /// The descriptor's bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// Copies descriptor bytes between RTP headers and [`DdBytes`].
#[derive(Debug)]
struct DdSerializer;

impl ExtensionSerializer for DdSerializer {
    fn write_to(&self, buf: &mut [u8], ev: &ExtensionValues) -> usize {
        let Some(dd) = ev.user_values.get::<DdBytes>() else {
            return 0;
        };
        let v = dd.as_slice();
        match buf.get_mut(..v.len()) {
            Some(out) => {
                out.copy_from_slice(v);
                v.len()
            }
            None => 0,
        }
    }

    fn parse_value(&self, buf: &[u8], ev: &mut ExtensionValues) -> bool {
        match DdBytes::new(buf) {
            Some(dd) => {
                ev.user_values.set(dd);
                true
            }
            None => false,
        }
    }

    fn is_video(&self) -> bool {
        true
    }

    fn is_audio(&self) -> bool {
        false
    }

    fn requires_two_byte_form(&self, ev: &ExtensionValues) -> bool {
        // str0m asserts one-byte elements fit in 16 bytes; keyframe
        // descriptors of layered streams often do not.
        ev.user_values
            .get::<DdBytes>()
            .is_some_and(|dd| usize::from(dd.len) > ONE_BYTE_MAX)
    }
}

/// The extension to register on every transport (and on a peer's `Rtc`
/// that sends or reads descriptors as [`DdBytes`]).
pub fn extension() -> Extension {
    Extension::with_serializer(rtp_dd::URI, DdSerializer)
}

/// What the packet's descriptor, if any, means for forwarding.
pub(crate) fn signal(ev: &ExtensionValues) -> Result<DdSignal, rtp_dd::DdError> {
    let Some(dd) = ev.user_values.get::<DdBytes>() else {
        return Ok(DdSignal::Absent);
    };
    let d = rtp_dd::parse(dd.as_slice())?;
    Ok(if d.is_keyframe_start() {
        DdSignal::KeyframeStart
    } else {
        DdSignal::Other
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(bytes: &[u8]) -> ExtensionValues {
        let mut ev = ExtensionValues::default();
        assert!(DdSerializer.parse_value(bytes, &mut ev));
        ev
    }

    #[test]
    fn bytes_pass_through_unchanged() {
        let long: Vec<u8> = (0..200).collect();
        for v in [&[0x80, 0, 1][..], &long[..]] {
            let ev = with(v);
            let mut out = [0u8; 256];
            let n = DdSerializer.write_to(&mut out, &ev);
            assert_eq!(&out[..n], v);
            assert_eq!(DdSerializer.requires_two_byte_form(&ev), v.len() > 16);
            // Too little room: nothing written rather than a partial value.
            assert_eq!(DdSerializer.write_to(&mut out[..n - 1], &ev), 0);
        }
        assert!(!DdSerializer.parse_value(&[0; 256], &mut ExtensionValues::default()));
    }

    #[test]
    fn signal_reads_keyframe_starts() {
        let mut buf = [0u8; rtp_dd::MAX_LEN];
        let mut mark = rtp_dd::FrameMark {
            start_of_frame: true,
            end_of_frame: false,
            frame_number: 9,
            keyframe: true,
        };
        let n = rtp_dd::write(&mark, &mut buf);
        assert_eq!(signal(&with(&buf[..n])), Ok(DdSignal::KeyframeStart));
        mark.keyframe = false;
        let n = rtp_dd::write(&mark, &mut buf);
        assert_eq!(signal(&with(&buf[..n])), Ok(DdSignal::Other));
        assert_eq!(signal(&ExtensionValues::default()), Ok(DdSignal::Absent));
        assert!(signal(&with(&[0x80, 0])).is_err());
    }
}
