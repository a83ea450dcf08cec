//! One SFrame ciphertext: header (RFC 9605 §4.3), AAD, seal and open
//! (§4.4.3, §4.4.4). Keys come from the `sframe` crate, which derives them as
//! in §4.4.2.

use sframe::crypto::{DecryptionBufferView, EncryptionBufferView};
use sframe::header::SframeHeader;
use sframe::key::{DecryptionKey, EncryptionKey};

use super::error::{DropReason, FrameError};
use super::suite::Suite;

/// A parsed SFrame header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) kid: u64,
    pub(crate) ctr: u64,
    pub(crate) len: usize,
}

/// Length of the header the config byte announces.
fn declared_len(config: u8) -> usize {
    let field = |extended: bool, value: u8| if extended { usize::from(value) + 1 } else { 0 };
    1 + field(config & 0x80 != 0, (config >> 4) & 0x07) + field(config & 0x08 != 0, config & 0x07)
}

/// Parses the header at the start of `frame`. Rejects truncated headers and
/// non-minimal encodings (§4.3: values 0..=7 go in the config byte, larger
/// ones in the fewest bytes), so one (KID, CTR) has exactly one wire form.
pub(crate) fn parse_header(frame: &[u8]) -> Option<Header> {
    let len = declared_len(*frame.first()?);
    if frame.len() < len {
        return None;
    }
    let h = SframeHeader::deserialize(frame).ok()?;
    let (kid, ctr) = (h.key_id(), h.counter());
    (SframeHeader::new(kid, ctr).len() == len).then_some(Header { kid, ctr, len })
}

pub(crate) fn encryption_key(
    suite: Suite,
    kid: u64,
    base_key: &[u8],
) -> Result<EncryptionKey, FrameError> {
    EncryptionKey::derive_from(suite.sframe(), kid, base_key).map_err(FrameError::Crypto)
}

pub(crate) fn decryption_key(
    suite: Suite,
    kid: u64,
    base_key: &[u8],
) -> Result<DecryptionKey, FrameError> {
    DecryptionKey::derive_from(suite.sframe(), kid, base_key).map_err(FrameError::Crypto)
}

/// Appends `header || AEAD(plaintext) || tag` to `out`. `aad` is scratch
/// space, reused across calls.
#[allow(clippy::too_many_arguments)]
pub(crate) fn seal_with(
    key: &EncryptionKey,
    suite: Suite,
    kid: u64,
    ctr: u64,
    metadata: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
    aad: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let header = SframeHeader::new(kid, ctr);
    let hlen = header.len();
    let start = out.len();
    out.resize(start + hlen, 0);
    header
        .serialize(&mut out[start..])
        .map_err(FrameError::Crypto)?;
    aad.clear();
    aad.extend_from_slice(&out[start..start + hlen]);
    aad.extend_from_slice(metadata);
    out.extend_from_slice(plaintext);
    out.resize(start + hlen + plaintext.len() + suite.tag_len(), 0);
    let (data, tag) = out[start + hlen..].split_at_mut(plaintext.len());
    let sealed = key.encrypt(
        EncryptionBufferView {
            aad: aad.as_mut_slice(),
            data,
            tag,
        },
        ctr,
    );
    if let Err(e) = sealed {
        // Never leave plaintext behind in the caller's buffer.
        out.truncate(start);
        return Err(FrameError::Crypto(e));
    }
    Ok(())
}

/// Authenticates and decrypts `frame` (whose header is `header`) under `key`.
/// The caller has checked that the ciphertext holds at least a tag. With
/// `keep_metadata` the result is `metadata || plaintext` (the media format's
/// clear prefix put back in front), built in one buffer.
pub(crate) fn open_with(
    key: &DecryptionKey,
    suite: Suite,
    header: &Header,
    frame: &[u8],
    metadata: &[u8],
    keep_metadata: bool,
    aad: &mut Vec<u8>,
) -> Result<Vec<u8>, DropReason> {
    let (head, body) = frame.split_at(header.len);
    let plain_len = body
        .len()
        .checked_sub(suite.tag_len())
        .ok_or(DropReason::Malformed)?;
    aad.clear();
    aad.extend_from_slice(head);
    aad.extend_from_slice(metadata);
    let kept = if keep_metadata { metadata } else { &[] };
    let mut data = Vec::with_capacity(kept.len() + body.len());
    data.extend_from_slice(kept);
    data.extend_from_slice(body);
    key.decrypt(
        DecryptionBufferView {
            aad: aad.as_mut_slice(),
            data: &mut data[kept.len()..],
        },
        header.ctr,
    )
    .map_err(|_| DropReason::AuthFailed)?;
    data.truncate(kept.len() + plain_len);
    Ok(data)
}

