//! A client's SDP on its way to the media plane, checked against size
//! limits and parsed before it is queued for a shard.
//!
//! Parsing a large SDP is the costly part of negotiation, and a shard's
//! thread also forwards every packet of its rooms. [`ClientSdp::prepare_offer`]
//! and [`ClientSdp::prepare_answer`] do the byte and m-line checks and the
//! parse wherever the caller runs them (the shell runs them on the
//! signaling task that received the message); the plane then only applies
//! the parsed value. An SDP that was not prepared is checked and parsed by
//! the plane itself, under the same limits.
//!
//! Refusals carry fixed, client-safe messages ([`SdpRefusal`]): a parser's
//! own error text can quote the input or, through a `Debug` impl, print
//! internal addresses, so it only goes to the log, and there without the
//! SDP.

use std::fmt;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::Direction;

/// Size limits on a client's SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SdpLimits {
    /// Largest SDP accepted, in bytes, checked before parsing.
    pub max_bytes: usize,
    /// Most m-lines in one offer or answer. The plane also refuses a
    /// subscription that would put more than this many m-lines in a
    /// participant's subscriber SDP, so an honest answer always fits.
    pub max_media_lines: usize,
    /// Most m-lines a publisher offer may send on (`sendonly` or
    /// `sendrecv`): the tracks a participant can publish through SDP.
    pub max_sending_lines: usize,
}

impl Default for SdpLimits {
    /// 256 KiB, 128 m-lines, 32 sending m-lines (signaling's default
    /// tracks per participant).
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024,
            max_media_lines: 128,
            max_sending_lines: 32,
        }
    }
}

/// Why a client's SDP was refused. `Display` is the message the client
/// gets; it never quotes the SDP or a library's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SdpRefusal {
    /// Larger than [`SdpLimits::max_bytes`].
    #[error("SDP of {bytes} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// More m-lines than [`SdpLimits::max_media_lines`].
    #[error("SDP with {lines} m-lines exceeds the limit of {max}")]
    TooManyMediaLines {
        /// How many it has (at least).
        lines: usize,
        /// The limit.
        max: usize,
    },
    /// A publisher offer sending on more m-lines than
    /// [`SdpLimits::max_sending_lines`].
    #[error("offer sends on {lines} m-lines; a participant may publish at most {max} tracks")]
    TooManyTracks {
        /// Sending m-lines in the offer.
        lines: usize,
        /// The limit.
        max: usize,
    },
    /// Not SDP the media plane can read.
    #[error("unparsable SDP")]
    Unparsable,
}

/// What became of the text.
enum Prepared {
    Offer(Box<SdpOffer>),
    Answer(Box<SdpAnswer>),
    Refused(SdpRefusal),
}

/// An SDP from a client, as text and, once prepared, parsed (or refused).
///
/// Equality compares the text. A clone carries the text only: the plane
/// then parses it on its own thread, as for an SDP never prepared. `Debug`
/// shows the size, never the content, so a command can be logged.
pub struct ClientSdp {
    text: String,
    prepared: Option<Prepared>,
}

impl ClientSdp {
    /// The SDP as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it has been prepared (parsed or refused).
    pub fn is_prepared(&self) -> bool {
        self.prepared.is_some()
    }

    /// Checks the text as a publisher offer against `limits` and parses
    /// it. Idempotent.
    pub fn prepare_offer(&mut self, limits: &SdpLimits) {
        if self.prepared.is_none() {
            self.prepared = Some(match check(&self.text, limits, "offer") {
                Err(r) => Prepared::Refused(r),
                Ok(()) => match SdpOffer::from_sdp_string(&self.text) {
                    Err(e) => Prepared::Refused(unparsable("offer", &e)),
                    Ok(offer) => match check_parsed(&offer, limits) {
                        Ok(()) => Prepared::Offer(Box::new(offer)),
                        Err(r) => Prepared::Refused(r),
                    },
                },
            });
        }
    }

