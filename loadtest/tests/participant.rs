//! The `participant` tool, as the browser tests run it: two processes in
//! one end-to-end encrypted room on the real SFU (in this process, on
//! loopback), each sending the built-in VP8 and Opus clips and chat. Each
//! decrypts the other's video and audio (real codec frames, no decrypt
//! failure after joining), both see the chat in one order, and both saw
//! the same verification code for the epoch they shared.

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testkit::wait::output_text;

const ROOM: &str = "participant-tool";
/// Chat messages each sends, 60 ms apart: longer than the 2 s run, so the
/// run waits for its own last message and then for the other's.
const CHAT: usize = 40;
/// Far beyond a normal run (about 3 s of media after the join) on a busy
/// 2-core machine; only turns a hang into a failure.
const LIMIT: Duration = Duration::from_secs(120);

fn spawn(url: &str, token: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_participant"))
        .args(["--url", url, "--room", ROOM])
        .args(extra)
        .env("PARTICIPANT_TOKEN", token)
        .env(
            "RUST_LOG",
            std::env::var("PARTICIPANT_LOG")
                .unwrap_or_else(|_| "warn,loadtest::member=info".into()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("participant starts")
}

/// A fresh SFU and `identity` alone in it for 10 minutes (unless told to
/// leave); the SFU, the token and the process.
async fn alone(identity: &str) -> (sfu::RunningServer, String, Child) {
    let server = testkit::server::sfu().await;
    let token = testkit::token::dev_token(ROOM, identity);
    let child = spawn(
        &testkit::server::url(&server),
        &token,
        &["--duration", "10m"],
    );
    (server, token, child)
}

/// The exit status must be 0 and stdout one JSON object.
fn summary(out: &std::process::Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "{}", output_text(out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{}", output_text(out));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {}", output_text(out)))
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The chat as (from, text) pairs.
fn chat(s: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| v.as_str().expect("a string").to_owned();
    s["chat"]
        .as_array()
        .expect("chat")
        .iter()
        .map(|m| (text(&m["from"]), text(&m["text"])))
        .collect()
}

/// Epoch → verification code, for the epochs whose group was `members`.
fn codes_with(s: &Value, members: &[&str]) -> Vec<(u64, String)> {
    s["epochs"]
        .as_array()
        .expect("epochs")
        .iter()
        .filter(|e| e["members"] == serde_json::json!(members))
        .map(|e| {
            let code = e["verification_code"].as_str().expect("a code");
            (u(&e["epoch"]), code.to_owned())
        })
        .collect()
}

/// Checks what `me` decrypted of `other`'s tracks.
fn check_received(me: &Value, other: &str, log: &str) {
    let tracks: Vec<&Value> = me["tracks"]
        .as_array()
        .expect("tracks")
        .iter()
        .filter(|t| t["identity"] == other)
        .collect();
    let kinds: BTreeSet<&str> = tracks.iter().filter_map(|t| t["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["audio", "video"]),
        "{} has {other}'s tracks\n{log}",
        me["identity"]
    );
    for t in &tracks {
        assert!(u(&t["frames"]) > 0, "{t}\n{log}");
        assert_eq!(u(&t["invalid"]), 0, "not codec frames: {t}\n{log}");
        assert!(t["first_frame_ms"].is_u64(), "{t}");
        if t["kind"] == "video" {
            assert!(u(&t["keyframes"]) > 0, "{t}\n{log}");
        }
    }
    let by = &me["by_identity"][other];
    assert!(u(&by["audio"]) > 0 && u(&by["video"]) > 0, "{by}\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_participants_decrypt_each_other_and_agree_on_chat_and_codes() {
    let server = testkit::server::sfu().await;
    // Without the /rtc path, as a person would type it.
    let url = format!("ws://{}", server.http_addr());
    let chat_total = (2 * CHAT).to_string();
    let chat_n = CHAT.to_string();
    let args = [
        "--duration",
        "2s",
        "--expect-members",
        "2",
        "--chat",
        &chat_n,
        "--chat-interval",
        "60ms",
        "--expect-chat",
        &chat_total,
    ];
    let alice = spawn(&url, &testkit::token::dev_token(ROOM, "alice"), &args);
    let bob = spawn(&url, &testkit::token::dev_token(ROOM, "bob"), &args);
    let ((a_out, _), (b_out, _)) = tokio::join!(
        testkit::wait::child(alice, LIMIT),
        testkit::wait::child(bob, LIMIT)
    );
    let log = format!(
        "alice: {}\nbob: {}",
        output_text(&a_out),
        output_text(&b_out)
    );
    let (a, b) = (summary(&a_out), summary(&b_out));
    println!("{log}");

    for (me, other) in [(&a, "bob"), (&b, "alice")] {
        assert_eq!(me["ended"], "duration", "{log}");
        assert_eq!(me["room"], ROOM);
        assert!(me["group_complete_ms"].is_u64(), "{log}");
        check_received(me, other, &log);
        let failures = &me["decrypt_failures_after_join"];
        assert_eq!(u(&failures["total"]), 0, "{failures}\n{log}");
        let sent = &me["sent"];
        assert!(u(&sent["video_frames"]) > 0 && u(&sent["audio_frames"]) > 0);
        assert!(u(&sent["video_keyframes"]) > 0, "{sent}");
        assert_eq!(u(&sent["errors"]), 0, "{sent}\n{log}");
        assert_eq!(u(&sent["chat"]), CHAT as u64);
        assert_eq!(me["chat_complete"], true, "{log}");
    }

    // One order everywhere, with each sender's messages in its own order.
    let (a_chat, b_chat) = (chat(&a), chat(&b));
    assert_eq!(a_chat.len(), 2 * CHAT, "{log}");
    assert_eq!(a_chat, b_chat, "chat order differs");
    for name in ["alice", "bob"] {
        let texts: Vec<String> = a_chat
            .iter()
            .filter(|(from, _)| from == name)
            .map(|(_, text)| text.clone())
            .collect();
        let want: Vec<String> = (0..CHAT).map(|i| format!("{name}#{i}")).collect();
        assert_eq!(texts, want);
    }

    // The epochs both were in have the same code at both.
    let (a_codes, b_codes) = (
        codes_with(&a, &["alice", "bob"]),
        codes_with(&b, &["alice", "bob"]),
    );
    let shared: Vec<_> = a_codes.iter().filter(|c| b_codes.contains(c)).collect();
    assert!(
        !shared.is_empty(),
        "no epoch of the two with the same code: {a_codes:?} vs {b_codes:?}"
    );
    for (epoch, code) in &a_codes {
        if let Some((_, other)) = b_codes.iter().find(|(e, _)| e == epoch) {
            assert_eq!(code, other, "epoch {epoch}");
        }
    }
}

/// "leave" on stdin ends a run at once, and the summary still comes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_on_stdin_ends_the_run_with_a_summary() {
    use std::io::Write;
    let (_server, token, mut carol) = alone("carol").await;
    carol
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hello\nleave\n")
        .expect("write to stdin");
    let (out, _) = testkit::wait::child(carol, LIMIT).await;
    let s = summary(&out);
    assert_eq!(s["ended"], "stopped", "{}", output_text(&out));
    assert_eq!(s["identity"], "carol");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let signature = token.rsplit('.').next().expect("a JWT");
    assert!(
        !stderr.contains(signature) && !String::from_utf8_lossy(&out.stdout).contains(signature),
        "the token leaked"
    );
}

/// SIGTERM, once the member has joined, ends the run with a summary too;
/// and a caller that stopped reading stderr (this one, after "connected")
/// does not make the tool fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_run_with_a_summary() {
    use std::io::BufRead;
    let (_server, _, mut dave) = alone("dave").await;
    // The signal handlers are in place before it connects.
    let stderr = dave.stderr.take().expect("stderr");
    let connected = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("connected"))
    });
    let connected = tokio::time::timeout(LIMIT, connected)
        .await
        .expect("connects in time")
        .expect("stderr reader");
    assert!(connected, "no \"connected\" on stderr");
    let status = Command::new("kill")
        .args(["-TERM", &dave.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let (out, _) = testkit::wait::child(dave, LIMIT).await;
    assert_eq!(summary(&out)["ended"], "stopped", "{}", output_text(&out));
}
