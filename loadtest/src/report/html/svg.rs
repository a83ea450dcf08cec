//! Line charts as inline SVG: axes with round ticks, series, legend.

use super::format::*;

/// One line of a chart.
pub(super) struct Series<'a> {
    /// Legend text.
    pub(super) name: &'a str,
    /// Stroke colour, a constant of this module.
    pub(super) color: &'a str,
    /// `(x, y)` in data units; non-finite points are skipped.
    pub(super) points: Vec<(f64, f64)>,
}

/// Chart size in SVG user units, and the plot area's margins.
pub(super) const WIDTH: f64 = 720.0;
pub(super) const HEIGHT: f64 = 300.0;
pub(super) const LEFT: f64 = 64.0;
pub(super) const RIGHT: f64 = 20.0;
pub(super) const TOP: f64 = 30.0;
pub(super) const BOTTOM: f64 = 48.0;
/// Ticks per axis the layout aims for.
pub(super) const TARGET_TICKS: f64 = 6.0;

/// A `<figure>` holding a line chart of `series` with axes, tick labels,
/// unit-bearing axis labels and, for several series, a legend.
///
/// `y_fixed` pins the y range (e.g. 0–1 for a CDF); otherwise it runs from
/// zero (or the lowest value, if negative) to the highest value. With no
/// finite point the chart shows its axes and "no data".
pub(super) fn svg_line_chart(
    title: &str,
    series: &[Series<'_>],
    x_label: &str,
    y_label: &str,
    y_fixed: Option<(f64, f64)>,
) -> String {
    let finite: Vec<Vec<(f64, f64)>> = series.iter().map(|s| finite_points(&s.points)).collect();
    let all = || finite.iter().flatten();
    let x_axis = Axis::fit(extent(all().map(|p| p.0)), false);
    let y_axis = match y_fixed {
        Some((lo, hi)) => Axis::fit(Some((lo, hi)), false),
        None => Axis::fit(extent(all().map(|p| p.1)), true),
    };
    let plot = Plot {
        x: x_axis,
        y: y_axis,
    };

    let mut svg = format!(
        "<figure>\n<figcaption>{t}</figcaption>\n<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{t}\">\n<title>{t}</title>\n",
        t = escape(title)
    );
    svg.push_str(&plot.grid_and_ticks());
    svg.push_str(&axis_labels(x_label, y_label));
    for (s, points) in series.iter().zip(&finite) {
        svg.push_str(&plot.line(s, points));
    }
    if all().next().is_none() {
        svg.push_str(&format!(
            "<text class=\"nodata\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no data</text>\n",
            LEFT + plot_width() / 2.0,
            TOP + plot_height() / 2.0
        ));
    }
    if series.len() > 1 {
        svg.push_str(&legend(series));
    }
    svg.push_str("</svg>\n</figure>\n");
    svg
}

pub(super) fn plot_width() -> f64 {
    WIDTH - LEFT - RIGHT
}

pub(super) fn plot_height() -> f64 {
    HEIGHT - TOP - BOTTOM
}

/// The points whose coordinates are both usable, clamped by [`sane`].
pub(super) fn finite_points(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter_map(|&(x, y)| Some((sane(x)?, sane(y)?)))
        .collect()
}

/// Largest magnitude drawn. Beyond it values are absurd for any metric
/// here, and clamping keeps every span and coordinate finite.
pub(super) const LIMIT: f64 = 1e15;

/// `v` clamped to ±[`LIMIT`], or `None` if it is NaN or infinite.
pub(super) fn sane(v: f64) -> Option<f64> {
    v.is_finite().then(|| v.clamp(-LIMIT, LIMIT))
}

/// Smallest and largest of `values`, or `None` if there are none.
pub(super) fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// One axis: a range on round numbers and the tick step that divides it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Axis {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) step: f64,
}

impl Axis {
    /// A tidy axis covering `extent` (`0..1` without one). `from_zero`
    /// makes it start at zero unless the data go below.
    pub(super) fn fit(extent: Option<(f64, f64)>, from_zero: bool) -> Axis {
        let (mut lo, mut hi) = match extent.map(|(a, b)| (sane(a), sane(b))) {
            Some((Some(a), Some(b))) => (a.min(b), a.max(b)),
            _ => (0.0, 1.0),
        };
        if from_zero {
            lo = lo.min(0.0);
        }
        // A single value (one point, or all zeros) still needs a span.
        if hi - lo <= hi.abs().max(lo.abs()) * 1e-9 {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            hi += pad;
            if !(from_zero && lo == 0.0) {
                lo -= pad;
            }
        }
        let step = nice_step((hi - lo) / TARGET_TICKS);
        Axis {
            lo: (lo / step).floor() * step,
            hi: (hi / step).ceil() * step,
            step,
        }
    }

    /// Tick positions from `lo` to `hi`, both included.
    pub(super) fn ticks(&self) -> Vec<f64> {
        let span = (self.hi - self.lo) / self.step;
        // The cap only guards against a rounding accident; fit() aims for ~6.
        let n = if span.is_finite() {
            span.round().clamp(1.0, 50.0) as usize
        } else {
            1
        };
        (0..=n).map(|i| self.lo + self.step * i as f64).collect()
    }

