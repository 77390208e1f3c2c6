//! Reading records for display (`vnx ledger show`, `tail`, `receipts`). This
//! does not verify anything: use [`crate::verify`] for that.

use std::fs::File;
use std::io::{BufRead, BufReader};

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::LedgerError;
use crate::record::{EnvelopeRef, split_line, to_hex};
use crate::verify::MAX_LINE_BYTES;

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
/// Collects [`SegmentReader`]; prefer that to hold one record at a time.
///
/// # Errors
/// I/O errors opening or reading the file.
pub fn read_segment(path: &Path) -> Result<Vec<Result<StoredRecord, Unreadable>>, LedgerError> {
    SegmentReader::open(path)?.collect()
}

/// The lines of one segment, read one at a time: memory holds one record
/// (at most [`MAX_LINE_BYTES`] of line), however large the segment.
///
/// Yields `Ok(Ok(record))`, `Ok(Err(unreadable))` for a line that is not a
/// record (a line longer than [`MAX_LINE_BYTES`] is skipped unread, a torn
/// last line ends the segment), and `Err` once for an I/O error, after
/// which it ends.
pub struct SegmentReader {
    path: PathBuf,
    reader: BufReader<File>,
    buf: Vec<u8>,
    line: u64,
    done: bool,
}

impl SegmentReader {
    /// Opens `path` for reading.
    ///
    /// # Errors
    /// [`LedgerError::Io`] when it cannot be opened.
    pub fn open(path: &Path) -> Result<SegmentReader, LedgerError> {
        let file = File::open(path).map_err(LedgerError::io("open", path))?;
        Ok(SegmentReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(256 * 1024, file),
            buf: Vec::new(),
            line: 0,
            done: false,
        })
    }
}

/// Reads the next line of `reader` into `buf` (without its `\n`), keeping
/// at most `max` bytes of it and skipping the rest, so one line never costs
/// more than `max` bytes of memory. Returns the line's full length, bytes,
/// and whether it ended with a newline (`false`: the end of the input came
/// first); `None` at the end of the input.
///
/// # Errors
/// The reader's I/O errors (`Interrupted` is retried).
pub fn read_line_bounded(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<(u64, bool)>> {
    buf.clear();
    let mut total = 0u64;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok((total > 0).then_some((total, false)));
        }
        let (used, ended) = match memchr_newline(chunk) {
            Some(at) => (at + 1, true),
            None => (chunk.len(), false),
        };
        let content = &chunk[..used - usize::from(ended)];
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(&content[..content.len().min(room)]);
        total += content.len() as u64;
        reader.consume(used);
        if ended {
            return Ok(Some((total, true)));
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

impl Iterator for SegmentReader {
    type Item = Result<Result<StoredRecord, Unreadable>, LedgerError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let (len, ended) = match read_line_bounded(&mut self.reader, &mut self.buf, MAX_LINE_BYTES)
        {
            Ok(Some(l)) => l,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(LedgerError::io("read", &self.path)(e)));
            }
        };
        self.line += 1;
        let unreadable = |reason: String| Unreadable {
            path: self.path.clone(),
            line: self.line,
            reason,
        };
        if !ended {
            self.done = true;
            return Some(Ok(Err(unreadable("torn tail (no newline)".to_owned()))));
        }
        if len > MAX_LINE_BYTES as u64 {
            return Some(Ok(Err(unreadable(format!(
                "a line of {len} bytes, longer than any record ({MAX_LINE_BYTES} bytes); not read"
            )))));
        }
        Some(Ok(parse_line(&self.buf, &self.path, self.line)
            .ok_or_else(|| unreadable("not a ledger record".to_owned()))))
    }
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
