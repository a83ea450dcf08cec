//! Two engines in one group, with the server's log played by a relay that
//! numbers every MLS message the way the signaling server does.

use super::*;
use serde_json::{Value, json};
use signaling::proto::{ClientMessage, MlsEntry};

/// A VP8 keyframe: frame tag (P bit 0), start code, 640x360, payload.
const VP8_KEY: [u8; 14] = [
    0x50, 0x2d, 0x01, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 0xaa, 0xbb, 0xcc, 0xdd,
];

/// The relay delivers everything at one instant and never lets time pass,
/// so joins are committed at once (pacing has its own tests in
/// `client-core`).
const UNPACED: &str = r#"{"joinPacingMs":0}"#;

fn joined(pid: &str, others: &[(&str, &str)], founder: bool) -> String {
    let participants: Vec<Value> = others
        .iter()
        .map(|(p, id)| json!({"participant_id": p, "identity": id, "name": id, "tracks": []}))
        .collect();
    json!({
        "type": "joined", "protocol": 1, "participant_id": pid,
        "room": {"room": "r", "participants": participants},
        "auto_subscribe": true,
        "mls": {"group_id": "5eed", "epoch": 0, "seq": 0, "founder": founder},
    })
    .to_string()
}

/// The delivery log: every member gets every entry, in one order.
struct Relay {
    seq: u64,
    members: Vec<(String, EngineCore)>,
    outputs: Vec<Vec<Value>>,
}

impl Relay {
    fn new() -> Self {
        Self {
            seq: 0,
            members: Vec::new(),
            outputs: Vec::new(),
        }
    }

    fn join(&mut self, pid: &str, identity: &str) {
        let others: Vec<(String, String)> = self
            .members
            .iter()
            .map(|(p, e)| (p.clone(), e.identity.clone()))
            .collect();
        let others: Vec<(&str, &str)> = others
            .iter()
            .map(|(p, i)| (p.as_str(), i.as_str()))
            .collect();
        let mut engine = EngineCore::new(identity, UNPACED).unwrap();
        let founder = self.members.is_empty();
        engine
            .start(Instant::now(), &joined(pid, &others, founder))
            .unwrap();
        let announce = json!({"type": "participant_joined", "participant": {
            "participant_id": pid, "identity": identity, "name": identity, "tracks": []}})
        .to_string();
        for (_, e) in &mut self.members {
            e.server_message(Instant::now(), &announce).unwrap();
        }
        self.members.push((pid.to_owned(), engine));
        self.outputs.push(Vec::new());
        self.pump();
    }

    /// Delivers until nobody has anything more to send.
    fn pump(&mut self) {
        loop {
            let mut entries = Vec::new();
            for (i, (pid, engine)) in self.members.iter_mut().enumerate() {
                while let Some(out) = engine.poll() {
                    let out: Value = serde_json::from_str(&out).unwrap();
                    if out["type"] == "send" {
                        let message: ClientMessage =
                            serde_json::from_value(out["message"].clone()).unwrap();
                        entries.extend(to_entry(pid, message));
                    } else {
                        self.outputs[i].push(out);
                    }
                }
            }
            if entries.is_empty() {
                return;
            }
            for entry in entries {
                self.seq += 1;
                let message = serde_json::to_string(&ServerMessage::Mls {
                    seq: self.seq,
                    entry,
                })
                .unwrap();
                for (_, engine) in &mut self.members {
                    engine.server_message(Instant::now(), &message).unwrap();
                }
            }
        }
    }

    fn last(&self, i: usize, kind: &str) -> Option<&Value> {
        self.outputs[i].iter().rev().find(|o| o["type"] == kind)
    }
}

fn to_entry(pid: &str, message: ClientMessage) -> Option<MlsEntry> {
    let participant_id = pid.to_owned();
    match message {
        ClientMessage::MlsKeyPackage { key_package } => Some(MlsEntry::KeyPackage {
            participant_id,
            key_package,
        }),
        ClientMessage::MlsCommit {
            epoch,
            commit,
            welcome,
            ..
        } => Some(MlsEntry::Commit {
            participant_id,
            epoch,
            commit,
            // Two members: a commit with a Welcome adds the second.
            added: welcome.iter().map(|_| "PB".to_owned()).collect(),
            welcome,
            removed: Vec::new(),
        }),
        ClientMessage::MlsApplication { epoch, message } => Some(MlsEntry::Application {
            participant_id,
            epoch,
            message,
        }),
        _ => None,
    }
}

