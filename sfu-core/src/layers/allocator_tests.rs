use super::*;

const AUDIO: [LayerRate; 1] = [LayerRate {
    layer: Layer::new(0, 0),
    bps: 40_000,
    height: 0,
}];

/// Three simulcast encodings (180p, 360p, 720p) with three temporal
/// layers each; a temporal layer is about 60 %, 80 %, 100 % of its
/// encoding's rate.
fn simulcast() -> Vec<LayerRate> {
    let mut v = Vec::new();
    for (s, (full, height)) in [(150_000u64, 180u16), (500_000, 360), (1_700_000, 720)]
        .into_iter()
        .enumerate()
    {
        for (t, share) in [60u64, 80, 100].into_iter().enumerate() {
            v.push(LayerRate {
                layer: Layer::new(s as u8, t as u8),
                bps: full * share / 100,
                height,
            });
        }
    }
    v
}

fn video(class: Class, layers: &[LayerRate]) -> Demand<'_> {
    Demand {
        class,
        layers,
        max_height: None,
        visible: true,
    }
}

fn run(budget: u64, demands: &[Demand<'_>]) -> Vec<Allocation> {
    let mut out = Vec::new();
    allocate(budget, demands, &mut out);
    out
}

#[test]
fn audio_comes_first_and_video_pauses_when_its_lowest_layer_does_not_fit() {
    let sim = simulcast();
    let demands = [video(Class::Other, &sim), video(Class::Audio, &AUDIO)];
    let out = run(100_000, &demands);
    assert_eq!(out[1].target, Some(Layer::new(0, 0)), "audio");
    assert_eq!(out[0].target, None);
    assert!(out[0].paused_for_bandwidth);
    // Audio is served even past the budget.
    let out = run(10_000, &demands);
    assert!(out[1].target.is_some() && out[0].paused_for_bandwidth);
    // With enough for the lowest layer, video resumes there.
    let out = run(40_000 + 90_000, &demands);
    assert_eq!(out[0].target, Some(Layer::new(0, 0)));
    assert!(!out[0].paused_for_bandwidth);
}

#[test]
fn classes_are_served_in_order_and_equals_share() {
    let sim = simulcast();
    let demands = [
        video(Class::Other, &sim),
        video(Class::Featured, &sim),
        video(Class::Other, &sim),
        video(Class::Screen, &sim),
    ];
    // Lowest layers for all (4 × 90 k), then the screen share to the top
    // (1.7 M), then the speaker; the two others share what is left.
    let out = run(360_000 + 1_610_000 + 1_610_000 + 2 * 310_000, &demands);
    assert_eq!(out[3].target, Some(Layer::new(2, 2)), "screen share");
    assert_eq!(out[1].target, Some(Layer::new(2, 2)), "speaker");
    assert_eq!(out[0].target, out[2].target, "the two others alike");
    assert_eq!(out[0].target, Some(Layer::new(1, 1)), "{out:?}");
    let total: u64 = out.iter().map(|a| a.bps).sum();
    assert!(total <= 360_000 + 1_610_000 * 2 + 620_000);
}

#[test]
fn frame_rate_comes_before_resolution() {
    let sim = simulcast();
    // 300 kbit/s would buy 360p at its base rate (a quarter of the frames):
    // 180p at full rate is used instead.
    let out = run(300_000, &[video(Class::Other, &sim)]);
    assert_eq!(out[0].target, Some(Layer::new(0, 2)));
    // 1.4 Mbit/s: 720p at half rate (1.36 M) beats 360p at full rate.
    let out = run(1_400_000, &[video(Class::Other, &sim)]);
    assert_eq!(out[0].target, Some(Layer::new(2, 1)));
}

#[test]
fn size_limits_and_hidden_tracks_are_respected() {
    let sim = simulcast();
    let mut small = video(Class::Featured, &sim);
    small.max_height = Some(360);
    let mut hidden = video(Class::Other, &sim);
    hidden.visible = false;
    let out = run(100_000_000, &[small, hidden]);
    assert_eq!(
        out[0].target,
        Some(Layer::new(1, 2)),
        "no 720p for a 360 px tile"
    );
    assert_eq!(
        out[1],
        Allocation::default(),
        "hidden: nothing, and not for want of bandwidth"
    );
    // A tile smaller than the lowest layer still gets the lowest layer.
    let mut tiny = video(Class::Other, &sim);
    tiny.max_height = Some(90);
    assert_eq!(run(100_000_000, &[tiny])[0].target, Some(Layer::new(0, 0)));
    // A publisher that sends nothing yet: nothing, not paused.
    let none = run(1_000_000, &[video(Class::Other, &[])]);
    assert_eq!(none[0], Allocation::default());
}

/// Random rooms and budgets: besides audio, the allocation never exceeds
/// the budget, a paused track's lowest layer really did not fit into what
/// was left, and no track could take one more step with what is left.
#[test]
fn allocations_fit_the_budget_and_leave_no_affordable_step() {
    let sim = simulcast();
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let classes = [Class::Audio, Class::Screen, Class::Featured, Class::Other];
    for _ in 0..2000 {
        let n = 1 + (next() % 12) as usize;
        let demands: Vec<Demand<'_>> = (0..n)
            .map(|_| {
                let class = classes[(next() % 4) as usize];
                let layers: &[LayerRate] = if class == Class::Audio { &AUDIO } else { &sim };
                Demand {
                    class,
                    layers,
                    max_height: [None, Some(180), Some(360)][(next() % 3) as usize],
                    visible: next() % 8 != 0,
                }
            })
            .collect();
        let budget = next() % 8_000_000;
        let out = run(budget, &demands);
        let audio: u64 = out
            .iter()
            .zip(&demands)
            .filter(|(_, d)| d.class == Class::Audio)
            .map(|(a, _)| a.bps)
            .sum();
        let video: u64 = out
            .iter()
            .zip(&demands)
            .filter(|(_, d)| d.class != Class::Audio)
            .map(|(a, _)| a.bps)
            .sum();
        let left = budget.saturating_sub(audio).saturating_sub(video);
        assert!(audio >= budget || video <= budget - audio, "over budget");
        for (a, d) in out.iter().zip(&demands) {
            if a.paused_for_bandwidth {
                assert!(d.layers[0].bps > left, "a paused track would have fit");
            }
            let Some(t) = a.target else { continue };
            let at = d.layers.iter().position(|l| l.layer == t).unwrap();
            assert!(worth_having(d.layers, at), "{t:?}");
            assert_eq!(
                next_affordable(d, at, left + d.layers[at].bps),
                None,
                "an affordable step was left"
            );
        }
    }
}
