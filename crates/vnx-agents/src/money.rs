//! Conversions between the CLIs' decimal USD figures and vnx's integer micro-USD.
//!
//! Claude prints `total_cost_usd` as a JSON number (a JavaScript double printed
//! in its shortest round-trip form, e.g. `0.026049`). Multiplying the double by
//! 1e6 gives `26048.999999999996`, so vnx never does float arithmetic on money:
//! it prints the double back in its shortest decimal form (the same digits the
//! CLI wrote) and rounds that decimal string to six places.

/// Micro-USD in one USD.
pub const MICROS_PER_USD: u64 = 1_000_000;

/// Converts a USD amount, as a CLI reported it, to integer micro-USD, rounding
/// half away from zero at the sixth decimal.
///
/// Returns `None` for negative, NaN or infinite amounts, and for amounts above
/// `u64::MAX` micro-USD.
pub fn usd_to_micros(usd: f64) -> Option<u64> {
    if !usd.is_finite() || usd < 0.0 {
        return None;
    }
    // `Display` for f64 prints the shortest digits that round-trip, never in
    // exponent notation, e.g. `9.4e-5` prints as `0.000094`.
    decimal_usd_to_micros(&format!("{usd}"))
}

/// Converts a plain decimal string such as `"0.026049"` or `"12"` to micro-USD,
/// rounding half away from zero at the sixth decimal.
///
/// Returns `None` when the text is not an unsigned decimal number or overflows.
pub fn decimal_usd_to_micros(text: &str) -> Option<u64> {
    let text = text.trim();
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut micros: u64 = 0;
    for b in int_part.bytes() {
        micros = micros.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    micros = micros.checked_mul(MICROS_PER_USD)?;
    let frac = frac_part.as_bytes();
    let mut frac_micros: u64 = 0;
    for i in 0..6 {
        let digit = frac.get(i).map_or(0, |b| u64::from(b - b'0'));
        frac_micros = frac_micros * 10 + digit;
    }
    micros = micros.checked_add(frac_micros)?;
    if frac.get(6).is_some_and(|b| *b >= b'5') {
        micros = micros.checked_add(1)?;
    }
    Some(micros)
}

/// Formats micro-USD as a decimal USD string for a CLI flag such as claude's
/// `--max-budget-usd`: `2_500_000` → `"2.5"`, `1` → `"0.000001"`, `3_000_000` → `"3"`.
pub fn format_usd(micros: u64) -> String {
    let whole = micros / MICROS_PER_USD;
    let frac = micros % MICROS_PER_USD;
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:06}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_costs_round_exactly() {
        assert_eq!(usd_to_micros(0.026_049), Some(26_049));
        assert_eq!(usd_to_micros(0.053_088), Some(53_088));
        assert_eq!(usd_to_micros(9.4e-05), Some(94));
        assert_eq!(usd_to_micros(0.0), Some(0));
        assert_eq!(usd_to_micros(1.0), Some(1_000_000));
        assert_eq!(usd_to_micros(0.000_000_4), Some(0));
        assert_eq!(usd_to_micros(0.000_000_5), Some(1));
        assert_eq!(usd_to_micros(0.123_456_789), Some(123_457));
        assert_eq!(usd_to_micros(-1.0), None);
        assert_eq!(usd_to_micros(f64::NAN), None);
        assert_eq!(usd_to_micros(f64::INFINITY), None);
        assert_eq!(usd_to_micros(1e30), None);
    }

    #[test]
    fn decimal_strings() {
        assert_eq!(decimal_usd_to_micros("12"), Some(12_000_000));
        assert_eq!(decimal_usd_to_micros(".5"), Some(500_000));
        assert_eq!(decimal_usd_to_micros("0.0000015"), Some(2));
        assert_eq!(decimal_usd_to_micros("-1"), None);
        assert_eq!(decimal_usd_to_micros("1e3"), None);
        assert_eq!(decimal_usd_to_micros(""), None);
        assert_eq!(decimal_usd_to_micros("."), None);
    }

    #[test]
    fn formats_budget() {
        assert_eq!(format_usd(2_500_000), "2.5");
        assert_eq!(format_usd(3_000_000), "3");
        assert_eq!(format_usd(1), "0.000001");
        assert_eq!(format_usd(0), "0");
        assert_eq!(format_usd(10_250_000), "10.25");
    }
}
