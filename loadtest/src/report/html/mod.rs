//! The HTML report: one self-contained page for people who would rather not
//! read JSON.
//!
//! The page fetches nothing when opened. Its CSS is inline, its charts are
//! inline SVG drawn here, and it has no script. A Content-Security-Policy
//! meta tag asks the browser to enforce that. The inline SVG carries no
//! `xmlns` attribute, which HTML5 does not need, so the page holds no URL
//! except the (escaped) one that was tested.
//!
//! The report may come from a broken or hostile run. Every string from it
//! goes through `format::escape`, and every number drawn goes through `svg::sane`, so
//! neither markup injection nor `NaN` coordinates can reach the page.

mod charts;
mod format;
mod svg;
mod tables;

use super::Report;
use charts::charts;
use format::*;
use tables::*;

/// Renders `report` as one self-contained HTML5 document.
///
/// Never panics: empty vectors, a zero duration and non-finite numbers all
/// render (as "n/a" in tables and as skipped points in charts).
///
/// ```
/// # fn write(report: &loadtest::report::Report) -> std::io::Result<()> {
/// let html = loadtest::report::html::render(report);
/// std::fs::write("loadtest-report.html", html)?;
/// # Ok(())
/// # }
/// ```
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    out.push_str(&head(report));
    out.push_str("<body>\n<main>\n");
    out.push_str(&header(report));
    out.push_str(&banner(report));
    out.push_str(&summary(report));
    out.push_str(&charts(report));
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

// ---------------------------------------------------------------------------
// Page frame
// ---------------------------------------------------------------------------

/// Style sheet. Chart text and axes use `currentColor` so the dark scheme
/// needs no second set of SVG colours.
const CSS: &str = "
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --muted: #59636e;
  --line: #d0d7de; --stripe: #f6f8fa; --pass: #1a7f37; --fail: #cf222e; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --bg: #0d1117; --muted: #9198a1; --line: #3d444d;
    --stripe: #151b23; --pass: #3fb950; --fail: #f85149; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 16px 48px; }
h1 { font-size: 1.6em; margin: 0 0 8px; }
h2 { font-size: 1.25em; margin: 32px 0 12px; }
code { font-family: ui-monospace, 'SF Mono', Menlo, Consolas, monospace; font-size: 0.92em;
  overflow-wrap: anywhere; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
.banner { border: 2px solid; border-radius: 8px; padding: 12px 16px; margin: 20px 0; }
.banner.pass { border-color: var(--pass); }
.banner.fail { border-color: var(--fail); }
.banner .verdict { font-size: 1.5em; font-weight: 700; margin: 0; }
.banner.pass .verdict { color: var(--pass); }
.banner.fail .verdict { color: var(--fail); }
.banner h3 { font-size: 1em; margin: 12px 0 4px; }
.banner ul { margin: 0; padding-left: 20px; overflow-wrap: anywhere; }
.tables { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 16px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 0 0 4px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: right; }
th[scope=row], thead th:first-child { text-align: left; font-weight: 400; color: var(--muted); }
thead th { font-weight: 600; }
tbody tr:nth-child(even) { background: var(--stripe); }
.wide { grid-column: 1 / -1; }
figure { margin: 0 0 24px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg.chart { width: 100%; height: auto; max-width: 760px; display: block; color: var(--fg); }
svg.chart .grid { stroke: var(--line); stroke-width: 1; }
svg.chart .axis { stroke: currentColor; stroke-width: 1; }
svg.chart text { fill: currentColor; font-size: 12px; font-family: inherit; }
svg.chart .nodata { fill: var(--muted); font-size: 16px; }
";

/// `<!DOCTYPE>` through `</head>`.
fn head(report: &Report) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Load test {}: {}</title>\n<style>{CSS}</style>\n</head>\n",
        escape(&report.scenario),
        verdict(report),
    )
}

/// `PASS` or `FAIL`.
fn verdict(report: &Report) -> &'static str {
    if report.thresholds.passed {
        "PASS"
    } else {
        "FAIL"
    }
}

/// Title and what was run, where and when.
fn header(report: &Report) -> String {
    let items = [
        ("URL", format!("<code>{}</code>", escape(&report.url))),
        ("Started", escape(&format_utc(report.started_at_unix_ms))),
        ("Duration", escape(&fmt_duration(report.duration_s))),
        ("Tool", escape(&report.tool)),
        ("Report schema", report.schema_version.to_string()),
    ];
    let mut out = format!(
        "<header>\n<h1>Load test: {}</h1>\n<dl class=\"meta\">\n",
        escape(&report.scenario)
    );
    for (name, value_html) in items {
        out.push_str(&format!("<dt>{name}</dt><dd>{value_html}</dd>\n"));
    }
    out.push_str("</dl>\n</header>\n");
    out
}

