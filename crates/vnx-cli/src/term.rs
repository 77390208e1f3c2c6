//! Terminal output helpers.

/// Escapes control characters (ANSI escape sequences, carriage returns, …) so
/// text from a ledger or an agent cannot drive the terminal. Newlines and tabs
/// are kept.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Formats micro-USD as dollars with 4 decimals, e.g. `$0.0123`.
pub fn usd(micros: u64) -> String {
    format!("${}.{:04}", micros / 1_000_000, (micros % 1_000_000) / 100)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_terminal_controls_but_keeps_newlines() {
        assert_eq!(super::escape("a\u{1b}[31mb\nc\r"), "a\\u{1b}[31mb\nc\\r");
    }

    #[test]
    fn formats_micro_usd() {
        assert_eq!(super::usd(1_234_567), "$1.2345");
        assert_eq!(super::usd(0), "$0.0000");
    }
}