/// Seals one frame with an explicit KID and CTR, deriving the key from
/// `base_key` (any length) as RFC 9605 §4.4.2 does. [`FrameEncryptor`] seals
/// through the same code with its cached key.
///
/// Test support (RFC 9605 Appendix C vectors); an application must use
/// [`FrameEncryptor`], which never repeats a CTR under a key.
///
/// [`FrameEncryptor`]: crate::frame::FrameEncryptor
#[doc(hidden)]
pub fn seal(
    suite: Suite,
    base_key: &[u8],
    kid: u64,
    ctr: u64,
    metadata: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let key = encryption_key(suite, kid, base_key)?;
    out.clear();
    seal_with(
        &key,
        suite,
        kid,
        ctr,
        metadata,
        plaintext,
        out,
        &mut Vec::new(),
    )
}

/// What [`open`] recovered from a frame.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The header's KID.
    pub kid: u64,
    /// The header's CTR.
    pub ctr: u64,
    /// The decrypted frame.
    pub plaintext: Vec<u8>,
}

/// Opens one frame with the key derived from `base_key` (any length) for the
/// KID in its header, with no epoch, replay or KID checks.
///
/// Test support (RFC 9605 Appendix C vectors); an application must use
/// [`FrameDecryptor`](crate::frame::FrameDecryptor).
#[doc(hidden)]
pub fn open(
    suite: Suite,
    base_key: &[u8],
    frame: &[u8],
    metadata: &[u8],
) -> Result<Opened, DropReason> {
    let header = parse_header(frame).ok_or(DropReason::Malformed)?;
    let key = decryption_key(suite, header.kid, base_key).map_err(|_| DropReason::AuthFailed)?;
    let plaintext = open_with(
        &key,
        suite,
        &header,
        frame,
        metadata,
        false,
        &mut Vec::new(),
    )?;
    Ok(Opened {
        kid: header.kid,
        ctr: header.ctr,
        plaintext,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths_and_rejections() {
        // RFC 9605 Appendix C.1 style encodings.
        for (kid, ctr, wire) in [
            (0u64, 0u64, &[0x00][..]),
            (0, 255, &[0x08, 0xff]),
            (1, 256, &[0x19, 0x01, 0x00]),
            (255, 1, &[0x81, 0xff]),
            (0x123, 0x4567, &[0x99, 0x01, 0x23, 0x45, 0x67]),
        ] {
            let h = parse_header(wire).expect("valid header");
            assert_eq!((h.kid, h.ctr, h.len), (kid, ctr, wire.len()));
        }
        assert!(parse_header(&[]).is_none());
        assert!(parse_header(&[0x0f]).is_none(), "8-byte CTR missing");
        assert!(parse_header(&[0xf0]).is_none(), "8-byte KID missing");
        assert!(
            parse_header(&[0x08, 0x05]).is_none(),
            "CTR 5 must sit in the config byte"
        );
        assert!(
            parse_header(&[0x09, 0x00, 0xff]).is_none(),
            "CTR 255 in two bytes"
        );
        let full = [0xff; 17];
        let h = parse_header(&full).expect("two 8-byte fields");
        assert_eq!((h.kid, h.ctr, h.len), (u64::MAX, u64::MAX, 17));
    }

    #[test]
    fn seal_open_roundtrip_and_short_body() {
        let suite = Suite::default();
        let mut out = Vec::new();
        seal(suite, &[9; 16], 0x305, 77, b"m", b"hello", &mut out).expect("seal");
        let opened = open(suite, &[9; 16], &out, b"m").expect("open");
        assert_eq!(
            (opened.kid, opened.ctr, &opened.plaintext[..]),
            (0x305, 77, &b"hello"[..])
        );
        assert_eq!(
            open(suite, &[9; 16], &out, b"x"),
            Err(DropReason::AuthFailed)
        );
        let hlen = parse_header(&out).expect("header").len;
        let short = &out[..hlen + suite.tag_len() - 1];
        assert_eq!(
            open(suite, &[9; 16], short, b"m"),
            Err(DropReason::Malformed)
        );
    }
}
