//! One ledger record: the envelope, its hash, and its line layout.
//!
//! A stored line is `{"hash":"<64 hex>","record":<record>}\n`, where `<record>`
//! is the RFC 8785 canonical JSON of
//! `{"body":…,"kind":…,"prev":…,"seq":…,"ts":…,"v":1}`. Because `"hash"` sorts
//! before `"record"`, the line itself is canonical JSON, and the record's bytes
//! sit at a fixed offset ([`RECORD_OFFSET`]): a verifier hashes them in place
//! instead of re-serializing anything.

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// Format version written into every record's `v`.
pub const FORMAT_VERSION: u64 = 1;

/// Domain-separation tag prefixed to a record's canonical bytes before hashing.
pub const RECORD_HASH_TAG: &[u8] = b"vnx-ledger/v1/record\0";

/// Domain-separation tag for deriving the `prev` of a segment's first record.
pub const GENESIS_HASH_TAG: &[u8] = b"vnx-ledger/v1/genesis\0";

/// Bytes before the hash: `{"hash":"`.
pub const LINE_PREFIX: &[u8] = b"{\"hash\":\"";
/// Bytes between the hash and the record: `","record":`.
pub const LINE_MIDDLE: &[u8] = b"\",\"record\":";
/// Offset of the record's first byte within a line.
pub const RECORD_OFFSET: usize = LINE_PREFIX.len() + 64 + LINE_MIDDLE.len();

/// Kind of the record that opens every segment.
pub const KIND_GENESIS: &str = "segment.genesis";
/// Kind written before a worker is spawned.
pub const KIND_DISPATCH_STARTED: &str = "dispatch.started";
/// Kind written when a dispatch ends, whatever its end.
pub const KIND_DISPATCH_RECEIPT: &str = "dispatch.receipt";
/// Kind written by `vnx ledger repair`.
pub const KIND_REPAIR: &str = "repair";
/// Kind for free-text notes.
pub const KIND_NOTE: &str = "note";
/// Kind written by `vnx approve`: a person's decision on a receipt.
pub const KIND_APPROVAL: &str = "approval";
/// Prefix of extension kinds (`x.<tool>.<name>`), whose bodies are any JSON object.
pub const EXTENSION_PREFIX: &str = "x.";

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// SHA-256 over [`RECORD_HASH_TAG`] and a record's canonical bytes.
pub fn record_hash(record_bytes: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(RECORD_HASH_TAG);
    hasher.update(record_bytes);
    hasher.finalize().into()
}

/// The `prev` of a segment's first record (seq 0): SHA-256 over
/// [`GENESIS_HASH_TAG`], the ledger id, a NUL byte and the segment's file name.
/// Binding both means a segment can be neither moved into another ledger nor
/// renamed within its own without verification noticing.
pub fn genesis_prev(ledger_id: &str, segment: &str) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(GENESIS_HASH_TAG);
    hasher.update(ledger_id.as_bytes());
    hasher.update([0u8]);
    hasher.update(segment.as_bytes());
    hasher.finalize().into()
}

/// Lowercase hex of a hash.
pub fn to_hex(hash: &Hash) -> String {
    hex::encode(hash)
}

/// Decodes 64 lowercase hex chars. Uppercase is refused: it is not what the
/// writer produces, so accepting it would let two spellings of one record exist.
pub fn parse_hex_hash(text: &[u8]) -> Option<Hash> {
    if text.len() != 64
        || !text
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Builds a stored line (with its trailing `\n`) from canonical record bytes.
pub fn build_line(record_bytes: &[u8]) -> (Hash, Vec<u8>) {
    let hash = record_hash(record_bytes);
    let mut line = Vec::with_capacity(RECORD_OFFSET + record_bytes.len() + 2);
    line.extend_from_slice(LINE_PREFIX);
    line.extend_from_slice(to_hex(&hash).as_bytes());
    line.extend_from_slice(LINE_MIDDLE);
    line.extend_from_slice(record_bytes);
    line.extend_from_slice(b"}\n");
    (hash, line)
}

/// A line split into its stored hash and its record bytes.
pub struct SplitLine<'a> {
    /// The hash as stored in the line.
    pub stored_hash: Hash,
    /// The record's bytes, exactly as stored.
    pub record: &'a [u8],
}

/// Splits a line (without its `\n`) into stored hash and record bytes, or
/// `None` if it does not have the fixed layout.
pub fn split_line(line: &[u8]) -> Option<SplitLine<'_>> {
    if line.len() < RECORD_OFFSET + 3
        || !line.starts_with(LINE_PREFIX)
        || &line[LINE_PREFIX.len() + 64..RECORD_OFFSET] != LINE_MIDDLE
        || line.last() != Some(&b'}')
    {
        return None;
    }
    let stored_hash = parse_hex_hash(&line[LINE_PREFIX.len()..LINE_PREFIX.len() + 64])?;
    Some(SplitLine {
        stored_hash,
        record: &line[RECORD_OFFSET..line.len() - 1],
    })
}