fn two_members() -> Relay {
    let mut relay = Relay::new();
    relay.join("PA", "alice");
    relay.join("PB", "bob");
    relay
}

#[test]
fn two_engines_agree_on_the_epoch_and_exchange_media() {
    let mut relay = two_members();
    let (a, b) = (
        relay.last(0, "epoch").unwrap(),
        relay.last(1, "epoch").unwrap(),
    );
    assert_eq!(a["epoch"], 1);
    assert_eq!(a["epoch"], b["epoch"]);
    assert_eq!(a["verificationCode"], b["verificationCode"]);
    assert_eq!(a["roster"].as_array().unwrap().len(), 2);
    assert!(
        !a.to_string().contains("baseKey") && !a.to_string().contains("base_key"),
        "no key leaves the engine"
    );

    let now = Instant::now();
    let wire = relay.members[0]
        .1
        .encrypt("VP8", &VP8_KEY)
        .unwrap()
        .unwrap();
    assert_eq!(
        wire[..10],
        VP8_KEY[..10],
        "the packetizer's prefix stays clear"
    );
    assert!(
        !wire.windows(4).any(|w| w == &VP8_KEY[10..]),
        "payload hidden"
    );
    let bob = &mut relay.members[1].1;
    let opened = bob.decrypt(now, "vp8", "PA", 1, &wire).unwrap();
    assert_eq!(opened.as_deref(), Some(&VP8_KEY[..]));
    assert_eq!(bob.failures(), FailureCounts::default());

    // The same frame on bob's own track: opened, but not his.
    let again = relay.members[0]
        .1
        .encrypt("VP8", &VP8_KEY)
        .unwrap()
        .unwrap();
    let bob = &mut relay.members[1].1;
    assert_eq!(bob.decrypt(now, "VP8", "PB", 2, &again).unwrap(), None);
    assert_eq!(bob.failures().wrong_sender, 1);
}

#[test]
fn chat_arrives_in_one_order_everywhere() {
    let mut relay = two_members();
    let now = Instant::now();
    relay.members[0].1.send_chat(now, "from alice").unwrap();
    relay.members[1].1.send_chat(now, "from bob").unwrap();
    relay.pump();
    let chats = |i: usize| -> Vec<(String, String)> {
        relay.outputs[i]
            .iter()
            .filter(|o| o["type"] == "chat")
            .map(|o| (o["from"].to_string(), o["text"].to_string()))
            .collect()
    };
    assert_eq!(chats(0).len(), 2);
    assert_eq!(chats(0), chats(1));
}

#[test]
fn a_frame_waiting_for_its_epoch_is_released_by_handle() {
    let mut relay = Relay::new();
    relay.join("PA", "alice");
    // Bob is not in the group yet; alice's epoch-1 frame reaches him first.
    let mut bob = EngineCore::new("bob", UNPACED).unwrap();
    bob.start(Instant::now(), &joined("PB", &[("PA", "alice")], false))
        .unwrap();
    relay.members.push(("PB".into(), bob));
    relay.outputs.push(Vec::new());
    let announce = json!({"type": "participant_joined", "participant": {
        "participant_id": "PB", "identity": "bob", "name": "bob", "tracks": []}})
    .to_string();
    relay.members[0]
        .1
        .server_message(Instant::now(), &announce)
        .unwrap();
    // Deliver bob's KeyPackage and alice's commit to alice only.
    let mut held = Vec::new();
    loop {
        let mut sent = Vec::new();
        for (pid, engine) in relay.members.iter_mut() {
            while let Some(out) = engine.poll() {
                let out: Value = serde_json::from_str(&out).unwrap();
                if out["type"] == "send" {
                    let m: ClientMessage = serde_json::from_value(out["message"].clone()).unwrap();
                    sent.extend(to_entry(pid, m));
                }
            }
        }
        if sent.is_empty() {
            break;
        }
        for entry in sent {
            relay.seq += 1;
            let m = serde_json::to_string(&ServerMessage::Mls {
                seq: relay.seq,
                entry,
            })
            .unwrap();
            relay.members[0]
                .1
                .server_message(Instant::now(), &m)
                .unwrap();
            held.push(m);
        }
    }
    let wire = relay.members[0]
        .1
        .encrypt("opus", b"hello")
        .unwrap()
        .unwrap();
    let bob = &mut relay.members[1].1;
    assert_eq!(
        bob.decrypt(Instant::now(), "opus", "PA", 7, &wire).unwrap(),
        None
    );
    for m in &held {
        bob.server_message(Instant::now(), m).unwrap();
    }
    let released = bob
        .take_released()
        .expect("the frame opened once bob joined");
    assert_eq!(
        (released.handle, released.data.as_slice()),
        (7, &b"hello"[..])
    );
}

