//! Escaping and number, time and date formatting for the page.

/// `s` made safe for HTML text and quoted attribute values. Control
/// characters other than tab and newline become U+FFFD, since HTML parsers
/// treat them as errors.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// `v` with `decimals` places, or `n/a` if it is not finite.
pub(super) fn fmt_f(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "n/a".to_owned()
    }
}

/// A ratio as a percentage.
pub(super) fn fmt_percent(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{:.3} %", ratio * 100.0)
    } else {
        "n/a".to_owned()
    }
}

pub(super) fn fmt_kbps(v: f64) -> String {
    format!("{} kbit/s", fmt_f(v, 1))
}

/// `1234567` as `1,234,567`.
pub(super) fn fmt_int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds as `42.0 s` or `1h 02m 03s (3723.0 s)`.
pub(super) fn fmt_duration(s: f64) -> String {
    if !(s.is_finite() && s >= 0.0) {
        return "n/a".to_owned();
    }
    if s < 60.0 {
        return format!("{s:.1} s");
    }
    // `as` saturates, so absurd durations stay harmless.
    let whole = s.round() as u64;
    let (h, m, sec) = (whole / 3600, whole % 3600 / 60, whole % 60);
    if h > 0 {
        format!("{h}h {m:02}m {sec:02}s ({s:.1} s)")
    } else {
        format!("{m}m {sec:02}s ({s:.1} s)")
    }
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD hh:mm:ss.mmm UTC`.
pub(super) fn format_utc(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let millis = unix_ms % 1000;
    let (year, month, day) = civil_date(secs / 86_400);
    let sod = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// Proleptic Gregorian `(year, month, day)` of a day count since
/// 1970-01-01.
///
/// Counts from 0000-03-01 so that the leap day ends the year, which makes
/// every 400-year era 146 097 days and month lengths a linear formula.
pub(super) fn civil_date(days_since_epoch: u64) -> (u64, u64, u64) {
    // Days from 0000-03-01 to 1970-01-01.
    const EPOCH_SHIFT: u64 = 719_468;
    const DAYS_PER_ERA: u64 = 146_097;
    let days = days_since_epoch + EPOCH_SHIFT;
    let era = days / DAYS_PER_ERA;
    let day_of_era = days % DAYS_PER_ERA;
    // Leap days pass every 4 years (1460 days), except at 100-year
    // boundaries (36 524) and the era's last day (146 096).
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // March-based month: 153 days per five months (31,30,31,30,31).
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}