    /// Checks the text as a subscriber answer against `limits` and parses
    /// it. Idempotent.
    pub fn prepare_answer(&mut self, limits: &SdpLimits) {
        if self.prepared.is_none() {
            self.prepared = Some(match check(&self.text, limits, "answer") {
                Err(r) => Prepared::Refused(r),
                Ok(()) => match SdpAnswer::from_sdp_string(&self.text) {
                    Err(e) => Prepared::Refused(unparsable("answer", &e)),
                    Ok(answer) => {
                        let lines = answer.media_lines.len();
                        if lines > limits.max_media_lines {
                            Prepared::Refused(SdpRefusal::TooManyMediaLines {
                                lines,
                                max: limits.max_media_lines,
                            })
                        } else {
                            Prepared::Answer(Box::new(answer))
                        }
                    }
                },
            });
        }
    }

    /// The parsed offer, preparing it now if that has not been done (an
    /// SDP prepared as an answer is prepared again).
    pub(crate) fn into_offer(mut self, limits: &SdpLimits) -> Result<SdpOffer, SdpRefusal> {
        if matches!(self.prepared, Some(Prepared::Answer(_))) {
            self.prepared = None;
        }
        self.prepare_offer(limits);
        match self.prepared {
            Some(Prepared::Offer(o)) => Ok(*o),
            Some(Prepared::Refused(r)) => Err(r),
            _ => Err(SdpRefusal::Unparsable),
        }
    }

    /// The parsed answer, preparing it now if that has not been done.
    pub(crate) fn into_answer(mut self, limits: &SdpLimits) -> Result<SdpAnswer, SdpRefusal> {
        if matches!(self.prepared, Some(Prepared::Offer(_))) {
            self.prepared = None;
        }
        self.prepare_answer(limits);
        if let Some(Prepared::Answer(a)) = self.prepared {
            return Ok(*a);
        }
        Err(match self.prepared {
            Some(Prepared::Refused(r)) => r,
            _ => SdpRefusal::Unparsable,
        })
    }
}

/// The checks that need no parse: size, then a count of `m=` lines, so an
/// SDP with thousands of them is refused without building any of them.
fn check(text: &str, limits: &SdpLimits, what: &'static str) -> Result<(), SdpRefusal> {
    let bytes = text.len();
    if bytes > limits.max_bytes {
        tracing::debug!(what, bytes, max = limits.max_bytes, "client SDP too large");
        return Err(SdpRefusal::TooLarge {
            bytes,
            max: limits.max_bytes,
        });
    }
    let lines = media_line_count(text);
    if lines > limits.max_media_lines {
        tracing::debug!(what, bytes, lines, "client SDP has too many m-lines");
        return Err(SdpRefusal::TooManyMediaLines {
            lines,
            max: limits.max_media_lines,
        });
    }
    Ok(())
}

/// Lines starting with `m=`; each is one media section.
fn media_line_count(text: &str) -> usize {
    let starts = usize::from(text.starts_with("m="));
    starts + text.as_bytes().windows(3).filter(|w| w == b"\nm=").count()
}

fn check_parsed(offer: &SdpOffer, limits: &SdpLimits) -> Result<(), SdpRefusal> {
    let lines = offer.media_lines.len();
    if lines > limits.max_media_lines {
        return Err(SdpRefusal::TooManyMediaLines {
            lines,
            max: limits.max_media_lines,
        });
    }
    let sending = offer
        .media_lines
        .iter()
        .filter(|m| !m.disabled)
        .filter(|m| matches!(m.direction(), Direction::SendOnly | Direction::SendRecv))
        .count();
    if sending > limits.max_sending_lines {
        tracing::debug!(lines, sending, "client offer sends on too many m-lines");
        return Err(SdpRefusal::TooManyTracks {
            lines: sending,
            max: limits.max_sending_lines,
        });
    }
    Ok(())
}

/// Logs a parse failure without the SDP or the parser's message (which can
/// quote it) and returns the refusal the client gets.
fn unparsable(what: &'static str, e: &str0m::error::SdpError) -> SdpRefusal {
    let kind = match e {
        str0m::error::SdpError::ParseError(_) => "syntax",
        str0m::error::SdpError::Inconsistent(_) => "inconsistent",
    };
    tracing::debug!(what, kind, "unparsable client SDP");
    SdpRefusal::Unparsable
}

impl From<String> for ClientSdp {
    fn from(text: String) -> Self {
        Self {
            text,
            prepared: None,
        }
    }
}

impl From<&str> for ClientSdp {
    fn from(text: &str) -> Self {
        text.to_string().into()
    }
}

impl From<ClientSdp> for String {
    fn from(sdp: ClientSdp) -> Self {
        sdp.text
    }
}

