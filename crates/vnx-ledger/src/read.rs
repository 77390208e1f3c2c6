//! Reading records for display (`vnx ledger show`, `tail`, `receipts`). This
//! does not verify anything: use [`crate::verify`] for that.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::LedgerError;
use crate::record::{EnvelopeRef, split_line, to_hex};

/// A record as stored, parsed for display.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    /// Segment file it came from.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: u64,
    /// Record seq.
    pub seq: u64,
    /// Timestamp, RFC 3339 UTC.
    pub ts: String,
    /// Kind.
    pub kind: String,
    /// Body.
    pub body: Value,
    /// Stored hash, lowercase hex.
    pub hash: String,
    /// The raw line, without its `\n`.
    pub raw: String,
}

/// A line that could not be read as a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Segment file.
    pub path: PathBuf,
    /// 1-based line number.
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// Reads every line of a segment, in order: records, and lines that are not.
///
/// # Errors
/// I/O errors opening or reading the file.
pub fn read_segment(path: &Path) -> Result<Vec<Result<StoredRecord, Unreadable>>, LedgerError> {
    let file = File::open(path).map_err(LedgerError::io("open", path))?;
    let mut reader = BufReader::new(file);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(LedgerError::io("read", path))?;
        if n == 0 {
            break;
        }
        line += 1;
        let torn = buf.last() != Some(&b'\n');
        if !torn {
            buf.pop();
        }
        let unreadable = |reason: &str| Unreadable {
            path: path.to_path_buf(),
            line,
            reason: reason.to_owned(),
        };
        if torn {
            out.push(Err(unreadable("torn tail (no newline)")));
            break;
        }
        out.push(parse_line(&buf, path, line).ok_or_else(|| unreadable("not a ledger record")));
    }
    Ok(out)
}

fn parse_line(bytes: &[u8], path: &Path, line: u64) -> Option<StoredRecord> {
    let raw = std::str::from_utf8(bytes).ok()?;
    let split = split_line(bytes)?;
    let env: EnvelopeRef<'_> = serde_json::from_slice(split.record).ok()?;
    Some(StoredRecord {
        path: path.to_path_buf(),
        line,
        seq: env.seq,
        ts: env.ts.to_owned(),
        kind: env.kind.to_owned(),
        body: serde_json::from_str(env.body.get()).ok()?,
        hash: to_hex(&split.stored_hash),
        raw: raw.to_owned(),
    })
}

/// Lists the segment files of a ledger directory, sorted by name.
///
/// # Errors
/// I/O errors listing the directory.
pub fn segment_paths(dir: &Path) -> Result<Vec<PathBuf>, LedgerError> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(LedgerError::io("list", dir))? {
        let entry = entry.map_err(LedgerError::io("list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if crate::store::is_segment_name(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
            paths.push(entry.path());
        }
    }
    paths.sort();
    Ok(paths)
}
