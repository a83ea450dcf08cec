//! Bit-level reading and writing, most significant bit first, as the
//! descriptor's `f(n)` and `ns(n)` are defined (AV1 RTP spec §A.8.2).

use crate::DdError;

/// Reads `f(n)` and `ns(n)` values from a byte slice. Every read checks the
/// remaining length, so a truncated descriptor is an error, never a panic.
pub(crate) struct BitReader<'a> {
    buf: &'a [u8],
    /// Position in bits from the start of `buf`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// `f(n)` for `n <= 32`.
    pub(crate) fn bits(&mut self, n: u32) -> Result<u32, DdError> {
        debug_assert!(n <= 32);
        if self.remaining() < n as usize {
            return Err(DdError::Truncated);
        }
        let mut v: u32 = 0;
        for _ in 0..n {
            let byte = self.buf[self.pos / 8];
            let bit = (byte >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u32::from(bit);
            self.pos += 1;
        }
        Ok(v)
    }

    /// One bit as a flag.
    pub(crate) fn flag(&mut self) -> Result<bool, DdError> {
        Ok(self.bits(1)? == 1)
    }

    /// Skips `n` bits (any count; fields such as custom chains can exceed
    /// 32 bits in total).
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), DdError> {
        if self.remaining() < n {
            return Err(DdError::Truncated);
        }
        self.pos += n;
        Ok(())
    }

    /// `ns(n)`: a value in `0..n` coded in `floor(log2(n))` or one more bit.
    /// `n` must be at least 1; `ns(1)` reads nothing and is 0.
    pub(crate) fn ns(&mut self, n: u32) -> Result<u32, DdError> {
        debug_assert!(n >= 1);
        let w = u32::BITS - n.leading_zeros();
        let m = (1u32 << w) - n;
        let v = self.bits(w - 1)?;
        if v < m {
            return Ok(v);
        }
        let extra = self.bits(1)?;
        Ok((v << 1) - m + extra)
    }

    fn remaining(&self) -> usize {
        self.buf.len() * 8 - self.pos
    }
}

/// Writes `f(n)` and `ns(n)` values into a byte slice that the caller has
/// sized for the whole descriptor.
pub(crate) struct BitWriter<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> BitWriter<'a> {
    /// Zeroes `buf` first: the descriptor's trailing padding must be zero.
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        buf.fill(0);
        Self { buf, pos: 0 }
    }

    /// Writes the low `n` bits of `v`. Bits past the end are not written;
    /// callers size the buffer from the same constants they write.
    pub(crate) fn put(&mut self, v: u32, n: u32) {
        for i in (0..n).rev() {
            let bit = ((v >> i) & 1) as u8;
            if let Some(byte) = self.buf.get_mut(self.pos / 8) {
                *byte |= bit << (7 - self.pos % 8);
            }
            self.pos += 1;
        }
    }

    /// `ns(n)` serialization of `v < n` (the spec's `write_ns`).
    pub(crate) fn put_ns(&mut self, n: u32, v: u32) {
        debug_assert!(v < n);
        if n <= 1 {
            return;
        }
        let w = u32::BITS - n.leading_zeros();
        let m = (1u32 << w) - n;
        if v < m {
            self.put(v, w - 1);
        } else {
            self.put(v + m, w);
        }
    }

    /// Bytes touched so far, counting a partly written last byte.
    pub(crate) fn len(&self) -> usize {
        self.pos.div_ceil(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ns_matches_the_spec_table_for_five() {
        // AV1 RTP spec §A.8.2: ns(5) codes 0,1,2 in two bits and 3,4 in three.
        let cases: [(u32, u32, u32); 5] = [
            (0, 0b00, 2),
            (1, 0b01, 2),
            (2, 0b10, 2),
            (3, 0b110, 3),
            (4, 0b111, 3),
        ];
        for (value, code, width) in cases {
            let mut buf = [0u8; 1];
            let mut w = BitWriter::new(&mut buf);
            w.put_ns(5, value);
            assert_eq!(buf[0] >> (8 - width), code as u8, "value {value}");
            let mut r = BitReader::new(&buf);
            assert_eq!(r.ns(5), Ok(value));
            assert_eq!(r.pos, width as usize);
        }
    }

    #[test]
    fn ns_round_trips_every_small_range() {
        for n in 1..=40u32 {
            for v in 0..n {
                let mut buf = [0u8; 2];
                let mut w = BitWriter::new(&mut buf);
                w.put_ns(n, v);
                let written = w.pos;
                let mut r = BitReader::new(&buf);
                assert_eq!(r.ns(n), Ok(v), "ns({n}) of {v}");
                assert_eq!(r.pos, written, "ns({n}) of {v}: width");
            }
        }
    }

    #[test]
    fn reads_stop_at_the_end() {
        let mut r = BitReader::new(&[0xA5]);
        assert_eq!(r.bits(3), Ok(0b101));
        assert_eq!(r.bits(6), Err(DdError::Truncated));
        assert_eq!(r.bits(5), Ok(0b00101));
        assert_eq!(r.flag(), Err(DdError::Truncated));
        assert_eq!(r.skip(1), Err(DdError::Truncated));
        assert_eq!(r.skip(0), Ok(()));
    }
}
