//! Writes the seed corpus: `cargo run -p fuzz-harness --example seeds`.
//!
//! Seeds are real traffic where there is any (datagrams captured from the
//! media plane and str0m peers on virtual time, a real SDP offer, minted
//! tokens, messages the server wrote), the RFC 9605 test vectors, and
//! scripts for the structured targets. Existing files are overwritten;
//! files found by fuzzing (`crash-*`, `regress-*`) are left alone.

use e2ee::frame::{FrameEncryptor, Suite, packetize};
use fuzz_harness::input::Script;
use fuzz_harness::rig;
use fuzz_harness::session::sign_raw;
use signaling::proto::{
    ClientMessage, IceCandidate, PROTOCOL_VERSION, Resume, Target, TrackKind, TrackPublish,
};
use signaling::server::SignalingConfig;
use signaling::server::fuzzing::SessionHarness;
use signaling::token::{Grants, TokenKeys};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use str0m::media::MediaKind;
use testkit::peer::LeanPeer;
use testkit::plane_world::World;

fn dir(target: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(target);
    std::fs::create_dir_all(&d).expect("mkdir");
    d
}

fn put(target: &str, name: &str, data: &[u8]) {
    std::fs::write(dir(target).join(name), data).expect("write seed");
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Real datagrams of a call: STUN, DTLS and SRTP, both ways.
fn captured() -> Vec<Vec<u8>> {
    let mut world = World::new(7);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut counts = [0usize; 4];
    let mut tap = |d: &testkit::netem::Datagram| {
        let class = match d.contents.first() {
            Some(0..=3) => 0,
            Some(20..=63) => 1,
            Some(128..=191) => 2,
            _ => 3,
        };
        if counts[class] < 12 {
            counts[class] += 1;
            got.push(d.contents.clone());
        }
        true
    };
    rig::honest_pair(&mut world, "seed", &mut tap);
    let mid = world.video_mid(0);
    for n in 0..20u32 {
        let now = world.now;
        world.clients[0]
            .publisher
            .send_rtp(now, mid, n * 3000, true, &[0x42; 64]);
        world.clients[0].publisher.poll(now);
        world.flush();
        rig::run_tapped(&mut world, Duration::from_millis(30), &mut tap);
    }
    got
}

fn stun_with_username(first: u8, user: &[u8]) -> Vec<u8> {
    let mut attrs = vec![0x80, 0x22, 0x00, 0x03, b'a', b'b', b'c', 0];
    attrs.extend_from_slice(&[0x00, 0x06]);
    attrs.extend_from_slice(&(user.len() as u16).to_be_bytes());
    attrs.extend_from_slice(user);
    while attrs.len() % 4 != 0 {
        attrs.push(0);
    }
    let mut m = vec![first, 0x01];
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
    m.extend_from_slice(&[7; 12]);
    m.extend_from_slice(&attrs);
    m
}

fn stun_demux(datagrams: &[Vec<u8>]) {
    for (i, d) in datagrams.iter().enumerate() {
        put("stun_demux", &format!("captured-{i:02}"), d);
    }
    put(
        "stun_demux",
        "username",
        &stun_with_username(0, b"srvufrag:cliufrag"),
    );
    put(
        "stun_demux",
        "username-empty-local",
        &stun_with_username(0, b":x"),
    );
    put(
        "stun_demux",
        "username-not-utf8",
        &stun_with_username(0, b"\xff\xfe"),
    );
    put("stun_demux", "empty", b"");
}

fn rtp_dd() {
    for (name, start, end, keyframe) in [
        ("keyframe-start", true, false, true),
        ("keyframe-single", true, true, true),
        ("delta-start", true, false, false),
        ("delta-middle", false, false, false),
        ("delta-end", false, true, false),
    ] {
        let mark = rtp_dd::FrameMark {
            start_of_frame: start,
            end_of_frame: end,
            frame_number: 0x1234,
            keyframe,
        };
        let mut buf = [0u8; rtp_dd::MAX_LEN];
        let n = rtp_dd::write(&mark, &mut buf);
        put("rtp_dd", name, &buf[..n]);
    }
    // Extended descriptors: every flag set, with and without a structure.
    put(
        "rtp_dd",
        "extended-flags",
        &[0x81, 0x00, 0x01, 0x7c, 0xff, 0xff],
    );
    put(
        "rtp_dd",
        "structure-custom",
        &[
            0xc1, 0x00, 0x02, 0xfc, 0x00, 0x3f, 0xff, 0x00, 0x00, 0x80, 0x00,
        ],
    );
    put("rtp_dd", "short", &[0x80, 0x00]);
    // The layered structures' keyframes, and an L3T3 packet that switches
    // the top spatial layer off (what the stateful reader keeps).
    for (name, s) in [
        ("keyframe-l1t3", rtp_dd::Structure::l1t3()),
        ("keyframe-l3t3", rtp_dd::Structure::l3t3()),
    ] {
        let key = rtp_dd::FrameSpec {
            start_of_frame: true,
            end_of_frame: false,
            frame_number: 0x1234,
            template_id: 0,
        };
        let mut buf = [0u8; 255];
        let n = rtp_dd::write_frame(&key, &s, true, None, &mut buf).expect("writes");
        put("rtp_dd", name, &buf[..n]);
    }
    let s = rtp_dd::Structure::l3t3();
    let delta = rtp_dd::FrameSpec {
        start_of_frame: true,
        end_of_frame: true,
        frame_number: 0x1235,
        template_id: s.template_id(6),
    };
    let mut buf = [0u8; 255];
    let n = rtp_dd::write_frame(&delta, &s, false, Some(0x3f), &mut buf).expect("writes");
    put("rtp_dd", "l3t3-mask", &buf[..n]);
}

/// RFC 9605 Appendix C.3 frames, as `sframe_open` input: suite bit,
/// metadata, frame.
fn sframe_open() {
    let metadata = hex("4945544620534672616d65205747");
    for (name, bit, frame) in [
        (
            "rfc9605-aes128gcm",
            0u8,
            "9901234567b7412c2513a1b66dbb48841bbaf17f598751176ad847681a69c6d0b091c07018ce4adb34eb",
        ),
        (
            "rfc9605-aes256gcm",
            1,
            "990123456794f509d36e9beacb0e261d99c7d1e972f1fed787d4049f17ca21353c1cc24d56ceabced279",
        ),
    ] {
        let frame = hex(frame);
        put(
            "sframe_open",
            name,
            &Script::new().u8(bit).short(&metadata).raw(&frame).build(),
        );
        put(
            "sframe_open",
            &format!("{name}-truncated"),
            &Script::new()
                .u8(bit)
                .short(&metadata)
                .raw(&frame[..20])
                .build(),
        );
    }
    for (name, header) in [
        ("header-long-kid-ctr", &[0xff; 17][..]),
        ("header-nonminimal", &[0x09, 0x00, 0xff]),
        ("header-only", &[0x00]),
    ] {
        put(
            "sframe_open",
            name,
            &Script::new().u8(0).short(b"").raw(header).build(),
        );
    }
}

fn sframe_decryptor() {
    let frame = |s: Script, leaf: u8, epoch: u8, text: &[u8], tamper: Option<(u16, u8)>| {
        let s = s.u8(2).u8(leaf).u8(epoch).short(text).u8(1);
        match tamper {
            None => s.bool(false),
            Some((at, x)) => s.bool(true).u16(at).u8(x),
        }
    };
    let head = Script::new().u8(0).u8(8).u16(0x1000).u8(128).u8(3);
    let s = head.clone().u8(0).u8(1);
    let s = frame(s, 1, 1, b"hello", None);
    let s = frame(s, 2, 1, b"from two", None);
    let s = frame(s, 1, 1, b"tampered tag", Some((20, 0x80)));
    let s = frame(s, 1, 1, b"tampered header", Some((0, 0x01)));
    let s = s.u8(3).u16(0); // replay the first
    let s = frame(s, 3, 2, b"epoch ahead, held", None);
    let s = s.u8(0).u8(2); // its key arrives
    let s = frame(s, 1, 1, b"previous epoch in grace", None);
    let s = s.u8(4).u8(200); // 4 s later: grace over
    let s = frame(s, 1, 1, b"previous epoch too late", None);
    let s = frame(s, 2, 9, b"far ahead, expires", None).u8(4).u8(100);
    let s = s.u8(5).u8(0).u8(3);
    let s = frame(s, 1, 3, b"after clear", None);
    let s = s
        .u8(1)
        .short(&[1])
        .long(&[0x99, 0x01, 0x23, 0x45, 0x67, 0, 0, 0]);
    put("sframe_decryptor", "script-lifecycle", &s.build());
    let mut s = head.u8(0).u8(5);
    for i in 0..40u8 {
        s = frame(s, i % 4, 5 + i % 3, &[i; 30], None);
    }
    put("sframe_decryptor", "script-many-senders", &s.build());
}

fn frame_assembler() {
    let mut enc = FrameEncryptor::new(Suite::default(), 1);
    enc.set_epoch(1, &[7; 16]).expect("key");
    let mut wire = Vec::new();
    enc.encrypt(&[0x5a; 900], &[1], &mut wire).expect("encrypt");
    let chunks: Vec<Vec<u8>> = packetize(&wire, 300).map(|c| c.payload.to_vec()).collect();
    let packet = |s: Script, seq: u16, ts: u8, start: bool, end: bool, payload: &[u8]| {
        let head = 0x80 | if start { 0x20 } else { 0 } | if end { 0x10 } else { 0 };
        s.u8(head).u16(seq).u8(ts).short(payload)
    };
    let n = chunks.len();
    let head = Script::new().u16(4096).u8(0);
    let mut inorder = head.clone();
    let mut reversed = head.clone();
    for f in 0..4u16 {
        for (i, c) in chunks.iter().enumerate() {
            let seq = 65530u16.wrapping_add(f * n as u16 + i as u16);
            inorder = packet(
                inorder,
                seq,
                f as u8,
                i == 0,
                i + 1 == n,
                &c[..c.len().min(255)],
            );
        }
        for (i, c) in chunks.iter().enumerate().rev() {
            let seq = 100 + f * n as u16 + i as u16;
            reversed = packet(
                reversed,
                seq,
                f as u8,
                i == 0,
                i + 1 == n,
                &c[..c.len().min(255)],
            );
        }
    }
    put("frame_assembler", "in-order-wrapping", &inorder.build());
    put("frame_assembler", "reversed", &reversed.build());
    let mut lossy = Script::new().u16(600).u8(3);
    for seq in [1u16, 3, 2, 2, 5, 4, 7, 9, 8, 6] {
        lossy = packet(
            lossy,
            seq,
            (seq / 3) as u8,
            seq % 3 == 1,
            seq % 3 == 0,
            &[seq as u8; 200],
        );
    }
    lossy = packet(lossy, 40000, 9, true, true, b"restart");
    put(
        "frame_assembler",
        "lossy-duplicates-restart",
        &lossy.build(),
    );
}

/// A real token for alice in `room`, valid for an hour.
fn alice_token() -> String {
    TokenKeys::development()
        .mint(
            "room",
            "alice",
            "Alice",
            Grants::default(),
            Duration::from_secs(3600),
        )
        .expect("mint")
}

fn token() {
    let t = alice_token();
    put(
        "token",
        "minted",
        &Script::new().u8(0).raw(t.as_bytes()).build(),
    );
    put(
        "token",
        "garbage",
        &Script::new().u8(0).raw(b"a.b.c").build(),
    );
    let claims = |exp: &str, extra: &str| {
        format!(
            r#"{{"iss":"devkey","sub":"alice","exp":{exp},"nbf":0,"room":"room","name":"Alice","grants":{{"publish":true,"subscribe":true,"admin":false}}{extra}}}"#
        )
    };
    for (name, c) in [
        ("claims-valid", claims("4102444800", "")),
        ("claims-exp-max", claims("18446744073709551615", "")),
        ("claims-exp-float", claims("4.1e9", "")),
        (
            "claims-extra-field",
            claims("4102444800", r#","x":[1,2,3]"#),
        ),
        (
            "claims-big-name",
            claims("4102444800", &format!(r#","pad":"{}""#, "n".repeat(4096))),
        ),
        ("claims-expired", claims("1", "")),
        (
            "claims-missing",
            r#"{"iss":"devkey","exp":4102444800}"#.to_string(),
        ),
    ] {
        put(
            "token",
            name,
            &Script::new().u8(1).raw(c.as_bytes()).build(),
        );
    }
    for (name, header) in [
        ("header-none", r#"{"alg":"none"}"#),
        ("header-hs512", r#"{"alg":"HS512","typ":"JWT"}"#),
        ("header-crit", r#"{"alg":"HS256","crit":["exp"],"kid":"k"}"#),
    ] {
        let c = claims("4102444800", "");
        put(
            "token",
            name,
            &Script::new()
                .u8(2)
                .short(header.as_bytes())
                .raw(c.as_bytes())
                .build(),
        );
    }
    // The signing helper is what mode 1 uses; keep one whole token too.
    let whole = sign_raw(br#"{"alg":"HS256"}"#, claims("4102444800", "").as_bytes());
    put(
        "token",
        "signed-whole",
        &Script::new().u8(0).raw(whole.as_bytes()).build(),
    );
}

fn real_offer() -> String {
    let mut peer = LeanPeer::new("127.0.0.1:20000".parse().expect("addr"), Instant::now());
    peer.offer_tracks(&[MediaKind::Audio, MediaKind::Video]).0
}

fn client_messages(sdp: &str) -> Vec<(&'static str, ClientMessage)> {
    let token = alice_token();
    let mut track = TrackPublish::new("cam", "1", TrackKind::Video, "VP8");
    track.simulcast = vec!["f".into(), "h".into()];
    vec![
        (
            "join",
            ClientMessage::Join {
                protocol: PROTOCOL_VERSION,
                token: token.clone(),
                resume: None,
            },
        ),
        (
            "join-resume",
            ClientMessage::Join {
                protocol: PROTOCOL_VERSION,
                token,
                resume: Some(Resume {
                    participant_id: "PA_x".into(),
                    resume_token: "rt".into(),
                    mls_seq: 7,
                }),
            },
        ),
        (
            "offer-real-sdp",
            ClientMessage::Offer {
                target: Target::Publisher,
                sdp: sdp.to_string(),
            },
        ),
        (
            "answer",
            ClientMessage::Answer {
                target: Target::Subscriber,
                sdp: "v=0\r\n".into(),
            },
        ),
        (
            "candidate",
            ClientMessage::Candidate {
                target: Target::Publisher,
                candidate: IceCandidate {
                    candidate: "candidate:1 1 udp 2130706431 127.0.0.1 20000 typ host".into(),
                    sdp_mid: Some("0".into()),
                    sdp_m_line_index: Some(0),
                },
            },
        ),
        ("publish", ClientMessage::Publish { track }),
        ("unpublish", ClientMessage::Unpublish { cid: "cam".into() }),
        (
            "subscribe",
            ClientMessage::Subscribe {
                track_id: "TR_1".into(),
            },
        ),
        (
            "unsubscribe",
            ClientMessage::Unsubscribe {
                track_id: "TR_1".into(),
            },
        ),
        ("leave", ClientMessage::Leave),
        ("ping", ClientMessage::Ping { ts: u64::MAX }),
        (
            "mls-key-package",
            ClientMessage::MlsKeyPackage {
                key_package: "AAEC".into(),
            },
        ),
        (
            "mls-commit",
            ClientMessage::MlsCommit {
                epoch: 3,
                commit: "AAEC".into(),
                welcome: Some("AAED".into()),
                added: vec!["PA_b".into()],
                removed: vec!["PA_c".into()],
            },
        ),
        (
            "mls-application",
            ClientMessage::MlsApplication {
                epoch: 3,
                message: "AAEC".into(),
            },
        ),
    ]
}

/// A session script: two joiners, media, MLS, a lost connection and its
/// resume, then shutdown. Returns the script and what the server wrote.
fn session_script(sdp: &str) -> Vec<u8> {
    let join =
        |s: Script, c: u8, room: u8, ident: u8, bits: u8| s.u8(1).u8(c).u8(room).u8(ident).u8(bits);
    let msg = |s: Script, c: u8, target: bool, kind: u8| s.u8(2).u8(c).bool(target).u8(kind);
    let s = Script::new()
        .u8(16)
        .u8(16)
        .u8(32)
        .u16(0x4000)
        .u8(3)
        .u8(3)
        .bool(false);
    let s = s.u8(0).u8(0).bool(false).u8(0).u8(0).bool(true).u8(0);
    let s = join(s, 0, 0, 0, 0b11);
    let s = join(s, 1, 0, 1, 0b11);
    let s = msg(s, 0, true, 3)
        .bool(true)
        .string("cam")
        .string("1")
        .string("VP8")
        .u8(0)
        .bool(true);
    let s = msg(s, 0, true, 0).long(sdp.as_bytes());
    let s = s.u8(7).u8(0).u8(0).string("v=0\r\n"); // publisher answer event
    let s = msg(s, 1, false, 5).u8(0); // subscribe to the first track seen
    let s = msg(s, 1, false, 8).string("a2V5cGFja2FnZQ");
    let s = msg(s, 0, false, 9)
        .u8(0)
        .string("Y29tbWl0")
        .bool(true)
        .string("d2VsY29tZQ")
        .u8(1)
        .u8(1)
        .u8(0);
    let s = msg(s, 1, false, 10).u8(1).string("Y2hhdA");
    let s = msg(s, 0, false, 11).u64(42);
    let s = s.u8(6).u8(1).string("{\"type\":\"nope\"}");
    let s = s.u8(9).u8(0); // connection 0 lost
    let s = s.u8(0).u8(0).bool(false);
    let s = join(s, 2, 0, 0, 0b1_0011).u8(0).u8(0); // resume as connection 2
    let s = s.u8(7).u8(2).u8(4); // media timeout
    let s = msg(s, 1, false, 6).u8(0);
    let s = msg(s, 1, false, 7);
    let s = s.u8(10).u8(0).u8(3); // shutdown
    s.build()
}

fn signaling(sdp: &str) {
    for (name, m) in client_messages(sdp) {
        let text = serde_json::to_string(&m).expect("encode");
        put(
            "signaling_proto",
            &format!("client-{name}"),
            text.as_bytes(),
        );
    }
    put(
        "signaling_proto",
        "not-a-message",
        br#"{"type":"join","protocol":1}"#,
    );
    put(
        "signaling_proto",
        "deep",
        format!("{}{}", "[".repeat(200), "]".repeat(200)).as_bytes(),
    );
    put(
        "signaling_proto",
        "escapes",
        br#"{"type":"unpublish","cid":"\u0000\ud83d\ude00\n"}"#,
    );

    let script = session_script(sdp);
    put("signaling_session", "script-call", &script);
    // Replay it to collect what the server wrote: real server messages.
    let mut h = SessionHarness::new(SignalingConfig::default());
    let a = h.connect(None);
    let b = h.connect(Some("room".into()));
    let keys = TokenKeys::development();
    for (c, who) in [(a, "alice"), (b, "bob")] {
        let token = keys
            .mint(
                "room",
                who,
                who,
                Grants::default(),
                Duration::from_secs(3600),
            )
            .expect("mint");
        let join = ClientMessage::Join {
            protocol: PROTOCOL_VERSION,
            token,
            resume: None,
        };
        h.text(c, &serde_json::to_string(&join).expect("encode"));
    }
    for (_, m) in client_messages(sdp).into_iter().skip(2) {
        h.text(a, &serde_json::to_string(&m).expect("encode"));
    }
    h.shutdown();
    for (i, (_, text)) in h.written.iter().enumerate().take(40) {
        put(
            "signaling_proto",
            &format!("server-{i:02}"),
            text.as_bytes(),
        );
    }
}

/// Hostile-peer scripts: every template unmutated, then mutated ones.
fn srtp_after_dtls() {
    let mut plain = Script::new();
    for t in 0..3u8 {
        plain = plain.bool(false).u8(t).u8(0).u8(0);
    }
    for t in 0..8u8 {
        plain = plain.bool(true).u8(t).u8(0).u8(1);
    }
    put("srtp_after_dtls", "templates-unmutated", &plain.build());
    let mut m = Script::new();
    // RTP: bad version bits, CSRC count past the end, extension length
    // past the end, truncated header, padding bit with a huge pad count.
    for (t, pos, byte) in [
        (0u8, 0u16, 0x40u8),
        (1, 0, 0x9f),
        (2, 14, 0xff),
        (1, 0, 0xa0),
    ] {
        m = m.bool(false).u8(t).u8(1).u8(1).u16(pos).u8(byte).u8(0);
    }
    m = m.bool(false).u8(1).u8(1).u8(2).u16(7).u8(0);
    // RTCP: length fields that lie, a truncated compound, a huge NACK list.
    for (t, pos, byte) in [
        (0u8, 3u16, 0xff),
        (7, 30, 0x00),
        (3, 2, 0x7f),
        (4, 14, 0xff),
    ] {
        m = m.bool(true).u8(t).u8(1).u8(1).u16(pos).u8(byte).u8(0);
    }
    m = m.bool(true).u8(3).u8(1).u8(3).short(&[0xff; 200]).u8(0);
    put("srtp_after_dtls", "mutated", &m.build());
}

fn main() {
    srtp_after_dtls();
    let datagrams = captured();
    stun_demux(&datagrams);
    rtp_dd();
    sframe_open();
    sframe_decryptor();
    frame_assembler();
    token();
    signaling(&real_offer());
    println!("seeds written to {}", dir("").display());
}
