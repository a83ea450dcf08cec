//! A dishonest path, played by a proxy on the signaling path that the
//! operator controls, tries two attacks on membership.
//!
//! - **Ghost member.** The proxy tells only the committer that a "ghost"
//!   joined and hands it a KeyPackage the attacker made. The committer adds
//!   it, as it would any participant the server announces, but the server's
//!   delivery service refuses the commit: the ghost is no participant of
//!   its room. Nobody's roster ever holds the ghost, and the group still
//!   adds a real newcomer (the next committer in line takes over). (A
//!   compromised server, whose own roster lies, is played on virtual time
//!   in `client-core/tests/group_sim/`: there the members flag the ghost.)
//! - **Withheld commit.** The proxy hides the commit that adds a new member
//!   from one member. That member stays in the old epoch: its verification
//!   code differs from everyone else's, whose codes agree, and it reports
//!   the new participant missing from its MLS roster.

mod support;

use base64::Engine as _;
use client_sdk::RoomOptions;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::Member;
use support::wsproxy::{Dir, WsProxy};

fn options() -> RoomOptions {
    let mut o = RoomOptions::loopback();
    o.mismatch_grace = Duration::from_secs(1);
    o
}

async fn group_of(members: &[&Member], n: usize) {
    for m in members {
        m.until("the group", |i| {
            i.rosters.last().is_some_and(|r| r.len() == n)
        })
        .await;
    }
}

/// The last MLS log sequence number the proxy passed to `conn`.
fn last_seq(proxy: &WsProxy, conn: u64) -> u64 {
    proxy
        .captured()
        .iter()
        .filter(|c| c.conn == conn && c.dir == Dir::ToClient)
        .filter_map(|c| serde_json::from_str::<serde_json::Value>(&c.text).ok())
        .filter(|v| v["type"] == "mls")
        .filter_map(|v| v["seq"].as_u64())
        .max()
        .unwrap_or(0)
}

/// Rewrites the `seq` of `mls` messages by `delta`; drops commits when
/// `drop_commits` is set.
fn renumber(text: &str, delta: i64, drop_commits: bool) -> Option<String> {
    let mut v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v["type"] != "mls" {
        return Some(text.to_owned());
    }
    if drop_commits && v["entry"]["kind"] == "commit" {
        return None;
    }
    let seq = v["seq"].as_u64()? as i64 + delta;
    v["seq"] = serde_json::json!(seq);
    Some(v.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ghost_told_to_the_committer_is_refused_by_the_delivery_service() {
    let server = support::server().await;
    let proxy = WsProxy::start(support::url(&server)).await;
    let room = "ghost";
    let alice = Member::join(&proxy.url(), room, "alice", options()).await;
    let bob = Member::join(&proxy.url(), room, "bob", options()).await;
    let carol = Member::join(&proxy.url(), room, "carol", options()).await;
    group_of(&[&alice, &bob, &carol], 3).await;
    let honest_code = alice.room.verification_code();
    assert!(
        bob.room.verification_code() == honest_code
            && carol.room.verification_code() == honest_code
    );
    for m in [&alice, &bob, &carol] {
        assert!(m.inbox().mismatches.is_empty(), "no mismatch while honest");
    }

    // The attacker's KeyPackage, told only to alice (the committer).
    let mut ghost = e2ee::group::MlsClient::new("ghost", Default::default()).expect("client");
    let kp = base64::engine::general_purpose::STANDARD.encode(ghost.key_package().expect("kp"));
    let conn = proxy
        .conn_of(&alice.room.participant_id())
        .expect("alice's connection");
    let shift = Arc::new(Mutex::new(false));
    {
        let shift = Arc::clone(&shift);
        proxy.set_hook(Box::new(move |c, text| {
            if c == conn && *shift.lock().unwrap() {
                renumber(text, 1, false).into_iter().collect()
            } else {
                vec![text.to_owned()]
            }
        }));
    }
    let seq = last_seq(&proxy, conn);
    *shift.lock().unwrap() = true;
    proxy.inject(
        conn,
        serde_json::json!({"type": "participant_joined", "participant": {
            "participant_id": "PA_ghost", "identity": "ghost", "name": "ghost", "tracks": []}})
        .to_string(),
    );
    proxy.inject(
        conn,
        serde_json::json!({"type": "mls", "seq": seq + 1, "entry": {
            "kind": "key_package", "participant_id": "PA_ghost", "key_package": kp}})
        .to_string(),
    );

    // The committer's ghost commit is refused (and counted), again and
    // again; a real newcomer is still added, by the next in line.
    let deadline = std::time::Instant::now() + support::LIMIT;
    loop {
        let (_, text) = testkit::http::get(server.http_addr(), "/metrics").await;
        let refused = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("sfu_signaling_mls_refused_total{reason=\"roster\"}")?
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
        if refused > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ghost commit was not refused"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dave = Member::join(&proxy.url(), room, "dave", options()).await;
    group_of(&[&alice, &bob, &carol, &dave], 4).await;
    for m in [&alice, &bob, &carol, &dave] {
        let i = m.inbox();
        assert!(
            i.rosters.iter().all(|r| !r.contains(&"ghost".to_owned())),
            "{}: the ghost never entered the group",
            m.room.identity()
        );
    }
    for m in [&bob, &carol, &dave] {
        assert!(
            m.inbox().mismatches.is_empty(),
            "{} has nothing to flag",
            m.room.identity()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_commit_shows_in_the_verification_codes() {
    let server = support::server().await;
    let proxy = WsProxy::start(support::url(&server)).await;
    let room = "withheld";
    let alice = Member::join(&proxy.url(), room, "alice", options()).await;
    let bob = Member::join(&proxy.url(), room, "bob", options()).await;
    let carol = Member::join(&proxy.url(), room, "carol", options()).await;
    group_of(&[&alice, &bob, &carol], 3).await;
    let before = carol.room.verification_code();
    assert!(before.is_some() && alice.room.verification_code() == before);

    // From now on carol gets no commits, and no gap in the numbering that
    // would give the trick away.
    let conn = proxy
        .conn_of(&carol.room.participant_id())
        .expect("carol's connection");
    let dropped = Arc::new(Mutex::new(0i64));
    {
        let dropped = Arc::clone(&dropped);
        proxy.set_hook(Box::new(move |c, text| {
            if c != conn {
                return vec![text.to_owned()];
            }
            let mut d = dropped.lock().unwrap();
            match renumber(text, -*d, true) {
                Some(t) => vec![t],
                None => {
                    *d += 1;
                    Vec::new()
                }
            }
        }));
    }
    let dave = Member::join(&proxy.url(), room, "dave", options()).await;
    group_of(&[&alice, &bob, &dave], 4).await;
    let codes: Vec<_> = [&alice, &bob, &dave]
        .iter()
        .map(|m| m.room.verification_code())
        .collect();
    assert!(
        codes.iter().all(|c| *c == codes[0] && c.is_some()),
        "honest members agree: {codes:?}"
    );
    carol
        .until("a mismatch naming dave", |i| {
            i.mismatches
                .iter()
                .any(|(_, sig_only)| sig_only.contains(&"dave".to_owned()))
        })
        .await;
    let carol_code = carol.room.verification_code();
    assert_eq!(carol_code, before, "carol is stuck in the old epoch");
    assert_ne!(carol_code, codes[0], "the withheld member's code differs");
    assert!(*dropped.lock().unwrap() >= 1);
}
