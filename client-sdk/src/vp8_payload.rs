//! The VP8 RTP payload descriptor (RFC 7741 §4.2), which starts every VP8
//! RTP payload in front of a piece of the (encrypted) frame.
//!
//! We write the form browsers send: the extension byte and a 15-bit picture
//! id, so a receiver without the dependency descriptor can still tell
//! frames apart. The whole frame is one partition (PID 0). Written by hand
//! rather than with `rtc`'s `Vp8Payloader`, which allocates per packet and
//! whose parser refuses payloads under 4 bytes that the RFC allows.

/// Bytes of the descriptor we write.
pub(crate) const DESCRIPTOR_LEN: usize = 4;

const X: u8 = 0x80;
const S: u8 = 0x10;
const PID: u8 = 0x07;
const I: u8 = 0x80;
const L: u8 = 0x40;
const T: u8 = 0x20;
const K: u8 = 0x10;
const M: u8 = 0x80;

/// The descriptor of one packet: `start` on a frame's first packet.
pub(crate) fn descriptor(start: bool, picture_id: u16) -> [u8; DESCRIPTOR_LEN] {
    let picture_id = picture_id & 0x7fff;
    [
        X | if start { S } else { 0 },
        I,
        M | (picture_id >> 8) as u8,
        picture_id as u8,
    ]
}

/// What a received descriptor says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Descriptor {
    /// The packet starts a frame (S set in partition 0).
    pub(crate) frame_start: bool,
    /// Bytes before the frame data.
    pub(crate) len: usize,
}

/// Parses the descriptor at the start of `payload`; `None` if it is cut
/// short.
pub(crate) fn parse(payload: &[u8]) -> Option<Descriptor> {
    let first = *payload.first()?;
    let mut len = 1;
    if first & X != 0 {
        let ext = *payload.get(1)?;
        len = 2;
        if ext & I != 0 {
            len += if *payload.get(len)? & M != 0 { 2 } else { 1 };
        }
        if ext & L != 0 {
            len += 1;
        }
        if ext & (T | K) != 0 {
            len += 1;
        }
    }
    (len <= payload.len()).then_some(Descriptor {
        frame_start: first & S != 0 && first & PID == 0,
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_we_write_parses() {
        for (start, pic) in [(true, 0), (false, 1), (true, 0x7fff), (false, 0xffff)] {
            let d = descriptor(start, pic);
            assert_eq!(
                parse(&[&d[..], b"data"].concat()),
                Some(Descriptor {
                    frame_start: start,
                    len: DESCRIPTOR_LEN
                })
            );
            let id = (u16::from(d[2] & 0x7f) << 8) | u16::from(d[3]);
            assert_eq!(id, pic & 0x7fff);
        }
    }

    #[test]
    fn browser_forms_and_short_input() {
        // Chromium: X, I with a 15-bit picture id, L (TL0PICIDX), T (TID).
        let chromium = [0x90, 0xe0, 0x81, 0x23, 0x05, 0x40, 0xaa];
        assert_eq!(
            parse(&chromium),
            Some(Descriptor {
                frame_start: true,
                len: 6
            })
        );
        // The minimal descriptor; a later partition's start is no frame start.
        assert_eq!(
            parse(&[0x10, 1]),
            Some(Descriptor {
                frame_start: true,
                len: 1
            })
        );
        assert!(!parse(&[0x11, 1]).is_some_and(|d| d.frame_start));
        // A 7-bit picture id.
        assert_eq!(parse(&[0x80, 0x80, 0x05, 9]).map(|d| d.len), Some(3));
        for cut in 0..chromium.len() - 1 {
            assert_eq!(parse(&chromium[..cut]), None, "cut at {cut}");
        }
    }
}
