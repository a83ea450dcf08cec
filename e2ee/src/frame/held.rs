//! RFC 9605 §4.4.2 key and salt derivation in the open, for
//! [`FrameDecryptor::held_keys`](crate::frame::FrameDecryptor::held_keys).
//!
//! The `sframe` crate keeps the secrets it derives private, so a test that
//! wants to see which keys a client holds gets them re-derived here from the
//! base key the decryptor keeps. Only that test hook calls this; frames are
//! sealed and opened with the crate's keys (checked equal to these by the
//! RFC vectors).

use hkdf::Hkdf;
use sha2::{Sha256, Sha512};
use zeroize::Zeroizing;

use super::suite::Suite;

fn label(prefix: &[u8], kid: u64, suite: Suite) -> Vec<u8> {
    [prefix, &kid.to_be_bytes(), &suite.id().to_be_bytes()].concat()
}

/// A secret byte string, wiped on drop.
pub(crate) type SecretBytes = Zeroizing<Vec<u8>>;

/// `(sframe_key, sframe_salt)` of `kid` under `base_key`, or `None` if HKDF
/// refuses the lengths (it cannot for the listed suites).
pub(crate) fn derive_key_salt(
    suite: Suite,
    base_key: &[u8],
    kid: u64,
) -> Option<(SecretBytes, SecretBytes)> {
    let key_info = label(b"SFrame 1.0 Secret key ", kid, suite);
    let salt_info = label(b"SFrame 1.0 Secret salt ", kid, suite);
    let mut key = Zeroizing::new(vec![0u8; suite.key_len()]);
    let mut salt = Zeroizing::new(vec![0u8; suite.nonce_len()]);
    // HKDF-Extract("", base_key): an empty salt.
    let ok = match suite {
        Suite::AesGcm128Sha256 => {
            let prk = Hkdf::<Sha256>::new(Some(&[]), base_key);
            prk.expand(&key_info, &mut key).is_ok() && prk.expand(&salt_info, &mut salt).is_ok()
        }
        Suite::AesGcm256Sha512 => {
            let prk = Hkdf::<Sha512>::new(Some(&[]), base_key);
            prk.expand(&key_info, &mut key).is_ok() && prk.expand(&salt_info, &mut salt).is_ok()
        }
    };
    ok.then_some((key, salt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9605_appendix_c_key_and_salt() {
        let base: Vec<u8> = (0u8..16).collect();
        let (k, s) = derive_key_salt(Suite::AesGcm128Sha256, &base, 0x123).expect("derive");
        assert_eq!(hex::encode(&*k), "d34f547f4ca4f9a7447006fe7fcbf768");
        assert_eq!(hex::encode(&*s), "75234edefe07819026751816");
        let (k, s) = derive_key_salt(Suite::AesGcm256Sha512, &base, 0x123).expect("derive");
        assert_eq!(
            hex::encode(&*k),
            "d3e27b0d4a5ae9e55df01a70e6d4d28d969b246e2936f4b7a5d9b494da6b9633"
        );
        assert_eq!(hex::encode(&*s), "84991c167b8cd23c93708ec7");
    }
}
