//! What a publisher offer costs the thread of the media plane: the largest
//! offer the default limits allow, and one with 1,000 m-lines, applied
//! with the parse done on the plane's thread (an offer never prepared) and
//! with it done before ([`ClientSdp::prepare_offer`], as the server does on
//! the signaling task).
//!
//! A measurement, not a check: it asserts nothing about time. Run it with
//! `cargo test --release -p sfu-core --test sdp_cost -- --ignored --nocapture`.

use sfu_core::{
    ClientSdp, Input, MediaCommand, MediaConfig, MediaEvent, MediaPlane, Output, SdpLimits,
};
use std::time::{Duration, Instant};

const ROUNDS: u32 = 20;

/// A plane holding clients' SDP to `limits`, with one publisher, `p`.
fn plane(limits: &SdpLimits) -> (MediaPlane, Instant) {
    let now = Instant::now();
    let mut cfg = MediaConfig::new("127.0.0.1:7882".parse().expect("addr"));
    cfg.sdp = *limits;
    let mut plane = MediaPlane::new(cfg, now);
    plane.handle_input(
        now,
        Input::Command(MediaCommand::Join {
            participant: "p".into(),
            room: "r".into(),
            can_publish: true,
            auto_subscribe: false,
        }),
    );
    (plane, now)
}

/// Median time the plane takes for the offer `sdp` under `limits`,
/// prepared before or not, and what it said to the last one.
fn median_cost(sdp: &str, prepared: bool, limits: &SdpLimits) -> (Duration, Option<MediaEvent>) {
    let mut costs = Vec::new();
    let mut polls = Vec::new();
    let mut said = None;
    for _ in 0..ROUNDS {
        let (mut plane, now) = plane(limits);
        let mut sdp = ClientSdp::from(sdp);
        if prepared {
            sdp.prepare_offer(limits);
        }
        let cmd = MediaCommand::PublisherOffer {
            participant: "p".into(),
            sdp,
        };
        let t0 = Instant::now();
        plane.handle_input(now, Input::Command(cmd));
        costs.push(t0.elapsed());
        let t1 = Instant::now();
        loop {
            match plane.poll_output(now) {
                Output::Event { event, .. } => said = Some(event),
                Output::Transmit(_) => {}
                Output::Timeout(_) => break,
            }
        }
        polls.push(t1.elapsed());
    }
    polls.sort();
    println!(
        "  then polling the plane: {:.2} ms",
        polls[polls.len() / 2].as_secs_f64() * 1e3
    );
    costs.sort();
    (costs[costs.len() / 2], said)
}

fn prepare_cost(sdp: &str, limits: &SdpLimits) -> Duration {
    let mut costs: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let mut s = ClientSdp::from(sdp);
            let t0 = Instant::now();
            s.prepare_offer(limits);
            t0.elapsed()
        })
        .collect();
    costs.sort();
    costs[costs.len() / 2]
}

#[test]
#[ignore = "a measurement; run with --ignored --nocapture"]
fn shard_time_of_the_largest_offers() {
    let limits = SdpLimits::default();
    let largest = testkit::sdp::offer(
        limits.max_media_lines,
        limits.max_sending_lines,
        limits.max_bytes,
    );
    let oversize = testkit::sdp::lean(&testkit::sdp::offer(1000, 0, 0));
    let unlimited = {
        let mut l = limits;
        l.max_bytes = usize::MAX;
        l.max_media_lines = usize::MAX;
        l.max_sending_lines = usize::MAX;
        l
    };
    for (name, sdp) in [("largest allowed", &largest), ("1000 m-lines", &oversize)] {
        let (on_shard, said_before) = median_cost(sdp, false, &unlimited);
        let (after, said_after) = median_cost(sdp, true, &limits);
        let prepare = prepare_cost(sdp, &limits);
        let short = |e: Option<MediaEvent>| match e {
            Some(MediaEvent::PublisherAnswer { .. }) => "answered".to_string(),
            Some(MediaEvent::Error { message }) => message,
            other => format!("{other:?}"),
        };
        println!(
            "{name} ({} bytes, {} m-lines): parsed and applied on the shard (no limits) {:.2} ms [{}]; \
             with the limits, prepared before: {:.2} ms on the shard [{}], {:.2} ms preparing off it",
            sdp.len(),
            sdp.matches("\nm=").count(),
            on_shard.as_secs_f64() * 1e3,
            short(said_before),
            after.as_secs_f64() * 1e3,
            short(said_after),
            prepare.as_secs_f64() * 1e3,
        );
    }
}