/// The record envelope as read back, borrowing from the line. `body` is kept
/// raw so that each kind's schema check parses it once into its own type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeRef<'a> {
    /// The kind's body.
    #[serde(borrow)]
    pub body: &'a RawValue,
    /// Record kind, e.g. `dispatch.receipt`.
    pub kind: &'a str,
    /// Hash of the previous record (lowercase hex).
    pub prev: &'a str,
    /// 0-based position in the segment.
    pub seq: u64,
    /// RFC 3339 UTC timestamp with millisecond precision, e.g. `2026-11-21T19:42:14.123Z`.
    pub ts: &'a str,
    /// Format version; 1.
    pub v: u64,
}

/// Checks a record's `ts`: exactly `YYYY-MM-DDTHH:MM:SS.mmmZ` (24 ASCII
/// bytes, uppercase `T` and `Z`, three fraction digits), a real Gregorian
/// calendar date (so no 30 February; years 0000–9999), hours 00–23, minutes
/// 00–59, seconds 00–59, and second 60 only as `23:59:60`, where RFC 3339
/// §5.7 puts a leap second (which days had one is not checked).
pub fn valid_ts(ts: &str) -> bool {
    let b = ts.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:dd.dddZ";
    if b.len() != shape.len()
        || !b.iter().zip(shape).all(|(&c, &s)| {
            if s == b'd' {
                c.is_ascii_digit()
            } else {
                c == s
            }
        })
    {
        return false;
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let (year, month, day) = (num(0..4), num(5..7), num(8..10));
    let (hour, minute, second) = (num(11..13), num(14..16), num(17..19));
    let date_ok = chrono::NaiveDate::from_ymd_opt(year as i32, month, day).is_some();
    let second_ok = second <= 59 || (second == 60 && hour == 23 && minute == 59);
    date_ok && hour <= 23 && minute <= 59 && second_ok
}

/// Formats a UTC time the way records store it.
pub fn format_ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_layout_round_trips_and_is_canonical() {
        let record = br#"{"body":{},"kind":"note","prev":"00","seq":0,"ts":"t","v":1}"#;
        let (hash, line) = build_line(record);
        assert_eq!(line.last(), Some(&b'\n'));
        let body = &line[..line.len() - 1];
        crate::canonical::check_canonical(body).unwrap();
        let split = split_line(body).unwrap();
        assert_eq!(split.stored_hash, hash);
        assert_eq!(split.record, record);
        assert_eq!(record_hash(split.record), hash);
    }

    #[test]
    fn hash_is_domain_separated() {
        let plain: Hash = Sha256::digest(b"{}").into();
        assert_ne!(record_hash(b"{}"), plain);
        assert_ne!(genesis_prev("a", "b"), genesis_prev("a", "c"));
        assert_ne!(genesis_prev("a", "b"), genesis_prev("c", "b"));
    }

    #[test]
    fn uppercase_hex_is_refused() {
        let lower = "ab".repeat(32);
        assert!(parse_hex_hash(lower.as_bytes()).is_some());
        assert!(parse_hex_hash(lower.to_uppercase().as_bytes()).is_none());
    }

    #[test]
    fn timestamps_must_be_utc_millis() {
        assert!(valid_ts("2026-11-21T19:42:14.123Z"));
        assert!(!valid_ts("2026-11-21T19:42:14Z"));
        assert!(!valid_ts("2026-11-21T19:42:14.123+01:00"));
        assert!(!valid_ts("2026-13-21T19:42:14.123Z"));
        assert!(valid_ts("2024-02-29T00:00:00.000Z"), "leap year");
        assert!(!valid_ts("2026-02-29T00:00:00.000Z"), "not a leap year");
        assert!(!valid_ts("2026-02-30T00:00:00.000Z"), "30 February");
        assert!(!valid_ts("2026-04-31T00:00:00.000Z"));
        assert!(
            valid_ts("2026-12-31T23:59:60.000Z"),
            "leap second at 23:59:60"
        );
        assert!(!valid_ts("2026-12-31T12:34:60.000Z"), "second 60 elsewhere");
        assert!(!valid_ts("2026-12-31T24:00:00.000Z"));
        assert!(!valid_ts("2026-11-21 19:42:14.123Z"), "space for T");
        assert!(!valid_ts("2026-11-21t19:42:14.123z"), "lowercase t and z");
        assert!(!valid_ts("2026-11-21T19:42:14.1234"));
        assert!(!valid_ts("２026-11-21T19:42:14.123Z"), "non-ASCII digit");
    }
}