#[test]
fn hostile_input_is_an_error_never_a_panic() {
    assert!(matches!(
        EngineCore::new("eve", "{\"nope\": 1}"),
        Err(EngineError::Config(_))
    ));
    let mut e = EngineCore::new("eve", "").unwrap();
    let now = Instant::now();
    assert!(matches!(
        e.server_message(now, "{\"type\":\"mls\",\"seq\":1}"),
        Err(EngineError::Message(_))
    ));
    assert!(matches!(
        e.send_chat(now, "hi"),
        Err(EngineError::NotStarted)
    ));
    assert_eq!(e.encrypt("opus", b"x").unwrap(), None, "no key, no frame");
    assert!(matches!(
        e.encrypt("H264", b"x"),
        Err(EngineError::Codec(_))
    ));
    assert!(matches!(
        e.start(now, "{\"type\":\"pong\",\"ts\":1}"),
        Err(EngineError::NotJoined)
    ));
    e.start(now, &joined("PE", &[], true)).unwrap();
    for junk in [&[][..], &[0xff; 3][..], &[0x00; 40][..], &VP8_KEY[..]] {
        assert_eq!(e.decrypt(now, "VP8", "PX", 1, junk).unwrap(), None);
    }
    let f = e.failures();
    assert!(f.malformed + f.auth_failed + f.unknown_kid > 0, "{f:?}");
    // An MLS entry with garbage in it is handled by the coordinator.
    let junk = json!({"type": "mls", "seq": 1, "entry": {"kind": "commit",
        "participant_id": "PX", "epoch": 0, "commit": "!!", "welcome": null,
        "added": [], "removed": []}});
    e.server_message(now, &junk.to_string()).unwrap();
    assert!(matches!(
        e.send_chat(now, &"x".repeat(client_core::MAX_CHAT_BYTES + 1)),
        Err(EngineError::ChatTooLong(_))
    ));
}

/// Media can overtake the roster change that names a track's publisher:
/// the frame waits (so the worker keeps it by handle) and comes out of
/// `take_released` once the roster names the publisher.
#[test]
fn a_frame_ahead_of_its_publishers_identity_is_released_by_handle() {
    let mut relay = two_members();
    let now = Instant::now();
    let wire = relay.members[0]
        .1
        .encrypt("VP8", &VP8_KEY)
        .unwrap()
        .unwrap();
    let bob = &mut relay.members[1].1;
    // Alice's new session, which bob has not heard of yet.
    assert_eq!(bob.decrypt(now, "VP8", "PA2", 7, &wire).unwrap(), None);
    assert!(bob.last_waits());
    let announce = json!({"type": "participant_joined", "participant": {
        "participant_id": "PA2", "identity": "alice", "name": "alice", "tracks": []}})
    .to_string();
    bob.server_message(now, &announce).unwrap();
    let released = bob.take_released().expect("released");
    assert_eq!(
        (released.handle, released.data.as_slice()),
        (7, &VP8_KEY[..])
    );
    assert_eq!(bob.failures(), FailureCounts::default());
}
