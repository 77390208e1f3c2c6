//! Human units in `vnx.toml` and on the command line: durations such as `"30m"`
//! and USD amounts such as `"2.50"`, with their serde adapters.

use std::fmt::Write as _;
use std::time::Duration;

/// Parses a duration written as one or more `<integer><unit>` groups, units
/// `ms`, `s`, `m`, `h`, `d`: `"30m"`, `"90s"`, `"1h30m"`, `"500ms"`.
///
/// Returns `None` for anything else (no unit, a negative or fractional number,
/// an unknown unit, an overflow). `"0s"` is a valid zero duration.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut total_ms: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let number: u64 = rest.get(..digits)?.parse().ok()?;
        rest = rest.get(digits..)?;
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = rest.get(..unit_len)?;
        rest = rest.get(unit_len..)?;
        let factor: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return None,
        };
        total_ms = total_ms.checked_add(number.checked_mul(factor)?)?;
    }
    Some(Duration::from_millis(total_ms))
}

/// Formats a duration in the shortest form [`parse_duration`] reads back
/// exactly: `30m`, `1h30m`, `1500ms`, `0s`. Sub-millisecond parts are dropped.
pub fn format_duration(duration: Duration) -> String {
    let mut ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    if ms % 1_000 != 0 {
        // Not a whole number of seconds: milliseconds only, so it reads back exactly.
        return format!("{ms}ms");
    }
    for (unit, factor) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= factor {
            let _ = write!(out, "{}{unit}", ms / factor);
            ms %= factor;
        }
    }
    out
}

/// What a duration value in `vnx.toml` must look like, for error messages.
pub const DURATION_EXPECTED: &str =
    "a duration string such as \"30m\", \"90s\", \"1h30m\" or \"500ms\" (units ms, s, m, h, d)";

/// What a USD amount must look like, for error messages.
pub const USD_EXPECTED: &str =
    "a decimal USD amount as a string, such as \"2.50\" (at most 6 decimals are kept)";

/// Parses a USD amount (`"2.50"`, `"3"`) into micro-USD. Returns `None` for
/// anything but an unsigned decimal.
pub fn parse_usd(text: &str) -> Option<u64> {
    vnx_agents::decimal_usd_to_micros(text)
}

/// Serde adapter for a required [`Duration`] written as a string.
pub(crate) mod duration_str {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*value))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)
            .map_err(|e| D::Error::custom(format!("{e}; expected {}", super::DURATION_EXPECTED)))?;
        super::parse_duration(&text).ok_or_else(|| {
            D::Error::custom(format!(
                "invalid duration {text:?}: expected {}",
                super::DURATION_EXPECTED
            ))
        })
    }
}

/// Serde adapter for an optional micro-USD amount written as a decimal USD string.
pub(crate) mod usd_opt {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    #[allow(clippy::ref_option)] // serde's `with` hands us `&Option<T>`
    pub fn serialize<S: Serializer>(value: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(micros) => s.serialize_str(&vnx_agents::format_usd(*micros)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let text = String::deserialize(d)
            .map_err(|e| D::Error::custom(format!("{e}; expected {}", super::USD_EXPECTED)))?;
        super::parse_usd(&text).map(Some).ok_or_else(|| {
            D::Error::custom(format!(
                "invalid amount {text:?}: expected {}",
                super::USD_EXPECTED
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("30m"), Some(Duration::from_mins(30)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_mins(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_duration("2d"), Some(Duration::from_hours(48)));
        for bad in [
            "",
            "30",
            "m",
            "1.5h",
            "-1s",
            "3w",
            "1h 30m",
            "99999999999999999999s",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        for text in ["30m", "1h30m", "1500ms", "0s", "10s", "1d2h3m4s"] {
            let d = parse_duration(text).unwrap_or_default();
            assert_eq!(format_duration(d), text);
        }
    }

    #[test]
    fn usd() {
        assert_eq!(parse_usd("2.50"), Some(2_500_000));
        assert_eq!(parse_usd("abc"), None);
    }
}
