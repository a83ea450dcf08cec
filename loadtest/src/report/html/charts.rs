//! The charts: inline SVG over the run's timeline.

use super::super::{Report, TimelinePoint};
use super::svg::*;

/// Series colours, chosen to stay apart for common colour blindness.
const BLUE: &str = "#2f6fdf";
const ORANGE: &str = "#e8730c";

/// The five charts.
pub(super) fn charts(report: &Report) -> String {
    let tl = &report.timeline;
    let over_time = |f: fn(&TimelinePoint) -> f64| -> Vec<(f64, f64)> {
        tl.iter().map(|p| (p.t_s, f(p))).collect()
    };
    let cdf = vec![Series {
        name: "frames",
        color: BLUE,
        points: report.latency_cdf.iter().map(|&[x, y]| (x, y)).collect(),
    }];
    let latency = vec![
        Series {
            name: "p50",
            color: BLUE,
            points: over_time(|p| p.latency_p50_ms),
        },
        Series {
            name: "p99",
            color: ORANGE,
            points: over_time(|p| p.latency_p99_ms),
        },
    ];
    let (kbps_per_unit, bitrate_label) = bitrate_unit(tl);
    let bitrate = vec![Series {
        name: "aggregate",
        color: BLUE,
        points: tl
            .iter()
            .map(|p| (p.t_s, p.bitrate_kbps / kbps_per_unit))
            .collect(),
    }];
    let joins = vec![
        Series {
            name: "joins (cumulative)",
            color: BLUE,
            points: over_time(|p| p.joins as f64),
        },
        Series {
            name: "connected",
            color: ORANGE,
            points: over_time(|p| p.connected as f64),
        },
    ];
    let loss = vec![Series {
        name: "loss",
        color: BLUE,
        points: over_time(|p| p.loss_ratio * 100.0),
    }];
    let figures = [
        svg_line_chart(
            "Latency CDF",
            &cdf,
            "latency (ms)",
            "fraction of frames",
            Some((0.0, 1.0)),
        ),
        svg_line_chart(
            "Latency over time",
            &latency,
            "time (s)",
            "latency (ms)",
            None,
        ),
        svg_line_chart(
            "Received bitrate over time",
            &bitrate,
            "time (s)",
            bitrate_label,
            None,
        ),
        svg_line_chart(
            "Joins and connected participants",
            &joins,
            "time (s)",
            "participants",
            None,
        ),
        svg_line_chart("Loss over time", &loss, "time (s)", "loss (%)", None),
    ];
    let mut out = String::from("<section aria-label=\"Charts\">\n<h2>Charts</h2>\n");
    for figure in figures {
        out.push_str(&figure);
    }
    out.push_str("</section>\n");
    out
}

/// The unit that keeps the aggregate bitrate's tick labels short, as
/// (kbit/s per unit, axis label): a load test's aggregate easily reaches
/// hundreds of Mbit/s.
pub(super) fn bitrate_unit(timeline: &[TimelinePoint]) -> (f64, &'static str) {
    let peak = timeline
        .iter()
        .filter_map(|p| sane(p.bitrate_kbps))
        .fold(0.0, f64::max);
    if peak >= 1e7 {
        (1e6, "bitrate (Gbit/s)")
    } else if peak >= 1e4 {
        (1e3, "bitrate (Mbit/s)")
    } else {
        (1.0, "bitrate (kbit/s)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrate_unit_follows_the_peak() {
        let at = |kbps| TimelinePoint {
            bitrate_kbps: kbps,
            ..TimelinePoint::default()
        };
        assert_eq!(bitrate_unit(&[]).1, "bitrate (kbit/s)");
        assert_eq!(
            bitrate_unit(&[at(9_000.0), at(f64::NAN)]).1,
            "bitrate (kbit/s)"
        );
        assert_eq!(bitrate_unit(&[at(340_000.0)]), (1e3, "bitrate (Mbit/s)"));
        assert_eq!(
            bitrate_unit(&[at(f64::INFINITY), at(2e7)]).1,
            "bitrate (Gbit/s)"
        );
    }
}
