//! Which SRTP protection profile a DTLS handshake chose, read from the
//! clear `use_srtp` extension of a DTLS 1.2 ServerHello (RFC 5764 §4.1.1).
//! str0m does not expose the profile, and the profile decides the per-packet
//! crypto cost the benchmark measures. DTLS 1.3 moves the extension into
//! encrypted messages; then the profile stays unknown.

/// Handshake record content type.
const HANDSHAKE: u8 = 22;
/// ServerHello handshake message type.
const SERVER_HELLO: u8 = 2;
/// The `use_srtp` extension type.
const USE_SRTP: u16 = 14;
/// The `supported_versions` extension type (present in DTLS 1.3 hellos).
const SUPPORTED_VERSIONS: u16 = 43;

/// What a datagram revealed about the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// A DTLS 1.2 ServerHello chose this profile id.
    Profile(u16),
    /// A DTLS 1.3 ServerHello: the profile is in encrypted extensions.
    Dtls13,
}

/// The IANA name of an SRTP protection profile id.
pub fn profile_name(id: u16) -> &'static str {
    match id {
        0x0001 => "SRTP_AES128_CM_HMAC_SHA1_80",
        0x0002 => "SRTP_AES128_CM_HMAC_SHA1_32",
        0x0007 => "SRTP_AEAD_AES_128_GCM",
        0x0008 => "SRTP_AEAD_AES_256_GCM",
        _ => "unknown",
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (a, b) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        let b = self.take(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        let b = self.take(3)?;
        Some(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
    }
}

/// Looks through every DTLS record of a datagram for an unfragmented
/// ServerHello.
pub fn sniff(datagram: &[u8]) -> Option<Sniffed> {
    let mut r = Reader(datagram);
    while !r.0.is_empty() {
        let content_type = r.u8()?;
        let _version = r.u16()?;
        let epoch = r.u16()?;
        let _seq = r.take(6)?;
        let len = usize::from(r.u16()?);
        let body = r.take(len)?;
        if content_type == HANDSHAKE
            && epoch == 0
            && let Some(s) = server_hello(body)
        {
            return Some(s);
        }
    }
    None
}

fn server_hello(body: &[u8]) -> Option<Sniffed> {
    let mut r = Reader(body);
    if r.u8()? != SERVER_HELLO {
        return None;
    }
    let length = r.u24()?;
    let _message_seq = r.u16()?;
    let offset = r.u24()?;
    let fragment = r.u24()?;
    if offset != 0 || fragment != length {
        return None;
    }
    let mut h = Reader(r.take(fragment)?);
    let _version = h.u16()?;
    let _random = h.take(32)?;
    let sid = usize::from(h.u8()?);
    let _session_id = h.take(sid)?;
    let _cipher = h.u16()?;
    let _compression = h.u8()?;
    let ext_len = usize::from(h.u16()?);
    let mut ext = Reader(h.take(ext_len)?);
    let mut dtls13 = false;
    while !ext.0.is_empty() {
        let ty = ext.u16()?;
        let len = usize::from(ext.u16()?);
        let mut data = Reader(ext.take(len)?);
        match ty {
            USE_SRTP => {
                let _profiles_len = data.u16()?;
                return Some(Sniffed::Profile(data.u16()?));
            }
            SUPPORTED_VERSIONS => dtls13 = true,
            _ => {}
        }
    }
    dtls13.then_some(Sniffed::Dtls13)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(body: &[u8]) -> Vec<u8> {
        let mut r = vec![HANDSHAKE, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1];
        r.extend(u16::try_from(body.len()).expect("short").to_be_bytes());
        r.extend(body);
        r
    }

    fn hello(exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut h = vec![0xfe, 0xfd];
        h.extend([7u8; 32]);
        h.extend([4, 1, 2, 3, 4]); // session id
        h.extend([0xc0, 0x2b, 0]); // cipher, compression
        let mut e = Vec::new();
        for (ty, data) in exts {
            e.extend(ty.to_be_bytes());
            e.extend(u16::try_from(data.len()).expect("short").to_be_bytes());
            e.extend(data);
        }
        h.extend(u16::try_from(e.len()).expect("short").to_be_bytes());
        h.extend(e);
        let len = h.len();
        let mut m = vec![SERVER_HELLO, 0, (len >> 8) as u8, len as u8, 0, 0];
        m.extend([0, 0, 0, 0, (len >> 8) as u8, len as u8]);
        m.extend(h);
        m
    }

    #[test]
    fn finds_the_chosen_profile_after_other_records() {
        let mut d = record(&[11, 0, 0, 0]); // some other handshake message
        d.extend(record(&hello(&[
            (0xff01, vec![0]),
            (USE_SRTP, vec![0, 2, 0, 7, 0]),
        ])));
        assert_eq!(sniff(&d), Some(Sniffed::Profile(7)));
        assert_eq!(profile_name(7), "SRTP_AEAD_AES_128_GCM");
        assert_eq!(profile_name(8), "SRTP_AEAD_AES_256_GCM");
    }

    #[test]
    fn dtls13_hello_and_garbage() {
        let d = record(&hello(&[(SUPPORTED_VERSIONS, vec![0xfe, 0xfc])]));
        assert_eq!(sniff(&d), Some(Sniffed::Dtls13));
        assert_eq!(sniff(&record(&hello(&[]))), None);
        assert_eq!(sniff(&[22, 1, 2]), None);
        let mut cut = record(&hello(&[(USE_SRTP, vec![0, 2, 0, 7, 0])]));
        cut.truncate(cut.len() - 3);
        assert_eq!(sniff(&cut), None);
        assert_eq!(sniff(&[]), None);
    }
}
