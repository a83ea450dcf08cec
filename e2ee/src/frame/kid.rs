//! The KID layout of RFC 9605 §5.2 with a zero `context`.

/// `E`: how many low bits of the MLS epoch a KID carries.
///
/// Eight bits keep a KID of leaf index < 2^16 within 3 bytes and let a
/// receiver tell 128 epochs ahead from 127 behind, far more than the one
/// previous epoch it keeps.
pub const EPOCH_BITS: u32 = 8;

const EPOCH_MASK: u64 = (1 << EPOCH_BITS) - 1;

/// The KID a member sends under: `(leaf << E) | (epoch mod 2^E)`.
///
/// This is RFC 9605 §5.2's `KID = (context << (S + E)) + (sender_index << E) +
/// (epoch % (1 << E))` with `context = 0`, for which the value does not depend
/// on `S`.
///
/// ```
/// use e2ee::frame::{kid, split_kid};
/// assert_eq!(kid(1, 0x123), 0x123);
/// assert_eq!(split_kid(kid(70_000, 513)), (70_000, 1));
/// ```
pub const fn kid(leaf: u32, epoch: u64) -> u64 {
    ((leaf as u64) << EPOCH_BITS) | (epoch & EPOCH_MASK)
}

/// Splits a KID into (leaf index, epoch mod 2^E).
///
/// A KID whose leaf part does not fit in 32 bits was not made by [`kid`]; its
/// high bits are cut off here, and [`crate::frame::FrameDecryptor`] drops such
/// frames as [`crate::frame::DropReason::UnknownKid`] before looking at them.
pub const fn split_kid(kid: u64) -> (u32, u8) {
    ((kid >> EPOCH_BITS) as u32, (kid & EPOCH_MASK) as u8)
}

/// Whether `kid` is in the space [`kid`] produces.
pub(crate) const fn is_ours(kid: u64) -> bool {
    kid >> EPOCH_BITS <= u32::MAX as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(kid(0, 0), 0);
        assert_eq!(kid(0, 255), 255);
        assert_eq!(kid(0, 256), 0);
        assert_eq!(kid(2, 3), 0x203);
        assert_eq!(kid(u32::MAX, u64::MAX), (u64::from(u32::MAX) << 8) | 0xff);
        for (leaf, epoch) in [(0u32, 0u64), (5, 300), (u32::MAX, 7)] {
            assert_eq!(split_kid(kid(leaf, epoch)), (leaf, (epoch % 256) as u8));
            assert!(is_ours(kid(leaf, epoch)));
        }
        assert!(!is_ours(1 << 40));
    }
}
