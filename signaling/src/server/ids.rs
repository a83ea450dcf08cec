//! Server-assigned ids: a short prefix and 16 random base62 characters
//! (about 95 bits), so ids are unique without coordination and reveal
//! nothing about order or count.

use rand::distr::{Alphanumeric, SampleString};

const ID_CHARS: usize = 16;

/// A new participant id, `PA_…`.
pub(crate) fn participant_id() -> String {
    with_prefix("PA_")
}

/// A new track id, `TR_…`.
pub(crate) fn track_id() -> String {
    with_prefix("TR_")
}

/// 128 random bits as 32 lowercase hex digits: resume tokens and MLS group
/// ids.
pub(crate) fn random_hex128() -> String {
    let bytes: [u8; 16] = rand::random();
    let mut s = String::with_capacity(32);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Compares two secrets in time that depends only on their lengths, so a
/// guesser learns nothing from how fast a wrong token is refused.
pub(crate) fn secret_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn with_prefix(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + ID_CHARS);
    s.push_str(prefix);
    Alphanumeric.append_string(&mut rand::rng(), &mut s, ID_CHARS);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_base62_body() {
        let p = participant_id();
        assert!(p.starts_with("PA_"));
        assert_eq!(p.len(), 3 + ID_CHARS);
        assert!(p[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(track_id().starts_with("TR_"));
        assert_ne!(participant_id(), participant_id());
    }

    #[test]
    fn hex_tokens_are_128_bits_and_compare_exactly() {
        let t = random_hex128();
        assert_eq!(t.len(), 32);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(t, random_hex128());
        assert!(secret_eq(&t, &t.clone()));
        assert!(!secret_eq(&t, &random_hex128()));
        assert!(!secret_eq(&t, &t[1..]));
        assert!(!secret_eq("", "a"));
    }
}
