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

/// Lists the segment files of a ledger directory, sorted by name: the
/// entries named like segments (`*.ndjson`, see
/// [`crate::store::is_segment_name`]) that are regular files. Entries of
/// other types (a directory named `x.ndjson`) are left out, as verification
/// does.
///
/// A symbolic link is never followed or skipped: when the directory itself
/// or any entry named like a segment is a link, the listing fails with
/// [`LedgerError::Symlink`] naming it (the first by name), so that whoever
/// reads, verifies or gates the ledger reports it instead of reading a file
/// outside the ledger or silently checking less.
///
/// # Errors
/// [`LedgerError::Symlink`] as above; I/O errors listing the directory.
pub fn segment_paths(dir: &Path) -> Result<Vec<PathBuf>, LedgerError> {
    crate::store::refuse_linked_dir(dir)?;
    let mut paths = Vec::new();
    let mut links = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(LedgerError::io("list", dir))? {
        let entry = entry.map_err(LedgerError::io("list", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !crate::store::is_segment_name(&name) {
            continue;
        }
        // `DirEntry::file_type` does not follow links.
        let file_type = entry
            .file_type()
            .map_err(LedgerError::io("examine", entry.path()))?;
        if file_type.is_symlink() {
            links.push(entry.path());
        } else if file_type.is_file() {
            paths.push(entry.path());
        }
    }
    links.sort();
    if let Some(path) = links.into_iter().next() {
        return Err(LedgerError::Symlink { path });
    }
    paths.sort();
    Ok(paths)
}
