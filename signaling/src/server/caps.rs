//! Size caps per message type, checked once when a client message is
//! dispatched, before any other work. The frame limit
//! ([`SignalingConfig::max_message_bytes`](super::SignalingConfig)) bounds
//! what is parsed at all; these bound what each kind of message may carry,
//! so that nobody can send (and have relayed to a whole room) the largest
//! frame as a KeyPackage or a chat message.

use crate::proto::{ClientMessage, IceCandidate, TrackPublish};

/// The largest value of each field kind a client may send, in bytes (of
/// the decoded JSON string: base64 for MLS payloads, as sent). A message
/// over a cap gets `error{too_large}`; the connection stays open.
///
/// The defaults leave headroom over what real clients send (measured with
/// this workspace's client SDK and Chromium's SDP; see
/// `docs/operations.md`, "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SizeCaps {
    /// An SDP offer or answer. Default 256 KiB, the media plane's own
    /// SDP cap (Chromium's offer for 20 simulcast video m-lines is about
    /// 78 KB; 128 m-lines, the media plane's limit, need more).
    pub sdp: usize,
    /// An ICE candidate line plus its mid. Default 1 KiB.
    pub candidate: usize,
    /// A KeyPackage. Default 16 KiB (the client SDK's are 376 bytes).
    pub key_package: usize,
    /// An MLS commit. Default 256 KiB (one adding a member is 624 bytes;
    /// one adding about 650 at once fits).
    pub commit: usize,
    /// An MLS Welcome (it carries the ratchet tree: the largest MLS
    /// message). Default 448 KiB (into a 1000-member group: 242 KB for one
    /// newcomer, 399 KB when all joined at once).
    pub welcome: usize,
    /// An MLS application (chat) message. Default 64 KiB.
    pub application: usize,
    /// A name: cid, mid, codec, rid, track or participant id, resume
    /// token. Default 64 bytes.
    pub name: usize,
}

impl Default for SizeCaps {
    fn default() -> Self {
        Self {
            sdp: 256 * 1024,
            candidate: 1024,
            key_package: 16 * 1024,
            commit: 256 * 1024,
            welcome: 448 * 1024,
            application: 64 * 1024,
            name: 64,
        }
    }
}

impl SizeCaps {
    /// Sets [`Self::sdp`].
    pub fn with_sdp(mut self, bytes: usize) -> Self {
        self.sdp = bytes;
        self
    }
    /// Sets [`Self::candidate`].
    pub fn with_candidate(mut self, bytes: usize) -> Self {
        self.candidate = bytes;
        self
    }
    /// Sets [`Self::key_package`].
    pub fn with_key_package(mut self, bytes: usize) -> Self {
        self.key_package = bytes;
        self
    }
    /// Sets [`Self::commit`].
    pub fn with_commit(mut self, bytes: usize) -> Self {
        self.commit = bytes;
        self
    }
    /// Sets [`Self::welcome`].
    pub fn with_welcome(mut self, bytes: usize) -> Self {
        self.welcome = bytes;
        self
    }
    /// Sets [`Self::application`].
    pub fn with_application(mut self, bytes: usize) -> Self {
        self.application = bytes;
        self
    }
    /// Sets [`Self::name`].
    pub fn with_name(mut self, bytes: usize) -> Self {
        self.name = bytes;
        self
    }
}

/// What kind of field a cap applies to; also the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Sdp,
    Candidate,
    KeyPackage,
    Commit,
    Welcome,
    Application,
    Name,
}

impl Field {
    /// Every field kind with its label, in a stable order.
    pub(crate) const ALL: [(Field, &'static str); 7] = [
        (Field::Sdp, "sdp"),
        (Field::Candidate, "candidate"),
        (Field::KeyPackage, "key_package"),
        (Field::Commit, "commit"),
        (Field::Welcome, "welcome"),
        (Field::Application, "application"),
        (Field::Name, "name"),
    ];

    /// Its slot in [`Field::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            Field::Sdp => 0,
            Field::Candidate => 1,
            Field::KeyPackage => 2,
            Field::Commit => 3,
            Field::Welcome => 4,
            Field::Application => 5,
            Field::Name => 6,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        Field::ALL[self.index()].1
    }
}

/// A field over its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Oversize {
    pub(crate) field: Field,
    pub(crate) len: usize,
    pub(crate) cap: usize,
}

impl SizeCaps {
    fn cap(&self, field: Field) -> usize {
        match field {
            Field::Sdp => self.sdp,
            Field::Candidate => self.candidate,
            Field::KeyPackage => self.key_package,
            Field::Commit => self.commit,
            Field::Welcome => self.welcome,
            Field::Application => self.application,
            Field::Name => self.name,
        }
    }

    fn field(&self, field: Field, len: usize) -> Result<(), Oversize> {
        let cap = self.cap(field);
        if len > cap {
            Err(Oversize { field, len, cap })
        } else {
            Ok(())
        }
    }

