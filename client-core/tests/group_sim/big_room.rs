//! A large room changing epoch many times a second, with media: members
//! join at a steady rate, then some leave while others join, while a few
//! publish frames through a simulated SFU. Every frame a member could read
//! (it holds the frame's epoch) must reach it, attributed to its sender;
//! nothing may be dropped, for any reason. And a member that encrypts on
//! another's track is caught, however fast the epochs change.

use crate::media::Media;
use crate::world::World;
use signaling::proto::LeaveReason;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;
use testkit::rng::Rng;

/// How a member sends: two video tracks and four audio ones in all, as in
/// the load tester's big-room runs.
const VIDEO: Duration = Duration::from_micros(33_333);
const AUDIO: Duration = Duration::from_millis(20);

/// One run's shape.
pub(crate) struct Scenario {
    /// Members that join, one every `1 / rate` seconds.
    pub(crate) members: usize,
    /// Then this many leave and as many join, alternately, at the same rate.
    pub(crate) churn: usize,
    pub(crate) rate: u32,
    /// Each member but the founder is slow by up to this much: what the
    /// server sends it arrives that much later (a busy client).
    pub(crate) max_lag: Duration,
    pub(crate) seed: u64,
    /// Whether the second member also encrypts frames on the founder's
    /// track (as an SFU colluding with a member would label them).
    pub(crate) spoof: bool,
}

/// What happened to the frames of a run (some fields are only read in its
/// Debug output, which every run prints).
#[derive(Debug, Default)]
#[allow(dead_code)]
pub(crate) struct Outcome {
    /// Frames sent, and frames that reached a member in the room.
    pub(crate) sent: usize,
    pub(crate) arrivals: usize,
    /// Honest frames that reached a member holding their epoch: all of
    /// them must be delivered, to the right sender.
    pub(crate) expected: usize,
    pub(crate) delivered: usize,
    pub(crate) missing: usize,
    pub(crate) misattributed: usize,
    /// Spoofed frames that reached a member holding their epoch, and how
    /// many of them were delivered (must be none).
    pub(crate) spoofed: usize,
    pub(crate) spoofed_delivered: usize,
    /// Drops of every member, by reason (the SDK's JSON names).
    pub(crate) failures: BTreeMap<String, u64>,
    /// Epochs the room went through.
    pub(crate) epochs: u64,
}

/// Runs `s` and returns the world and its media plane.
pub(crate) fn run(s: &Scenario) -> (World, Media) {
    let mut w = World::new();
    let mut media = Media::new(s.seed);
    let mut rng = Rng::new(s.seed ^ 0x5eed);
    let gap = Duration::from_secs(1) / s.rate;
    let start = w.now;
    // The founder (the first committer) and four others publish from the
    // start; one of the late joiners publishes too.
    let mut senders: BTreeMap<usize, Duration> = BTreeMap::from([(0, AUDIO)]);
    for every in [VIDEO, VIDEO, AUDIO, AUDIO] {
        loop {
            let k = 1 + rng.below(s.members - 1);
            if let Entry::Vacant(slot) = senders.entry(k) {
                slot.insert(every);
                break;
            }
        }
    }
    senders.insert(s.members + s.churn / 2, AUDIO);
    // Who leaves: one of the publishers, and others at random.
    let publisher_leaving = *senders.keys().nth(2).expect("publishers");
    let mut leavers = vec![publisher_leaving];
    while leavers.len() < s.churn {
        let k = 1 + rng.below(s.members - 1);
        if !leavers.contains(&k) {
            leavers.push(k);
        }
    }
    let mut at = start;
    let join = |w: &mut World, media: &mut Media, rng: &mut Rng, k: usize| {
        let node = w.join(&format!("m{k:03}"));
        assert_eq!(node, k);
        if k > 0 {
            let lag = rng.below(s.max_lag.as_millis() as usize + 1) as u64;
            w.set_lag(node, Duration::from_millis(lag));
        }
        if let Some(every) = senders.get(&k) {
            media.publish(w, node, node, *every);
        }
        // The spoofer sends its own frames on the founder's track too.
        if s.spoof && k == 1 {
            media.publish(w, node, 0, AUDIO);
        }
    };
    let wall = std::time::Instant::now();
    for k in 0..s.members {
        media.run_until(&mut w, at);
        join(&mut w, &mut media, &mut rng, k);
        at += gap;
        if k % 50 == 49 {
            // Progress of the long runs: where the time goes.
            let epoch = w.nodes[0].epoch().map_or(0, |e| e.epoch);
            eprintln!(
                "{} joined, founder at epoch {epoch}, {:?} virtual, {:?} real",
                k + 1,
                w.elapsed(),
                wall.elapsed()
            );
        }
    }
    for (j, leaver) in leavers.iter().enumerate() {
        media.run_until(&mut w, at);
        w.leave(*leaver, LeaveReason::Left);
        at += gap;
        media.run_until(&mut w, at);
        join(&mut w, &mut media, &mut rng, s.members + j);
        at += gap;
    }
    media.run_until(&mut w, at + Duration::from_secs(3));
    media.stop();
    let end = w.now + Duration::from_secs(3);
    media.run_until(&mut w, end);
    (w, media)
}

