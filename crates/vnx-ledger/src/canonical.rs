//! RFC 8785 (JSON Canonicalization Scheme) for the ledger's integer-only JSON.
//!
//! Writing uses the `serde_jcs` canonicalizer. Reading uses [`check_canonical`],
//! a single-pass scanner that accepts exactly the canonical form of integer-only
//! I-JSON without building a tree: verification of a large ledger is dominated
//! by this check, so it must run at hashing speed. A property test holds the two
//! to the same answer.
//!
//! What "canonical" means here (RFC 8785 §3.2, narrowed by the ledger format):
//! no whitespace; object keys sorted by their UTF-16 code units, so no
//! duplicates; strings with raw UTF-8 except `"` `\\` and the control characters,
//! which use `\b \t \n \f \r` or `\u00xx` with lowercase hex; numbers are
//! integers written without sign for zero, without leading zeros, with
//! magnitude at most 2^53 − 1 (RFC 7493 I-JSON). Floats are not allowed at all.

use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use vnx_types::MAX_SAFE_INTEGER;

/// Maximum nesting of arrays and objects accepted anywhere in the ledger.
/// Deeper input is refused instead of risking the stack.
pub const MAX_DEPTH: usize = 64;

/// Why a byte string is not in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalError {
    /// Byte offset of the problem within the checked slice.
    pub offset: usize,
    /// What is wrong, e.g. `keys not in RFC 8785 order`.
    pub what: &'static str,
}

impl fmt::Display for CanonicalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

impl std::error::Error for CanonicalError {}

/// Serializes a value to RFC 8785 canonical JSON bytes.
///
/// # Errors
/// Fails only if the value cannot be represented (a float that is not finite);
/// ledger values are integer-only, checked by [`parse_strict`] beforehand.
pub fn to_canonical_vec(value: &Value) -> Result<Vec<u8>, serde_json::Error> {
    serde_jcs::to_vec(value)
}