    fn names<'a>(&self, names: impl IntoIterator<Item = &'a String>) -> Result<(), Oversize> {
        names
            .into_iter()
            .try_for_each(|n| self.field(Field::Name, n.len()))
    }

    fn candidate(&self, c: &IceCandidate) -> Result<(), Oversize> {
        let mid = c.sdp_mid.as_ref().map_or(0, String::len);
        self.field(Field::Candidate, c.candidate.len().saturating_add(mid))
    }

    fn track(&self, t: &TrackPublish) -> Result<(), Oversize> {
        self.names([&t.cid, &t.mid, &t.codec])?;
        self.names(&t.simulcast)
    }

    /// The first field of `msg` over its cap, if any; otherwise, for a
    /// message the room relays to every member, the bytes of its payload.
    /// The join token is left to the token checks (which cap its claims).
    pub(crate) fn check(&self, msg: &ClientMessage) -> Result<Option<usize>, Oversize> {
        let relayed = |len: usize| Some(len);
        match msg {
            ClientMessage::MlsKeyPackage { key_package } => self
                .field(Field::KeyPackage, key_package.len())
                .map(|()| relayed(key_package.len())),
            ClientMessage::MlsCommit {
                commit,
                welcome,
                added,
                removed,
                ..
            } => {
                let welcome = welcome.as_ref().map_or(0, String::len);
                self.field(Field::Commit, commit.len())?;
                self.field(Field::Welcome, welcome)?;
                self.names(added.iter().chain(removed))?;
                let ids: usize = added.iter().chain(removed).map(|p| p.len() + 3).sum();
                Ok(relayed(commit.len() + welcome + ids))
            }
            ClientMessage::MlsApplication { message, .. } => self
                .field(Field::Application, message.len())
                .map(|()| relayed(message.len())),
            other => self.check_unrelayed(other).map(|()| None),
        }
    }

    fn check_unrelayed(&self, msg: &ClientMessage) -> Result<(), Oversize> {
        match msg {
            ClientMessage::Join {
                resume: Some(r), ..
            } => self.names([&r.participant_id, &r.resume_token]),
            ClientMessage::Offer { sdp, .. } | ClientMessage::Answer { sdp, .. } => {
                self.field(Field::Sdp, sdp.len())
            }
            ClientMessage::Candidate { candidate, .. } => self.candidate(candidate),
            ClientMessage::Publish { track } => self.track(track),
            ClientMessage::Unpublish { cid } | ClientMessage::Mute { cid, .. } => self.names([cid]),
            ClientMessage::Subscribe { track_id }
            | ClientMessage::Unsubscribe { track_id }
            | ClientMessage::TrackSettings { track_id, .. } => self.names([track_id]),
            // Fixed-size messages, the relayed ones (checked above), and
            // any later ones (still under the frame limit).
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{MAX_MESSAGE_BYTES, Target, TrackKind};

    /// One simulcast video m-section of a Chromium offer
    /// (`addTransceiver("video", {sendEncodings: [hi, lo]})`).
    const CHROME_VIDEO_SECTION: &str = include_str!("testdata/chrome_video_section.sdp");

    #[test]
    fn labels_match_slots() {
        for (i, (f, _)) in Field::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }

    #[test]
    fn a_chromium_offer_of_twenty_m_lines_fits_with_headroom() {
        let mut sdp = String::from("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
        for mid in 0..20 {
            sdp.push_str(&CHROME_VIDEO_SECTION.replace("a=mid:0", &format!("a=mid:{mid}")));
        }
        let caps = SizeCaps::default();
        assert!(sdp.len() > 70_000, "{}", sdp.len());
        assert!(
            sdp.len() * 3 / 2 < caps.sdp,
            "{} vs {}",
            sdp.len(),
            caps.sdp
        );
        let offer = ClientMessage::Offer {
            target: Target::Publisher,
            sdp,
        };
        assert_eq!(caps.check(&offer), Ok(None));
        // The whole message, JSON-escaped, still fits in a frame.
        assert!(serde_json::to_string(&offer).unwrap_or_default().len() < MAX_MESSAGE_BYTES);
    }

    #[test]
    fn each_field_is_capped() {
        let caps = SizeCaps {
            name: 4,
            key_package: 8,
            ..SizeCaps::default()
        };
        let kp = |n| ClientMessage::MlsKeyPackage {
            key_package: "A".repeat(n),
        };
        assert_eq!(caps.check(&kp(8)), Ok(Some(8)));
        assert_eq!(
            caps.check(&kp(9)),
            Err(Oversize {
                field: Field::KeyPackage,
                len: 9,
                cap: 8
            })
        );
        let track = TrackPublish::new("abcde", "0", TrackKind::Audio, "opus");
        assert_eq!(
            caps.check(&ClientMessage::Publish { track })
                .map_err(|o| o.field),
            Err(Field::Name)
        );
        let commit = ClientMessage::MlsCommit {
            epoch: 0,
            commit: "Yw==".into(),
            welcome: Some("A".repeat(caps.welcome + 1)),
            added: vec![],
            removed: vec![],
        };
        assert_eq!(
            caps.check(&commit).map_err(|o| o.field),
            Err(Field::Welcome)
        );
        let commit = ClientMessage::MlsCommit {
            epoch: 0,
            commit: "Yw==".into(),
            welcome: None,
            added: vec!["p1".into()],
            removed: vec!["too-long".into()],
        };
        assert_eq!(caps.check(&commit).map_err(|o| o.field), Err(Field::Name));
        let cand = ClientMessage::Candidate {
            target: Target::Publisher,
            candidate: IceCandidate {
                candidate: "c".repeat(caps.candidate),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: None,
            },
        };
        assert_eq!(
            caps.check(&cand).map_err(|o| o.field),
            Err(Field::Candidate)
        );
        assert_eq!(caps.check(&ClientMessage::Ping { ts: 1 }), Ok(None));
    }
}