/// The PASS/FAIL verdict with the failed gates and the run's errors.
fn banner(report: &Report) -> String {
    let class = if report.thresholds.passed {
        "pass"
    } else {
        "fail"
    };
    let mut out = format!(
        "<section class=\"banner {class}\" aria-label=\"Verdict\">\n<p class=\"verdict\">{}</p>\n",
        verdict(report)
    );
    let failures = &report.thresholds.failures;
    let errors = &report.errors;
    if failures.is_empty() && errors.is_empty() {
        out.push_str(if report.thresholds.passed {
            "<p>Every gate passed and the run completed.</p>\n"
        } else {
            "<p>The run failed; it recorded no reason.</p>\n"
        });
    }
    out.push_str(&bullet_list("Threshold failures", failures));
    out.push_str(&bullet_list("Errors", errors));
    if let Some(t) = report.tester.as_ref().filter(|t| t.overloaded) {
        let mut why = t.overload_reasons.clone();
        why.push(
            "latency and loss include the tester's own delay, so they understate what the SFU carries"
                .to_owned(),
        );
        out.push_str(&bullet_list("The load tester was overloaded", &why));
    }
    out.push_str("</section>\n");
    out
}

/// A headed `<ul>` of escaped items, or nothing when there are none.
fn bullet_list(heading: &str, items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut out = format!("<h3>{}</h3>\n<ul>\n", escape(heading));
    for item in items {
        out.push_str(&format!("<li>{}</li>\n", escape(item)));
    }
    out.push_str("</ul>\n");
    out
}

// ---------------------------------------------------------------------------
// Summary tables
// ---------------------------------------------------------------------------

/// All the summary tables.
fn summary(report: &Report) -> String {
    let tables = [
        participants_table(report),
        percentiles_table(report),
        media_table(report),
        frames_table(report),
        e2ee_table(report),
        epoch_loss_table(report),
        members_table(report),
        layers_table(report),
        sfu_table(report),
        tester_table(report),
        thresholds_table(report),
        config_table(report),
    ];
    let mut out = String::from(
        "<section aria-label=\"Summary\">\n<h2>Summary</h2>\n<div class=\"tables\">\n",
    );
    for table in tables {
        out.push_str(&table);
    }
    out.push_str("</div>\n</section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::format::*;
    use super::svg::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("a\u{0}b\nc"), "a\u{FFFD}b\nc");
    }

    #[test]
    fn civil_date_known_days() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(59), (1970, 3, 1));
        // 2000-02-29 (a 400-year leap day) and 2024-12-31.
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(20_088), (2024, 12, 31));
        assert_eq!(format_utc(1_700_000_000_123), "2023-11-14 22:13:20.123 UTC");
        // The largest input must not overflow.
        let _ = format_utc(u64::MAX);
    }

    #[test]
    fn axis_fit_is_round_and_covers_data() {
        let a = Axis::fit(Some((3.0, 97.0)), true);
        assert_eq!((a.lo, a.hi, a.step), (0.0, 100.0, 20.0));
        let single = Axis::fit(Some((5.0, 5.0)), false);
        assert!(single.lo < 5.0 && single.hi > 5.0);
        let zeros = Axis::fit(Some((0.0, 0.0)), true);
        assert_eq!((zeros.lo, zeros.hi), (0.0, 1.0));
        let none = Axis::fit(None, true);
        assert_eq!((none.lo, none.hi), (0.0, 1.0));
        let huge = Axis::fit(Some((-LIMIT, LIMIT)), false);
        assert!(huge.ticks().iter().all(|t| t.is_finite()));
    }

    #[test]
    fn tick_labels_have_no_negative_zero() {
        assert_eq!(fmt_tick(-1e-18, 0.2), "0.0");
        assert_eq!(fmt_tick(0.4, 0.2), "0.4");
        assert_eq!(fmt_tick(2_000_000.0, 500_000.0), "2.0M");
        assert_eq!(fmt_tick(150.0, 50.0), "150");
    }

    #[test]
    fn numbers_format_for_people() {
        assert_eq!(fmt_int(0), "0");
        assert_eq!(fmt_int(1_234_567), "1,234,567");
        assert_eq!(fmt_duration(0.0), "0.0 s");
        assert_eq!(fmt_duration(3723.0), "1h 02m 03s (3723.0 s)");
        assert_eq!(fmt_duration(f64::NAN), "n/a");
        assert_eq!(fmt_percent(0.0125), "1.250 %");
    }
}