/// Checks that `bytes` is exactly one JSON value in canonical form (see the
/// module docs). `bytes` must already be valid UTF-8; the scanner relies on
/// that for multi-byte characters inside strings.
///
/// # Errors
/// The first deviation from canonical form, with its byte offset.
pub fn check_canonical(bytes: &[u8]) -> Result<(), CanonicalError> {
    let mut scanner = Scanner { bytes, pos: 0 };
    scanner.value(0)?;
    if scanner.pos != bytes.len() {
        return Err(scanner.err("trailing bytes after the JSON value"));
    }
    Ok(())
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn err(&self, what: &'static str) -> CanonicalError {
        CanonicalError {
            offset: self.pos,
            what,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), CanonicalError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), CanonicalError> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), CanonicalError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(|_| ()),
            Some(b'-' | b'0'..=b'9') => self.integer(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b' ' | b'\t' | b'\n' | b'\r') => Err(self.err("whitespace is not canonical")),
            Some(_) => Err(self.err("expected a JSON value")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), CanonicalError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting deeper than 64 levels"));
        }
        self.pos += 1; // '{'
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        let mut previous: Option<Key<'a>> = None;
        loop {
            let key_start = self.pos;
            if self.peek() != Some(b'"') {
                return Err(self.err("expected an object key"));
            }
            let key = self.string()?;
            if let Some(prev) = &previous {
                match prev.cmp_utf16(&key) {
                    Ordering::Less => {}
                    Ordering::Equal => {
                        return Err(CanonicalError {
                            offset: key_start,
                            what: "duplicate object key",
                        });
                    }
                    Ordering::Greater => {
                        return Err(CanonicalError {
                            offset: key_start,
                            what: "object keys not in RFC 8785 order",
                        });
                    }
                }
            }
            previous = Some(key);
            self.expect(b':', "expected ':' after an object key")?;
            self.value(depth)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}' in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), CanonicalError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting deeper than 64 levels"));
        }
        self.pos += 1; // '['
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.value(depth)?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or ']' in an array")),
            }
        }
    }

    /// Scans a string at `self.pos` (on the opening quote) and returns its raw
    /// contents (between the quotes) with a flag for escapes.
    fn string(&mut self) -> Result<Key<'a>, CanonicalError> {
        self.pos += 1; // '"'
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.skip_plain();
            let Some(byte) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            match byte {
                b'"' => {
                    let raw = &self.bytes[start..self.pos];
                    self.pos += 1;
                    return Ok(Key { raw, escaped });
                }
                b'\\' => {
                    escaped = true;
                    self.escape()?;
                }
                0x00..=0x1f => return Err(self.err("raw control character in a string")),
                _ => self.pos += 1,
            }
        }
    }

    /// Skips string bytes that need no attention (not `"`, `\\` or a control
    /// character), eight at a time. This loop is where verification spends
    /// most of its non-hashing time, so it tests whole words with the
    /// "has a byte less than n" bit trick instead of one byte per branch.
    fn skip_plain(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGHS: u64 = 0x8080_8080_8080_8080;
        let has_less_than_0x20 = |w: u64| w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
        let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
        while let Some(chunk) = self.bytes.get(self.pos..self.pos + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            let special = has_less_than_0x20(w)
                | has_zero(w ^ (ONES * u64::from(b'"')))
                | has_zero(w ^ (ONES * u64::from(b'\\')));
            if special != 0 {
                break;
            }
            self.pos += 8;
        }
        while let Some(&b) = self.bytes.get(self.pos) {
            if b == b'"' || b == b'\\' || b < 0x20 {
                break;
            }
            self.pos += 1;
        }
    }

    fn escape(&mut self) -> Result<(), CanonicalError> {
        let Some(&kind) = self.bytes.get(self.pos + 1) else {
            return Err(self.err("unterminated escape"));
        };
        match kind {
            b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => {
                self.pos += 2;
                Ok(())
            }
            b'u' => {
                let hex = self
                    .bytes
                    .get(self.pos + 2..self.pos + 6)
                    .ok_or_else(|| self.err("truncated \\u escape"))?;
                // Canonical form escapes only the control characters that have no
                // short form, as \u00 followed by two lowercase hex digits.
                let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
                if hex[0] != b'0' || hex[1] != b'0' || !(hex[2] == b'0' || hex[2] == b'1') {
                    return Err(self.err("\\u escape of a character that must be written raw"));
                }
                if !lower_hex(hex[3]) {
                    return Err(self.err("\\u escape must use lowercase hex"));
                }
                let code = (hex[2] - b'0') * 16 + hex_value(hex[3]);
                if matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                    return Err(self.err("\\u escape where RFC 8785 uses a short escape"));
                }
                self.pos += 6;
                Ok(())
            }
            _ => Err(self.err("escape that RFC 8785 does not produce")),
        }
    }

    fn integer(&mut self) -> Result<(), CanonicalError> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        let digits = &self.bytes[digits_start..self.pos];
        if digits.is_empty() {
            return Err(self.err("expected digits"));
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(CanonicalError {
                offset: start,
                what: "non-integer number (the ledger allows integers only)",
            });
        }
        if digits.len() > 1 && digits[0] == b'0' {
            return Err(CanonicalError {
                offset: start,
                what: "leading zero in a number",
            });
        }
        if negative && digits == b"0" {
            return Err(CanonicalError {
                offset: start,
                what: "negative zero",
            });
        }
        let magnitude = digits.iter().try_fold(0u64, |acc, d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        });
        match magnitude {
            Some(m) if m <= MAX_SAFE_INTEGER => Ok(()),
            _ => Err(CanonicalError {
                offset: start,
                what: "integer outside ±(2^53 − 1)",
            }),
        }
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        _ => b - b'a' + 10,
    }
}

/// Whether `bytes` is one JSON text by the grammar of RFC 8259 §2: optional
/// whitespace (space, tab, `\n`, `\r`), one value, optional whitespace. No
/// byte order mark, any nesting depth (checked with a heap stack, never the
/// call stack), any escape `\uXXXX` (lone surrogates included, as the grammar
/// allows), duplicate keys and any number allowed. `bytes` must already be
/// valid UTF-8.
///
/// Verification uses it to tell `malformed` (not JSON) from `not_canonical`
/// (JSON, but not the canonical form) the same way whatever the line's depth,
/// instead of depending on a parser's recursion limit.
pub fn is_json(bytes: &[u8]) -> bool {
    let mut g = Grammar { bytes, pos: 0 };
    g.ws();
    if !g.text() {
        return false;
    }
    g.ws();
    g.pos == bytes.len()
}

