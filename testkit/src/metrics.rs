//! Reading figures out of Prometheus text, as `/metrics` serves it.

/// The value of the sample named exactly `series` (with its labels, if
/// any: `name{reason="x"}`), if present and an integer.
pub fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The sum of every sample of the metric `name`, over all its labels.
pub fn sum(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP d Dropped.\n# TYPE d counter\nd{reason=\"a\"} 3\nd{reason=\"b\"} 4\n\
                        d_total 100\nrooms 2\n";

    #[test]
    fn reads_one_sample_or_the_sum_over_labels() {
        assert_eq!(sample(TEXT, "rooms"), Some(2));
        assert_eq!(sample(TEXT, "d{reason=\"b\"}"), Some(4));
        assert_eq!(sample(TEXT, "room"), None);
        assert_eq!(sum(TEXT, "d"), 7);
        assert_eq!(sum(TEXT, "d_total"), 100);
        assert_eq!(sum(TEXT, "absent"), 0);
    }
}