/// Counts what happened to every frame (see [`Outcome`]).
pub(crate) fn outcome(w: &World, media: &Media) -> Outcome {
    let held: Vec<HashSet<u64>> = w
        .nodes
        .iter()
        .map(|n| n.epochs.iter().map(|e| e.epoch).collect())
        .collect();
    let got: Vec<HashMap<u64, &str>> = w
        .nodes
        .iter()
        .map(|n| {
            n.received
                .iter()
                .map(|r| (r.id, r.identity.as_str()))
                .collect()
        })
        .collect();
    let mut o = Outcome {
        sent: media.sent.len(),
        arrivals: media.arrivals.len(),
        epochs: held.iter().flatten().max().map_or(0, |e| e + 1),
        ..Outcome::default()
    };
    for a in &media.arrivals {
        let f = &media.sent[a.frame];
        if !held[a.to].contains(&f.epoch) {
            continue;
        }
        let delivered = got[a.to].get(&(a.frame as u64));
        if f.from != f.track_of {
            o.spoofed += 1;
            o.spoofed_delivered += usize::from(delivered.is_some());
            continue;
        }
        o.expected += 1;
        match delivered {
            Some(id) if *id == w.nodes[f.from].identity => o.delivered += 1,
            Some(_) => o.misattributed += 1,
            None => o.missing += 1,
        }
    }
    for n in &w.nodes {
        let counts = serde_json::to_value(n.keys.failures()).expect("counts as JSON");
        for (reason, v) in counts.as_object().expect("an object") {
            *o.failures.entry(reason.clone()).or_default() += v.as_u64().unwrap_or(0);
        }
    }
    o.failures.retain(|_, v| *v > 0);
    o
}

/// Runs `s`, prints what happened to its frames and returns it.
fn run_and_count(s: &Scenario) -> (World, Outcome) {
    let (w, media) = run(s);
    let o = outcome(&w, &media);
    eprintln!("{o:#?}");
    (w, o)
}

/// Asserts that every honest frame reached every member holding its
/// epoch, from its sender, with no drop at all but those of `allowed`
/// (a reason's JSON name, and how many).
fn assert_lossless(w: &World, o: &Outcome, allowed: Option<(&str, u64)>) {
    let present: Vec<usize> = w.present().collect();
    let names: Vec<&str> = present
        .iter()
        .map(|&i| w.nodes[i].identity.as_str())
        .collect();
    assert!(w.agree(&present, &names), "one group of everyone present");
    assert!(o.expected > 0, "{o:#?}");
    let mut failures = o.failures.clone();
    failures.remove("beforeJoin");
    if let Some((reason, n)) = allowed {
        assert_eq!(
            failures.remove(reason),
            Some(n).filter(|n| *n > 0),
            "{o:#?}"
        );
    }
    assert_eq!(
        (o.missing, o.misattributed, failures),
        (0, 0, BTreeMap::new()),
        "every frame delivered to every member holding its epoch: {o:#?}"
    );
}

/// A big room: 300 members joining at 20 a second, then 30 leaving and 30
/// joining, six of them publishing, each member behind the founder by up
/// to 300 ms. Join pacing makes it 61 epochs (about 360 without), and
/// 653,489 frame deliveries to check. Slow in a debug build: 4.5
/// CPU-minutes (28 before pacing and the faster MLS store), nearly all of
/// it real MLS (every member processes every commit). Run it with `cargo test -p client-core --test
/// group_sim -- --ignored a_300_member_room --nocapture` (it prints its
/// progress every 50 joins).
#[test]
#[ignore = "minutes of CPU in a debug build: 300 real MLS members process about 60 commits each"]
fn a_300_member_room_churning_at_20_per_second_loses_no_frame() {
    let (w, o) = run_and_count(&Scenario {
        members: 300,
        churn: 30,
        rate: 20,
        max_lag: Duration::from_millis(300),
        seed: 18,
        spoof: false,
    });
    assert_eq!(o.spoofed, 0);
    assert_lossless(&w, &o, None);
}

/// The same at a size a debug build runs in seconds: the same join rate,
/// epoch rate, member lag and publishers, a tenth of the churn at 40
/// members. Whether a frame can be attributed depends on how many epochs
/// apart its sender and receiver are, which the rate and the lag set, not
/// the room's size.
#[test]
fn a_churning_room_changing_epoch_20_times_a_second_loses_no_frame() {
    let (w, o) = run_and_count(&Scenario {
        members: 40,
        churn: 8,
        rate: 20,
        max_lag: Duration::from_millis(300),
        seed: 18,
        spoof: false,
    });
    assert_lossless(&w, &o, None);
}

/// A member encrypting its own frames on another's track (with an SFU that
/// labels them so) is caught on every frame, while epochs change twenty
/// times a second; the honest frames still all arrive.
#[test]
fn a_spoofed_sender_is_caught_however_fast_the_epochs_change() {
    let (w, o) = run_and_count(&Scenario {
        members: 24,
        churn: 4,
        rate: 20,
        max_lag: Duration::from_millis(300),
        seed: 7,
        spoof: true,
    });
    assert!(o.spoofed > 0, "{o:#?}");
    assert_eq!(o.spoofed_delivered, 0, "no spoofed frame delivered");
    assert_lossless(&w, &o, Some(("wrongSender", o.spoofed as u64)));
}