struct Grammar<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Grammar<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// One value, with containers tracked on `stack` (`b'}'` or `b']'`, the
    /// closing byte each open container waits for).
    fn text(&mut self) -> bool {
        let mut stack: Vec<u8> = Vec::new();
        loop {
            // A value is expected here.
            self.ws();
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    self.ws();
                    if self.eat(b'}') {
                        // An empty object is a complete value.
                    } else {
                        if !self.member_key() {
                            return false;
                        }
                        stack.push(b'}');
                        continue;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    self.ws();
                    if !self.eat(b']') {
                        stack.push(b']');
                        continue;
                    }
                }
                Some(b'"') => {
                    if !self.string() {
                        return false;
                    }
                }
                Some(b'-' | b'0'..=b'9') => {
                    if !self.number() {
                        return false;
                    }
                }
                Some(b't') => {
                    if !self.word(b"true") {
                        return false;
                    }
                }
                Some(b'f') => {
                    if !self.word(b"false") {
                        return false;
                    }
                }
                Some(b'n') => {
                    if !self.word(b"null") {
                        return false;
                    }
                }
                _ => return false,
            }
            // A value is complete: close containers or move to the next element.
            loop {
                let Some(&close) = stack.last() else {
                    return true;
                };
                self.ws();
                if self.eat(b',') {
                    if close == b'}' && !self.member_key() {
                        return false;
                    }
                    break;
                }
                if !self.eat(close) {
                    return false;
                }
                stack.pop();
            }
        }
    }

    /// `ws string ws ':'` of an object member.
    fn member_key(&mut self) -> bool {
        self.ws();
        if self.peek() != Some(b'"') || !self.string() {
            return false;
        }
        self.ws();
        self.eat(b':')
    }

    fn word(&mut self, word: &[u8]) -> bool {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn string(&mut self) -> bool {
        self.pos += 1; // '"'
        loop {
            match self.peek() {
                None | Some(0x00..=0x1f) => return false,
                Some(b'"') => {
                    self.pos += 1;
                    return true;
                }
                Some(b'\\') => match self.bytes.get(self.pos + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 2,
                    Some(b'u') => {
                        let hex = self.bytes.get(self.pos + 2..self.pos + 6);
                        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                            return false;
                        }
                        self.pos += 6;
                    }
                    _ => return false,
                },
                Some(_) => self.pos += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> bool {
        self.eat(b'-');
        if self.eat(b'0') {
            // No more integer digits after a leading zero.
        } else if self.digits() == 0 {
            return false;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return false;
            }
        }
        true
    }
}

/// A scanned string: its raw bytes between the quotes, and whether it held escapes.
struct Key<'a> {
    raw: &'a [u8],
    escaped: bool,
}

impl Key<'_> {
    /// Orders two keys by UTF-16 code units, as RFC 8785 §3.2.3 requires.
    fn cmp_utf16(&self, other: &Key<'_>) -> Ordering {
        // Fast path: for ASCII-only unescaped keys, byte order is UTF-16 order.
        if !self.escaped && !other.escaped && self.raw.is_ascii() && other.raw.is_ascii() {
            return self.raw.cmp(other.raw);
        }
        let a = self.decoded();
        let b = other.decoded();
        a.encode_utf16().cmp(b.encode_utf16())
    }

    fn decoded(&self) -> String {
        let text = String::from_utf8_lossy(self.raw);
        if !self.escaped {
            return text.into_owned();
        }
        // Escapes were validated by the scanner; decode via serde_json.
        serde_json::from_str::<String>(&format!("\"{text}\"")).unwrap_or_default()
    }
}

/// Why input for the ledger was refused by [`parse_strict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictJsonError(pub String);

impl fmt::Display for StrictJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StrictJsonError {}

/// Parses JSON for the ledger, refusing what RFC 8785 and I-JSON (RFC 7493)
/// make ambiguous: duplicate object keys, non-integer numbers, integers outside
/// ±(2^53 − 1), lone surrogates, nesting deeper than [`MAX_DEPTH`]. Invalid UTF-8
/// is refused by the caller (input arrives as `&str`).
///
/// # Errors
/// A message naming the first offending key path or value and what to do.
pub fn parse_strict(text: &str) -> Result<Value, StrictJsonError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = StrictValue { depth: 0 }
        .deserialize(&mut de)
        .map_err(|e| StrictJsonError(e.to_string()))?;
    de.end().map_err(|e| StrictJsonError(e.to_string()))?;
    Ok(value)
}

#[derive(Clone, Copy)]
struct StrictValue {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("integer-only JSON")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        if v.unsigned_abs() > MAX_SAFE_INTEGER {
            return Err(E::custom(format!(
                "integer {v} is outside ±(2^53 − 1); I-JSON consumers would read it differently — store it as a string"
            )));
        }
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        if v > MAX_SAFE_INTEGER {
            return Err(E::custom(format!(
                "integer {v} is outside ±(2^53 − 1); I-JSON consumers would read it differently — store it as a string"
            )));
        }
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Err(E::custom(format!(
            "number {v} is not an integer; the ledger hashes integers only — use integer units (micro-USD, ms, tokens)"
        )))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested::<A::Error>()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested::<A::Error>()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "duplicate key {key:?}; RFC 8785 forbids it — keep one"
                )));
            }
            let value = map.next_value_seed(inner)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

