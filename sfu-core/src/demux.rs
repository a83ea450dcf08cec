//! First-look demultiplexing of datagrams on the shared media port.
//!
//! All participants share one UDP port, so each datagram must be tied to its
//! transport before str0m sees it. A known remote address decides it at once.
//! A new address is only accepted with a STUN binding request whose USERNAME
//! names one of our local ufrags (RFC 8445 §7.2.2): ICE-lite peers learn
//! addresses from the connectivity checks the client sends.

/// What a datagram is, by its first byte (RFC 7983 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// STUN (0..=3).
    Stun,
    /// DTLS (20..=63).
    Dtls,
    /// RTP or RTCP (128..=191).
    Rtp,
    /// Anything else.
    Other,
}

/// Classifies a datagram.
pub fn classify(buf: &[u8]) -> Class {
    match buf.first() {
        Some(0..=3) => Class::Stun,
        Some(20..=63) => Class::Dtls,
        Some(128..=191) => Class::Rtp,
        _ => Class::Other,
    }
}

/// Whether a [`Class::Rtp`] datagram is RTCP: payload types 64..=95 after
/// the marker bit (RFC 5761 §4), the rule str0m applies.
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() > 2 && (64..96).contains(&(buf[1] & 0x7f))
}

const STUN_HEADER: usize = 20;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const ATTR_USERNAME: u16 = 0x0006;

/// The local (our) ufrag from a STUN request's USERNAME `local:remote`, or
/// `None` if the message is not a well-formed STUN message with one. Only a
/// datagram that [`classify`] calls [`Class::Stun`] can have one: on a
/// shared port a first byte above 3 is DTLS or something else (RFC 7983),
/// even where STUN's own header rules would allow it.
pub fn stun_local_ufrag(buf: &[u8]) -> Option<&str> {
    if buf.len() < STUN_HEADER || buf[4..8] != MAGIC_COOKIE || classify(buf) != Class::Stun {
        return None;
    }
    let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    let body = buf.get(STUN_HEADER..STUN_HEADER + len)?;
    let mut rest = body;
    while rest.len() >= 4 {
        let typ = u16::from_be_bytes([rest[0], rest[1]]);
        let alen = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        let value = rest.get(4..4 + alen)?;
        if typ == ATTR_USERNAME {
            let s = std::str::from_utf8(value).ok()?;
            return s.split(':').next().filter(|u| !u.is_empty());
        }
        let padded = (alen + 3) & !3;
        rest = rest.get(4 + padded..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun_with_username(user: &[u8]) -> Vec<u8> {
        let mut attrs = Vec::new();
        // An unrelated attribute first, to exercise padding.
        attrs.extend_from_slice(&[0x80, 0x22, 0x00, 0x03, b'a', b'b', b'c', 0]);
        attrs.extend_from_slice(&ATTR_USERNAME.to_be_bytes());
        attrs.extend_from_slice(&(user.len() as u16).to_be_bytes());
        attrs.extend_from_slice(user);
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        m.extend_from_slice(&MAGIC_COOKIE);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attrs);
        m
    }

    #[test]
    fn finds_local_ufrag() {
        let m = stun_with_username(b"srvufrag:cliufrag");
        assert_eq!(classify(&m), Class::Stun);
        assert_eq!(stun_local_ufrag(&m), Some("srvufrag"));
    }

    #[test]
    fn survives_truncation_and_garbage() {
        let m = stun_with_username(b"srvufrag:cliufrag");
        for n in 0..m.len() {
            let _ = stun_local_ufrag(&m[..n]);
        }
        let mut bad_len = m.clone();
        bad_len[3] = 0xff;
        assert_eq!(stun_local_ufrag(&bad_len), None);
        assert_eq!(stun_local_ufrag(&stun_with_username(b"\xff\xfe")), None);
        assert_eq!(stun_local_ufrag(&stun_with_username(b":x")), None);
        assert_eq!(classify(&[]), Class::Other);
        assert_eq!(classify(&[0x90]), Class::Rtp);
        assert_eq!(classify(&[22]), Class::Dtls);
        assert_eq!(classify(&[70]), Class::Other);
    }

    /// Found by the `stun_demux` fuzz target: a first byte of 0x21 passes
    /// STUN's own header check (top two bits zero) but is DTLS on a shared
    /// port, so no ufrag may be read from it.
    #[test]
    fn no_ufrag_outside_the_stun_class() {
        let mut m = stun_with_username(b"srvufrag:cliufrag");
        for first in [0x04, 0x21, 0x3f] {
            m[0] = first;
            assert_ne!(classify(&m), Class::Stun);
            assert_eq!(stun_local_ufrag(&m), None, "first byte {first:#x}");
        }
    }
}
