//! A small multiplicative hasher for the plane's hot maps.
//!
//! The standard SipHash resists collision attacks, which only matters for
//! maps an attacker can fill. The maps that use this hasher are keyed by
//! integers the plane assigns itself (transports, participants, tracks) or by
//! remote addresses that are inserted only after an authenticated STUN check
//! and capped per transport, so an attacker can probe them but not grow
//! them. For those, a rotate-xor-multiply step per word (the scheme rustc
//! uses internally) costs a few cycles instead of SipHash's dozens.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// An odd 64-bit constant with well-spread bits (from the golden ratio).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Rotate-xor-multiply per word of input. Not collision resistant: see the
/// module docs for where it is allowed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // A multiply carries changes upwards only, so the last word's bits
        // reach the top of the hash but the low bits see little of earlier
        // words. hashbrown indexes buckets with the low bits: rotate the
        // well-mixed middle down.
        self.hash.rotate_left(26)
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::{BuildHasher, BuildHasherDefault};
    use std::net::SocketAddr;

    fn hash<T: std::hash::Hash>(v: &T) -> u64 {
        BuildHasherDefault::<FxHasher>::default().hash_one(v)
    }

    #[test]
    fn nearby_keys_spread() {
        // Sequential ids and neighbouring ports must not collide, in the low
        // bits (bucket index) nor in the top seven (hashbrown's tag).
        // A random function would fill about 2590 of 4096 values.
        let spread = |hashes: &[u64]| {
            let low: HashSet<u64> = hashes.iter().map(|h| h & 0xfff).collect();
            let high: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
            (low.len(), high.len())
        };
        let ids: Vec<u64> = (0..4096u64).map(|i| hash(&i)).collect();
        let ports: Vec<u64> = (20_000..24_096u16)
            .map(|p| hash(&SocketAddr::from(([127, 0, 0, 1], p))))
            .collect();
        let hosts: Vec<u64> = (0..4096u32)
            .map(|i| hash(&SocketAddr::from(((0x0a00_0000 + i).to_be_bytes(), 5000))))
            .collect();
        for (name, h) in [("ids", ids), ("ports", ports), ("hosts", hosts)] {
            let (low, high) = spread(&h);
            assert!(low > 2000, "{name}: low bits {low}");
            assert_eq!(high, 128, "{name}: every tag in use");
        }
    }

    #[test]
    fn byte_input_uses_every_byte() {
        assert_ne!(hash(&"abcdefghi"), hash(&"abcdefghj"));
        assert_ne!(hash(&[1u8, 2, 3]), hash(&[1u8, 2, 4]));
    }
}