impl StrictValue {
    fn nested<E: de::Error>(self) -> Result<StrictValue, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom("nesting deeper than 64 levels"));
        }
        Ok(StrictValue {
            depth: self.depth + 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) {
        assert_eq!(check_canonical(s.as_bytes()), Ok(()), "{s}");
    }
    fn bad(s: &str, what: &str) {
        let err = check_canonical(s.as_bytes()).expect_err(s);
        assert!(err.what.contains(what), "{s}: {err}");
    }

    #[test]
    fn accepts_canonical_forms() {
        ok(r#"{"a":1,"b":[true,false,null,"x"],"c":{}}"#);
        ok(r#"{"":0,"a":-9007199254740991}"#);
        ok(r#""\u001f\n\"\\é€😀""#);
        ok("[]");
        ok("9007199254740991");
    }

    #[test]
    fn rejects_each_non_canonical_form() {
        bad(r#"{"b":1,"a":2}"#, "order");
        bad(r#"{"a":1,"a":2}"#, "duplicate");
        bad(r#"{"a": 1}"#, "whitespace");
        bad(r#" {"a":1}"#, "whitespace");
        bad("1.0", "non-integer");
        bad("1e3", "non-integer");
        bad("01", "leading zero");
        bad("-0", "negative zero");
        bad("9007199254740992", "outside");
        bad(r#""\u000a""#, "short escape");
        bad(r#""\u001F""#, "lowercase");
        bad(r#""\u0041""#, "raw");
        bad(r#""\/""#, "escape");
        bad("\"a\u{1}\"", "control");
        bad(r#"{"a":1}x"#, "trailing");
        bad(r#"{"a":1"#, "expected ','");
        bad("tru", "literal");
    }

    #[test]
    fn orders_keys_by_utf16_code_units_not_bytes() {
        // U+10000 (a surrogate pair, 0xD800 0xDC00) sorts before U+E000 in
        // UTF-16, though after it in UTF-8 byte order.
        ok("{\"\u{10000}\":1,\"\u{e000}\":2}");
        bad("{\"\u{e000}\":1,\"\u{10000}\":2}", "order");
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        bad(&deep, "nesting");
        assert!(parse_strict(&deep).is_err());
    }

    #[test]
    fn strict_parse_rejects_duplicates_floats_and_big_integers() {
        assert!(
            parse_strict(r#"{"a":1,"a":2}"#)
                .unwrap_err()
                .0
                .contains("duplicate")
        );
        assert!(
            parse_strict(r#"{"a":1.5}"#)
                .unwrap_err()
                .0
                .contains("integer")
        );
        assert!(
            parse_strict("9007199254740992")
                .unwrap_err()
                .0
                .contains("2^53")
        );
        assert!(parse_strict(r#""\ud800""#).is_err());
        assert_eq!(
            parse_strict(r#"{"b":[1,-2],"a":"x"}"#).unwrap(),
            serde_json::json!({"a":"x","b":[1,-2]})
        );
    }

    #[test]
    fn is_json_follows_the_rfc_8259_grammar() {
        for good in [
            "{}",
            " [1, -0.5e+3, \"\\u00e9\\ud800\\/\", true, false, null, {\"a\" : {}}] \r\t",
            "0",
            "\"\"",
            r#"{"a":1,"a":2}"#,
        ] {
            assert!(is_json(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            " ",
            "\u{feff}{}",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\"}",
            "01",
            "1.",
            "-",
            "1e",
            "\"\\x\"",
            "\"\\u12\"",
            "\"a\u{1}\"",
            "nul",
            "{} {}",
            "[]]",
        ] {
            assert!(!is_json(bad.as_bytes()), "{bad:?}");
        }
        // Far deeper than any parser's recursion limit, still decided.
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(is_json(deep.as_bytes()));
        assert!(!is_json(&deep.as_bytes()[1..]));
    }

    #[test]
    fn canonicalizer_output_passes_the_scanner() {
        let v = parse_strict(r#"{"z":{"y":[1,"\u0007\t"]},"a":"é","\u00e9":null}"#).unwrap();
        let bytes = to_canonical_vec(&v).unwrap();
        assert_eq!(
            check_canonical(&bytes),
            Ok(()),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }
}
