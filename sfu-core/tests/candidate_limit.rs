//! A client trickling ICE candidates without end: str0m's ICE agent keeps
//! every distinct remote candidate for the transport's life, so the plane
//! takes at most [`MAX`] per transport, counts the rest (and unparsable
//! ones), and says so once.

use sfu_core::{
    ClientSdp, Input, MediaCommand, MediaConfig, MediaEvent, MediaPlane, Output, Target,
};
use std::time::Instant;

const MAX: usize = 50;

fn candidate(p: &mut MediaPlane, now: Instant, candidate: String) {
    p.handle_input(
        now,
        Input::Command(MediaCommand::Candidate {
            participant: "p".into(),
            target: Target::Publisher,
            candidate,
        }),
    );
}

/// The `media` errors the plane said to `p` since the last call.
fn errors(p: &mut MediaPlane, now: Instant) -> Vec<String> {
    let mut said = Vec::new();
    loop {
        match p.poll_output(now) {
            Output::Event {
                event: MediaEvent::Error { message },
                ..
            } => said.push(message),
            Output::Timeout(_) => return said,
            _ => {}
        }
    }
}

#[test]
fn candidates_past_the_limit_and_unparsable_ones_are_refused_and_counted() {
    let now = Instant::now();
    let mut p = MediaPlane::new(MediaConfig::new("127.0.0.1:7882".parse().unwrap()), now);
    p.handle_input(
        now,
        Input::Command(MediaCommand::Join {
            participant: "p".into(),
            room: "r".into(),
            can_publish: true,
            auto_subscribe: false,
        }),
    );
    p.handle_input(
        now,
        Input::Command(MediaCommand::PublisherOffer {
            participant: "p".into(),
            sdp: ClientSdp::from(testkit::sdp::offer(2, 1, 0).as_str()),
        }),
    );
    assert_eq!(errors(&mut p, now), Vec::<String>::new());

    candidate(&mut p, now, "candidate:not a candidate".into());
    for i in 0..MAX + 30 {
        let ip = format!("10.{}.{}.1", i / 250, i % 250);
        candidate(
            &mut p,
            now,
            format!("candidate:{i} 1 udp 2130706431 {ip} 5000 typ host"),
        );
    }

    assert_eq!(p.stats().candidates_refused, 1 + 30);
    assert_eq!(
        errors(&mut p, now),
        [format!("candidate refused: at most {MAX} per transport")],
        "said once, not per candidate"
    );
}
