//! Splitting one SFrame ciphertext into RTP payloads (per-frame SFrame of
//! draft-ietf-avtcore-rtp-sframe): the whole encoded frame is encrypted once,
//! then cut into evenly sized pieces.

/// One RTP payload of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameChunk<'a> {
    /// The bytes for this packet.
    pub payload: &'a [u8],
    /// First packet of the frame.
    pub start: bool,
    /// Last packet of the frame (the RTP marker bit for video).
    pub end: bool,
}

/// Splits `ciphertext` into the fewest chunks of at most `max_payload` bytes,
/// sized within one byte of each other (even sizes keep the last packet from
/// being a runt). No chunk is empty, except that a zero-length frame is one
/// empty chunk with `start` and `end` set. A `max_payload` of 0 is taken as 1.
///
/// ```
/// use e2ee::frame::packetize;
/// let sizes: Vec<usize> = packetize(&[0u8; 2500], 1200).map(|c| c.payload.len()).collect();
/// assert_eq!(sizes, [834, 833, 833]);
/// ```
pub fn packetize(
    ciphertext: &[u8],
    max_payload: usize,
) -> impl ExactSizeIterator<Item = FrameChunk<'_>> {
    let max = max_payload.max(1);
    let count = ciphertext.len().div_ceil(max).max(1);
    let base = ciphertext.len() / count;
    let extra = ciphertext.len() % count;
    (0..count).map(move |i| {
        // The first `extra` chunks carry one more byte.
        let offset = i * base + i.min(extra);
        let len = base + usize::from(i < extra);
        FrameChunk {
            payload: &ciphertext[offset..offset + len],
            start: i == 0,
            end: i + 1 == count,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_frame_evenly() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_001).collect();
        for max in [1usize, 2, 7, 100, 1200, 10_000, 10_001, 20_000] {
            let chunks: Vec<_> = packetize(&data, max).collect();
            assert_eq!(chunks.len(), data.len().div_ceil(max));
            let joined: Vec<u8> = chunks
                .iter()
                .flat_map(|c| c.payload.iter().copied())
                .collect();
            assert_eq!(joined, data);
            let (lo, hi) = chunks.iter().fold((usize::MAX, 0), |(lo, hi), c| {
                (lo.min(c.payload.len()), hi.max(c.payload.len()))
            });
            assert!(
                lo >= 1 && hi <= max && hi - lo <= 1,
                "max {max}: {lo}..{hi}"
            );
            assert!(chunks[0].start && chunks.last().is_some_and(|c| c.end));
            assert_eq!(
                chunks.iter().filter(|c| c.start || c.end).count(),
                chunks.len().min(2)
            );
        }
    }

    #[test]
    fn empty_frame_and_zero_max() {
        let chunks: Vec<_> = packetize(&[], 1200).collect();
        assert_eq!(
            chunks,
            [FrameChunk {
                payload: &[],
                start: true,
                end: true
            }]
        );
        assert_eq!(packetize(&[1, 2, 3], 0).len(), 3);
    }
}
