//! The registry's unit tests, and the test doubles other server modules'
//! tests share (a recording media sink, joined participants).

use super::*;
use crate::proto::TrackKind;
use crate::server::outbox::Signal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Default)]
pub(crate) struct Media {
    refuse: AtomicBool,
    leaves: Mutex<Vec<String>>,
    /// Subscribers that hear `subscribed` for a track the instant it is
    /// published, as from a media plane faster than signaling.
    instant_subscribers: Mutex<Vec<Outbox>>,
}

impl MediaSink for Media {
    fn command(&self, request: MediaRequest) -> bool {
        match &request.command {
            MediaCommand::Leave { participant } => {
                self.leaves.lock().unwrap().push(participant.clone());
            }
            MediaCommand::Publish { track_id, .. } => {
                for outbox in self.instant_subscribers.lock().unwrap().iter() {
                    outbox.send(Queued::Media(sfu_core::MediaEvent::Subscribed {
                        track_id: track_id.clone(),
                        mid: "1".into(),
                    }));
                }
            }
            _ => {}
        }
        !self.refuse.load(Ordering::Relaxed)
    }
}

pub(crate) const LIMITS: LogLimits = LogLimits {
    max_entries: 64,
    max_bytes: 1 << 20,
};

pub(crate) fn setup() -> (Arc<Rooms>, Arc<Media>, Arc<Metrics>) {
    setup_with(std::time::Duration::from_secs(3600))
}

/// A registry whose MLS founders have `founder_timeout`.
pub(crate) fn setup_with(
    founder_timeout: std::time::Duration,
) -> (Arc<Rooms>, Arc<Media>, Arc<Metrics>) {
    setup_full(founder_timeout, RoomCaps::default())
}

/// A registry with `caps` (and founders that never time out).
pub(crate) fn setup_caps(caps: RoomCaps) -> (Arc<Rooms>, Arc<Media>, Arc<Metrics>) {
    setup_full(std::time::Duration::from_secs(3600), caps)
}

fn setup_full(
    founder_timeout: std::time::Duration,
    caps: RoomCaps,
) -> (Arc<Rooms>, Arc<Media>, Arc<Metrics>) {
    let media = Arc::new(Media::default());
    let metrics = Arc::new(Metrics::default());
    (
        Rooms::new(
            media.clone(),
            metrics.clone(),
            LIMITS,
            founder_timeout,
            caps,
        ),
        media,
        metrics,
    )
}

pub(crate) fn req(identity: &str, outbox: Outbox) -> JoinRequest {
    JoinRequest {
        room: "r".into(),
        identity: identity.into(),
        name: identity.into(),
        grants: Grants::default(),
        auto_subscribe: true,
        max_participants: 10,
        outbox,
        events: tokio::sync::mpsc::channel(1).0,
        addr: None,
    }
}

/// A joined participant: its id, outbox, connection signal and the
/// join answer.
pub(crate) struct Joiner {
    pub(crate) pid: String,
    pub(crate) outbox: Outbox,
    pub(crate) sig: Arc<Signal>,
    pub(crate) joined: Joined,
}

pub(crate) fn join_with(rooms: &Rooms, identity: &str, depth: usize) -> Joiner {
    let sig = Signal::new();
    let outbox = Outbox::new(sig.clone(), depth);
    let joined = rooms.join(req(identity, outbox.clone())).unwrap();
    Joiner {
        pid: joined.participant_id.clone(),
        outbox,
        sig,
        joined,
    }
}

