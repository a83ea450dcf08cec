//! Human-comparable verification codes derived from the epoch authenticator.

/// Number of 5-digit groups in a code.
const GROUPS: usize = 6;
/// Bytes of the authenticator consumed per group.
const BYTES_PER_GROUP: usize = 5;

/// Formats a verification code from an epoch authenticator.
///
/// Derivation (same shape as Signal's safety numbers): take the first 30
/// bytes of the authenticator as six 5-byte chunks; read each chunk as a
/// big-endian 40-bit integer, reduce it mod 100000, and print it as five
/// zero-padded decimal digits; join the six groups with single spaces.
/// Example: `"01234 56789 01234 56789 01234 56789"`. The modulo bias is below
/// 1e-7 per group. Returns `None` if the authenticator is shorter than 30
/// bytes (never for our SHA-256 suite, whose authenticator is 32 bytes).
pub(super) fn code_from_authenticator(authenticator: &[u8]) -> Option<String> {
    let bytes = authenticator.get(..GROUPS * BYTES_PER_GROUP)?;
    let groups: Vec<String> = bytes
        .chunks_exact(BYTES_PER_GROUP)
        .map(|chunk| {
            let value = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            format!("{:05}", value % 100_000)
        })
        .collect();
    Some(groups.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        let mut auth = [0u8; 32];
        // 0x00_0000_0001 -> 1; 0xff_ffff_ffff = 1099511627775 -> 27775.
        auth[4] = 1;
        auth[5..10].copy_from_slice(&[0xff; 5]);
        // 12345 in the third chunk.
        auth[10..15].copy_from_slice(&12345u64.to_be_bytes()[3..]);
        let code = code_from_authenticator(&auth).unwrap_or_default();
        assert_eq!(code, "00001 27775 12345 00000 00000 00000");
    }

    #[test]
    fn ignores_bytes_after_thirty_and_rejects_short() {
        let a = [7u8; 32];
        let mut b = a;
        b[31] = 0;
        assert_eq!(code_from_authenticator(&a), code_from_authenticator(&b));
        assert_eq!(code_from_authenticator(&a[..29]), None);
        let code = code_from_authenticator(&a).unwrap_or_default();
        assert_eq!(code.len(), 6 * 5 + 5);
        assert!(
            code.split(' ')
                .all(|g| g.len() == 5 && g.bytes().all(|c| c.is_ascii_digit()))
        );
    }
}