impl Clone for ClientSdp {
    fn clone(&self) -> Self {
        self.text.clone().into()
    }
}

impl PartialEq for ClientSdp {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for ClientSdp {}

impl fmt::Debug for ClientSdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.prepared {
            None => "text",
            Some(Prepared::Offer(_)) => "offer",
            Some(Prepared::Answer(_)) => "answer",
            Some(Prepared::Refused(_)) => "refused",
        };
        write!(f, "ClientSdp({} bytes, {state})", self.text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        a=group:BUNDLE 0\r\na=fingerprint:sha-256 \
        8B:87:09:8A:5D:C2:F3:33:EF:C5:B1:F6:84:3A:3D:D6:A3:E2:9C:17:4C:E7:46:3B:1B:CE:84:98:DD:8E:AF:7B\r\n\
        a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n";

    fn audio_line(mid: usize, dir: &str) -> String {
        format!(
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\n\
             a=mid:{mid}\r\na={dir}\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"
        )
    }

    fn offer(lines: usize, dir: &str) -> String {
        let mut s = OFFER.to_string();
        for i in 0..lines {
            s.push_str(&audio_line(i, dir));
        }
        s
    }

    fn limits(bytes: usize, lines: usize, sending: usize) -> SdpLimits {
        SdpLimits {
            max_bytes: bytes,
            max_media_lines: lines,
            max_sending_lines: sending,
        }
    }

    #[test]
    fn an_offer_within_the_limits_parses() {
        let mut sdp = ClientSdp::from(offer(2, "sendonly"));
        sdp.prepare_offer(&limits(1 << 20, 2, 2));
        assert!(sdp.is_prepared());
        assert!(format!("{sdp:?}").contains("offer"), "{sdp:?}");
        let parsed = sdp.into_offer(&SdpLimits::default()).expect("parses");
        assert_eq!(parsed.media_lines.len(), 2);
    }

    #[test]
    fn limits_are_checked_in_order_and_say_what_was_exceeded() {
        let text = offer(3, "sendonly");
        let cases = [
            (
                limits(100, 8, 8),
                SdpRefusal::TooLarge {
                    bytes: text.len(),
                    max: 100,
                },
            ),
            (
                limits(1 << 20, 2, 8),
                SdpRefusal::TooManyMediaLines { lines: 3, max: 2 },
            ),
            (
                limits(1 << 20, 8, 2),
                SdpRefusal::TooManyTracks { lines: 3, max: 2 },
            ),
        ];
        for (l, want) in cases {
            let got = ClientSdp::from(text.clone()).into_offer(&l);
            assert_eq!(got.err(), Some(want));
        }
        // Lines that do not send are not tracks.
        let quiet = ClientSdp::from(offer(3, "recvonly")).into_offer(&limits(1 << 20, 8, 2));
        assert!(quiet.is_ok());
        // An answer is held to the m-line limit too.
        let answer = ClientSdp::from(offer(3, "recvonly")).into_answer(&limits(1 << 20, 2, 8));
        assert_eq!(
            answer.err(),
            Some(SdpRefusal::TooManyMediaLines { lines: 3, max: 2 })
        );
    }

    /// A parser error never reaches the client: no quoted input, no
    /// address, whatever the garbage.
    #[test]
    fn an_unparsable_sdp_gets_a_fixed_message() {
        for garbage in ["v=0", "hello", "v=0\r\nm=audio x\r\n", "\0\u{7f}0x7ffd"] {
            let got = ClientSdp::from(garbage).into_offer(&SdpLimits::default());
            assert_eq!(got.err(), Some(SdpRefusal::Unparsable), "{garbage:?}");
        }
        assert_eq!(SdpRefusal::Unparsable.to_string(), "unparsable SDP");
    }

    #[test]
    fn clones_and_comparisons_use_the_text() {
        let mut a = ClientSdp::from(offer(1, "sendonly"));
        a.prepare_offer(&SdpLimits::default());
        let b = a.clone();
        assert!(!b.is_prepared());
        assert_eq!(a, b);
        assert_eq!(String::from(b), a.as_str());
        assert!(!format!("{a:?}").contains("m=audio"));
    }

    #[test]
    fn media_lines_are_counted_without_parsing() {
        assert_eq!(media_line_count("m=a\nm=b\r\nx=m=c\nm="), 3);
        assert_eq!(media_line_count(""), 0);
    }
}
