//! Signaling input: access tokens, and the per-connection session state
//! machine with the room registry and the MLS delivery service behind it.

use crate::input::Input;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sfu_core::MediaEvent;
use signaling::proto::{
    ClientMessage, IceCandidate, PROTOCOL_VERSION, Resume, ServerMessage, Target, TrackKind,
    TrackPublish,
};
use signaling::server::SignalingConfig;
use signaling::server::fuzzing::SessionHarness;
use signaling::token::{DEV_API_SECRET, Grants, TokenKeys};
use std::time::Duration;

/// A JWT with the given header and payload bytes, correctly signed with
/// the development secret, so the fuzzer reaches claim decoding.
pub fn sign_raw(header: &[u8], payload: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(DEV_API_SECRET.as_bytes()).expect("any key length");
    mac.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Access token verification (`TokenKeys::verify`, `verify_for_room`).
/// Input: a mode byte, then either a whole token (mode 0), claims JSON
/// signed with the development secret under a standard HS256 header
/// (mode 1), or a header and claims both from the input, signed (mode 2).
///
/// Checks: an accepted token names our issuer, is unexpired, and its
/// claims re-sign and re-verify to the same claims.
pub fn token(data: &[u8]) {
    let keys = TokenKeys::development();
    let mut inp = Input::new(data);
    let token = match inp.u8() % 3 {
        0 => String::from_utf8_lossy(inp.rest()).into_owned(),
        1 => sign_raw(br#"{"alg":"HS256","typ":"JWT"}"#, inp.rest()),
        _ => {
            let header = inp.short();
            sign_raw(header, inp.rest())
        }
    };
    let Ok(claims) = keys.verify(&token) else {
        return;
    };
    assert_eq!(claims.iss, keys.api_key(), "accepted another issuer");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    assert!(claims.exp >= now, "accepted an expired token");
    let again = keys.sign(&claims).expect("accepted claims re-sign");
    assert_eq!(keys.verify(&again).as_ref(), Ok(&claims));
    let _ = keys.verify_for_room(&token, &claims.room);
}

const ROOMS: [&str; 3] = ["r", "q", "r\u{7f}\n"];
const IDENTITIES: [&str; 4] = ["alice", "bob", "carol", ""];
/// Most connections one input opens.
const MAX_CONNS: usize = 5;
/// Most steps one input runs.
const MAX_STEPS: usize = 160;

fn pick<'a>(inp: &mut Input<'_>, from: &[&'a str]) -> &'a str {
    from[usize::from(inp.u8()) % from.len()]
}

/// Ids the server handed out so far (participants and tracks), so that
/// messages can name real ones.
#[derive(Default)]
struct Seen {
    tracks: Vec<String>,
    participants: Vec<String>,
    resume: Vec<(usize, String, String)>,
}

impl Seen {
    fn learn(&mut self, conn: usize, text: &str) {
        let msg: ServerMessage = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("server wrote a message it cannot read back: {e}"));
        match msg {
            ServerMessage::Joined {
                participant_id,
                resume_token,
                ..
            } => {
                self.participants.push(participant_id.clone());
                self.resume.push((conn, participant_id, resume_token));
            }
            ServerMessage::TrackAccepted { track, .. } => self.tracks.push(track.track_id),
            _ => {}
        }
        self.tracks.truncate(64);
        self.participants.truncate(64);
    }

    fn name(&self, inp: &mut Input<'_>, from: &[String]) -> String {
        let i = usize::from(inp.u8());
        match from.get(i % (from.len() + 1)) {
            Some(s) => s.clone(),
            None => inp.string(),
        }
    }
}

fn message(inp: &mut Input<'_>, seen: &Seen) -> ClientMessage {
    let target = if inp.bool() {
        Target::Publisher
    } else {
        Target::Subscriber
    };
    match inp.u8() % 12 {
        0 => ClientMessage::Offer {
            target,
            sdp: String::from_utf8_lossy(inp.long()).into_owned(),
        },
        1 => ClientMessage::Answer {
            target,
            sdp: String::from_utf8_lossy(inp.long()).into_owned(),
        },
        2 => ClientMessage::Candidate {
            target,
            candidate: IceCandidate {
                candidate: inp.string(),
                sdp_mid: inp.bool().then(|| inp.string()),
                sdp_m_line_index: inp.bool().then(|| inp.u16()),
            },
        },
        3 => {
            let kind = if inp.bool() {
                TrackKind::Video
            } else {
                TrackKind::Audio
            };
            let mut t = TrackPublish::new(&inp.string(), &inp.string(), kind, &inp.string());
            for _ in 0..inp.u8() % 6 {
                t.simulcast.push(inp.string());
            }
            t.e2ee = inp.bool();
            ClientMessage::Publish { track: t }
        }
        4 => ClientMessage::Unpublish { cid: inp.string() },
        5 => ClientMessage::Subscribe {
            track_id: seen.name(inp, &seen.tracks),
        },
        6 => ClientMessage::Unsubscribe {
            track_id: seen.name(inp, &seen.tracks),
        },
        7 => ClientMessage::Leave,
        8 => ClientMessage::MlsKeyPackage {
            key_package: inp.string(),
        },
        9 => ClientMessage::MlsCommit {
            epoch: u64::from(inp.u8() % 4),
            commit: inp.string(),
            welcome: inp.bool().then(|| inp.string()),
            added: (0..inp.u8() % 3)
                .map(|_| seen.name(inp, &seen.participants))
                .collect(),
            removed: (0..inp.u8() % 3)
                .map(|_| seen.name(inp, &seen.participants))
                .collect(),
        },
        10 => ClientMessage::MlsApplication {
            epoch: u64::from(inp.u8() % 4),
            message: inp.string(),
        },
        _ => ClientMessage::Ping { ts: inp.u64() },
    }
}

fn join(inp: &mut Input<'_>, seen: &Seen) -> ClientMessage {
    let keys = TokenKeys::development();
    let room = pick(inp, &ROOMS);
    let identity = pick(inp, &IDENTITIES);
    let bits = inp.u8();
    let grants = Grants {
        publish: bits & 1 != 0,
        subscribe: bits & 2 != 0,
        admin: bits & 4 != 0,
    };
    let token = if bits & 8 != 0 {
        String::from_utf8_lossy(inp.short()).into_owned()
    } else {
        keys.mint(room, identity, "name", grants, Duration::from_secs(600))
            .expect("mint")
    };
    let resume = (bits & 16 != 0 && !seen.resume.is_empty()).then(|| {
        let (_, pid, tok) = &seen.resume[usize::from(inp.u8()) % seen.resume.len()];
        Resume {
            participant_id: pid.clone(),
            resume_token: if bits & 32 != 0 {
                inp.string()
            } else {
                tok.clone()
            },
            mls_seq: u64::from(inp.u8()),
        }
    });
    ClientMessage::Join {
        protocol: if bits & 64 != 0 {
            u32::from(inp.u8())
        } else {
            PROTOCOL_VERSION
        },
        token,
        resume,
    }
}

fn media_event(inp: &mut Input<'_>, seen: &Seen) -> MediaEvent {
    match inp.u8() % 6 {
        0 => MediaEvent::PublisherAnswer { sdp: inp.string() },
        1 => MediaEvent::SubscriberOffer { sdp: inp.string() },
        2 => MediaEvent::Subscribed {
            track_id: seen.name(inp, &seen.tracks),
            mid: inp.string(),
        },
        3 => MediaEvent::Unsubscribed {
            track_id: seen.name(inp, &seen.tracks),
        },
        4 => MediaEvent::Timeout,
        _ => MediaEvent::Error {
            message: inp.string(),
        },
    }
}

/// The signaling server's per-connection state machine, several
/// connections at once, through `signaling::server::fuzzing`: joins (with
/// real, wrong or missing tokens, resumes), every client message with
/// fuzzed fields, raw text frames, media events, lost connections, grace
/// expiry, join timeouts, media refusal and shutdown. Queues are kept small
/// so overflow paths run.
///
/// Checks: no panic, and everything the server writes is a message the
/// protocol's own decoder reads back.
pub fn signaling_session(data: &[u8]) {
    let mut inp = Input::new(data);
    let mut cfg = SignalingConfig::default();
    cfg.outbound_queue = 1 + usize::from(inp.u8() % 16);
    cfg.resume_buffer = 1 + usize::from(inp.u8() % 16);
    cfg.mls_log_max_entries = 1 + usize::from(inp.u8() % 32);
    cfg.mls_log_max_bytes = 256 + usize::from(inp.u16());
    cfg.max_participants_per_room = 1 + usize::from(inp.u8() % 4);
    cfg.max_tracks_per_participant = 1 + usize::from(inp.u8() % 4);
    if inp.bool() {
        cfg.resume_grace = Duration::ZERO;
    }
    let mut h = SessionHarness::new(cfg);
    let mut seen = Seen::default();
    let mut read = 0;
    for _ in 0..MAX_STEPS {
        if inp.is_empty() {
            break;
        }
        let op = inp.u8();
        let c = usize::from(inp.u8()) % h.connections().max(1);
        match op % 12 {
            0 if h.connections() < MAX_CONNS => {
                let url_room = inp.bool().then(|| pick(&mut inp, &ROOMS).to_string());
                h.connect(url_room);
            }
            0 | 1 => {
                let m = join(&mut inp, &seen);
                h.text(c, &serde_json::to_string(&m).expect("encode"));
            }
            2..=5 => {
                let m = message(&mut inp, &seen);
                h.text(c, &serde_json::to_string(&m).expect("encode"));
            }
            6 => h.text(c, &String::from_utf8_lossy(inp.short())),
            7 => {
                let ev = media_event(&mut inp, &seen);
                h.media_event(c, ev);
            }
            8 => h.media_gone(c),
            9 => h.lose(c),
            10 => match inp.u8() % 4 {
                0 => h.grace_expired(c),
                1 => h.join_timeout(c),
                2 => h.set_media_refusing(inp.bool()),
                _ => h.shutdown(),
            },
            _ => h.pump(),
        }
        for (conn, text) in &h.written[read..] {
            seen.learn(*conn, text);
        }
        read = h.written.len();
    }
}
