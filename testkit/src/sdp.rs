//! Large publisher offers, for tests that play a hostile participant and
//! for measuring what negotiation costs a media shard.
//!
//! The offers are real: str0m makes them, so the SFU parses and applies
//! every m-line rather than refusing the SDP early.

use std::time::Instant;
use str0m::Rtc;
use str0m::media::{Direction, MediaKind};

/// A publisher offer with `lines` m-lines: the first `sending` send video
/// (`sendonly`), the rest receive audio (`recvonly`, which the SFU must
/// answer with a send stream each). Unknown attribute lines, which a
/// parser must read and keep, pad it to `pad_to` bytes if it is shorter.
///
/// ```
/// let sdp = testkit::sdp::offer(4, 0, 8 * 1024);
/// assert_eq!(sdp.matches("\nm=").count(), 4);
/// assert!(sdp.len() <= 8 * 1024 && sdp.len() > 7 * 1024);
/// ```
pub fn offer(lines: usize, sending: usize, pad_to: usize) -> String {
    let mut rtc = Rtc::builder().build(Instant::now());
    let mut api = rtc.sdp_api();
    for i in 0..lines {
        let (kind, dir) = if i < sending {
            (MediaKind::Video, Direction::SendOnly)
        } else {
            (MediaKind::Audio, Direction::RecvOnly)
        };
        api.add_media(kind, dir, None, None, None);
    }
    let (offer, _pending) = api.apply().expect("an offer with m-lines");
    let mut sdp = offer.to_sdp_string();
    // Each padding line is `a=x-pad:` + filler + CRLF.
    const LINE: usize = 1000;
    const HEAD: &str = "a=x-pad:";
    while sdp.len() + HEAD.len() + 3 <= pad_to {
        let filler = (pad_to - sdp.len() - HEAD.len() - 2).min(LINE);
        sdp.push_str(HEAD);
        sdp.extend(std::iter::repeat_n('p', filler));
        sdp.push_str("\r\n");
    }
    sdp
}

/// `sdp` without its header-extension, SSRC and stream-id attributes: the
/// same m-lines in about half the bytes, so a thousand of them fit in one
/// signaling message.
///
/// ```
/// let full = testkit::sdp::offer(10, 0, 0);
/// let lean = testkit::sdp::lean(&full);
/// assert_eq!(lean.matches("\nm=").count(), 10);
/// assert!(lean.len() < full.len() * 2 / 3);
/// ```
pub fn lean(sdp: &str) -> String {
    const DROP: [&str; 4] = ["a=extmap:", "a=ssrc:", "a=msid:", "a=ssrc-group:"];
    sdp.split_inclusive('\n')
        .filter(|line| !DROP.iter().any(|d| line.starts_with(d)))
        .collect()
}
