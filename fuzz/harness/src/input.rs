//! Reading structured values off the fuzzer's bytes.

/// A cursor over fuzz input. Every read succeeds: past the end it yields
/// zeros and empty slices, so a target never needs to special-case short
/// input (and the fuzzer learns that longer input explores further).
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// One byte.
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> u64 {
        (u64::from(self.u32()) << 32) | u64::from(self.u32())
    }

    /// One bit's worth of decision.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    /// A length-prefixed slice (one length byte, so at most 255 bytes).
    pub fn short(&mut self) -> &'a [u8] {
        let n = usize::from(self.u8());
        self.bytes(n)
    }

    /// A length-prefixed slice with a two-byte length.
    pub fn long(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.bytes(n)
    }

    /// A length-prefixed string (lossy UTF-8).
    pub fn string(&mut self) -> String {
        String::from_utf8_lossy(self.short()).into_owned()
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Writes input that [`Input`] reads back field for field: how seeds for
/// the structured targets are made.
#[derive(Debug, Clone, Default)]
pub struct Script(Vec<u8>);

impl Script {
    /// An empty script.
    pub fn new() -> Self {
        Self::default()
    }

    /// One byte.
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }

    /// A big-endian `u16`.
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A big-endian `u64`.
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A decision.
    pub fn bool(self, v: bool) -> Self {
        self.u8(u8::from(v))
    }

    /// Raw bytes, no length.
    pub fn raw(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }

    /// A slice with a one-byte length (at most 255 bytes are kept).
    pub fn short(self, v: &[u8]) -> Self {
        let v = &v[..v.len().min(255)];
        self.u8(v.len() as u8).raw(v)
    }

    /// A slice with a two-byte length (at most 65535 bytes are kept).
    pub fn long(self, v: &[u8]) -> Self {
        let v = &v[..v.len().min(65535)];
        self.u16(v.len() as u16).raw(v)
    }

    /// A string with a one-byte length.
    pub fn string(self, v: &str) -> Self {
        self.short(v.as_bytes())
    }

    /// The bytes.
    pub fn build(self) -> Vec<u8> {
        self.0
    }
}
