//! What the sinks read without decrypting: the datagram kind (RFC 7983) and
//! the clear SRTP header; and the stamp publishers put in each payload.

/// What a datagram on a WebRTC 5-tuple is, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// STUN (first byte 0..=3).
    Stun,
    /// DTLS (first byte 20..=63).
    Dtls,
    /// RTP (first byte 128..=191, payload type outside the RTCP range).
    Rtp,
    /// RTCP (first byte 128..=191, second byte 192..=223, RFC 5761).
    Rtcp,
    /// Anything else, including empty datagrams.
    Other,
}

/// Classifies a datagram the way RFC 7983 and RFC 5761 demultiplex.
pub fn classify(b: &[u8]) -> Class {
    match (b.first(), b.get(1)) {
        (Some(0..=3), _) => Class::Stun,
        (Some(20..=63), _) => Class::Dtls,
        (Some(128..=191), Some(192..=223)) => Class::Rtcp,
        (Some(128..=191), Some(_)) => Class::Rtp,
        _ => Class::Other,
    }
}

/// The fields of a clear RTP header the sinks use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView {
    /// Payload type.
    pub pt: u8,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp.
    pub ts: u32,
    /// Synchronization source.
    pub ssrc: u32,
    /// Bytes before the payload: fixed header, CSRCs and extensions.
    pub header_len: usize,
}

/// Reads the clear header of an (S)RTP packet; `None` if it is truncated.
pub fn view(b: &[u8]) -> Option<RtpView> {
    let fixed: &[u8; 12] = b.get(..12)?.try_into().ok()?;
    let csrc = usize::from(fixed[0] & 0x0f);
    let mut header_len = 12 + 4 * csrc;
    if fixed[0] & 0x10 != 0 {
        let ext = b.get(header_len..header_len + 4)?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        header_len += 4 + 4 * words;
    }
    if header_len > b.len() {
        return None;
    }
    Some(RtpView {
        pt: fixed[1] & 0x7f,
        seq: u16::from_be_bytes([fixed[2], fixed[3]]),
        ts: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
        header_len,
    })
}

/// Marks the payloads this benchmark sends.
const MAGIC: [u8; 4] = *b"FWD1";
/// Bytes [`Stamp::write`] uses at the start of a payload.
pub const STAMP_LEN: usize = 24;

/// What a publisher writes at the start of every payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Which publisher sent it.
    pub publisher: u32,
    /// The publisher's packet counter.
    pub seq: u64,
    /// Send time, microseconds of the realtime clock. The RTP timestamp is
    /// its low 32 bits.
    pub send_us: u64,
}

impl Stamp {
    /// Writes the stamp at the start of `payload`; false if it is too short.
    pub fn write(&self, payload: &mut [u8]) -> bool {
        let Some(out) = payload.get_mut(..STAMP_LEN) else {
            return false;
        };
        out[..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&self.publisher.to_be_bytes());
        out[8..16].copy_from_slice(&self.seq.to_be_bytes());
        out[16..24].copy_from_slice(&self.send_us.to_be_bytes());
        true
    }

    /// Reads a stamp from the start of a decrypted payload.
    pub fn read(payload: &[u8]) -> Option<Self> {
        let b: &[u8; STAMP_LEN] = payload.get(..STAMP_LEN)?.try_into().ok()?;
        if b[..4] != MAGIC {
            return None;
        }
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_be_bytes(a)
        };
        Some(Self {
            publisher: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            seq: u64_at(8),
            send_us: u64_at(16),
        })
    }
}

/// Microseconds from a send stamp's low 32 bits (the RTP timestamp) to
/// `now_us`, or `None` if that is negative or over 10 s (a stale or
/// foreign packet).
pub fn age_us(rtp_ts: u32, now_us: u64) -> Option<u64> {
    let d = (now_us as u32).wrapping_sub(rtp_ts);
    (d < 10_000_000).then_some(u64::from(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_first_bytes() {
        assert_eq!(classify(&[0, 1]), Class::Stun);
        assert_eq!(classify(&[22, 254]), Class::Dtls);
        assert_eq!(classify(&[0x80, 96]), Class::Rtp);
        assert_eq!(classify(&[0x80, 96 | 0x80]), Class::Rtp, "marker set");
        assert_eq!(classify(&[0x81, 200]), Class::Rtcp);
        assert_eq!(classify(&[0x80]), Class::Other);
        assert_eq!(classify(&[]), Class::Other);
        assert_eq!(classify(&[100, 0]), Class::Other);
    }

    #[test]
    fn reads_header_with_extensions_and_refuses_truncation() {
        let mut p = vec![
            0x90, 0xe0, 0x12, 0x34, 0, 0, 0x01, 0x00, 0xde, 0xad, 0xbe, 0xef,
        ];
        p.extend([0xbe, 0xde, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
        p.extend([9; 30]);
        let v = view(&p).expect("parses");
        assert_eq!(
            v,
            RtpView {
                pt: 0x60,
                seq: 0x1234,
                ts: 256,
                ssrc: 0xdead_beef,
                header_len: 24
            }
        );
        assert!(view(&p[..20]).is_none());
        assert!(view(&p[..11]).is_none());
        // A CSRC count pointing past the end.
        assert!(view(&[0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_none());
    }

    #[test]
    fn stamps_round_trip_and_reject_foreign_payloads() {
        let s = Stamp {
            publisher: 7,
            seq: 1 << 40,
            send_us: 1_700_000_000_123_456,
        };
        let mut buf = [0u8; 100];
        assert!(s.write(&mut buf));
        assert_eq!(Stamp::read(&buf), Some(s));
        assert!(!s.write(&mut [0u8; 10]));
        assert_eq!(Stamp::read(&[0u8; 30]), None);
        assert_eq!(Stamp::read(&buf[..10]), None);
    }

    #[test]
    fn ages_wrap_with_the_32_bit_timestamp() {
        assert_eq!(age_us(100, 350), Some(250));
        let now = (1u64 << 32) + 5;
        assert_eq!(age_us(u32::MAX - 4, now), Some(10));
        assert_eq!(age_us(500, 400), None, "from the future");
    }
}