    /// Where `v` falls between `lo` (0.0) and `hi` (1.0), clamped.
    pub(super) fn fraction(&self, v: f64) -> f64 {
        let f = (v - self.lo) / (self.hi - self.lo);
        if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
pub(super) fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let mantissa = raw / magnitude;
    let nice = if mantissa <= 1.0 {
        1.0
    } else if mantissa <= 2.0 {
        2.0
    } else if mantissa <= 5.0 {
        5.0
    } else {
        10.0
    };
    let step = nice * magnitude;
    if step.is_finite() && step > 0.0 {
        step
    } else {
        1.0
    }
}

/// A tick label with as many decimals as the step needs; millions get an
/// `M` so labels fit the margin.
pub(super) fn fmt_tick(v: f64, step: f64) -> String {
    // Float steps leave -0.0 and 1e-17 where zero belongs.
    let v = if v.abs() < step * 1e-6 { 0.0 } else { v };
    let (v, step, suffix) = if step >= 1e5 || v.abs() >= 1e7 {
        (v / 1e6, step / 1e6, "M")
    } else {
        (v, step, "")
    };
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()).clamp(0.0, 9.0) as usize
    };
    format!("{v:.decimals$}{suffix}")
}

/// Data-to-pixel mapping of one chart.
pub(super) struct Plot {
    pub(super) x: Axis,
    pub(super) y: Axis,
}

impl Plot {
    pub(super) fn px(&self, x: f64) -> f64 {
        LEFT + self.x.fraction(x) * plot_width()
    }

    pub(super) fn py(&self, y: f64) -> f64 {
        TOP + (1.0 - self.y.fraction(y)) * plot_height()
    }

    /// Grid lines, the two axis lines and the tick labels.
    pub(super) fn grid_and_ticks(&self) -> String {
        let (left, right) = (LEFT, LEFT + plot_width());
        let (top, bottom) = (TOP, TOP + plot_height());
        let mut out = String::new();
        for t in self.y.ticks() {
            let y = self.py(t);
            out.push_str(&format!(
                "<line class=\"grid\" x1=\"{left:.1}\" y1=\"{y:.1}\" x2=\"{right:.1}\" y2=\"{y:.1}\"/>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
                left - 6.0,
                y + 4.0,
                escape(&fmt_tick(t, self.y.step))
            ));
        }
        for t in self.x.ticks() {
            let x = self.px(t);
            out.push_str(&format!(
                "<line class=\"axis\" x1=\"{x:.1}\" y1=\"{bottom:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\n\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
                bottom + 5.0,
                bottom + 18.0,
                escape(&fmt_tick(t, self.x.step))
            ));
        }
        out.push_str(&format!(
            "<line class=\"axis\" x1=\"{left:.1}\" y1=\"{top:.1}\" x2=\"{left:.1}\" y2=\"{bottom:.1}\"/>\n\
             <line class=\"axis\" x1=\"{left:.1}\" y1=\"{bottom:.1}\" x2=\"{right:.1}\" y2=\"{bottom:.1}\"/>\n"
        ));
        out
    }

    /// A series as a polyline; a lone point as a dot, since a one-point
    /// polyline draws nothing.
    pub(super) fn line(&self, series: &Series<'_>, points: &[(f64, f64)]) -> String {
        let color = escape(series.color);
        match points {
            [] => String::new(),
            [(x, y)] => format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>\n",
                self.px(*x),
                self.py(*y)
            ),
            _ => {
                let coords: Vec<String> = points
                    .iter()
                    .map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
                    .collect();
                format!(
                    "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" \
                     stroke-linejoin=\"round\" points=\"{}\"/>\n",
                    coords.join(" ")
                )
            }
        }
    }
}

/// The x label under the plot and the y label rotated along its left.
pub(super) fn axis_labels(x_label: &str, y_label: &str) -> String {
    format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n\
         <text transform=\"rotate(-90)\" x=\"{:.1}\" y=\"14\" text-anchor=\"middle\">{}</text>\n",
        LEFT + plot_width() / 2.0,
        HEIGHT - 8.0,
        escape(x_label),
        -(TOP + plot_height() / 2.0),
        escape(y_label)
    )
}

/// Colour swatches and names in the top margin, left to right.
pub(super) fn legend(series: &[Series<'_>]) -> String {
    let mut out = String::from("<g class=\"legend\">\n");
    let mut x = LEFT;
    for s in series {
        out.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"10\" width=\"14\" height=\"4\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"16\">{}</text>\n",
            escape(s.color),
            x + 20.0,
            escape(s.name)
        ));
        // Rough text width; the legend only has a few short names.
        x += 36.0 + 7.0 * s.name.chars().count() as f64;
    }
    out.push_str("</g>\n");
    out
}

// ---------------------------------------------------------------------------
// Text helpers
