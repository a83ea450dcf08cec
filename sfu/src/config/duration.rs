//! Duration settings as text: humantime ("500ms", "5s", "1m 30s") or a
//! bare whole number in the setting's own unit. The bare number keeps the
//! older names working: `--ping-interval-secs 5`, `SFU_RTX_CACHE_MS=1500`
//! and `rtx_cache_ms = 1500` meant seconds and milliseconds, and still do.
//!
//! [`parse_secs`] and [`parse_millis`] are the clap value parsers; the
//! [`secs`] and [`millis`] modules are the matching serde `with` modules.

use serde::de::{self, Deserializer, Unexpected};
use serde::ser::Serializer;
use std::fmt;
use std::time::Duration;

/// A bare number converted to a duration: `Duration::from_secs` or
/// `Duration::from_millis`.
type Unit = fn(u64) -> Duration;

fn parse(text: &str, unit: Unit) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(n) = text.parse::<u64>() {
        return Ok(unit(n));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{e} in {text:?}: expected a duration such as 500ms, 5s or 2m"))
}

/// Clap value parser: a duration, a bare number being seconds.
pub(crate) fn parse_secs(text: &str) -> Result<Duration, String> {
    parse(text, Duration::from_secs)
}

/// Clap value parser: a duration, a bare number being milliseconds.
pub(crate) fn parse_millis(text: &str) -> Result<Duration, String> {
    parse(text, Duration::from_millis)
}

/// Writes a duration as humantime text, which both parsers read back.
pub(crate) fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*value))
}

struct Visitor(Unit);

impl de::Visitor<'_> for Visitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"500ms\" or \"5s\", or a whole number")
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
        Ok((self.0)(n))
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Duration, E> {
        u64::try_from(n)
            .map(self.0)
            .map_err(|_| E::invalid_value(Unexpected::Signed(n), &self))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        parse(text, self.0).map_err(E::custom)
    }
}

/// Serde `with` module: a duration, a bare number being seconds.
pub(crate) mod secs {
    pub(crate) use super::serialize;

    pub(crate) fn deserialize<'de, D: super::Deserializer<'de>>(
        d: D,
    ) -> Result<super::Duration, D::Error> {
        d.deserialize_any(super::Visitor(super::Duration::from_secs))
    }
}

/// Serde `with` module: a duration, a bare number being milliseconds.
pub(crate) mod millis {
    pub(crate) use super::serialize;

    pub(crate) fn deserialize<'de, D: super::Deserializer<'de>>(
        d: D,
    ) -> Result<super::Duration, D::Error> {
        d.deserialize_any(super::Visitor(super::Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_takes_a_unit_and_a_bare_number_takes_the_settings_own() {
        assert_eq!(parse_secs("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_millis("5"), Ok(Duration::from_millis(5)));
        assert_eq!(parse_secs("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_millis("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_secs(" 1m 30s "), Ok(Duration::from_secs(90)));
        for bad in ["", "-1", "5 parsecs", "1.5"] {
            assert!(parse_secs(bad).is_err(), "{bad:?}");
        }
        let d = Duration::from_millis(1500);
        let text = humantime::format_duration(d).to_string();
        assert_eq!(parse_secs(&text), Ok(d), "{text} reads back");
    }
}