/// A valid KeyPackage (base64) for token identity `identity`.
pub(crate) fn key_package(identity: &str) -> String {
    use base64::Engine as _;
    let mut c = e2ee::group::MlsClient::new(identity, e2ee::group::MlsConfig::default()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(c.key_package().unwrap())
}

/// Everything queued for `j` right now.
pub(crate) async fn drain(j: &Joiner) -> Vec<Queued> {
    let mut v = Vec::new();
    while let Ok(q) =
        tokio::time::timeout(std::time::Duration::from_millis(5), j.outbox.recv(&j.sig)).await
    {
        v.push(q);
    }
    v
}

#[tokio::test]
async fn a_full_outbox_kicks_the_slow_consumer() {
    let (rooms, _, _) = setup();
    let a = join_with(&rooms, "a", 8);
    let b = join_with(&rooms, "b", 1);
    // Bob never drains: one event fits, the second overflows.
    for cid in ["1", "2"] {
        let t = TrackPublish::new(cid, cid, TrackKind::Audio, "opus");
        rooms.publish("r", &a.pid, t, 8).unwrap();
    }
    assert_eq!(b.sig.kicked().await, Kick::Leave(LeaveReason::Disconnected));
}

#[tokio::test]
async fn a_track_is_announced_before_anyone_is_subscribed_to_it() {
    let (rooms, media, _) = setup();
    let a = join_with(&rooms, "a", 8);
    let b = join_with(&rooms, "b", 8);
    drain(&b).await;
    media
        .instant_subscribers
        .lock()
        .unwrap()
        .push(b.outbox.clone());
    let t = TrackPublish::new("cam", "0", TrackKind::Video, "VP8");
    let info = rooms.publish("r", &a.pid, t, 8).unwrap();
    let order: Vec<&str> = drain(&b)
        .await
        .iter()
        .filter_map(|q| match q {
            Queued::Msg(ServerMessage::TrackPublished { track })
                if track.track_id == info.track_id =>
            {
                Some("published")
            }
            Queued::Media(sfu_core::MediaEvent::Subscribed { track_id, .. })
                if *track_id == info.track_id =>
            {
                Some("subscribed")
            }
            _ => None,
        })
        .collect();
    assert_eq!(order, ["published", "subscribed"]);
}

#[tokio::test]
async fn a_track_the_media_plane_refuses_is_withdrawn() {
    let (rooms, media, _) = setup();
    let a = join_with(&rooms, "a", 8);
    let b = join_with(&rooms, "b", 8);
    drain(&b).await;
    media.refuse.store(true, Ordering::Relaxed);
    let t = TrackPublish::new("cam", "0", TrackKind::Video, "VP8");
    assert_eq!(
        rooms.publish("r", &a.pid, t, 8).map(|_| ()),
        Err(RoomError::MediaUnavailable)
    );
    let heard = drain(&b).await;
    assert!(matches!(
        heard.as_slice(),
        [
            Queued::Msg(ServerMessage::TrackPublished { track }),
            Queued::Msg(ServerMessage::TrackUnpublished { track_id, .. }),
        ] if track.track_id == *track_id
    ));
    assert!(
        rooms
            .participants("r")
            .unwrap()
            .iter()
            .all(|p| p.tracks.is_empty())
    );
}

#[test]
fn every_removal_path_removes_once() {
    let (rooms, media, _) = setup();
    let a = join_with(&rooms, "a", 8);
    let b = join_with(&rooms, "b", 8);
    let c = join_with(&rooms, "c", 8);
    let (a_id, b_id) = (a.pid.clone(), b.pid.clone());

    rooms.remove("r", &a.pid).unwrap();
    assert_eq!(rooms.remove("r", &a.pid), Err(RoomError::NotFound));
    assert!(!rooms.leave("r", &a.pid, a.sig.id(), LeaveReason::Disconnected));
    // Only the connection that reads the outbox may leave for it.
    assert!(!rooms.leave("r", &b.pid, a.sig.id(), LeaveReason::Left));
    assert!(rooms.leave("r", &b.pid, b.sig.id(), LeaveReason::Left));
    assert!(!rooms.leave("r", &b.pid, b.sig.id(), LeaveReason::Left));
    assert_eq!(rooms.close("r"), Ok(1));
    assert!(!rooms.leave("r", &c.pid, c.sig.id(), LeaveReason::Disconnected));
    assert_eq!(rooms.close("r"), Err(RoomError::NoRoom));
    assert_eq!(
        *media.leaves.lock().unwrap(),
        vec![a_id.clone(), b_id, c.pid.clone()]
    );
    assert_eq!(rooms.counts(), Counts::default());
}

#[tokio::test]
async fn others_hear_a_removal_exactly_once() {
    let (rooms, _, _) = setup();
    let a = join_with(&rooms, "a", 8);
    let b = join_with(&rooms, "b", 8);
    rooms.remove("r", &a.pid).unwrap();
    assert!(!rooms.leave("r", &a.pid, a.sig.id(), LeaveReason::Disconnected));
    let _ = rooms.remove("r", &a.pid);
    let left = drain(&b)
        .await
        .into_iter()
        .filter(|q| {
            matches!(q, Queued::Msg(ServerMessage::ParticipantLeft { participant_id, .. })
                if *participant_id == a.pid)
        })
        .count();
    assert_eq!(left, 1);
}

#[test]
fn a_refused_join_leaves_no_trace() {
    let (rooms, media, metrics) = setup();
    media.refuse.store(true, Ordering::Relaxed);
    let o = Outbox::new(Signal::new(), 8);
    assert_eq!(
        rooms.join(req("a", o)).map(|_| ()),
        Err(RoomError::MediaUnavailable)
    );
    assert_eq!(rooms.counts(), Counts::default());
    assert!(rooms.list().is_empty());
    let mut s = String::new();
    metrics.render(Default::default(), &mut s);
    assert!(s.contains("sfu_joins_total 0"));
}

#[test]
fn commands_for_a_removed_participant_are_not_sent() {
    let (rooms, _, _) = setup();
    let a = join_with(&rooms, "a", 8);
    let _keep_room = join_with(&rooms, "b", 8);
    rooms.remove("r", &a.pid).unwrap();
    let cmd = MediaCommand::PublisherOffer {
        participant: a.pid.clone(),
        sdp: String::new().into(),
    };
    assert_eq!(rooms.command("r", &a.pid, cmd), Err(RoomError::Gone));
    let t = TrackPublish::new("x", "0", TrackKind::Video, "VP8");
    assert_eq!(
        rooms.publish("r", &a.pid, t, 8).map(|_| ()),
        Err(RoomError::Gone)
    );
}
