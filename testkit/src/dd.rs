//! The dependency descriptor header extension for [`crate::peer::LeanPeer`]:
//! registered with str0m so it is offered, answered, written and read.
//! The bytes pass through as they are; [`rtp_dd`] reads and writes them.

use str0m::rtp::{Extension, ExtensionSerializer, ExtensionValues};

/// The extmap id LeanPeer proposes for the descriptor. When the other side
/// offers another id, str0m adopts the offered one.
pub const DD_EXT_ID: u8 = 12;

/// One packet's descriptor bytes, as str0m's user extension value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdValue(pub Vec<u8>);

/// Copies descriptor bytes between the RTP header and [`DdValue`].
#[derive(Debug)]
struct DdSerializer;

/// RFC 8285: one-byte headers carry 1..=16 bytes, two-byte headers 0..=255.
const ONE_BYTE_MAX: usize = 16;
const TWO_BYTE_MAX: usize = 255;

impl ExtensionSerializer for DdSerializer {
    fn write_to(&self, buf: &mut [u8], ev: &ExtensionValues) -> usize {
        let Some(DdValue(v)) = ev.user_values.get::<DdValue>() else {
            return 0;
        };
        match buf.get_mut(..v.len()) {
            Some(out) if v.len() <= TWO_BYTE_MAX => {
                out.copy_from_slice(v);
                v.len()
            }
            _ => 0,
        }
    }

    fn parse_value(&self, buf: &[u8], ev: &mut ExtensionValues) -> bool {
        ev.user_values.set(DdValue(buf.to_vec()));
        true
    }

    fn is_video(&self) -> bool {
        true
    }

    fn is_audio(&self) -> bool {
        false
    }

    fn requires_two_byte_form(&self, ev: &ExtensionValues) -> bool {
        ev.user_values
            .get::<DdValue>()
            .is_some_and(|DdValue(v)| v.len() > ONE_BYTE_MAX)
    }
}

/// The extension to register on a str0m `RtcConfig`.
pub fn extension() -> Extension {
    Extension::with_serializer(rtp_dd::URI, DdSerializer)
}
