//! The SFrame cipher suites this build supports.

use super::error::FrameError;
use std::fmt;

/// An SFrame cipher suite (RFC 9605 §4.5), as registered with IANA.
///
/// Only the suites the `sframe` crate's crypto backend implements are listed:
/// with its default `ring` backend these are the two AES-GCM suites (the
/// AES-CTR/HMAC suites need another backend).
///
/// ```
/// use e2ee::frame::Suite;
/// assert_eq!(Suite::default(), Suite::AesGcm128Sha256);
/// assert_eq!(Suite::default().id(), 0x0004);
/// assert_eq!(Suite::from_id(0x0005), Some(Suite::AesGcm256Sha512));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Suite {
    /// `AES_128_GCM_SHA256_128` (0x0004): the default.
    #[default]
    AesGcm128Sha256,
    /// `AES_256_GCM_SHA512_128` (0x0005).
    AesGcm256Sha512,
}

impl Suite {
    /// Every supported suite.
    pub const ALL: [Suite; 2] = [Suite::AesGcm128Sha256, Suite::AesGcm256Sha512];

    /// The IANA code point (RFC 9605 §8.1); it is also part of the key
    /// derivation labels.
    pub const fn id(self) -> u16 {
        match self {
            Suite::AesGcm128Sha256 => 0x0004,
            Suite::AesGcm256Sha512 => 0x0005,
        }
    }

    /// The suite with this IANA code point, if this build supports it.
    pub fn from_id(id: u16) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The RFC 9605 name, e.g. `AES_128_GCM_SHA256_128`.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::AesGcm128Sha256 => "AES_128_GCM_SHA256_128",
            Suite::AesGcm256Sha512 => "AES_256_GCM_SHA512_128",
        }
    }

    /// `AEAD.Nk`: key length in bytes.
    pub const fn key_len(self) -> usize {
        self.sframe().key_len()
    }

    /// `AEAD.Nn`: nonce (and salt) length in bytes.
    pub const fn nonce_len(self) -> usize {
        self.sframe().nonce_len()
    }

    /// `AEAD.Nt`: authentication tag length in bytes.
    pub const fn tag_len(self) -> usize {
        self.sframe().auth_tag_len()
    }

    /// `Nh`: output length of the suite's hash in bytes.
    pub const fn hash_len(self) -> usize {
        self.sframe().hash_len()
    }

    pub(crate) const fn sframe(self) -> sframe::CipherSuite {
        match self {
            Suite::AesGcm128Sha256 => sframe::CipherSuite::AesGcm128Sha256,
            Suite::AesGcm256Sha512 => sframe::CipherSuite::AesGcm256Sha512,
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `Nk` of `suite`: the length in bytes of the per-epoch base key the MLS
/// exporter must produce (`MLS-Exporter("SFrame 1.0 Base Key", "", Nk)`,
/// RFC 9605 §5.2). [`crate::frame::FrameEncryptor::set_epoch`] and
/// [`crate::frame::FrameDecryptor::add_epoch`] accept exactly this length.
pub fn base_key_len(suite: Suite) -> usize {
    suite.key_len()
}

/// Refuses a base key that is not Nk bytes for `suite`.
pub(crate) fn check_base_key(suite: Suite, base_key: &[u8]) -> Result<(), FrameError> {
    let expected = base_key_len(suite);
    if base_key.len() == expected {
        Ok(())
    } else {
        Err(FrameError::InvalidKeyLength {
            expected,
            got: base_key.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_rfc_table_1() {
        let s = Suite::AesGcm128Sha256;
        assert_eq!(
            (s.hash_len(), s.key_len(), s.nonce_len(), s.tag_len()),
            (32, 16, 12, 16)
        );
        let s = Suite::AesGcm256Sha512;
        assert_eq!(
            (s.hash_len(), s.key_len(), s.nonce_len(), s.tag_len()),
            (64, 32, 12, 16)
        );
        for s in Suite::ALL {
            assert_eq!(s.sframe() as u16, s.id());
            assert_eq!(Suite::from_id(s.id()), Some(s));
        }
        assert_eq!(Suite::from_id(0x0001), None);
        assert_eq!(base_key_len(Suite::default()), 16);
    }
}
