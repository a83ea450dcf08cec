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
}
